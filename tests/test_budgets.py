"""Budgets (Issue #22): a server the user does not control cannot exhaust the kit.

Each test meets a hostile server of tests/helpers/hostile.py (raw sockets, 127.0.0.1, port
0) or drives the writer directly, and fails on the code before the budgets: frames recorded
whole, a trace without end, a collect() kept past its timeout by frames that keep coming,
every unread frame held in memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time

import pytest
from conftest import run, t
from helpers.hostile import HostileServer, deflate_flood, frame, welcome_then

import netra_ws.client as client_module
from netra_ws import Limits, connect
from netra_ws.cli import _trust, build_parser
from netra_ws.errors import TraceBudgetReached
from netra_ws.probes import probe_workflow
from netra_ws.target import resolve_target
from netra_ws.trace import BUDGET_MARK, TraceWriter, read_trace
from netra_ws.verdicts import connection_end, connection_problem


def _thinking(n: int, pad: int) -> bytes:
    return json.dumps({"type": "agent_thinking", "data": {"n": n, "pad": "y" * pad}}).encode()


# --- the writer ---------------------------------------------------------------------------------


def test_a_frame_over_the_record_limit_keeps_its_start_size_and_sha256(tmp_path):
    text = '{"type":"agent_thinking","data":{"thought":"' + "é" * 3000 + '"}}'
    whole = text.encode()
    with TraceWriter(tmp_path / "t.jsonl", limits=Limits(record_limit=1001)) as writer:
        record = writer.frame("receive", text, t_wall_ns=1, t_mono_ns=2)
        small = writer.frame("receive", '{"type":"x"}', t_wall_ns=3, t_mono_ns=4)
    assert record["truncated"] is True and record["size"] == len(whole)
    assert record["sha256"] == hashlib.sha256(whole).hexdigest()
    # 1001 bytes end inside a two-byte "é": the half character is left out.
    assert record["data"].encode() == whole[:1000]
    assert "over the recording limit of 1,001" in record["parse_error"]
    assert "truncated" not in small and small["event"] == "x"
    stored = read_trace(tmp_path / "t.jsonl").frames[0]
    assert {k: stored[k] for k in ("size", "truncated", "sha256", "data")} == {
        k: record[k] for k in ("size", "truncated", "sha256", "data")
    }


def test_a_binary_frame_over_the_limit_keeps_its_first_bytes_in_base64():
    raw = bytes(range(256)) * 10
    writer = TraceWriter(None, limits=Limits(record_limit=100))
    record = writer.frame("receive", raw, t_wall_ns=1, t_mono_ns=2)
    assert record["opcode"] == "binary" and record["size"] == 2560 and record["truncated"]
    assert record["sha256"] == hashlib.sha256(raw).hexdigest()
    assert "binary frame of 2,560 bytes" in record["parse_error"]


def test_the_trace_budget_ends_recording_with_a_mark_and_counts_the_rest(tmp_path):
    path = tmp_path / "t.jsonl"
    writer = TraceWriter(path, limits=Limits(trace_budget=2000))
    recorded = 0
    with pytest.raises(TraceBudgetReached, match="trace budget"):
        for n in range(100):
            writer.frame("receive", _thinking(n, 300).decode(), t_wall_ns=n, t_mono_ns=n)
            recorded += 1
    assert writer.over_budget and recorded == 4  # 4 x (about 330 + 300) bytes reach 2000
    with pytest.raises(TraceBudgetReached):
        writer.frame("send", "{}", t_wall_ns=1, t_mono_ns=1)
    writer.close()
    records = read_trace(path).records
    assert [r["kind"] for r in records] == ["frame"] * 4 + ["mark", "mark"]
    assert records[4]["label"] == BUDGET_MARK and records[4]["frames"] == 4
    assert records[5]["label"] == "frames not recorded after the trace budget"
    assert records[5]["frames"] == 2
    # The frames' lines stay within the budget and the one frame that reached it.
    lines = path.read_text().splitlines()
    frame_lines = [len(line) for line in lines if line.startswith('{"kind":"frame"')]
    assert sum(frame_lines) <= 2000 + max(frame_lines)


def test_limits_refuse_nonsense_and_the_cli_sizes_reach_the_target():
    with pytest.raises(ValueError, match="record_limit must be a positive number"):
        Limits(record_limit=0)
    flags = ["--trace-budget", "40KiB", "--record-limit", "none", "--follow-redirects"]
    args = build_parser().parse_args(["probe", "ws://127.0.0.1:1/x", *flags])
    trust = _trust(args)
    assert trust["follow_redirects"] is True
    assert trust["limits"] == Limits(record_limit=None, trace_budget=40 << 10)
    with resolve_target("ws://127.0.0.1:1/x", **trust) as target:
        options = target.connect_options()
    assert options["limits"] == trust["limits"] and options["follow_redirects"] is True
    with pytest.raises(SystemExit):
        build_parser().parse_args(["probe", "--frame-limit", "1.5GB"])


# --- sessions against hostile servers -------------------------------------------------------


def test_a_session_past_its_budget_closes_1001_and_no_verdict_rests_on_the_cut(tmp_path):
    flood = [frame(0x1, _thinking(n, 2000)) for n in range(200)]
    limits = Limits(trace_budget=50_000)
    path = tmp_path / "t.jsonl"

    async def go():
        async with connect(srv.url, trace=path, limits=limits) as session:
            return await session.collect(None, timeout=t(3))

    with HostileServer(welcome_then(*flood, linger=t(3))) as srv:
        got = run(go())
        result = run(probe_workflow(resolve_target(srv.url, limits=limits), out=None, timeout=t(3)))
    assert got.reason == "closed"
    records = read_trace(path).records
    frames = [r for r in records if r["kind"] == "frame"]
    assert 20 <= len(frames) <= 25 and len(got) == len(frames)
    assert path.stat().st_size < 50_000 + 5_000
    close = next(r for r in records if r["kind"] == "close")
    assert close["initiated_by"] == "client" and close["sent_code"] == 1001
    assert close["stopped_by"] == "trace budget"
    assert connection_end(records).kind == "accepted"  # the kit closed it, not the server
    assert (connection_problem(records) or "").startswith("the kit stopped recording")
    # The workflow probe against the same flood: the cut run is not a finding.
    assert result.status == "inconclusive", result.explanation
    assert result.explanation.startswith("the kit stopped recording: its trace budget")


def test_a_compressed_flood_of_huge_frames_is_refused_at_the_frame_limit(tmp_path):
    # Issue #22's flood: 24 frames of 60 MiB, about 1.5 MB on the wire.
    path = tmp_path / "t.jsonl"

    async def go():
        async with connect(srv.url, trace=path) as session:
            started = time.perf_counter()
            got = await session.collect(None, timeout=t(5))
            return got, time.perf_counter() - started

    with HostileServer(deflate_flood(24, 60 << 20, linger=t(10))) as srv:
        got, took = run(go())
    assert got.reason == "closed" and took < t(5)
    end = connection_end(read_trace(path).records)
    assert end.kind == "failed" and end.close_code == 1009
    assert end.words.startswith("the server sent a frame over the client's size limit")
    assert path.stat().st_size < 10_000


def test_collect_returns_on_time_while_big_compressed_frames_keep_coming():
    # 15 MiB frames (under the frame limit), 15 kB each on the wire: inflating, decoding and
    # hashing one takes a tenth of a second. Before, the reader took every frame websockets
    # held (16) without letting the loop run, and recorded each whole: seconds late.
    async def go():
        async with connect(srv.url) as session:
            started = time.perf_counter()
            got = await session.collect(None, timeout=1.0)
            return got, time.perf_counter() - started

    with HostileServer(deflate_flood(60, 15 << 20, linger=t(10))) as srv:
        got, took = run(go())
    assert got.reason == "timeout" and len(got) >= 2
    assert took < 1.0 + t(0.5), took


def test_unread_frames_are_spilled_to_the_trace_and_come_back_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(client_module, "_SPILL_AT", 20_000)
    sent = [_thinking(n, 400) for n in range(300)]

    async def go():
        async with connect(srv.url, trace=tmp_path / "t.jsonl") as session:
            while session.frames_received < 301 and not session.closed:
                await asyncio.sleep(0.01)
            spilled = sum(isinstance(entry, int) for entry in session._pending)
            got = await session.collect(None, timeout=t(1))
            left = len(session._pending) + len(session._ready_items)
            return spilled, got, left, session._writer._records

    with HostileServer(welcome_then(*(frame(0x1, s) for s in sent), linger=t(2))) as srv:
        spilled, got, left, kept = run(go())
    assert spilled > 200  # nobody read: all but the last ~20 kB left memory for the file
    assert [r.data.encode() for r in got.frames[1:]] == sent  # every one back, in order
    assert [r.seq for r in got.frames] == list(range(1, 302))
    assert left == 0 and kept == []  # handed out: the session keeps no copy


def test_a_trace_writer_given_brings_its_limits_to_the_connection():
    writer = TraceWriter(None, limits=Limits(frame_limit=1000))

    async def go():
        async with connect(srv.url, trace=writer) as session:
            return await session.collect(None, timeout=t(3))

    with HostileServer(welcome_then(frame(0x1, _thinking(0, 5000)), linger=t(3))) as srv:
        got = run(go())
    assert got.reason == "closed" and len(got) == 1  # the welcome; the big frame refused
    close = next(r for r in writer.records if r["kind"] == "close")
    assert close["sent_code"] == 1009
    with pytest.raises(ValueError, match="pass them to the TraceWriter"):
        connect("ws://127.0.0.1:1/x", trace=writer, limits=Limits())


def test_a_file_writer_follows_its_trace_a_few_new_lines_at_a_time(tmp_path):
    # A console asks for the received frames 50 times a second: only what is new is parsed.
    with TraceWriter(tmp_path / "t.jsonl") as writer:
        writer.frame("receive", '{"type":"a"}', t_wall_ns=1, t_mono_ns=1)
        first = writer.records_since(0)
        writer.frame("receive", '{"type":"b"}', t_wall_ns=2, t_mono_ns=2, flush=False)
        assert [r["event"] for r in writer.records_since(len(first))] == ["b"]
        assert writer._records[0] is first[0]  # parsed once, kept once asked for
    assert [r["seq"] for r in writer.records] == [1, 2]
