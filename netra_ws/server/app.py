"""The reference server: a real WebSocket server speaking the Netra protocol.

Thin network shell around pure pieces: ``auth.py`` decides who connects, ``dialects.py``
how frames look, ``scenario.py`` what a run does. Start it in-process with
:class:`EmbeddedServer` (a background thread, port 0) or from the shell with
``python -m netra_ws serve``.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..events import CRITICAL_EVENTS, RUN_TRIGGER_TYPES, START_AGENT_TYPES
from ..tokens import mint_token, resolve_secret
from .auth import AUTH_MODES, AuthResult, authenticate, select_subprotocol
from .dialects import AgentEventContext, Dialect, error_frame, get_dialect, iso_now, status_frame
from .scenario import Scenario, run_steps

__all__ = ["DEFAULT_PATHS", "ReferenceServer", "ServerConfig"]

log = logging.getLogger("netra_ws.server")

DEFAULT_PATHS = ("/api/v1/websocket", "/ws")

# Output event names a confused client may send as input; the backend ignores them silently.
_OUTPUT_NAMES = frozenset(CRITICAL_EVENTS) | {"agent_error", "agent_update", "final_report"}
_NO_REPLY_INPUTS = frozenset({"pong", "heartbeat_ack"})


@dataclass(frozen=True)
class ServerConfig:
    """Everything that shapes the server's behaviour; every field has a safe default.

    ``auth``: ``demo`` (anyone is demo-user-001), ``relaxed`` (a bad token becomes a made-up
    ``relaxed_NNNN`` user), ``strict`` (accept, send AUTH_FAILED, close 1008) or ``reject``
    (HTTP 401 without a token, 403 with a bad one). ``heartbeat_interval``: seconds of client
    silence before the server sends a ``heartbeat`` (15 s as on staging).
    """

    host: str = "127.0.0.1"
    port: int = 0
    auth: str = "demo"
    dialect: str = "bridge"
    scenario: Scenario = field(default_factory=Scenario)
    secret: str | None = None
    heartbeat_interval: float = 15.0
    max_message_size: int = 1024 * 1024
    paths: tuple[str, ...] = DEFAULT_PATHS

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"unknown auth mode {self.auth!r}; known: {', '.join(AUTH_MODES)}")
        get_dialect(self.dialect)  # fail early on a typo


class ReferenceServer:
    """The Netra reference server on one event loop.

    Use ``async with ReferenceServer(auth="strict") as server:`` and connect to
    ``server.url``; mint tokens it accepts with ``server.token("alice")``.
    """

    def __init__(self, config: ServerConfig | None = None, **overrides: Any):
        self.config = replace(config or ServerConfig(), **overrides)
        self.dialect: Dialect = get_dialect(self.config.dialect)
        self._secret = resolve_secret(self.config.secret)
        self._server: Server | None = None
        self.connections = 0  # connections accepted so far, for tests and logs

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; ``url`` is valid afterwards."""
        self._server = await serve(
            self._handle,
            self.config.host,
            self.config.port,
            process_request=self._process_request,
            select_subprotocol=lambda _conn, offered: select_subprotocol(offered),
            max_size=self.config.max_message_size,
            # The Netra server pings nobody; heartbeats are application frames.
            ping_interval=None,
            logger=log,
        )
        log.info(
            "listening on %s (auth=%s, dialect=%s)", self.url, self.config.auth, self.dialect.name
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

    @property
    def base_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    @property
    def url(self) -> str:
        """The main endpoint, ``ws://127.0.0.1:<port>/api/v1/websocket``."""
        return self.base_url + self.config.paths[0]

    def token(self, user_id: str = "test-user", **claims: Any) -> str:
        """A token this server accepts (same secret); see :func:`netra_ws.tokens.mint_token`."""
        return mint_token(user_id, secret=self._secret, **claims)

    # -- handshake ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/ws/health":
            return _json_response(connection, http.HTTPStatus.OK, {"status": "healthy"})
        if path == "/ws/config":
            return _json_response(connection, http.HTTPStatus.OK, self._public_config())
        if path not in self.config.paths:
            return connection.respond(http.HTTPStatus.NOT_FOUND, f"no endpoint at {path}\n")
        offered = _offered_subprotocols(request.headers)
        if offered and select_subprotocol(offered) is None:
            # The backend closes with 1003 before accepting; ASGI servers turn that into 403.
            log.info("refused: no supported subprotocols among %d offered", len(offered))
            return connection.respond(http.HTTPStatus.FORBIDDEN, "No supported subprotocols\n")
        if self.config.auth == "reject":
            result = authenticate(request.headers, offered, mode="reject", secret=self._secret)
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
        return {
            "heartbeat_interval": self.config.heartbeat_interval,
            "connection_timeout": 300,
            "max_message_size": self.config.max_message_size,
            "compression": True,
            "dialect": self.dialect.name,
            "auth": self.config.auth,
        }

    # -- one connection ----------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        offered = _offered_subprotocols(ws.request.headers)
        mode = "demo" if self.dialect.force_demo_user else self.config.auth
        auth = authenticate(ws.request.headers, offered, mode=mode, secret=self._secret)
        if not auth.ok:
            log.info("auth failed after accept: %s; closing 1008", auth.reason)
            await ws.send(
                json.dumps(
                    error_frame(
                        "AUTH_FAILED",
                        "Authentication failed: no valid token. Supported forms: Authorization:"
                        " Bearer TOKEN header, or subprotocol jwt.TOKEN, jwt-auth.TOKEN,"
                        " bearer.TOKEN",
                        {"reason": auth.reason},
                    )
                )
            )
            await ws.close(1008, "Authentication failed")
            return
        self.connections += 1
        session = _Connection(self, ws, auth)
        await session.run()


class _Connection:
    """The server side of one accepted connection."""

    def __init__(self, server: ReferenceServer, ws: ServerConnection, auth: AuthResult):
        self.server = server
        self.ws = ws
        self.user_id = auth.user_id
        self.connection_id = f"main_{uuid.uuid4().hex[:12]}"
        self.runs: set[asyncio.Task[None]] = set()
        self.messages_processed = 0
        self.agent_events_sent = 0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def run(self) -> None:
        log.info("%s opened user=%s", self.connection_id, self.user_id)
        try:
            await self.send(
                status_frame(
                    "connection_established",
                    {
                        "mode": "main",
                        "user_id": self.user_id[:8] + "...",
                        "connection_id": self.connection_id,
                        "golden_path_events": list(CRITICAL_EVENTS),
                        "features": {"agent_events": True, "heartbeat": True, "compression": True},
                        "timestamp": iso_now(),
                    },
                )
            )
            await self._receive_loop()
        except ConnectionClosed:
            pass
        finally:
            for task in self.runs:
                task.cancel()
            log.info(
                "%s closed code=%s",
                self.connection_id,
                self.ws.close_code,
            )

    async def _receive_loop(self) -> None:
        interval = self.server.config.heartbeat_interval
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
        except (ValueError, UnicodeDecodeError):
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
        run_id = _str_or(fields.get("run_id"), f"run_{uuid.uuid4().hex[:16]}")
        thread_id = _str_or(fields.get("thread_id"), f"thread_{uuid.uuid4().hex[:16]}")
        ctx = AgentEventContext(
            run_id, thread_id, self.user_id, self.server.config.scenario.agent_name
        )
        task = asyncio.create_task(self._play(ctx, text))
        self.runs.add(task)
        task.add_done_callback(self.runs.discard)

    async def _play(self, ctx: AgentEventContext, text: str) -> None:
        log.info("%s run %s started", self.connection_id, ctx.run_id)
        try:
            for step in run_steps(self.server.config.scenario, text):
                await asyncio.sleep(step.delay)
                await self.send(self.server.dialect.agent_event(step.event, ctx, step.fields))
                self.agent_events_sent += 1
        except ConnectionClosed:
            log.info("%s run %s cut: connection closed", self.connection_id, ctx.run_id)
            return
        log.info("%s run %s completed", self.connection_id, ctx.run_id)


def _offered_subprotocols(headers: Headers) -> list[str]:
    return [
        entry.strip()
        for value in headers.get_all("Sec-WebSocket-Protocol")
        for entry in value.split(",")
        if entry.strip()
    ]


def _json_response(connection: ServerConnection, status: http.HTTPStatus, body: Any) -> Response:
    response = connection.respond(status, json.dumps(body) + "\n")
    response.headers["Content-Type"] = "application/json"
    return response


def _str_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default
