"""Issue 7, figure 3: load a 1,000,000-frame trace; compare with pandas.read_json.

    .venv/bin/python benchmarks/bench_load.py              # generates the trace if needed
    .venv/bin/python benchmarks/bench_load.py --repeat 5 --trace data/bench/other.jsonl

The trace is the analysis benchmark's (``benchmarks/gen_trace.py``, one long session of
agent runs). Every measurement runs in a fresh Python process, which reports its own time
for the call and its own peak resident memory (``ru_maxrss``), so the runs cannot share
caches or memory. Baseline and kit alternate, ``--repeat`` times each, and the medians are
compared, because the machine is shared and its speed drifts.

- baseline: ``pandas.read_json(path, lines=True)``
- kit: ``read_trace(path).to_frame()`` and ``load_traces(path)``
- reload: ``read_parquet()`` of the ``Trace.to_parquet()`` export

Targets: the kit at least 8x faster than the baseline with a peak below 1.5 GiB; the
Parquet reload under 1 s. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_trace import DEFAULT_OUT, generate

TARGET_SPEEDUP = 8.0
TARGET_PEAK_GIB = 1.5
TARGET_PARQUET_S = 1.0

# What each child process runs; ``path`` is the trace (or Parquet file) to load.
LOADERS = {
    "pandas.read_json": "import pandas as pd\nload = lambda: pd.read_json(path, lines=True)",
    "read_trace+to_frame": (
        "from netra_ws.trace import read_trace\nload = lambda: read_trace(path).to_frame()"
    ),
    "load_traces": "from netra_ws.trace import load_traces\nload = lambda: load_traces(path)",
    "read_parquet": "from netra_ws.trace import read_parquet\nload = lambda: read_parquet(path)",
}


def child(loader: str, path: str) -> None:
    """Run in the child process: load once, print seconds, rows and peak RSS as JSON."""
    namespace: dict = {"path": path}
    exec(LOADERS[loader], namespace)  # imports happen here, outside the timed call
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    df = namespace["load"]()
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # CPU seconds of all threads: what the load costs, whatever else the machine is doing
    # (the wall time of a multithreaded reader suffers more from a busy machine).
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    peak_gib = usage.ru_maxrss / 2**20  # ru_maxrss is KiB on Linux
    print(json.dumps({"seconds": seconds, "cpu": cpu, "rows": len(df), "peak_gib": peak_gib}))


def measure(loader: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", loader, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--frames", type=int, default=1_000_000, help="when generating")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("LOADER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    if not args.trace.exists():
        args.trace.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating {args.trace} ({args.frames:,} frames), once …", flush=True)
        generate(args.trace, args.frames)
    parquet = args.trace.with_suffix(".frames.parquet")
    if not parquet.exists():
        from netra_ws.trace import read_trace

        read_trace(args.trace).to_parquet(parquet)
    size_mb = args.trace.stat().st_size / 1e6
    print(f"trace: {args.trace} ({size_mb:.0f} MB); Parquet export: {parquet.name}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    results: dict[str, list[dict]] = {name: [] for name in LOADERS}
    for round_ in range(1, args.repeat + 1):
        # Interleaved, so drifts of the machine's speed hit baseline and kit alike.
        for name in LOADERS:
            source = parquet if name == "read_parquet" else args.trace
            result = measure(name, source)
            results[name].append(result)
            print(
                f"  round {round_}: {name:20s} {result['seconds']:7.2f} s  "
                f"(CPU {result['cpu']:6.2f} s)  peak {result['peak_gib']:.2f} GiB  "
                f"rows {result['rows']:,}",
                flush=True,
            )

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    base_s, base_gib = median("pandas.read_json", "seconds"), median("pandas.read_json", "peak_gib")
    base_cpu = median("pandas.read_json", "cpu")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print(f"baseline pandas.read_json(lines=True): {base_s:.2f} s, peak {base_gib:.2f} GiB")
    missed = []
    for name in ("read_trace+to_frame", "load_traces"):
        seconds, peak = median(name, "seconds"), median(name, "peak_gib")
        speedup = base_s / seconds
        print(
            f"kit {name:20s}: {seconds:.2f} s, peak {peak:.2f} GiB -> {speedup:.1f}x faster "
            f"(target >= {TARGET_SPEEDUP:.0f}x, < {TARGET_PEAK_GIB} GiB)"
        )
        cpu = median(name, "cpu")
        print(
            f"    CPU {cpu:.2f} s vs the baseline's {base_cpu:.2f} s: "
            f"{base_cpu / cpu:.1f}x less work"
        )
        if speedup < TARGET_SPEEDUP:
            missed.append(f"{name} only {speedup:.1f}x faster")
        if max(r["peak_gib"] for r in results[name]) >= TARGET_PEAK_GIB:
            missed.append(f"{name} peaked at {peak:.2f} GiB")
    reload_s = median("read_parquet", "seconds")
    kit_s = median("read_trace+to_frame", "seconds")
    print(
        f"reload read_parquet: {reload_s:.2f} s (vs {kit_s:.2f} s from JSON Lines, "
        f"{kit_s / reload_s:.1f}x faster; target < {TARGET_PARQUET_S:.0f} s)"
    )
    if reload_s >= TARGET_PARQUET_S:
        missed.append(f"Parquet reload took {reload_s:.2f} s")
    if missed:
        print("TARGET MISSED: " + "; ".join(missed))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
