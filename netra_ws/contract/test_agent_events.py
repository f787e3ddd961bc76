"""The seven WebSocket agent event tests, done right. Configure with NETRA_WS_* variables.

Every structure test judges events the server generated after a ``user_message``; when
none arrived the test fails and says why that is likely (swallowed input, demo user), as
the original suite's fallback to a hand-made event never could.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from netra_ws.contract import SETTINGS, ContractResult, evaluate_contract
from netra_ws.expect import PASSED, load_profile
from netra_ws.probes import ProbeResult, probe_connection, probe_negative, probe_workflow
from netra_ws.target import Target, resolve_target
from netra_ws.verdicts import SKIPPED


def _setting(name: str) -> str | None:
    return os.environ.get(name) or SETTINGS[name][0]


def _given(name: str) -> str:
    """A setting that has a default, so it is never unset."""
    value = _setting(name)
    assert value is not None, f"{name} has no default"
    return value


@pytest.fixture(scope="module")
def probes() -> dict[str, ProbeResult]:
    """Connect, send output names as input, then run user_message once; for all tests."""
    profile = load_profile(_given("NETRA_WS_PROFILE"))
    timeout = float(_given("NETRA_WS_TIMEOUT"))
    quiet = float(_given("NETRA_WS_QUIET"))
    out = _setting("NETRA_WS_OUT")

    async def run(target: Target) -> dict[str, ProbeResult]:
        return {
            "connection": await probe_connection(target, timeout=min(timeout, 10), out=out),
            "negative": await probe_negative(
                target, quiet=quiet, timeout=min(timeout, 10), out=out
            ),
            "workflow": await probe_workflow(target, profile=profile, timeout=timeout, out=out),
        }

    # NETRA_WS_URL unset: an embedded server, stopped as soon as the probes have run.
    with resolve_target(
        _setting("NETRA_WS_URL"),
        token_env="NETRA_WS_TOKEN",
        auth=_setting("NETRA_WS_AUTH_FORM"),
        dialect=_given("NETRA_WS_DIALECT"),
        server_auth=_given("NETRA_WS_AUTH"),
    ) as target:
        return asyncio.run(run(target))


def _fail(result: ProbeResult | None, message: str) -> None:
    where = ""
    if result is not None:
        where = f" Trace: {', '.join(map(str, result.traces))}." if result.traces else ""
        where += f" Target: {result.facts.get('target')}."
    pytest.fail(f"{message}{where}", pytrace=False)


@pytest.fixture(scope="module")
def verdicts(probes: dict[str, ProbeResult]) -> dict[str, ContractResult]:
    """The seven verdicts, judged once by the function the report uses too."""
    return {verdict.test: verdict for verdict in evaluate_contract(probes)}


def _judge(verdicts: dict[str, ContractResult], test: str) -> None:
    verdict = verdicts[test]
    if verdict.status == SKIPPED:
        pytest.skip(verdict.message)
    if verdict.status != PASSED:
        _fail(verdict.probe, verdict.message)


def test_connection_established_on_connect(verdicts):
    _judge(verdicts, "test_connection_established_on_connect")


def test_output_event_sent_as_input_gets_no_reply(verdicts):
    _judge(verdicts, "test_output_event_sent_as_input_gets_no_reply")


def test_agent_started_structure(verdicts):
    _judge(verdicts, "test_agent_started_structure")


def test_agent_thinking_structure(verdicts):
    _judge(verdicts, "test_agent_thinking_structure")


def test_tool_executing_structure(verdicts):
    _judge(verdicts, "test_tool_executing_structure")


def test_tool_completed_structure(verdicts):
    _judge(verdicts, "test_tool_completed_structure")


def test_agent_completed_structure(verdicts):
    _judge(verdicts, "test_agent_completed_structure")
