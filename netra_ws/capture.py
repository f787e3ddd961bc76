"""Many runs at once: one trace file per workflow, combined into one DataFrame.

A thin network shell over :func:`netra_ws.connect`. Each run connects, waits for the
first frame, sends ``user_message`` and collects until ``agent_completed`` /
``agent_error`` or the timeout. A run that fails (refused, rejected, closed, timed out) is
recorded in its trace as an ``error`` record with ``stage="capture"`` and does not stop
the others.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm  # text bars: no ipywidgets needed in headless runs

from ._loop import LoopThread
from .client import connect
from .errors import NetraWsError
from .events import TERMINAL_EVENTS
from .limits import DEFAULT_LIMITS
from .server import EmbeddedServer
from .target import Target, resolve_target
from .trace import TraceWriter, load_traces

__all__ = ["capture_runs"]


async def _one_run(
    url: str,
    path: Path,
    *,
    message: str,
    timeout: float,
    labels: dict[str, Any],
    connect_options: Mapping[str, Any],
) -> str | None:
    """Run one workflow into ``path``; return None on success, else what went wrong."""
    writer = TraceWriter(
        path, target=url, labels=labels, limits=connect_options.get("limits") or DEFAULT_LIMITS
    )
    try:
        async with connect(url, trace=writer, labels=labels, **connect_options) as session:
            await session.next(timeout=timeout)
            await session.send_user_message(message)
            result = await session.collect(until=TERMINAL_EVENTS, timeout=timeout)
            if result.reason != "matched":
                problem = f"no terminal event: {result.reason} after {result.elapsed_s:.1f} s"
                session.mark("capture: run incomplete", reason=result.reason)
                return problem
            return None
    except NetraWsError as exc:
        if not writer.closed:
            writer.record("error", stage="capture", exception=type(exc).__name__, message=str(exc))
            writer.close()
        return f"{type(exc).__name__}: {exc}"


def capture_runs(
    target: str | EmbeddedServer | Target | None,
    n: int,
    *,
    concurrency: int = 1,
    out_dir: str | Path = "data/runs",
    name: str | None = None,
    message: str = "Analyze my costs for the last 30 days",
    timeout: float = 30.0,
    server_options: Mapping[str, Any] | None = None,
    progress: bool = True,
    **connect_options: Any,
) -> pd.DataFrame:
    """Capture ``n`` workflows and return all their frames as one DataFrame.

    ``target`` is whatever :func:`netra_ws.target.resolve_target` takes: a URL, an
    :class:`EmbeddedServer` you started, a :class:`~netra_ws.target.Target` (its token and
    auth form are used), or None to start an embedded server with ``server_options``
    (``dialect``, ``auth`` — the server's mode, ``strict`` by default —, ``scenario``,
    ``faults``…) for the duration, with a token it accepts. ``concurrency`` sessions run at
    once (1 = sequential). Each run writes ``<out_dir>/<name>/run-0001.jsonl`` …; the
    DataFrame is ``load_traces`` of them, with a ``trace`` column naming the file, so
    :func:`netra_ws.analysis.assign_runs` and the charts apply directly.
    ``connect_options`` go to :func:`netra_ws.connect`; ``token`` and ``auth`` among them
    replace the target's. Failed runs are recorded in their traces and reported in
    ``df.attrs["failures"]`` (run file → reason); check it before trusting a summary.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, not {n}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    name = name or time.strftime("capture-%Y%m%dT%H%M%S")
    directory = Path(out_dir) / name
    paths = [directory / f"run-{i:04d}.jsonl" for i in range(1, n + 1)]
    # The server's auth mode is "auth" among the server options, as in EmbeddedServer(…);
    # the resolver's auth is the client's form.
    options = dict(server_options or {})
    server_auth = options.pop("auth", "strict")
    with resolve_target(
        target,
        token=connect_options.pop("token", None),
        auth=connect_options.pop("auth", None),
        server_auth=server_auth,
        **options,
    ) as resolved:
        directory.mkdir(parents=True, exist_ok=False)
        url = resolved.url
        session_options = {**resolved.connect_options(), **connect_options}

        async def run_all() -> dict[str, str]:
            gate = asyncio.Semaphore(concurrency)
            failures: dict[str, str] = {}
            # In a notebook the bar goes to stdout: stderr shows as a red warning box there.
            out = sys.stdout if "ipykernel" in sys.modules else None
            bar = tqdm(total=n, desc=name, unit="run", disable=not progress, file=out)

            async def guarded(index: int, path: Path) -> None:
                async with gate:
                    labels = {**resolved.labels, "capture": name, "run_index": index}
                    problem = await _one_run(
                        url,
                        path,
                        message=message,
                        timeout=timeout,
                        labels=labels,
                        connect_options=session_options,
                    )
                    if problem is not None:
                        failures[path.name] = problem
                    bar.update(1)

            try:
                await asyncio.gather(*(guarded(i, p) for i, p in enumerate(paths, start=1)))
            finally:
                bar.close()
            return failures

        # A private loop thread, so this blocking call also works inside a Jupyter kernel.
        runner = LoopThread(name="netra-ws-capture")
        try:
            failures = runner.run(run_all())
        finally:
            runner.stop()
    frame = load_traces(paths)
    frame.attrs["failures"] = failures
    return frame
