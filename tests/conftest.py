"""Shared fixtures: real reference servers on 127.0.0.1 port 0, never a mock socket.

Every timeout in the tests is a multiple of one unit, scaled up on slow machines with
``NETRA_WS_TEST_UNIT`` (seconds, default 1.0; CI doubles it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine, Iterator
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


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    """The default server: dialect bridge, demo auth, fast scenario."""
    with EmbeddedServer(scenario=FAST) as srv:
        yield srv


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
