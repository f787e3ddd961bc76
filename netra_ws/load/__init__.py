"""Load: the Issue #937 workflow as many users at once, judged per session. Pure.

The Locust side lives in :mod:`netra_ws.load.locustfile` (``pip install netra-ws[load]``;
run ``locust -f <that file> --host ws://… --headless -u 2000 -r 200 -t 60s``). Each
simulated user records its session into a :class:`~netra_ws.trace.TraceWriter` and hands
the records here: :func:`judge_session` turns them into what Locust reports, one timing per
phase and at most one failure per session, named by :data:`FAILURES`. Nothing here imports
Locust or gevent (importing Locust monkey-patches the whole process), so the judgement is
tested, and usable, without them.

Which run is the user's own: the ``run_id`` the user sent with its ``user_message`` (the
reference server echoes it); a server that assigns its own run id (none echoes the sent one)
makes the first agent event's run id the user's. The user is the one ``connection_established``
named. Any agent event of another run, or for another user, is a cross-delivery.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import AGENT_EVENTS, TERMINAL_EVENTS
from ..expect import DEFAULT_PROFILE, Checks, Profile, check_run

__all__ = [
    "CONNECT",
    "FAILURES",
    "FIRST_EVENT",
    "RUN",
    "SessionResult",
    "failure_of",
    "foreign_events",
    "judge_session",
    "trace_path",
]

# Locust's request names, one stats row per phase; gaps are "gap → <event>" (the wait
# before that event), so a slow tool shows on its own row.
CONNECT = "connect"
FIRST_EVENT = "first event"
RUN = "run"

# What can go wrong in a session, worst first: a session reports the first that applies.
FAILURES: tuple[str, ...] = (
    "auth refused",  # HTTP 401/403 at the handshake, or close 1008 after it
    "connect failed",  # no WebSocket: refused, reset, HTTP error other than auth
    "cross-delivered",  # an agent event of another user's run reached this user
    "timeout",  # no connection_established, or no terminal event, in time
    "closed",  # the server closed the connection before the terminal event
    "missing event",  # the profile's required events did not all arrive
    "out of order",  # the events arrived, in an order the protocol forbids
    "unpaired tool",  # tool_executing / tool_completed do not pair up
    "missing field",  # an event lacks a field the profile requires
    "unparsable frame",  # a frame that is not the protocol's JSON
    "over budget",  # the profile's timing budgets (first event, largest gap) exceeded
)

# check_run's check names → the failure each one means.
_CHECK_FAILURES = {
    "agent events": "missing event",
    "required events": "missing event",
    "order": "out of order",
    "tool pairing": "unpaired tool",
    "frames parse": "unparsable frame",
}


@dataclass(frozen=True)
class SessionResult:
    """What one session reports: ``timings`` as (Locust name, milliseconds) in the order
    they happened, then ``failure`` (a name of :data:`FAILURES`, None when the session
    passed) with ``detail``, the plain-words why (ids and seqs to find in the trace)."""

    timings: tuple[tuple[str, float], ...]
    failure: str | None
    detail: str = ""

    @property
    def run_ms(self) -> float | None:
        """The run's duration (``user_message`` sent → terminal event), None if it never ended."""
        return next((ms for name, ms in self.timings if name == RUN), None)


