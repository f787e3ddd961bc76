"""The load tests' users: tests/test_server_concurrency.py holds 1,000 connections on one
server process (the ``server_process`` fixture of conftest.py), and
tests/test_reliability_isolation.py has :data:`USERS` of them each claim another's id.
"""

from __future__ import annotations

import asyncio

from conftest import t

from netra_ws import Session, connect
from netra_ws.tokens import mint_token

SECRET = "concurrency-test-secret-0123456789abcdef"
USERS = 500  # the isolation test's users (docs/RELIABILITY.md quotes it)


async def open_user(url: str, index: int, gate: asyncio.Semaphore) -> tuple[str, Session]:
    """Connect user number ``index`` with its own token, at most ``gate``'s count at once."""
    user = f"u{index:04d}-load"  # unique in its first 8 characters, as connection_established shows
    async with gate:
        session = await connect(url, token=mint_token(user, secret=SECRET), open_timeout=t(30))
    return user, session
