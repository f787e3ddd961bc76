"""Declarative expectations over the frames of a run, and their verdicts. Pure: no network.

Give it what a session recorded (a :class:`~netra_ws.trace.Trace`, ``session.records()``, a
:class:`~netra_ws.client.Collected`, ``trace.to_frame()``, a list of trace records or of
received frames) and it says, check by check, whether the server's events meet a
*profile*::

    checks = check_run(trace, profile="netra-suite")   # or "netra-bridge", a dict, a .json file
    checks.status                                      # "passed" / "failed" / "inconclusive"
    checks.to_frame()                                  # one row per check, for a notebook
    checks["fields: tool_completed"].explanation       # which field, which frame (#seq)

The checks of :func:`check_run`:

- ``agent events``: every ``user_message`` (any run trigger) was answered by agent events.
  None at all is a failure, explained with its likely causes, never a pass;
- ``frames parse``: every frame the server sent is a JSON object (a malformed or binary
  frame fails it, naming its seq and why);
- ``required events``: each run holds the profile's required events;
- ``order``: ``agent_started``, ``agent_thinking``*, (``tool_executing``, ``tool_completed``)*,
  then ``agent_completed`` or ``agent_error`` (PROTOCOL.md §5), per run;
- ``tool pairing``: each ``tool_executing`` answered by a ``tool_completed`` of the same tool;
- ``fields: <event>``: the profile's required fields, per event type;
- ``time to first event``, ``largest gap``, ``total time``: the profile's timing budgets.

Runs are those of :func:`netra_ws.analysis.split_runs` (one definition for the checks and
the timing analysis); each run's received agent events, in receipt order, are judged. Frames
are read as the trace writer normalized them; a frame's text is decoded only when a check
reads the object itself (the field checks, an error's message).

Only frames the client *received* are judged: a frame the client sent is never validated as
if the server had produced it (the Issue #937 mistake). A check with nothing to look at is
``inconclusive``, never ``passed``: without agent events every check but ``agent events``
is, and so is the field check of a required event that never came.

Profiles are data (``netra_ws/profiles/*.json``, a dict, or a JSON file), so a new one needs
no code; see :class:`Profile` for the format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, Literal, SupportsIndex, cast, overload

import pandas as pd

from .analysis import split_runs
from .events import (
    AGENT_EVENTS,
    TERMINAL_EVENTS,
    event_payload,
    is_demo_user,
    is_fallback_user,
)
from .trace import complete_frame_record

__all__ = [
    "BUDGET_KEYS",
    "FAILED",
    "INCONCLUSIVE",
    "PASSED",
    "PROFILE_SOURCES",
    "CheckResult",
    "Checks",
    "Profile",
    "Status",
    "available_profiles",
    "check_connection",
    "check_no_reply",
    "check_run",
    "load_profile",
    "overall_status",
]

Status = Literal["passed", "failed", "inconclusive"]
# Final, so each is its own literal type: also a ContractStatus where one is expected.
PASSED: Final = "passed"
FAILED: Final = "failed"
INCONCLUSIVE: Final = "inconclusive"

# How a profile reads an event's fields:
# - "normalized": wherever the envelope put them (top level, payload, data, data.payload),
#   as events.normalize does, so bridge, manager and wrapped frames are judged alike;
# - "payload-or-top": the backend suite's literal rule (PROTOCOL.md §6): from ``payload``
#   when it is an object, else from the top level, never from ``data``; ``type`` always
#   from the top level.
PROFILE_SOURCES: tuple[str, ...] = ("normalized", "payload-or-top")

# Timing budgets, in seconds: trigger to first agent event, largest gap between consecutive
# agent events of a run, trigger (or first event) to the run's last event.
BUDGET_KEYS: tuple[str, ...] = ("first_event_s", "max_gap_s", "total_s")

DEFAULT_PROFILE = "netra-bridge"

# Frames that are never a reply to anything: the welcome queued at connect time (the #937
# trap) and the server's idle heartbeats.
_NOT_REPLIES = ("connection_established", "heartbeat")
# A flood of replies is counted, not listed: the explanation is read, the trace holds them.
_LISTED_REPLIES = 5
_PROFILE_KEYS = frozenset(
    {"name", "description", "source", "required_events", "fields", "alternatives", "budgets"}
)


# --- verdicts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check.

    ``status`` is ``"passed"``, ``"failed"`` or ``"inconclusive"`` (nothing to judge);
    ``explanation`` says in plain words what was seen and, on failure, what to do next;
    ``evidence`` holds the ``seq`` of the frames that show it (find them in the trace's
    ``seq`` column); ``event`` is the event the check is about, if one; ``missing`` lists the
    required fields that were not found (field checks only).
    """

    name: str
    status: Status
    explanation: str
    evidence: tuple[int, ...] = ()
    event: str | None = None
    missing: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.name}: {self.explanation}"


_CHECK_COLUMNS = MappingProxyType(
    {
        "check": "string",
        "status": "string",
        "event": "string",
        "missing": "string",
        "evidence": "object",
        "explanation": "string",
    }
)


