"""Each dialect on the wire, through a real connection, normalized back to the same events."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re

import pytest
from conftest import RUN, run, t
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from netra_ws import connect
from netra_ws.server import DIALECTS


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


# staging-937 (the backend as it ran) has its own table-driven file: test_staging_937.py.


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("path", ["/ws/chat", "/api/v1/ws", "/"])
def test_every_dialect_refuses_an_unknown_path_with_a_bare_403(make_server, dialect, path):
    # The real backend never accepted an unknown path: a client (or a test) with a wrong
    # path must fail offline exactly as it would against the real server.
    srv = make_server(dialect=dialect)

    async def attempt():
        async with ws_connect(srv.base_url + path, open_timeout=t(5)):
            pass

    with pytest.raises(InvalidStatus) as info:
        run(attempt())
    assert (info.value.response.status_code, info.value.response.body) == (403, b"")


@pytest.mark.parametrize("path", ["/ws/factory", "/ws/isolated"])
def test_designed_dialects_serve_factory_and_isolated_as_main_mode(make_server, path):
    srv = make_server(dialect="bridge")
    first, result = run(_one_run(srv.base_url + path))
    assert first.name == "connection_established" and first.event.payload["mode"] == "main"
    assert result.names == RUN


@pytest.mark.parametrize("dialect", ["bridge", "staging-937"])
@pytest.mark.parametrize("style", ["auth-failed", "connection-error", None])
def test_the_strict_refusal_style_is_a_switch(make_server, dialect, style):
    srv = make_server(dialect=dialect, auth="strict", auth_failure=style)
    expected = style or ("connection-error" if dialect == "staging-937" else "auth-failed")

    async def attempt():
        async with ws_connect(srv.url, open_timeout=t(5)) as ws:
            frames = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), t(5))))
            return frames, ws.close_code, ws.close_reason

    frames, code, reason = run(attempt())
    if expected == "auth-failed":
        assert [f.get("error_code") for f in frames] == ["AUTH_FAILED"]
        assert "no token" in frames[0]["error_message"]
        assert (code, reason) == (1008, "Authentication failed")
    else:
        assert [f["data"]["error_code"] for f in frames] == ["CONNECTION_ERROR"]
        assert (code, reason) == (1011, "main mode error")


def test_connection_established_is_the_routes_own_in_every_dialect(server):
    async def first_raw():
        async with ws_connect(server.url, open_timeout=t(5)) as ws:
            return await asyncio.wait_for(ws.recv(), t(5))

    raw = run(first_raw())
    assert ", " not in raw and '": ' not in raw  # compact JSON, as the backend wrote it
    data = json.loads(raw)["data"]
    assert re.fullmatch(r"main_[0-9a-f]{8}", data["connection_id"])
    assert data["features"] == dict.fromkeys(
        [
            "full_business_logic",
            "golden_path_integration",
            "cloud_run_optimized",
            "emergency_fallback",
            "agent_orchestration",
        ],
        True,
    )