def foreign_events(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The received agent events that belong to another user's run (see the module doc).

    >>> sent = {"kind": "frame", "dir": "send", "event": "user_message", "run_id": "r1"}
    >>> def got(run, user=None):
    ...     return {"kind": "frame", "dir": "receive", "event": "agent_started",
    ...             "run_id": run, "user_id": user}
    >>> hello = {"kind": "frame", "dir": "receive", "event": "connection_established",
    ...          "user_id": "alice"}
    >>> [f["run_id"] for f in foreign_events([hello, sent, got("r1", "alice"), got("r9")])]
    ['r9']
    >>> [f["user_id"] for f in foreign_events([hello, sent, got("r1", "bob")])]
    ['bob']
    >>> hello["user_id"] = "ali..."  # as the backend truncates it
    >>> foreign_events([hello, sent, got("r1", "alice")])
    []
    >>> foreign_events([hello, sent, got("r7"), got("r7")])  # the server named the run r7
    []
    """
    frames = [r for r in records if r.get("kind") == "frame"]
    received = [f for f in frames if f.get("dir") == "receive"]
    user = next(
        (f.get("user_id") for f in received if f.get("event") == "connection_established"), None
    )
    events = [f for f in received if f.get("event") in AGENT_EVENTS]
    sent = {
        f.get("run_id") for f in frames if f.get("dir") == "send" and f.get("run_id") is not None
    }
    own = sent if any(f.get("run_id") in sent for f in events) else set()
    if not own and events:
        own = {events[0].get("run_id")}
    return [
        f for f in events if f.get("run_id") not in own or not _same_user(user, f.get("user_id"))
    ]


def _same_user(established: Any, seen: Any) -> bool:
    """True unless both are known and differ. The backend truncates the user id in
    ``connection_established`` (``"load-loc..."``): a prefix then matches."""
    if not isinstance(established, str) or not isinstance(seen, str):
        return True
    if established.endswith(("...", "…")):
        return seen.startswith(established.rstrip(".…"))
    return seen == established


def failure_of(checks: Checks) -> tuple[str, str] | None:
    """The first failed check as (failure name, explanation), worst first; None if none."""
    named = []
    for check in checks.failures:
        if check.name.startswith("fields:"):
            failure = "missing field"
        else:
            failure = _CHECK_FAILURES.get(check.name, "over budget")
        named.append((FAILURES.index(failure), failure, f"{check.name}: {check.explanation}"))
    if not named:
        return None
    _, failure, detail = min(named)
    return failure, detail


def judge_session(
    records: Sequence[Mapping[str, Any]],
    *,
    failure: str | None = None,
    detail: str = "",
    profile: str | Path | Mapping[str, Any] | Profile = DEFAULT_PROFILE,
) -> SessionResult:
    """Judge one recorded session: its phase timings and its one failure.

    ``records`` are the session's trace records after the header (``TraceWriter.records``),
    with the ``mark`` the user writes as it starts connecting (label ``load: connect``), the
    ``open`` record of the handshake and every frame both ways. ``failure`` and ``detail``
    are what the network shell saw itself (``auth refused``, ``connect failed``,
    ``timeout``, ``closed``). The order of precedence is :data:`FAILURES`; the profile's
    checks (:func:`netra_ws.expect.check_run`) only speak when the session ended normally.
    Fire each timing as a Locust request, then the failure on :data:`RUN`.
    """
    if failure is not None and failure not in FAILURES:
        raise ValueError(f"unknown failure {failure!r}; known: {', '.join(FAILURES)}")
    timings = _timings(records)
    foreign = foreign_events(records)
    if failure in ("auth refused", "connect failed"):
        return SessionResult(timings, failure, detail)
    if foreign:
        first = foreign[0]
        return SessionResult(
            timings,
            "cross-delivered",
            f"{len(foreign)} agent event(s) of another run: first {first.get('event')} of "
            f"run {first.get('run_id')} for user {first.get('user_id')} (seq {first.get('seq')})",
        )
    if failure is not None:
        return SessionResult(timings, failure, detail)
    failed = failure_of(check_run(list(records), profile))
    if failed is not None:
        return SessionResult(timings, *failed)
    return SessionResult(timings, None)


def trace_path(root: str | Path, worker: str, session: int) -> Path:
    """Where a sampled session's trace goes: ``<root>/<worker>/<worker>-000042.jsonl``.

    ``root`` is the run's ``data/load-<time>`` (the same for every Locust worker), so
    ``load_traces(sorted(Path(root).rglob("*.jsonl")))`` and ``netra-ws report <root>``
    read all workers at once. The file name repeats the worker: ``load_traces`` names each
    trace by its file name, which must not collide across workers.

    >>> trace_path("data/load-x", "worker-1", 42).as_posix()
    'data/load-x/worker-1/worker-1-000042.jsonl'
    """
    return Path(root) / worker / f"{worker}-{session:06d}.jsonl"


def _timings(records: Sequence[Mapping[str, Any]]) -> tuple[tuple[str, float], ...]:
    def ms(start: Mapping[str, Any], end: Mapping[str, Any]) -> float:
        return (int(end["t_mono_ns"]) - int(start["t_mono_ns"])) / 1e6

    out: list[tuple[str, float]] = []
    started = next((r for r in records if r.get("kind") == "mark"), None)
    opened = next((r for r in records if r.get("kind") == "open"), None)
    if started is not None and opened is not None:
        out.append((CONNECT, ms(started, opened)))
    frames = [r for r in records if r.get("kind") == "frame"]
    sent = next((f for f in frames if f.get("dir") == "send"), None)
    if sent is None:
        return tuple(out)
    foreign = {f.get("seq") for f in foreign_events(records)}
    events = [
        f
        for f in frames
        if f.get("dir") == "receive"
        and f.get("event") in AGENT_EVENTS
        and f["seq"] > sent["seq"]
        and f.get("seq") not in foreign
    ]
    if events:
        out.append((FIRST_EVENT, ms(sent, events[0])))
    for before, after in itertools.pairwise(events):
        out.append((f"gap → {after.get('event')}", ms(before, after)))
    terminal = next((f for f in events if f.get("event") in TERMINAL_EVENTS), None)
    if terminal is not None:
        out.append((RUN, ms(sent, terminal)))
    return tuple(out)