class Checks(list[CheckResult]):
    """The results of several checks: a list of :class:`CheckResult` with a verdict.

    ``checks.status`` is the overall verdict (see :func:`overall_status`), ``checks.passed``
    a bool, ``checks.failures`` the failed ones; ``checks["order"]`` finds a check by name;
    ``checks.to_frame()`` is one row per check (a notebook shows it as a table);
    ``print(checks.explain())`` lists them in plain text.
    """

    @overload
    def __getitem__(self, key: str) -> CheckResult: ...
    @overload
    def __getitem__(self, key: SupportsIndex) -> CheckResult: ...
    @overload
    def __getitem__(self, key: slice) -> list[CheckResult]: ...
    def __getitem__(self, key: str | SupportsIndex | slice) -> CheckResult | list[CheckResult]:
        if isinstance(key, str):
            for check in self:
                if check.name == key:
                    return check
            raise KeyError(f"no check named {key!r}; checks: {', '.join(self.names)}")
        return super().__getitem__(key)

    @property
    def names(self) -> list[str]:
        return [check.name for check in self]

    @property
    def status(self) -> Status:
        return overall_status(check.status for check in self)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self if check.status == FAILED]

    def to_frame(self) -> pd.DataFrame:
        """One row per check: check, status, event, missing, evidence (seqs), explanation."""
        rows = [
            {
                "check": c.name,
                "status": c.status,
                "event": c.event,
                "missing": ", ".join(c.missing) or None,
                "evidence": list(c.evidence),
                "explanation": c.explanation,
            }
            for c in self
        ]
        return pd.DataFrame(rows, columns=list(_CHECK_COLUMNS)).astype(dict(_CHECK_COLUMNS))

    def explain(self) -> str:
        """Every check on its own line, failures first: what to read when a run fails."""
        rank = {FAILED: 0, INCONCLUSIVE: 1, PASSED: 2}
        return "\n".join(str(c) for c in sorted(self, key=lambda c: rank[c.status]))

    def _repr_html_(self) -> str | None:
        # pandas-stubs leave out DataFrame._repr_html_ (pandas has it: the notebook's table,
        # None when display.notebook_repr_html is off): their __getattr__ types it a column.
        render = cast("Callable[[], str | None]", self.to_frame()._repr_html_)
        return render()

    def __repr__(self) -> str:
        return f"<Checks {self.status}: {len(self)} checks, {len(self.failures)} failed>"


def overall_status(statuses: Iterable[str]) -> Status:
    """Failed if any failed, else inconclusive if any is (or there are none), else passed."""
    seen = set(statuses)
    if FAILED in seen:
        return FAILED
    if not seen or INCONCLUSIVE in seen:
        return INCONCLUSIVE
    return PASSED


