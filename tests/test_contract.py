"""The user-runnable contract suite (netra_ws.contract), run as users run it: pytest in a
subprocess, one per configuration, asserting on exit codes and failure messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netra_ws.server import EmbeddedServer

ROOT = Path(__file__).resolve().parent.parent
STRUCTURE_TESTS = [
    f"test_{event}_structure"
    for event in (
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    )
]
# Quick windows: the embedded server answers in milliseconds. staging-937 swallows the
# input, so its collections run to the timeout.
QUICK = {"NETRA_WS_QUIET": "0.2", "NETRA_WS_TIMEOUT": "1"}
# Three runs cover it: the passing one is a URL target (a bridge server, strict auth, a
# token), the failing ones use the embedded server the suite starts by default.
CONFIGS = {
    # What #937 met on staging: DEMO_MODE, everyone is the demo user.
    "staging-937": {"NETRA_WS_DIALECT": "staging-937", "NETRA_WS_AUTH": "demo"},
    "bridge-netra-suite": {"NETRA_WS_PROFILE": "netra-suite"},
}


@pytest.fixture(scope="module")
def url_server():
    """A strict server the URL configuration points at, with a token it accepts."""
    with EmbeddedServer(auth="strict") as server:
        yield server


@pytest.fixture(scope="module")
def outcomes(url_server) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every configuration at once (they mostly wait on sockets), then their results."""
    token = url_server.token("contract-user")
    configs = {
        **CONFIGS,
        "url-with-token": {"NETRA_WS_URL": url_server.url, "NETRA_WS_TOKEN": token},
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NETRA_WS_")}
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "--pyargs",
                "netra_ws.contract",
                "-q",
                "-rA",
                "-p",
                "no:cacheprovider",
                # The hypothesis plugin costs a second and a half of CPU at startup.
                "-p",
                "no:hypothesispytest",
            ],
            cwd=ROOT,
            env={
                **clean,
                **QUICK,
                **extra,
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, extra in configs.items()
    }
    results = {}
    for name, proc in procs.items():
        stdout, _ = proc.communicate(timeout=180)
        results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, "")
    results["token"] = token  # type: ignore[assignment]
    return results


def _failed(output: str) -> set[str]:
    return {
        line.split("::")[1].split(" ")[0]
        for line in output.splitlines()
        if line.startswith("FAILED ") and "::" in line
    }


def test_it_fails_against_staging_937_and_explains_why(outcomes):
    result = outcomes["staging-937"]
    assert result.returncode == 1, result.stdout
    assert "5 failed, 2 passed" in result.stdout
    assert _failed(result.stdout) == set(STRUCTURE_TESTS)
    out = result.stdout
    assert "PASSED netra_ws/contract/test_agent_events.py::test_connection_established" in out
    assert "PASSED netra_ws/contract/test_agent_events.py::test_output_event_sent_as_input" in out
    # Each failure says it; pytest's summary may repeat it, depending on terminal width.
    assert out.count("No agent events arrived after user_message #2 (flat form)") >= 5
    assert "so the server did not use the token" in out  # the demo user: says so
    assert "connection_established #1 says user_id 'demo-use...'" in out
    assert "no event was validated" in out


def test_netra_suite_against_bridge_lists_each_field_mismatch(outcomes):
    result = outcomes["bridge-netra-suite"]
    assert result.returncode == 1, result.stdout
    assert _failed(result.stdout) == set(STRUCTURE_TESTS)
    out = result.stdout
    for mismatch in (
        "tool_completed #7, #14: results missing (payload has result instead)",
        "duration missing (payload has execution_time_ms instead)",
        "agent_completed #8, #15: final_response missing (payload has result instead)",
        "thread_id missing",
        "user_id not in payload but at the top level",
        "timestamp not in payload but at the top level",
    ):
        assert mismatch in out, mismatch


def test_the_corrected_suite_passes_against_a_bridge_url_with_a_token(outcomes):
    result = outcomes["url-with-token"]
    assert result.returncode == 0, result.stdout
    assert "7 passed" in result.stdout
    assert outcomes["token"] not in result.stdout
