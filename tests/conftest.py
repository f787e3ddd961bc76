"""Shared fixtures: real reference servers on 127.0.0.1 port 0, never a mock socket.

Every timeout in the tests is a multiple of one unit, scaled up on slow machines with
``NETRA_WS_TEST_UNIT`` (seconds, default 1.0; CI doubles it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from netra_ws.server import EmbeddedServer, Scenario

T = TypeVar("T")

UNIT = float(os.environ.get("NETRA_WS_TEST_UNIT", "2.0" if os.environ.get("CI") else "1.0"))

# Fast runs so the suite stays quick: 2 thinking steps, 1 tool, 5 ms between events.
FAST = Scenario(first_delay=0.005, step_delay=0.005)


def t(multiple: float) -> float:
    """A timeout of ``multiple`` units."""
    return multiple * UNIT


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop (tests need no asyncio plugin)."""
    return asyncio.run(coro)


# The agent events of one run of the reference server's default scenario, in order.
RUN = [
    "agent_started",
    "agent_thinking",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


@contextlib.contextmanager
def serve_cli(tmp_path: Path, *args: str) -> Iterator[tuple[str, Callable[[], str]]]:
    """``python -m netra_ws serve --port 0 ARGS`` in its own process, as a user runs it.

    Yields its URL and a function returning its log so far (a file, not a pipe: a server
    under load writes more than a pipe holds).
    """
    log_path = tmp_path / f"serve-{len(list(tmp_path.glob('serve-*.log')))}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "netra_ws", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("ws://127.0.0.1:"), log_path.read_text()
            yield url, log_path.read_text
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """The default server: dialect bridge, demo auth, fast scenario."""
    with EmbeddedServer(scenario=FAST) as srv:
        yield srv


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[str]:
    """``python -m netra_ws serve`` in its own process: strict auth, manager dialect, jitter.

    Yields its URL; connect users with :func:`helpers.load.open_user`.
    """
    from helpers.load import SECRET

    scenario = tmp_path / "load.json"
    # Jittered steps, so the runs of different connections interleave on the wire; a long
    # heartbeat interval, so connections that wait for the others get no extra frames.
    scenario.write_text(
        json.dumps(
            {"first_delay": 0.05, "step_delay": 0.05, "jitter": 0.8, "heartbeat_interval": 600}
        )
    )
    args = ["--auth", "strict", "--secret", SECRET, "--dialect", "manager"]
    with serve_cli(tmp_path, *args, "--scenario", str(scenario), "--seed", "9") as (url, _):
        yield url


@pytest.fixture
def make_server() -> Iterator[Any]:
    """Factory for servers with other options; all are stopped after the test."""
    started: list[EmbeddedServer] = []

    def factory(**options: Any) -> EmbeddedServer:
        options.setdefault("scenario", FAST)
        srv = EmbeddedServer(**options).start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        srv.stop()
