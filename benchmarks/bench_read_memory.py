"""Issue 22: the peak memory of reading a trace, against the file's size.

    .venv/bin/python benchmarks/bench_read_memory.py                    # ~1 min
    .venv/bin/python benchmarks/bench_read_memory.py --flood-lines 24   # the 1.4 GiB flood

Two traces are generated in a temporary directory (removed at the end; ``--dir`` keeps
them): ``small``, many small frames (the analysis benchmark's session, ``gen_trace.py``,
``--small-mb`` of it), and ``flood``, a few huge frames as a recorder without a size
limit writes them (``--flood-lines`` JSON text frames of ``--flood-mib`` MiB each; the
flood of issue 22 was 24 frames of 60 MiB). Each is read three ways, each in a fresh
Python process that reports its own peak resident memory (``VmHWM``: ``ru_maxrss`` would
start from this process's peak, inherited across exec) and its time:

- whole: ``read_trace(p).to_frame()``
- no data: ``read_trace(p, columns=[every column but "data"]).to_frame()``
- chunked: ``for t in iter_trace(p): t.to_frame()`` (64 MiB chunks, every column)

The table gives the peak, the growth over an idle interpreter that imported the kit, and
both as ratios to the file's size. Exits 1 when the no-data or the chunked read of the
flood peaks above 1 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_trace import generate

from netra_ws.trace import TraceWriter, frame_record

LIMIT_BYTES = 1e9  # the no-data and chunked reads of the flood must stay below this
FRAME_BYTES = 609  # a frame line of gen_trace's session, on average

# What each child process runs: (imports, the measured read); ``path`` is the trace.
READERS = {
    "whole": ("from netra_ws.trace import read_trace", "n = len(read_trace(path).to_frame())"),
    "no data": (
        "from netra_ws.trace import FRAME_COLUMNS, read_trace\n"
        "columns = [c for c in FRAME_COLUMNS if c != 'data']",
        "n = len(read_trace(path, columns=columns).to_frame())",
    ),
    "chunked": (
        "from netra_ws.trace import iter_trace",
        "n = sum(len(t.to_frame()) for t in iter_trace(path))",
    ),
}


def peak_bytes() -> int:
    """The peak resident memory of this process (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))


def child(reader: str, path: str) -> None:
    """Run in the child process: read once, print seconds, rows and peaks as JSON."""
    setup, read = READERS[reader]
    namespace: dict = {"path": path}
    exec(setup, namespace)  # imports happen here, before the idle peak is taken
    idle = peak_bytes()
    started = time.perf_counter()
    exec(read, namespace)
    seconds = time.perf_counter() - started
    result = {"seconds": seconds, "rows": namespace["n"], "idle": idle, "peak": peak_bytes()}
    print(json.dumps(result))


def measure(reader: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_flood(out: Path, lines: int, mib: int) -> Path:
    """``lines`` JSON text frames of ``mib`` MiB each, recorded whole with their fields."""
    with TraceWriter(out, target="ws://127.0.0.1:8000/ws", labels={"benchmark": "flood"}):
        pass  # the header
    text = '{"type":"agent_thinking","payload":{"reasoning":"' + "A" * (mib << 20) + '"}}'
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    with out.open("a", encoding="utf-8") as f:
        for seq in range(1, lines + 1):
            t = seq * 250_000_000
            record = frame_record(seq, "receive", text, t_wall_ns=10**18 + t, t_mono_ns=t)
            f.write(encode(record) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small-mb", type=float, default=200, help="size of the small trace")
    parser.add_argument("--flood-lines", type=int, default=4, help="huge frames in the flood")
    parser.add_argument("--flood-mib", type=int, default=60, help="size of each huge frame")
    parser.add_argument("--only", choices=("small", "flood"), help="measure one trace only")
    parser.add_argument("--dir", type=Path, help="keep the traces here (reused if present)")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    where = args.dir or Path(tempfile.mkdtemp(prefix="bench_read_memory_"))
    where.mkdir(parents=True, exist_ok=True)
    small = where / f"small_{args.small_mb:g}mb.jsonl"
    flood = where / f"flood_{args.flood_lines}x{args.flood_mib}mib.jsonl"
    traces = {"small": small, "flood": flood}
    if args.only:
        traces = {args.only: traces[args.only]}
    try:
        for name, path in traces.items():
            if not path.exists():
                print(f"generating {path} …", flush=True)
                if name == "small":
                    generate(path, max(int(args.small_mb * 1e6 / FRAME_BYTES), 1))
                else:
                    write_flood(path, args.flood_lines, args.flood_mib)
        print(f"load average before: {os.getloadavg()}")
        print()
        print("| trace | file | read | rows | time | peak RSS | / file | growth | / file |")
        print("|---|---|---|---|---|---|---|---|---|")
        missed = []
        for name, path in traces.items():
            size = path.stat().st_size
            for reader in READERS:
                r = measure(reader, path)
                growth = r["peak"] - r["idle"]
                print(
                    f"| {name} | {size / 2**20:,.0f} MiB | {reader} | {r['rows']:,} | "
                    f"{r['seconds']:.1f} s | {r['peak'] / 2**20:,.0f} MiB | "
                    f"{r['peak'] / size:.2f}× | {growth / 2**20:,.0f} MiB | {growth / size:.2f}× |",
                    flush=True,
                )
                if name == "flood" and reader != "whole" and r["peak"] > LIMIT_BYTES:
                    missed.append(f"{reader} read of the flood peaked at {r['peak'] / 1e9:.2f} GB")
        print()
        print(f"load average after: {os.getloadavg()}")
    finally:
        if args.dir is None:
            shutil.rmtree(where)
    for line in missed:
        print(f"MISSED: {line} (limit {LIMIT_BYTES / 1e9:.0f} GB)")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
