"""The async session against the real reference server (dialect bridge)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from conftest import RUN, run, t

from netra_ws import (
    CRITICAL_EVENTS,
    AuthenticationFailed,
    ConnectRefused,
    HandshakeRejected,
    WaitTimeout,
    connect,
    read_trace,
)


def test_first_frame_is_connection_established_and_handshake_recorded(server, tmp_path):
    path = tmp_path / "s.jsonl"

    async def scenario():
        async with connect(server.url, trace=path) as session:
            first = await session.next(timeout=t(5))
            return session.handshake, first

    handshake, first = run(scenario())
    assert first.name == "connection_established"
    assert first.event.envelope == "status"
    assert first.event.payload["mode"] == "main"
    assert first.event.payload["user_id"] == "demo-use..."
    assert handshake.status == 101 and handshake.subprotocol is None
    trace = read_trace(path)
    kinds = [r["kind"] for r in trace.records]
    assert kinds[0] == "open" and kinds[-1] == "close"
    assert trace.records[0]["http_status"] == 101
    assert trace.records[-1]["code"] == 1000
    assert trace.meta["target"] == server.url


def test_output_event_as_input_gets_no_reply(server, tmp_path):
    """The #937 root cause: the server ignores its own output names sent as input."""
    path = tmp_path / "neg.jsonl"

    async def scenario():
        async with connect(server.url, trace=path) as session:
            await session.next(timeout=t(5))
            await session.send({"type": "agent_started", "payload": {}})
            return await session.quiet(t(0.5))

    assert run(scenario()) == []
    frames = read_trace(path).frames
    assert [(f["dir"], f["event"]) for f in frames] == [
        ("receive", "connection_established"),
        ("send", "agent_started"),
    ]


def test_single_read_after_connect_is_the_trap(server):
    """What the flawed tests did: send an output event, read one frame, get the welcome."""

    async def scenario():
        async with connect(server.url) as session:
            await session.send({"type": "tool_executing", "payload": {"tool_name": "x"}})
            return await session.next(timeout=t(5))

    assert run(scenario()).name == "connection_established"


@pytest.mark.parametrize("form", ["flat", "payload"])
def test_user_message_yields_a_complete_run(server, form):
    async def scenario():
        async with connect(server.url) as session:
            await session.expect("connection_established", timeout=t(5))
            sent = await session.send_user_message("analyze costs", form=form, thread_id="thread-7")
            result = await session.collect(until="agent_completed", timeout=t(10))
            return sent, result

    sent, result = run(scenario())
    assert sent["event"] == "user_message"
    assert result.reason == "matched"
    assert result.names == RUN
    run_ids = {r.event.run_id for r in result}
    assert len(run_ids) == 1 and next(iter(run_ids)).startswith("run_")
    assert all(r.event.envelope == "bridge" for r in result)
    assert all(r.event.user_id == "demo-user-001" for r in result)
    assert result.frames[3].event.tool_name == "cost_analyzer"
    assert isinstance(result.frames[0].event.server_ts, float)


def test_collect_times_out_honestly_when_nothing_arrives(server):
    async def scenario():
        async with connect(server.url) as session:
            await session.next(timeout=t(5))
            return await session.collect(until="agent_completed", timeout=t(0.3))

    result = run(scenario())
    assert result.reason == "timeout" and result.matched is None and result.frames == []


def test_expect_timeout_carries_what_did_arrive(server):
    async def scenario():
        async with connect(server.url) as session:
            await session.expect("agent_completed", timeout=t(0.3))

    with pytest.raises(WaitTimeout) as info:
        run(scenario())
    assert [r.name for r in info.value.received] == ["connection_established"]
    assert "connection_established" in str(info.value)


def test_unknown_type_is_acknowledged_and_ping_answered(server):
    async def scenario():
        async with connect(server.url) as session:
            await session.next(timeout=t(5))
            await session.send({"type": "frobnicate"})
            ack = await session.next(timeout=t(5))
            await session.send({"type": "ping", "timestamp": 1234})
            pong = await session.next(timeout=t(5))
            await session.send({"type": "heartbeat"})
            heartbeat_ack = await session.next(timeout=t(5))
            return ack, pong, heartbeat_ack

    ack, pong, heartbeat_ack = run(scenario())
    assert ack.json()["received_type"] == "frobnicate" and ack.event.envelope == "ack"
    assert pong.name == "pong" and pong.event.payload["original_timestamp"] == 1234
    assert heartbeat_ack.name == "heartbeat_ack"
    assert heartbeat_ack.event.payload["status"] == "healthy"


def test_invalid_json_gets_an_error_frame_and_the_connection_stays(server):
    async def scenario():
        async with connect(server.url) as session:
            await session.next(timeout=t(5))
            await session.send("{not json")
            error = await session.next(timeout=t(5))
            await session.send({"type": "ping"})
            pong = await session.next(timeout=t(5))
            return error, pong

    error, pong = run(scenario())
    assert error.event.envelope == "error"
    assert error.event.error_code == "JSON_PARSE_ERROR"
    assert pong.name == "pong"


def test_idle_client_receives_heartbeats(make_server):
    srv = make_server(heartbeat_interval=0.2)

    async def scenario():
        async with connect(srv.url) as session:
            await session.next(timeout=t(5))
            return await session.quiet(t(0.5) + 0.3)

    frames = run(scenario())
    assert frames and {f.name for f in frames} == {"heartbeat"}
    assert "messages_processed" in frames[0].event.payload["stats"]


