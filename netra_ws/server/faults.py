"""Fault injection: what goes wrong in a run, as a plan the server shell executes. Pure.

A fault is written as a SPEC string (``serve --fault SPEC``, repeatable, or
``ServerConfig(faults=[…])``)::

    SPEC   := KIND ":" TARGET [":" OPTION]… ["@" SCOPE ["," SCOPE]…]
    EVENT  := NAME ["#" N]      the N-th NAME event of the run (default #1), e.g. agent_thinking#2

    drop:EVENT                  the event is never sent (its time still passes)
    duplicate:EVENT             the event is sent twice, byte for byte
    reorder:EVENT,EVENT         the two events swap places (the timing stays put)
    stall:EVENT:SECONDS         the event (and all after it) comes SECONDS late
    cross-deliver:EVENT         a copy of the event from another user's run (other run_id,
                                thread_id and user_id) follows it: a cross-delivery
    tcp-close:after=EVENT       the TCP connection drops after EVENT, no close frame (1006)
    close-1011:after=EVENT      the server closes with 1011 (internal error) after EVENT
    malformed:after=EVENT       a text frame that is not valid JSON follows EVENT
    binary:after=EVENT          a binary frame follows EVENT
    oversize:after=EVENT[:bytes=N]  a JSON text frame of N bytes (default: the server's
                                    max_message_size + 1) follows EVENT

    SCOPE  := run=N             only the N-th run of each connection (from 1)
            | conn=N            only the N-th connection of the server (from 1)
            | p=P               each run independently with probability P (seeded)

For example ``drop:tool_completed``, ``stall:agent_thinking#2:2.5@run=2``,
``oversize:after=agent_started:bytes=2000000@conn=3,p=0.5``. NAME is an agent event
(``agent_started`` … ``agent_error``) or, for a replayed trace, a status event such as
``heartbeat``. Without a scope a fault hits every run of every connection.

:func:`plan_run` applies the faults to a run's steps and returns :class:`Action` objects;
the server sends them and logs every fault on the ``netra_ws.server`` logger as
``FAULT <kind> <event> run=<run_id> conn=<connection_id>`` when it happens, so a test or a
notebook can check that the client saw exactly that.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

from ..events import AGENT_EVENTS, STATUS_TYPES

__all__ = [
    "BINARY_FRAME",
    "FAULT_GRAMMAR",
    "FAULT_KINDS",
    "MALFORMED_FRAME",
    "Action",
    "Fault",
    "oversize_frame",
    "parse_fault",
    "plan_run",
]

# The grammar as ``serve --help`` prints it; the module docstring holds the same text (a
# test keeps the two equal).
FAULT_GRAMMAR = """\
SPEC   := KIND ":" TARGET [":" OPTION]… ["@" SCOPE ["," SCOPE]…]
EVENT  := NAME ["#" N]      the N-th NAME event of the run (default #1), e.g. agent_thinking#2

drop:EVENT                  the event is never sent (its time still passes)
duplicate:EVENT             the event is sent twice, byte for byte
reorder:EVENT,EVENT         the two events swap places (the timing stays put)
stall:EVENT:SECONDS         the event (and all after it) comes SECONDS late
cross-deliver:EVENT         a copy of the event from another user's run (other run_id,
                            thread_id and user_id) follows it: a cross-delivery
tcp-close:after=EVENT       the TCP connection drops after EVENT, no close frame (1006)
close-1011:after=EVENT      the server closes with 1011 (internal error) after EVENT
malformed:after=EVENT       a text frame that is not valid JSON follows EVENT
binary:after=EVENT          a binary frame follows EVENT
oversize:after=EVENT[:bytes=N]  a JSON text frame of N bytes (default: the server's
                                max_message_size + 1) follows EVENT

SCOPE  := run=N             only the N-th run of each connection (from 1)
        | conn=N            only the N-th connection of the server (from 1)
        | p=P               each run independently with probability P (seeded)
