"""The reference server: a real WebSocket server speaking the Netra protocol.

Thin network shell around pure pieces: ``auth.py`` decides who connects, ``dialects.py``
how frames look, ``scenario.py`` what a run does, ``faults.py`` what goes wrong in it and
``replay.py`` what a recorded trace plays back. Start it in-process with
:class:`EmbeddedServer` (a background thread, port 0) or from the shell with
``python -m netra_ws serve``. Everything it does is logged on the ``netra_ws.server``
logger, every injected fault as a ``FAULT …`` line, every refused credential as
``auth failed after accept: <reason naming the claim>; …``.

Endpoints (PROTOCOL.md §1 and §8), in every dialect unless marked:

    /api/v1/websocket, /ws   main mode: connection_established, then the dialect's protocol
    /websocket, /ws/test     legacy mode: a legacy connection_established (no user_id), every
                             input answered by agent_response "Legacy processing: <type>"
    /ws/factory              staging-937: HTTP 500 "Internal Server Error" at every handshake;
                             the designed dialects serve main mode there
    /ws/isolated             staging-937: valid token → CONNECTION_ERROR + close 1011, bad
                             token → close 1008, no token → the TCP connection drops (1006);
                             the designed dialects serve main mode there
    GET /ws/health, /ws/config   JSON; /ws/config as {"websocket_config": {…}, …}
    anything else            HTTP 403, empty body (no route: the ASGI stack refuses)

Subprotocols offered, none supported: HTTP 403, empty body. Frames are compact JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import SERVER, Request, Response

from ..events import CRITICAL_EVENTS, RUN_TRIGGER_TYPES, START_AGENT_TYPES
from ..redact import RedactingFilter
from ..tokens import (
    DEFAULT_ENVIRONMENT,
    ENVIRONMENTS,
    InvalidToken,
    mint_token,
    resolve_secret,
    verify_token,
)
from .auth import (
    AUTH_FAILURES,
    AUTH_MODES,
    AuthResult,
    authenticate,
    find_token,
    select_subprotocol,
)
from .dialects import (
    AgentEventContext,
    Dialect,
    connection_error_frame,
    connection_established_data,
    error_frame,
    get_dialect,
    iso_now,
    status_frame,
    to_wire,
)
from .faults import Action, Fault, parse_fault, plan_run
from .replay import Replay, ReplayPhase, load_replay
from .scenario import Scenario, Step, run_rng, run_steps

if TYPE_CHECKING:  # the trace module loads pandas: 0.7 s of every `serve` start
    from ..trace import Trace

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_PATHS",
    "HEARTBEAT_INTERVALS",
    "LEGACY_PATHS",
    "ReferenceServer",
    "ServerConfig",
]

log = logging.getLogger("netra_ws.server")
# websockets logs through this logger too (serve(logger=log)), and at DEBUG that includes
# every handshake header: Authorization values and jwt.<token> subprotocols stop here.
log.addFilter(RedactingFilter())
# A line per connection and per run, at DEBUG: thousands of them under load cost the server
# 12 % of its CPU at 1,000 sessions. `serve --verbose` shows them (this logger at DEBUG, not
# its parent, whose DEBUG is websockets' log of every frame).
conn_log = logging.getLogger("netra_ws.server.connections")
conn_log.addFilter(RedactingFilter())  # a logger's filters do not see its children's records

DEFAULT_PATHS = ("/api/v1/websocket", "/ws")  # main mode
LEGACY_PATHS = ("/websocket", "/ws/test")
FACTORY_PATH = "/ws/factory"
ISOLATED_PATH = "/ws/isolated"
# The backend's receive timeout, i.e. client silence before a heartbeat, per environment
# (PROTOCOL.md §4 and §8).
HEARTBEAT_INTERVALS = {"development": 10.0, "test": 15.0, "staging": 15.0, "production": 30.0}
DEFAULT_HEARTBEAT_INTERVAL = HEARTBEAT_INTERVALS[DEFAULT_ENVIRONMENT]
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024  # what /ws/config advertises (PROTOCOL.md §1)
# What the backend really enforced: uvicorn's frame limit; its own 1 MiB was never checked.
_AS_RAN_MAX_MESSAGE_SIZE = 16 * 1024 * 1024
# GET /ws/config at 538297d: fixed numbers, whatever the environment really used.
_BACKEND_WS_CONFIG = {
    "heartbeat_interval": 30,
    "connection_timeout": 300,
    "max_message_size": DEFAULT_MAX_MESSAGE_SIZE,
    "compression_enabled": True,
}

# Output event names a confused client may send as input; the backend ignores them silently.
_OUTPUT_NAMES = frozenset(CRITICAL_EVENTS) | {"agent_error", "agent_update", "final_report"}
_NO_REPLY_INPUTS = frozenset({"pong", "heartbeat_ack"})


@dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes the server's behaviour; every field has a safe default.

    ``dialect``: one of :data:`DIALECTS` (``dialects.py``): ``bridge``, ``manager``,
    ``wrapped``, ``suite-contract`` are the backend as intended; ``staging-937`` is the
    backend as it ran at the #937 commit (PROTOCOL.md §8). ``auth``: ``demo`` (anyone is
    demo-user-001), ``relaxed`` (a valid token is its ``sub``, none or a bad one a made-up
    ``relaxed_NNNN`` user), ``strict`` (no or a bad token is refused after the handshake)
    or ``reject`` (HTTP 401 without a token, 403 with a bad one). Every dialect combines
    with every auth mode. ``auth_failure``: how ``strict`` refuses, ``"auth-failed"`` (flat
    AUTH_FAILED error, close 1008: the route as written) or ``"connection-error"``
    (CONNECTION_ERROR status frame, close 1011: what 538297d did); None means the dialect's
    (``connection-error`` for staging-937, else ``auth-failed``). ``environment``: the
    server's environment name (:data:`~netra_ws.tokens.ENVIRONMENTS`); a token is valid only
    when its ``env`` claim names it, and it sets the default heartbeat interval.
    ``scenario``: what each agent run does (:class:`Scenario`, or :func:`load_scenario` for
    a JSON file).

    ``heartbeat_interval`` (seconds of client silence before a ``heartbeat``),
    ``max_message_size`` (bytes; a bigger client frame gets close 1009) and ``seed`` (the
    jitter and ``p=`` faults draw from it): None means the scenario's value, else the
    environment's heartbeat (:data:`HEARTBEAT_INTERVALS`: 10 s in development), 1 MiB
    (16 MiB, uvicorn's limit, for staging-937) and 0. ``faults``: :class:`Fault` objects
    or SPEC strings (``faults.py``).
    ``replay``: a :class:`Replay`, or a trace path / :class:`Trace`, served instead of
    scripted runs, ``replay_speed`` times faster than recorded. ``reuse_port``: listen with
    ``SO_REUSEPORT`` so several processes share the port (:class:`ServerWorkers` sets it).
    """

    host: str = "127.0.0.1"
    port: int = 0
    auth: str = "demo"
    dialect: str = "bridge"
    auth_failure: str | None = None
    environment: str = DEFAULT_ENVIRONMENT
    scenario: Scenario = field(default_factory=Scenario)
    secret: str | None = None
    heartbeat_interval: float | None = None
    max_message_size: int | None = None
    seed: int | None = None
    faults: Sequence[Fault | str] = ()
    replay: Replay | str | os.PathLike[str] | Trace | None = None
    replay_speed: float = 1.0
    paths: tuple[str, ...] = DEFAULT_PATHS
    reuse_port: bool = False

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"unknown auth mode {self.auth!r}; known: {', '.join(AUTH_MODES)}")
        get_dialect(self.dialect)  # fail early on a typo
        if self.auth_failure is not None and self.auth_failure not in AUTH_FAILURES:
            raise ValueError(
                f"unknown auth_failure {self.auth_failure!r}; known: {', '.join(AUTH_FAILURES)}"
            )
        if self.environment not in ENVIRONMENTS:
            raise ValueError(
                f"unknown environment {self.environment!r}; known: {', '.join(ENVIRONMENTS)}"
            )
        if not self.replay_speed > 0:
            raise ValueError(f"replay_speed must be > 0, not {self.replay_speed}")
        # Normalize once, here, so a bad SPEC or trace fails when the config is built.
        # object.__setattr__ is how a frozen dataclass converts its own inputs.
        faults = tuple(f if isinstance(f, Fault) else parse_fault(f) for f in self.faults)
        object.__setattr__(self, "faults", faults)
        if self.replay is not None and not isinstance(self.replay, Replay):
            object.__setattr__(self, "replay", load_replay(self.replay))

    @property
    def fault_plan(self) -> tuple[Fault, ...]:
        """The faults as :class:`Fault` objects (``__post_init__`` parsed every SPEC)."""
        return tuple(f for f in self.faults if isinstance(f, Fault))


