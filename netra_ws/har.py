"""HAR captures of WebSocket connections as traces, and traces as HAR.

Browser DevTools (Chrome, Edge) and proxies (mitmproxy's ``save.har`` / ``hardump``, HTTP
Toolkit) save a WebSocket connection as one HAR entry: the upgrade request, its response,
and Chrome's extension fields::

    {"_resourceType": "websocket",
     "startedDateTime": "2025-09-10T12:00:00.123Z",
     "request":  {"method": "GET", "url": "wss://…", "headers": [{"name": …, "value": …}]},
     "response": {"status": 101, "headers": […]},
     "_webSocketMessages": [{"type": "send"|"receive", "time": <unix seconds, float>,
                             "opcode": 1|2, "data": <text; base64 when opcode is not 1>}],
     "_webSocketClose": {"code": 1000, "reason": "", "timestamp": <unix s>}}   (HTTP Toolkit)

How each tool differs, and what the import makes of it:

- Chrome/Edge also write ``{"type": "error", "opcode": -1, "data": <message>}`` → an
  ``error`` record; control frames (opcode 8, 9, 10; data in base64) → a ``close`` record
  (8) or a ``mark`` (ping, pong).
- mitmproxy writes text (1) and binary (2, base64) messages only, and its ``.zhar`` files are
  zlib-compressed HAR: both are read.
- Firefox exports the handshake without any message: the trace gets its ``open`` record, no
  frames, and a :class:`HarWarning` says so.
- Chrome's "Export HAR (sanitized)" already drops Cookie/Authorization headers.

Each WebSocket entry becomes one trace: an ``open`` record (the HTTP status, subprotocol,
redacted URL and headers; an ``error`` record instead when the upgrade was refused), one
``frame`` per message built by :func:`netra_ws.trace.frame_record` (so normalized fields are
the client's), ``close``/``error``/``mark`` records for the rest. HAR only has wall-clock
times: ``t_wall_ns`` comes from ``time`` and ``t_mono_ns`` is the same number, which the
labels say (``{"source": "har", "clock": "wall-derived"}``). Nothing is dropped: a message
with a missing time, a missing opcode or an unknown type is kept in HAR order and its record
carries ``flags`` saying what was assumed. Frame data is kept exactly as captured, as in the
client's own traces (it is evidence); share a copy made with
:func:`netra_ws.redact.redact_file`. A HAR written by :func:`export_har` is for sharing, so
its text frames are redacted.

Typical use::

    paths = import_har("capture.har", "data/")      # one trace file per connection
    traces = har_to_traces(har_dict)                 # pure: in memory, nothing written
    export_har("data/run.jsonl", "run.har")          # DevTools ▸ Network ▸ Import HAR

The module is pure: it reads and writes files, never the network.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http
import json
import math
import os
import warnings
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import HarFormatError
from .events import json_kind, parse_timestamp
from .redact import (
    REDACTED,
    SECRET_HEADERS,
    redact_headers,
    redact_json,
    redact_subprotocol,
    redact_text,
    redact_url,
)
from .trace import FORMAT, Trace, frame_record, read_trace, write_trace

__all__ = [
    "HAR_LABELS",
    "HarWarning",
    "export_har",
    "har_to_traces",
    "import_har",
    "load_har",
    "trace_to_har",
]

# Labels every imported trace carries (plus har_entry, har_creator and, from a file, har_file).
HAR_LABELS: Mapping[str, str] = {"source": "har", "clock": "wall-derived"}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Times from 1970 up to int64 nanoseconds (year 2262): what a trace column can hold.
_MAX_NS = 2**63 - 1
_OPCODE_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}
# Our own trace words, accepted where a number is expected (a hand-edited HAR).
_OPCODE_WORDS = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
_DIRECTIONS = ("send", "receive")
# zlib stream headers (mitmproxy .zhar files): 0x78 then one of these.
_ZLIB_SECOND_BYTES = frozenset({0x01, 0x5E, 0x9C, 0xDA})


class HarWarning(UserWarning):
    """A HAR was imported, with something to know: connections without messages (Firefox
    exports none) or messages recorded with ``flags``. The message says which; read the
    ``flags`` field of the records, or export the capture again from Chrome or mitmproxy.
    """


# --- import ------------------------------------------------------------------------------------


def load_har(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``.har`` (or mitmproxy's zlib-compressed ``.zhar``) file into a dict.

    Raises :class:`~netra_ws.errors.HarFormatError` when the file is empty, not UTF-8, not
    JSON, or JSON without ``log.entries``; FileNotFoundError when it does not exist. Pass the
    result to :func:`har_to_traces`, or call :func:`import_har` to do both and write traces.
    """
    src = Path(path)
    raw = src.read_bytes()
    if len(raw) > 1 and raw[0] == 0x78 and raw[1] in _ZLIB_SECOND_BYTES:
        # Not compressed after all: the JSON error below then says what the file is.
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
    if not raw.strip():
        raise HarFormatError(f"{src}: not a HAR file: the file is empty")
    try:
        text = raw.decode("utf-8-sig")  # -sig: tools on Windows write a byte order mark
    except UnicodeDecodeError as exc:
        raise HarFormatError(
            f"{src}: not a HAR file: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start})"
        ) from None
    try:
        har: dict[str, Any] = json.loads(text)  # a dict once _entries accepts it
    except json.JSONDecodeError as exc:
        raise HarFormatError(f"{src}: not a HAR file: {_not_json(text, exc)}") from None
    except (ValueError, RecursionError) as exc:
        raise HarFormatError(f"{src}: not a HAR file: not JSON ({exc})") from None
    _entries(har, str(src))  # fail here, with the file name, rather than later
    return har


