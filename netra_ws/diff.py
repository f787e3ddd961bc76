"""What changed between two traces (or two runs): "local passes, staging fails — what differs?"

:func:`diff_traces` compares what each side received, side A being the one that works:

- **events**: per event name, how many arrived on each side; those missing on B, those
  extra on B, and whether the events both sides share came in another order;
- **users**: which user the server attached each connection to (``connection_established``),
  with the demo and made-up fallback users named as such (a demo user's silence says
  nothing about a real user: see :func:`netra_ws.verdicts.diagnose`);
- **fields**: per event type, the fields whose values differ (envelope, user, agent,
  tool, error code, payload keys), leaving out the ones that differ on every frame (run
  ids, timestamps, connection ids);
- **timing**: handshake, time to the first agent event, run duration and each phase
  (thinking, each tool), as medians on each side and their delta;
- **connection**: how each side was opened and closed, and what server it met.

Typical use::

    d = diff_traces("data/local.jsonl", "data/staging.jsonl")
    print(d)                 # the terminal text of `netra-ws diff`
    d.to_frame()             # one row per difference, for pandas
    d.events, d.fields, d.timing    # the tables behind it
    diff_traces(trace.filter(run=1), trace.filter(run=2))   # two runs of one trace

The module is pure: it reads traces, never the network.
"""

from __future__ import annotations

import html
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .browse import _safe
from .events import AGENT_EVENTS, STATUS_TYPES, is_demo_user, is_fallback_user, squeeze
from .trace import Trace, read_trace
from .verdicts import first_frame_facts, label_of

__all__ = ["TraceDiff", "diff_traces", "load_side"]

# Fields that differ on every frame or connection: comparing them says nothing.
_VOLATILE = frozenset(
    {
        "run_id",
        "thread_id",
        "timestamp",
        "server_ts",
        "connection_id",
        "correlation_id",
        "server_id",
        "message_id",
        "id",
        "seq",
        "t_wall_ns",
        "t_mono_ns",
        "size",
        "data",
        "kind",
        "dir",
    }
)
# The normalized fields compared as such (the payload's copies of them are skipped).
_NORMALIZED = ("envelope", "type", "agent_name", "tool_name", "error_code", "user_id")
# Housekeeping that comes and goes with timing, not with behaviour.
_HOUSEKEEPING = frozenset({"heartbeat", "pong", "heartbeat_ack"})
_ROW_COLUMNS = {
    "aspect": "string",
    "item": "string",
    "a": "string",
    "b": "string",
    "note": "string",
}


