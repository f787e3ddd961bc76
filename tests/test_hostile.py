"""Servers the user does not control: protocol violations, redirects and web pages are told
as what they are, never as a dropped connection, a missing token or a refusal."""

from __future__ import annotations

import contextlib

import pytest
from conftest import run, t
from helpers.hostile import HostileServer, frame, http_answer, upgrade_response, welcome_then

from netra_ws import connect
from netra_ws.errors import ConnectFailed
from netra_ws.probes import probe_auth, probe_connection, probe_workflow
from netra_ws.trace import TraceWriter
from netra_ws.verdicts import connection_end

NO_HINTS = ("Likely causes", "token", "collect for longer")


def test_invalid_utf8_is_named_a_protocol_violation_without_auth_hints():
    with HostileServer(welcome_then(frame(0x1, b'{"type":"agent_started","x":"\xff\xfe"}'))) as srv:
        result = run(probe_workflow(srv.url, out=None, timeout=t(2)))
    text = result.explanation
    assert result.status == "failed" and result.facts["ended"] == "failed"
    assert "the server broke the WebSocket protocol: a text frame that is not valid UTF-8" in text
    assert "the client closed the connection with 1007" in text
    assert "1006" not in text and not any(hint in text for hint in NO_HINTS), text


def test_a_masked_server_frame_is_named_a_protocol_violation():
    with HostileServer(welcome_then(frame(0x1, b'{"type":"x"}', masked=True))) as srv:
        result = run(probe_workflow(srv.url, out=None, timeout=t(2)))
    assert "the server broke the WebSocket protocol" in result.explanation
    assert "the client closed the connection with 1002" in result.explanation


def test_a_keepalive_timeout_is_named():
    writer = TraceWriter(None)
    writer.record("open", http_status=101, t_mono_ns=1)
    writer.record(
        "close",
        code=1006,
        sent_code=1011,
        sent_reason="keepalive ping timeout",
        initiated_by="client",
    )
    end = connection_end(writer.records)
    assert end.kind == "failed"
    assert end.words.startswith("the server stopped answering: no pong came back")


def test_a_redirect_is_recorded_and_not_followed(make_server):
    real = make_server(auth="strict")
    moved = http_answer("301 Moved Permanently", {"Location": real.url})
    with HostileServer(moved) as srv:
        result = run(probe_connection(srv.url, token=real.token("r"), out=None, timeout=t(5)))
        # Asked to follow, it still refuses another origin: the token would go with it.
        writer = TraceWriter(None)

        async def follow():
            async with connect(srv.url, token=real.token("r"), trace=writer, follow_redirects=True):
                pass

        with pytest.raises(ConnectFailed):
            run(follow())
    assert result.status == "failed" and result.facts["ended"] == "not websocket"
    assert f"the server answered HTTP 301 (a redirect to {real.url}, not followed)" in (
        result.explanation
    )
    (error,) = [r for r in writer.records if r["kind"] == "error"]
    assert error["redirects"] == [{"status": 301, "location": real.url, "followed": False}]


def test_a_same_origin_redirect_is_followed_only_when_asked():
    welcome = b'{"type":"connection_established","data":{"user_id":"alice-12..."}}'

    def behave(sock, request):
        if request.startswith(b"GET /api/v1/websocket "):
            http_answer("301 Moved Permanently", {"Location": "/ws"})(sock, request)
        else:
            sock.sendall(upgrade_response(request) + frame(0x1, welcome))

    with HostileServer(behave) as srv:
        writer = TraceWriter(None)

        async def follow():
            async with connect(srv.url, trace=writer, follow_redirects=True) as session:
                return await session.next(timeout=t(5))

        first = run(follow())
        refused = run(probe_connection(srv.url, out=None, timeout=t(5)))
    assert first.name == "connection_established"
    (opened,) = [r for r in writer.records if r["kind"] == "open"]
    assert opened["url"].endswith("/ws")
    assert opened["redirects"] == [
        {"status": 301, "location": srv.url.replace("/api/v1/websocket", "/ws"), "followed": True}
    ]
    assert refused.facts["ended"] == "not websocket"


def test_a_web_page_is_not_an_auth_refusal():
    page = http_answer("200 OK", {"Content-Type": "text/html"}, b"<html>login</html>")
    with HostileServer(page) as srv:
        result = run(probe_auth(srv.url, out=None, timeout=t(5)))
    row = next(r for r in result.rows if r["credential"] == "no token")
    assert row["status"] == "inconclusive" and row["ended"] == "not websocket", row
    assert "the server answered HTTP 200, not a WebSocket upgrade." in row["explanation"]
    assert result.status != "passed"


def test_a_flood_of_replies_is_counted_not_listed():
    """200,000 replies must not become 13 MB of explanation: five are named, the rest counted."""
    from netra_ws.expect import check_no_reply

    writer = TraceWriter(None)
    writer.frame("send", '{"type":"agent_started"}', t_wall_ns=1, t_mono_ns=1)
    for i in range(2_000):
        ack = '{"type":"ack","received_type":"agent_started"}'
        writer.frame("receive", ack, t_wall_ns=2 + i, t_mono_ns=2 + i)
    (check,) = check_no_reply(writer.records)
    assert check.status == "failed"
    assert "… and 1,995 more (all in the trace)" in check.explanation
    assert len(check.explanation) < 1_000


def test_a_web_page_answering_the_upgrade_is_excerpted():
    page = http_answer("200 OK", {"Content-Type": "text/html"}, b"<p>" + b"x" * 5_000 + b"</p>")
    writer = TraceWriter(None)
    with HostileServer(page) as srv, pytest.raises(ConnectFailed) as info:
        run(connect(srv.url, trace=writer).__aenter__())
    message = str(info.value)
    assert len(message) < 400 and "(5,007 chars)" in message, message
    (error,) = [r for r in writer.records if r["kind"] == "error"]
    assert len(error["body"]) == 2_000  # the trace keeps more: it is the evidence


PAINT = "connection_established\x1b[2K\r\x1b[32mPASSED\x1b[0m all probes\x07"


def test_a_server_cannot_paint_the_verdict_on_the_terminal(tmp_path):
    """The frame's type erases the FAILED line and prints a green PASSED, if printed raw."""
    import json as json_
    import os
    import subprocess
    import sys

    painted = json_.dumps({"type": PAINT, "data": {"user_id": "\x1b]0;owned\x07"}}).encode()

    def behave(sock, request):
        sock.sendall(upgrade_response(request) + frame(0x1, painted))
        sock.settimeout(0.2)
        with contextlib.suppress(OSError):
            while sock.recv(4096):
                pass

    env = {k: v for k, v in os.environ.items() if k != "NETRA_WS_TOKEN"}
    with HostileServer(behave) as srv:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "netra_ws",
                "probe",
                srv.url,
                "--out",
                str(tmp_path),
                "--quiet",
                "0.1",
                "--timeout",
                "1",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert not any(c in out for c in "\x1b\x07\r\x9b"), repr(out[:500])
    assert "FAILED       connection" in result.stdout
    assert "\\x1b[32mPASSED" in result.stdout  # shown, harmless
