"""Property tests: the normalizer, the trace writer and reader, and the HAR importer never
raise anything but their documented errors, and their round trips are exact.

What the other suites already hold (and this one does not repeat): tests/test_events.py
normalizes arbitrary dicts and short arbitrary text/bytes; tests/test_trace_columns.py
reads arbitrary mixes of prepared lines exactly like a line-by-line reference reader;
tests/test_har.py round-trips hand-made captures. Here: the same frame given as text, bytes
or object normalizes alike; truncated and surrogate-laden frames; arbitrary sessions
written by TraceWriter read back exactly, also when the file is cut at any byte; arbitrary
HAR-shaped documents; arbitrary traces exported to HAR and imported back.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from netra_ws.errors import FrameParseError, HarFormatError, TraceFormatError
from netra_ws.events import ENVELOPES, normalize
from netra_ws.har import har_to_traces, trace_to_har
from netra_ws.redact import redact_text
from netra_ws.trace import Trace, TraceWriter, frame_record, read_trace, write_trace

_CHECKS = [HealthCheck.too_slow, HealthCheck.filter_too_much]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=_CHECKS)
# Examples that write and read files cost ~50 ms each: fewer of them, to keep the suite quick.
FILE_SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=_CHECKS)

# Text as a server or a HAR may really hold it: any code point, lone surrogates included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=24)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            any_text | st.sampled_from(["type", "data", "payload"]), children, max_size=4
        )
    ),
    max_leaves=12,
)
names = st.sampled_from(
    [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
        "agent_error",
        "connection_established",
        "error_message",
        "ack",
        "system_message",
        "user_message",
    ]
)
# Frames shaped like Netra's envelopes, with arbitrary contents where the envelope has some.
envelopes = st.fixed_dictionaries(
    {"type": names | any_text},
    optional={
        "data": st.dictionaries(
            st.sampled_from(["type", "event", "run_id", "payload"]), json_values
        )
        | json_values,
        "payload": json_values,
        "event": names | json_values,
        "run_id": json_values,
        "user_id": json_values,
        "timestamp": json_values | st.floats(allow_nan=True),
        "error_code": json_values,
        "critical": st.booleans(),
    },
)


def _fields(frame: Any) -> dict[str, Any] | str:
    try:
        return normalize(frame).fields()
    except FrameParseError as exc:
        return exc.reason


# --- the normalizer ---------------------------------------------------------------------------


@SETTINGS
@given(frame=envelopes | json_values)
def test_text_bytes_and_object_normalize_alike(frame):
    text = json.dumps(frame, ensure_ascii=False)
    as_text = _fields(text)
    as_bytes = _fields(text.encode("utf-8", "surrogatepass")) if _utf8_ok(text) else as_text
    assert as_bytes == as_text
    if isinstance(frame, dict):
        assert not isinstance(as_text, str)  # any JSON object gives an event
        assert _fields(frame) == as_text
        event = normalize(text)
        assert event.envelope in ENVELOPES
        assert event.server_ts is None or math.isfinite(event.server_ts)
    else:
        assert as_text.endswith("not an object")


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@SETTINGS
@given(frame=envelopes, cut=st.integers(min_value=0), junk=any_text)
def test_a_truncated_or_spoiled_frame_is_an_event_or_a_named_parse_error(frame, cut, junk):
    text = json.dumps(frame)
    for spoiled in (text[: cut % (len(text) + 1)], text[: cut % (len(text) + 1)] + junk):
        try:
            event = normalize(spoiled)
        except FrameParseError as exc:
            assert exc.reason.startswith(("not JSON", "JSON ")), exc.reason
        else:
            assert event.envelope in ENVELOPES


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(1, 5000), kind=st.sampled_from(["[", '{"a":']))
def test_any_nesting_depth_is_an_event_or_too_deeply_nested(depth, kind):
    close = "]" if kind == "[" else "}"
    text = '{"type":"ping","x":' + kind * depth + "1" + close * depth + "}"
    try:
        assert normalize(text).event == "ping"
    except FrameParseError as exc:
        assert exc.reason == "JSON nested too deeply to decode"


# --- the trace writer and reader --------------------------------------------------------------

# Timestamps a clock can give: non-negative int64 nanoseconds.
nanoseconds = st.integers(0, 2**63 - 1)
field_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=False)
    | any_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3)
    ),
    max_leaves=10,
)
field_maps = st.dictionaries(
    st.text(st.characters(codec="ascii", categories=("Ll",)), min_size=1, max_size=8).filter(
        lambda k: k not in ("kind", "t_wall_ns", "t_mono_ns", "label")
    ),
    field_values,
    max_size=3,
)
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("frame"),
            st.sampled_from(["send", "receive"]),
            any_text | st.binary(max_size=40) | envelopes.map(json.dumps),
            nanoseconds,
            nanoseconds,
        ),
        st.tuples(st.just("mark"), any_text, field_maps, nanoseconds, nanoseconds),
        st.tuples(
            st.just("record"), st.sampled_from(["open", "close", "error"]), field_maps, nanoseconds
        ),
    ),
    max_size=15,
)


def _write(path: Path, ops: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    with TraceWriter(path, target="ws://127.0.0.1:1/ws?token=x", labels={"n": len(ops)}) as w:
        for op in ops:
            if op[0] == "frame":
                w.frame(op[1], op[2], t_wall_ns=op[3], t_mono_ns=op[4])
            elif op[0] == "mark":
                w.mark(op[1], t_wall_ns=op[3], t_mono_ns=op[4], **op[2])
            else:
                w.record(op[1], t_wall_ns=op[3], **op[2])
        return w.records


def _read_quietly(path: Path) -> tuple[Trace, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace = read_trace(path)
    return trace, [str(w.message) for w in caught]


@FILE_SETTINGS
@given(ops=operations)
def test_whatever_the_writer_writes_the_reader_reads_back_exactly(ops):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        written = _write(path, ops)
        trace, messages = _read_quietly(path)
        assert messages == []
        assert trace.records == written
        assert [f["seq"] for f in trace.frames] == list(range(1, len(trace.frames) + 1))
        for op, frame in zip([o for o in ops if o[0] == "frame"], trace.frames, strict=True):
            data = op[2]
            if isinstance(data, str):
                assert (frame["opcode"], frame["data"]) == ("text", data)
            else:
                assert frame["opcode"] == "binary" and frame["size"] == len(data)
        # The fast column reader and the in-memory records give the same table.
        in_memory = Trace(trace.meta, written).to_frame()
        pd.testing.assert_frame_equal(trace.to_frame(), in_memory)
        assert "token" not in trace.meta["target"]


@FILE_SETTINGS
@given(ops=operations.filter(lambda ops: any(op[0] == "frame" for op in ops)), cut=st.integers(0))
def test_a_trace_cut_at_any_byte_loads_what_it_holds_and_says_what_it_skipped(ops, cut):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        written = _write(path, ops)
        data = path.read_bytes()
        cut %= len(data) + 1
        path.write_bytes(data[:cut])
        lines = data.split(b"\n")[:-1]  # every line ends with a newline
        ends = [sum(len(line) + 1 for line in lines[: i + 1]) - 1 for i in range(len(lines))]
        whole = [i for i, end in enumerate(ends) if end <= cut]  # newline optional at the cut
        mid_line = cut not in (0, *ends, *(e + 1 for e in ends))
        if not whole:
            with pytest.raises(TraceFormatError):
                read_trace(path)
            return
        trace, messages = _read_quietly(path)
        assert trace.records == written[: len(whole) - 1]  # the header is line 0
        if mid_line:
            assert messages == [
                f"{path}: skipped 1 unreadable line(s) (line {len(whole) + 1}: truncated last line)"
            ]
            assert trace.skipped_lines == 1
        else:
            assert messages == [] and trace.skipped_lines == 0


# --- the HAR importer -------------------------------------------------------------------------

har_messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["send", "receive", "error", "incoming"]) | json_values,
            "time": st.floats(allow_nan=True) | st.integers() | any_text | json_values,
            "opcode": st.sampled_from([1, 2, 8, 9, 10, -1]) | json_values,
            "data": any_text | json_values,
        },
    )
    | json_values,
    max_size=6,
)
har_entries = st.fixed_dictionaries(
    {},
    optional={
        "_resourceType": st.sampled_from(["websocket", "xhr"]) | json_values,
        "startedDateTime": st.sampled_from(["2025-09-10T12:00:00.000Z"]) | json_values,
        "request": st.fixed_dictionaries(
            {}, optional={"url": st.sampled_from(["wss://h/ws?token=abc"]) | json_values}
        )
        | json_values,
        "response": st.fixed_dictionaries(
            {}, optional={"status": st.sampled_from([101, 403, 0]) | json_values}
        )
        | json_values,
        "_webSocketMessages": har_messages,
        "_webSocketClose": st.sampled_from(["aborted"])
        | st.fixed_dictionaries({}, optional={"code": json_values, "timestamp": json_values}),
    },
)
hars = st.fixed_dictionaries({"log": st.fixed_dictionaries({"entries": st.lists(har_entries)})}) | (
    json_values
)


@FILE_SETTINGS
@given(har=hars)
def test_any_har_shaped_document_imports_or_says_why_not(har):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traces = har_to_traces(har)
    except HarFormatError as exc:
        assert str(exc).startswith("HAR: ")
        return
    with tempfile.TemporaryDirectory() as tmp:
        for i, trace in enumerate(traces):
            path = write_trace(trace, Path(tmp) / f"{i}.jsonl")
            loaded, messages = _read_quietly(path)
            assert messages == []
            pd.testing.assert_frame_equal(loaded.to_frame(), trace.to_frame())
            assert "token=abc" not in path.read_text(encoding="utf-8")


har_frames = st.lists(
    st.tuples(
        st.sampled_from(["send", "receive"]),
        any_text | st.binary(max_size=30),
        st.integers(0, 10**6),  # microseconds after the previous frame
    ),
    min_size=1,
    max_size=12,
)


@FILE_SETTINGS
@given(frames=har_frames, start_us=st.integers(10**15, 2 * 10**15))
def test_any_trace_exported_to_har_imports_back_with_the_same_frames(frames, start_us):
    assume(all(redact_text(d) == d for _, d, _ in frames if isinstance(d, str)))
    records, t_us = [], start_us
    for seq, (direction, data, gap_us) in enumerate(frames, 1):
        t_us += gap_us
        records.append(
            frame_record(seq, direction, data, t_wall_ns=t_us * 1000, t_mono_ns=t_us * 1000)
        )
    original = Trace({"session": "p", "target": "wss://h/ws"}, records)
    (imported,) = har_to_traces(json.loads(json.dumps(trace_to_har(original))))
    keys = ("seq", "dir", "opcode", "size", "data", "t_wall_ns", "event", "parse_error")
    assert [{k: f.get(k) for k in keys} for f in imported.frames] == [
        {k: f.get(k) for k in keys} for f in records
    ]
