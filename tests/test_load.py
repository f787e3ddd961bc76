"""Load (Issue #17): ``serve --workers``, the session judge, and real Locust runs, small.

The Locust runs are real processes (``serve --workers 2``, a Locust master and two workers,
or one local Locust) for a few seconds with at most 40 users; every process is killed in a
``finally``. They read Locust's own CSV output and the sampled traces, as a user would: one
workload run both ways gives the same stats rows and traces the kit's report reads.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import FAST, t

from netra_ws.load import CONNECT, FAILURES, FIRST_EVENT, RUN, foreign_events, judge_session
from netra_ws.report import build_report
from netra_ws.server import EmbeddedServer, parse_fault
from netra_ws.server.faults import plan_run
from netra_ws.server.scenario import run_rng, run_steps
from netra_ws.sync import connect
from netra_ws.tokens import mint_token
from netra_ws.trace import TraceWriter, load_traces

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "netra_ws" / "load" / "locustfile.py"


def _entries(name: str) -> list[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    entries = [line.split("#")[0].strip() for line in lines]
    return [entry for entry in entries if entry]


def test_the_load_extra_is_requirements_load_and_dev_includes_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert (
        _entries("requirements-load.txt") == pyproject["project"]["optional-dependencies"]["load"]
    )
    assert "-r requirements-load.txt" in _entries("requirements-dev.txt")
    assert not any(entry.lower().startswith("locust") for entry in _entries("requirements.txt"))


def test_the_base_package_never_imports_locust_and_the_judge_is_pure():
    code = (
        "import sys, netra_ws.load; pure = 'websockets' not in sys.modules\n"
        "import netra_ws, netra_ws.cli; print(pure, 'locust' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True False"


# --- the fault and the judge, without Locust -------------------------------------------------


def test_cross_deliver_plans_a_foreign_copy_after_the_event():
    steps = run_steps(FAST.for_run(1), "hello", run_rng(0, 1, 1))
    actions = plan_run(steps, [parse_fault("cross-deliver:tool_executing")])
    kinds = [(a.kind, a.label) for a in actions]
    at = kinds.index(("send", "tool_executing#1"))
    assert actions[at + 1].kind == "foreign"
    assert actions[at + 1].notes == ("cross-deliver tool_executing#1",)
    assert len(actions) == len(steps) + 1


def _recorded_session(server: EmbeddedServer) -> list[dict]:
    """One workflow recorded as a Locust user records it: a mark, then the session."""
    writer = TraceWriter(None)
    writer.mark("load: connect")
    with connect(server.url, token=server.token("alice"), trace=writer) as session:
        session.next(timeout=t(5))
        session.send_user_message("hello", run_id="run_alice_1")
        session.collect(until=("agent_completed", "agent_error"), timeout=t(5))
    return writer.records


def test_a_clean_session_reports_every_phase_and_no_failure():
    with EmbeddedServer(auth="strict", scenario=FAST) as server:
        result = judge_session(_recorded_session(server))
    assert result.failure is None, result.detail
    names = [name for name, _ in result.timings]
    assert names[:2] == ["connect", "first event"]
    assert names[-1] == RUN
    assert "gap → tool_completed" in names
    assert all(ms >= 0 for _, ms in result.timings)


def test_a_cross_delivered_event_is_named_and_kept_out_of_the_timings():
    faults = ["cross-deliver:agent_thinking#2"]
    with EmbeddedServer(auth="strict", scenario=FAST, faults=faults) as server:
        records = _recorded_session(server)
    result = judge_session(records)
    assert result.failure == "cross-delivered"
    assert "agent_thinking" in result.detail
    (foreign,) = foreign_events(records)
    assert foreign["run_id"] != "run_alice_1" and foreign["user_id"] != "alice"
    # The run still ends: its own events are timed, the foreign one is not among them.
    assert result.run_ms is not None
    assert [n for n, _ in result.timings].count("gap → agent_thinking") == 2


def test_the_shell_s_failure_wins_over_the_checks_and_must_be_known():
    records = [{"kind": "mark", "label": "load: connect", "t_mono_ns": 0}]
    assert judge_session(records, failure="auth refused").failure == "auth refused"
    with pytest.raises(ValueError, match="unknown failure"):
        judge_session(records, failure="bad luck")
    assert judge_session([]).failure == "missing event"  # nothing arrived at all
    assert FAILURES.index("cross-delivered") < FAILURES.index("timeout")


# --- processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _processes() -> Iterator[list[subprocess.Popen]]:
    """Processes started into the yielded list are killed, with their children, at the end."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # serve's workers are its children
            proc.kill()
            proc.wait(timeout=30)


