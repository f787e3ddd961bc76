"""The reference server on a background thread (:class:`EmbeddedServer`), for notebooks,
scripts and tests, or in N processes on one port (:class:`ServerWorkers`), for load tests."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import multiprocessing
import os
import socket
import sys
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from .._loop import LoopThread
from ..tokens import resolve_secret
from .app import Listening, ReferenceServer, ServerConfig, conn_log

__all__ = ["EmbeddedServer", "ServerWorkers"]

# How long a spawned worker may take to import the server and listen (a busy machine).
_WORKER_START_TIMEOUT = 60.0
# How often a worker checks that its parent still runs: a killed parent (SIGKILL, no
# cleanup) must not leave orphans listening on the port.
_ORPHAN_CHECK_S = 0.5


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


class ServerWorkers(Listening):
    """The reference server in ``workers`` processes sharing one port (``serve --workers N``).

    A single server is one CPU-bound process: under a load test it saturates before the
    clients do. Here each worker is a full :class:`ReferenceServer` (same auth, dialect,
    scenario and faults: one ``config`` for all) listening with ``SO_REUSEPORT``, and the
    Linux kernel spreads incoming connections over them. The parent binds the port first
    (port 0 picks a free one, read it from :attr:`url`) and holds it until every worker
    listens. ``conn=N`` fault scopes and ``seed`` draws count per worker.

    Linux only: macOS and the BSDs accept ``SO_REUSEPORT`` but do not balance TCP
    connections across the sockets (one process would get them all), and Windows has no
    such option; there ``start()`` refuses ``workers > 1``: run one server per port instead.

    Use it as a context manager (``with ServerWorkers(2, auth="strict") as servers:``); a
    worker logs with ``worker <i> pid <pid>`` in each line (``verbose``: every connection
    and run too).
    """

    def __init__(
        self,
        workers: int,
        config: ServerConfig | None = None,
        *,
        verbose: bool = False,
        **overrides: Any,
    ):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self.config = replace(config or ServerConfig(), **overrides)
        self._secret = resolve_secret(self.config.secret)  # every worker resolves the same
        self.verbose = verbose
        self._port: int | None = None
        self._processes: list[BaseProcess] = []

    def start(self) -> ServerWorkers:
        """Bind the port, start every worker and wait until each one listens.

        Raises ``OSError`` when the port is in use (``errno.EADDRINUSE``) or a worker cannot
        listen, ``RuntimeError`` for ``workers > 1`` off Linux (see the class docstring).
        """
        if self._processes:
            return self
        if self.workers > 1 and not sys.platform.startswith("linux"):
            raise RuntimeError(
                f"--workers {self.workers} needs Linux (SO_REUSEPORT balancing); on "
                f"{sys.platform} run one server per port instead"
            )
        host, port = self.config.host, self.config.port
        reserve = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        try:
            reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                reserve.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                raise OSError(
                    errno.EADDRINUSE,
                    f"port {port} on {host} is already in use (another server?): stop it,"
                    " or use port 0 for a free port",
                ) from None
            # Bound, never listening: it holds the port (and fixes port 0) without taking
            # a share of the connections.
            self._port = reserve.getsockname()[1]
            config = replace(self.config, port=self._port, reuse_port=True)
            # spawn, not fork: the caller may have threads (a notebook, pytest, a loop).
            context = multiprocessing.get_context("spawn")
            pipes: list[Connection] = []
            for index in range(1, self.workers + 1):
                receiver, sender = context.Pipe(duplex=False)
                process = context.Process(
                    target=_worker_main,
                    args=(config, index, sender, self.verbose),
                    name=f"netra-ws-server-{index}",
                    daemon=True,
                )
                process.start()
                sender.close()
                self._processes.append(process)
                pipes.append(receiver)
            try:
                for index, receiver in enumerate(pipes, start=1):
                    if not receiver.poll(_WORKER_START_TIMEOUT):
                        raise OSError(f"server worker {index} did not start listening")
                    message = receiver.recv()
                    if message != "ready":
                        raise OSError(f"server worker {index}: {message}")
            except BaseException:
                self.stop()
                raise
            finally:
                for receiver in pipes:
                    receiver.close()
        finally:
            reserve.close()
        return self

    def wait(self, timeout: float | None = None) -> BaseProcess | None:
        """Block until a worker exits (returned; read its ``exitcode``) or ``timeout``."""
        ready = wait([p.sentinel for p in self._processes], timeout)
        return next((p for p in self._processes if p.sentinel in ready), None)

    def stop(self) -> None:
        """Stop every worker (SIGTERM, then SIGKILL after 5 s); idempotent."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
        self._processes = []

    def __enter__(self) -> ServerWorkers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids, in worker order (1 first)."""
        return [p.pid for p in self._processes if p.pid is not None]

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("workers not started: call start() or use 'with'")
        return self._port


def _quiet_connections(record: logging.LogRecord) -> bool:
    return record.msg not in ("connection open", "connection closed")


def _worker_main(config: ServerConfig, index: int, ready: Connection, verbose: bool) -> None:
    """One worker process: serve ``config`` until terminated or orphaned."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s worker {index} pid %(process)d %(name)s %(message)s",
    )
    if verbose:
        conn_log.setLevel(logging.DEBUG)
    else:
        # websockets' own INFO line per connection opened and closed: two lines per
        # simulated user drown the FAULT and auth lines and cost the worker CPU under load.
        logging.getLogger("netra_ws.server").addFilter(_quiet_connections)
    parent = os.getppid()

    async def run() -> None:
        server = ReferenceServer(config)
        try:
            await server.start()
        except OSError as exc:
            ready.send(str(exc))
            return
        ready.send("ready")
        ready.close()
        try:
            while os.getppid() == parent:
                await asyncio.sleep(_ORPHAN_CHECK_S)
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
