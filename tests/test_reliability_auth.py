"""Auth enforcement in the ``strict`` and ``reject`` modes: every bad credential is refused
the documented way, and no agent event ever reaches a connection that is not authenticated.

strict: the handshake completes, then one ``error_message`` AUTH_FAILED frame and close 1008.
reject: HTTP 401 at the handshake without a token, 403 with a bad one. Both: an oversize
header gets HTTP 431 (websockets refuses it before the server sees it), never a crash. Each
case is tried as the Authorization header and as a ``jwt.<base64url>`` subprotocol (where
the case has a token), and a ``user_message`` is sent anyway whenever the handshake lets
one through. Nothing of a token may reach the trace or the server's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import pytest
from conftest import FAST, run, t
from helpers.auth_cases import CASES, FORMS, MODES, SECRET, USER, case_ids
from helpers.reliability import scan_for_secrets, secret_forms

from netra_ws import connect, read_trace
from netra_ws.errors import AuthenticationFailed, HandshakeRejected, SessionClosed
from netra_ws.events import AGENT_EVENTS, TERMINAL_EVENTS
from netra_ws.server import EmbeddedServer
from netra_ws.tokens import encode_subprotocol_token, mint_token


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EmbeddedServer]]:
    started = {m: EmbeddedServer(auth=m, secret=SECRET, scenario=FAST).start() for m in MODES}
    try:
        yield started
    finally:
        for srv in started.values():
            srv.stop()


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.INFO, logger="netra_ws.server")
    return caplog


def _expected(mode: str, case: str) -> str:
    if case.startswith("oversize"):
        return "HTTP 431"
    if mode == "strict":
        return "AUTH_FAILED + close 1008"
    return "HTTP 401" if case in ("no token", "token in the query string") else "HTTP 403"


async def _attempt(url: str, path, **options) -> str:
    """Connect, send user_message whatever happens, and say how the server refused."""
    try:
        session = await connect(url, trace=path, open_timeout=t(10), **options)
    except HandshakeRejected as exc:
        return f"HTTP {exc.status}"
    async with session:
        # Before reading anything: the AUTH_FAILED frame may already be on its way. If the
        # connection is already closed (1008), collect() below reports the refusal.
        with contextlib.suppress(SessionClosed, AuthenticationFailed):
            await session.send_user_message("let me in anyway")
        try:
            result = await session.collect(until=TERMINAL_EVENTS, timeout=t(5))
            return f"accepted: {result.names}"
        except AuthenticationFailed as exc:
            assert exc.frame is not None and exc.frame.record["error_code"] == "AUTH_FAILED"
            return f"AUTH_FAILED + close {exc.close_code}"


@pytest.mark.parametrize(("mode", "case", "form"), case_ids())
def test_a_bad_credential_is_refused_the_documented_way(
    servers, server_log, tmp_path, mode, case, form
):
    srv = servers[mode]
    path = tmp_path / "attempt.jsonl"
    token = None
    if case == "token in the query string":
        token = mint_token(USER, secret=SECRET)  # valid, but the protocol has no query token
        outcome = run(_attempt(f"{srv.url}?token={token}&jwt={token}", path))
    else:
        token = CASES[case]()
        if form == "none":
            outcome = run(_attempt(srv.url, path))
        elif form == "header":
            outcome = run(_attempt(srv.url, path, headers={"Authorization": f"Bearer {token}"}))
        else:
            subprotocols = ["jwt-auth", encode_subprotocol_token(token)]
            outcome = run(_attempt(srv.url, path, subprotocols=subprotocols))
    assert outcome == _expected(mode, case)

    # No agent event ever reached the connection, and the trace says how it was refused.
    trace = read_trace(path)
    received = [f for f in trace.frames if f["dir"] == "receive"]
    assert not any(f.get("event") in AGENT_EVENTS for f in received)
    if outcome.startswith("AUTH_FAILED"):
        assert [(f["event"], f["error_code"]) for f in received] == [
            ("error_message", "AUTH_FAILED")
        ]
        close = next(r for r in trace.records if r["kind"] == "close")
        assert (close["code"], close["reason"]) == (1008, "Authentication failed")
    else:
        assert received == []
        error = next(r for r in trace.records if r["kind"] == "error")
        assert error["http_status"] == int(outcome.split()[1])

    # Nothing of the token in the trace (query string included) or in the server's log.
    assert "?" not in trace.meta["target"]
    if token is not None and len(token) >= 10 and not case.startswith("oversize"):
        _, leaks = scan_for_secrets(
            [path], {"server log": server_log.text}, secret_forms(token, SECRET)
        )
        assert leaks == []


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", FORMS)
def test_a_valid_token_still_gets_agent_events_after_all_that(servers, tmp_path, mode, form):
    # The control: the same servers accept a good token in each form, so the refusals
    # above are refusals of those credentials, not of everything.
    srv = servers[mode]
    token = srv.token(USER)

    async def attempt():
        async with connect(srv.url, token=token, auth=form, trace=tmp_path / "ok.jsonl") as s:
            first = await s.next(timeout=t(5))
            await s.send_user_message("hello")
            result = await s.collect(until=TERMINAL_EVENTS, timeout=t(10))
            return first, result

    first, result = run(attempt())
    assert first.name == "connection_established"
    assert first.event.payload["user_id"] == USER[:8] + "..."
    assert result.reason == "matched" and result.names[-1] == "agent_completed"
    assert {r.event.user_id for r in result} == {USER}


def test_a_connection_never_authenticates_later_in_strict_mode(servers, tmp_path):
    # Refused connections are closed at once; a user_message sent in the same breath, or a
    # burst of them, starts nothing.
    srv = servers["strict"]
    path = tmp_path / "burst.jsonl"

    async def attempt():
        session = await connect(srv.url, trace=path)
        async with session:
            for i in range(20):
                try:
                    await session.send_user_message(f"burst {i}", user_id=USER)
                except (SessionClosed, AuthenticationFailed):
                    break
            started = asyncio.get_running_loop().time()
            async with asyncio.timeout(t(5)):
                while not session.closed:
                    await asyncio.sleep(0.01)
            return session.close_code, asyncio.get_running_loop().time() - started

    code, waited = run(attempt())
    # At once: more unread frames than the server's queue once stalled the close for 10 s.
    assert code == 1008 and waited < t(1)
    received = [f for f in read_trace(path).frames if f["dir"] == "receive"]
    assert [f["error_code"] for f in received] == ["AUTH_FAILED"]