def test_strict_without_token_raises_auth_error_and_records_it(make_server, tmp_path):
    srv = make_server(auth="strict")
    path = tmp_path / "strict.jsonl"

    async def scenario():
        async with connect(srv.url, trace=path) as session:
            await session.next(timeout=t(5))

    with pytest.raises(AuthenticationFailed) as info:
        run(scenario())
    assert info.value.close_code == 1008
    assert info.value.frame.record["error_code"] == "AUTH_FAILED"
    trace = read_trace(path)
    assert [f["event"] for f in trace.frames] == ["error_message"]
    assert trace.frames[0]["error_code"] == "AUTH_FAILED"
    close = [r for r in trace.records if r["kind"] == "close"]
    assert close and close[0]["code"] == 1008
    assert not any(f["event"] in CRITICAL_EVENTS for f in trace.frames)


@pytest.mark.parametrize("bad", ["expired", "bad-signature", "wrong-type"])
def test_strict_refuses_bad_tokens(make_server, bad):
    srv = make_server(auth="strict")
    token = {
        "expired": lambda: srv.token("alice", expires_in=-60),
        "bad-signature": lambda: srv.token("alice")[:-4] + "AAAA",
        "wrong-type": lambda: srv.token("alice", type="refresh"),
    }[bad]()

    async def scenario():
        async with connect(srv.url, token=token) as session:
            await session.collect(until="agent_completed", timeout=t(5))

    with pytest.raises(AuthenticationFailed) as info:
        run(scenario())
    assert info.value.close_code == 1008


@pytest.mark.parametrize("auth", ["header", "subprotocol", "both"])
def test_strict_with_minted_token_completes_and_token_never_recorded(make_server, tmp_path, auth):
    srv = make_server(auth="strict")
    token = srv.token("alice-1234")
    path = tmp_path / f"{auth}.jsonl"

    async def scenario():
        async with connect(srv.url, token=token, auth=auth, trace=path) as session:
            first = await session.next(timeout=t(5))
            await session.send_user_message("hello")
            result = await session.collect(until="agent_completed", timeout=t(10))
            return session.handshake, first, result

    handshake, first, result = run(scenario())
    assert first.name == "connection_established"
    assert first.event.payload["user_id"] == "alice-12..."
    assert result.names == RUN
    assert {r.event.user_id for r in result} == {"alice-1234"}
    if auth == "header":
        assert handshake.subprotocol is None
    else:
        assert handshake.subprotocol == "jwt.[REDACTED]"
    text = path.read_text()
    assert token not in text
    assert token.split(".")[2] not in text  # not even the signature
    assert "Bearer" not in text


def test_bare_jwt_auth_subprotocol_with_header_is_echoed(make_server):
    """The backend test helpers' form: Authorization header plus a bare jwt-auth."""
    srv = make_server(auth="strict")

    async def scenario():
        async with connect(srv.url, token=srv.token("bob"), subprotocols=["jwt-auth"]) as session:
            return session.handshake, await session.next(timeout=t(5))

    handshake, first = run(scenario())
    assert handshake.subprotocol == "jwt-auth"
    assert first.name == "connection_established"


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("garbage-token-value", 403)])
def test_reject_mode_refuses_the_handshake_with_http_status(make_server, tmp_path, token, status):
    srv = make_server(auth="reject")
    path = tmp_path / "reject.jsonl"

    async def scenario():
        async with connect(srv.url, token=token, trace=path):
            pass

    with pytest.raises(HandshakeRejected) as info:
        run(scenario())
    assert info.value.status == status
    errors = [r for r in read_trace(path).records if r["kind"] == "error"]
    assert errors[0]["http_status"] == status
    assert errors[0]["exception"] == "HandshakeRejected"
    if token:
        assert token not in path.read_text()


def test_unsupported_subprotocol_is_refused(server):
    async def scenario():
        async with connect(server.url, subprotocols=["graphql-ws"]):
            pass

    with pytest.raises(HandshakeRejected) as info:
        run(scenario())
    assert info.value.status == 403 and info.value.body == ""  # as the backend: no body


def test_refused_connection_is_a_distinct_error(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        path = tmp_path / "refused.jsonl"

        async def scenario():
            async with connect(f"ws://127.0.0.1:{port}/ws", trace=path):
                pass

        with pytest.raises(ConnectRefused):
            run(scenario())
    assert read_trace(path).records[0]["exception"] == "ConnectRefused"


def test_open_timeout_is_a_wait_timeout(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)  # accepts TCP, never answers the HTTP upgrade
        port = sock.getsockname()[1]

        async def scenario():
            async with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=t(0.3)):
                pass

        with pytest.raises(WaitTimeout) as info:
            run(scenario())
    assert info.value.waited_for == "opening handshake"


def test_both_endpoints_and_http_health(server):
    async def scenario():
        async with connect(server.base_url + "/ws") as session:
            return (await session.next(timeout=t(5))).name

    assert run(scenario()) == "connection_established"
    with urllib.request.urlopen(server.base_url.replace("ws://", "http://") + "/ws/health") as r:
        assert json.load(r) == {"status": "healthy"}
    with urllib.request.urlopen(server.base_url.replace("ws://", "http://") + "/ws/config") as r:
        assert json.load(r)["websocket_config"]["max_message_size"] == 1024 * 1024


def test_session_to_frame_in_memory(server):
    async def scenario():
        async with connect(server.url) as session:
            await session.send_user_message("x")
            await session.collect(until="agent_completed", timeout=t(10))
            return session.to_frame()

    df = run(scenario())
    assert df["dir"].tolist()[:2] == ["receive", "send"] or df["dir"].tolist()[0] == "send"
    assert (df["event"] == "agent_completed").sum() == 1
    assert df["t_mono_ns"].is_monotonic_increasing
