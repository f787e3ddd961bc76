"""The live view and the rich reprs: what a notebook shows of a session as it runs."""

from __future__ import annotations

import asyncio

import IPython.display
import pytest
from conftest import RUN, run, t

from netra_ws import connect


class Handle:
    """Stands in for the frontend: keeps every state the view was drawn in."""

    def __init__(self, obj):
        self.states = [obj.data]

    def update(self, obj):
        self.states.append(obj.data)


@pytest.fixture
def shown(monkeypatch):
    handles: list[Handle] = []

    def display(obj, display_id=False):
        assert display_id is True  # an updatable output, not a new one per refresh
        handles.append(Handle(obj))
        return handles[-1]

    monkeypatch.setattr(IPython.display, "display", display)
    return handles


def test_live_view_follows_the_session_to_its_close(server, shown, tmp_path):
    async def go():
        async with connect(server.url, trace=tmp_path / "live.jsonl") as session:
            view = session.live(every=0.01)
            await session.next(timeout=t(5))
            await session.send_user_message("hi")
            result = await session.collect(until="agent_completed", timeout=t(5))
            await asyncio.sleep(0.05)
            middle = len(shown[0].states)
        await asyncio.sleep(0.05)
        return view, result, middle

    view, result, middle = run(go())
    assert len(shown) == 1  # one output, updated in place
    states = shown[0].states
    assert middle >= 2 and len(states) > middle  # redrawn while live, and once closed
    assert "0 frames · live" in states[0]
    final = states[-1]
    assert "closed (1000)" in final and "<svg" in final
    for event in RUN:
        assert event in final
    assert view.done
    assert result.reason == "matched"


def test_rich_reprs_of_session_collected_received(server, tmp_path):
    async def go():
        async with connect(server.url) as session:
            first = await session.next(timeout=t(5))
            await session.send_user_message("hi")
            result = await session.collect(until="agent_completed", timeout=t(5))
            return session, first, result

    session, first, result = run(go())
    assert "<details><summary>" in first._repr_html_()
    assert "connection_established" in first._repr_html_()
    assert repr(result).startswith("<Collected matched: 6 frames in ")
    assert "agent_started → agent_thinking ×2" in repr(result)
    page = result._repr_html_()
    assert page.count("<tr class=") == 6 and "agent_completed" in page
    assert repr(session).startswith("<Session ws://") and "closed 1000" in repr(session)
    assert "user_message" in session._repr_html_()
