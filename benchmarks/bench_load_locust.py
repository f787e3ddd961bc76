"""Issue 17: N concurrent Issue #937 workflows with Locust (1 master + workers) against
``serve --workers``; which process saturates first.

    .venv/bin/python benchmarks/bench_load_locust.py                     # N = 1000 2000
    .venv/bin/python benchmarks/bench_load_locust.py --users 5000 --locust-workers 2 \\
        --server-workers 2 --run-time 30

Needs the load extra (``pip install -e .[load]``). The server is ``python -m netra_ws
serve --workers S --auth strict`` with the scenario of ``bench_concurrency.py`` (six events
0.2 s apart, no jitter, no heartbeats: 1.20 s of scripted workflow). Locust runs
``netra_ws/load/locustfile.py`` distributed: a headless master and W workers, N users
spawned at ``--spawn-rate``, stats reset once all are spawned (``--reset-stats``), then
``--run-time`` of steady state. Every user loops the whole workflow (connect with its own
token, ``connection_established``, ``user_message``, collect, check with the profile and
for cross-delivery), so N workflows are in flight at any time.

- baseline: the scripted workflow time (1.20 s);
- measured: the 95th percentile of the ``run`` row (``user_message`` sent → terminal
  event) over the steady window, and its failures (lost, out of order, cross-delivered…).

N holds when that p95 is within 1.5x the scripted time with 0 failures. Users are not
serialised when the throughput (runs/s) times the mean session time (connect + run) comes
out near N (Little's law): a serialised greenlet pool would give about W. Each run prints
the CPU share of every process over the steady window: the one near 100 % of a core is
what limits N. Exits 1 when the smallest N asked for does not hold.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "netra_ws" / "load" / "locustfile.py"
SCENARIO = {"first_delay": 0.2, "step_delay": 0.2, "jitter": 0.0, "heartbeat_interval": 3600}
SCRIPTED_S = 1.2  # six events 0.2 s apart
TARGET_FACTOR = 1.5


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, all cores (Linux /proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_run(users: int, args: argparse.Namespace, work: Path) -> dict:
    """One Locust run at ``users``; its figures as a dict."""
    scenario = work / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(cmd: list[str], name: str, **kw) -> subprocess.Popen:
        log = (work / f"{name}.log").open("w")
        proc = subprocess.Popen(
            cmd, cwd=work, env=env, stderr=log, start_new_session=True, text=True, **kw
        )
        procs.append(proc)
        return proc

    try:
        serve = start(
            [
                *(sys.executable, "-m", "netra_ws", "serve", "--port", "0", "--auth", "strict"),
                *("--workers", str(args.server_workers), "--scenario", str(scenario)),
            ],
            "serve",
            stdout=subprocess.PIPE,
        )
        url = serve.stdout.readline().strip()
        assert url.startswith("ws://"), (work / "serve.log").read_text()
        time.sleep(0.5)
        server_pids = _children(serve.pid) or [serve.pid]
        port = str(free_port())
        prefix = work / f"stats-{users}"
        master = start(
            [
                *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master"),
                *("--master-bind-port", port, "--expect-workers", str(args.locust_workers)),
                *("--host", url, "--headless", "-u", str(users), "-r", str(args.spawn_rate)),
                *("-t", f"{args.run_time + users / args.spawn_rate + 5:.0f}s", "--reset-stats"),
                *("--stop-timeout", "10s", "--csv", str(prefix), "--trace-every", "100"),
            ],
            "master",
            stdout=subprocess.DEVNULL,
        )
        workers = [
            start(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(LOCUSTFILE),
                    "--worker",
                    "--master-port",
                    port,
                ],
                f"worker-{i}",
                stdout=subprocess.DEVNULL,
            )
            for i in range(args.locust_workers)
        ]
        # The steady window: from all users spawned (+ 5 s to settle) for --run-time.
        time.sleep(users / args.spawn_rate + 5 + 3)
        watched = {f"server {i + 1}": pid for i, pid in enumerate(server_pids)}
        watched |= {"locust master": master.pid}
        watched |= {f"locust worker {i + 1}": w.pid for i, w in enumerate(workers)}
        before = {name: cpu_seconds(pid) for name, pid in watched.items()}
        machine_before = machine_ticks()
        t0 = time.monotonic()
        time.sleep(args.run_time - 4)
        busy = {
            name: (cpu_seconds(pid) - before[name]) / (time.monotonic() - t0)
            for name, pid in watched.items()
        }
        machine_after = machine_ticks()
        # Every core of the machine, ours and everyone else's: near 100 % means the
        # processes above got what was left, not what they asked for.
        busy["machine (all cores)"] = (machine_after[0] - machine_before[0]) / (
            machine_after[1] - machine_before[1]
        )
        master.wait(timeout=args.run_time + users / args.spawn_rate + 120)
        with Path(f"{prefix}_stats.csv").open(newline="") as f:
            stats = {row["Name"]: row for row in csv.DictReader(f)}
        with Path(f"{prefix}_failures.csv").open(newline="") as f:
            failures = {row["Error"]: int(row["Occurrences"]) for row in csv.DictReader(f)}
        run, connect = stats["run"], stats["connect"]
        runs_per_s = float(run["Requests/s"])
        session_s = float(run["Average Response Time"]) + float(connect["Average Response Time"])
        return {
            "users": users,
            "runs": int(run["Request Count"]),
            "failures": failures,
            "run_p50_s": float(run["50%"]) / 1000,
            "run_p95_s": float(run["95%"]) / 1000,
            "connect_p95_s": float(connect["95%"]) / 1000,
            "runs_per_s": runs_per_s,
            "in_flight": runs_per_s * session_s / 1000,  # Little's law
            "busy": busy,
        }
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            proc.wait()


def _children(pid: int) -> list[int]:
    """serve's worker processes (its children but multiprocessing's resource tracker)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    pids = [int(line) for line in out.stdout.split()]
    return [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--locust-workers", type=int, default=2)
    parser.add_argument("--server-workers", type=int, default=2)
    parser.add_argument("--spawn-rate", type=float, default=200)
    parser.add_argument("--run-time", type=float, default=20, help="steady seconds")
    args = parser.parse_args()
    held: list[int] = []
    first_holds = None
    for users in args.users:
        with tempfile.TemporaryDirectory(prefix="bench-locust-") as tmp:
            result = one_run(users, args, Path(tmp))
        factor = result["run_p95_s"] / SCRIPTED_S
        holds = factor <= TARGET_FACTOR and not result["failures"]
        if first_holds is None:
            first_holds = holds
        if holds:
            held.append(users)
        busy = ", ".join(f"{name} {share:.0%}" for name, share in result["busy"].items())
        print(
            f"N={users} (locust workers {args.locust_workers}, server workers "
            f"{args.server_workers}): run p50 {result['run_p50_s']:.2f} s, p95 "
            f"{result['run_p95_s']:.2f} s = {factor:.2f}x scripted {SCRIPTED_S} s; "
            f"connect p95 {result['connect_p95_s']:.2f} s; {result['runs']} runs, "
            f"{result['runs_per_s']:.0f}/s, in flight ~{result['in_flight']:.0f}; failures "
            f"{result['failures'] or 0}; CPU {busy} -> {'holds' if holds else 'does not hold'}",
            flush=True,
        )
    print(f"largest N that holds: {max(held) if held else 'none'}")
    return 0 if first_holds else 1


if __name__ == "__main__":
    sys.exit(main())
