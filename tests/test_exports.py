"""The public surface is curated: pin it so changes are deliberate."""

from __future__ import annotations

import importlib

import pytest

import netra_ws

MODULES = [
    "netra_ws",
    "netra_ws.analysis",
    "netra_ws.capture",
    "netra_ws.client",
    "netra_ws.contract",
    "netra_ws.demo",
    "netra_ws.errors",
    "netra_ws.events",
    "netra_ws.expect",
    "netra_ws.har",
    "netra_ws.plots",
    "netra_ws.probes",
    "netra_ws.redact",
    "netra_ws.report",
    "netra_ws.server",
    "netra_ws.sync",
    "netra_ws.target",
    "netra_ws.tokens",
    "netra_ws.trace",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_unique(name):
    module = importlib.import_module(name)
    assert len(set(module.__all__)) == len(module.__all__)
    for attr in module.__all__:
        assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"


# Adding or removing a public name is a decision: update this list with it.
PUBLIC = [
    "AGENT_EVENTS",
    "AuthenticationFailed",
    "CRITICAL_EVENTS",
    "CheckResult",
    "Checks",
    "Collected",
    "ConnectFailed",
    "ConnectRefused",
    "EmbeddedServer",
    "Event",
    "FrameParseError",
    "Handshake",
    "HandshakeRejected",
    "HarFormatError",
    "NetraWsError",
    "ProbeReport",
    "ProbeResult",
    "Profile",
    "Received",
    "RedactionError",
    "Redactor",
    "ReferenceServer",
    "Report",
    "Scenario",
    "ServerConfig",
    "Session",
    "SessionClosed",
    "TERMINAL_EVENTS",
    "ToolCall",
    "Trace",
    "TraceFormatError",
    "TraceWarning",
    "TraceWriter",
    "WaitTimeout",
    "assign_runs",
    "build_report",
    "capture_runs",
    "check_run",
    "compare_runs",
    "connect",
    "event_gaps",
    "export_har",
    "find_stalls",
    "import_har",
    "load_profile",
    "load_traces",
    "mint_token",
    "normalize",
    "phase_durations",
    "probe_auth",
    "probe_connection",
    "probe_negative",
    "probe_workflow",
    "read_parquet",
    "read_trace",
    "register_secret",
    "run_probes",
    "run_stats",
    "summarize_runs",
]


def test_top_level_names_are_pinned():
    assert sorted(netra_ws.__all__) == PUBLIC


def test_each_top_level_name_is_its_modules_object():
    for module, names in netra_ws._EXPORTS.items():
        for name in names:
            assert getattr(netra_ws, name) is getattr(
                importlib.import_module(f"netra_ws.{module}"), name
            )
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        netra_ws.nope  # noqa: B018


def test_the_cli_and_the_server_start_without_pandas():
    """`python -m netra_ws serve` must not pay for pandas, pyarrow and matplotlib (2 s)."""
    import subprocess
    import sys

    code = (
        "import sys, netra_ws.cli, netra_ws.server\n"
        "from netra_ws import EmbeddedServer, mint_token\n"
        "heavy = {'pandas', 'pyarrow', 'matplotlib'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_every_exception_derives_from_the_base():
    from netra_ws import errors

    for attr in errors.__all__:
        assert issubclass(getattr(errors, attr), netra_ws.NetraWsError)


def test_requirements_match_pyproject():
    import pathlib

    import tomllib

    root = pathlib.Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    listed = [
        line.split("#")[0].strip()
        for line in (root / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert listed == declared
