"""What a scripted agent run does: its steps, their fields and their timing. Pure.

A :class:`Scenario` describes agent runs in the server's canonical (bridge) field names; a
dialect (``dialects.py``) decides how each step looks on the wire, and ``faults.py`` what
goes wrong on the way. Write one in Python, or in a JSON file for ``serve --scenario``::

    {
      "agent_name": "supervisor_agent",
      "thinking": ["Reading the request", {"reasoning": "Thinking hard", "delay": 0.5}],
      "tools": [{"name": "cost_analyzer", "parameters": {"scope": "30d"},
                 "result": {"total_cost_usd": 1234.5}, "duration": 0.2}],
      "final_result": {"summary": "Analysis complete"},
      "first_delay": 0.05, "step_delay": 0.1, "jitter": 0.5,
      "error_marker": "[fail]", "error_after": 2,
      "runs": [{}, {"error_marker": ""}],
      "heartbeat_interval": 15, "max_message_size": 1048576, "seed": 7
    }

Every key is optional. Timing: ``agent_started`` follows the request after ``first_delay``
seconds, every later event after ``step_delay`` (a thought's own ``delay`` or a tool's
``duration`` replaces it), each multiplied by a uniform factor in ``1 ± jitter`` drawn from a
seeded :class:`random.Random` (:func:`run_rng`), so the same seed gives the same timings.
A request whose text contains ``error_marker`` ends with ``agent_error`` after
``error_after`` events (``""`` fails every run, ``null`` none). ``runs`` varies the runs
of one connection: run *n* plays ``runs[(n - 1) % len(runs)]``, each entry overriding the
top-level keys. ``heartbeat_interval``, ``max_message_size`` and ``seed`` shape the server
itself: they apply unless the :class:`~netra_ws.server.ServerConfig` (or a command-line
flag) sets them explicitly.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "Scenario",
    "Step",
    "Thought",
    "ToolCall",
    "load_scenario",
    "run_rng",
    "run_steps",
]


@dataclass(frozen=True)
class ToolCall:
    """One tool the agent calls: ``tool_executing`` then, ``duration`` s later, ``tool_completed``.

    ``duration`` None means the scenario's ``step_delay``.
    """

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    duration: float | None = None


@dataclass(frozen=True)
class Thought:
    """One ``agent_thinking`` step with its own delay (None: the scenario's ``step_delay``).

    A plain string in :attr:`Scenario.thinking` is a thought with the default delay.
    """

    reasoning: str
    delay: float | None = None


@dataclass(frozen=True)
class Scenario:
    """A scripted agent run; see the module docstring for every option and the file format.

    Load one from JSON with :func:`load_scenario` (or :meth:`from_dict`) and pass it to
    ``ServerConfig(scenario=…)`` / ``EmbeddedServer(scenario=…)``.
    """

    agent_name: str = "supervisor_agent"
    thinking: tuple[str | Thought, ...] = (
        "Reading the request and the thread context",
        "Choosing the tools that answer it",
    )
    tools: tuple[ToolCall, ...] = (
        ToolCall(
            "cost_analyzer",
            {"scope": "last_30_days"},
            {"total_cost_usd": 1234.5, "top_service": "compute"},
        ),
    )
    final_result: Any = field(
        default_factory=lambda: {"summary": "Analysis complete", "recommendations": 3}
    )
    first_delay: float = 0.02
    step_delay: float = 0.02
    jitter: float = 0.0
    error_marker: str | None = "[fail]"
    error_after: int = 2
    error_message: str = "Scripted failure: the request contained the error marker"
    runs: tuple[Scenario, ...] = ()
    # Connection-level settings; None leaves them to the ServerConfig (see the module doc).
    heartbeat_interval: float | None = None
    max_message_size: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1 (a fraction), not {self.jitter}")
        if self.first_delay < 0 or self.step_delay < 0:
            raise ValueError("first_delay and step_delay must not be negative")
        if self.error_after < 1:
            raise ValueError("error_after must be at least 1 (agent_started always comes first)")

    def for_run(self, number: int) -> Scenario:
        """The script of the ``number``-th run (from 1) on a connection."""
        if not self.runs:
            return self
        return self.runs[(number - 1) % len(self.runs)]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Build a scenario from the JSON file format; ``ValueError`` names the bad key."""
        return _scenario_from_dict(data, where="", top_level=True)


# --- loading --------------------------------------------------------------------------

# Keys that shape the connection, not a run: only at the top of a file.
_CONNECTION_KEYS = ("heartbeat_interval", "max_message_size", "seed")
_KNOWN_KEYS = tuple(f.name for f in fields(Scenario))


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Read a scenario JSON file (format in the module docstring).

    Raises ``ValueError`` naming the file and the bad key or line; fix the file and retry.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    try:
        return Scenario.from_dict(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _scenario_from_dict(data: Any, *, where: str, top_level: bool) -> Scenario:
    if not isinstance(data, Mapping):
        raise ValueError(f"a scenario must be a JSON object, not {json.dumps(data)[:60]}")
    for key in data:
        if key not in _KNOWN_KEYS:
            raise ValueError(
                f"unknown scenario key {where + str(key)!r}; known: {', '.join(_KNOWN_KEYS)}"
            )
        if not top_level and key in (*_CONNECTION_KEYS, "runs"):
            raise ValueError(
                f"scenario key {where + key!r} belongs at the top level (it shapes the"
                " whole connection, not one run)"
            )
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key == "runs":
            continue
        options[key] = _CONVERTERS[key](value, where + key)
    if top_level and "runs" in data:
        runs = _list(data["runs"], "runs")
        base = {k: v for k, v in data.items() if k not in (*_CONNECTION_KEYS, "runs")}
        options["runs"] = tuple(
            _scenario_from_dict(
                {**base, **_object(entry, f"runs[{i}]")}, where=f"runs[{i}].", top_level=False
            )
            for i, entry in enumerate(runs)
        )
    try:
        return Scenario(**options)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None


def _type_error(key: str, wanted: str, value: Any) -> ValueError:
    return ValueError(f"scenario key {key!r} must be {wanted}, not {json.dumps(value)[:60]}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _type_error(key, "a number of seconds >= 0", value)
    return float(value)


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _type_error(key, "a whole number >= 1", value)
    return value


def _int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(key, "a whole number", value)
    return value


def _string(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise _type_error(key, "a string", value)
    return value


def _optional_string(value: Any, key: str) -> str | None:
    return None if value is None else _string(value, key)


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list):
        raise _type_error(key, "a list", value)
    return value


def _object(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _type_error(key, "an object", value)
    return value


def _only(entry: Mapping[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    for name in entry:
        if name not in allowed:
            raise ValueError(
                f"unknown scenario key {f'{key}.{name}'!r}; known: {', '.join(allowed)}"
            )


def _thoughts(value: Any, key: str) -> tuple[str | Thought, ...]:
    out: list[str | Thought] = []
    for i, item in enumerate(_list(value, key)):
        at = f"{key}[{i}]"
        if isinstance(item, str):
            out.append(item)
            continue
        entry = _object(item, at)
        _only(entry, at, ("reasoning", "delay"))
        if "reasoning" not in entry:
            raise ValueError(f"scenario key {at!r} needs 'reasoning'")
        delay = entry.get("delay")
        out.append(
            Thought(
                _string(entry["reasoning"], f"{at}.reasoning"),
                None if delay is None else _number(delay, f"{at}.delay"),
            )
        )
    return tuple(out)


def _tools(value: Any, key: str) -> tuple[ToolCall, ...]:
    out: list[ToolCall] = []
    for i, item in enumerate(_list(value, key)):
        at = f"{key}[{i}]"
        entry = _object(item, at)
        _only(entry, at, ("name", "parameters", "result", "duration"))
        if "name" not in entry:
            raise ValueError(f"scenario key {at!r} needs 'name'")
        duration = entry.get("duration")
        out.append(
            ToolCall(
                _string(entry["name"], f"{at}.name"),
                dict(_object(entry.get("parameters", {}), f"{at}.parameters")),
                entry.get("result"),
                None if duration is None else _number(duration, f"{at}.duration"),
            )
        )
    return tuple(out)


def _fraction(value: Any, key: str) -> float:
    number = _number(value, key)
    if number > 1:
        raise _type_error(key, "a fraction between 0 and 1", value)
    return number


def _interval(value: Any, key: str) -> float:
    number = _number(value, key)
    if number == 0:
        raise _type_error(key, "a number of seconds > 0", value)
    return number


_CONVERTERS = {
    "agent_name": _string,
    "thinking": _thoughts,
    "tools": _tools,
    "final_result": lambda value, key: value,
    "first_delay": _number,
    "step_delay": _number,
    "jitter": _fraction,
    "error_marker": _optional_string,
    "error_after": _positive_int,
    "error_message": _string,
    "heartbeat_interval": _interval,
    "max_message_size": _positive_int,
    "seed": _int,
}


# --- the steps of one run -------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One event of a run: wait ``delay`` seconds, then emit ``event`` with ``fields``."""

    event: str
    fields: dict[str, Any]
    delay: float


def run_rng(seed: int, connection: int, run: int, stream: str = "timing") -> random.Random:
    """The seeded generator of one run: same (seed, connection, run, stream), same numbers.

    Each run gets its own generator, so a run's timing does not depend on how runs of other
    connections interleave; ``stream`` separates uses (``"timing"``, ``"faults"``) so adding
    a fault never changes the timings.
    """
    # A str seed is hashed with SHA-512 by random.seed: stable across Python versions.
    return random.Random(f"netra-ws/{seed}/{connection}/{run}/{stream}")


def run_steps(
    scenario: Scenario, request_text: str = "", rng: random.Random | None = None
) -> list[Step]:
    """The events of one run, in order, with the bridge payload fields and their delays.

    ``rng`` draws the jitter (:func:`run_rng`; None: ``random.Random(0)``). The run ends with
    ``agent_completed``, or with ``agent_error`` when ``request_text`` contains the
    scenario's ``error_marker``. Hand the list to ``faults.plan_run`` to get what to send.
    """
    rng = rng or random.Random(0)
    agent = scenario.agent_name

    def delay(base: float | None) -> float:
        base = scenario.step_delay if base is None else base
        if not scenario.jitter:
            return base
        return base * (1 + rng.uniform(-scenario.jitter, scenario.jitter))

    steps = [
        Step(
            "agent_started",
            {
                "status": "started",
                "context": {},
                "message": f"{agent} started: {request_text[:80]}",
            },
            delay(scenario.first_delay),
        )
    ]
    total = len(scenario.thinking) + 2 * len(scenario.tools) + 1
    for number, thought in enumerate(scenario.thinking, start=1):
        if isinstance(thought, str):
            thought = Thought(thought)
        steps.append(
            Step(
                "agent_thinking",
                {
                    "reasoning": thought.reasoning,
                    "step_number": number,
                    "progress_percentage": round(100 * number / total),
                    "status": "thinking",
                },
                delay(thought.delay),
            )
        )
    for tool in scenario.tools:
        steps.append(
            Step(
                "tool_executing",
                {
                    "tool_name": tool.name,
                    "parameters": dict(tool.parameters),
                    "status": "executing",
                    "message": f"Executing {tool.name}",
                },
                delay(None),
            )
        )
        took = delay(tool.duration)
        steps.append(
            Step(
                "tool_completed",
                {
                    "tool_name": tool.name,
                    "result": tool.result,
                    "execution_time_ms": round(took * 1000),
                    "status": "completed",
                    "message": f"{tool.name} completed",
                },
                took,
            )
        )
    steps.append(
        Step(
            "agent_completed",
            {
                "status": "completed",
                "result": scenario.final_result,
                "execution_time_ms": round(1000 * sum(step.delay for step in steps)),
                "message": f"{agent} completed the request",
            },
            delay(None),
        )
    )
    if scenario.error_marker is not None and scenario.error_marker in request_text:
        return _failed(steps, scenario, request_text)
    return steps


def _failed(steps: list[Step], scenario: Scenario, request_text: str) -> list[Step]:
    # The error replaces the event that would have come next, with that event's delay, so
    # a failing run keeps the timing of the successful one up to the failure.
    kept = steps[: min(scenario.error_after, len(steps) - 1)]
    error = Step(
        "agent_error",
        {
            "status": "error",
            "error_message": scenario.error_message,
            "error_context": {
                "agent_name": scenario.agent_name,
                "failed_after": kept[-1].event,
                "step_number": len(kept),
                "request": request_text[:80],
            },
            "message": f"{scenario.agent_name} failed: {scenario.error_message}",
        },
        steps[len(kept)].delay,
    )
    return [*kept, error]
