"""Issue 22: a compressed flood against the default budgets, and the trace it leaves.

    .venv/bin/python benchmarks/bench_flood.py                # both floods, and the baseline
    .venv/bin/python benchmarks/bench_flood.py --no-baseline  # without the 1.4 GiB baseline

A hostile server (tests/helpers/hostile.py: raw sockets on 127.0.0.1, in this process)
answers the upgrade with permessage-deflate, sends ``connection_established`` and then
frames of ``agent_thinking`` padded with one letter, which deflate shrinks a thousand to
one, as fast as the client takes them. The client, in a fresh process each time, is the
path users take: ``netra_ws.connect(url, trace=file)`` read with ``collect(None,
timeout=5)``, then the session stays open until the connection ends. It prints its peak
RSS (``ru_maxrss``), how long ``collect`` took, how many frames it returned, how the
connection ended (the verdicts' words) and the trace's size. Then another fresh process
loads the trace with ``read_trace(p).to_frame()`` and prints its peak RSS.

The floods:

- ``issue``: the flood of Issue #22, 24 frames of 60 MiB (1.5 MB on the wire);
- ``under``: 400 frames of 15 MiB, just under the default frame limit (16 MiB): every
  frame is taken, recorded truncated to 1 MiB with its SHA-256, until the trace budget
  (256 MiB) ends the recording and the session closes the connection.

The baseline, side by side: the ``issue`` flood with the limits of before (frames up to
64 MiB, recorded whole, no budget): what the kit did before Issue #22.

Targets (exit 0 only when all are met, with the default limits): peak RSS < 400 MB;
``collect(timeout=5)`` back within 5.5 s; the trace within the budget (256 MiB and its
header and marks); the trace loads with ``read_trace`` under 1 GB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from helpers.hostile import HostileServer, deflate_flood  # noqa: E402

MIB = 1 << 20
RSS_TARGET_MB = 400
COLLECT_TARGET_S = 5.5
LOAD_TARGET_MB = 1000
FLOODS = {"issue": (24, 60 * MIB), "under": (400, 15 * MIB)}
BEFORE = {"frame_limit": 64 * MIB, "record_limit": None, "trace_budget": None}

CLIENT = """
import asyncio, json, resource, sys, time
from pathlib import Path
import netra_ws

url, trace, limits = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])

async def main():
    options = {"limits": netra_ws.Limits(**limits)} if limits else {}
    async with netra_ws.connect(url, trace=trace, **options) as session:
        started = time.perf_counter()
        got = await session.collect(None, timeout=5)
        took = time.perf_counter() - started
        frames = len(got)
        del got  # what the caller kept is let go: the session goes on until the end
        while not session.closed:
            await asyncio.sleep(0.1)
    print(json.dumps({
        "collect_s": took, "frames": frames,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "trace_mb": trace.stat().st_size / 2**20,
    }))

asyncio.run(main())
"""

LOADER = """
import json, resource, sys, time
from netra_ws.trace import read_trace
started = time.perf_counter()
frame = read_trace(sys.argv[1]).to_frame()
print(json.dumps({"load_s": time.perf_counter() - started, "rows": len(frame),
                  "load_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

# How the connection ended, in the verdicts' words (its own process: reading every record
# of a 256 MiB trace is not what the client or the loader is measured for).
ENDING = """
import json, sys
from netra_ws.trace import read_trace
from netra_ws.untrusted import for_terminal
from netra_ws.verdicts import connection_end, kit_stopped
records = read_trace(sys.argv[1]).records
# The close reason in these words is the server's: escaped before it reaches the terminal.
words = kit_stopped(records) or connection_end(records).words
print(json.dumps({"ended": for_terminal(words, limit=1000)}))
"""


def _child(code: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"a benchmark process failed:\n{done.stderr[-3000:]}")
    result: dict[str, object] = json.loads(done.stdout)
    return result


def run_flood(name: str, limits: dict[str, int | None], folder: Path) -> dict[str, object]:
    count, size = FLOODS[name]
    trace = folder / f"{name}-{len(list(folder.iterdir()))}.jsonl"
    with HostileServer(deflate_flood(count, size, linger=120)) as server:
        result = _child(CLIENT, server.url, str(trace), json.dumps(limits))
    result.update(_child(LOADER, str(trace)))
    result.update(_child(ENDING, str(trace)))
    trace.unlink()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--no-baseline", action="store_true", help="skip the limits of before")
    args = parser.parse_args()
    with open("/proc/loadavg") as f:
        print(f"load average before: {' '.join(f.read().split()[:3])}")
    runs = [("issue", "default limits", {}), ("under", "default limits", {})]
    if not args.no_baseline:
        runs.append(("issue", "before: 64 MiB frames, recorded whole, no budget", BEFORE))
    missed = []
    print(
        f"{'flood':<7}{'limits':<50}{'peak RSS':>10}{'collect':>9}{'frames':>8}"
        f"{'trace':>11}{'read_trace RSS':>16}  how it ended"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name, label, limits in runs:
            started = time.perf_counter()
            r = run_flood(name, limits, Path(tmp))
            load = r.get("load_rss_mb")
            print(
                f"{name:<7}{label:<50}{r['rss_mb']:>7.0f} MB{r['collect_s']:>8.2f}s"
                f"{r['frames']:>8}{r['trace_mb']:>7.1f} MiB"
                f"{(f'{load:.0f} MB' if load else 'failed'):>16}  {r['ended']}"
                f"  ({time.perf_counter() - started:.0f} s)"
            )
            if limits:
                continue  # the baseline shows what was; the targets are the defaults'
            if r["rss_mb"] >= RSS_TARGET_MB:
                missed.append(f"{name}: peak RSS {r['rss_mb']:.0f} MB (target < {RSS_TARGET_MB})")
            if r["collect_s"] > COLLECT_TARGET_S:
                missed.append(f"{name}: collect(timeout=5) took {r['collect_s']:.2f} s")
            if r["trace_mb"] > 256 + 1:
                missed.append(f"{name}: trace of {r['trace_mb']:.1f} MiB (budget 256 MiB)")
            if load is None or load >= LOAD_TARGET_MB:
                missed.append(f"{name}: read_trace peak RSS {load} MB (target < 1 GB)")
    with open("/proc/loadavg") as f:
        print(f"load average after: {' '.join(f.read().split()[:3])}")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
