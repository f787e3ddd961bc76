"""Tests for netra_ws.trace: the writer, the tolerant reader, the DataFrame and Parquet views."""

from __future__ import annotations

import base64
import json
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from netra_ws import trace as trace_module
from netra_ws.errors import FrameParseError, TraceFormatError
from netra_ws.events import normalize
from netra_ws.redact import REDACTED
from netra_ws.trace import (
    FORMAT,
    FRAME_COLUMNS,
    MARK_COLUMNS,
    Trace,
    TraceWarning,
    TraceWriter,
    frame_record,
    load_traces,
    read_parquet,
    read_trace,
)

# Realistic frames (PROTOCOL.md §3 and §4).
USER_MESSAGE = json.dumps(
    {"type": "user_message", "user_id": "demo-user-001", "message": "hi", "timestamp": 1757672130}
)
CONNECTION_ESTABLISHED = json.dumps(
    {
        "type": "connection_established",
        "data": {
            "mode": "main",
            "user_id": "demo-use...",
            "connection_id": "main_3f9c2a71",
            "golden_path_events": [
                "agent_started",
                "agent_thinking",
                "tool_executing",
                "tool_completed",
                "agent_completed",
            ],
            "features": {},
            "timestamp": "2025-09-12T10:15:30.000000+00:00",
        },
        "timestamp": 1757672130.123456,
        "server_id": None,
        "correlation_id": None,
    }
)
TOOL_EXECUTING = json.dumps(
    {
        "type": "tool_executing",
        "run_id": "run_8c1d",
        "user_id": "demo-user-001",
        "agent_name": "triage_agent",
        "timestamp": "2025-09-12T10:15:31.250000+00:00",
        "payload": {
            "tool_name": "log_search",
            "parameters": {"query": "websocket errors"},
            "status": "executing",
            "message": "Searching logs",
        },
    }
)
TOOL_EXECUTING_TS = datetime(2025, 9, 12, 10, 15, 31, 250000, tzinfo=UTC).timestamp()

FIELD_KEYS = (
    "event",
    "type",
    "envelope",
    "run_id",
    "thread_id",
    "user_id",
    "agent_name",
    "tool_name",
    "error_code",
    "server_ts",
)
STRING_COLUMNS = [name for name, dtype in FRAME_COLUMNS.items() if dtype == "string"]


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def dtypes_of(df: pd.DataFrame) -> dict[str, str]:
    # str() tells "string" (NA) from "str" (NaN), which == against "string" does not.
    return {name: str(dtype) for name, dtype in df.dtypes.items()}


WALL0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
MONO0 = 1_000_000_000


def at(seconds: float) -> dict[str, int]:
    """Both clocks, ``seconds`` after the sample trace's open record."""
    ns = round(seconds * 1e9)
    return {"t_wall_ns": WALL0 + ns, "t_mono_ns": MONO0 + ns}


def write_sample(path: Path, *, session: str = "s-sample") -> Path:
    """A small trace with hand-picked clocks, so the DataFrame values can be checked."""
    with TraceWriter(path, target="ws://127.0.0.1:8000/ws", session=session) as tw:
        tw.record("open", **at(0), status=101)  # line 2 (line 1 is the header)
        tw.frame("receive", CONNECTION_ESTABLISHED, **at(0.25))
        tw.frame("send", USER_MESSAGE, **at(0.5))
        tw.mark("waiting for agent events", **at(0.6))
        tw.frame("receive", TOOL_EXECUTING, **at(2.0))
        tw.frame("receive", b"\x00\xffabc", **at(2.1))  # line 7
    return path


def now_clocks() -> tuple[int, int]:
    return time.time_ns(), time.perf_counter_ns()


# --- frame_record --------------------------------------------------------------------------


def test_frame_record_of_a_bridge_agent_event_has_the_normalized_fields():
    record = frame_record(7, "receive", TOOL_EXECUTING, t_wall_ns=11, t_mono_ns=22)

    assert list(record)[:5] == ["kind", "seq", "dir", "t_wall_ns", "t_mono_ns"]
    assert [record[k] for k in ("kind", "seq", "dir", "t_wall_ns", "t_mono_ns")] == [
        "frame", 7, "receive", 11, 22,
    ]  # fmt: skip
    assert record["opcode"] == "text"
    assert record["size"] == len(TOOL_EXECUTING.encode("utf-8"))
    assert record["data"] == TOOL_EXECUTING
    assert set(FIELD_KEYS) <= record.keys()
    assert record["event"] == "tool_executing"
    assert record["envelope"] == "bridge"
    assert record["run_id"] == "run_8c1d"
    assert record["tool_name"] == "log_search"
    assert record["agent_name"] == "triage_agent"
    assert record["thread_id"] is None
    assert record["server_ts"] == pytest.approx(TOOL_EXECUTING_TS, abs=1e-6)
    assert "parse_error" not in record


