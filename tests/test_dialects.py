"""Each dialect on the wire, through a real connection, normalized back to the same events."""

from __future__ import annotations

import pytest
from conftest import RUN, run, t

from netra_ws import connect


async def _one_run(url: str, text: str = "analyze", type_: str = "user_message"):
    async with connect(url) as session:
        first = await session.next(timeout=t(5))
        await session.send({"type": type_, "message": text, "thread_id": "thread-42"})
        result = await session.collect(until="agent_completed", timeout=t(10))
        return first, result


@pytest.mark.parametrize(
    ("dialect", "envelope", "outer_types"),
    [
        ("bridge", "bridge", set(RUN)),
        ("manager", "manager", set(RUN)),
        ("wrapped", "wrapped", {"system_message", "agent_progress", "agent_response_complete"}),
        ("suite-contract", "flat", set(RUN)),
    ],
)
def test_every_dialect_normalizes_to_the_same_run(make_server, dialect, envelope, outer_types):
    srv = make_server(dialect=dialect)
    first, result = run(_one_run(srv.url))
    assert first.name == "connection_established"
    assert result.reason == "matched" and result.names == RUN
    assert {r.event.envelope for r in result} == {envelope}
    assert {r.event.type for r in result} == outer_types
    assert len({r.event.run_id for r in result}) == 1
    assert result.frames[3].event.tool_name == "cost_analyzer"


def test_manager_carries_ids_inside_data(make_server):
    srv = make_server(dialect="manager")
    _, result = run(_one_run(srv.url))
    raw = result.frames[0].json()
    assert raw["critical"] is True and "attempt" in raw
    assert raw["data"]["thread_id"] == "thread-42" and "run_id" not in raw


def test_wrapped_hides_the_name_inside_data(make_server):
    srv = make_server(dialect="wrapped")
    _, result = run(_one_run(srv.url))
    raw = result.frames[-1].json()
    assert raw["type"] == "agent_response_complete"
    assert raw["data"]["type"] == raw["data"]["event"] == "agent_completed"


def test_suite_contract_uses_the_suite_field_names(make_server):
    srv = make_server(dialect="suite-contract")
    _, result = run(_one_run(srv.url))
    tool_completed, completed = result.frames[4].json(), result.frames[5].json()
    assert "results" in tool_completed and "result" not in tool_completed
    assert isinstance(tool_completed["duration"], float)
    assert "execution_time_ms" not in tool_completed
    assert completed["final_response"] == "Analysis complete"
    assert all(r.json()["thread_id"] == "thread-42" for r in result)


def test_bridge_lacks_what_the_suite_demanded(server):
    _, result = run(_one_run(server.url))
    tool_completed = result.frames[4].json()
    assert "result" in tool_completed["payload"] and "results" not in tool_completed["payload"]
    assert "thread_id" not in tool_completed
    assert "final_response" not in result.frames[5].json()["payload"]


def test_staging_937_reproduces_the_staging_observations(make_server, tmp_path):
    srv = make_server(dialect="staging-937", auth="strict")  # strict is overridden: demo user

    async def scenario():
        async with connect(srv.url) as session:
            first = await session.next(timeout=t(5))
            await session.send({"type": "agent_started", "payload": {}})
            after_output_name = await session.quiet(t(0.5))
            await session.send_user_message("analyze")
            after_user_message = await session.quiet(t(0.5))
            await session.send({"type": "ping", "timestamp": 1})
            after_ping = await session.quiet(t(0.3))
            await session.send({"type": "message", "message": "alias still works"})
            alias = await session.collect(until="agent_completed", timeout=t(10))
            return first, after_output_name, after_user_message, after_ping, alias

    first, after_output_name, after_user_message, after_ping, alias = run(scenario())
    assert first.name == "connection_established"
    assert first.event.payload["user_id"] == "demo-use..."
    assert after_output_name == [] and after_user_message == [] and after_ping == []
    assert alias.names == RUN
