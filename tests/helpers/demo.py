"""One run of ``python -m netra_ws demo --out DIR`` per test session, as ``make demo`` runs it.

tests/test_demo.py checks what it wrote; tests/test_cli.py checks what it printed.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from netra_ws.tokens import mint_token

SECRET = "demo-test-signing-secret-0123456789abcdef"


@dataclass(frozen=True)
class DemoRun:
    result: subprocess.CompletedProcess[str]
    out: Path
    token: str


@functools.cache
def demo_run() -> DemoRun:
    """Run the demo once into a fresh folder, with ``$NETRA_WS_JWT_SECRET`` and a token set."""
    out = Path(tempfile.mkdtemp(prefix="netra-ws-demo-"))
    atexit.register(shutil.rmtree, out, True)
    token = mint_token("demo-tester", secret=SECRET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRA_WS_")}
    env.update(NETRA_WS_JWT_SECRET=SECRET, NETRA_WS_TOKEN=token)
    result = subprocess.run(
        [sys.executable, "-m", "netra_ws", "demo", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return DemoRun(result, out, token)