def har_to_traces(har: Mapping[str, Any], *, source: str | None = None) -> list[Trace]:
    """Turn a HAR (a dict, as :func:`load_har` returns) into one trace per WebSocket entry.

    Pure: nothing is written. ``source`` names the HAR in messages and in each trace's
    ``har_file`` label. Raises :class:`~netra_ws.errors.HarFormatError` when ``har`` has no
    ``log.entries`` or none of its entries is a WebSocket connection (the message says how
    many entries it had). Warns (:class:`HarWarning`) about connections without messages and
    about flagged messages. Continue with :meth:`Trace.to_frame`, or write the traces with
    :func:`netra_ws.trace.write_trace` (which is what :func:`import_har` does).
    """
    traces = _har_to_traces(har, source)
    _warn(traces, source or "HAR", stacklevel=3)
    return traces


def import_har(
    path: str | os.PathLike[str], out_dir: str | os.PathLike[str] = "data"
) -> list[Path]:
    """Import a HAR file: write one trace per WebSocket connection into ``out_dir``.

    The files are named ``<har name>-ws01.jsonl``, ``-ws02``, … in entry order and are never
    overwritten: if one exists, FileExistsError is raised before anything is written (import
    into a new directory). Errors as :func:`load_har` and :func:`har_to_traces`. Returns the
    paths; load them with :func:`netra_ws.trace.read_trace` or
    :func:`netra_ws.trace.load_traces`.
    """
    src = Path(path)
    traces = _har_to_traces(load_har(src), src.name)
    _warn(traces, str(src), stacklevel=3)
    out = Path(out_dir)
    stem = src.name.split(".")[0] or "har"
    paths = [out / f"{stem}-ws{n:02d}.jsonl" for n in range(1, len(traces) + 1)]
    existing = [p for p in paths if p.exists()]
    if existing:
        raise FileExistsError(
            f"{existing[0]} already exists and a trace is never overwritten: import "
            f"{src.name} into another directory, or remove the earlier import first"
        )
    for trace, target in zip(traces, paths, strict=True):
        write_trace(trace, target)
    return paths


def _har_to_traces(har: Any, source: str | None) -> list[Trace]:
    where = source or "HAR"
    entries = _entries(har, where)
    websockets = [(i, e) for i, e in enumerate(entries) if _is_websocket(e)]
    if not websockets:
        raise HarFormatError(
            f"{where}: no WebSocket connection among its {len(entries)} "
            f"entr{'y' if len(entries) == 1 else 'ies'}. Capture again with the WebSocket in "
            "it: open DevTools first, connect, filter the Network panel by 'WS', then "
            "'Save all as HAR with content' (or use mitmproxy's save.har)",
            entry_count=len(entries),
        )
    creator = _creator(har["log"])
    return [_entry_to_trace(index, entry, creator, source) for index, entry in websockets]


