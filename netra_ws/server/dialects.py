"""How each Netra dialect puts frames on the wire (PROTOCOL.md §4 and §7). Pure.

A dialect is a small description of what differs between the backends seen in public
history, not a copy of the server: how an agent event is enveloped, which inputs the
server swallows, and whether every connection is forced to the demo user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DIALECTS",
    "AgentEventContext",
    "Dialect",
    "error_frame",
    "get_dialect",
    "iso_now",
    "status_frame",
]


def iso_now() -> str:
    """Agent events carry ISO 8601 timestamps (PROTOCOL.md §7.3)."""
    return datetime.now(UTC).isoformat()


def status_frame(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Envelope A: ``{type, data, timestamp:<unix float>, server_id, correlation_id}``."""
    return {
        "type": "error_message" if type_ == "error" else type_,
        "data": data,
        "timestamp": time.time(),
        "server_id": None,
        "correlation_id": None,
    }


def error_frame(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Envelope B, the flat error: ``{type:"error_message", error_code, error_message, …}``."""
    return {
        "type": "error_message",
        "error_code": code,
        "error_message": message,
        "details": details or {},
        "timestamp": time.time(),
        "recovery_suggestions": None,
    }


@dataclass(frozen=True)
class AgentEventContext:
    """Who an agent event belongs to: the run's ids and the agent's name."""

    run_id: str
    thread_id: str
    user_id: str
    agent_name: str


def _bridge_event(event: str, ctx: AgentEventContext, fields: dict[str, Any]) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": event,
        "run_id": ctx.run_id,
        "user_id": ctx.user_id,
        "agent_name": ctx.agent_name,
        "timestamp": iso_now(),
        "payload": fields,
    }
    if event == "agent_error":
        del frame["user_id"]  # the bridge's error path omits it (PROTOCOL.md §4)
    return frame


@dataclass(frozen=True)
class Dialect:
    """What one backend variant does differently.

    ``agent_event(event, ctx, fields)`` renders one agent event from the canonical bridge
    fields. ``swallowed_inputs`` are input types the server reads and never answers (the
    2025-09 routing quirk). ``force_demo_user`` accepts everyone as ``demo-user-001``.
    """

    name: str
    description: str
    agent_event: Callable[[str, AgentEventContext, dict[str, Any]], dict[str, Any]]
    swallowed_inputs: frozenset[str] = frozenset()
    force_demo_user: bool = False


def _manager_event(event: str, ctx: AgentEventContext, fields: dict[str, Any]) -> dict[str, Any]:
    data = {
        "run_id": ctx.run_id,
        "thread_id": ctx.thread_id,
        "request_id": f"req_{ctx.run_id}",
        "user_id": ctx.user_id,
        "agent_name": ctx.agent_name,
        **fields,
    }
    return {"type": event, "data": data, "timestamp": iso_now(), "critical": True, "attempt": None}


# The wrapped variant's outer types: the real name only appears inside ``data``.
_WRAPPER_OF = {
    "agent_started": "system_message",
    "agent_thinking": "agent_progress",
    "tool_executing": "agent_progress",
    "tool_completed": "agent_progress",
    "agent_completed": "agent_response_complete",
    "agent_error": "system_message",
}


def _wrapped_event(event: str, ctx: AgentEventContext, fields: dict[str, Any]) -> dict[str, Any]:
    data = {
        "type": event,
        "event": event,
        "run_id": ctx.run_id,
        "thread_id": ctx.thread_id,
        "user_id": ctx.user_id,
        "agent_name": ctx.agent_name,
        "payload": fields,
    }
    return {"type": _WRAPPER_OF.get(event, "system_message"), "data": data, "timestamp": iso_now()}


# What the backend's own test suite demanded (PROTOCOL.md §6), where the bridge differs.
_SUITE_RENAMES = {"result": "results", "execution_time_ms": "duration"}


def _suite_event(event: str, ctx: AgentEventContext, fields: dict[str, Any]) -> dict[str, Any]:
    renamed = {_SUITE_RENAMES.get(k, k): v for k, v in fields.items()}
    if "duration" in renamed:
        renamed["duration"] = renamed["duration"] / 1000  # the suite's duration is in seconds
    if event == "agent_completed":
        result = fields.get("result")
        summary = result.get("summary") if isinstance(result, dict) else None
        renamed["final_response"] = summary or fields.get("message", "")
    # Flat on purpose: the suite reads fields from ``payload`` only when there is one.
    return {
        "type": event,
        "run_id": ctx.run_id,
        "thread_id": ctx.thread_id,
        "user_id": ctx.user_id,
        "agent_name": ctx.agent_name,
        "timestamp": iso_now(),
        **renamed,
    }


BRIDGE = Dialect(
    name="bridge",
    description="flat agent events with a payload object and ISO timestamps (the main path)",
    agent_event=_bridge_event,
)
MANAGER = Dialect(
    name="manager",
    description="agent events as {type, data:{run_id, thread_id, …}, critical:true, attempt}",
    agent_event=_manager_event,
)
WRAPPED = Dialect(
    name="wrapped",
    description="agent events inside system_message / agent_progress / agent_response_complete",
    agent_event=_wrapped_event,
)
SUITE_CONTRACT = Dialect(
    name="suite-contract",
    description="the field names the backend's test suite demanded: results, duration,"
    " final_response, top-level thread_id",
    agent_event=_suite_event,
)
STAGING_937 = Dialect(
    name="staging-937",
    description="what the #937 run met on staging: everyone is the demo user; user_message,"
    " chat, start_agent and ping swallowed without reply; aliases such as message still work",
    agent_event=_bridge_event,
    swallowed_inputs=frozenset({"user_message", "chat", "start_agent", "ping"}),
    force_demo_user=True,
)

DIALECTS: dict[str, Dialect] = {
    d.name: d for d in (BRIDGE, MANAGER, WRAPPED, SUITE_CONTRACT, STAGING_937)
}


def get_dialect(name: str | Dialect) -> Dialect:
    """Look a dialect up by name; the error lists the known names."""
    if isinstance(name, Dialect):
        return name
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None
