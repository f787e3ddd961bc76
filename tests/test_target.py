"""resolve_target: the one answer to "which target?" — real servers on 127.0.0.1 port 0."""

from __future__ import annotations

import logging

import pytest
from conftest import FAST, run, t

from netra_ws import read_trace
from netra_ws.capture import capture_runs
from netra_ws.client import connect
from netra_ws.errors import AuthenticationFailed, ConnectRefused
from netra_ws.redact import redact_text
from netra_ws.server import EmbeddedServer
from netra_ws.target import DEFAULT_USER, Target, open_target, resolve_target
from netra_ws.tokens import InvalidToken, verify_token

SECRET = "a-signing-secret-for-the-target-tests-0123"


def _welcome(target: Target, **options) -> dict:
    """Connect with the target's credentials; the connection_established payload."""

    async def go():
        async with target.connect(**options) as session:
            return (await session.next(timeout=t(5))).event.payload

    return run(go())


def _refused(url: str) -> bool:
    async def go():
        try:
            async with connect(url, open_timeout=t(2)):
                return False
        except ConnectRefused:
            return True

    return run(go())


def test_none_starts_an_embedded_server_it_owns_and_stops():
    target = resolve_target(None, scenario=FAST)
    with target:
        assert target.embedded and target.owned and target.where is target.server
        assert target.server.config.auth == "strict"  # like production, unless asked
        # The minted token is accepted by that strict server, as the default user.
        assert _welcome(target)["user_id"] == DEFAULT_USER[:8] + "..."
        assert "minted" in target.token_source and target.token not in repr(target)
    assert _refused(target.url)
    target.stop()  # idempotent


def test_a_given_server_or_target_is_borrowed_and_never_stopped():
    with EmbeddedServer(auth="strict", scenario=FAST) as server:
        target = resolve_target(server, user_id="alice-for-test")
        assert target.server is server and not target.owned
        target.stop()
        assert _welcome(target)["user_id"] == "alice-fo..."  # still serving, token minted

    with resolve_target(None, scenario=FAST) as owner:
        view = resolve_target(owner, auth="subprotocol")
        assert not view.owned and view.server is owner.server and view.token == owner.token
        assert _credentials(view) == (owner.token, "subprotocol")
        view.stop()
        assert _welcome(owner)["user_id"] == DEFAULT_USER[:8] + "..."


def test_a_url_takes_its_token_from_the_environment_registered_as_a_secret(monkeypatch):
    monkeypatch.setenv("TARGET_TEST_TOKEN", "opaque-credential-for-the-target-test")
    target = resolve_target(
        "wss://user:pw@staging.example/api/v1/websocket?x=1", token_env="TARGET_TEST_TOKEN"
    )
    assert not target.embedded and not target.owned and target.where == target.url
    assert target.token == "opaque-credential-for-the-target-test"
    assert _credentials(target) == (target.token, "header")
    assert "$TARGET_TEST_TOKEN" in target.token_source
    for shown in (repr(target), target.label, target.token_source):
        assert "opaque-credential" not in shown
    assert "pw@" not in target.label and "x=1" not in target.label and target.labels == {}
    # Registered: even a token of no known shape is redacted everywhere from now on.
    assert "opaque-credential" not in redact_text("sent opaque-credential-for-the-target-test")
    # A token given in code wins over the environment.
    given = resolve_target(target.url, token="given-credential-xyz", token_env="TARGET_TEST_TOKEN")
    assert given.token == "given-credential-xyz" and "given" in given.token_source


def test_an_environment_token_reaches_the_embedded_server_except_from_a_notebook(monkeypatch):
    with EmbeddedServer(auth="strict") as server:
        monkeypatch.setenv("TARGET_TEST_TOKEN", server.token("heidi-for-test"))
        # The CLI and the contract suite: $NETRA_WS_TOKEN is sent to whatever the target is.
        borrowed = resolve_target(server, token_env="TARGET_TEST_TOKEN")
        assert _welcome(borrowed)["user_id"] == "heidi-fo..."
    # A notebook's TOKEN_ENV is for a real URL: its embedded server mints its own token.
    with open_target(None, token_env="TARGET_TEST_TOKEN") as notebook:
        assert "minted" in notebook.token_source
        assert _welcome(notebook)["user_id"] == "notebook..."


