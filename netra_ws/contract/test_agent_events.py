"""The seven WebSocket agent event tests, done right. Configure with NETRA_WS_* variables.

Every structure test judges events the server generated after a ``user_message``; when
none arrived the test fails and says why that is likely (swallowed input, demo user), as
the original suite's fallback to a hand-made event never could.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from netra_ws.contract import SETTINGS
from netra_ws.expect import PASSED, load_profile
from netra_ws.probes import ProbeResult, probe_connection, probe_negative, probe_workflow
from netra_ws.server import EmbeddedServer


def _setting(name: str) -> str | None:
    return os.environ.get(name) or SETTINGS[name][0]


@pytest.fixture(scope="module")
def probes() -> dict[str, ProbeResult]:
    """Connect, send output names as input, then run user_message once; for all tests."""
    profile = load_profile(_setting("NETRA_WS_PROFILE"))
    url = _setting("NETRA_WS_URL")
    options: dict[str, Any] = {
        "token": _setting("NETRA_WS_TOKEN"),
        "auth": _setting("NETRA_WS_AUTH_FORM"),
        "out": _setting("NETRA_WS_OUT"),
    }
    timeout = float(_setting("NETRA_WS_TIMEOUT"))
    quiet = float(_setting("NETRA_WS_QUIET"))

    async def run(target) -> dict[str, ProbeResult]:
        return {
            "connection": await probe_connection(target, timeout=min(timeout, 10), **options),
            "negative": await probe_negative(
                target, quiet=quiet, timeout=min(timeout, 10), **options
            ),
            "workflow": await probe_workflow(target, profile=profile, timeout=timeout, **options),
        }

    if url:
        return asyncio.run(run(url))
    server = EmbeddedServer(dialect=_setting("NETRA_WS_DIALECT"), auth=_setting("NETRA_WS_AUTH"))
    with server:
        return asyncio.run(run(server))


def _fail(result: ProbeResult, *reasons: str) -> None:
    where = f" Trace: {', '.join(map(str, result.traces))}." if result.traces else ""
    pytest.fail(f"{' '.join(reasons)}{where} Target: {result.facts.get('target')}.", pytrace=False)


def _structure(probes: dict[str, ProbeResult], event: str) -> None:
    workflow = probes["workflow"]
    name = f"fields: {event}"
    if name not in workflow.checks.names:
        pytest.skip(f"the profile sets no required fields for {event}")
    check = workflow.checks[name]
    if check.status == PASSED:
        return
    reasons = [check.explanation]
    arrived = workflow.checks["agent events"]
    if arrived.status != PASSED:
        reasons = [arrived.explanation]  # nothing arrived: the why is all that matters
    elif "required events" in workflow.checks.names:
        required = workflow.checks["required events"]
        if required.status != PASSED and event in required.explanation:
            reasons.append(required.explanation)
    _fail(workflow, *reasons)


def test_connection_established_on_connect(probes):
    result = probes["connection"]
    if result.status != PASSED:
        _fail(result, result.explanation)


def test_output_event_sent_as_input_gets_no_reply(probes):
    result = probes["negative"]
    if result.status != PASSED:
        _fail(result, result.explanation)


def test_agent_started_structure(probes):
    _structure(probes, "agent_started")


def test_agent_thinking_structure(probes):
    _structure(probes, "agent_thinking")


def test_tool_executing_structure(probes):
    _structure(probes, "tool_executing")


def test_tool_completed_structure(probes):
    _structure(probes, "tool_completed")


def test_agent_completed_structure(probes):
    _structure(probes, "agent_completed")