def _serve(procs: list[subprocess.Popen], tmp_path: Path, *args: str) -> tuple[str, Path]:
    """``serve --workers 2 --port 0 ARGS``; its URL (stdout) and its log file."""
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "netra_ws", "serve", "--port", "0", "--workers", "2", *args],
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        start_new_session=True,
    )
    procs.append(proc)
    url = proc.stdout.readline().strip()
    assert url.startswith("ws://127.0.0.1:"), log.read_text()
    return url, log


STATS = "stats"  # each Locust run's --csv prefix, in its own folder


def _locust(procs: list[subprocess.Popen], cwd: Path, log: str, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=(cwd / log).open("w"),
        start_new_session=True,
    )
    procs.append(proc)
    return proc


def _run_locust(
    procs: list[subprocess.Popen],
    cwd: Path,
    url: str,
    *args: str,
    users: int,
    seconds: int,
    workers: int = 0,
) -> int:
    """One headless Locust run from ``cwd`` to its end; its exit code.

    ``workers=0``: one local process; else a master that expects ``workers`` worker
    processes, started beside it. The CSV goes to ``cwd/STATS_*.csv``, the sampled traces to
    ``cwd/data/load-<time>/`` (the locustfile's default), so runs in two folders never mix.
    """
    cwd.mkdir(exist_ok=True)
    common = ("--host", url, "--headless", "-u", str(users), "-r", str(users))
    # --stop-timeout lets the sessions in flight finish: no sampled trace is cut short.
    common += ("-t", f"{seconds}s", "--stop-timeout", "5s", "--csv", str(cwd / STATS), *args)
    if not workers:
        main = _locust(procs, cwd, "locust.log", *common)
    else:
        port = str(_free_port())
        main = _locust(
            procs,
            cwd,
            "locust.log",
            *("--master", "--master-bind-port", port, "--expect-workers", str(workers)),
            *("--expect-workers-max-wait", str(int(t(30)))),
            *common,
        )
        for index in range(workers):
            _locust(procs, cwd, f"worker-{index}.log", "--worker", "--master-port", port)
    try:
        return main.wait(timeout=seconds + t(40))
    except subprocess.TimeoutExpired:
        pytest.fail("Locust did not stop:\n" + (cwd / "locust.log").read_text()[-3000:])


def _stats(cwd: Path) -> dict[str, dict[str, str]]:
    """Locust's stats CSV of the run in ``cwd``, by Name (every row is WS but Aggregated)."""
    with (cwd / f"{STATS}_stats.csv").open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def _failures(cwd: Path) -> dict[str, int]:
    with (cwd / f"{STATS}_failures.csv").open(newline="") as f:
        return {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(f)}


def test_serve_workers_spreads_connections_over_two_processes(tmp_path):
    with _processes() as procs:
        url, log = _serve(procs, tmp_path, "--auth", "strict", "--verbose")
        for i in range(16):
            with connect(url, token=mint_token(f"user{i}")) as session:
                assert session.next(timeout=t(5)).event.event == "connection_established"
        deadline = time.monotonic() + t(5)
        while time.monotonic() < deadline and log.read_text().count(" opened user=") < 16:
            time.sleep(0.1)
        opened = [line for line in log.read_text().splitlines() if " opened user=" in line]
    assert len(opened) == 16
    # Each line names its worker; the kernel gave both some (all 16 to one: p = 2**-15).
    assert {line.split(" worker ")[1].split()[0] for line in opened} == {"1", "2"}


def _stat_rows(stats: dict[str, dict[str, str]]) -> set[tuple[str, str]]:
    """The CSV's rows as (Type, Name): one per phase, and ("", "Aggregated")."""
    return {(row["Type"], name) for name, row in stats.items()}


def _sampled_traces(cwd: Path, trace_every: int) -> tuple[Path, list[Path], pd.DataFrame]:
    """The run's one trace folder, its traces (one subfolder per Locust process), loaded."""
    (run_dir,) = (cwd / "data").glob("load-*")
    traces = sorted(run_dir.rglob("*.jsonl"))
    runs = int(_stats(cwd)[RUN]["Request Count"])
    processes = len(list(run_dir.iterdir()))
    # Each process records its sessions 1, 1 + N, 1 + 2N…; slack for a CSV that counts
    # what the workers had reported when the master stopped.
    assert processes <= len(traces) <= runs * 1.2 // trace_every + processes
    frames = load_traces(traces)
    # --stop-timeout let the sessions in flight finish: every sampled one is complete.
    assert frames["trace"].nunique() == len(traces)
    assert (frames["event"] == "agent_completed").sum() == len(traces)
    return run_dir, traces, frames


