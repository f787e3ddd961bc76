"""How each Netra dialect puts frames on the wire (PROTOCOL.md §4, §7 and §8). Pure.

A dialect is a small description of what differs between the backends seen in public
history, not a copy of the server: how an agent event is enveloped, which inputs the
server swallows, how a strict server refuses, and whether the server is the backend *as
intended* or *as it ran*:

- ``bridge``, ``manager``, ``wrapped``, ``suite-contract``: the backend as intended (as
  its code and docs were written). ``user_message`` and its aliases start an agent run;
  ``ping`` gets ``pong``, ``heartbeat`` gets ``heartbeat_ack``; a strict refusal is a flat
  ``AUTH_FAILED`` error then close 1008. They differ only in the agent-event envelope.
- ``staging-937``: the backend as it really ran at the Issue #937 commit (PROTOCOL.md §8):
  every input of §3 swallowed without reply, a strict refusal is a ``CONNECTION_ERROR``
  status frame then close 1011, ``/ws/factory`` answers HTTP 500 and ``/ws/isolated``
  crashes (``app.py`` holds the endpoint behaviour), ``/ws/config`` reports the backend's
  fixed numbers, and the transport is uvicorn's (``Server: uvicorn``, protocol pings every
  20 s, 16 MiB frame limit). It combines with every auth mode.

What every dialect shares, because the same route code wrote it: the
``connection_established`` frame (:func:`connection_established_data`), the flat ``ack``,
the ``JSON_PARSE_ERROR`` frame, the legacy endpoints, HTTP 403 with an empty body for an
unknown path or for offered subprotocols none of which is supported, and compact JSON
(:func:`to_wire`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..events import CRITICAL_EVENTS, RUN_TRIGGER_TYPES

__all__ = [
    "DIALECTS",
    "AgentEventContext",
    "Dialect",
    "connection_error_frame",
    "connection_established_data",
    "error_frame",
    "get_dialect",
    "iso_now",
    "status_frame",
    "to_wire",
]


def to_wire(frame: dict[str, Any]) -> str:
    """A frame as the backend's JSON encoder wrote it: compact, no spaces (PROTOCOL.md §8)."""
    return json.dumps(frame, separators=(",", ":"))


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


def connection_error_frame(mode: str) -> dict[str, Any]:
    """What the route sent when it crashed (PROTOCOL.md §8): a status-envelope
    ``error_message`` with ``error_code: "CONNECTION_ERROR"``; the caller closes 1011."""
    return status_frame(
        "error",
        {
            "error_code": "CONNECTION_ERROR",
            "error_message": f"Connection error in {mode} mode",
            "details": {"error_type": "AttributeError", "mode": mode},
            "timestamp": iso_now(),
        },
    )


# connection_established's feature flags, as the main route wrote them (PROTOCOL.md §8).
MAIN_FEATURES = (
    "full_business_logic",
    "golden_path_integration",
    "cloud_run_optimized",
    "emergency_fallback",
    "agent_orchestration",
)


def connection_established_data(user_id: str, connection_id: str) -> dict[str, Any]:
    """The ``data`` of the main mode's first frame: the user id cut to 8 characters + "..."."""
    return {
        "mode": "main",
        "user_id": user_id[:8] + "...",
        "connection_id": connection_id,
        "golden_path_events": list(CRITICAL_EVENTS),
        "features": dict.fromkeys(MAIN_FEATURES, True),
        "timestamp": iso_now(),
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
    2025-09 routing quirk). ``auth_failure`` is the strict refusal style unless the server
    config overrides it (``"auth-failed"`` or ``"connection-error"``, see ``auth.py``).
    ``as_ran`` marks the dialect that reproduces the backend as it ran (PROTOCOL.md §8):
    crashing ``/ws/factory`` and ``/ws/isolated``, the backend's ``/ws/config`` numbers, the
    uvicorn transport.
    """

    name: str
    description: str
    agent_event: Callable[[str, AgentEventContext, dict[str, Any]], dict[str, Any]]
    swallowed_inputs: frozenset[str] = frozenset()
    auth_failure: str = "auth-failed"
    as_ran: bool = False


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
    description="as intended: flat agent events with a payload object and ISO timestamps"
    " (the main path)",
    agent_event=_bridge_event,
)
MANAGER = Dialect(
    name="manager",
    description="as intended, agent events as {type, data:{run_id, thread_id, …},"
    " critical:true, attempt}",
    agent_event=_manager_event,
)
WRAPPED = Dialect(
    name="wrapped",
    description="as intended, agent events inside system_message / agent_progress /"
    " agent_response_complete",
    agent_event=_wrapped_event,
)
SUITE_CONTRACT = Dialect(
    name="suite-contract",
    description="as intended, with the field names the backend's test suite demanded:"
    " results, duration, final_response, top-level thread_id",
    agent_event=_suite_event,
)
STAGING_937 = Dialect(
    name="staging-937",
    description="the backend as it ran at the #937 commit (PROTOCOL.md §8): every input"
    " swallowed without reply, strict refusal = CONNECTION_ERROR + close 1011, /ws/factory"
    " HTTP 500, /ws/isolated crashes",
    agent_event=_bridge_event,  # never used: no input starts a run
    # The routing quirk (PROTOCOL.md §3): the progress-type rewrite swallows user_message,
    # chat, start_agent, agent_request, agent_task, ping, heartbeat, pong and error; the
    # aliases reach the agent bridge handler, which fails silently. heartbeat_ack is
    # answered by nobody in any dialect.
    swallowed_inputs=frozenset(RUN_TRIGGER_TYPES)
    | {"ping", "heartbeat", "pong", "heartbeat_ack", "error"},
    auth_failure="connection-error",
    as_ran=True,
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
