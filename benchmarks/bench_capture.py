"""Issue 7, figure 1: capture throughput of a recorded session against a bare receive loop.

    .venv/bin/python benchmarks/bench_capture.py               # 200,000 frames, 3 rounds
    .venv/bin/python benchmarks/bench_capture.py --frames 50000 --repeat 1 --sender preencoded

A burst server (a tiny ``websockets`` server, in its own process, on 127.0.0.1) sends each
connection ``--frames`` text frames of about 150 bytes, an ``agent_thinking`` event, as
fast as the client takes them, then closes. ``--sender realistic`` (the default) builds
each event as the reference server does (a dict with a fresh ISO timestamp, ``json.dumps``,
``send``); ``--sender preencoded`` sends texts made in advance, a sender that costs less
per frame than any real server, so the receiving side is all that limits the rate.

- baseline: a bare ``websockets`` receive loop that only counts (``async for`` over
  the connection), same connection options as the kit;
- kit: ``netra_ws.connect(url, trace=file)`` recording every frame, nobody reading them.

Both run in fresh processes, alternately, ``--repeat`` times; frames per second are
measured from the first to the last frame's receipt, medians compared. While the kit runs,
a third process tails the trace file and records, for every batch of lines it sees appear,
how long the oldest frame in it had waited since its receipt (``t_mono_ns``, the same
monotonic clock in every process): the largest such wait bounds the time a received frame
stays unwritten (plus the tailer's own polling interval, reported beside it).

Targets: kit >= 0.90 of the baseline's frames per second; no frame unwritten longer than
50 ms; every frame recorded, in order. Exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

TARGET_RATIO = 0.90
TARGET_UNWRITTEN_MS = 50.0
HOST = "127.0.0.1"


# --- the burst server (its own process) ------------------------------------------------------


def thinking_event(step: int) -> dict:
    """An agent_thinking event in the bridge envelope, about 150 bytes once serialized."""
    return {
        "type": "agent_thinking",
        "run_id": "run_5f1c9a2e",
        "agent_name": "supervisor_agent",
        "timestamp": datetime.now(UTC).isoformat(),
        "payload": {"reasoning": "Choosing the tools", "step_number": step},
    }


def serve(frames: int, sender: str, lifetime_s: float) -> None:
    """Serve bursts until ``lifetime_s`` has passed; print the URL first."""
    from websockets.asyncio.server import serve as ws_serve

    preencoded = (
        [json.dumps(thinking_event(i)) for i in range(frames)] if sender == "preencoded" else []
    )

    async def burst(ws) -> None:
        if sender == "preencoded":
            for text in preencoded:
                await ws.send(text)
        else:
            for step in range(frames):
                await ws.send(json.dumps(thinking_event(step)))
        await ws.close()

    async def main() -> None:
        # The reference server's settings: websockets' defaults (permessage-deflate on),
        # no keepalive pings to interleave with the burst.
        async with ws_serve(burst, HOST, 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            print(f"ws://{HOST}:{port}/", flush=True)
            await asyncio.sleep(lifetime_s)

    asyncio.run(main())


# --- the two clients (each in its own process) ----------------------------------------------


def client(kind: str, url: str, trace: str) -> None:
    """Receive one burst; print frames, first-to-last seconds and checks as JSON."""
    cpu = time.process_time()
    if kind == "bare":
        result = asyncio.run(bare_client(url))
    else:
        result = asyncio.run(kit_client(url, Path(trace)))
    # CPU per frame of the whole client process (startup and imports included): how much
    # headroom each side had, whatever the sender allowed.
    result["cpu_us_per_frame"] = (time.process_time() - cpu) / max(result["frames"], 1) * 1e6
    print(json.dumps(result))


async def bare_client(url: str) -> dict:
    from websockets.asyncio.client import connect as ws_connect

    count = 0
    first = last = 0
    # The kit's connection options, so only the recording differs.
    async with ws_connect(url, max_size=64 * 1024 * 1024) as ws:
        async for _message in ws:
            last = time.perf_counter_ns()
            if count == 0:
                first = last
            count += 1
    return {"frames": count, "seconds": (last - first) / 1e9}


async def kit_client(url: str, trace: Path) -> dict:
    import gc

    import netra_ws

    # Diagnostics only (they change nothing in the kit): what can keep a frame unwritten
    # besides the flush deadline? A garbage collection, or a slow write to the file.
    pauses = [0.0]
    started: list[float] = []

    def on_gc(phase: str, _info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            pauses.append(time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)
    async with netra_ws.connect(url, trace=trace) as session:
        writes = [0.0]
        write_pending = session._writer._write_pending  # timing only

        def timed_write() -> None:
            begun = time.perf_counter()
            write_pending()
            writes.append(time.perf_counter() - begun)

        session._writer._write_pending = timed_write
        # Nobody reads the frames: the recorder alone is measured. The server closes
        # when the burst is sent.
        while not session.closed:
            await asyncio.sleep(0.01)
        received = [r.t_mono_ns for r in session.received]
    seconds = (received[-1] - received[0]) / 1e9 if received else 0.0
    return {
        "frames": len(received),
        "seconds": seconds,
        "max_gc_ms": max(pauses) * 1e3,
        "max_write_ms": max(writes) * 1e3,
    }


def check_trace(path: Path, frames: int) -> str | None:
    """Every frame in the file, numbered without gaps, in the order the server sent them."""
    from netra_ws import read_trace

    df = read_trace(path).to_frame()
    received = df[df["dir"] == "receive"]
    if len(received) != frames:
        return f"{len(received)} frames in the trace, {frames} sent"
    if df["seq"].tolist() != list(range(1, len(df) + 1)):
        return "seq has gaps or repeats"
    steps = received["data"].str.extract(r'"step_number": (\d+)')[0].astype("int64")
    if steps.tolist() != list(range(frames)):
        return "frames out of order"
    if received["event"].ne("agent_thinking").any():
        return "frames without their normalized event"
    return None


# --- the tailer (its own process) -------------------------------------------------------------

_T_MONO = re.compile(rb'"t_mono_ns":(\d+)')


def tail(path: str, timeout_s: float) -> None:
    """Watch ``path`` grow; print the longest wait between receipt and appearance as JSON."""
    with contextlib.suppress(OSError):  # wake up on time on a busy machine (needs root)
        os.setpriority(os.PRIO_PROCESS, 0, -10)
    target = Path(path)
    started = time.monotonic()
    while not target.exists():
        if time.monotonic() - started > timeout_s:
            print(json.dumps({"error": "trace file never appeared"}))
            return
        time.sleep(0.001)
    worst_ns = 0  # the oldest new line's wait when the tailer saw it: an upper bound
    surely_ns = 0  # its wait when the tailer last looked and did not see it: a lower bound
    worst_gap_ns = 0
    frames = 0
    previous_poll = time.perf_counter_ns()
    partial = b""
    with target.open("rb") as f:
        while time.monotonic() - started < timeout_s:
            chunk = f.read()
            now = time.perf_counter_ns()
            if chunk:
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                new_frames = [line for line in lines if line.startswith(b'{"kind":"frame"')]
                if new_frames:
                    # Lines appear in receipt order: the first new one waited longest.
                    match = _T_MONO.search(new_frames[0])
                    if match:
                        received_ns = int(match.group(1))
                        worst_ns = max(worst_ns, now - received_ns)
                        surely_ns = max(surely_ns, previous_poll - received_ns)
                        worst_gap_ns = max(worst_gap_ns, now - previous_poll)
                    frames += len(new_frames)
                if any(line.startswith(b'{"kind":"close"') for line in lines):
                    break
            previous_poll = now
            time.sleep(0.0005)
    print(
        json.dumps(
            {
                "frames": frames,
                "max_unwritten_ms": worst_ns / 1e6,
                "surely_unwritten_ms": surely_ns / 1e6,
                "poll_gap_ms": worst_gap_ns / 1e6,
            }
        )
    )


# --- the orchestra ---------------------------------------------------------------------------


def run_json(args: list[str], timeout: float) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sender", choices=("realistic", "preencoded"), default="realistic")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--client", nargs=3, metavar=("KIND", "URL", "TRACE"), help=argparse.SUPPRESS
    )
    parser.add_argument("--tail", metavar="TRACE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    per_run_timeout = 60 + args.frames / 2_000  # bounded even on a very slow machine
    if args.serve:
        serve(args.frames, args.sender, lifetime_s=per_run_timeout * (2 * args.repeat + 1))
        return 0
    if args.client:
        client(*args.client)
        return 0
    if args.tail:
        tail(args.tail, timeout_s=per_run_timeout)
        return 0

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--frames", str(args.frames),
         "--repeat", str(args.repeat), "--sender", args.sender],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    problems: list[str] = []
    results: dict[str, list[dict]] = {"bare": [], "kit": []}
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"burst server {url}: {args.frames:,} frames per connection, sender {args.sender}")
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
            for round_ in range(1, args.repeat + 1):
                bare = run_json(["--client", "bare", url, "-"], per_run_timeout)
                trace = Path(tmp) / f"kit-{round_}.jsonl"
                tailer = subprocess.Popen(
                    [sys.executable, __file__, "--tail", str(trace), "--frames", str(args.frames)],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                kit = run_json(["--client", "kit", url, str(trace)], per_run_timeout)
                tail_out, _ = tailer.communicate(timeout=per_run_timeout)
                kit.update(json.loads(tail_out.strip().splitlines()[-1]))
                for name, result in (("bare", bare), ("kit", kit)):
                    result["fps"] = (result["frames"] - 1) / result["seconds"]
                    results[name].append(result)
                    if result["frames"] != args.frames:
                        problems.append(f"{name} round {round_}: {result['frames']} frames")
                problem = check_trace(trace, args.frames)
                if problem:
                    problems.append(f"kit round {round_}: {problem}")
                trace.unlink()
                print(
                    f"  round {round_}: bare {bare['fps']:8,.0f} fps   kit {kit['fps']:8,.0f} fps"
                    f"   ratio {kit['fps'] / bare['fps']:.2f}   max unwritten "
                    f"{kit.get('surely_unwritten_ms', float('nan')):.1f}-"
                    f"{kit.get('max_unwritten_ms', float('nan')):.1f} ms "
                    f"(tailer poll gap up to {kit.get('poll_gap_ms', float('nan')):.1f} ms; "
                    f"longest GC pause {kit['max_gc_ms']:.0f} ms, longest write "
                    f"{kit['max_write_ms']:.0f} ms)",
                    flush=True,
                )
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"load average after: {os.getloadavg()[0]:.2f}")

    bare_fps = statistics.median(r["fps"] for r in results["bare"])
    kit_fps = statistics.median(r["fps"] for r in results["kit"])
    ratio = kit_fps / bare_fps
    unwritten = max(r.get("max_unwritten_ms", float("inf")) for r in results["kit"])
    surely = max(r.get("surely_unwritten_ms", float("inf")) for r in results["kit"])
    print()
    print(f"baseline bare websockets loop: {bare_fps:,.0f} frames/s (median)")
    print(f"kit recording to a trace:      {kit_fps:,.0f} frames/s (median)")
    print(f"ratio {ratio:.2f} (target >= {TARGET_RATIO:.2f})")
    for name in ("bare", "kit"):
        cpu = statistics.median(r["cpu_us_per_frame"] for r in results[name])
        print(f"client CPU per frame, {name}: {cpu:.1f} us (median)")
    print(
        f"max unwritten: at most {unwritten:.1f} ms, at least {surely:.1f} ms, over all rounds "
        f"(target <= {TARGET_UNWRITTEN_MS:.0f} ms; the bounds differ by the tailer's polling)"
    )
    if ratio < TARGET_RATIO:
        problems.append(f"ratio {ratio:.2f} < {TARGET_RATIO}")
    if unwritten > TARGET_UNWRITTEN_MS:
        problems.append(f"a frame stayed unwritten {unwritten:.1f} ms")
    if problems:
        print("TARGET MISSED: " + "; ".join(problems))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