def _entries(har: Any, where: str) -> list[Any]:
    if not isinstance(har, Mapping):
        raise HarFormatError(f"{where}: not a HAR file: JSON {json_kind(har)}, not an object")
    log = har.get("log")
    if not isinstance(log, Mapping):
        keys = sorted(map(str, har))[:8]
        raise HarFormatError(f"{where}: not a HAR file: no 'log' object (top-level keys: {keys})")
    entries = log.get("entries")
    if not isinstance(entries, list):
        raise HarFormatError(f"{where}: not a HAR file: 'log' has no 'entries' list")
    return entries


def _is_websocket(entry: Any) -> bool:
    if not isinstance(entry, Mapping):
        return False
    if str(entry.get("_resourceType", "")).lower() == "websocket":
        return True  # Chrome, Edge, mitmproxy, HTTP Toolkit
    if "_webSocketMessages" in entry:
        return True
    request = _mapping(entry.get("request"))
    url = request.get("url")
    if isinstance(url, str) and url.lower().startswith(("ws://", "wss://")):
        return True
    # Firefox marks nothing; the upgrade request itself says it.
    upgrade = _header(_har_headers(request.get("headers")), "upgrade")
    return upgrade is not None and upgrade.strip().lower() == "websocket"


def _entry_to_trace(
    index: int, entry: Mapping[str, Any], creator: str, source: str | None
) -> Trace:
    request = _mapping(entry.get("request"))
    response = _mapping(entry.get("response"))
    given_url = request.get("url")
    url = given_url if isinstance(given_url, str) else ""
    messages = entry.get("_webSocketMessages")

    labels: dict[str, Any] = {**HAR_LABELS, "har_entry": index, "har_creator": creator}
    if source:
        labels["har_file"] = source
    if not isinstance(messages, list):
        labels["har_messages"] = "missing" if messages is None else "not a list"
        if messages is not None:
            labels["har_messages_value"] = redact_json(messages)  # kept, never lost
        messages = []

    started_ns = _wall_ns(entry.get("startedDateTime"))
    started_flags = []
    if started_ns is None:
        started_ns = 0
        for message in messages:
            t_ns = _time_ns(message.get("time"))[0] if isinstance(message, Mapping) else None
            if t_ns is not None:
                started_ns = t_ns
                break
        started_flags.append("startedDateTime missing or invalid: took the first message time")

    records = [_handshake(entry, request, response, url, started_ns, bool(messages))]
    if started_flags:
        records[0]["flags"] = started_flags
    records += _messages(messages, started_ns)
    close = _close_record(entry.get("_webSocketClose"), records)
    if close is not None:
        records.append(close)

    meta = {
        "kind": "meta",
        "format": FORMAT,
        "session": _session(index, url, entry.get("startedDateTime"), len(messages)),
        "target": redact_url(url),
        "started_at": _iso(started_ns),
        "labels": labels,
    }
    return Trace(meta, records)


def _handshake(
    entry: Mapping[str, Any],
    request: Mapping[str, Any],
    response: Mapping[str, Any],
    url: str,
    t_ns: int,
    has_messages: bool,
) -> dict[str, Any]:
    """The ``open`` record, or the ``error`` record the client writes for a refused upgrade."""
    request_headers = _har_headers(request.get("headers"))
    response_headers = _har_headers(response.get("headers"))
    status = response.get("status")
    status = status if type(status) is int else None
    status_text = response.get("statusText") if isinstance(response.get("statusText"), str) else ""
    common = {
        "t_wall_ns": t_ns,
        "t_mono_ns": t_ns,
        "url": redact_url(url),
        "http_status": status,
        "request_header_names": sorted({name for name, _ in request_headers}),
        "request_headers": redact_headers(request_headers),
        "response_headers": redact_headers(response_headers),
    }
    # 101 for HTTP/1.1; 200 answers an RFC 8441 CONNECT over HTTP/2. Messages prove it opened.
    if status in (101, 200) or has_messages:
        offered = _header(request_headers, "sec-websocket-protocol")
        chosen = _header(response_headers, "sec-websocket-protocol")
        return {
            "kind": "open",
            **common,
            "status_text": status_text,
            "subprotocol": redact_subprotocol(chosen.strip()) if chosen else None,
            "offered_subprotocols": [
                redact_subprotocol(part.strip()) for part in (offered or "").split(",") if part
            ],
        }
    if status:
        exception = "HandshakeRejected"
        message = f"handshake rejected with HTTP {status} {status_text}".rstrip()
    else:
        # Chrome writes status 0 and an "_error" for a connection that never got a response.
        exception = "ConnectFailed"
        reason = response.get("_error") or "no response (status 0)"
        message = f"no handshake response: {reason}"
    return {
        "kind": "error",
        **common,
        "stage": "connect",
        "exception": exception,
        "message": redact_text(str(message)),
    }


