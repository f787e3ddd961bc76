"""Browsing a trace: select frames, and list records one readable line each.

The listing is the one the console prints as frames arrive and ``netra-ws show`` prints
for a saved trace, so a live session and its trace read the same::

       0.003s ← #1   connection_established  user_id=notebook... mode=main
       0.004s → #2   user_message            message=hello
       0.009s ← #3   agent_started           agent=supervisor_agent status=started …

Every string that came from a server (event names, payload values, close reasons) passes
through :func:`_safe` before it is shown: control characters and ESC are escaped, so a
hostile frame cannot move the cursor, recolour or rewrite the terminal, and long values
are cut with their length. Colour is added here, after escaping, and only when asked.

Typical use::

    frames = select_frames(trace.records, event="agent_thinking", direction="receive")
    for line in listing(frames, color=False):
        print(line)

The module is pure: no network, no terminal handling.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from .errors import FrameParseError
from .events import AGENT_EVENTS, STATUS_TYPES, TERMINAL_EVENTS, event_payload
from .untrusted import for_terminal

__all__ = [
    "DIRECTIONS",
    "format_record",
    "frame_json",
    "html_listing",
    "listing",
    "select_frames",
    "summary",
]

DIRECTIONS: tuple[str, ...] = ("send", "receive")
R = TypeVar("R", bound=Mapping[str, Any])
_ARROWS = {"send": "→", "receive": "←"}

# How long one shown value may be before it is cut, and one summary line in all.
_VALUE_LIMIT = 60
_SUMMARY_LIMIT = 100
# C0 controls, DEL and C1 controls (ESC is \x1b, CSI is \x9b): escaped, never shown raw.
# Payload fields that say most about an event, shown first in a summary (then the rest).
_FIRST_FIELDS = (
    "message",
    "content",
    "user_id",
    "mode",
    "tool_name",
    "status",
    "thought",
    "reasoning",
    "error_code",
    "error_message",
    "result",
)
# Fields a summary leaves out: the same on every frame, or shown elsewhere on the line.
_NOISE_FIELDS = frozenset(
    {"type", "timestamp", "server_id", "correlation_id", "golden_path_events", "features"}
)

# ANSI SGR colours: ours, added after escaping, so never from a server.
_RESET = "\x1b[0m"
_STYLES = {
    "send": "\x1b[36m",  # cyan: what we sent
    "agent": "\x1b[32m",  # green: an agent event
    "terminal": "\x1b[1;32m",  # bold green: the run ended
    "error": "\x1b[31m",  # red: errors, agent_error, parse errors
    "status": "\x1b[2m",  # dim: housekeeping (heartbeats, connection_established)
    "record": "\x1b[33m",  # yellow: open, close, marks
}


def _safe(text: object, limit: int = _VALUE_LIMIT) -> str:
    """``text`` fit for a terminal: controls and ESC escaped (``\\x1b``), cut at ``limit``.

    THE one function every server-derived string goes through before it is shown here: the
    kit's terminal neutraliser, :func:`netra_ws.untrusted.for_terminal`.

    >>> _safe("red\\x1b[31m!")
    'red\\\\x1b[31m!'
    >>> _safe("x" * 100, limit=10)
    'xxxxxxxxxx… (100 chars)'
    """
    return for_terminal(text, limit)


def _style(text: str, kind: str | None, color: bool) -> str:
    if not color or kind is None:
        return text
    return f"{_STYLES[kind]}{text}{_RESET}"


def _kind_of(record: Mapping[str, Any]) -> str | None:
    """The colour class of a frame: by direction first, then by the event's kind."""
    event = record.get("event")
    if record.get("dir") == "send":
        return "send"
    if record.get("parse_error") or event in ("error_message", "agent_error"):
        return "error"
    if event in TERMINAL_EVENTS:
        return "terminal"
    if event in AGENT_EVENTS:
        return "agent"
    if event in STATUS_TYPES:
        return "status"
    return None