class Listening:
    """The address and the tokens of a server listening on ``config.host`` and ``port``: one
    process (:class:`ReferenceServer`) or several on one port
    (:class:`~netra_ws.server.embedded.ServerWorkers`)."""

    config: ServerConfig
    _secret: str  # the resolved signing secret

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def url(self) -> str:
        """The main endpoint, ``ws://127.0.0.1:<port>/api/v1/websocket``."""
        return self.base_url + self.config.paths[0]

    def token(self, user_id: str = "test-user", **claims: Any) -> str:
        """A token this server accepts (same secret and environment); ``claims`` are
        :func:`netra_ws.tokens.mint_token`'s options, e.g. ``expires_in=-60`` for a refused one.
        """
        claims.setdefault("env", self.config.environment)
        return mint_token(user_id, secret=self._secret, **claims)


class ReferenceServer(Listening):
    """The Netra reference server on one event loop.

    Use ``async with ReferenceServer(auth="strict") as server:`` and connect to
    ``server.url``; mint tokens it accepts with ``server.token("alice")``.
    """

    def __init__(self, config: ServerConfig | None = None, **overrides: Any):
        self.config = replace(config or ServerConfig(), **overrides)
        self.dialect: Dialect = get_dialect(self.config.dialect)
        self._secret = resolve_secret(self.config.secret)
        self._server: Server | None = None
        self.connections = 0  # connections accepted so far: the index of the latest one
        # The values in force: the config's when set, else the scenario's, else the default.
        scenario = self.config.scenario
        self.heartbeat_interval: float = _first(
            self.config.heartbeat_interval,
            scenario.heartbeat_interval,
            HEARTBEAT_INTERVALS[self.config.environment],
        )
        self.max_message_size: int = _first(
            self.config.max_message_size,
            scenario.max_message_size,
            _AS_RAN_MAX_MESSAGE_SIZE if self.dialect.as_ran else DEFAULT_MAX_MESSAGE_SIZE,
        )
        self.auth_failure: str = self.config.auth_failure or self.dialect.auth_failure
        self.seed: int = _first(self.config.seed, scenario.seed, 0)
        replay = self.config.replay
        assert replay is None or isinstance(replay, Replay)  # ServerConfig loaded it
        self.replay: Replay | None = replay.scaled(self.config.replay_speed) if replay else None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; ``url`` is valid afterwards.

        A port already in use raises ``OSError`` (errno ``EADDRINUSE``) that says so: stop
        the other server, or use port 0 for a free one.
        """
        try:
            self._server = await serve(
                self._handle,
                self.config.host,
                self.config.port,
                process_request=self._process_request,
                select_subprotocol=lambda _conn, offered: select_subprotocol(offered),
                max_size=self.max_message_size,
                # Heartbeats are application frames. Only the as-ran dialect adds uvicorn's
                # protocol pings (every 20 s): under load tests a missed pong would close
                # connections for a reason the designed protocol does not have.
                ping_interval=20 if self.dialect.as_ran else None,
                server_header="uvicorn" if self.dialect.as_ran else SERVER,
                logger=log,
                # asyncio's default backlog (100) drops SYNs when a thousand clients connect at
                # once, and each dropped SYN costs the client a one-second retransmit.
                backlog=2048,
                # serve --workers: N processes listen on one port and the kernel spreads
                # the connections over them (SO_REUSEPORT; see ServerWorkers).
                reuse_port=self.config.reuse_port or None,
            )
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise OSError(
                errno.EADDRINUSE,
                f"port {self.config.port} on {self.config.host} is already in use (another "
                "server?): stop it, or use port 0 for a free port",
            ) from None
        mode = f"replay of {self.replay.source}" if self.replay else f"dialect={self.dialect.name}"
        log.info(
            "listening on %s (auth=%s, auth_failure=%s, environment=%s, %s, seed=%d, faults=%s)",
            self.url,
            self.config.auth,
            self.auth_failure,
            self.config.environment,
            mode,
            self.seed,
            ", ".join(f.description for f in self.config.fault_plan) or "none",
        )

    async def stop(self) -> None:
        """Close every connection (1001 going away) and stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Start, then serve until cancelled (Ctrl-C from the CLI)."""
        await self.start()
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            await self.stop()

    async def __aenter__(self) -> ReferenceServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started: call start() or use 'async with'")
        return self._server.sockets[0].getsockname()[1]

    # -- handshake ---------------------------------------------------------------------

    def _mode_of(self, path: str) -> str | None:
        """Which route a path reaches: main, legacy, factory, isolated, or None (no route)."""
        if path in self.config.paths:
            return "main"
        if path in LEGACY_PATHS:
            return "legacy"
        if path == FACTORY_PATH:
            return "factory" if self.dialect.as_ran else "main"
        if path == ISOLATED_PATH:
            return "isolated" if self.dialect.as_ran else "main"
        return None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws/health":
            return _json_response(connection, http.HTTPStatus.OK, {"status": "healthy"})
        if path == "/ws/config":
            return _json_response(connection, http.HTTPStatus.OK, self._public_config())
        mode = self._mode_of(path)
        if mode is None:
            # No WebSocket route: Starlette refuses the handshake with a bare 403 (§1).
            log.info("refused: no endpoint at %s (HTTP 403)", path)
            return connection.respond(http.HTTPStatus.FORBIDDEN, "")
        if mode == "factory":
            # A TypeError in the factory route at 538297d, before any accept (§8).
            log.info("factory route crashed (HTTP 500), as it did at 538297d")
            return connection.respond(
                http.HTTPStatus.INTERNAL_SERVER_ERROR, "Internal Server Error"
            )
        offered = _offered_subprotocols(request.headers)
        if offered and select_subprotocol(offered) is None:
            # The backend closes with 1003 before accepting; ASGI turns that into a bare 403.
            log.info("refused: no supported subprotocols among %d offered (HTTP 403)", len(offered))
            return connection.respond(http.HTTPStatus.FORBIDDEN, "")
        if self.config.auth == "reject" and mode == "main":
            result = authenticate(
                request.headers,
                offered,
                mode="reject",
                secret=self._secret,
                environment=self.config.environment,
            )
            if not result.ok:
                status = (
                    http.HTTPStatus.UNAUTHORIZED
                    if result.token is None
                    else http.HTTPStatus.FORBIDDEN
                )
                log.info("rejected at handshake: HTTP %d (%s)", status, result.reason)
                return connection.respond(status, f"Authentication failed: {result.reason}\n")
        return None

    def _public_config(self) -> dict[str, Any]:
        # staging-937 reports the backend's fixed numbers, whatever it really uses (§8);
        # the designed dialects report the values in force. ``reference_server`` is ours.
        advertised = (
            _BACKEND_WS_CONFIG
            if self.dialect.as_ran
            else {
                **_BACKEND_WS_CONFIG,
                "heartbeat_interval": self.heartbeat_interval,
                "max_message_size": self.max_message_size,
            }
        )
        return {
            "websocket_config": advertised,
            "reference_server": {
                "dialect": self.dialect.name,
                "auth": self.config.auth,
                "auth_failure": self.auth_failure,
                "environment": self.config.environment,
                "heartbeat_interval": self.heartbeat_interval,
                "max_message_size": self.max_message_size,
            },
        }

    # -- one connection ----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        offered = _offered_subprotocols(ws.request.headers)
        mode = self._mode_of(ws.request.path.split("?", 1)[0])
        if mode == "legacy":
            await _LegacyConnection(self, ws).run()
            return
        if mode == "isolated":
            await self._isolated(ws, offered)
            return
        auth = authenticate(
            ws.request.headers,
            offered,
            mode=self.config.auth,
            secret=self._secret,
            environment=self.config.environment,
        )
        if not auth.ok:
            await self._refuse(ws, auth.reason)
            return
        self.connections += 1
        if self.replay is not None:
            await _ReplayConnection(self, ws, self.connections, self.replay).run()
        else:
            await _Connection(self, ws, auth, self.connections).run()

    async def _refuse(self, ws: ServerConnection, reason: str) -> None:
        """Refuse an accepted connection in the configured style: one frame, then a close."""
        if self.auth_failure == "connection-error":
            # 538297d crashed (an AttributeError) before it could report the refusal.
            log.info("auth failed after accept: %s; CONNECTION_ERROR, closing 1011", reason)
            frame, code, close_reason = connection_error_frame("main"), 1011, "main mode error"
        else:
            log.info("auth failed after accept: %s; AUTH_FAILED, closing 1008", reason)
            frame = error_frame(
                "AUTH_FAILED",
                f"Authentication failed: {reason}. Supported forms: Authorization: Bearer"
                " TOKEN header, or subprotocol jwt.TOKEN, jwt-auth.TOKEN, bearer.TOKEN",
                {"reason": reason},
            )
            code, close_reason = 1008, "Authentication failed"
        await ws.send(to_wire(frame))
        # Drop what the client sends meanwhile: more unread frames than websockets'
        # max_queue pause reading, so the client's close frame would go unread until the
        # 10 s close timeout (seen with a burst of user_messages sent before reading).
        discard = asyncio.create_task(_discard(ws))
        await ws.close(code, close_reason)
        await discard

    async def _isolated(self, ws: ServerConnection, offered: Sequence[str]) -> None:
        """/ws/isolated as it ran at 538297d (§8), whatever the auth mode: the route checks
        the token itself and fails every way it can."""
        assert ws.request is not None
        token, _ = find_token(ws.request.headers, offered)
        if token is None:
            # The route closed with a reason longer than the 125 bytes a close frame holds,
            # so no close frame ever left the server: the TCP connection just ended, and
            # clients report 1006. transport.close() (not abort) still flushes the 101.
            log.info("isolated route: no token; connection dropped without a close frame")
            ws.transport.close()
            return
        try:
            verify_token(token, secret=self._secret, environment=self.config.environment)
        except InvalidToken as exc:
            log.info("isolated route: auth failed: %s; closing 1008", exc)
            await ws.close(1008, "Authentication failed")
            return
        # The message and close reason follow the main mode's pattern; §8 records only the
        # CONNECTION_ERROR code and the 1011.
        log.info("isolated route crashed after auth; CONNECTION_ERROR, closing 1011")
        await ws.send(to_wire(connection_error_frame("isolated")))
        await ws.close(1011, "isolated mode error")


class _Connection:
    """The server side of one accepted connection: the live protocol and scripted runs."""

    def __init__(self, server: ReferenceServer, ws: ServerConnection, auth: AuthResult, index: int):
        self.server = server
        self.ws = ws
        self.index = index  # 1 for the server's first connection: what conn=N scopes match
        self.user_id = auth.user_id
        self.connection_id = _connection_id("main")
        self.runs: set[asyncio.Task[None]] = set()
        self.runs_started = 0
        self.messages_processed = 0
        self.agent_events_sent = 0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(to_wire(frame))

    async def run(self) -> None:
        conn_log.debug("%s opened user=%s conn=%d", self.connection_id, self.user_id, self.index)
        try:
            await self.send(
                status_frame(
                    "connection_established",
                    connection_established_data(self.user_id, self.connection_id),
                )
            )
            await self._receive_loop()
        except ConnectionClosed:
            pass
        finally:
            for task in self.runs:
                task.cancel()
            conn_log.debug("%s closed code=%s", self.connection_id, self.ws.close_code)

    async def _receive_loop(self) -> None:
        interval = self.server.heartbeat_interval
        while True:
            try:
                async with asyncio.timeout(interval):
                    raw = await self.ws.recv()
            except TimeoutError:
                await self.send(
                    status_frame(
                        "heartbeat",
                        {
                            "connection_id": self.connection_id,
                            "timestamp": iso_now(),
                            "stats": {
                                "messages_processed": self.messages_processed,
                                "agent_events_processed": self.agent_events_sent,
                            },
                        },
                    )
                )
                continue
            self.messages_processed += 1
            await self._route(raw)

    async def _route(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            # RecursionError: "[[[[…" nested deeper than the parser's stack, still bad JSON.
            await self.send(error_frame("JSON_PARSE_ERROR", "Invalid JSON format"))
            return
        type_ = message.get("type") if isinstance(message, dict) else None
        if not isinstance(type_, str):
            type_ = None
        fields = message.get("payload") if isinstance(message, dict) else None
        if not isinstance(fields, dict):
            fields = message if isinstance(message, dict) else {}

        if type_ in self.server.dialect.swallowed_inputs:
            log.info("%s swallowed input %r (dialect quirk)", self.connection_id, type_)
        elif type_ in _OUTPUT_NAMES or type_ in _NO_REPLY_INPUTS:
            log.info("%s ignored input %r", self.connection_id, type_)
        elif type_ in RUN_TRIGGER_TYPES:
            await self._start_run(type_, fields)
        elif type_ == "ping":
            await self.send(
                status_frame(
                    "pong",
                    {
                        "timestamp": time.time(),
                        "original_timestamp": fields.get("timestamp"),
                    },
                )
            )
        elif type_ == "heartbeat":
            await self.send(status_frame("heartbeat_ack", {"status": "healthy"}))
        else:
            await self.send(
                {
                    "type": "ack",
                    "received_type": type_ or "unknown",
                    "timestamp": time.time(),
                    "user_id": self.user_id,
                    "status": "acknowledged",
                }
            )

    async def _start_run(self, type_: str, fields: dict[str, Any]) -> None:
        if type_ in START_AGENT_TYPES:
            text = fields.get("user_request")
        else:
            text = (
                fields.get("message")
                or fields.get("content")
                or fields.get("text")
                or fields.get("user_request")
            )
        if not isinstance(text, str) or not text.strip():
            await self.send(
                error_frame(
                    "AGENT_REQUEST_ERROR",
                    f"{type_} needs non-empty text (message, content, text or user_request)",
                )
            )
            return
        self.runs_started += 1
        number = self.runs_started
        server = self.server
        script = server.config.scenario.for_run(number)
        steps = run_steps(script, text, run_rng(server.seed, self.index, number))
        actions = plan_run(
            steps,
            server.config.fault_plan,
            connection=self.index,
            run=number,
            rng=run_rng(server.seed, self.index, number, "faults"),
            size_limit=server.max_message_size,
        )
        ctx = AgentEventContext(
            _str_or(fields.get("run_id"), f"run_{uuid.uuid4().hex[:16]}"),
            _str_or(fields.get("thread_id"), f"thread_{uuid.uuid4().hex[:16]}"),
            self.user_id,
            script.agent_name,
        )
        task = asyncio.create_task(self._play(ctx, actions, number))
        self.runs.add(task)
        task.add_done_callback(self.runs.discard)

    async def _play(self, ctx: AgentEventContext, actions: list[Action], number: int) -> None:
        conn_log.debug("%s run %s started (run %d)", self.connection_id, ctx.run_id, number)

        def render(step: Step) -> str:
            self.agent_events_sent += 1
            return to_wire(self.server.dialect.agent_event(step.event, ctx, step.fields))

        def render_foreign(step: Step) -> str:
            # Another user's run, as a server that mixes up its routing would deliver it.
            other = AgentEventContext(
                f"run_{uuid.uuid4().hex[:16]}",
                f"thread_{uuid.uuid4().hex[:16]}",
                f"other-user-{uuid.uuid4().hex[:6]}",
                ctx.agent_name,
            )
            return to_wire(self.server.dialect.agent_event(step.event, other, step.fields))

        where = f"run={ctx.run_id} conn={self.connection_id}"
        try:
            finished = await _perform(
                self.ws, actions, render=render, render_foreign=render_foreign, where=where
            )
        except ConnectionClosed:
            conn_log.debug("%s run %s cut: connection closed", self.connection_id, ctx.run_id)
            return
        if finished:
            conn_log.debug("%s run %s completed", self.connection_id, ctx.run_id)


class _LegacyConnection:
    """/websocket and /ws/test: the legacy mode as it reached the wire (PROTOCOL.md §8).

    The code named its frames ``legacy_connection_established`` and so on, but the status
    envelope overwrote the names: clients see ``connection_established``, ``agent_response``
    and ``heartbeat``. No authentication, no agent runs, no user id.
    """

    def __init__(self, server: ReferenceServer, ws: ServerConnection):
        self.server = server
        self.ws = ws
        self.connection_id = _connection_id("legacy")

    async def send(self, type_: str, data: dict[str, Any]) -> None:
        await self.ws.send(to_wire(status_frame(type_, data)))

    async def run(self) -> None:
        conn_log.debug("%s opened (legacy mode)", self.connection_id)
        features = ("backward_compatibility", "simplified_auth", "basic_messaging")
        try:
            await self.send(
                "connection_established",
                {
                    "mode": "legacy",
                    "connection_id": self.connection_id,
                    "features": dict.fromkeys(features, True),
                    "timestamp": iso_now(),
                },
            )
            while True:
                try:
                    async with asyncio.timeout(self.server.heartbeat_interval):
                        raw = await self.ws.recv()
                except TimeoutError:
                    await self.send("heartbeat", {"timestamp": iso_now()})
                    continue
                await self.send(
                    "agent_response",
                    {
                        "connection_id": self.connection_id,
                        "message": f"Legacy processing: {_legacy_type(raw)}",
                        "timestamp": iso_now(),
                    },
                )
        except ConnectionClosed:
            pass
        finally:
            conn_log.debug("%s closed code=%s", self.connection_id, self.ws.close_code)


def _legacy_type(raw: str | bytes) -> str:
    # Invalid JSON is not in the §8 record; answering it like any typeless message is the
    # kit's guess, and keeps "every input gets agent_response" true.
    try:
        message = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "unknown"
    type_ = message.get("type") if isinstance(message, dict) else None
    return type_ if isinstance(type_, str) and type_ else "unknown"


class _ReplayConnection:
    """The server side of one connection in replay mode: play the trace, ignore the input."""

    def __init__(self, server: ReferenceServer, ws: ServerConnection, index: int, replay: Replay):
        self.server = server
        self.ws = ws
        self.index = index
        self.replay = replay
        self.connection_id = _connection_id("main")
        self.first_message = asyncio.get_running_loop().create_future()

    async def run(self) -> None:
        conn_log.debug("%s opened for replay of %s", self.connection_id, self.replay.source)
        player = asyncio.create_task(self._play())
        try:
            while True:
                await self.ws.recv()
                if not self.first_message.done():
                    self.first_message.set_result(asyncio.get_running_loop().time())
        except ConnectionClosed:
            pass
        finally:
            player.cancel()
            conn_log.debug("%s closed code=%s", self.connection_id, self.ws.close_code)

    async def _play(self) -> None:
        where = f"run=replay conn={self.connection_id}"
        try:
            if not await _perform(self.ws, self._actions(self.replay.greeting), where=where):
                return
            # Timed from the client's first message, even when the greeting outlasted it.
            started = await self.first_message
            actions = self._actions(self.replay.response, faults=self.server.config.fault_plan)
            await _perform(self.ws, actions, where=where, start=started)
        except ConnectionClosed:
            pass

    def _actions(self, phase: ReplayPhase, faults: Sequence[Fault] = ()) -> list[Action]:
        # The response counts as run 1 for fault scopes; the greeting is never faulted.
        actions = plan_run(
            phase.frames,
            faults,
            connection=self.index,
            run=1,
            rng=run_rng(self.server.seed, self.index, 1, "faults"),
            size_limit=self.server.max_message_size,
        )
        ended = actions and actions[-1].kind in ("close", "abort")
        if phase.close is not None and not ended:
            close = phase.close
            kind: Literal["close", "abort"] = "abort" if close.code == 1006 else "close"
            actions.append(Action(kind, close.delay, code=close.code, reason=close.reason))
        return actions


async def _perform(
    ws: ServerConnection,
    actions: list[Action],
    *,
    where: str,
    render: Callable[[Any], str | bytes] = lambda frame: frame.data,
    render_foreign: Callable[[Any], str | bytes] | None = None,
    start: float | None = None,
) -> bool:
    """Carry out ``actions`` on ``ws``; False when one of them ended the connection.

    Each action is due ``delay`` seconds after the previous one was due, counted from
    ``start`` (loop time, default now), so sleeping late once never shifts the rest.
    ``render_foreign`` renders a cross-delivered copy; without it (a replay has no other
    user to borrow from) a ``foreign`` action sends nothing.
    """
    loop = asyncio.get_running_loop()
    due = loop.time() if start is None else start
    rendered: dict[str | None, str | bytes] = {}
    for action in actions:
        due += action.delay
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        for note in action.notes:
            log.info("FAULT %s %s", note, where)
        if action.kind == "send":
            # Rendered once per step, so a duplicate is byte for byte the original.
            if action.label not in rendered:
                rendered[action.label] = render(action.item)
            await ws.send(rendered[action.label])
        elif action.kind == "foreign":
            if render_foreign is not None:
                await ws.send(render_foreign(action.item))
        elif action.kind == "raw":
            assert action.data is not None
            await ws.send(action.data)
        elif action.kind == "close":
            await ws.close(action.code or 1000, action.reason)
            return False
        elif action.kind == "abort":
            ws.transport.abort()  # no close frame: the client sees 1006
            return False
    return True


async def _discard(ws: ServerConnection) -> None:
    """Receive and drop every message until the connection is closed."""
    with contextlib.suppress(ConnectionClosed):
        while True:
            await ws.recv()


T = TypeVar("T")


def _first(*values: T | None) -> T:
    return next(value for value in values if value is not None)


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [
        entry.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for entry in value.split(",")
        if entry.strip()
    ]


def _connection_id(mode: str) -> str:
    """``main_`` / ``legacy_`` + 8 hex digits, as the backend's id generator made them."""
    return f"{mode}_{uuid.uuid4().hex[:8]}"


def _json_response(connection: ServerConnection, status: http.HTTPStatus, body: Any) -> Response:
    response = connection.respond(status, to_wire(body))
    response.headers["Content-Type"] = "application/json"
    return response


def _str_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default
