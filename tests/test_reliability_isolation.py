"""500 users at once on a strict server: each connection sees only its own user and runs.

tests/test_server_concurrency.py holds 1,000 connections on one server process; this test
reuses its server (strict auth, manager dialect, jittered steps, in a subprocess: the
``server_process`` fixture) and its connection helper (:func:`helpers.load.open_user`), and
asks a sharper question: with every user authenticated by its own token, and every user
*claiming another user's id* in its ``user_message`` (the #937 script's flat form carries
a ``user_id``), does any normalized event carry a user or a run that is not the
connection's own? Zero leaks is the only passing answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from conftest import RUN, run, t
from helpers.load import USERS, open_user


def test_five_hundred_authenticated_users_see_only_their_own_events(server_process):
    async def scenario():
        gate = asyncio.Semaphore(100)
        opened = await asyncio.gather(*(open_user(server_process, i, gate) for i in range(USERS)))
        try:

            async def one(index, session):
                await session.expect("connection_established", timeout=t(30))
                neighbour = f"u{(index + 1) % USERS:04d}-load"
                await session.send_user_message(
                    f"request {index}", user_id=neighbour, thread_id=f"thread-{index}"
                )
                await session.collect(until="agent_completed", timeout=t(60))
                await session.quiet(0.3)  # anything more would be someone else's

            await asyncio.gather(*(one(i, s) for i, (_, s) in enumerate(opened)))
            return [(user, list(session.received)) for user, session in opened]
        finally:
            await asyncio.gather(*(session.close() for _, session in opened))

    results = run(scenario())
    leaks, runs_seen = [], Counter()
    for index, (user, received) in enumerate(results):
        assert [r.name for r in received] == ["connection_established", *RUN], index
        assert received[0].event.payload["user_id"] == user[:8] + "..."
        events = [r.event for r in received[1:]]
        leaks += [(index, e.event, e.user_id) for e in events if e.user_id != user]
        leaks += [(index, e.event, e.thread_id) for e in events if e.thread_id != f"thread-{index}"]
        run_ids = {e.run_id for e in events}
        assert len(run_ids) == 1 and None not in run_ids, index
        runs_seen.update(run_ids)
    assert leaks == []
    # Every run id belongs to exactly one connection: no run reached two users.
    assert len(runs_seen) == USERS and set(runs_seen.values()) == {1}
