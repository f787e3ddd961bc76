"""The session as a blocking API, for notebook cells and plain scripts.

It runs the async :class:`~netra_ws.client.Session` on a private event loop on a daemon
thread, so it works in a script, inside a running Jupyter kernel, and after
``nest_asyncio.apply()``, without patching asyncio::

    from netra_ws import sync
    with sync.connect(url, token=token) as session:
        print(session.next(timeout=5).name)
        session.send_user_message("hello")
        print(session.collect(until="agent_completed", timeout=30).names)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from . import client
from ._loop import LoopThread
from .client import Collected, Handshake, Received, Until

__all__ = ["SyncSession", "connect"]

_shared: LoopThread | None = None
_shared_lock = threading.Lock()


def _loop_thread() -> LoopThread:
    # One loop thread for every blocking session in the process: cheap and enough, since
    # sessions only wait on I/O.
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = LoopThread(name="netra-ws-sync")
        return _shared


class SyncSession:
    """Blocking twin of :class:`~netra_ws.client.Session`; same methods, same exceptions."""

    def __init__(self, session: client.Session, runner: LoopThread):
        self._session = session
        self._run = runner.run

    # Plain attributes and properties of the async session, read as they are.
    @property
    def handshake(self) -> Handshake:
        return self._session.handshake

    @property
    def received(self) -> list[Received]:
        return self._session.received

    @property
    def url(self) -> str:
        return self._session.url

    @property
    def trace_path(self) -> Path | None:
        return self._session.trace_path

    @property
    def close_code(self) -> int | None:
        return self._session.close_code

    @property
    def close_reason(self) -> str | None:
        return self._session.close_reason

    @property
    def closed(self) -> bool:
        return self._session.closed

    def send(self, message: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        return self._run(self._session.send(message))

    def send_user_message(
        self, text: str, *, form: Literal["flat", "payload"] = "flat", **fields: Any
    ) -> dict[str, Any]:
        return self._run(self._session.send_user_message(text, form=form, **fields))

    def next(self, timeout: float = 5.0) -> Received:
        return self._run(self._session.next(timeout))

    def expect(self, event: str | Callable[[Received], bool], timeout: float = 10.0) -> Received:
        return self._run(self._session.expect(event, timeout))

    def collect(self, until: Until = None, timeout: float = 30.0) -> Collected:
        return self._run(self._session.collect(until, timeout))

    def quiet(self, window: float = 2.0) -> list[Received]:
        return self._run(self._session.quiet(window))

    def mark(self, label: str, **fields: Any) -> dict[str, Any]:
        return self._session.mark(label, **fields)

    def records(self) -> list[dict[str, Any]]:
        return self._session.records()

    def to_frame(self):
        return self._session.to_frame()

    def close(self, code: int = 1000, reason: str = "") -> None:
        self._run(self._session.close(code, reason))

    def __enter__(self) -> SyncSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(url: str, **options: Any) -> SyncSession:
    """Open a recorded session and return it; the options are those of :func:`netra_ws.connect`.

    Use it as a context manager, or call ``close()`` when done.
    """
    runner = _loop_thread()

    async def _open() -> client.Session:
        return await client.connect(url, **options)

    return SyncSession(runner.run(_open()), runner)
