"""A private event loop on a daemon thread, for blocking callers.

Why a thread and not ``asyncio.run``: a Jupyter kernel already runs a loop on the main
thread, so blocking code there cannot start another one (and ``nest_asyncio`` patches are
fragile). A loop on its own thread works the same in a kernel, a script or a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on a private loop; ``run`` blocks the caller until each finishes."""

    def __init__(self, name: str = "netra-ws-loop"):
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the private loop and return its result (or raise its exception)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("LoopThread.run called from its own loop: this would deadlock")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        """Stop the loop and join the thread; idempotent."""
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            # Best effort: the loop is going away anyway.
            with contextlib.suppress(Exception):
                self.run(_cancel_pending(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _cancel_pending() -> None:
    # Cancel what is still running so closing the loop does not warn about pending tasks.
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
