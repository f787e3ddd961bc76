"""The pure modules stay pure: building a report or judging a trace never loads the network.

A report is built from files alone (DESIGN.md), so importing the pure core must not load
``websockets``, the client or the reference server. Checked in a fresh interpreter, since
this test process has loaded everything already.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "netra_ws.events",
    "netra_ws.trace",
    "netra_ws.expect",
    "netra_ws.analysis",
    "netra_ws.verdicts",
    "netra_ws.redact",
    "netra_ws.har",
    "netra_ws.report",
    "netra_ws.browse",
    "netra_ws.diff",
    "netra_ws.untrusted",
    "netra_ws.tables",
]
NETWORK = ["websockets", "netra_ws.client", "netra_ws.server", "netra_ws.probes"]


@pytest.mark.parametrize("module", PURE)
def test_a_pure_module_loads_no_network_code(module):
    code = f"import sys, {module}\nprint(sorted(set({NETWORK!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"{module} loads {out.stdout.strip()}"


def test_the_check_sees_a_network_import():
    """The check above can fail: the probes module does load websockets."""
    code = f"import sys, netra_ws.probes\nprint(sorted(set({NETWORK!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "websockets" in out.stdout
