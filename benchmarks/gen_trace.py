"""Generate a large, realistic trace for benchmarks: ``python benchmarks/gen_trace.py``.

One session, like a long capture: ``connection_established``, then agent runs back to back.
Each run is a ``user_message`` send and the bridge events of PROTOCOL.md §5 (started,
1-3 thinking steps, 0-2 tool calls, completed), with heartbeats interleaved. Some runs are
broken the ways real ones are: no reply at all, an ``agent_error``, a tool that never
completes, an event sent twice, a stall of a few seconds. Timings are lognormal (tens of
milliseconds between events, hundreds for tools), seeded, so every run of the generator
writes the same file.

Frames go through :func:`netra_ws.trace.frame_record` (the real normalizer) and the header
through :class:`~netra_ws.trace.TraceWriter`, so the file is what a capture would write;
only the per-line flush is skipped, which would make a million lines take minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from netra_ws.trace import TraceWriter, frame_record

DEFAULT_OUT = Path("data/bench/trace_1m.jsonl")
WALL0_NS = 1_757_672_130_000_000_000  # 2025-09-12T10:15:30Z
MONO0_NS = 3_600_000_000_000  # an hour of uptime
TOOLS = ("cost_analyzer", "usage_report", "web_search", "sql_query")


def _run_plan(rng: random.Random) -> list[tuple[str, dict]]:
    """The events of one run after its trigger: (name, payload) pairs, maybe broken."""
    fate = rng.random()
    if fate < 0.02:  # 2 %: no reply at all
        return []
    plan: list[tuple[str, dict]] = [("agent_started", {"status": "started"})]
    for step in range(rng.randint(1, 3)):
        plan.append(
            ("agent_thinking", {"reasoning": "…", "step_number": step + 1, "status": "thinking"})
        )
    for _ in range(rng.choice((0, 1, 1, 2))):
        tool = rng.choice(TOOLS)
        plan.append(("tool_executing", {"tool_name": tool, "parameters": {}}))
        if rng.random() >= 0.01:  # 1 %: the tool never completes
            plan.append(("tool_completed", {"tool_name": tool, "result": {}}))
    end = "agent_error" if fate < 0.03 else "agent_completed"
    plan.append((end, {"status": end.split("_")[1]}))
    if rng.random() < 0.01:  # 1 %: the server sends an event twice
        i = rng.randrange(len(plan))
        plan.insert(i + 1, plan[i])
    return plan


def frames(n: int, seed: int = 937) -> Iterator[tuple[str, str, int]]:
    """Yield ``(direction, text, t_ns)`` for ``n`` frames; t_ns counts from the start."""
    rng = random.Random(seed)
    t = 0
    count = 0
    next_heartbeat_ns = 15 * 10**9  # the server's receive timeout (PROTOCOL.md §4)

    def server_time() -> float:
        return (WALL0_NS + t) / 1e9 - 0.0004  # 0.4 ms of latency

    def status(name: str, data: dict) -> str:
        frame = {"type": name, "data": data, "timestamp": server_time()}
        return json.dumps({**frame, "server_id": None, "correlation_id": None})

    def event(name: str, run_id: str, payload: dict) -> str:
        stamp = datetime.fromtimestamp(server_time(), tz=UTC).isoformat()
        frame = {"type": name, "run_id": run_id, "user_id": "demo-user-001"}
        return json.dumps(
            {**frame, "agent_name": "supervisor_agent", "timestamp": stamp, "payload": payload}
        )

    t += 1_000_000
    yield "receive", status("connection_established", {"mode": "main"}), t
    count += 1
    run_no = 0
    while count < n:
        run_no += 1
        run_id = f"run_{run_no:016x}"
        t += int(rng.uniform(0.05, 0.5) * 1e9)
        trigger = {"type": "user_message", "message": f"request {run_no}"}
        yield "send", json.dumps({**trigger, "timestamp": (WALL0_NS + t) / 1e9}), t
        count += 1
        for name, payload in _run_plan(rng):
            if count >= n:
                return
            delay = rng.lognormvariate(-3.0, 0.6)  # ~50 ms between events
            if name == "tool_completed":
                delay = rng.lognormvariate(-1.6, 0.7)  # ~200 ms for a tool
            if rng.random() < 0.002:
                delay += rng.uniform(2, 8)  # a stall
            t += max(1, int(delay * 1e9))
            if t >= next_heartbeat_ns and count < n - 1:
                yield "receive", status("heartbeat", {"connection_id": "main_1"}), t - 1
                count += 1
                next_heartbeat_ns = t + 15 * 10**9
            yield "receive", event(name, run_id, payload), t
            count += 1


def generate(out: Path = DEFAULT_OUT, n: int = 1_000_000, seed: int = 937) -> Path:
    """Write a trace of ``n`` frames to ``out`` (which must not exist) and return its path."""
    writer = TraceWriter(
        out, target="ws://127.0.0.1:8000/api/v1/websocket", labels={"benchmark": "gen_trace"}
    )
    writer.close()  # the header is written; frames are appended below, in bulk
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
    with out.open("a", encoding="utf-8", newline="\n", buffering=1 << 20) as f:
        for seq, (direction, text, t) in enumerate(frames(n, seed), start=1):
            record = frame_record(
                seq, direction, text, t_wall_ns=WALL0_NS + t, t_mono_ns=MONO0_NS + t
            )
            f.write(dumps(record) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=937)
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args(argv)
    if args.out.exists():
        if not args.force:
            print(f"{args.out} exists; pass --force to replace it", file=sys.stderr)
            return 1
        args.out.unlink()
    started = time.perf_counter()
    generate(args.out, args.frames, args.seed)
    size = args.out.stat().st_size / 1e6
    took = time.perf_counter() - started
    print(f"wrote {args.frames:,} frames to {args.out} ({size:.0f} MB) in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