def _payload(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The event's fields, wherever its envelope put them; None for a frame that is not JSON."""
    data = record.get("data")
    if record.get("opcode") == "binary" or not isinstance(data, str):
        return None
    try:
        obj = json.loads(data)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    try:
        payload = event_payload(obj, str(record.get("envelope") or "unknown"))
    except (FrameParseError, TypeError, ValueError):
        payload = {}
    # Top-level fields the envelope keeps beside its payload (agent_name, tool_name…).
    extra = {k: v for k, v in obj.items() if k not in ("payload", "data")}
    return {**extra, **payload}


def summary(record: Mapping[str, Any], limit: int = _SUMMARY_LIMIT) -> str:
    """One line saying what a frame carried: ``key=value`` of its payload, most telling first.

    Values are made safe (:func:`_safe`) and cut; nested values are shown as compact JSON.
    A frame that is not JSON shows its parse error and the start of its text.

    >>> summary({"dir": "receive", "envelope": "flat", "opcode": "text",
    ...          "data": '{"type": "agent_thinking", "thought": "look up\\\\u001b[2J"}'})
    'thought=look up\\\\x1b[2J'
    """
    payload = _payload(record)
    if payload is None:
        why = record.get("parse_error") or "not JSON"
        return _safe(f"({why}) {record.get('data', '')}", limit)
    keys = [k for k in _FIRST_FIELDS if k in payload]
    keys += sorted(k for k in payload if k not in keys and k not in _NOISE_FIELDS)
    parts = []
    for key in keys:
        value = payload[key]
        if value is None or value == {} or value == []:
            continue
        if not isinstance(value, str):
            value = json.dumps(value, separators=(",", ":"), default=str)
        parts.append(f"{_safe(key, 30)}={_safe(value)}")
    line = " ".join(parts)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _seconds(record: Mapping[str, Any], t0_ns: int | None) -> str:
    t = record.get("t_mono_ns")
    if t0_ns is None or type(t) is not int:
        return " " * 9
    return f"{(t - t0_ns) / 1e9:8.3f}s"


def format_record(record: Mapping[str, Any], t0_ns: int | None, *, color: bool = False) -> str:
    """One record as one line: time since ``t0_ns``, arrow, ``#seq``, event, summary.

    Frames get ``→`` (sent) or ``←`` (received); open, close, error and mark records get
    a line of their own kind. ``color`` adds ANSI colours (by direction and event kind);
    leave it False for pipes, files and ``NO_COLOR``.
    """
    when = _seconds(record, t0_ns)
    kind = record.get("kind", "frame")
    if kind == "frame":
        arrow = _ARROWS.get(str(record.get("dir")), "?")
        name = record.get("event") or record.get("type") or record.get("parse_error") or "?"
        head = f"{arrow} #{record.get('seq', '?'):<4} {_safe(name, 40):<24}"
        return f"{when} {_style(head, _kind_of(record), color)} {summary(record)}".rstrip()
    if kind == "open":
        text = (
            f"⇄ open  HTTP {record.get('http_status')} auth={record.get('auth')}"
            f" subprotocol={_safe(record.get('subprotocol'))}"
        )
    elif kind == "close":
        reason = record.get("reason")
        text = (
            f"✕ close {record.get('code')}"
            + (f" {_safe(reason)!r}" if reason else "")
            + f" by {record.get('initiated_by', '?')}"
        )
    elif kind == "error":
        text = f"! error {record.get('stage', '')} {_safe(record.get('exception'))}: " + _safe(
            record.get("message"), _SUMMARY_LIMIT
        )
    elif kind == "mark":
        extra = " ".join(
            f"{_safe(k, 30)}={_safe(v)}"
            for k, v in record.items()
            if k not in ("kind", "label", "t_wall_ns", "t_mono_ns")
        )
        text = f"● mark  {_safe(record.get('label'))} {extra}".rstrip()
    else:
        text = f"? {_safe(kind)}"
    return f"{when} {_style(text, 'record', color)}"


def listing(
    records: Iterable[Mapping[str, Any]], *, t0_ns: int | None = None, color: bool = False
) -> Iterator[str]:
    """The lines of :func:`format_record` for ``records`` (meta headers skipped).

    Times count from ``t0_ns``, or from the first record with a monotonic time: pass the
    trace's origin when listing a selection, so times stay those of the whole trace.
    """
    for record in records:
        if record.get("kind") == "meta":
            continue
        if t0_ns is None and type(record.get("t_mono_ns")) is int:
            t0_ns = record["t_mono_ns"]
        yield format_record(record, t0_ns, color=color)


def frame_json(record: Mapping[str, Any]) -> str:
    """The full JSON of a frame, indented: its decoded payload when the data is JSON.

    The text is escaped by :func:`json.dumps` (controls become ``\\u001b``), so it is safe
    for a terminal as it is.
    """
    shown = dict(record)
    data = record.get("data")
    if isinstance(data, str) and record.get("opcode") != "binary":
        with contextlib.suppress(ValueError):
            shown["data"] = json.loads(data)
    return json.dumps(shown, indent=2, ensure_ascii=True, default=str)


_HTML_STYLE = (
    "<style>.nws-list td{text-align:left;vertical-align:top;font-family:monospace}"
    ".nws-list summary{cursor:pointer}.nws-send{color:#0a7f8f}.nws-error{color:#b00020}"
    ".nws-agent,.nws-terminal{color:#1b7d2b}.nws-status{color:#888}"
    ".nws-record{color:#a06000}</style>"
)


def html_listing(
    records: Sequence[Mapping[str, Any]],
    *,
    t0_ns: int | None = None,
    title: str = "",
    limit: int = 200,
) -> str:
    """An HTML table of ``records`` for a notebook: time, direction, ``#seq``, event, and
    the frame's summary that opens (a ``<details>``) onto its full JSON.

    Shows the first ``limit`` records and says how many more there are: a notebook is no
    place for a million rows (use ``to_frame()``). Every value is HTML-escaped.
    """
    rows = []
    shown = [r for r in records if r.get("kind") != "meta"]
    if t0_ns is None:
        t0_ns = next((r["t_mono_ns"] for r in shown if type(r.get("t_mono_ns")) is int), None)
    for record in shown[:limit]:
        kind = record.get("kind", "frame")
        when = _seconds(record, t0_ns).strip()
        if kind == "frame":
            arrow = _ARROWS.get(str(record.get("dir")), "?")
            name = record.get("event") or record.get("type") or record.get("parse_error") or "?"
            css = _kind_of(record) or "plain"
            what = (
                f"<details><summary>{html.escape(summary(record))}</summary>"
                f"<pre>{html.escape(frame_json(record))}</pre></details>"
            )
            cells = [when, arrow, f"#{record.get('seq', '?')}", _safe(name, 40), what]
        else:
            css = "record"
            line = format_record(record, None).strip()
            cells = [when, "", "", _safe(kind), html.escape(line)]
        # The payload cell is HTML already (escaped above); the others are text.
        escaped = [*(html.escape(c) for c in cells[:4]), cells[4]]
        rows.append(f'<tr class="nws-{css}">' + "".join(f"<td>{c}</td>" for c in escaped) + "</tr>")
    more = len(shown) - limit
    caption = html.escape(title) + (f" (first {limit} of {len(shown)} records)" if more > 0 else "")
    return (
        f'{_HTML_STYLE}<table class="nws-list"><caption>{caption}</caption>'
        "<thead><tr><th>t</th><th></th><th>seq</th><th>event</th><th>payload</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def select_frames(
    records: Sequence[R],
    *,
    event: str | Iterable[str] | None = None,
    direction: str | None = None,
    text: str | re.Pattern[str] | None = None,
    run: int | str | None = None,
) -> list[R]:
    """The frame records of ``records`` that match every criterion given, in order (the
    records themselves, not copies).

    ``event``: a name or several (the normalized name: ``agent_thinking`` whatever the
    envelope); ``direction``: ``"send"`` or ``"receive"``; ``text``: a regular expression
    searched in the raw frame text; ``run``: a run's number in this trace (1, 2, …) or its
    label (``"connect#2"``), runs as :func:`netra_ws.analysis.split_runs` defines them.
    Raises ``ValueError`` for an unknown direction, a bad expression or a run that is not
    there (the message lists the runs that are).
    """
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    names = {event} if isinstance(event, str) else set(event) if event is not None else None
    try:
        pattern = re.compile(text) if isinstance(text, str) else text
    except re.error as exc:
        raise ValueError(f"bad regular expression {text!r}: {exc}") from None
    frames = [r for r in records if r.get("kind", "frame") == "frame"]
    if run is not None:
        frames = _run_frames(frames, run)
    return [
        f
        for f in frames
        if (names is None or f.get("event") in names)
        and (direction is None or f.get("dir") == direction)
        and (pattern is None or pattern.search(str(f.get("data", ""))) is not None)
    ]


def _run_frames(frames: list[R], run: int | str) -> list[R]:
    from .analysis import split_runs  # loads pandas: only when a run is asked for

    runs = split_runs(frames)
    # A trace is one stream, so a label ("connect#2") is its number after the "#".
    number = str(run).rpartition("#")[2]
    for found in runs:
        if number == str(found.number):
            return [frames[i] for i in found.frames]
    known = ", ".join(f"{r.number} ({r.label})" for r in runs) or "none"
    raise ValueError(f"no run {run!r} in this trace; its runs: {known}")
