"""The verdicts of the seven contract tests, from probe results. Pure: no network, no pytest.

The pytest module (``test_agent_events.py``) and the report (:mod:`netra_ws.report`) both
call :func:`evaluate_contract`, so a test fails in pytest exactly when the report's contract
table says it failed, with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from ..expect import FAILED, PASSED

if TYPE_CHECKING:
    from ..probes import ProbeResult

__all__ = [
    "CONTRACT_TESTS",
    "NOT_RUN",
    "SKIPPED",
    "ContractResult",
    "ContractStatus",
    "evaluate_contract",
]

ContractStatus = Literal["passed", "failed", "skipped", "not run"]
SKIPPED: ContractStatus = "skipped"
NOT_RUN: ContractStatus = "not run"

STRUCTURE_EVENTS: tuple[str, ...] = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)

# The test functions of test_agent_events.py, in order; each maps to the probe it reads.
CONTRACT_TESTS: Mapping[str, str] = {
    "test_connection_established_on_connect": "connection",
    "test_output_event_sent_as_input_gets_no_reply": "negative",
    **{f"test_{event}_structure": "workflow" for event in STRUCTURE_EVENTS},
}


@dataclass(frozen=True)
class ContractResult:
    """The verdict of one contract test.

    ``status`` is ``"passed"``, ``"failed"``, ``"skipped"`` (the profile sets no fields for
    the event) or ``"not run"`` (its probe is missing, e.g. a report made from traces
    without a workflow trace); ``message`` is what pytest prints on failure or skip, and the
    check's explanation on a pass. ``probe`` is the result the verdict came from (None when
    not run): its ``traces`` hold the evidence.
    """

    test: str
    status: ContractStatus
    message: str
    probe: ProbeResult | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def evaluate_contract(probes: Mapping[str, ProbeResult]) -> list[ContractResult]:
    """Judge the seven contract tests from the ``connection``, ``negative`` and ``workflow``
    probe results (a dict by probe name, or a :class:`~netra_ws.probes.ProbeReport`).

    One :class:`ContractResult` per test, in :data:`CONTRACT_TESTS` order. A structure test
    judges only events the server generated after ``user_message``: when none arrived it
    fails with the reason, never validating something else in their place.
    """
    results = []
    for test, probe_name in CONTRACT_TESTS.items():
        result = _find(probes, probe_name)
        if result is None:
            results.append(
                ContractResult(test, NOT_RUN, f"the {probe_name} probe was not run: no verdict.")
            )
        elif probe_name == "workflow":
            event = test.removeprefix("test_").removesuffix("_structure")
            results.append(_structure(test, result, event))
        elif result.status == PASSED:
            results.append(ContractResult(test, PASSED, result.explanation, result))
        else:
            results.append(ContractResult(test, FAILED, result.explanation, result))
    return results


def _find(probes: Mapping[str, ProbeResult], name: str) -> ProbeResult | None:
    try:
        return probes[name]
    except (KeyError, IndexError):
        return None


def _structure(test: str, workflow: ProbeResult, event: str) -> ContractResult:
    name = f"fields: {event}"
    if name not in workflow.checks.names:
        return ContractResult(
            test, SKIPPED, f"the profile sets no required fields for {event}", workflow
        )
    check = workflow.checks[name]
    if check.status == PASSED:
        return ContractResult(test, PASSED, check.explanation, workflow)
    reasons = [check.explanation]
    arrived = workflow.checks["agent events"]
    if arrived.status != PASSED:
        reasons = [arrived.explanation]  # nothing arrived: the why is all that matters
    elif "required events" in workflow.checks.names:
        required = workflow.checks["required events"]
        if required.status != PASSED and event in required.explanation:
            reasons.append(required.explanation)
    return ContractResult(test, FAILED, " ".join(reasons), workflow)
