"""Tests for netra_ws.events: every envelope of PROTOCOL.md §3/§4, timestamps, bad input."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_ws import events
from netra_ws.errors import FrameParseError
from netra_ws.events import (
    AGENT_EVENTS,
    CRITICAL_EVENTS,
    ENVELOPES,
    RUN_TRIGGER_TYPES,
    TERMINAL_EVENTS,
    Event,
    is_agent_event,
    is_auth_failure,
    normalize,
    parse_timestamp,
)

UNIX_TS = 1757672130.123456  # a status-envelope timestamp (unix float seconds)
ISO_TS = "2025-09-12T10:15:30.500000+00:00"  # an agent-event timestamp (ISO 8601)
ISO_TS_SECONDS = 1757672130.5

FIELD_KEYS = {
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
}


# --- constants -----------------------------------------------------------------------------


def test_event_name_constants():
    assert CRITICAL_EVENTS == (
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    )
    assert AGENT_EVENTS[:5] == CRITICAL_EVENTS
    assert AGENT_EVENTS[5:] == ("agent_error",)
    assert TERMINAL_EVENTS == ("agent_completed", "agent_error")
    assert RUN_TRIGGER_TYPES == (
        "user_message",
        "message",
        "user",
        "user_input",
        "chat_message",
        "chat",
        "start_agent",
        "execute_agent",
        "agent_request",
        "agent_task",
    )
    assert ENVELOPES == (
        "status",
        "error",
        "ack",
        "bridge",
        "manager",
        "wrapped",
        "flat",
        "unknown",
    )


def test_all_names_exist():
    for name in events.__all__:
        assert hasattr(events, name), name
    assert "normalize" in events.__all__ and "Event" in events.__all__


# --- A. status envelope --------------------------------------------------------------------


def test_connection_established():
    frame = {
        "type": "connection_established",
        "data": {
            "mode": "main",
            "user_id": "demo-use...",
            "connection_id": "main_4f9c2a1b",
            "golden_path_events": list(CRITICAL_EVENTS),
            "features": {"agent_events": True},
            "timestamp": "2025-09-12T10:15:29Z",
        },
        "timestamp": UNIX_TS,
        "server_id": None,
        "correlation_id": None,
    }
    ev = normalize(json.dumps(frame))
    assert ev.event == "connection_established"
    assert ev.type == "connection_established"
    assert ev.envelope == "status"
    assert ev.user_id == "demo-use..."
    assert ev.run_id is None
    assert ev.error_code is None
    # The envelope's unix float wins over data's ISO timestamp.
    assert ev.server_ts == pytest.approx(UNIX_TS)
    assert ev.payload["connection_id"] == "main_4f9c2a1b"
    assert ev.payload["golden_path_events"] == list(CRITICAL_EVENTS)
    assert not is_agent_event(ev)


@pytest.mark.parametrize(
    ("frame_type", "data"),
    [
        (
            "heartbeat",
            {
                "connection_id": "main_4f9c2a1b",
                "timestamp": UNIX_TS,
                "stats": {"messages_processed": 3, "agent_events_processed": 5},
            },
        ),
        ("pong", {"timestamp": UNIX_TS, "original_timestamp": 1757672129000}),
        ("heartbeat_ack", {"status": "healthy"}),
    ],
)
def test_status_frames(frame_type: str, data: dict[str, Any]):
    frame = {
        "type": frame_type,
        "data": data,
        "timestamp": UNIX_TS,
        "server_id": None,
        "correlation_id": None,
    }
    ev = normalize(frame)
    assert (ev.event, ev.type, ev.envelope) == (frame_type, frame_type, "status")
    assert ev.server_ts == pytest.approx(UNIX_TS)
    assert ev.payload == data
    assert not is_agent_event(ev)


def test_status_envelope_typed_error_counts_as_error_message():
    frame = {
        "type": "error",
        "data": {"error_code": "SERVICE_INIT_FAILED", "error_message": "Service init failed"},
        "timestamp": UNIX_TS,
        "server_id": None,
        "correlation_id": None,
    }
    ev = normalize(frame)
    assert ev.event == "error_message"
    assert ev.type == "error"
    assert ev.envelope == "error"
    assert ev.error_code == "SERVICE_INIT_FAILED"
    assert ev.payload == frame["data"]
    assert not is_auth_failure(ev)


def test_status_shaped_error_message_reads_code_from_data():
    frame = {
        "type": "error_message",
        "data": {"error_code": "AGENT_REQUEST_ERROR", "error_message": "boom"},
        "timestamp": UNIX_TS,
        "server_id": None,
        "correlation_id": None,
    }
    ev = normalize(frame)
    assert (ev.event, ev.envelope, ev.error_code) == (
        "error_message",
        "error",
        "AGENT_REQUEST_ERROR",
    )


# --- B. flat error -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "auth"),
    [
        (
            "AUTH_FAILED",
            "Authentication failed. Supported forms: jwt.TOKEN, jwt-auth.TOKEN, bearer.TOKEN",
            True,
        ),
        ("JSON_PARSE_ERROR", "Invalid JSON format", False),
    ],
)
def test_flat_error(code: str, message: str, auth: bool):
    frame = {
        "type": "error_message",
        "error_code": code,
        "error_message": message,
        "details": {},
        "timestamp": UNIX_TS,
        "recovery_suggestions": None,
    }
    ev = normalize(json.dumps(frame).encode("utf-8"))
    assert ev.event == "error_message"
    assert ev.type == "error_message"
    assert ev.envelope == "error"
    assert ev.error_code == code
    assert ev.server_ts == pytest.approx(UNIX_TS)
    assert ev.payload == {
        "error_code": code,
        "error_message": message,
        "details": {},
        "recovery_suggestions": None,
    }
    assert is_auth_failure(ev) is auth
    assert not is_agent_event(ev)


# --- ack -----------------------------------------------------------------------------------


def test_ack():
    frame = {
        "type": "ack",
        "received_type": "agent_started",
        "timestamp": UNIX_TS,
        "user_id": "demo-user-001",
        "status": "acknowledged",
    }
    ev = normalize(frame)
    assert (ev.event, ev.type, ev.envelope) == ("ack", "ack", "ack")
    assert ev.user_id == "demo-user-001"
    assert ev.server_ts == pytest.approx(UNIX_TS)
    assert ev.payload == {
        "received_type": "agent_started",
        "user_id": "demo-user-001",
        "status": "acknowledged",
    }


# --- C1. bridge ----------------------------------------------------------------------------

BRIDGE_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    (
        "agent_started",
        {"status": "started", "context": {}, "message": "Agent started processing"},
    ),
    (
        "agent_thinking",
        {
            "reasoning": "Looking at the cost data",
            "step_number": 1,
            "progress_percentage": 25,
            "status": "thinking",
        },
    ),
    (
        "tool_executing",
        {
            "tool_name": "cost_analyzer",
            "parameters": {"period": "30d"},
            "status": "executing",
            "message": "Running cost_analyzer",
        },
    ),
    (
        "tool_completed",
        {
            "tool_name": "cost_analyzer",
            "result": {"savings": 1200},
            "execution_time_ms": 840,
            "status": "completed",
            "message": "cost_analyzer finished",
        },
    ),
    (
        "agent_completed",
        {
            "status": "completed",
            "result": {"summary": "done"},
            "execution_time_ms": 4200,
            "message": "Agent finished",
        },
    ),
    (
        "agent_error",
        {
            "status": "error",
            "error_message": "LLM timeout",
            "error_context": {"step": 2},
            "message": "Agent failed",
        },
    ),
]


@pytest.mark.parametrize(("name", "payload"), BRIDGE_PAYLOADS, ids=[n for n, _ in BRIDGE_PAYLOADS])
def test_bridge_agent_events(name: str, payload: dict[str, Any]):
    frame: dict[str, Any] = {
        "type": name,
        "run_id": "run_7d1e",
        "agent_name": "supervisor",
        "timestamp": ISO_TS,
        "payload": payload,
    }
    if name != "agent_error":  # the bridge's agent_error has no top-level user_id
        frame["user_id"] = "demo-user-001"
    ev = normalize(json.dumps(frame))
    assert (ev.event, ev.type, ev.envelope) == (name, name, "bridge")
    assert ev.run_id == "run_7d1e"
    assert ev.thread_id is None  # the bridge carries no thread_id (§6)
    assert ev.agent_name == "supervisor"
    assert ev.user_id == (None if name == "agent_error" else "demo-user-001")
    assert ev.tool_name == payload.get("tool_name")
    assert ev.server_ts == pytest.approx(ISO_TS_SECONDS)
    assert ev.payload == payload
    assert is_agent_event(ev)


def test_bridge_tool_name_comes_from_payload():
    ev = normalize(
        {
            "type": "tool_executing",
            "run_id": "run_7d1e",
            "user_id": "demo-user-001",
            "agent_name": "supervisor",
            "timestamp": ISO_TS,
            "payload": {"tool_name": "cost_analyzer", "parameters": {}, "status": "executing"},
        }
    )
    assert ev.tool_name == "cost_analyzer"


# --- C2. manager ---------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [None, 2])
def test_manager_envelope(attempt: int | None):
    frame = {
        "type": "agent_thinking",
        "data": {
            "run_id": "run_7d1e",
            "thread_id": "thread_42",
            "request_id": "req_9",
            "agent_name": "supervisor",
            "reasoning": "Checking the data",
        },
        "timestamp": "2025-09-12T10:15:30.500Z",
        "critical": True,
        "attempt": attempt,
    }
    ev = normalize(frame)
    assert (ev.event, ev.type, ev.envelope) == ("agent_thinking", "agent_thinking", "manager")
    assert (ev.run_id, ev.thread_id, ev.agent_name) == ("run_7d1e", "thread_42", "supervisor")
    assert ev.user_id is None
    assert ev.server_ts == pytest.approx(ISO_TS_SECONDS)
    assert ev.payload == frame["data"]
    assert is_agent_event(ev)


def test_agent_event_with_data_but_no_critical_is_manager():
    ev = normalize({"type": "tool_completed", "data": {"tool_name": "search", "run_id": "r1"}})
    assert (ev.envelope, ev.event, ev.tool_name, ev.run_id) == (
        "manager",
        "tool_completed",
        "search",
        "r1",
    )


# --- C3. wrapped ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outer", "data", "expected_event", "expected_payload"),
    [
        (
            "system_message",
            {"type": "agent_started", "run_id": "run_7d1e", "status": "started"},
            "agent_started",
            {"run_id": "run_7d1e", "status": "started"},
        ),
        (
            "agent_progress",
            {
                "event": "tool_executing",
                "payload": {"tool_name": "cost_analyzer", "run_id": "run_7d1e"},
            },
            "tool_executing",
            {"tool_name": "cost_analyzer", "run_id": "run_7d1e"},
        ),
        (
            "agent_response_complete",
            {
                "type": "agent_completed",
                "data": {"run_id": "run_7d1e", "thread_id": "thread_42"},
                "result": "ok",
            },
            "agent_completed",
            {"data": {"run_id": "run_7d1e", "thread_id": "thread_42"}, "result": "ok"},
        ),
    ],
)
def test_wrapped_name_inside_data(
    outer: str, data: dict[str, Any], expected_event: str, expected_payload: dict[str, Any]
):
    ev = normalize({"type": outer, "data": data, "timestamp": ISO_TS})
    assert ev.event == expected_event
    assert ev.type == outer
    assert ev.envelope == "wrapped"
    assert ev.run_id == "run_7d1e"  # from data, data.payload or data.data
    assert ev.server_ts == pytest.approx(ISO_TS_SECONDS)
    assert ev.payload == expected_payload
    assert is_agent_event(ev)


def test_wrapped_name_in_data_payload_ids():
    ev = normalize(
        {
            "type": "agent_progress",
            "data": {"event": "tool_executing", "payload": {"tool_name": "cost_analyzer"}},
        }
    )
    assert ev.tool_name == "cost_analyzer"
    ev = normalize(
        {
            "type": "agent_response_complete",
            "data": {"type": "agent_completed", "data": {"thread_id": "thread_42"}},
        }
    )
    assert ev.thread_id == "thread_42"


def test_wrapped_name_in_top_level_event():
    frame = {
        "type": "system_message",
        "event": "agent_thinking",
        "payload": {"reasoning": "Thinking", "run_id": "run_7d1e", "step_number": 2},
        "timestamp": ISO_TS,
    }
    ev = normalize(frame)
    assert (ev.event, ev.type, ev.envelope) == ("agent_thinking", "system_message", "wrapped")
    assert ev.run_id == "run_7d1e"
    assert ev.payload == frame["payload"]
    assert ev.server_ts == pytest.approx(ISO_TS_SECONDS)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "system_message", "data": {"message": "Server restarting"}},
        {"type": "agent_progress", "data": {"type": 7, "progress": 50}},
        {"type": "agent_response_complete", "payload": {"result": "ok"}},
        {"type": "system_message"},
    ],
)
def test_wrapped_without_inner_name_is_kept(frame: dict[str, Any]):
    ev = normalize(frame)
    assert ev.event is None
    assert ev.type == frame["type"]
    assert ev.envelope == "wrapped"
    assert not is_agent_event(ev)


# --- client inputs (§3) --------------------------------------------------------------------


def test_flat_client_user_message_from_937_script():
    frame = {
        "type": "user_message",
        "user_id": "demo-user-001",
        "message": "Analyze my costs",
        "timestamp": 1757672130123,  # milliseconds
    }
    ev = normalize(frame)
    assert (ev.event, ev.type, ev.envelope) == ("user_message", "user_message", "flat")
    assert ev.user_id == "demo-user-001"
    assert ev.server_ts == pytest.approx(1757672130.123)
    assert ev.payload == {"user_id": "demo-user-001", "message": "Analyze my costs"}
    assert ev.event in RUN_TRIGGER_TYPES


def test_client_input_with_payload_reads_ids_from_payload():
    # The CLI's shape: fields live in payload (§3).
    frame = {
        "type": "user_message",
        "payload": {
            "content": "hi",
            "run_id": "run_1",
            "thread_id": "thread_1",
            "timestamp": 1757672130.0,
        },
    }
    ev = normalize(frame)
    assert (ev.event, ev.envelope) == ("user_message", "bridge")
    assert (ev.run_id, ev.thread_id) == ("run_1", "thread_1")
    assert ev.server_ts == 1757672130.0
    assert ev.payload == frame["payload"]


def test_output_event_sent_flat_without_payload():
    ev = normalize({"type": "agent_started", "run_id": 123, "user_id": "u1"})
    assert (ev.event, ev.envelope, ev.run_id) == ("agent_started", "flat", "123")
    assert ev.payload == {"run_id": 123, "user_id": "u1"}


# --- id lookup -----------------------------------------------------------------------------


def test_ids_top_level_wins_and_wrong_types_are_ignored():
    ev = normalize(
        {
            "type": "agent_started",
            "run_id": {"nested": "no"},
            "user_id": "top",
            "thread_id": ["no"],
            "agent_name": True,
            "payload": {"run_id": "from_payload", "user_id": "payload_user", "thread_id": 42},
        }
    )
    assert ev.run_id == "from_payload"
    assert ev.user_id == "top"
    assert ev.thread_id == "42"
    assert ev.agent_name is None


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1757672130.123456, 1757672130.123456),  # unix float seconds
        (1757672130, 1757672130.0),  # unix int seconds
        (1757672130123, 1757672130.123),  # int milliseconds
        ("1757672130.5", 1757672130.5),  # numeric string
        ("2025-09-12T10:15:30Z", 1757672130.0),  # ISO with Z
        ("2025-09-12T10:15:30.500Z", 1757672130.5),
        ("2025-09-12T12:15:30+02:00", 1757672130.0),  # ISO with offset
        ("2025-09-12T10:15:30.5+00:00", 1757672130.5),
        ("2025-09-12T10:15:30", 1757672130.0),  # naive ISO is UTC
        ("2025-09-12 10:15:30.500000", 1757672130.5),
    ],
)
def test_parse_timestamp(value: Any, expected: float):
    assert parse_timestamp(value) == pytest.approx(expected, abs=1e-6)


@pytest.fixture
def non_utc_local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run with a local zone far from UTC, so a naive time read as local time shows up."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("non_utc_local_zone")
def test_naive_iso_is_utc_even_when_local_zone_is_not():
    assert time.localtime(0).tm_hour == 5  # the zone switch took effect
    assert parse_timestamp("2025-09-12T10:15:30") == 1757672130.0
    ev = normalize({"type": "pong", "data": {}, "timestamp": "2025-09-12T10:15:30"})
    assert ev.server_ts == 1757672130.0


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "   ",
        "2025-13-45T99:99:99Z",
        None,
        True,
        {"ts": 1},
        [1757672130],
        float("nan"),
        float("inf"),
        "NaN",
        10**400,
        b"1757672130",
    ],
)
def test_parse_timestamp_garbage_is_none(value: Any):
    assert parse_timestamp(value) is None


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (1757672130.25, 1757672130.25),
        (1757672130250, 1757672130.25),
        ("2025-09-12T10:15:30.250Z", 1757672130.25),
        ("2025-09-12T12:15:30.250+02:00", 1757672130.25),
        ("2025-09-12T10:15:30.250", 1757672130.25),
        ("not a time", None),
    ],
)
def test_server_ts_through_normalize(timestamp: Any, expected: float | None):
    ev = normalize({"type": "heartbeat", "data": {}, "timestamp": timestamp})
    if expected is None:
        assert ev.server_ts is None
    else:
        assert ev.server_ts == pytest.approx(expected, abs=1e-6)


def test_server_ts_falls_back_to_nested_timestamp():
    ev = normalize({"type": "heartbeat", "data": {"timestamp": "2025-09-12T10:15:30Z"}})
    assert ev.server_ts == 1757672130.0
    ev = normalize({"type": "heartbeat", "timestamp": "garbage", "data": {"timestamp": 1.5}})
    assert ev.server_ts == 1.5


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "not JSON: Expecting value at line 1 column 1"),
        ("hello", "not JSON: Expecting value at line 1 column 1"),
        ('{"type": "ping"', "not JSON: Expecting ',' delimiter at line 1 column 16"),
        ("[1, 2]", "JSON array, not an object"),
        ('"agent_started"', "JSON string, not an object"),
        ("42", "JSON number, not an object"),
        ("null", "JSON null, not an object"),
        ("true", "JSON boolean, not an object"),
        (b'{"type": "\xff"}', "invalid UTF-8: byte 0xff at offset 10"),
        ("[" * 100_000, "JSON nested too deeply to decode"),
        ([{"type": "ack"}], "not a frame: expected str, bytes or a mapping, got list"),
        (None, "not a frame: expected str, bytes or a mapping, got NoneType"),
    ],
)
def test_bad_input_raises_frame_parse_error(raw: Any, reason: str):
    with pytest.raises(FrameParseError) as info:
        normalize(raw)
    assert info.value.reason == reason
    assert str(info.value) == reason


@pytest.mark.parametrize(
    ("frame", "envelope", "event", "payload"),
    [
        ({"type": 5, "run_id": "r1"}, "unknown", None, {"run_id": "r1"}),
        ({}, "unknown", None, {}),
        ({"event": "agent_started"}, "unknown", None, {"event": "agent_started"}),
        ({"type": ""}, "unknown", None, {}),
        ({"type": "agent_started", "payload": "x"}, "flat", "agent_started", {"payload": "x"}),
        ({"type": "heartbeat", "data": 5}, "flat", "heartbeat", {"data": 5}),
        ({"type": "some_new_thing", "foo": 1}, "flat", "some_new_thing", {"foo": 1}),
    ],
)
def test_odd_objects_are_kept(
    frame: dict[str, Any], envelope: str, event: str | None, payload: dict[str, Any]
):
    ev = normalize(json.dumps(frame))
    assert (ev.envelope, ev.event) == (envelope, event)
    assert ev.type == (frame.get("type") if isinstance(frame.get("type"), str) else None)
    assert ev.payload == payload


def test_unknown_frame_still_gets_ids():
    ev = normalize({"type": None, "run_id": "r1", "timestamp": 1757672130.0})
    assert (ev.envelope, ev.event, ev.run_id, ev.server_ts) == (
        "unknown",
        None,
        "r1",
        1757672130.0,
    )


def test_huge_numbers_are_kept_not_fatal():
    huge = "9" * 5000
    raw = f'{{"type": "agent_started", "run_id": {huge}, "timestamp": {huge}}}'
    ev = normalize(raw)
    assert (ev.event, ev.envelope) == ("agent_started", "flat")
    assert ev.run_id is None  # read as an infinite float, which is not an id
    assert ev.server_ts is None
    ev = normalize({"type": "agent_started", "run_id": 10**5000, "timestamp": 1e308})
    assert ev.run_id is None
    assert ev.server_ts == pytest.approx(1e305)


def test_deeply_nested_object_is_kept():
    nested: dict[str, Any] = {}
    for _ in range(10_000):
        nested = {"x": nested}
    ev = normalize({"type": "agent_thinking", "payload": nested, "data": nested})
    assert (ev.event, ev.envelope) == ("agent_thinking", "manager")
    assert ev.run_id is None


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "system_message", "data": {"type": "agent_started", "payload": [1]}},
        {"type": "agent_progress", "data": {"event": {"x": 1}}, "event": 3, "payload": 1},
        {"type": "connection_established", "data": {"user_id": 1.5}, "timestamp": [1]},
        {"type": "error_message", "error_code": {"code": "X"}, "details": None},
    ],
)
def test_wrong_field_types_never_raise(frame: dict[str, Any]):
    ev = normalize(frame)
    assert ev.type == frame["type"]
    assert ev.error_code is None
    assert ev.user_id is None


# --- Event record --------------------------------------------------------------------------


def test_fields_has_exactly_ten_keys():
    ev = normalize({"type": "ack", "received_type": "x"})
    fields = ev.fields()
    assert set(fields) == FIELD_KEYS
    assert len(fields) == 10
    assert fields == {
        "event": "ack",
        "type": "ack",
        "envelope": "ack",
        "run_id": None,
        "thread_id": None,
        "user_id": None,
        "agent_name": None,
        "tool_name": None,
        "error_code": None,
        "server_ts": None,
    }
    assert set(Event().fields()) == FIELD_KEYS


def test_event_equality_and_hash_ignore_payload():
    a = Event(event="agent_started", type="agent_started", envelope="flat", payload={"a": 1})
    b = Event(event="agent_started", type="agent_started", envelope="flat", payload={"b": 2})
    assert a == b
    assert hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.event = "x"  # type: ignore[misc]


def test_normalize_does_not_alias_input():
    frame = {"type": "agent_started", "payload": {"status": "started"}}
    ev = normalize(frame)
    ev.payload["status"] = "changed"
    assert frame["payload"]["status"] == "started"


# --- robustness ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-09-12T10:15:30Z", 1757672130.0),
        ("2025-09-12T10:15:30.5Z", 1757672130.5),
        ("2025-09-12T10:15:30.123456789Z", 1757672130.123456),
        ("2025-09-12T10:15:30,25+00:00", 1757672130.25),
    ],
)
def test_iso_fallback_for_python_310(text: str, expected: float):
    # Python 3.10's fromisoformat rejects these; the fallback must read them on any version.
    parsed = events._from_iso_fallback(text)
    assert parsed is not None
    assert parsed.timestamp() == pytest.approx(expected, abs=1e-6)
    assert parse_timestamp(text) == pytest.approx(expected, abs=1e-6)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["type", "event", "data", "payload", "timestamp", "run_id", "tool_name", "error_code"]
)
_frames = st.dictionaries(_keys | st.text(max_size=8), _json_values, max_size=8)


@settings(max_examples=120, deadline=None)
@given(frame=_frames)
def test_any_object_normalizes(frame: dict[str, Any]):
    ev = normalize(frame)
    assert ev.envelope in ENVELOPES
    assert set(ev.fields()) == FIELD_KEYS
    assert isinstance(ev.payload, dict)
    for name in ("event", "run_id", "thread_id", "user_id", "agent_name", "tool_name"):
        assert getattr(ev, name) is None or isinstance(getattr(ev, name), str)
    assert ev.server_ts is None or isinstance(ev.server_ts, float)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_or_text_gives_event_or_frame_parse_error(raw: bytes | str):
    try:
        ev = normalize(raw)
    except FrameParseError as exc:
        assert exc.reason
    else:
        assert ev.envelope in ENVELOPES