@pytest.mark.parametrize("text", ["hello, not json", "[1, 2]", '"just a string"'])
def test_frame_record_keeps_unparseable_text_raw_with_the_parse_error(text: str):
    with pytest.raises(FrameParseError) as excinfo:
        normalize(text)

    record = frame_record(1, "receive", text, t_wall_ns=1, t_mono_ns=2)

    assert record["data"] == text
    assert record["opcode"] == "text"
    assert record["parse_error"] == excinfo.value.reason
    assert not set(FIELD_KEYS) & record.keys()


def test_frame_record_of_a_json_array_says_array():
    record = frame_record(1, "send", "[1, 2]", t_wall_ns=1, t_mono_ns=2)
    assert record["parse_error"] == "JSON array, not an object"


def test_frame_record_of_a_binary_frame_is_base64_and_not_parsed():
    payload = b"\x00\xffabc"
    record = frame_record(3, "receive", payload, t_wall_ns=1, t_mono_ns=2)

    assert record["opcode"] == "binary"
    assert record["size"] == 5
    assert record["data"] == "AP9hYmM="
    assert base64.b64decode(record["data"]) == payload
    assert record["parse_error"] == "binary frame (5 bytes), not parsed"
    assert "event" not in record


def test_frame_record_size_counts_utf8_bytes_not_characters():
    text = '{"type":"user_message","message":"héllo ✓"}'
    record = frame_record(1, "send", text, t_wall_ns=1, t_mono_ns=2)
    assert len(text) == 43
    assert record["size"] == 46  # é is 2 bytes, ✓ is 3
    assert record["event"] == "user_message"


def test_frame_record_rejects_a_bad_direction_and_bad_data():
    with pytest.raises(ValueError, match="'send' or 'receive'"):
        frame_record(1, "recv", "{}", t_wall_ns=1, t_mono_ns=2)
    with pytest.raises(TypeError, match=r"str .* or bytes"):
        frame_record(1, "send", 42, t_wall_ns=1, t_mono_ns=2)  # type: ignore[arg-type]