def _messages(messages: list[Any], started_ns: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    seq = 0
    previous_ns = started_ns
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping):
            records.append(
                _mark(
                    f"HAR message {index} is not an object: kept here, not imported as a frame",
                    previous_ns,
                    index,
                    message,
                    ["not an object"],
                )
            )
            continue
        flags: list[str] = []
        t_ns, time_flag = _time_ns(message.get("time"))
        if t_ns is None:
            t_ns = previous_ns
            flags.append(time_flag or "time missing: placed at the previous message's time")
        else:
            if time_flag:
                flags.append(time_flag)
            if t_ns < previous_ns:
                flags.append("time earlier than the previous message: kept in HAR order")
        previous_ns = t_ns
        if message.get("_redacted"):
            flags.append("data redacted before this HAR was written")

        kind = message.get("type")
        kind = kind.lower() if isinstance(kind, str) else kind
        opcode, opcode_flag = _opcode(message.get("opcode"))
        if kind == "error":
            records.append(_with_flags(_error_message(message, t_ns, index), flags))
            continue
        if kind not in _DIRECTIONS:
            flags.append(f"unknown message type {kind!r}: not imported as a frame")
            records.append(
                _mark(f"HAR message {index}: unknown type {kind!r}", t_ns, index, message, flags)
            )
            continue
        if opcode is None:
            opcode = 1  # DevTools' own default; every Netra frame is text
            flags.append(opcode_flag or "opcode missing: assumed text (1)")
        elif opcode_flag:
            flags.append(opcode_flag)

        if opcode in (1, 2):
            payload, data_flags = _payload(message.get("data"), opcode)
            seq += 1
            record = frame_record(seq, kind, payload, t_wall_ns=t_ns, t_mono_ns=t_ns)
            records.append(_with_flags(record, flags + data_flags, index))
        elif opcode == 8:
            records.append(_with_flags(_close_frame(message, kind, t_ns, index), flags))
        else:
            name = _OPCODE_NAMES.get(opcode, f"opcode {opcode}")
            if opcode not in (9, 10):
                flags.append(f"{name} is not a data frame: not imported as a frame")
            records.append(
                _mark(f"HAR: {kind} {name} (opcode {opcode})", t_ns, index, message, flags)
            )
    return records


def _payload(data: Any, opcode: int) -> tuple[str | bytes, list[str]]:
    """The frame data as frame_record wants it: str for text, bytes for binary."""
    if data is None:
        return (b"" if opcode == 2 else ""), ["data missing: recorded as an empty frame"]
    if not isinstance(data, str):
        text = json.dumps(data, ensure_ascii=False)
        return text, [f"data was a JSON {json_kind(data)}, not a string: recorded as its JSON"]
    if opcode == 1:
        return data, []
    raw = _b64decode(data)
    if raw is None:
        return data, ["opcode 2 (binary) but data is not base64: recorded as a text frame"]
    return raw, []


def _b64decode(data: str) -> bytes | None:
    """Standard base64 (what DevTools and mitmproxy write), else base64url; None if neither."""
    compact = "".join(data.split())  # some tools wrap long base64 lines
    try:
        padded = (compact + "=" * (-len(compact) % 4)).encode("ascii")
    except UnicodeEncodeError:
        return None
    for altchars in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
    return None


def _error_message(message: Mapping[str, Any], t_ns: int, index: int) -> dict[str, Any]:
    data = message.get("data")
    return {
        "kind": "error",
        "t_wall_ns": t_ns,
        "t_mono_ns": t_ns,
        "stage": "websocket",
        "message": redact_text(data if isinstance(data, str) else json.dumps(data)),
        "har_index": index,
    }


