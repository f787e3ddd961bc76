"""The reference server on a background thread, for notebooks, scripts and tests."""

from __future__ import annotations

from typing import Any

from .._loop import LoopThread
from .app import ReferenceServer, ServerConfig

__all__ = ["EmbeddedServer"]


class EmbeddedServer:
    """Start a :class:`ReferenceServer` on 127.0.0.1, port 0, on its own thread and loop.

    Use it as a context manager::

        with EmbeddedServer(auth="strict") as server:
            token = server.token("alice")
            ...connect to server.url...

    Keyword arguments are :class:`ServerConfig` fields, for example
    ``EmbeddedServer(scenario=load_scenario("runs.json"), faults=["drop:tool_completed"],
    seed=7)`` or ``EmbeddedServer(replay="data/staging.jsonl", replay_speed=2)``.

    It runs on a separate loop from the client's on purpose: the two never share timing.
    """

    def __init__(self, config: ServerConfig | None = None, **overrides: Any):
        self.server = ReferenceServer(config, **overrides)
        self._thread: LoopThread | None = None

    def start(self) -> EmbeddedServer:
        """Start serving; returns self so ``server = EmbeddedServer().start()`` reads well."""
        if self._thread is None:
            self._thread = LoopThread(name="netra-ws-server")
            try:
                self._thread.run(self.server.start(), timeout=30)
            except BaseException:
                self._thread.stop()
                self._thread = None
                raise
        return self

    def stop(self) -> None:
        """Close every connection and stop the thread; idempotent."""
        if self._thread is not None:
            try:
                self._thread.run(self.server.stop(), timeout=30)
            finally:
                self._thread.stop()
                self._thread = None

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The main endpoint URL (``ws://127.0.0.1:<port>/api/v1/websocket``)."""
        return self.server.url

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def config(self) -> ServerConfig:
        return self.server.config

    def token(self, user_id: str = "test-user", **claims: Any) -> str:
        """A token this server accepts; see :func:`netra_ws.tokens.mint_token`."""
        return self.server.token(user_id, **claims)