def test_a_normalizer_bug_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch):
    def broken(frame: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(trace_module, "normalize", broken)
    record = frame_record(1, "receive", TOOL_EXECUTING, t_wall_ns=1, t_mono_ns=2)
    assert record["parse_error"] == "normalizer failed: RuntimeError: boom"
    assert record["data"] == TOOL_EXECUTING


# --- TraceWriter ---------------------------------------------------------------------------


def test_meta_header_creates_parent_dirs_and_strips_secrets_from_the_target(tmp_path: Path):
    path = tmp_path / "nested" / "deeper" / "run.jsonl"
    before = datetime.now(UTC)
    with TraceWriter(
        path,
        target="wss://alice:pw@staging.example/api/v1/websocket?token=eyJabc.def.ghi#x",
        session="sess-1",
        labels={"probe": "negative", "attempt": 2},
    ) as tw:
        assert tw.path == path
        assert tw.session == "sess-1"
    after = datetime.now(UTC)

    (meta,) = lines_of(path)
    assert list(meta) == ["kind", "format", "session", "target", "started_at", "labels", "writer"]
    assert meta["kind"] == "meta"
    assert meta["format"] == FORMAT == "netra-ws-trace/1"
    assert meta["session"] == "sess-1"
    assert meta["target"] == "wss://staging.example/api/v1/websocket"
    assert meta["labels"] == {"probe": "negative", "attempt": 2}
    try:
        version = metadata.version("netra-ws")
    except metadata.PackageNotFoundError:
        version = "dev"
    assert meta["writer"] == f"netra_ws {version}"
    started = datetime.fromisoformat(meta["started_at"])
    assert started.utcoffset() == timedelta(0)
    assert len(meta["started_at"].split(".")[1]) == len("123456+00:00")  # microseconds
    assert before <= started <= after


def test_a_generated_session_is_a_short_hex_and_unique(tmp_path: Path):
    with TraceWriter(tmp_path / "a.jsonl") as a, TraceWriter(tmp_path / "b.jsonl") as b:
        pass
    assert len(a.session) == 12
    int(a.session, 16)
    assert a.session != b.session
    assert lines_of(a.path)[0]["session"] == a.session
    assert lines_of(a.path)[0]["target"] == ""


def test_seq_starts_at_one_and_counts_both_directions(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        sent = tw.frame("send", USER_MESSAGE, t_wall_ns=1, t_mono_ns=1)
        tw.frame("receive", CONNECTION_ESTABLISHED, t_wall_ns=2, t_mono_ns=2)
        tw.mark("between")
        tw.frame("receive", TOOL_EXECUTING, t_wall_ns=3, t_mono_ns=3)
        tw.frame("send", b"\x01", t_wall_ns=4, t_mono_ns=4)

    frames = [r for r in lines_of(tw.path) if r["kind"] == "frame"]
    assert [(r["seq"], r["dir"]) for r in frames] == [
        (1, "send"),
        (2, "receive"),
        (3, "receive"),
        (4, "send"),
    ]
    assert sent == frames[0]  # frame() returns exactly what was written


def test_a_rejected_frame_does_not_use_up_a_seq(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        with pytest.raises(ValueError, match="direction"):
            tw.frame("inbound", "{}", t_wall_ns=1, t_mono_ns=1)
        record = tw.frame("receive", "{}", t_wall_ns=1, t_mono_ns=1)
    assert record["seq"] == 1
    assert len(lines_of(tw.path)) == 2


def test_text_and_binary_frames_round_trip_through_the_file(tmp_path: Path):
    text = '{"type":"agent_thinking","payload":{"reasoning":"Überprüfe ✓ 日本"}}'
    blob = bytes(range(256))
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        tw.frame("receive", text, t_wall_ns=1, t_mono_ns=1)
        tw.frame("receive", blob, t_wall_ns=2, t_mono_ns=2)

    raw = tw.path.read_bytes()
    assert "Überprüfe ✓ 日本".encode() in raw  # ensure_ascii=False: readable in the file
    assert b'"seq":1,"dir":"receive"' in raw  # compact separators
    text_frame, binary_frame = read_trace(tw.path).frames
    assert text_frame["data"] == text
    assert text_frame["size"] == len(text.encode("utf-8"))
    assert text_frame["event"] == "agent_thinking"
    assert base64.b64decode(binary_frame["data"]) == blob
    assert binary_frame["size"] == 256
    assert binary_frame["opcode"] == "binary"


def test_open_close_error_records_with_explicit_and_default_timestamps(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        opened = tw.record("open", t_wall_ns=10, t_mono_ns=20, status=101, subprotocol="jwt-auth")
        wall_before, mono_before = now_clocks()
        closed = tw.record("close", code=1008, reason="Authentication failed")
        wall_after, mono_after = now_clocks()
        error = tw.record("error", stage="receive", message="connection reset")

    assert opened == {
        "kind": "open",
        "t_wall_ns": 10,
        "t_mono_ns": 20,
        "status": 101,
        "subprotocol": "jwt-auth",
    }
    assert closed["kind"] == "close"
    assert (closed["code"], closed["reason"]) == (1008, "Authentication failed")
    assert wall_before <= closed["t_wall_ns"] <= wall_after
    assert mono_before <= closed["t_mono_ns"] <= mono_after
    assert error["kind"] == "error"
    assert lines_of(tw.path)[1:] == [opened, closed, error]


@pytest.mark.parametrize("kind", ["frame", "mark", "meta", "opened", ""])
def test_record_rejects_other_kinds(tmp_path: Path, kind: str):
    with TraceWriter(tmp_path / "run.jsonl") as tw, pytest.raises(ValueError, match="'open'"):
        tw.record(kind)
    assert len(lines_of(tw.path)) == 1


def test_mark_records_a_label_fields_and_now(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        wall_before, mono_before = now_clocks()
        mark = tw.mark("negative probe: quiet window 5 s begins", window_s=5)
        wall_after, mono_after = now_clocks()
        with pytest.raises(ValueError, match="'kind'"):
            tw.mark("bad", kind="frame")

    assert list(mark) == ["kind", "label", "t_wall_ns", "t_mono_ns", "window_s"]
    assert mark["kind"] == "mark"
    assert mark["label"] == "negative probe: quiet window 5 s begins"
    assert mark["window_s"] == 5
    assert wall_before <= mark["t_wall_ns"] <= wall_after
    assert mono_before <= mark["t_mono_ns"] <= mono_after
    assert lines_of(tw.path)[1:] == [mark]


def test_every_line_is_on_disk_while_the_writer_is_still_open(tmp_path: Path):
    tw = TraceWriter(tmp_path / "run.jsonl", session="live")
    try:
        assert len(lines_of(tw.path)) == 1
        tw.record("open", status=101)
        assert lines_of(tw.path)[-1]["kind"] == "open"
        tw.frame("receive", CONNECTION_ESTABLISHED, t_wall_ns=1, t_mono_ns=1)
        assert lines_of(tw.path)[-1]["event"] == "connection_established"
        tw.mark("m")
        loaded = read_trace(tw.path)
        assert [r["kind"] for r in loaded.records] == ["open", "frame", "mark"]
        assert loaded.session == "live"
    finally:
        tw.close()


def test_an_existing_file_is_never_overwritten(tmp_path: Path):
    path = tmp_path / "run.jsonl"
    path.write_text("precious evidence\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="pick a new file name"):
        TraceWriter(path)
    assert path.read_text(encoding="utf-8") == "precious evidence\n"


def test_writing_after_close_raises_and_close_is_idempotent(tmp_path: Path):
    tw = TraceWriter(tmp_path / "run.jsonl")
    assert not tw.closed
    tw.close()
    tw.close()
    assert tw.closed
    with pytest.raises(ValueError, match="is closed"):
        tw.frame("send", "{}", t_wall_ns=1, t_mono_ns=1)
    with pytest.raises(ValueError, match="is closed"):
        tw.record("close", code=1000)
    with pytest.raises(ValueError, match="is closed"):
        tw.mark("late")
    assert len(lines_of(tw.path)) == 1


def test_the_context_manager_closes_the_writer(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        assert not tw.closed
    assert tw.closed


def test_values_json_cannot_hold_are_written_as_text(tmp_path: Path):
    when = datetime(2025, 9, 12, 10, 15, 30, tzinfo=UTC)
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        tw.record(
            "error",
            exception=ValueError("boom"),
            when=when,
            where=Path("/tmp/x"),
            tags=("a", "b"),
            nested={1: {"deep": {3.5}}},
        )
    error = lines_of(tw.path)[1]
    assert error["exception"] == "boom"
    assert error["when"] == str(when)
    assert error["where"] == str(Path("/tmp/x"))
    assert error["tags"] == ["a", "b"]
    assert error["nested"] == {"1": {"deep": [3.5]}}


def test_the_writer_redacts_evidence_fields_but_never_frame_data(tmp_path: Path):
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl"
    with TraceWriter(tmp_path / "run.jsonl", labels={"token_used": jwt}) as tw:
        opened = tw.record(
            "open",
            request_headers={"Authorization": f"Bearer {jwt}", "User-Agent": "netra_ws"},
            response_headers=[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
            subprotocol=f"jwt.{jwt}",
            url="wss://host/ws?token=secret",
        )
        marked = tw.mark(f"sending {jwt}")
        frame_text = json.dumps({"type": "echo", "auth": f"Bearer {jwt}"})
        tw.frame("send", frame_text, t_wall_ns=1, t_mono_ns=1)

    text = tw.path.read_text(encoding="utf-8")
    meta, open_line, mark_line, frame_line = lines_of(tw.path)
    assert meta["labels"] == {"token_used": REDACTED}
    assert open_line == opened
    assert opened["request_headers"] == {"Authorization": REDACTED, "User-Agent": "netra_ws"}
    assert opened["response_headers"] == {"Set-Cookie": f"{REDACTED}, {REDACTED}"}
    assert opened["subprotocol"] == f"jwt.{REDACTED}"
    assert opened["url"] == "wss://host/ws"
    assert mark_line == marked
    assert marked["label"] == f"sending {REDACTED}"
    assert frame_line["data"] == frame_text  # raw frame data is evidence: never altered
    assert text.count(jwt) == 1


def test_a_lone_surrogate_does_not_crash_the_recording(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        record = tw.frame("receive", "\ud800x", t_wall_ns=1, t_mono_ns=1)
    assert record["size"] == 4
    assert record["parse_error"].startswith("not JSON")
    assert read_trace(tw.path).frames[0]["data"] == "\ud800x"


def test_concurrent_writers_never_interleave_lines_or_repeat_seq(tmp_path: Path):
    tw = TraceWriter(tmp_path / "run.jsonl")

    def pump(direction: str) -> None:
        for _ in range(300):
            tw.frame(direction, USER_MESSAGE, t_wall_ns=1, t_mono_ns=1)
            tw.mark(direction)

    threads = [threading.Thread(target=pump, args=(d,)) for d in ("send", "receive")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tw.close()

    records = lines_of(tw.path)  # raises if any line were interleaved
    seqs = [r["seq"] for r in records if r["kind"] == "frame"]
    assert seqs == list(range(1, 601))
    assert len(records) == 1 + 600 + 600


def test_an_in_memory_writer_keeps_records_without_a_file(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with TraceWriter(None, target="ws://h/ws?x=1", session="mem") as tw:
        tw.frame("send", USER_MESSAGE, t_wall_ns=1, t_mono_ns=5)
        tw.mark("m", t_wall_ns=2, t_mono_ns=7)
    assert tw.path is None
    assert list(tmp_path.iterdir()) == []
    assert tw.meta["target"] == "ws://h/ws"
    assert [r["kind"] for r in tw.records] == ["frame", "mark"]
    trace = tw.to_trace()
    assert trace.path is None
    assert trace.session == "mem"
    assert trace.to_frame()["event"].tolist() == ["user_message"]


def test_the_writer_keeps_in_memory_exactly_what_it_wrote(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl", labels={"n": 1}) as tw:
        tw.record("open", status=101)
        tw.frame("receive", CONNECTION_ESTABLISHED, t_wall_ns=1, t_mono_ns=2)
        tw.frame("receive", b"\x00", t_wall_ns=3, t_mono_ns=4)
        tw.mark("m", when=datetime(2025, 1, 1, tzinfo=UTC))
    loaded = read_trace(tw.path)
    assert tw.meta == loaded.meta
    assert tw.records == loaded.records
    assert tw.to_trace().to_frame().equals(loaded.to_frame())


# --- read_trace ----------------------------------------------------------------------------


def test_read_trace_returns_meta_records_and_filters(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean trace reads without any warning
        trace = read_trace(str(path))

    assert trace.path == path
    assert trace.meta["kind"] == "meta"
    assert trace.session == "s-sample"
    assert trace.target == "ws://127.0.0.1:8000/ws"
    assert trace.skipped_lines == 0
    assert [r["kind"] for r in trace.records] == [
        "open",
        "frame",
        "frame",
        "mark",
        "frame",
        "frame",
    ]
    assert [r["seq"] for r in trace.frames] == [1, 2, 3, 4]
    assert [m["label"] for m in trace.marks] == ["waiting for agent events"]


def test_a_trace_cut_mid_line_loads_with_one_warning(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")  # 7 lines
    with path.open("a", encoding="utf-8") as f:
        f.write('{"kind":"frame","seq":5,"dir":"rece')  # the crash hit mid-write

    with pytest.warns(TraceWarning) as caught:
        trace = read_trace(path)

    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: skipped 1 unreadable line(s) (line 8: truncated last line)"
    )
    assert trace.skipped_lines == 1
    assert [r["seq"] for r in trace.frames] == [1, 2, 3, 4]
    assert trace.session == "s-sample"


def test_garbage_lines_in_the_middle_are_counted_and_listed(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    garbage = [
        b"this is not json\n",
        b"[1, 2, 3]\n",
        b'{"no_kind": true}\n',
        b'{"kind": 5}\n',
        b'{"kind": "fr\xffme"}\n',  # not UTF-8
    ]
    path.write_bytes(b"".join(lines[:3] + garbage + lines[3:]))

    with pytest.warns(TraceWarning) as caught:
        trace = read_trace(path)

    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: skipped 5 unreadable line(s) (line 4: not JSON; line 5: not a JSON object; "
        "line 6: no string 'kind'; and 2 more)"
    )
    assert trace.skipped_lines == 5
    assert len(trace.frames) == 4
    assert len(trace.records) == 6


def test_blank_lines_are_ignored_silently(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")
    path.write_text(
        path.read_text(encoding="utf-8").replace("\n", "\n\n", 2) + "\n  \n", encoding="utf-8"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trace = read_trace(path)
    assert trace.skipped_lines == 0
    assert len(trace.frames) == 4


def test_an_empty_file_is_not_a_trace(tmp_path: Path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(TraceFormatError, match="empty") as excinfo:
        read_trace(path)
    assert str(path) in str(excinfo.value)


def test_another_tools_json_lines_is_not_a_trace(tmp_path: Path):
    path = tmp_path / "app-log.jsonl"
    path.write_text(
        '{"level": "info", "msg": "started"}\n{"level": "warn", "msg": "slow"}\n',
        encoding="utf-8",
    )
    with pytest.raises(TraceFormatError, match="not a netra-ws trace") as excinfo:
        read_trace(path)
    assert str(path) in str(excinfo.value)


def test_records_of_unknown_kinds_only_are_not_a_trace(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"kind": "log", "x": 1}\n{"kind": "span", "y": 2}\n', encoding="utf-8")
    with pytest.raises(TraceFormatError, match="no 'meta' header and no known record kind"):
        read_trace(path)


def test_an_unknown_format_is_refused(tmp_path: Path):
    path = tmp_path / "future.jsonl"
    path.write_text(
        '{"kind":"meta","format":"netra-ws-trace/2","session":"s"}\n'
        '{"kind":"frame","seq":1,"dir":"send","data":"{}"}\n',
        encoding="utf-8",
    )
    with pytest.raises(TraceFormatError, match="unknown trace format 'netra-ws-trace/2'"):
        read_trace(path)


def test_a_meta_without_format_is_refused(tmp_path: Path):
    path = tmp_path / "noformat.jsonl"
    path.write_text('{"kind":"meta","session":"s"}\n', encoding="utf-8")
    with pytest.raises(TraceFormatError, match="unknown trace format None"):
        read_trace(path)


def test_a_trace_without_its_header_loads_with_empty_meta_and_a_warning(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[1:]), encoding="utf-8")

    with pytest.warns(TraceWarning, match="no 'meta' header") as caught:
        trace = read_trace(path)

    assert len(caught) == 1
    assert trace.meta == {}
    assert trace.session is None
    assert len(trace.frames) == 4
    df = trace.to_frame()
    assert df["session"].isna().all()
    assert dtypes_of(df) == dict(FRAME_COLUMNS)


def test_a_garbled_header_line_gives_both_warnings(tmp_path: Path):
    path = write_sample(tmp_path / "run.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text('{"kind":"meta","for\n' + "".join(lines[1:]), encoding="utf-8")

    with pytest.warns(TraceWarning) as caught:
        trace = read_trace(path)

    messages = [str(w.message) for w in caught]
    assert messages[0] == f"{path}: skipped 1 unreadable line(s) (line 1: not JSON)"
    assert "no 'meta' header (the first record is 'open')" in messages[1]
    assert len(trace.frames) == 4


# --- DataFrame views -----------------------------------------------------------------------


def test_frame_columns_are_the_documented_ones():
    assert list(FRAME_COLUMNS) == [
        "session", "seq", "dir", "t_wall_ns", "t_mono_ns", "t_wall", "t_s", "opcode", "size",
        "event", "type", "envelope", "run_id", "thread_id", "user_id", "agent_name",
        "tool_name", "error_code", "server_ts", "parse_error", "truncated", "sha256", "data",
    ]  # fmt: skip
    assert FRAME_COLUMNS["t_wall"] == "datetime64[ns, UTC]"
    assert FRAME_COLUMNS["server_ts"] == "float64"
    assert {FRAME_COLUMNS[c] for c in ("seq", "t_wall_ns", "t_mono_ns", "size")} == {"Int64"}
    with pytest.raises(TypeError):
        FRAME_COLUMNS["seq"] = "int64"  # type: ignore[index]


def test_to_frame_has_exact_dtypes_and_values(tmp_path: Path):
    df = read_trace(write_sample(tmp_path / "run.jsonl")).to_frame()

    assert list(df.columns) == list(FRAME_COLUMNS)
    assert dtypes_of(df) == dict(FRAME_COLUMNS)
    assert isinstance(df.index, pd.RangeIndex)
    assert df["session"].tolist() == ["s-sample"] * 4
    assert df["seq"].tolist() == [1, 2, 3, 4]
    assert df["dir"].tolist() == ["receive", "send", "receive", "receive"]
    assert df["opcode"].tolist() == ["text", "text", "text", "binary"]
    assert df["size"].tolist() == [
        len(CONNECTION_ESTABLISHED.encode()),
        len(USER_MESSAGE.encode()),
        len(TOOL_EXECUTING.encode()),
        5,
    ]
    # t_s counts from the open record (mono 1.0 s), the first record with a clock.
    assert df["t_s"].tolist() == [0.25, 0.5, 2.0, 2.1]
    assert df["t_wall"].iloc[0] == pd.Timestamp(1_700_000_000_250_000_000, unit="ns", tz="UTC")
    assert df["t_wall"].iloc[2] == pd.Timestamp("2023-11-14 22:13:22+00:00")
    assert df["t_wall_ns"].iloc[3] == 1_700_000_002_100_000_000
    assert df["event"].tolist()[:3] == ["connection_established", "user_message", "tool_executing"]
    assert df["event"].isna().tolist() == [False, False, False, True]
    assert df["envelope"].tolist()[:3] == ["status", "flat", "bridge"]
    assert df["run_id"].iloc[2] == "run_8c1d"
    assert df["tool_name"].iloc[2] == "log_search"
    assert df["server_ts"].iloc[0] == pytest.approx(1757672130.123456, abs=1e-6)
    assert df["server_ts"].iloc[2] == pytest.approx(TOOL_EXECUTING_TS, abs=1e-6)
    assert np.isnan(df["server_ts"].iloc[3])
    assert df["parse_error"].isna().tolist() == [True, True, True, False]
    assert df["parse_error"].iloc[3] == "binary frame (5 bytes), not parsed"
    assert df["data"].iloc[1] == USER_MESSAGE
    assert df["data"].iloc[3] == "AP9hYmM="


def test_t_s_counts_from_the_first_frame_when_there_is_no_open_record(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        tw.frame("send", USER_MESSAGE, t_wall_ns=1, t_mono_ns=5_000_000_000)
        tw.mark("m", t_wall_ns=2, t_mono_ns=5_500_000_000)
        tw.frame("receive", TOOL_EXECUTING, t_wall_ns=3, t_mono_ns=7_000_000_001)
    trace = read_trace(tw.path)
    assert trace.to_frame()["t_s"].tolist() == [0.0, 2.000000001]
    assert trace.marks_frame()["t_s"].tolist() == [0.5]


def test_an_empty_trace_gives_an_empty_frame_with_the_same_dtypes(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        tw.record("open", status=101)
    for trace in (read_trace(tw.path), Trace({}, [])):
        df = trace.to_frame()
        assert df.shape == (0, len(FRAME_COLUMNS))
        assert dtypes_of(df) == dict(FRAME_COLUMNS)
        marks = trace.marks_frame()
        assert marks.shape == (0, len(MARK_COLUMNS))
        assert dtypes_of(marks) == dict(MARK_COLUMNS)


def test_missing_and_wrongly_typed_fields_become_na():
    # Records as another source (a HAR import) might produce them: no normalized fields,
    # no monotonic clock, odd types.
    records = [
        {"kind": "frame", "seq": 1, "dir": "receive", "t_wall_ns": 5, "data": "{}"},
        {"kind": "frame", "seq": "2", "dir": "send", "size": 1.5, "t_mono_ns": True,
         "run_id": 42, "server_ts": "1757672130", "data": "x"},
        {"kind": "frame", "seq": 3, "size": 2**70, "server_ts": 7, "event": None},
    ]  # fmt: skip
    df = Trace({"session": "har"}, records).to_frame()

    assert dtypes_of(df) == dict(FRAME_COLUMNS)
    assert df["seq"].tolist() == [1, pd.NA, 3]
    assert df["size"].isna().all()
    assert df["t_mono_ns"].isna().all()
    assert df["t_s"].isna().all()  # no record has a monotonic clock
    assert df["t_wall"].iloc[0] == pd.Timestamp(5, unit="ns", tz="UTC")
    assert df["t_wall"].iloc[1:].isna().all()
    assert df["run_id"].tolist() == [pd.NA, "42", pd.NA]
    assert np.isnan(df["server_ts"].iloc[0]) and np.isnan(df["server_ts"].iloc[1])
    assert df["server_ts"].iloc[2] == 7.0
    assert df["data"].tolist() == ["{}", "x", pd.NA]
    for column in STRING_COLUMNS:
        assert df[column].iloc[2] is pd.NA or isinstance(df[column].iloc[2], str)


def test_marks_frame_has_exact_dtypes_and_values(tmp_path: Path):
    marks = read_trace(write_sample(tmp_path / "run.jsonl")).marks_frame()
    assert list(marks.columns) == ["session", "label", "t_wall_ns", "t_mono_ns", "t_s"]
    assert dtypes_of(marks) == dict(MARK_COLUMNS)
    assert marks.to_dict("records") == [
        {
            "session": "s-sample",
            "label": "waiting for agent events",
            "t_wall_ns": 1_700_000_000_600_000_000,
            "t_mono_ns": 1_600_000_000,
            "t_s": 0.6,
        }
    ]


def test_parquet_round_trip_gives_back_the_identical_frame(tmp_path: Path):
    trace = read_trace(write_sample(tmp_path / "run.jsonl"))
    out = trace.to_parquet(tmp_path / "exports" / "run.parquet")

    assert out == tmp_path / "exports" / "run.parquet"
    assert out.is_file()
    back = read_parquet(out)
    pd.testing.assert_frame_equal(back, trace.to_frame())
    assert dtypes_of(back) == dict(FRAME_COLUMNS)


def test_parquet_round_trip_of_an_empty_trace(tmp_path: Path):
    trace = Trace({"session": "none"}, [])
    back = read_parquet(trace.to_parquet(tmp_path / "empty.parquet"))
    pd.testing.assert_frame_equal(back, trace.to_frame())
    assert dtypes_of(back) == dict(FRAME_COLUMNS)


# --- load_traces ---------------------------------------------------------------------------


def test_load_traces_reads_every_jsonl_of_a_directory(tmp_path: Path):
    write_sample(tmp_path / "b-run.jsonl", session="second")
    with TraceWriter(tmp_path / "a-run.jsonl", session="first") as tw:
        tw.frame("send", USER_MESSAGE, t_wall_ns=1, t_mono_ns=10)
    (tmp_path / "notes.txt").write_text("not a trace", encoding="utf-8")
    (tmp_path / "a-run.parquet").write_bytes(b"PAR1")

    df = load_traces(tmp_path)

    assert list(df.columns) == ["trace", *FRAME_COLUMNS]
    assert dtypes_of(df) == {"trace": "string", **FRAME_COLUMNS}
    assert df["trace"].tolist() == ["a-run.jsonl"] + ["b-run.jsonl"] * 4
    assert df["session"].tolist() == ["first"] + ["second"] * 4
    assert df["seq"].tolist() == [1, 1, 2, 3, 4]
    assert df["t_s"].tolist() == [0.0, 0.25, 0.5, 2.0, 2.1]  # each trace has its own origin
    assert isinstance(df.index, pd.RangeIndex)
    df.to_parquet(tmp_path / "all.parquet", index=False)
    pd.testing.assert_frame_equal(read_parquet(tmp_path / "all.parquet"), df)


def test_load_traces_takes_a_file_or_a_list(tmp_path: Path):
    a = write_sample(tmp_path / "a.jsonl", session="A")
    b = write_sample(tmp_path / "sub" / "b.jsonl", session="B")
    assert load_traces(str(a))["trace"].unique().tolist() == ["a.jsonl"]
    df = load_traces([b, a])
    assert df["session"].unique().tolist() == ["B", "A"]  # the caller's order
    assert len(df) == 8


def test_load_traces_of_nothing(tmp_path: Path):
    df = load_traces([])
    assert df.shape == (0, 1 + len(FRAME_COLUMNS))
    assert dtypes_of(df) == {"trace": "string", **FRAME_COLUMNS}
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \*\.jsonl trace"):
        load_traces(tmp_path / "empty")


def test_load_traces_passes_on_warnings_and_errors(tmp_path: Path):
    path = write_sample(tmp_path / "a.jsonl")
    with path.open("a", encoding="utf-8") as f:
        f.write('{"kind":"fr')
    with pytest.warns(TraceWarning, match="line 8: truncated last line"):
        assert len(load_traces(tmp_path)) == 4
    (tmp_path / "b.jsonl").write_text('{"level":"info"}\n', encoding="utf-8")
    with pytest.warns(TraceWarning), pytest.raises(TraceFormatError, match=r"b\.jsonl"):
        load_traces(tmp_path)
