"""Recording at wire speed: buffered frames, bursts written as received, the flush deadline.

The Session's reader hands frames to TraceWriter.frame(..., flush=False) and flushes once
per burst (as soon as the stream pauses, at the latest 5 ms after the oldest frame). These
tests pin what that must never cost: the order and content of the trace, the normalized
fields (in memory, and from read_trace for frames a burst wrote without them), and that a
received frame reaches the file while the session is still open.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pandas as pd
from conftest import run, t

from netra_ws import connect, read_trace
from netra_ws.trace import TraceWriter, complete_frame_record, frame_record

THINKING = json.dumps(
    {
        "type": "agent_thinking",
        "run_id": "run_1",
        "user_id": "u-1",
        "agent_name": "supervisor_agent",
        "timestamp": "2025-09-12T10:15:31.250000+00:00",
        "payload": {"reasoning": "why", "step_number": 1},
    }
)


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_buffered_frames_reach_the_file_on_flush_in_order(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        first = tw.frame("receive", THINKING, t_wall_ns=1, t_mono_ns=1, flush=False)
        tw.frame("receive", b"\x01", t_wall_ns=2, t_mono_ns=2, flush=False)
        assert len(lines_of(tw.path)) == 1  # only the header so far
        assert "event" not in first  # normalized when written, or when asked for
        assert complete_frame_record(first)["event"] == "agent_thinking"
        tw.flush()
        assert [r.get("seq") for r in lines_of(tw.path)[1:]] == [1, 2]
        tw.frame("receive", THINKING, t_wall_ns=3, t_mono_ns=3, flush=False)
        tw.mark("a mark flushes what is buffered before it")
        assert [r["kind"] for r in lines_of(tw.path)[1:]] == ["frame", "frame", "frame", "mark"]
        tw.frame("receive", THINKING, t_wall_ns=4, t_mono_ns=4, flush=False)
    # close() wrote the last one; every line is what frame_record() makes
    written = lines_of(tw.path)[1:]
    assert written[4] == frame_record(4, "receive", THINKING, t_wall_ns=4, t_mono_ns=4)
    assert written[0] == frame_record(1, "receive", THINKING, t_wall_ns=1, t_mono_ns=1)
    assert tw.records == written


def test_a_burst_is_written_as_received_and_read_back_normalized(tmp_path: Path):
    texts = [THINKING, "{not json", json.dumps({"type": "ack", "received_type": "x"})] * 40
    with TraceWriter(tmp_path / "burst.jsonl") as tw:
        for i, text in enumerate(texts, 1):
            tw.frame("receive", text, t_wall_ns=i, t_mono_ns=i, flush=False)
        tw.flush()  # 120 frames at once: a burst
        on_disk = lines_of(tw.path)[1:]
    assert all("event" not in r and "parse_error" not in r for r in on_disk)
    expected = [
        frame_record(i, "receive", text, t_wall_ns=i, t_mono_ns=i)
        for i, text in enumerate(texts, 1)
    ]
    assert tw.records == expected  # in memory, the fields are added when asked for
    trace = read_trace(tw.path)
    df = trace.to_frame()
    assert df["event"].tolist()[:3] == ["agent_thinking", pd.NA, "ack"]
    assert df["parse_error"].iloc[1].startswith("not JSON")
    assert df["run_id"].iloc[0] == "run_1"
    assert df["server_ts"].iloc[0] == expected[0]["server_ts"]
    assert trace.frames == expected


def test_a_received_frame_is_on_disk_within_the_flush_deadline(server, tmp_path: Path):
    """Durability: the reader buffers, but never for long; the session stays open here."""
    path = tmp_path / "live.jsonl"

    async def scenario() -> list[dict]:
        async with connect(server.url, trace=path) as session:
            first = await session.next(timeout=t(5))
            # Poll the file while the session is open and idle: no close, no send, no
            # mark, nothing else would flush it. Generous: this is not a speed test.
            deadline = time.monotonic() + t(5)
            while time.monotonic() < deadline:
                frames = [r for r in lines_of(path) if r["kind"] == "frame"]
                if frames:
                    return [frames[0], first.record]
                await asyncio.sleep(0.01)
            return []

    found = run(scenario())
    assert found, "the received frame never reached the trace file while the session was open"
    on_disk, in_memory = found
    assert on_disk == in_memory
    assert on_disk["event"] == "connection_established"


def test_a_session_records_a_burst_completely_and_in_order(make_server, tmp_path: Path):
    srv = make_server()
    path = tmp_path / "many.jsonl"

    async def scenario() -> list[str | None]:
        async with connect(srv.url, trace=path) as session:
            await session.next(timeout=t(5))
            for i in range(300):  # each is answered: a burst of acks and pongs
                await session.send({"type": "ping", "timestamp": i})
            got = await session.collect(
                until=lambda r: (
                    r.record.get("event") == "pong"
                    and r.event.payload.get("original_timestamp") == 299
                ),
                timeout=t(10),
            )
            return got.names

    names = run(scenario())
    assert names.count("pong") == 300
    frames = read_trace(path).frames
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))
    assert sum(1 for f in frames if f["dir"] == "receive" and f["event"] == "pong") == 300


def test_burst_lines_are_exactly_what_json_dumps_writes(tmp_path: Path):
    texts = ['{"a":"é\\n\\u0001\\"q\\""}', 'x"y\\z', "\ud800x", "", "tab\there"] * 20
    with TraceWriter(tmp_path / "burst.jsonl") as tw:
        for i, text in enumerate(texts, 1):
            tw.frame("receive", text, t_wall_ns=i, t_mono_ns=i, flush=False)
        tw.frame("send", b"\x00bin", t_wall_ns=0, t_mono_ns=0, flush=False)
        raw = [dict(r) for r in tw._pending]  # as they are before the flush (private: test only)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    # The file keeps a lone surrogate as its \uXXXX escape, as TraceWriter always did.
    written = tw.path.read_bytes().splitlines()[1:]
    assert written == [dumps(r).encode("utf-8", "backslashreplace") for r in raw]
