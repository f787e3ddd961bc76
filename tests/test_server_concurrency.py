"""One server process holds 1,000 concurrent connections, each its own user, thread, run and
timing, and never delivers one connection's events to another."""

from __future__ import annotations

import asyncio

import pytest
from conftest import RUN, run, t
from helpers.load import open_user

CONNECTIONS = 1000


@pytest.mark.slow
def test_a_thousand_concurrent_connections_stay_apart(server_process):
    async def scenario():
        gate = asyncio.Semaphore(100)  # handshakes in flight at once, not connections
        opened = await asyncio.gather(
            *(open_user(server_process, i, gate) for i in range(CONNECTIONS))
        )
        try:
            # Every connection is open before any run starts: the server holds all of them.
            async def one(index, session):
                await session.expect("connection_established", timeout=t(30))
                await session.send_user_message(f"request {index}", thread_id=f"thread-{index}")
                await session.collect(until="agent_completed", timeout=t(60))
                await session.quiet(0.3)  # anything more would be someone else's

            await asyncio.gather(*(one(i, s) for i, (_, s) in enumerate(opened)))
            return [(user, list(session.received)) for user, session in opened]
        finally:
            await asyncio.gather(*(session.close() for _, session in opened))

    results = run(scenario())
    run_ids = set()
    for index, (user, received) in enumerate(results):
        names = [r.name for r in received]
        assert names == ["connection_established", *RUN], (index, names)
        assert received[0].event.payload["user_id"] == user[:8] + "..."
        agent = [r.event for r in received[1:]]
        assert {e.user_id for e in agent} == {user}, index
        assert {e.thread_id for e in agent} == {f"thread-{index}"}, index
        (run_id,) = {e.run_id for e in agent}
        run_ids.add(run_id)
    assert len(run_ids) == CONNECTIONS
