"""Load (Issue #17): ``serve --workers``, the session judge, and real Locust runs, small.

The Locust runs are real processes (``serve --workers 2``, a Locust master and two workers,
or one local Locust) for a few seconds with ~50 users; every process is killed in a
``finally``. They read Locust's own CSV output and the sampled traces, as a user would.
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

import pytest
from conftest import FAST, t

from netra_ws.load import FAILURES, RUN, foreign_events, judge_session
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


def _locust(procs: list[subprocess.Popen], cwd: Path, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=(cwd / f"locust-{len(procs)}.log").open("w"),
        start_new_session=True,
    )
    procs.append(proc)
    return proc


def _stats(prefix: Path) -> dict[str, dict[str, str]]:
    with Path(f"{prefix}_stats.csv").open(newline="") as f:
        return {row["Name"]: row for row in csv.DictReader(f)}


def _failures(prefix: Path) -> dict[str, int]:
    with Path(f"{prefix}_failures.csv").open(newline="") as f:
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


@pytest.mark.slow
def test_locust_master_and_two_workers_run_the_workflow(tmp_path):
    prefix = tmp_path / "stats"
    port = str(_free_port())
    with _processes() as procs:
        url, _ = _serve(procs, tmp_path, "--auth", "strict")
        master = _locust(
            procs,
            tmp_path,
            *("--master", "--master-bind-port", port, "--expect-workers", "2"),
            *("--expect-workers-max-wait", str(int(t(30)))),
            *("--host", url, "--headless", "-u", "50", "-r", "50", "-t", "5s"),
            *("--stop-timeout", "5s"),
            *("--csv", str(prefix), "--trace-every", "20", "--run-timeout", str(t(10))),
        )
        for _ in range(2):
            _locust(procs, tmp_path, "--worker", "--master-port", port)
        assert master.wait(timeout=t(45)) == 0, (tmp_path / "locust-1.log").read_text()[-3000:]

    stats = _stats(prefix)
    runs = int(stats[RUN]["Request Count"])
    assert runs >= 50  # every user ran at least one workflow in 5 s
    assert int(stats[RUN]["Failure Count"]) == 0
    assert _failures(prefix) == {}
    for phase in ("connect", "first event", "gap → agent_thinking", "gap → agent_completed"):
        assert int(stats[phase]["Request Count"]) > 0, phase
    assert 0 < float(stats["first event"]["Median Response Time"]) < t(1) * 1000

    # One folder for the run, named by the master, one subfolder per worker.
    (run_dir,) = (tmp_path / "data").glob("load-*")
    assert sorted(p.name for p in run_dir.iterdir()) == ["worker-0", "worker-1"]
    traces = sorted(run_dir.rglob("*.jsonl"))
    # One in 20 of each worker's sessions (the first of each worker included); slack for
    # the master's CSV, which counts what the workers had reported when it stopped.
    assert 2 <= len(traces) <= runs * 1.2 // 20 + 2
    frames = load_traces(traces)
    # --stop-timeout lets the sessions in flight finish: every sampled one is complete.
    assert frames["trace"].nunique() == len(traces)
    assert (frames["event"] == "agent_completed").sum() == len(traces)
    # The kit's report reads the run as it reads any capture.
    report = tmp_path / "report.md"
    subprocess.run(
        [sys.executable, "-m", "netra_ws", "report", str(run_dir), "--out", str(report)],
        check=False,
        capture_output=True,
        timeout=t(60),
    )
    assert report.exists() and "agent_completed" in report.read_text()


def test_locust_users_report_a_cross_delivery_as_a_failure(tmp_path):
    prefix = tmp_path / "stats"
    with _processes() as procs:
        url, _ = _serve(
            procs, tmp_path, "--auth", "strict", "--fault", "cross-deliver:tool_executing"
        )
        local = _locust(
            procs,
            tmp_path,
            *("--host", url, "--headless", "-u", "10", "-r", "10", "-t", "3s"),
            *("--stop-timeout", "5s"),
            *("--csv", str(prefix), "--trace-every", "1000"),
        )
        assert local.wait(timeout=t(30)) == 1  # Locust's exit code when requests failed

    stats = _stats(prefix)
    runs = int(stats[RUN]["Request Count"])
    assert runs >= 10
    assert int(stats[RUN]["Failure Count"]) == runs
    assert _failures(prefix) == {"cross-delivered": runs}
    # The failed sessions keep their traces (beyond the 1-in-1000 sample), 100 at most; the
    # CSV holds the final figures (the locustfile waits for Locust's last snapshot).
    traces = sorted((tmp_path / "data").glob("load-*/local/*.jsonl"))
    assert len(traces) == min(runs, 101)
    frames = load_traces(traces[:5])
    assert (frames["event"] == "tool_executing").sum() == 2 * 5  # own + the foreign copy


def test_locust_users_with_tokens_the_server_refuses_report_auth_refused(tmp_path):
    prefix = tmp_path / "stats"
    tokens = tmp_path / "tokens.txt"
    # Signed with another secret: the strict server accepts the handshake, then refuses.
    other_secret = "not-the-server-s-secret-" + "x" * 16
    tokens.write_text("\n".join(mint_token(f"u{i}", secret=other_secret) for i in range(3)))
    with _processes() as procs:
        url, _ = _serve(procs, tmp_path, "--auth", "strict")
        local = _locust(
            procs,
            tmp_path,
            *("--host", url, "--headless", "-u", "3", "-r", "3", "-t", "3s"),
            *("--stop-timeout", "5s"),
            *("--csv", str(prefix), "--token-file", str(tokens), "--trace-every", "0"),
        )
        assert local.wait(timeout=t(30)) == 1

    stats = _stats(prefix)
    runs = int(stats[RUN]["Request Count"])
    assert runs >= 3
    assert _failures(prefix) == {"auth refused": runs}
    assert "first event" not in stats
