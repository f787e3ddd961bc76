"""Event names and the canonical record of one Netra WebSocket frame.

The Netra backend sends the same agent event in several envelopes (PROTOCOL.md §4), and
clients send inputs in several shapes (§3). :func:`normalize` turns any JSON frame into one
:class:`Event`, so the rest of the kit (trace, expectations, analysis) never has to care
which envelope a server used. It is pure: no network, no I/O.

The envelopes, as :attr:`Event.envelope` names them::

    status    {type, data:{…}, timestamp:<unix float>, server_id, correlation_id}
              connection_established, heartbeat, pong, heartbeat_ack (and other
              non-agent types carried in a ``data`` object)
    error     {type:"error_message", error_code, error_message, details, timestamp, …}
              also a status-shaped error {type:"error"|"error_message", data:{error_code…}}
    ack       {type:"ack", received_type, timestamp, user_id, status:"acknowledged"}
    bridge    {type, run_id, user_id, agent_name, timestamp:<ISO>, payload:{…}}
              the main agent path; also any client input that carries a ``payload`` object
    manager   {type, data:{run_id, thread_id, …}, timestamp:<ISO>, critical:true, attempt}
    wrapped   {type:"system_message"|"agent_progress"|"agent_response_complete",
               data:{type|event:<name>, …}}  or  {type:"system_message", event:<name>, payload}
    flat      any other object with a string type and no payload/data object
              (client inputs such as {type:"user_message", user_id, message, timestamp})
    unknown   an object with no usable string type; kept, never dropped

Typical use::

    ev = normalize(frame_text)          # FrameParseError if it is not a JSON object
    if is_auth_failure(ev): ...         # the server refused the credentials
    if is_agent_event(ev): ...          # one of the six agent events, whatever the envelope
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from netra_ws.errors import FrameParseError

__all__ = [
    "AGENT_EVENTS",
    "AGENT_REQUEST_TYPES",
    "CRITICAL_EVENTS",
    "DEMO_USER",
    "ENVELOPES",
    "RUN_TRIGGER_TYPES",
    "START_AGENT_TYPES",
    "STATUS_TYPES",
    "TERMINAL_EVENTS",
    "USER_MESSAGE_TYPES",
    "WRAPPER_TYPES",
    "Event",
    "event_payload",
    "is_agent_event",
    "is_auth_failure",
    "is_demo_user",
    "is_fallback_user",
    "may_be_named",
    "may_hold_string",
    "normalize",
    "normalize_fields",
    "parse_timestamp",
    "squeeze",
]

# The five "golden path" events the backend's own suite demands, in run order (§5).
CRITICAL_EVENTS: tuple[str, ...] = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)
AGENT_EVENTS: tuple[str, ...] = (*CRITICAL_EVENTS, "agent_error")
# Either one ends a run; a collector waiting for a run stops at the first of them.
TERMINAL_EVENTS: tuple[str, ...] = ("agent_completed", "agent_error")

# Client inputs that start an agent run (§3).
USER_MESSAGE_TYPES: tuple[str, ...] = (
    "user_message",
    "message",
    "user",
    "user_input",
    "chat_message",
    "chat",
)
START_AGENT_TYPES: tuple[str, ...] = ("start_agent", "execute_agent")
AGENT_REQUEST_TYPES: tuple[str, ...] = ("agent_request", "agent_task")
RUN_TRIGGER_TYPES: tuple[str, ...] = USER_MESSAGE_TYPES + START_AGENT_TYPES + AGENT_REQUEST_TYPES

# With DEMO_MODE every connection is this user (§2); connection_established cuts user ids to
# their first 8 characters plus "...", so "demo-use..." is how a client sees it.
DEMO_USER = "demo-user-001"


def is_demo_user(user_id: object) -> bool:
    """Is ``user_id`` (whole, or cut as connection_established shows it) the demo user?

    >>> is_demo_user("demo-use..."), is_demo_user("alice")
    (True, False)
    """
    return isinstance(user_id, str) and user_id.startswith(DEMO_USER[:8])


def squeeze(names: Iterable[str]) -> str:
    """A sequence of event names in one line, repeats counted.

    >>> squeeze(["agent_started", "agent_thinking", "agent_thinking", "agent_completed"])
    'agent_started → agent_thinking ×2 → agent_completed'
    """
    out: list[list[Any]] = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1][1] += 1
        else:
            out.append([name, 1])
    return " → ".join(name if n == 1 else f"{name} ×{n}" for name, n in out)


def is_fallback_user(user_id: object) -> bool:
    """Is ``user_id`` the made-up ``relaxed_NNNN`` user of the relaxed auth level (§2)?

    >>> is_fallback_user("relaxed_..."), is_fallback_user("alice")
    (True, False)
    """
    return isinstance(user_id, str) and user_id.startswith("relaxed_")


# Outer types of the fallback handler's envelope; the real event name is inside.
WRAPPER_TYPES: tuple[str, ...] = ("system_message", "agent_progress", "agent_response_complete")
# Types the server sends in the status envelope (A).
STATUS_TYPES: tuple[str, ...] = ("connection_established", "heartbeat", "pong", "heartbeat_ack")

ENVELOPES: tuple[str, ...] = (
    "status",
    "error",
    "ack",
    "bridge",
    "manager",
    "wrapped",
    "flat",
    "unknown",
)

# The server renames a status envelope typed "error" to "error_message"; both mean the same.
_ERROR_TYPES = ("error_message", "error")
_ERROR_EVENT = "error_message"

# Rewrites for _from_iso_fallback: a trailing Z, and a fraction of any length after seconds.
_ISO_ZULU = re.compile(r"[zZ]$")
_ISO_FRACTION = re.compile(r"(?<=\d\d:\d\d)[.,](\d+)")

# Unix timestamps above this are milliseconds: 1e11 seconds is the year 5138, while 1e11
# milliseconds is March 1973, so no real timestamp of either kind is ambiguous.
_MILLIS_THRESHOLD = 1e11

_FIELD_NAMES = (
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


@dataclass(frozen=True, slots=True)
class Event:
    """One frame, normalized: the same fields whatever envelope the server used.

    Build it with :func:`normalize`. ``event`` is the name to match on (for wrapped frames
    the inner name, never ``system_message``); ``envelope`` says which shape carried it
    (one of :data:`ENVELOPES`); ``server_ts`` is the server's own timestamp in unix
    seconds, or None. ``payload`` holds the event's fields wherever the envelope put them
    (bridge ``payload``, status/manager ``data``, or the flat top level): read event
    specific values such as ``reasoning`` or ``result`` from it. ``payload`` takes no part
    in equality or hashing. Store :meth:`fields` next to the raw frame text in a trace.
    """

    event: str | None = None
    type: str | None = None
    envelope: str = "unknown"
    run_id: str | None = None
    thread_id: str | None = None
    user_id: str | None = None
    agent_name: str | None = None
    tool_name: str | None = None
    error_code: str | None = None
    server_ts: float | None = None
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    def fields(self) -> dict[str, Any]:
        """Return the ten scalar fields as a plain dict (every key present, None allowed).

        This is what a trace frame record stores beside the raw text; ``payload`` is left
        out because the raw text already holds it.
        """
        return {name: getattr(self, name) for name in _FIELD_NAMES}


def normalize(frame: Mapping[str, Any] | str | bytes) -> Event:
    """Turn one frame (decoded object, JSON text or UTF-8 bytes) into an :class:`Event`.

    Raises :class:`~netra_ws.errors.FrameParseError` (``reason`` says why) only when the
    frame is not JSON or not a JSON object; record the raw frame anyway. Any JSON object
    gives an Event: wrongly typed fields are ignored, and shapes this module does not know
    come back with ``envelope="unknown"`` and ``event=None`` rather than being dropped.
    """
    obj = _decode(frame)
    fields, data, top_payload = _scalar_fields(obj)
    payload = _payload(obj, fields["envelope"], data, top_payload)
    return Event(**fields, payload=payload)


def normalize_fields(frame: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """``normalize(frame).fields()``, in a third of the time: the Event is never built.

    The trace writer calls this for every frame it records, where the payload is not
    needed (the raw text keeps it). Raises :class:`~netra_ws.errors.FrameParseError` like
    :func:`normalize`.
    """
    return _scalar_fields(_decode(frame))[0]


def may_hold_string(text: str, value: str) -> bool:
    r"""False only when no JSON string in ``text`` can decode to ``value``; a check, not a parse.

    A JSON string shows its characters as they are unless it escapes them, and every
    escape starts with a backslash; the only one that can write a letter, a digit or ``_``
    is ``\uXXXX``. Call it before :func:`normalize` to skip frames that cannot match:

    >>> may_hold_string('{"type":"agent_thinking"}', "AUTH_FAILED")
    False
    >>> may_hold_string('{"error_code":"AUTH\\u005fFAILED"}', "AUTH_FAILED")
    True
    >>> may_hold_string('{"note":"a\\nb"}', "AUTH_FAILED")  # \n cannot write a letter
    False
    >>> may_hold_string('{"path":"a\\/b"}', "a/b")
    True
    """
    if value in text or "\\u" in text:
        return True
    if "\\" not in text:  # the common case: no escape at all
        return False
    return not (value.isascii() and value.replace("_", "").isalnum())


def may_be_named(text: str, name: str) -> bool:
    """False only when the frame ``text`` surely does not normalize to the event ``name``.

    Every name :func:`normalize` gives is a string of the frame, except ``error_message``,
    which a frame typed ``error`` gets too:

    >>> may_be_named('{"type":"agent_thinking","payload":{}}', "agent_completed")
    False
    >>> may_be_named('{"type":"error","data":{}}', "error_message")
    True
    """
    return may_hold_string(text, _ERROR_TYPES[1] if name == _ERROR_EVENT else name)


def event_payload(obj: Mapping[str, Any], envelope: str) -> dict[str, Any]:
    """:attr:`Event.payload` of a decoded frame whose ``envelope`` is already known.

    A trace record stores ``envelope`` but not the payload (its ``data`` holds it): decode
    ``data`` and call this to read event fields (``error_message``, ``user_id``…) as
    :func:`normalize` would, without classifying the frame again.
    """
    return _payload(obj, envelope, _as_dict(obj.get("data")), _as_dict(obj.get("payload")))


def _scalar_fields(
    obj: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
    """The ten scalar fields of a decoded frame, and its ``data`` and ``payload`` objects."""
    raw_type = obj.get("type")
    outer_type = raw_type if isinstance(raw_type, str) else None
    data = _as_dict(obj.get("data"))
    top_payload = _as_dict(obj.get("payload"))

    envelope, event = _classify(obj, outer_type, data, top_payload)
    sources = _sources(obj, envelope, data, top_payload)

    fields = {  # in the order of _FIELD_NAMES, as Event.fields() gives them
        "event": event,
        "type": outer_type,
        "envelope": envelope,
        "run_id": _lookup_id(sources, "run_id"),
        "thread_id": _lookup_id(sources, "thread_id"),
        "user_id": _lookup_id(sources, "user_id"),
        "agent_name": _lookup_id(sources, "agent_name"),
        "tool_name": _lookup_id(sources, "tool_name"),
        "error_code": _lookup_id(sources, "error_code"),
        "server_ts": _lookup_timestamp(obj, envelope, data, top_payload),
    }
    return fields, data, top_payload


def parse_timestamp(value: Any) -> float | None:
    """Return ``value`` as unix seconds (float), or None when it is not a timestamp.

    Accepts unix seconds (int/float), unix milliseconds (any number above 1e11), numeric
    strings, ISO 8601 strings (``Z``, an offset, or naive, which is taken as UTC) and
    ``datetime`` objects. Never raises: garbage, booleans, NaN and infinities give None.
    """
    if isinstance(value, bool):
        # bool is an int subclass; True is not "one second after the epoch".
        return None
    if isinstance(value, (int, float)):
        return _from_number(value)
    if isinstance(value, datetime):
        return _from_datetime(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    # float() never accepts a colon: skip the exception for every ISO time (the common case).
    if ":" not in text:
        try:
            number = float(text)
        except ValueError:
            pass
        else:
            return _from_number(number)
    try:
        parsed: datetime | None = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        parsed = _from_iso_fallback(text)
    if parsed is None:
        return None
    return _from_datetime(parsed)


def is_agent_event(event: Event) -> bool:
    """True for the six agent events (:data:`AGENT_EVENTS`), whatever envelope carried them.

    Direction is not part of the event: check the trace record's ``dir`` to tell a server
    event from a client that sent an event name as input (the Issue #937 mistake).
    """
    return event.event in AGENT_EVENTS


def is_auth_failure(event: Event) -> bool:
    """True when the server refused the credentials (``error_code`` ``AUTH_FAILED``).

    The main endpoint then closes with 1008; supply a valid token or another auth form.
    """
    return event.error_code == "AUTH_FAILED"


# --- decoding ------------------------------------------------------------------------------


def _decode(frame: Any) -> dict[str, Any]:
    """Return the frame as a dict, or raise FrameParseError saying why it is not one."""
    if isinstance(frame, Mapping):
        return dict(frame)
    if isinstance(frame, (bytes, bytearray, memoryview)):
        try:
            frame = bytes(frame).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FrameParseError(
                f"invalid UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
            ) from None
    if not isinstance(frame, str):
        kind = type(frame).__name__
        raise FrameParseError(f"not a frame: expected str, bytes or a mapping, got {kind}")
    value = _loads(frame)
    if not isinstance(value, dict):
        raise FrameParseError(f"JSON {json_kind(value)}, not an object")
    return value


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Some of json's messages end with "at" ("Unterminated string starting at").
        raise FrameParseError(
            f"not JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise FrameParseError("JSON nested too deeply to decode") from None
    except ValueError:
        # Python refuses to convert integers with more than ~4300 digits. The frame is
        # still valid JSON, so keep it: retry reading such integers as floats.
        pass
    try:
        return json.loads(text, parse_int=_parse_big_int)
    except (ValueError, RecursionError) as exc:
        raise FrameParseError(f"not JSON: {exc}") from None


def _parse_big_int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)  # inf for absurd sizes; callers ignore non-finite numbers


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words ("array", "string", ...), for messages."""
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


# --- classification ------------------------------------------------------------------------


def _classify(
    obj: dict[str, Any],
    outer_type: str | None,
    data: dict[str, Any] | None,
    top_payload: dict[str, Any] | None,
) -> tuple[str, str | None]:
    """Return (envelope, event name) for a decoded object."""
    if outer_type is None or not outer_type.strip():
        # An empty type names nothing; treat it like a missing one.
        return "unknown", None
    if outer_type == "ack":
        return "ack", "ack"
    if outer_type in _ERROR_TYPES:
        return "error", _ERROR_EVENT
    if outer_type in WRAPPER_TYPES:
        return "wrapped", _inner_name(obj, data)
    if data is not None:
        # The manager marks its events critical; otherwise the agent name decides.
        if outer_type not in STATUS_TYPES and (outer_type in AGENT_EVENTS or "critical" in obj):
            return "manager", outer_type
        return "status", outer_type
    if top_payload is not None:
        return "bridge", outer_type
    return "flat", outer_type


def _inner_name(obj: dict[str, Any], data: dict[str, Any] | None) -> str | None:
    candidates = []
    if data is not None:
        candidates += [data.get("type"), data.get("event")]
    candidates.append(obj.get("event"))
    for name in candidates:
        if isinstance(name, str) and name.strip():
            return name
    return None


def _sources(
    obj: dict[str, Any],
    envelope: str,
    data: dict[str, Any] | None,
    top_payload: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """The objects to search for ids, in priority order: top, payload, data, nested."""
    sources = [obj]
    if top_payload is not None:
        sources.append(top_payload)
    if data is not None:
        sources.append(data)
        if envelope == "wrapped":
            for key in ("payload", "data"):
                inner = _as_dict(data.get(key))
                if inner is not None:
                    sources.append(inner)
    return sources


def _lookup_id(sources: list[dict[str, Any]], key: str) -> str | None:
    for source in sources:
        value = source.get(key)
        # Most keys are missing from most sources: skip the call for them.
        if value is not None:
            value = _as_id(value)
            if value is not None:
                return value
    return None


def _lookup_timestamp(
    obj: dict[str, Any],
    envelope: str,
    data: dict[str, Any] | None,
    top_payload: dict[str, Any] | None,
) -> float | None:
    # The top-level timestamp is the envelope's own; nested ones are fallbacks. The first
    # one that parses wins, so a garbage top-level value does not hide a good nested one.
    sources = [obj]
    if data is not None:
        sources.append(data)
    if top_payload is not None:
        sources.append(top_payload)
    if envelope == "wrapped" and data is not None:
        sources += [d for d in (_as_dict(data.get("payload")), _as_dict(data.get("data"))) if d]
    for source in sources:
        ts = parse_timestamp(source.get("timestamp"))
        if ts is not None:
            return ts
    return None


def _payload(
    obj: Mapping[str, Any],
    envelope: str,
    data: dict[str, Any] | None,
    top_payload: dict[str, Any] | None,
) -> dict[str, Any]:
    if envelope == "bridge" and top_payload is not None:
        return dict(top_payload)
    if envelope in ("status", "manager") and data is not None:
        return dict(data)
    if envelope == "error" and data is not None:
        return dict(data)  # the status-shaped error keeps its fields in data
    if envelope == "wrapped":
        if data is not None:
            inner = _as_dict(data.get("payload"))
            if inner is not None:
                return dict(inner)
            rest = {k: v for k, v in data.items() if k not in ("type", "event")}
            if rest or top_payload is None:
                return rest
        if top_payload is not None:
            return dict(top_payload)
        return _without(obj, ("type", "event", "timestamp"))
    return _without(obj, ("type", "timestamp"))


# --- small helpers -------------------------------------------------------------------------


def _as_dict(value: Any) -> dict[str, Any] | None:
    # A decoded JSON object is already a dict; nothing here mutates it (payloads are copied
    # when the Event is built), so only other mappings are copied.
    if type(value) is dict:
        return value
    if value is None:  # the usual miss; isinstance() against an ABC is slow
        return None
    return dict(value) if isinstance(value, Mapping) else None


def _as_id(value: Any) -> str | None:
    """An id is a non-empty string; an int is accepted and converted, anything else ignored."""
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # more digits than Python will convert
            return None
    return None


def _without(obj: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in keys}


def _from_number(value: int | float) -> float | None:
    try:
        seconds = float(value)
    except OverflowError:
        return None
    if not math.isfinite(seconds):
        return None
    if abs(seconds) > _MILLIS_THRESHOLD:
        seconds /= 1000.0
    return seconds


def _from_iso_fallback(text: str) -> datetime | None:
    """Parse the ISO forms that ``fromisoformat`` rejects before Python 3.11.

    Python 3.10 accepts neither a ``Z`` suffix nor a fraction that is not 3 or 6 digits,
    and no version accepts nanoseconds; servers send all three.
    """
    text = _ISO_ZULU.sub("+00:00", text)
    text = _ISO_FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text)
    try:
        return datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        return None


def _from_datetime(value: datetime) -> float | None:
    if value.tzinfo is None:
        # Naive server times are UTC in practice; local time would shift them by hours.
        value = value.replace(tzinfo=UTC)
    try:
        return value.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