def _close_frame(message: Mapping[str, Any], kind: str, t_ns: int, index: int) -> dict[str, Any]:
    record: dict[str, Any] = {
        "kind": "close",
        "t_wall_ns": t_ns,
        "t_mono_ns": t_ns,
        "code": None,
        "reason": "",
        "initiated_by": "client" if kind == "send" else "server",
        "har_index": index,
    }
    data = message.get("data")
    raw = _b64decode(data) if isinstance(data, str) else None
    if raw is not None and len(raw) >= 2:
        # A close frame's payload: a 2-byte big-endian code, then a UTF-8 reason.
        record["code"] = int.from_bytes(raw[:2], "big")
        record["reason"] = raw[2:].decode("utf-8", "replace")
    elif isinstance(data, str) and data and raw is None:
        record["reason"] = data
        record["flags"] = ["close frame data is not base64: kept as the reason"]
    return record


def _close_record(value: Any, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """HTTP Toolkit's ``_webSocketClose``: {code, reason, timestamp} or "aborted"."""
    if value is None:
        return None
    last_ns = max((r["t_wall_ns"] for r in records), default=0)
    record: dict[str, Any] = {"kind": "close", "t_wall_ns": last_ns, "t_mono_ns": last_ns}
    if isinstance(value, Mapping):
        t_ns, _ = _time_ns(value.get("timestamp"))
        if t_ns is not None:
            record["t_wall_ns"] = record["t_mono_ns"] = t_ns
        code = value.get("code")
        record["code"] = code if type(code) is int else None
        record["reason"] = value.get("reason") if isinstance(value.get("reason"), str) else ""
        return record
    # "aborted": the connection went away without a close frame, as websockets' 1006.
    record.update(code=1006, reason="", received_close_frame=False)
    record["flags"] = [f"_webSocketClose is {value!r}: no close frame"]
    return record


def _mark(label: str, t_ns: int, index: int, message: Any, flags: list[str]) -> dict[str, Any]:
    record = {
        "kind": "mark",
        "label": label,
        "t_wall_ns": t_ns,
        "t_mono_ns": t_ns,
        "har_index": index,
        "har_message": redact_json(message),  # the original, so nothing is lost
    }
    return _with_flags(record, flags)


def _with_flags(
    record: dict[str, Any], flags: list[str], index: int | None = None
) -> dict[str, Any]:
    if flags:
        record["flags"] = [*record.get("flags", []), *flags]
        if index is not None:
            record["har_index"] = index
    return record


def _time_ns(value: Any) -> tuple[int | None, str | None]:
    """A HAR message time (unix seconds, float) in ns, rounded to the microsecond."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None, f"time {value!r} is not a number: placed at the previous message's time"
    seconds = parse_timestamp(value)
    if seconds is None:
        return None, f"time {value!r} is not a number: placed at the previous message's time"
    t_ns = _ns(seconds)
    if t_ns is None:
        return None, f"time {value!r} is out of range: placed at the previous message's time"
    flag = None
    if isinstance(value, str):
        flag = "time was a string"
    elif abs(value) > 1e11:
        flag = "time looked like milliseconds: divided by 1000"
    return t_ns, flag


def _wall_ns(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    seconds = parse_timestamp(value)
    return None if seconds is None else _ns(seconds)


def _ns(seconds: float) -> int | None:
    """Unix seconds as ns, rounded to the microsecond; None beyond what int64 ns can hold."""
    # Microseconds: a float of unix seconds holds no more, and round() keeps export→import exact.
    micros = seconds * 1_000_000
    if not math.isfinite(micros):  # 1e308 s is a float, but not a time: round() would raise
        return None
    t_ns = round(micros) * 1000
    return t_ns if 0 <= t_ns <= _MAX_NS else None


def _opcode(value: Any) -> tuple[int | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str) and value.lower() in _OPCODE_WORDS:
        return _OPCODE_WORDS[value.lower()], None
    if type(value) is float and value.is_integer():
        return int(value), None
    if type(value) is int:
        return value, None
    return None, f"opcode {value!r} is not a number: assumed text (1)"


def _har_headers(value: Any) -> list[tuple[str, str]]:
    """HAR headers ``[{"name", "value"}]`` as pairs; anything malformed is skipped."""
    if not isinstance(value, list):
        return []
    pairs = []
    for item in value:
        if isinstance(item, Mapping) and isinstance(item.get("name"), str):
            pairs.append((item["name"], str(item.get("value", ""))))
    return pairs


def _header(pairs: list[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key.lower() == name]
    return ", ".join(values) if values else None


def _creator(log: Mapping[str, Any]) -> str:
    creator = _mapping(log.get("creator"))
    browser = _mapping(log.get("browser"))
    name = " ".join(str(creator[k]) for k in ("name", "version") if creator.get(k))
    if browser.get("name") and browser.get("name") != creator.get("name"):
        name += f" ({browser['name']} {browser.get('version', '')})".rstrip()
    return name or "unknown"


def _session(index: int, url: str, started: Any, count: int) -> str:
    # Deterministic: importing the same HAR twice gives the same session ids.
    key = json.dumps([index, url, started, count], default=str)
    return "har-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _warn(traces: list[Trace], where: str, *, stacklevel: int) -> None:
    missing = [t for t in traces if t.meta["labels"].get("har_messages")]
    flagged = sum(1 for t in traces for r in t.records if r.get("flags"))
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of {len(traces)} WebSocket connection(s) have no "
            "_webSocketMessages, so only the handshake was imported (Firefox exports no "
            "WebSocket messages: capture with Chrome/Edge DevTools or mitmproxy)"
        )
    if flagged:
        problems.append(
            f"{flagged} record(s) carry 'flags' saying what the import assumed or found (a "
            "missing time or opcode, an unknown type, data that is not base64, redacted "
            "data…): read them before trusting order, timings or data"
        )
    if problems:
        warnings.warn(HarWarning(f"{where}: " + "; ".join(problems)), stacklevel=stacklevel + 1)


# --- export ------------------------------------------------------------------------------------


def trace_to_har(trace: Trace) -> dict[str, Any]:
    """Build a HAR 1.2 document (a dict) holding the trace as one WebSocket entry. Pure.

    Frames become ``_webSocketMessages`` (``time`` in unix seconds to the microsecond, opcode
    1/2, text as recorded, binary as base64); ``error`` records after the handshake become
    Chrome's ``"error"`` messages; the first ``close`` record becomes ``_webSocketClose``
    (HTTP Toolkit's field). Marks have no place in a HAR: the entry's ``comment`` counts them.
    URL and headers are redacted again, and so is the data of text frames (a changed message
    gets ``"_redacted": true``). Write it with :func:`export_har`.
    """
    records = trace.records
    opened = next((r for r in records if r.get("kind") == "open"), None)
    refused = next(
        (r for r in records if r.get("kind") == "error" and r.get("stage") == "connect"), None
    )
    handshake = opened or refused or {}
    start_ns = _first_int(handshake.get("t_wall_ns"), *(r.get("t_wall_ns") for r in records))
    if start_ns is None:
        start_ns = _wall_ns(trace.meta.get("started_at")) or 0

    url = redact_url(str(handshake.get("url") or trace.meta.get("target") or ""))
    status = handshake.get("http_status")
    if type(status) is not int:
        status = 101 if opened is not None else 0
    status_text = handshake.get("status_text") or _reason_phrase(status)

    messages: list[dict[str, Any]] = []
    close: dict[str, Any] | None = None
    marks = 0
    previous_ns = start_ns
    for record in records:
        kind = record.get("kind")
        given_ns = record.get("t_wall_ns")
        t_ns = given_ns if type(given_ns) is int else previous_ns
        previous_ns = t_ns
        if kind == "frame":
            messages.append(_har_message(record, t_ns))
        elif kind == "error" and record is not refused:
            text = str(record.get("message") or record.get("exception") or "error")
            messages.append(
                {"type": "error", "time": _seconds(t_ns), "opcode": -1, "data": redact_text(text)}
            )
        elif kind == "close" and close is None:
            close = {
                "code": record.get("code"),
                "reason": redact_text(str(record.get("reason") or "")),
                "timestamp": _seconds(t_ns),
            }
        elif kind == "mark":
            marks += 1

    connect_ms: Any = handshake.get("connect_ms")  # as the trace has it: checked below
    wait = float(connect_ms) if type(connect_ms) in (int, float) and connect_ms >= 0 else 0
    entry: dict[str, Any] = {
        "startedDateTime": _iso(start_ns),
        "time": wait,
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": _request_headers(handshake),
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": status_text,
            "httpVersion": "HTTP/1.1",
            "headers": _pairs(redact_headers(_str_dict(handshake.get("response_headers")))),
            "cookies": [],
            "content": {"size": 0, "mimeType": "x-unknown"},
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": 0,
        },
        "cache": {},
        "timings": {
            "blocked": -1,
            "dns": -1,
            "ssl": -1,
            "connect": -1,
            "send": 0,
            "wait": wait,
            "receive": 0,
        },
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
    }
    if close is not None:
        entry["_webSocketClose"] = close
    if marks:
        entry["comment"] = f"{marks} mark(s) of the trace are not in this HAR (it has no place)"
    session = trace.meta.get("session")
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "netra_ws", "version": _version()},
            "pages": [],
            "entries": [entry],
            "comment": f"netra-ws trace {session}" if session else "netra-ws trace",
        }
    }


def export_har(
    trace_or_path: Trace | str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
) -> Path:
    """Write a trace (a :class:`Trace` or a trace file) as a HAR file; return its path.

    Open the file in Chrome or Edge DevTools (Network panel ▸ Import HAR) and select the
    WebSocket request to see its Messages; :func:`import_har` reads it back (event order,
    data and timestamps to the microsecond survive). An existing file is kept
    (FileExistsError) unless ``overwrite=True``. See :func:`trace_to_har` for what goes in.
    """
    trace = trace_or_path if isinstance(trace_or_path, Trace) else read_trace(trace_or_path)
    har = trace_to_har(trace)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        # backslashreplace: a lone surrogate in frame text becomes a \uXXXX escape, valid JSON.
        with open(out, "w" if overwrite else "x", encoding="utf-8", errors="backslashreplace") as f:
            json.dump(har, f, ensure_ascii=False, indent=2)
            f.write("\n")
    except FileExistsError:
        raise FileExistsError(
            f"{out} already exists: pick another name, or pass overwrite=True"
        ) from None
    return out


def _har_message(record: Mapping[str, Any], t_ns: int) -> dict[str, Any]:
    binary = record.get("opcode") == "binary"
    data = record.get("data")
    data = data if isinstance(data, str) else ""
    message: dict[str, Any] = {
        "type": record.get("dir") if record.get("dir") in _DIRECTIONS else "receive",
        "time": _seconds(t_ns),
        "opcode": 2 if binary else 1,
        # Binary data is base64 of bytes nobody can read here: redacting it cannot help.
        "data": data if binary else redact_text(data),
    }
    if message["data"] != data:
        message["_redacted"] = True
    return message


def _request_headers(handshake: Mapping[str, Any]) -> list[dict[str, str]]:
    recorded = _str_dict(handshake.get("request_headers"))
    if recorded:
        return _pairs(redact_headers(recorded))
    # The client records only the names of the headers it added, never their values.
    headers = []
    for name in handshake.get("request_header_names") or []:
        name = str(name)
        if name.lower() in SECRET_HEADERS:
            headers.append({"name": name, "value": REDACTED})
        else:
            headers.append({"name": name, "value": "", "comment": "value not recorded"})
    offered = handshake.get("offered_subprotocols")
    if offered and not any(h["name"].lower() == "sec-websocket-protocol" for h in headers):
        value = redact_subprotocol(", ".join(map(str, offered)))
        headers.append({"name": "Sec-WebSocket-Protocol", "value": value})
    return headers


def _pairs(headers: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in headers.items()]


def _str_dict(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _seconds(t_ns: int) -> float:
    # Whole microseconds over 1e6: the nearest float, which _time_ns maps back exactly.
    return round(t_ns / 1000) / 1_000_000


def _iso(t_ns: int) -> str:
    micros = round(t_ns / 1000)
    try:
        return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds")
    except OverflowError:
        return _EPOCH.isoformat(timespec="microseconds")


def _reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _first_int(*values: Any) -> int | None:
    return next((v for v in values if type(v) is int), None)


# --- small helpers -----------------------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _not_json(text: str, exc: json.JSONDecodeError) -> str:
    first = text.lstrip().split("\n", 1)[0]
    try:
        record = json.loads(first)
    except ValueError:
        record = None
    if isinstance(record, dict) and "kind" in record:
        return (
            "this is JSON Lines (a netra-ws trace?), not a HAR: load it with read_trace(), "
            "or turn it into a HAR with export_har()"
        )
    if first.startswith("<"):
        return "it looks like HTML or XML, not JSON (a saved web page instead of a HAR?)"
    # Some of json's messages end with "at" ("Unterminated string starting at").
    return f"not JSON ({exc.msg.removesuffix(' at')} at line {exc.lineno} column {exc.colno})"


def _version() -> str:
    try:
        return metadata.version("netra-ws")
    except metadata.PackageNotFoundError:
        return "dev"  # running from a checkout that was never installed
