"""What a scripted agent run does: its steps, their fields and their timing. Pure.

A :class:`Scenario` describes one agent run in the server's canonical (bridge) field names;
a dialect (``dialects.py``) decides how each step looks on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Scenario", "Step", "ToolCall", "run_steps"]


@dataclass(frozen=True)
class ToolCall:
    """One tool the agent calls: ``tool_executing`` then ``tool_completed``."""

    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    result: Any = None


@dataclass(frozen=True)
class Scenario:
    """A scripted agent run.

    ``step_delay`` is the pause (seconds) before each event after the trigger; the first
    event, ``agent_started``, follows the trigger after ``first_delay``.
    """

    agent_name: str = "supervisor_agent"
    thinking: tuple[str, ...] = (
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


@dataclass(frozen=True)
class Step:
    """One event of a run: wait ``delay`` seconds, then emit ``event`` with ``fields``."""

    event: str
    fields: dict[str, Any]
    delay: float


def run_steps(scenario: Scenario, request_text: str = "") -> list[Step]:
    """The events of one successful run, in order, with the bridge payload fields."""
    agent = scenario.agent_name
    steps = [
        Step(
            "agent_started",
            {
                "status": "started",
                "context": {},
                "message": f"{agent} started: {request_text[:80]}",
            },
            scenario.first_delay,
        )
    ]
    total = len(scenario.thinking) + 2 * len(scenario.tools) + 1
    for number, reasoning in enumerate(scenario.thinking, start=1):
        steps.append(
            Step(
                "agent_thinking",
                {
                    "reasoning": reasoning,
                    "step_number": number,
                    "progress_percentage": round(100 * number / total),
                    "status": "thinking",
                },
                scenario.step_delay,
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
                scenario.step_delay,
            )
        )
        tool_ms = round(scenario.step_delay * 1000)
        steps.append(
            Step(
                "tool_completed",
                {
                    "tool_name": tool.name,
                    "result": tool.result,
                    "execution_time_ms": tool_ms,
                    "status": "completed",
                    "message": f"{tool.name} completed",
                },
                scenario.step_delay,
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
            scenario.step_delay,
        )
    )
    return steps