@pytest.mark.slow
def test_locust_local_and_distributed_give_the_same_stats_and_traces(tmp_path):
    """The same workload, one Locust process, then a master and two workers: same rows."""
    users, every = 40, 20
    workload = ("--trace-every", str(every), "--run-timeout", str(t(10)))
    local, distributed = tmp_path / "local", tmp_path / "distributed"
    with _processes() as procs:
        url, _ = _serve(procs, tmp_path, "--auth", "strict")
        for cwd, workers in ((local, 0), (distributed, 2)):
            code = _run_locust(procs, cwd, url, *workload, users=users, seconds=3, workers=workers)
            assert code == 0, (cwd / "locust.log").read_text()[-3000:]

    stats = {cwd.name: _stats(cwd) for cwd in (local, distributed)}
    # Every phase has a row of its own, in both forms: missing one is a failure.
    one_form_only = _stat_rows(stats["local"]) ^ _stat_rows(stats["distributed"])
    assert not one_form_only, f"stats rows of one form only: {sorted(one_form_only)}"
    phases = (CONNECT, FIRST_EVENT, "gap → agent_thinking", "gap → agent_completed", RUN)
    assert {("WS", phase) for phase in phases} | {("", "Aggregated")} <= _stat_rows(stats["local"])
    for form, rows in stats.items():
        for name, row in rows.items():
            assert int(row["Request Count"]) > 0 and int(row["Failure Count"]) == 0, (form, name)
        assert int(rows[RUN]["Request Count"]) >= users, form  # every user ran a workflow
        assert 0 < float(rows[FIRST_EVENT]["Median Response Time"]) < t(1) * 1000, form
        assert _failures(tmp_path / form) == {}, form

    named: dict[str, set[str]] = {}
    for cwd, processes in ((local, ["local"]), (distributed, ["worker-0", "worker-1"])):
        run_dir, traces, frames = _sampled_traces(cwd, every)
        # One folder per run, named by the master (or the local process), one per process.
        assert sorted(path.name for path in run_dir.iterdir()) == processes
        # The kit's report reads a load run as it reads any capture, and names its events.
        report = build_report(run_dir, charts=False)
        assert sorted(report.traces) == traces
        assert report.verdict != "failed", report.summary()  # no probe traces: inconclusive
        events = set(frames["event"].dropna())
        named[cwd.name] = {event for event in events if f"`{event}`" in report.markdown}
        assert named[cwd.name] == events, cwd.name
    assert named["local"] == named["distributed"]
    assert {"connection_established", "agent_started", "agent_completed"} <= named["local"]


def test_locust_users_report_a_cross_delivery_as_a_failure(tmp_path):
    with _processes() as procs:
        url, _ = _serve(
            procs, tmp_path, "--auth", "strict", "--fault", "cross-deliver:tool_executing"
        )
        code = _run_locust(procs, tmp_path, url, "--trace-every", "1000", users=10, seconds=3)
        assert code == 1  # Locust's exit code when requests failed

    stats = _stats(tmp_path)
    runs = int(stats[RUN]["Request Count"])
    assert runs >= 10
    assert int(stats[RUN]["Failure Count"]) == runs
    assert _failures(tmp_path) == {"cross-delivered": runs}
    # The failed sessions keep their traces (beyond the 1-in-1000 sample), 100 at most; the
    # CSV holds the final figures (the locustfile waits for Locust's last snapshot).
    traces = sorted((tmp_path / "data").glob("load-*/local/*.jsonl"))
    assert len(traces) == min(runs, 101)
    frames = load_traces(traces[:5])
    assert (frames["event"] == "tool_executing").sum() == 2 * 5  # own + the foreign copy


def test_locust_users_with_tokens_the_server_refuses_report_auth_refused(tmp_path):
    tokens = tmp_path / "tokens.txt"
    # Signed with another secret: the strict server accepts the handshake, then refuses.
    other_secret = "not-the-server-s-secret-" + "x" * 16
    tokens.write_text("\n".join(mint_token(f"u{i}", secret=other_secret) for i in range(3)))
    with _processes() as procs:
        url, _ = _serve(procs, tmp_path, "--auth", "strict")
        tokens_args = ("--token-file", str(tokens), "--trace-every", "0")
        assert _run_locust(procs, tmp_path, url, *tokens_args, users=3, seconds=3) == 1

    stats = _stats(tmp_path)
    runs = int(stats[RUN]["Request Count"])
    assert runs >= 3
    assert _failures(tmp_path) == {"auth refused": runs}
    assert "first event" not in stats