"""

FAULT_KINDS = (
    "drop",
    "duplicate",
    "reorder",
    "stall",
    "cross-deliver",
    "tcp-close",
    "close-1011",
    "malformed",
    "binary",
    "oversize",
)
# Kinds that act on an event, and kinds that inject something after one.
_ON_EVENT = ("drop", "duplicate", "reorder", "stall", "cross-deliver")
_AFTER_EVENT = ("tcp-close", "close-1011", "malformed", "binary", "oversize")
_KNOWN_EVENTS = frozenset({*AGENT_EVENTS, *STATUS_TYPES, "error_message", "ack"})
_SCOPE_KEYS = ("run", "conn", "p")

# What the injected frames look like: obviously injected to anyone reading a trace.
MALFORMED_FRAME = '{"type": "agent_thinking", "payload": {"reasoning": "cut short by a fault'
BINARY_FRAME = b"\x00\xffnetra-ws injected binary frame\x00\x01\x02"

_GRAMMAR_HINT = (
    "write KIND:TARGET[:OPTION][@SCOPE,…], e.g. drop:tool_completed, stall:agent_thinking#2:2.5,"
    " close-1011:after=agent_thinking@run=2 (see netra_ws.server.faults)"
)


@dataclass(frozen=True)
class Fault:
    """One parsed fault SPEC. Build it with :func:`parse_fault`.

    ``target`` (and ``other`` for reorder) are event labels such as ``agent_thinking#1``;
    ``run``/``connection`` restrict it (None: every one); ``probability`` is per run.
    """

    kind: str
    target: str
    other: str | None = None
    seconds: float = 0.0
    size: int | None = None
    run: int | None = None
    connection: int | None = None
    probability: float = 1.0

    @property
    def description(self) -> str:
        """What the server logs after ``FAULT`` when it applies this fault."""
        if self.kind == "reorder":
            return f"reorder {self.target},{self.other}"
        if self.kind == "stall":
            return f"stall {self.target} {self.seconds:g}s"
        if self.kind in _AFTER_EVENT:
            return f"{self.kind} after={self.target}"
        return f"{self.kind} {self.target}"

    def selects(self, connection: int, run: int) -> bool:
        """True when the scope (``conn=``, ``run=``) includes this run; ``p=`` is drawn later."""
        return (self.connection is None or self.connection == connection) and (
            self.run is None or self.run == run
        )


def parse_fault(spec: str) -> Fault:
    """Parse one SPEC (grammar in the module docstring); ``ValueError`` says what is wrong."""

    def problem(text: str) -> ValueError:
        return ValueError(f"fault {spec!r}: {text}; {_GRAMMAR_HINT}")

    body, _, scope = spec.strip().partition("@")
    kind, _, rest = body.partition(":")
    if kind not in FAULT_KINDS:
        raise problem(f"unknown kind {kind!r}, known: {', '.join(FAULT_KINDS)}")
    positional: list[str] = []
    options: dict[str, str] = {}
    scopes = [part for part in scope.replace("@", ",").split(",") if part]
    for part in [*(rest.split(":") if rest else []), *scopes]:
        key, eq, value = part.partition("=")
        if not eq and part in scopes:
            raise problem(f"scope {part!r} is not run=N, conn=N or p=P")
        if not eq:
            positional.append(part)
        elif key in options:
            raise problem(f"{key}= given twice")
        else:
            options[key] = value

    allowed = {
        "stall": ("seconds",),
        "oversize": ("after", "bytes"),
    }.get(kind, ("after",) if kind in _AFTER_EVENT else ())
    for key in options:
        if key not in (*allowed, *_SCOPE_KEYS):
            raise problem(f"{kind} takes no {key}=")

    def event(text: str) -> str:
        name, hash_, number = text.strip().partition("#")
        if name not in _KNOWN_EVENTS:
            raise problem(f"unknown event {name!r}, known: {', '.join(sorted(_KNOWN_EVENTS))}")
        if hash_ and not (number.isdigit() and int(number) >= 1):
            raise problem(f"{text!r}: the occurrence after # must be a whole number >= 1")
        return f"{name}#{int(number) if hash_ else 1}"

    def number(key: str, convert: Callable[[str], Any], low: float, high: float) -> Any:
        try:
            value = convert(options[key])
        except ValueError:
            raise problem(f"{key}= must be a number, not {options[key]!r}") from None
        if not low <= value <= high:
            raise problem(f"{key}= must be between {low:g} and {high:g}")
        return value

    fault: dict[str, Any] = {"kind": kind}
    if kind in _AFTER_EVENT:
        if positional or "after" not in options:
            raise problem(f"{kind} needs after=EVENT and nothing else")
        fault["target"] = event(options["after"])
        if "bytes" in options:
            fault["size"] = number("bytes", int, 64, 2**31)
    elif kind == "reorder":
        pair = positional[0].split(",") if len(positional) == 1 else []
        if len(pair) != 2:
            raise problem("reorder needs two events: reorder:EVENT,EVENT")
        fault["target"], fault["other"] = event(pair[0]), event(pair[1])
        if fault["target"] == fault["other"]:
            raise problem("reorder needs two different events")
    elif kind == "stall":
        if len(positional) == 2 and "seconds" not in options:
            options["seconds"] = positional.pop()
        if len(positional) != 1 or "seconds" not in options:
            raise problem("stall needs an event and seconds: stall:EVENT:SECONDS")
        fault["target"] = event(positional[0])
        fault["seconds"] = number("seconds", float, 0, 3600)
    else:
        if len(positional) != 1:
            raise problem(f"{kind} needs exactly one event: {kind}:EVENT")
        fault["target"] = event(positional[0])
    if "run" in options:
        fault["run"] = number("run", int, 1, 2**31)
    if "conn" in options:
        fault["connection"] = number("conn", int, 1, 2**31)
    if "p" in options:
        fault["probability"] = number("p", float, 0, 1)
    return Fault(**fault)


# --- planning -------------------------------------------------------------------------


class Timed(Protocol):
    """What the planner needs from a step: its event name and its delay (seconds)."""

    @property
    def event(self) -> str | None: ...

    @property
    def delay(self) -> float: ...


@dataclass(frozen=True)
class Action:
    """One thing the server does in a run, after waiting ``delay`` seconds.

    ``kind``: ``send`` (render and send ``item``, the step labelled ``label``), ``skip``
    (send nothing: a dropped step), ``raw`` (send ``data`` as is: str text, bytes binary),
    ``close`` (close frame with ``code``/``reason``; nothing follows), ``abort`` (drop the
    TCP connection without a close frame; nothing follows) or ``foreign`` (render ``item`` as
    another user's run would: a cross-delivery). ``notes`` are the faults to log.
    """

    kind: Literal["send", "skip", "raw", "close", "abort", "foreign"]
    delay: float
    label: str | None = None
    item: Any = None
    data: str | bytes | None = None
    code: int | None = None
    reason: str = ""
    notes: tuple[str, ...] = ()


def plan_run(
    steps: Sequence[Timed],
    faults: Iterable[Fault],
    *,
    connection: int = 1,
    run: int = 1,
    rng: random.Random | None = None,
    size_limit: int = 1024 * 1024,
) -> list[Action]:
    """Apply ``faults`` (in order) to one run's ``steps`` and return what the server does.

    ``connection`` and ``run`` (from 1) decide which scoped faults apply; ``rng`` draws the
    ``p=`` ones (use ``run_rng(seed, connection, run, "faults")``); ``size_limit`` is the
    server's advertised max_message_size, the default size of an oversize frame. A fault
    whose event the run does not have is left out. Without faults every step becomes one
    ``send`` action, labelled ``<event>#<n>``.
    """
    rng = rng or random.Random(0)
    counts: Counter[str | None] = Counter()
    actions: list[Action] = []
    for step in steps:
        counts[step.event] += 1
        label = f"{step.event or 'frame'}#{counts[step.event]}"
        actions.append(Action("send", step.delay, label=label, item=step))
    for fault in faults:
        if not fault.selects(connection, run):
            continue
        if fault.probability < 1 and not rng.random() < fault.probability:
            continue
        actions = _APPLY[fault.kind](actions, fault, size_limit)
    return actions


def oversize_frame(size: int) -> str:
    """A valid JSON text frame of exactly ``size`` bytes (``{"type":"oversize_frame",…}``)."""
    head, tail = '{"type":"oversize_frame","padding":"', '"}'
    return head + "x" * max(size - len(head) - len(tail), 0) + tail


def _find(actions: list[Action], label: str) -> int | None:
    for index, action in enumerate(actions):
        if action.label == label and action.kind in ("send", "skip"):
            return index
    return None


def _noted(action: Action, note: str, **changes: Any) -> Action:
    """``action`` with ``changes`` and one more fault to announce (faults can stack)."""
    return replace(action, notes=(*action.notes, note), **changes)


def _drop(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    at = _find(actions, fault.target)
    if at is None:
        return actions
    out = list(actions)
    out[at] = _noted(out[at], fault.description, kind="skip")
    return out


def _duplicate(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    at = _find(actions, fault.target)
    if at is None or actions[at].kind != "send":
        return actions
    copy = replace(actions[at], delay=0.0, notes=(fault.description,))
    return [*actions[: at + 1], copy, *actions[at + 1 :]]


def _reorder(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    first, second = _find(actions, fault.target), _find(actions, fault.other or "")
    if first is None or second is None:
        return actions
    first, second = sorted((first, second))
    a, b = actions[first], actions[second]
    out = list(actions)
    # Contents swap, delays stay: the wire shows the same rhythm with the events exchanged.
    out[first] = _noted(b, fault.description, delay=a.delay)
    out[second] = replace(a, delay=b.delay)
    return out


def _cross_deliver(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    at = _find(actions, fault.target)
    if at is None or actions[at].kind != "send":
        return actions
    foreign = Action("foreign", 0.0, item=actions[at].item, notes=(fault.description,))
    return [*actions[: at + 1], foreign, *actions[at + 1 :]]


def _stall(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    at = _find(actions, fault.target)
    if at is None:
        return actions
    out = list(actions)
    out[at] = _noted(out[at], fault.description, delay=out[at].delay + fault.seconds)
    return out


def _injected(fault: Fault, size_limit: int) -> Action:
    notes = (fault.description,)
    if fault.kind == "tcp-close":
        return Action("abort", 0.0, notes=notes)
    if fault.kind == "close-1011":
        reason = "Internal error (injected fault)"
        return Action("close", 0.0, code=1011, reason=reason, notes=notes)
    if fault.kind == "malformed":
        return Action("raw", 0.0, data=MALFORMED_FRAME, notes=notes)
    if fault.kind == "binary":
        return Action("raw", 0.0, data=BINARY_FRAME, notes=notes)
    size = fault.size if fault.size is not None else size_limit + 1
    return Action("raw", 0.0, data=oversize_frame(size), notes=(f"{notes[0]} bytes={size}",))


def _after(actions: list[Action], fault: Fault, size_limit: int) -> list[Action]:
    at = _find(actions, fault.target)
    if at is None:
        return actions
    injected = _injected(fault, size_limit)
    if injected.kind in ("close", "abort"):
        return [*actions[: at + 1], injected]  # the connection is gone: nothing follows
    return [*actions[: at + 1], injected, *actions[at + 1 :]]


_APPLY: dict[str, Callable[[list[Action], Fault, int], list[Action]]] = {
    "drop": _drop,
    "duplicate": _duplicate,
    "reorder": _reorder,
    "stall": _stall,
    "cross-deliver": _cross_deliver,
    **{kind: _after for kind in _AFTER_EVENT},
}