def test_a_url_without_a_token_sends_no_auth_form(tmp_path, monkeypatch):
    monkeypatch.delenv("TARGET_TEST_TOKEN", raising=False)
    with EmbeddedServer(auth="demo") as server:  # demo: accepts a connection with no token
        target = resolve_target(server.url, token_env="TARGET_TEST_TOKEN", auth="both")
        assert target.token is None and "not set" in target.token_source
        assert _credentials(target) == (None, "none")
        assert target.connect_options(auth="header")["auth"] == "none"
        _welcome(target, trace=tmp_path / "bare.jsonl")
    opened = next(r for r in read_trace(tmp_path / "bare.jsonl").records if r["kind"] == "open")
    assert opened["auth"] == "none" and "Authorization" not in opened["request_header_names"]
    assert not any(s.startswith("jwt") for s in opened["offered_subprotocols"])


def test_a_bad_auth_form_is_a_clear_error_before_anything_starts():
    attached = list(logging.getLogger("netra_ws.server").handlers)
    for target in (None, "ws://127.0.0.1:1/ws"):
        with pytest.raises(ValueError, match=r"auth must be one of .*'header'.*, not 'cookie'"):
            resolve_target(target, auth="cookie")
    # No server was started for None: its fault log would still be attached.
    assert logging.getLogger("netra_ws.server").handlers == attached
    url_target = resolve_target("ws://127.0.0.1:1/ws", token="a-token-for-the-test")
    with pytest.raises(ValueError, match="auth must be one of"):
        url_target.connect_options(auth="Bearer")
    with pytest.raises(TypeError, match="target must be a URL"):
        resolve_target(8765)  # type: ignore[arg-type]


def test_labels_name_the_embedded_server_for_people_and_for_traces():
    with resolve_target(None, dialect="staging-937", server_auth="demo") as target:
        assert target.label == f"embedded staging-937 server, auth demo ({target.url})"
        assert target.labels == {"dialect": "staging-937", "server_auth": "demo"}
        assert repr(target).startswith("<Target embedded staging-937 server, auth demo")
    assert resolve_target("ws://h:1/ws").label == "ws://h:1/ws"


def test_an_expired_token_is_refused_by_a_strict_embedded_server():
    with resolve_target(None, scenario=FAST, user_id="eve-for-test") as target:
        expired = target.expired_token()
        with pytest.raises(InvalidToken, match="expired"):
            verify_token(expired)
        assert target.token_for("frank-for-test") not in (None, target.token)

        async def go():
            async with connect(target.url, token=expired) as session:
                await session.next(timeout=t(5))

        with pytest.raises(AuthenticationFailed):
            run(go())
    # A URL: minted with the signing secret when given, else there is no way to mint.
    remote = resolve_target("ws://127.0.0.1:1/ws", user_id="grace-for-test")
    assert remote.expired_token() is None
    with pytest.raises(InvalidToken, match="expired"):
        verify_token(remote.expired_token(SECRET), secret=SECRET)
    assert verify_token(remote.token_for(secret=SECRET), secret=SECRET)["sub"] == "grace-for-test"


def test_capture_runs_uses_a_target_and_leaves_its_server_running(tmp_path):
    with resolve_target(None, scenario=FAST, user_id="capture-user") as target:
        df = capture_runs(target, 2, out_dir=tmp_path, name="t", timeout=t(10), progress=False)
        assert df.attrs["failures"] == {}
        assert (df["event"] == "agent_completed").sum() == 2
        welcome = df[df["event"] == "connection_established"]
        assert set(welcome["user_id"]) == {"capture-..."}  # the target's token, not demo
        assert _welcome(target)["user_id"] == "capture-..."  # not stopped by capture_runs


def test_fault_logs_of_overlapping_targets_end_in_any_order():
    logger = logging.getLogger("netra_ws.server")
    before = logger.level
    stall = {"scenario": FAST, "faults": ["stall:agent_thinking:0.01"]}
    first = resolve_target(None, **stall)
    second = resolve_target(None, **stall)
    first.stop()  # not the last one started: the second must still see its faults

    async def one_run():
        async with second.connect() as session:
            await session.next(timeout=t(5))
            await session.send_user_message("hello")
            await session.collect(until="agent_completed", timeout=t(5))

    run(one_run())
    second.stop()
    assert second.faults()["kind"].tolist() == ["stall"]
    assert logger.level == before


def _credentials(target):
    """What ``connect_options`` says about credentials (it also carries the trust settings)."""
    options = target.connect_options()
    return options["token"], options["auth"]