@dataclass
class TraceDiff:
    """The differences between trace ``a`` (the one that works) and ``b``.

    ``missing`` / ``extra``: received event names on A only / on B only; ``reordered``:
    the events both have arrived in another order; ``users``: A's and B's user as the server
    named it; ``events``, ``fields``, ``timing``: DataFrames (see :func:`diff_traces`);
    ``headline``: one sentence saying what matters most. Print it, or ``to_frame()``.
    """

    a_name: str
    b_name: str
    missing: list[str]
    extra: list[str]
    reordered: bool
    sequence_a: str
    sequence_b: str
    users: tuple[str | None, str | None]
    events: pd.DataFrame
    fields: pd.DataFrame
    timing: pd.DataFrame
    connection: pd.DataFrame
    headline: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def same(self) -> bool:
        """True when nothing but timing differs."""
        return not (self.missing or self.extra or self.reordered or len(self.fields))

    def to_frame(self) -> pd.DataFrame:
        """Every difference, one row each: aspect (events, order, user, field, timing,
        connection), item, the value on A and on B, and a note."""
        rows: list[dict[str, Any]] = []
        for r in self.events.itertuples(index=False):
            if r.change != "same":
                rows.append(
                    {
                        "aspect": "events",
                        "item": r.event,
                        "a": str(r.a),
                        "b": str(r.b),
                        "note": r.change,
                    }
                )
        if self.reordered:
            rows.append(
                {
                    "aspect": "order",
                    "item": "received events",
                    "a": self.sequence_a,
                    "b": self.sequence_b,
                    "note": "shared events in another order",
                }
            )
        if self.users[0] != self.users[1] and None not in self.users:
            rows.append(
                {
                    "aspect": "user",
                    "item": "connection_established user_id",
                    "a": self.users[0],
                    "b": self.users[1],
                    "note": _user_words(self.users[1]),
                }
            )
        for r in self.fields.itertuples(index=False):
            rows.append(
                {"aspect": "field", "item": f"{r.event}.{r.field}", "a": r.a, "b": r.b, "note": ""}
            )
        for r in self.timing.itertuples(index=False):
            rows.append(
                {
                    "aspect": "timing",
                    "item": r.measure,
                    "a": _seconds(r.a_s),
                    "b": _seconds(r.b_s),
                    "note": _delta(r.delta_s),
                }
            )
        for r in self.connection.itertuples(index=False):
            if str(r.a) != str(r.b):
                rows.append(
                    {"aspect": "connection", "item": r.item, "a": r.a, "b": r.b, "note": ""}
                )
        return pd.DataFrame(rows, columns=list(_ROW_COLUMNS)).astype(_ROW_COLUMNS)

    def to_text(self) -> str:
        """The terminal text of ``netra-ws diff``: the headline, then each aspect.

        Every value from a trace is made safe for a terminal (controls escaped).
        """
        lines = [f"A: {self.a_name}", f"B: {self.b_name}", "", self.headline, ""]
        lines.append(f"received on A: {_safe(self.sequence_a, 300) or '(nothing)'}")
        lines.append(f"received on B: {_safe(self.sequence_b, 300) or '(nothing)'}")
        if self.missing:
            lines.append(f"missing on B:  {', '.join(_safe(n) for n in self.missing)}")
        if self.extra:
            lines.append(f"extra on B:    {', '.join(_safe(n) for n in self.extra)}")
        if self.reordered:
            lines.append("order:         the events both received arrived in another order")
        user_a, user_b = self.users
        if user_a != user_b and None not in (user_a, user_b):
            words = _user_words(user_b)
            lines.append(
                f"user:          A {_safe(user_a)}, B {_safe(user_b)}"
                + (f" ({words})" if words else "")
            )
        counts = self.events[self.events["change"] != "same"]
        if len(counts):
            lines += ["", "events (count on A → B):"]
            lines += [
                f"  {_safe(r.event):<28} {r.a:>3} → {r.b:<3} {r.change}"
                for r in counts.itertuples(index=False)
            ]
        if len(self.fields):
            lines += ["", "fields that differ:"]
            lines += [
                f"  {_safe(r.event)}.{_safe(r.field)}: A {_safe(r.a)} | B {_safe(r.b)}"
                for r in self.fields.itertuples(index=False)
            ]
        if len(self.timing):
            lines += ["", "timing (median, A → B):"]
            lines += [
                f"  {r.measure:<28} {_seconds(r.a_s):>9} → {_seconds(r.b_s):<9} {_delta(r.delta_s)}"
                for r in self.timing.itertuples(index=False)
            ]
        changed = self.connection[self.connection["a"] != self.connection["b"]]
        if len(changed):
            lines += ["", "connection:"]
            lines += [
                f"  {r.item:<28} A {_safe(r.a)} | B {_safe(r.b)}"
                for r in changed.itertuples(index=False)
            ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        return (
            f"<TraceDiff {self.a_name!r} vs {self.b_name!r}: missing {self.missing or 'none'},"
            f" extra {self.extra or 'none'}, reordered {self.reordered}>"
        )

    def _repr_html_(self) -> str:
        table = self.to_frame().to_html(index=False, na_rep="")
        return (
            f"<p><b>A</b> {html.escape(self.a_name)}<br><b>B</b> {html.escape(self.b_name)}</p>"
            f"<p>{html.escape(self.headline)}</p>{table}"
        )


def load_side(side: Trace | str | os.PathLike[str]) -> Trace:
    """A side of a diff: a :class:`Trace`, or a path; ``PATH#N`` is run N of that trace.

    Raises ``ValueError`` for a run that is not there, ``OSError`` for a missing file.
    """
    if isinstance(side, Trace):
        return side
    text = os.fspath(side)
    path, hash_, run = text.rpartition("#")
    if hash_ and run.isdigit() and not Path(text).exists():
        return read_trace(path).filter(run=int(run))
    return read_trace(text)


def _name(trace: Trace) -> str:
    where = trace.path.name if trace.path is not None else f"session {trace.session}"
    labels = [
        f"{key} {label_of(trace, key)}"
        for key in ("dialect", "server_auth")
        if label_of(trace, key) is not None
    ]
    return where + (f" ({', '.join(labels)})" if labels else "")


def _received_names(trace: Trace) -> list[str]:
    return [
        str(f.get("event") or f.get("parse_error") or "?")
        for f in trace.frames
        if f.get("dir") == "receive" and f.get("event") not in _HOUSEKEEPING
    ]


def _event_table(a: list[str], b: list[str]) -> pd.DataFrame:
    count_a, count_b = Counter(a), Counter(b)
    order = list(dict.fromkeys([*a, *b]))
    rows = []
    for name in order:
        na, nb = count_a[name], count_b[name]
        if nb == 0:
            change = "missing on B"
        elif na == 0:
            change = "extra on B"
        elif na > nb:
            change = "fewer on B"
        elif na < nb:
            change = "more on B"
        else:
            change = "same"
        rows.append({"event": name, "a": na, "b": nb, "delta": nb - na, "change": change})
    columns = {"event": "string", "a": "int64", "b": "int64", "delta": "int64", "change": "string"}
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def _reordered(a: list[str], b: list[str]) -> bool:
    """Do the events both sides received come in another order (first arrivals compared)?"""
    shared = set(a) & set(b)
    first_a = [n for n in dict.fromkeys(a) if n in shared]
    first_b = [n for n in dict.fromkeys(b) if n in shared]
    return first_a != first_b


def _field_values(trace: Trace) -> dict[str, dict[str, set[str]]]:
    """event -> field -> the values it took (JSON text), over the received frames."""
    from .browse import _payload

    out: dict[str, dict[str, set[str]]] = {}
    for frame in trace.frames:
        if frame.get("dir") != "receive" or not frame.get("event"):
            continue
        fields = out.setdefault(str(frame["event"]), {})
        values: dict[str, Any] = {k: frame.get(k) for k in _NORMALIZED}
        values.update(
            {
                f"payload.{k}": v
                for k, v in (_payload(frame) or {}).items()
                if k not in _NORMALIZED and not isinstance(v, (dict, list))
            }
        )
        for key, value in values.items():
            if key.rsplit(".", 1)[-1] in _VOLATILE or value is None:
                continue
            fields.setdefault(key, set()).add(json.dumps(value, default=str)[:200])
    return out


def _field_table(a: Trace, b: Trace) -> pd.DataFrame:
    """Fields of the events both sides received whose values differ.

    A field counts when it is constant on each side and the constants differ, or present on
    one side only; a field whose value changes from frame to frame (a message text, a
    thought) is behaviour, not a difference of configuration, and is left out.
    """
    va, vb = _field_values(a), _field_values(b)
    rows = []
    for event in [e for e in va if e in vb]:
        fa, fb = va[event], vb[event]
        for key in dict.fromkeys([*fa, *fb]):
            sa, sb = fa.get(key), fb.get(key)
            if sa is None or sb is None:
                rows.append(
                    {
                        "event": event,
                        "field": key,
                        "a": _one(sa) if sa else "(absent)",
                        "b": _one(sb) if sb else "(absent)",
                    }
                )
            elif len(sa) == 1 and len(sb) == 1 and sa != sb:
                rows.append({"event": event, "field": key, "a": _one(sa), "b": _one(sb)})
    columns = {"event": "string", "field": "string", "a": "string", "b": "string"}
    return pd.DataFrame(rows, columns=list(columns)).astype(columns)


def _one(values: set[str]) -> str:
    return next(iter(values)) if len(values) == 1 else f"{len(values)} values"


def _median(series: pd.Series) -> float:
    values = pd.to_numeric(series, errors="coerce").dropna()
    return float(values.median()) if len(values) else float("nan")


def _timings(trace: Trace) -> dict[str, float]:
    from .analysis import phase_durations, run_stats

    out: dict[str, float] = {}
    opened = next((r for r in trace.records if r.get("kind") == "open"), None)
    if opened is not None and isinstance(opened.get("connect_ms"), (int, float)):
        out["handshake"] = float(opened["connect_ms"]) / 1000
    facts = first_frame_facts(trace.records)
    established = facts.get("established_ms")
    if facts.get("first_frame") == "connection_established" and isinstance(
        established, (int, float)
    ):
        out["connection_established"] = established / 1000
    df = trace.to_frame()
    if not len(df):
        return out
    runs = run_stats(df)
    out["time to first agent event"] = _median(runs["time_to_first_event_s"])
    out["run duration"] = _median(runs["duration_s"])
    phases = phase_durations(df)
    for phase, group in phases.groupby("phase", sort=False):
        out[f"phase {phase}"] = _median(group["duration_s"])
    return out


def _timing_table(a: Trace, b: Trace) -> pd.DataFrame:
    ta, tb = _timings(a), _timings(b)
    rows = [
        {"measure": key, "a_s": ta.get(key, float("nan")), "b_s": tb.get(key, float("nan"))}
        for key in dict.fromkeys([*ta, *tb])
    ]
    df = pd.DataFrame(rows, columns=["measure", "a_s", "b_s"]).astype(
        {"measure": "string", "a_s": "float64", "b_s": "float64"}
    )
    df["delta_s"] = df["b_s"] - df["a_s"]
    # A measure neither side has (a run that never ended on both) is no difference.
    return df[df[["a_s", "b_s"]].notna().any(axis=1)].reset_index(drop=True)


def _connection_facts(trace: Trace) -> dict[str, str]:
    opened = next((r for r in trace.records if r.get("kind") == "open"), {})
    closed = next((r for r in trace.records if r.get("kind") == "close"), {})
    error = next((r for r in trace.records if r.get("kind") == "error"), {})
    facts = first_frame_facts(trace.records)
    return {
        "server": f"{label_of(trace, 'dialect') or '?'}"
        f" / auth {label_of(trace, 'server_auth') or '?'}",
        "http status": str(opened.get("http_status", error.get("http_status", "—"))),
        "auth form": str(opened.get("auth", "—")),
        "first frame": str(facts.get("first_frame") or "—"),
        "mode": str(facts.get("mode") or "—"),
        "close": f"{closed.get('code', '—')} by {closed.get('initiated_by', '—')}"
        if closed
        else "—",
        "error": str(error.get("exception", "—")),
    }


def _connection_table(a: Trace, b: Trace) -> pd.DataFrame:
    fa, fb = _connection_facts(a), _connection_facts(b)
    rows = [{"item": k, "a": fa[k], "b": fb[k]} for k in fa]
    return pd.DataFrame(rows, columns=["item", "a", "b"]).astype("string")


def _user_words(user: Any) -> str:
    if is_demo_user(user):
        return "the demo user: the server did not use the token"
    if is_fallback_user(user):
        return "a made-up fallback user: the server did not accept the token"
    return ""


def _headline(missing: list[str], b_agent: int, users: tuple[Any, Any], same_user: bool) -> str:
    """What matters most, in the words of :func:`netra_ws.verdicts.diagnose`."""
    lost = [n for n in missing if n in AGENT_EVENTS]
    if not lost:
        if missing:
            return f"B lacks {', '.join(missing)}; the agent events are the same."
        return "B received the same agent events as A."
    events = ", ".join(lost)
    user_b = users[1]
    if is_demo_user(user_b) or is_fallback_user(user_b):
        return (f"B got none of {events}" if not b_agent else f"B is missing {events}") + (
            f", and B's server attached the connection to {user_b!r}, "
            f"{_user_words(user_b)} — so B says nothing about a real user: compare with a "
            "server that enforces authentication, with a valid token."
        )
    if same_user and user_b is not None and not b_agent:
        return (
            f"B got none of {events}, although its server accepted the connection as "
            f"{user_b!r}, the same user as A: user_message was swallowed, a server-side "
            "defect, not authentication."
        )
    return f"B is missing {events}" + (
        f" (user A {users[0]!r}, B {user_b!r})." if not same_user else "."
    )


def diff_traces(a: Trace | str | os.PathLike[str], b: Trace | str | os.PathLike[str]) -> TraceDiff:
    """Compare trace ``a`` (the one that works) with ``b``: events, users, fields, timing.

    ``a`` and ``b`` are :class:`Trace` objects or paths (``PATH#N``: run N of the trace;
    or pass ``trace.filter(run=N)``). Returns a :class:`TraceDiff`: print it, read its
    ``headline``, ``missing`` and ``extra``, or ``to_frame()`` it. Heartbeats are left out
    of the comparison (they follow timing, not behaviour).
    """
    ta, tb = load_side(a), load_side(b)
    names_a, names_b = _received_names(ta), _received_names(tb)
    missing = [n for n in dict.fromkeys(names_a) if n not in set(names_b)]
    extra = [n for n in dict.fromkeys(names_b) if n not in set(names_a)]
    users = (
        first_frame_facts(ta.records).get("user_id"),
        first_frame_facts(tb.records).get("user_id"),
    )
    b_agent = sum(1 for n in names_b if n in AGENT_EVENTS)
    notes = []
    if (
        ta.path is not None
        and tb.path is not None
        and ta.path == tb.path
        and ta.session == tb.session
    ):
        notes.append("A and B come from the same trace file")
    return TraceDiff(
        a_name=_name(ta),
        b_name=_name(tb),
        missing=missing,
        extra=extra,
        reordered=_reordered(names_a, names_b),
        sequence_a=squeeze(n for n in names_a if n not in STATUS_TYPES),
        sequence_b=squeeze(n for n in names_b if n not in STATUS_TYPES),
        users=users,
        events=_event_table(names_a, names_b),
        fields=_field_table(ta, tb),
        timing=_timing_table(ta, tb),
        connection=_connection_table(ta, tb),
        headline=_headline(missing, b_agent, users, users[0] == users[1]),
        notes=notes,
    )


def _seconds(value: Any) -> str:
    return "—" if pd.isna(value) else f"{value * 1000:.1f} ms"


def _delta(value: Any) -> str:
    return "" if pd.isna(value) else f"{value * 1000:+.1f} ms"