# --- profiles --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What a run must look like, loaded from data. The JSON form::

        {"name": "netra-suite",
         "description": "what the backend's test suite demanded",
         "source": "payload-or-top",                       # or "normalized", see PROFILE_SOURCES
         "required_events": ["agent_started", …],          # each run must hold them
         "fields": {"tool_completed": ["type", "tool_name", "results", …], …},
         "alternatives": {"results": ["result"], …},       # names servers use instead, for hints
         "budgets": {"first_event_s": 30, "total_s": 30}}  # any of BUDGET_KEYS, seconds

    Only ``name`` is required. Load one with :func:`load_profile`.
    """

    name: str
    description: str = ""
    source: str = "normalized"
    required_events: tuple[str, ...] = ()
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    alternatives: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    budgets: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        """Build a profile from its JSON form; ``ValueError`` says what is wrong with it."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a profile is a JSON object, not {type(data).__name__}")
        unknown = set(data) - _PROFILE_KEYS
        if unknown:
            raise ValueError(
                f"unknown profile keys {sorted(unknown)}; known: {sorted(_PROFILE_KEYS)}"
            )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError("a profile needs a non-empty string 'name'")
        source = data.get("source", "normalized")
        if source not in PROFILE_SOURCES:
            raise ValueError(f"profile {name}: source must be one of {PROFILE_SOURCES}")
        return cls(
            name=name,
            description=str(data.get("description", "")),
            source=source,
            required_events=_names(data.get("required_events", ()), f"{name}: required_events"),
            fields=MappingProxyType(
                {
                    str(event): _names(names, f"{name}: fields.{event}")
                    for event, names in _mapping(data.get("fields"), f"{name}: fields").items()
                }
            ),
            alternatives=MappingProxyType(
                {
                    str(key): _names(names, f"{name}: alternatives.{key}")
                    for key, names in _mapping(
                        data.get("alternatives"), f"{name}: alternatives"
                    ).items()
                }
            ),
            budgets=MappingProxyType(_budgets(data.get("budgets"), f"profile {name}")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (save it with ``json.dump`` to make a new profile from this one)."""
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "required_events": list(self.required_events),
            "fields": {event: list(names) for event, names in self.fields.items()},
            "alternatives": {key: list(names) for key, names in self.alternatives.items()},
            "budgets": dict(self.budgets),
        }


def available_profiles() -> list[str]:
    """The names of the built-in profiles (``netra_ws/profiles/*.json``)."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in _profile_dir().iterdir()
        if entry.name.endswith(".json")
    )


def load_profile(profile: str | Path | Mapping[str, Any] | Profile = DEFAULT_PROFILE) -> Profile:
    """A :class:`Profile` from a built-in name, a JSON file path, a dict, or a Profile.

    Raises ``ValueError`` naming the built-in profiles when the name is unknown.
    """
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, Mapping):
        return Profile.from_dict(profile)
    if isinstance(profile, str) and profile in available_profiles():
        text = (_profile_dir() / f"{profile}.json").read_text(encoding="utf-8")
        return Profile.from_dict(json.loads(text))
    path = Path(profile)
    if path.is_file():
        try:
            return Profile.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a JSON profile: {exc}") from None
    raise ValueError(
        f"unknown profile {str(profile)!r}: give a built-in name "
        f"({', '.join(available_profiles())}), a JSON file, or a dict"
    )


def _profile_dir() -> Traversable:
    return resources.files("netra_ws") / "profiles"


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{where} must be a list of names")
    names = tuple(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where} must hold non-empty strings")
    return names


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object")
    return value


def _budgets(value: Any, where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, seconds in _mapping(value, f"{where}: budgets").items():
        if key not in BUDGET_KEYS:
            raise ValueError(f"{where}: unknown budget {key!r}; known: {', '.join(BUDGET_KEYS)}")
        if seconds is None:
            continue
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError(f"{where}: budget {key} must be a number of seconds ≥ 0")
        out[key] = float(seconds)
    return out


# --- frames ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """One recorded frame: its trace record, normalized fields included, and what checks read.

    The record's fields (``event``, ``tool_name``, ``error_code``, ``envelope``,
    ``parse_error``) are the trace writer's normalization, read as they are; the raw text
    is decoded only when a check reads the object itself (``obj``, ``payload``), once.
    """

    index: int  # the record's position in the list split_runs was given
    seq: int
    dir: str
    t_mono_ns: int | None
    record: Mapping[str, Any]

    @property
    def name(self) -> str | None:
        return self.record.get("event")

    @property
    def tool_name(self) -> str | None:
        return self.record.get("tool_name")

    @property
    def error_code(self) -> str | None:
        return self.record.get("error_code")

    @property
    def envelope(self) -> str | None:
        return self.record.get("envelope")

    @property
    def problem(self) -> str | None:
        """Why the frame is not a JSON object (the trace's ``parse_error``), else None."""
        record = self.record
        if record.get("parse_error") or record.get("opcode") == "binary":
            return str(record.get("parse_error") or "binary frame, not parsed")
        if not isinstance(record.get("data"), str):
            return "no text recorded"
        return None

    @cached_property
    def obj(self) -> dict[str, Any] | None:
        """The frame's JSON object, None when it has none (see ``problem``)."""
        if self.problem is not None:
            return None
        try:
            obj = json.loads(self.record["data"])
        except (ValueError, RecursionError):
            # Integers of 4,300+ digits: only the writer's decoder (events) reads them.
            return None
        return obj if isinstance(obj, dict) else None

    @cached_property
    def payload(self) -> dict[str, Any]:
        """The event's fields wherever its envelope put them (:attr:`events.Event.payload`)."""
        if self.obj is None or self.envelope is None:
            return {}
        return event_payload(self.obj, self.envelope)

    @property
    def ref(self) -> str:
        return f"{self.name or 'frame'} #{self.seq}"

    @property
    def received(self) -> bool:
        return self.dir == "receive"


FrameSource = Any  # Trace | Collected | Iterable[Received | dict] | pandas.DataFrame


def _records(source: FrameSource) -> list[dict[str, Any]]:
    """Trace records from any of the accepted sources (see the module docstring): copies,
    their frames completed with the normalized fields (:func:`complete_frame_record`)."""
    if isinstance(source, pd.DataFrame):
        table = source.astype(object).where(source.notna(), None)
        # pandas-stubs type a row's keys Hashable (a column name can be any); a frame
        # table's are the trace's column names, strings.
        out = [
            {"kind": "frame", **{str(k): v for k, v in row.items()}}
            for row in table.to_dict("records")
        ]
    else:
        records = getattr(source, "records", None)  # Trace (a list) or Session (a method)
        if callable(records):
            records = records()
        if records is None:
            records = getattr(source, "frames", source)  # Collected holds Received frames
        if isinstance(records, (str, bytes, Mapping)) or not isinstance(records, Iterable):
            raise TypeError(
                "expected a Trace, a session's records(), a Collected, or a list of trace "
                f"records / received frames, not {type(source).__name__}"
            )
        out = []
        for item in records:
            record = getattr(item, "record", item)  # a Received carries its trace record
            if not isinstance(record, Mapping):
                raise TypeError(f"not a trace record: {type(item).__name__}")
            out.append(dict(record))
    for record in out:
        if record.get("kind") == "frame":
            # A record made by hand may not say that its text is text.
            if "opcode" not in record and isinstance(record.get("data"), str):
                record["opcode"] = "text"
            complete_frame_record(record)
    return out


def _frames(records: list[dict[str, Any]]) -> list[_Frame]:
    """The frame records as _Frames, in seq order."""
    frames = []
    for index, record in enumerate(records):
        if record.get("kind") != "frame":
            continue
        t_mono = record.get("t_mono_ns")
        frames.append(
            _Frame(
                index=index,
                seq=int(record.get("seq") or 0),
                dir=str(record.get("dir") or "receive"),
                t_mono_ns=int(t_mono) if isinstance(t_mono, (int, float)) else None,
                record=record,
            )
        )
    return sorted(frames, key=lambda f: f.seq)


# --- runs ------------------------------------------------------------------------------------


@dataclass
class _Run:
    """The agent events of one run, and the trigger (``user_message`` …) that started it."""

    events: list[_Frame]
    trigger: _Frame | None
    label: str = ""

    @property
    def names(self) -> list[str]:
        return [f.name or "?" for f in self.events]


def _runs(records: list[dict[str, Any]], frames: list[_Frame]) -> tuple[list[_Run], list[_Frame]]:
    """The runs that received agent events, and every run trigger, as analysis defines them.

    :func:`netra_ws.analysis.split_runs` says which frames make a run; a run's ``events``
    are its received agent events, in receipt order. A trigger whose run got none is
    unanswered (see 'agent events').
    """
    by_index = {f.index: f for f in frames}
    runs, triggers = [], []
    for run in split_runs(records):
        trigger = by_index[run.trigger] if run.trigger is not None else None
        if trigger is not None:
            triggers.append(trigger)
        events = [
            f for f in (by_index[i] for i in run.frames) if f.received and f.name in AGENT_EVENTS
        ]
        if events:
            runs.append(_Run(events, trigger))
    # Name runs only when there are several: "run #3" is the seq of its first event.
    many = len(runs) > 1
    for answered in runs:
        answered.label = f"run #{answered.events[0].seq}: " if many else ""
    return runs, triggers


def _trigger_ref(trigger: _Frame) -> str:
    form = "payload form" if isinstance((trigger.obj or {}).get("payload"), dict) else "flat form"
    return f"{trigger.name} #{trigger.seq} ({form})"


# --- check_run -------------------------------------------------------------------------------


def check_run(
    frames: FrameSource,
    profile: str | Path | Mapping[str, Any] | Profile = DEFAULT_PROFILE,
    budgets: Mapping[str, float | None] | None = None,
) -> Checks:
    """Check the agent events in ``frames`` against a profile; one result per check.

    ``frames`` is what a session recorded (see the module docstring); include the frames the
    client sent, so each run can be tied to the ``user_message`` that started it and timed
    from it. ``budgets`` (seconds, keys of :data:`BUDGET_KEYS`) override the profile's;
    ``None`` as a value removes that budget. Read ``.status``, show ``.to_frame()``, and for
    a failure read its ``explanation`` and look its ``evidence`` seqs up in the trace.
    """
    prof = load_profile(profile)
    merged = {**prof.budgets, **_budget_overrides(budgets)}
    limits = {k: v for k, v in merged.items() if v is not None}
    records = _records(frames)
    all_frames = _frames(records)
    runs, triggers = _runs(records, all_frames)

    checks = Checks([_check_arrived(all_frames, triggers, runs), _check_parsed(all_frames)])
    if not runs:
        why = "nothing to check: no agent events arrived (see 'agent events')"
        names = ["required events", "order", "tool pairing"]
        names += [f"fields: {e}" for e in prof.fields if e in prof.required_events]
        names += [_BUDGET_NAMES[k] for k in BUDGET_KEYS if k in limits]
        checks += [CheckResult(n, INCONCLUSIVE, why) for n in names]
        return checks
    if prof.required_events:
        checks.append(_check_required(runs, prof))
    checks.append(_check_order(runs, _server_close(records)))
    checks.append(_check_pairing(runs))
    for event, required in prof.fields.items():
        checked = _check_fields(event, required, runs, prof)
        if checked is not None:
            checks.append(checked)
    for key in BUDGET_KEYS:
        if key in limits:
            checks.append(_check_budget(key, limits[key], runs))
    return checks


def _budget_overrides(budgets: Mapping[str, float | None] | None) -> dict[str, float | None]:
    if budgets is None:
        return {}
    out: dict[str, float | None] = {}
    for key, value in budgets.items():
        if key not in BUDGET_KEYS:
            raise ValueError(f"unknown budget {key!r}; known: {', '.join(BUDGET_KEYS)}")
        out[key] = None if value is None else float(value)
    return out


def _check_arrived(frames: list[_Frame], triggers: list[_Frame], runs: list[_Run]) -> CheckResult:
    name = "agent events"
    answered = {id(run.trigger) for run in runs}
    unanswered = [t for t in triggers if id(t) not in answered]
    if not runs:
        if triggers:
            return CheckResult(
                name,
                FAILED,
                _no_events_explanation(triggers, frames),
                evidence=tuple(t.seq for t in triggers),
            )
        return CheckResult(
            name,
            FAILED,
            "No agent events in these frames, and no user_message was sent in them: send "
            "user_message (Session.send_user_message) and collect until agent_completed.",
        )
    count = sum(len(run.events) for run in runs)
    if unanswered:
        others = [run.trigger for run in runs if run.trigger is not None]
        got = (
            f" ({', '.join(_trigger_ref(t) for t in others)} did get agent events)"
            if others
            else ""
        )
        return CheckResult(
            name,
            FAILED,
            _no_events_explanation(unanswered, frames) + got,
            evidence=tuple(t.seq for t in unanswered),
        )
    after = (
        f" after {', '.join(_trigger_ref(t) for t in triggers)}" if triggers else " (no trigger)"
    )
    return CheckResult(
        name,
        PASSED,
        f"{count} agent events in {len(runs)} run(s){after}.",
        evidence=tuple(run.events[0].seq for run in runs),
    )


def _check_parsed(frames: list[_Frame]) -> CheckResult:
    name = "frames parse"
    received = [f for f in frames if f.received]
    bad = [f for f in received if f.problem is not None]
    if not received:
        return CheckResult(name, INCONCLUSIVE, "The server sent no frames in these records.")
    if not bad:
        return CheckResult(name, PASSED, f"All {len(received)} received frames are JSON objects.")
    shown = "; ".join(f"#{f.seq}: {f.problem}" for f in bad[:5])
    more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
    return CheckResult(
        name,
        FAILED,
        f"{len(bad)} of {len(received)} received frames are not JSON objects ({shown}{more}): "
        "the protocol sends every message as a JSON object in a text frame. Their raw text "
        "is in the trace (data).",
        evidence=tuple(f.seq for f in bad),
    )


def _no_events_explanation(triggers: list[_Frame], frames: list[_Frame]) -> str:
    """Why run triggers may have got no agent events, from what the frames show."""
    sends = [f.seq for f in frames if not f.received]
    replies = []
    for trigger in triggers:
        nxt = next((seq for seq in sends if seq > trigger.seq), None)
        replies += [
            f
            for f in frames
            if f.received
            and f.seq > trigger.seq
            and (nxt is None or f.seq < nxt)
            and f.name not in _NOT_REPLIES
        ]
    refs = ", ".join(_trigger_ref(t) for t in triggers)
    text = f"No agent events arrived after {refs}"
    acks = [f for f in replies if f.name == "ack"]
    errors = [f for f in replies if f.envelope == "error"]
    if errors:
        error = errors[0]
        message = (error.obj or {}).get("error_message") or error.payload.get("message")
        text += f"; the server answered {error.ref} {error.error_code or ''}: {message}."
    elif acks:
        text += (
            f"; the server answered {acks[0].ref}: it treats {triggers[0].name} as an unknown"
            " input type and starts no run."
        )
    elif replies:
        text += f"; only {', '.join(f.ref for f in replies)} came back."
    else:
        text += "; nothing at all came back."
    welcome = next((f for f in frames if f.received and f.name == "connection_established"), None)
    user = welcome.payload.get("user_id") if welcome else None
    if welcome is not None and is_demo_user(user):
        causes = [
            f"the connection is the demo user: {welcome.ref} says user_id {user!r} (no token, "
            "or the server's DEMO_MODE), so the server did not use the token and this says "
            "nothing about a real user — probe a server that enforces auth, with a valid token"
        ]
    elif welcome is not None and is_fallback_user(user):
        causes = [
            f"the token was not accepted: {welcome.ref} says user_id {user!r}, a made-up user "
            "of the relaxed auth level — connect with a valid token"
        ]
    elif welcome is not None and isinstance(user, str):
        causes = [
            f"the server swallowed the input: {welcome.ref} accepted the connection as "
            f"{user!r}, so authentication is not the cause; the backend of the #937 commit "
            "answered no input at all (PROTOCOL.md §8) — a server-side defect"
        ]
    else:
        causes = [
            "the server swallowed the input without a reply (no connection_established says "
            "which user the connection is)"
        ]
    causes.append("the agent takes longer than the collection window — collect for longer")
    return (
        f"{text} Likely causes: "
        + "; ".join(f"({n}) {cause}" for n, cause in enumerate(causes, 1))
        + ". This is a failure, not a pass: no event "
        "was validated."
    )


def _check_required(runs: list[_Run], prof: Profile) -> CheckResult:
    problems, evidence = [], []
    for run in runs:
        missing = [e for e in prof.required_events if e not in run.names]
        if not missing:
            continue
        last = run.events[-1]
        ending = ""
        if last.name == "agent_error":
            message = last.payload.get("error_message") or last.payload.get("message")
            ending = f"; the run ended with {last.ref}: {message}"
        problems.append(
            f"{run.label}{', '.join(missing)} missing from the run "
            f"({' → '.join(run.names)}){ending}"
        )
        evidence.append(last.seq)
    if problems:
        return CheckResult(
            "required events",
            FAILED,
            f"{'; '.join(problems)}. Profile {prof.name} requires "
            f"{', '.join(prof.required_events)}.",
            evidence=tuple(evidence),
        )
    return CheckResult(
        "required events",
        PASSED,
        f"every run holds {', '.join(prof.required_events)}.",
        evidence=tuple(run.events[0].seq for run in runs),
    )


def _server_close(records: list[dict[str, Any]]) -> str:
    """ ", then the connection closed with 1011 …" when the server or network ended it."""
    for record in records:
        if record.get("kind") == "close" and record.get("initiated_by") != "client":
            reason = f" {record['reason']}" if record.get("reason") else ""
            return f"; then the connection closed with {record.get('code')}{reason}"
    return ""


def _check_order(runs: list[_Run], closed: str = "") -> CheckResult:
    problems, evidence = [], []
    for run in runs:
        problem = _order_problem(run.events, closed)
        if problem is not None:
            text, seqs = problem
            problems.append(run.label + text)
            evidence += seqs
    if problems:
        return CheckResult(
            "order",
            FAILED,
            "; ".join(problems)
            + ". Expected agent_started, agent_thinking*, (tool_executing, tool_completed)*,"
            " then agent_completed or agent_error.",
            evidence=tuple(evidence),
        )
    shown = "; ".join(run.label + " → ".join(_squeeze(run.names)) for run in runs)
    return CheckResult(
        "order", PASSED, f"{shown}.", evidence=tuple(run.events[-1].seq for run in runs)
    )


def _order_problem(events: list[_Frame], closed: str = "") -> tuple[str, list[int]] | None:
    """The first place where ``events`` leave the run grammar, or None."""
    # States: "start" (nothing yet), "thinking" (after agent_started), "tool" (inside a
    # tool call), "tools" (after a tool call), "ended" (after a terminal event).
    state = "start"
    opened: _Frame | None = None
    ended: _Frame | None = None
    for frame in events:
        name = frame.name
        if state == "ended":
            assert ended is not None  # state becomes "ended" only together with ended
            return f"{frame.ref} after the run ended with {ended.ref}", [ended.seq, frame.seq]
        if state == "start":
            if name != "agent_started":
                return f"the run begins with {frame.ref}, not agent_started", [frame.seq]
            state = "thinking"
        elif name == "agent_started":
            return f"a second agent_started, {frame.ref}, inside the run", [frame.seq]
        elif state == "tool":
            assert opened is not None  # state becomes "tool" only together with opened
            if name != "tool_completed":
                return (
                    f"{frame.ref} while {opened.ref} had no tool_completed yet",
                    [opened.seq, frame.seq],
                )
            state = "tools"
        elif name == "agent_thinking" and state == "tools":
            return (
                f"{frame.ref} after the tool calls began; thinking belongs before them",
                [frame.seq],
            )
        elif name == "tool_executing":
            state, opened = "tool", frame
        elif name == "tool_completed":
            return f"{frame.ref} answers no tool_executing", [frame.seq]
        if name in TERMINAL_EVENTS:
            state, ended = "ended", frame
    if state != "ended":
        last = events[-1]
        return (
            f"the run did not end: no agent_completed or agent_error after {last.ref}{closed}",
            [last.seq],
        )
    return None


def _squeeze(names: list[str]) -> list[str]:
    """``a, b, b, b, c`` → ``a, b ×3, c``: a long run stays readable."""
    out: list[str] = []
    for name in names:
        if out and out[-1].split(" ×")[0] == name:
            head, _, count = out[-1].partition(" ×")
            out[-1] = f"{head} ×{int(count or 1) + 1}"
        else:
            out.append(name)
    return out


def _check_pairing(runs: list[_Run]) -> CheckResult:
    problems, evidence, pairs = [], [], 0
    for run in runs:
        open_calls: dict[str, list[_Frame]] = {}
        for frame in run.events:
            if frame.name not in ("tool_executing", "tool_completed"):
                continue
            tool = frame.tool_name
            if tool is None:
                problems.append(f"{run.label}{frame.ref} has no tool_name, so it cannot be paired")
                evidence.append(frame.seq)
            elif frame.name == "tool_executing":
                open_calls.setdefault(tool, []).append(frame)
            elif open_calls.get(tool):
                open_calls[tool].pop(0)
                pairs += 1
            else:
                waiting = [f"{t!r} {f.ref}" for t, fs in open_calls.items() for f in fs]
                problems.append(
                    f"{run.label}tool_completed {tool!r} #{frame.seq} answers no "
                    f"tool_executing of {tool!r}"
                    + (f" (still open: {', '.join(waiting)})" if waiting else "")
                )
                evidence.append(frame.seq)
        for tool, frames in open_calls.items():
            for frame in frames:
                problems.append(
                    f"{run.label}tool_executing {tool!r} #{frame.seq} was never answered by a "
                    "tool_completed"
                )
                evidence.append(frame.seq)
    if problems:
        return CheckResult("tool pairing", FAILED, "; ".join(problems) + ".", tuple(evidence))
    if pairs == 0:
        return CheckResult("tool pairing", PASSED, "no tool calls in the run(s): nothing to pair.")
    return CheckResult(
        "tool pairing",
        PASSED,
        f"{pairs} tool_executing event(s), each answered by a tool_completed of the same tool.",
    )


def _check_fields(
    event: str, required: Sequence[str], runs: list[_Run], prof: Profile
) -> CheckResult | None:
    name = f"fields: {event}"
    frames = [f for run in runs for f in run.events if f.name == event]
    if not frames:
        if event not in prof.required_events:
            return None  # an optional event (agent_error) that did not happen
        return CheckResult(
            name,
            INCONCLUSIVE,
            f"no {event} arrived, so its fields could not be checked (see 'required events'); "
            "nothing was validated in its place.",
            event=event,
        )
    groups: dict[tuple[str, ...], list[_Frame]] = {}
    missing_all: list[str] = []
    for frame in frames:
        notes = []
        for field_name in required:
            note = _field_problem(frame, field_name, prof)
            if note is not None:
                notes.append(note)
                if field_name not in missing_all:
                    missing_all.append(field_name)
        if notes:
            groups.setdefault(tuple(notes), []).append(frame)
    if not groups:
        refs = ", ".join(f"#{f.seq}" for f in frames)
        return CheckResult(
            name,
            PASSED,
            f"{len(frames)} {event} event(s) ({refs}) have {', '.join(required)}.",
            evidence=tuple(f.seq for f in frames),
            event=event,
        )
    parts = [
        f"{event} {', '.join(f'#{f.seq}' for f in group)}: {'; '.join(notes)}"
        for notes, group in groups.items()
    ]
    rule = (
        f" Profile {prof.name} reads fields from payload when it is an object, else from the "
        "top level, never from data."
        if prof.source == "payload-or-top"
        else f" Profile {prof.name} looks for fields wherever the envelope put them."
    )
    return CheckResult(
        name,
        FAILED,
        "; ".join(parts) + "." + rule,
        evidence=tuple(f.seq for group in groups.values() for f in group),
        event=event,
        missing=tuple(missing_all),
    )


def _places(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every object of a frame where fields may sit, named for explanations."""
    places = [("top level", obj)]
    for key in ("payload", "data"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            places.append((key, inner))
    data = obj.get("data")
    if isinstance(data, dict):
        for key in ("payload", "data"):
            inner = data.get(key)
            if isinstance(inner, dict):
                places.append((f"data.{key}", inner))
    return places


def _at(place: str) -> str:
    return "at the top level" if place == "top level" else f"in {place}"


def _read_places(
    obj: dict[str, Any], field_name: str, source: str
) -> list[tuple[str, dict[str, Any]]]:
    if source == "normalized":
        return _places(obj)
    if field_name == "type":
        return [("top level", obj)]
    payload = obj.get("payload")
    return [("payload", payload)] if isinstance(payload, dict) else [("top level", obj)]


def _field_problem(frame: _Frame, field_name: str, prof: Profile) -> str | None:
    """None when the profile finds ``field_name`` in ``frame``; else what is wrong, briefly."""
    obj = frame.obj or {}
    read = _read_places(obj, field_name, prof.source)
    if any(field_name in place for _, place in read):
        return None
    read_names = [label for label, _ in read]
    elsewhere = [
        label for label, place in _places(obj) if label not in read_names and field_name in place
    ]
    if elsewhere:
        return f"{field_name} not {' or '.join(map(_at, read_names))} but {_at(elsewhere[0])}"
    # Where the profile reads first, then anywhere: the hint should point at the evidence.
    for alternative in prof.alternatives.get(field_name, ()):
        for label, place in read + _places(obj):
            if alternative in place:
                where = "the top level" if label == "top level" else label
                return f"{field_name} missing ({where} has {alternative} instead)"
    return f"{field_name} missing"


_BUDGET_NAMES = {
    "first_event_s": "time to first event",
    "max_gap_s": "largest gap",
    "total_s": "total time",
}


def _check_budget(key: str, limit: float, runs: list[_Run]) -> CheckResult:
    name = _BUDGET_NAMES[key]
    measure = {"first_event_s": _first_event, "max_gap_s": _max_gap, "total_s": _total}[key]
    results = [(run, *measure(run, limit)) for run in runs]
    status = overall_status(status for _, status, _, _ in results)
    shown = [r for r in results if r[1] == status] if status != PASSED else results
    text = "; ".join(run.label + text for run, _, text, _ in shown)
    evidence = tuple(seq for _, _, _, seqs in shown for seq in seqs)
    return CheckResult(name, status, f"{text} (budget {limit:g} s).", evidence)


def _seconds(a: _Frame, b: _Frame) -> float | None:
    if a.t_mono_ns is None or b.t_mono_ns is None:
        return None
    return (b.t_mono_ns - a.t_mono_ns) / 1e9


def _first_event(run: _Run, limit: float) -> tuple[Status, str, list[int]]:
    first = run.events[0]
    if run.trigger is None:
        # A run of its own: nothing was sent, or another run answered the trigger.
        text = f"no run trigger was sent for this run before {first.ref}: nothing to time"
        return INCONCLUSIVE, text, []
    elapsed = _seconds(run.trigger, first)
    if elapsed is None:
        return INCONCLUSIVE, "the frames carry no t_mono_ns: nothing to time", []
    seqs = [run.trigger.seq, first.seq]
    text = f"first agent event {first.ref} {elapsed:.3f} s after {run.trigger.ref}"
    return (FAILED if elapsed > limit else PASSED), text, seqs


def _max_gap(run: _Run, limit: float) -> tuple[Status, str, list[int]]:
    gaps = [(gap, a, b) for a, b in pairwise(run.events) if (gap := _seconds(a, b)) is not None]
    if not gaps:
        return INCONCLUSIVE, "fewer than two timed agent events: no gap to measure", []
    gap, a, b = max(gaps, key=lambda g: g[0])
    text = f"largest gap {gap:.3f} s, between {a.ref} and {b.ref}"
    return (FAILED if gap > limit else PASSED), text, [a.seq, b.seq]


def _total(run: _Run, limit: float) -> tuple[Status, str, list[int]]:
    start = run.trigger or run.events[0]
    last = run.events[-1]
    elapsed = _seconds(start, last)
    if elapsed is None:
        return INCONCLUSIVE, "the frames carry no t_mono_ns: nothing to time", []
    seqs = [start.seq, last.seq]
    if last.name not in TERMINAL_EVENTS:
        if elapsed > limit:
            return FAILED, f"already {elapsed:.3f} s from {start.ref} to {last.ref}, unended", seqs
        return INCONCLUSIVE, f"the run did not end (last: {last.ref}): no total to time", seqs
    text = f"{elapsed:.3f} s from {start.ref} to {last.ref}"
    return (FAILED if elapsed > limit else PASSED), text, seqs


# --- connection and silence ------------------------------------------------------------------


def check_connection(records: FrameSource) -> CheckResult:
    """Is the first frame received after connecting ``connection_established``?

    ``records`` are a session's records (``session.records()`` or a Trace), including the
    ``open``/``close``/``error`` records, which explain a refused connection.
    """
    all_records = _records(records)
    name = "connection established"
    failed = next((r for r in all_records if r.get("kind") == "error"), None)
    opened = next((r for r in all_records if r.get("kind") == "open"), None)
    if opened is None and failed is not None:
        status = f" (HTTP {failed['http_status']})" if failed.get("http_status") else ""
        return CheckResult(name, FAILED, f"could not connect{status}: {failed.get('message')}")
    frames = [f for f in _frames(all_records) if f.received]
    close = next((r for r in all_records if r.get("kind") == "close"), None)
    closed = f"; then the connection closed with {close.get('code')}" if close else ""
    if not frames:
        return CheckResult(name, FAILED, f"nothing was received after connecting{closed}.")
    first = frames[0]
    if first.name != "connection_established":
        return CheckResult(
            name,
            FAILED,
            f"the first frame received is {first.ref}, not connection_established{closed}.",
            evidence=(first.seq,),
        )
    payload = first.payload
    after = ""
    if opened is not None and isinstance(opened.get("t_mono_ns"), int) and first.t_mono_ns:
        ms = (first.t_mono_ns - opened["t_mono_ns"]) / 1e6 + float(opened.get("connect_ms") or 0)
        after = f", {ms:.1f} ms after connecting began"
    return CheckResult(
        name,
        PASSED,
        f"the first frame is {first.ref}{after}; user_id {payload.get('user_id')!r}, "
        f"mode {payload.get('mode')!r}.",
        evidence=(first.seq,),
        event="connection_established",
    )


def check_no_reply(records: FrameSource, *, ignore: Iterable[str] = _NOT_REPLIES) -> Checks:
    """For each frame the client sent, did anything come back before the next send?

    The negative check of Issue #937: an output event name sent as input must get no reply.
    Frames named in ``ignore`` (by default ``connection_established``, queued at connect
    time, and idle ``heartbeat``) are never replies; a close is. One result per sent frame,
    named ``no reply: <sent type>``.
    """
    all_records = _records(records)
    skip = frozenset(ignore)
    frames = _frames(all_records)
    # A close the client started (the end of the session) is no reply.
    closes = [
        r
        for r in all_records
        if r.get("kind") == "close"
        and r.get("initiated_by") != "client"
        and isinstance(r.get("t_mono_ns"), (int, float))
    ]
    sent = [f for f in frames if not f.received]
    checks = Checks()
    for i, frame in enumerate(sent):
        nxt = sent[i + 1] if i + 1 < len(sent) else None
        replies = [
            f
            for f in frames
            if f.received
            and f.seq > frame.seq
            and (nxt is None or f.seq < nxt.seq)
            and f.name not in skip
        ]
        what = frame.name or "frame"
        name = f"no reply: {what}"
        closed = [
            c
            for c in closes
            if frame.t_mono_ns is not None
            and c["t_mono_ns"] >= frame.t_mono_ns
            and (nxt is None or nxt.t_mono_ns is None or c["t_mono_ns"] < nxt.t_mono_ns)
        ]
        if replies:
            described = ", ".join(_describe_reply(f) for f in replies[:_LISTED_REPLIES])
            if len(replies) > _LISTED_REPLIES:
                more = len(replies) - _LISTED_REPLIES
                described += f" … and {more:,} more (all in the trace)"
            checks.append(
                CheckResult(
                    name,
                    FAILED,
                    f"{what} sent as input (#{frame.seq}) got a reply: {described}.",
                    evidence=(frame.seq, *(f.seq for f in replies)),
                    event=what,
                )
            )
        elif closed:
            checks.append(
                CheckResult(
                    name,
                    FAILED,
                    f"after {what} was sent as input (#{frame.seq}) the connection closed "
                    f"with {closed[0].get('code')} {closed[0].get('reason') or ''}".rstrip()
                    + ".",
                    evidence=(frame.seq,),
                    event=what,
                )
            )
        else:
            checks.append(
                CheckResult(
                    name,
                    PASSED,
                    f"{what} sent as input (#{frame.seq}): nothing came back.",
                    evidence=(frame.seq,),
                    event=what,
                )
            )
    return checks


def _describe_reply(frame: _Frame) -> str:
    if frame.name == "ack":
        received = (frame.obj or {}).get("received_type")
        return f"{frame.ref} (received_type {received!r}: handled as an unknown input type)"
    if frame.envelope == "error":
        return f"{frame.ref} {frame.error_code or ''}".rstrip()
    return frame.ref
