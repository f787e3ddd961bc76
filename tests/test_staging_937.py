"""Every row of PROTOCOL.md §8 against the ``staging-937`` dialect, with a plain client.

§8 is what the backend's own code at the #937 commit did when it was run. Each row (and each
auth mode where the row depends on it) is one parametrized case below; a plain
``websockets`` client drives a real embedded server on 127.0.0.1 port 0, not the kit's
probes, so a bug shared by the kit's client and server cannot hide here.

Speed: every scenario runs concurrently once per module (``observed``); the cases then read
their own outcome. A "no reply" case fails if ANY frame arrives in its quiet window, and the
window is shorter than the heartbeat interval, so a heartbeat cannot be mistaken for
silence or hide a reply.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
import pytest
from conftest import FAST, run, t
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from netra_ws.events import CRITICAL_EVENTS, RUN_TRIGGER_TYPES
from netra_ws.server import EmbeddedServer, ReferenceServer
from netra_ws.tokens import AUDIENCE, ISSUER, mint_token

SECRET = "staging-937-table-secret-0a1b2c3d4e5f"
USER = "sub-of-a-real-token-42"
HEARTBEAT = 1.0  # seconds of client silence before a heartbeat, in these tests
QUIET = t(0.4)  # a reply that must not come: how long to wait for it
AUTH_MODES = ("demo", "relaxed", "strict")

# §3: every input type the backend knew, all swallowed at 538297d.
INPUT_TYPES = (*RUN_TRIGGER_TYPES, "ping", "heartbeat", "pong", "heartbeat_ack", "error")
OUTPUT_NAMES = (*CRITICAL_EVENTS, "agent_error")
STATUS_KEYS = {"type", "data", "timestamp", "server_id", "correlation_id"}
CONNECTION_ERROR = {
    "error_code": "CONNECTION_ERROR",
    "error_message": "Connection error in main mode",
    "details": {"error_type": "AttributeError", "mode": "main"},
}


def _backend_token(**overrides: Any) -> str:
    """A token built like the auth service builds it, with PyJWT alone (not mint_token)."""
    now = int(time.time())
    claims = {
        "sub": USER,
        "iat": now,
        "exp": now + 600,
        "token_type": "access",
        "type": "access",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": "jti-0001",
        "env": "development",
        "svc_id": "netra-auth-service",
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, "HS256")


def _alg_none() -> str:
    claims = jwt.decode(_backend_token(), options={"verify_signature": False})
    return jwt.encode(claims, None, algorithm="none")


# Credentials the strict server must refuse, and how each is made.
REFUSED = {
    "no token": lambda: None,
    "expired": lambda: _backend_token(exp=int(time.time()) - 60),
    "bad signature": lambda: mint_token(USER, secret="another-services-secret-0123456789"),
    "alg none": _alg_none,
    "only type (the backend's e2e helper)": lambda: _backend_token(token_type=None),
    "wrong audience": lambda: _backend_token(aud="someone-else"),
    "wrong environment": lambda: _backend_token(env="production"),
}


@dataclass
class Seen:
    """What one plain-client scenario observed."""

    frames: list[str] = field(default_factory=list)  # raw text, as received
    later: list[str] = field(default_factory=list)  # frames after the scenario's input
    http_status: int | None = None
    http_body: bytes | None = None
    subprotocol: str | None = None
    server_header: str | None = None
    close_code: int | None = None
    close_reason: str | None = None

    def json(self, which: str = "frames") -> list[dict[str, Any]]:
        return [json.loads(f) for f in getattr(self, which)]


async def _read(ws: Any, into: list[str], window: float) -> None:
    """Append every frame that arrives within ``window`` seconds (until a close)."""
    with contextlib.suppress(TimeoutError, ConnectionClosed):
        async with asyncio.timeout(window):
            while True:
                into.append(await ws.recv())


async def _session(
    url: str,
    *,
    token: str | None = None,
    subprotocols: list[str] | None = None,
    sends: tuple[str, ...] = (),
    window: float = QUIET,
    first: bool = True,
) -> Seen:
    """Connect, read the first frame, send ``sends``, record what comes in ``window``."""
    seen = Seen()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        ws = await connect(
            url, additional_headers=headers, subprotocols=subprotocols, open_timeout=t(10)
        )
    except InvalidStatus as exc:
        seen.http_status, seen.http_body = exc.response.status_code, exc.response.body
        return seen
    async with ws:
        seen.subprotocol = ws.subprotocol
        assert ws.response is not None
        seen.server_header = ws.response.headers.get("Server")
        if first:
            with contextlib.suppress(ConnectionClosed):
                seen.frames.append(await asyncio.wait_for(ws.recv(), t(5)))
        for text in sends:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(text)
        await _read(ws, seen.later, window)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.wait_closed(), QUIET if ws.close_code is None else t(5))
        seen.close_code, seen.close_reason = ws.close_code, ws.close_reason
    return seen


def _inputs(type_: str, shape: str) -> str:
    """One §3 input in the flat or the payload shape, the text fields real clients send."""
    fields = {"message": "analyze my costs", "user_request": "analyze", "timestamp": 1}
    if shape == "flat":
        return json.dumps({"type": type_, **fields, "user_id": "someone"})
    return json.dumps({"type": type_, "payload": {**fields, "thread_id": "thread-1"}})


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EmbeddedServer]]:
    started = {
        mode: EmbeddedServer(
            dialect="staging-937",
            auth=mode,
            secret=SECRET,
            heartbeat_interval=HEARTBEAT,
            scenario=FAST,
        ).start()
        for mode in AUTH_MODES
    }
    try:
        yield started
    finally:
        for srv in started.values():
            srv.stop()


def _scenarios(
    srv: dict[str, EmbeddedServer],
) -> dict[tuple[Any, ...], Callable[[], Awaitable[Seen]]]:
    """Every scenario of the table, keyed by the case that reads it."""
    valid = _backend_token()
    token_for = {"demo": valid, "relaxed": valid, "strict": valid}
    cases: dict[tuple[Any, ...], Callable[[], Awaitable[Seen]]] = {}

    def add(key: tuple[Any, ...], url: str, **options: Any) -> None:
        cases[key] = lambda: _session(url, **options)

    for mode in AUTH_MODES:
        url = srv[mode].url
        add(("connect", mode, "token"), url, token=token_for[mode])
        if mode != "strict":
            add(("connect", mode, "none"), url)
            add(("connect", mode, "bad"), url, token=_backend_token(aud="x"))
        for type_ in INPUT_TYPES:
            for shape in ("flat", "payload"):
                sends = (_inputs(type_, shape),)
                add(("input", mode, type_, shape), url, token=token_for[mode], sends=sends)
        for variant, sent in {
            "unknown type": {"type": "no_such_type"},
            "no type": {"x": 1},
        }.items():
            add(("ack", mode, variant), url, token=token_for[mode], sends=(json.dumps(sent),))
        add(
            ("invalid json", mode),
            url,
            token=token_for[mode],
            sends=("{not json", json.dumps({"type": "still_open"})),
        )
        add(("idle", mode), url, token=token_for[mode], window=HEARTBEAT + t(1))
    for name in OUTPUT_NAMES:
        sends = (json.dumps({"type": name, "payload": {}}),)
        add(("output name", name), srv["demo"].url, sends=sends)
    strict = srv["strict"].url
    for case, make in REFUSED.items():
        add(
            ("strict refused", case), strict, token=make(), sends=(_inputs("user_message", "flat"),)
        )
    encoded = "jwt." + base64.urlsafe_b64encode(valid.encode()).decode().rstrip("=")
    forms = {
        "header": {"token": valid},
        "jwt.<base64url> subprotocol": {"subprotocols": ["jwt-auth", encoded]},
        "header + bare jwt-auth": {"token": valid, "subprotocols": ["jwt-auth"]},
    }
    user_message = _inputs("user_message", "payload")
    for form, options in forms.items():
        add(("strict valid", form), strict, sends=(user_message,), **options)
    big = json.dumps({"type": "big", "pad": "x" * (2 * 1024 * 1024)})
    add(("big frame", "2 MiB"), srv["demo"].url, sends=(big,))
    add(("subprotocols", "none supported"), srv["demo"].url, subprotocols=["graphql-ws"])
    base = srv["demo"].base_url
    for path in ("/ws/chat", "/api/v1/ws", "/"):
        add(("unknown path", path), base + path)
    add(("/ws", "demo"), base + "/ws", sends=(user_message, json.dumps({"type": "x"})))
    for path in ("/websocket", "/ws/test"):
        legacy = ("user_message", "ping", "agent_started", None)
        sends = tuple(json.dumps({"type": ty} if ty else {"x": 1}) for ty in legacy)
        add(("legacy", path), base + path, sends=sends)
        add(("legacy idle", path), base + path, window=HEARTBEAT + t(1))
    for mode in AUTH_MODES:
        add(("factory", mode), srv[mode].base_url + "/ws/factory", token=valid)
    isolated = srv["strict"].base_url + "/ws/isolated"
    add(("isolated", "valid token"), isolated, token=valid, first=False)
    add(("isolated", "bad token"), isolated, token=_backend_token(aud="x"), first=False)
    add(("isolated", "no token"), isolated, first=False)
    return cases


@pytest.fixture(scope="module")
def observed(servers: dict[str, EmbeddedServer]) -> dict[tuple[Any, ...], Seen]:
    """Run every scenario at once (the whole table takes about one heartbeat interval)."""
    cases = _scenarios(servers)

    async def everything() -> dict[tuple[Any, ...], Seen]:
        results = await asyncio.gather(*(make() for make in cases.values()))
        return dict(zip(cases, results, strict=True))

    return run(everything())


def _iso(value: Any) -> bool:
    return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None


def _is_status(frame: dict[str, Any], type_: str) -> bool:
    return (
        set(frame) == STATUS_KEYS
        and frame["type"] == type_
        and isinstance(frame["timestamp"], float)
        and frame["server_id"] is None
        and frame["correlation_id"] is None
    )


def _established(seen: Seen, user: str) -> None:
    """Row 1: the first frame, exactly as the main route wrote it."""
    raw = seen.frames[0]
    assert ", " not in raw and '": ' not in raw, raw  # compact JSON (transport row)
    frame = json.loads(raw)
    assert _is_status(frame, "connection_established"), frame
    data = frame["data"]
    assert set(data) == {
        "mode",
        "user_id",
        "connection_id",
        "golden_path_events",
        "features",
        "timestamp",
    }
    assert data["mode"] == "main" and data["user_id"] == user[:8] + "..."
    assert re.fullmatch(r"main_[0-9a-f]{8}", data["connection_id"]), data["connection_id"]
    assert data["golden_path_events"] == list(CRITICAL_EVENTS)
    assert data["features"] == {
        "full_business_logic": True,
        "golden_path_integration": True,
        "cloud_run_optimized": True,
        "emergency_fallback": True,
        "agent_orchestration": True,
    }
    assert _iso(data["timestamp"])
    assert seen.server_header == "uvicorn"  # transport row


# --- row: connect, accepted ------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "credential", "user"),
    [
        ("demo", "none", "demo-user-001"),
        ("demo", "token", "demo-user-001"),  # DEMO_MODE: even a valid token is the demo user
        ("demo", "bad", "demo-user-001"),
        ("relaxed", "none", "relaxed_"),
        ("relaxed", "bad", "relaxed_"),
        ("relaxed", "token", USER),
        ("strict", "token", USER),
    ],
)
def test_connect_accepted_first_frame_is_connection_established(observed, mode, credential, user):
    seen = observed["connect", mode, credential]
    assert seen.http_status is None and seen.subprotocol is None
    _established(seen, user)
    assert seen.later == [] and seen.close_code is None


# --- row: output event names sent as input --------------------------------------------


@pytest.mark.parametrize("name", OUTPUT_NAMES)
def test_output_event_names_sent_as_input_get_no_reply(observed, name):
    seen = observed["output name", name]
    assert json.loads(seen.frames[0])["type"] == "connection_established"
    assert seen.later == [], f"{name} sent as input was answered: {seen.later}"


# --- row: every input type of §3, flat or payload, any auth level ----------------------


@pytest.mark.parametrize("shape", ["flat", "payload"])
@pytest.mark.parametrize("type_", INPUT_TYPES)
@pytest.mark.parametrize("mode", AUTH_MODES)
def test_every_input_type_gets_no_reply_and_no_agent_events(observed, mode, type_, shape):
    # heartbeat gets no heartbeat_ack, ping no pong, error no ack: nothing at all.
    seen = observed["input", mode, type_, shape]
    assert json.loads(seen.frames[0])["type"] == "connection_established"
    assert seen.later == [], f"{type_} ({shape}, auth {mode}) was answered: {seen.later}"
    assert seen.close_code is None


# --- row: unknown type / no type -------------------------------------------------------


@pytest.mark.parametrize("variant", ["unknown type", "no type"])
@pytest.mark.parametrize("mode", AUTH_MODES)
def test_unknown_or_missing_type_gets_a_flat_ack(observed, mode, variant):
    (ack,) = observed["ack", mode, variant].json("later")
    assert set(ack) == {"type", "received_type", "timestamp", "user_id", "status"}
    assert ack["type"] == "ack" and ack["status"] == "acknowledged"
    assert ack["received_type"] == ("no_such_type" if variant == "unknown type" else "unknown")
    assert isinstance(ack["timestamp"], float)
    expected_user = {"demo": "demo-user-001", "relaxed": USER, "strict": USER}[mode]
    assert ack["user_id"] == expected_user


# --- row: invalid JSON -----------------------------------------------------------------


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_invalid_json_gets_a_flat_parse_error_and_the_connection_stays_open(observed, mode):
    seen = observed["invalid json", mode]
    error, ack = seen.json("later")
    assert set(error) == {
        "type",
        "error_code",
        "error_message",
        "details",
        "timestamp",
        "recovery_suggestions",
    }
    assert (error["type"], error["error_code"]) == ("error_message", "JSON_PARSE_ERROR")
    assert error["error_message"] == "Invalid JSON format"
    assert isinstance(error["timestamp"], float)
    # Still open: the next message is acknowledged, and nobody closed.
    assert ack["received_type"] == "still_open" and seen.close_code is None


# --- row: idle client ------------------------------------------------------------------


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_an_idle_client_gets_heartbeats(observed, mode):
    frames = observed["idle", mode].json("later")
    assert frames, "no heartbeat while idle"
    assert all(_is_status(f, "heartbeat") for f in frames), frames
    assert set(frames[0]["data"]) == {"connection_id", "timestamp", "stats"}
    assert frames[0]["data"]["stats"] == {"messages_processed": 0, "agent_events_processed": 0}


@pytest.mark.parametrize(
    ("environment", "seconds"),
    [("development", 10), ("test", 15), ("staging", 15), ("production", 30)],
)
def test_the_heartbeat_interval_defaults_to_the_environments(environment, seconds):
    server = ReferenceServer(dialect="staging-937", environment=environment)
    assert server.heartbeat_interval == seconds


# --- rows: strict refused / strict accepted --------------------------------------------


@pytest.mark.parametrize("case", REFUSED)
def test_strict_refusal_is_101_then_connection_error_then_1011(observed, case):
    seen = observed["strict refused", case]
    assert seen.http_status is None  # HTTP 101: the handshake succeeded
    (frame,) = seen.json()
    assert _is_status(frame, "error_message"), frame
    data = dict(frame["data"])
    assert _iso(data.pop("timestamp"))
    assert data == CONNECTION_ERROR
    assert seen.later == []  # no AUTH_FAILED, nothing after, not even for a user_message
    assert (seen.close_code, seen.close_reason) == (1011, "main mode error")


@pytest.mark.parametrize(
    ("form", "subprotocol"),
    [
        ("header", None),
        ("jwt.<base64url> subprotocol", "encoded"),
        ("header + bare jwt-auth", "jwt-auth"),
    ],
)
def test_strict_accepts_a_valid_token_then_is_silent(observed, form, subprotocol):
    seen = observed["strict valid", form]
    _established(seen, USER)
    if subprotocol == "encoded":
        assert seen.subprotocol is not None and seen.subprotocol.startswith("jwt.")
        decoded = base64.urlsafe_b64decode(seen.subprotocol[4:] + "==").decode()
        assert jwt.decode(decoded, options={"verify_signature": False})["sub"] == USER
    else:
        assert seen.subprotocol == subprotocol
    assert seen.later == []  # a user_message with a valid, accepted token: nothing
    assert seen.close_code is None


# --- rows: handshake refusals ----------------------------------------------------------


def test_offered_subprotocols_none_supported_is_a_bare_403(observed):
    seen = observed["subprotocols", "none supported"]
    assert (seen.http_status, seen.http_body) == (403, b"")


@pytest.mark.parametrize("path", ["/ws/chat", "/api/v1/ws", "/"])
def test_an_unknown_path_is_a_bare_403(observed, path):
    seen = observed["unknown path", path]
    assert (seen.http_status, seen.http_body) == (403, b"")


# --- rows: /ws, legacy, factory, isolated ----------------------------------------------


def test_ws_is_the_same_main_mode(observed):
    seen = observed["/ws", "demo"]
    _established(seen, "demo-user-001")
    (ack,) = seen.json("later")  # the user_message: nothing; the unknown type: an ack
    assert (ack["type"], ack["received_type"]) == ("ack", "x")


@pytest.mark.parametrize("path", ["/websocket", "/ws/test"])
def test_legacy_mode_answers_every_input_with_agent_response(observed, path):
    seen = observed["legacy", path]
    (first,) = seen.json()
    assert _is_status(first, "connection_established"), first
    data = first["data"]
    assert set(data) == {"mode", "connection_id", "features", "timestamp"}  # no user_id
    assert data["mode"] == "legacy" and _iso(data["timestamp"])
    assert re.fullmatch(r"legacy_[0-9a-f]{8}", data["connection_id"])
    assert data["features"] == {
        "backward_compatibility": True,
        "simplified_auth": True,
        "basic_messaging": True,
    }
    replies = seen.json("later")
    assert all(_is_status(r, "agent_response") for r in replies), replies
    assert [r["data"]["message"] for r in replies] == [
        "Legacy processing: user_message",
        "Legacy processing: ping",
        "Legacy processing: agent_started",
        "Legacy processing: unknown",
    ]
    assert {r["data"]["connection_id"] for r in replies} == {data["connection_id"]}
    assert all(set(r["data"]) == {"connection_id", "message", "timestamp"} for r in replies)


@pytest.mark.parametrize("path", ["/websocket", "/ws/test"])
def test_legacy_idle_heartbeat_carries_only_a_timestamp(observed, path):
    frames = observed["legacy idle", path].json("later")
    assert frames and all(_is_status(f, "heartbeat") for f in frames), frames
    assert set(frames[0]["data"]) == {"timestamp"} and _iso(frames[0]["data"]["timestamp"])


@pytest.mark.parametrize("mode", AUTH_MODES)
def test_factory_is_http_500_at_every_handshake(observed, mode):
    seen = observed["factory", mode]
    assert (seen.http_status, seen.http_body) == (500, b"Internal Server Error")


def test_isolated_with_a_valid_token_crashes_with_1011(observed):
    seen = observed["isolated", "valid token"]
    (frame,) = seen.json("later")
    assert frame["type"] == "error_message"
    assert frame["data"]["error_code"] == "CONNECTION_ERROR"
    assert seen.close_code == 1011


def test_isolated_with_a_bad_token_closes_1008_without_a_frame(observed):
    seen = observed["isolated", "bad token"]
    assert seen.http_status is None and seen.later == [] and seen.close_code == 1008


def test_isolated_without_a_token_ends_abnormally(observed):
    # The route's close reason was over 125 bytes: no close frame could be sent.
    seen = observed["isolated", "no token"]
    assert seen.http_status is None and seen.later == [] and seen.close_code == 1006


# --- rows: /ws/config, transport -------------------------------------------------------


def test_ws_config_reports_the_backends_fixed_numbers(servers):
    url = servers["demo"].base_url.replace("ws://", "http://") + "/ws/config"
    with urllib.request.urlopen(url, timeout=t(5)) as response:
        body = response.read().decode()
    assert ", " not in body  # compact
    assert json.loads(body)["websocket_config"] == {
        "heartbeat_interval": 30,  # what it reports; the dev receive timeout is 10 s
        "connection_timeout": 300,
        "max_message_size": 1048576,
        "compression_enabled": True,
    }


def test_frames_over_the_advertised_1_mib_are_read(observed):
    # /ws/config says 1 MiB, but only uvicorn's 16 MiB frame limit was enforced.
    (ack,) = observed["big frame", "2 MiB"].json("later")
    assert ack["received_type"] == "big"
