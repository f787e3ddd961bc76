"""The main job, first version: the three Issue #937 checks against the embedded server.

1. connect and read the first frame: ``connection_established`` (the frame the flawed
   tests mistook for a reply);
2. send the output event ``agent_started`` as input and wait a quiet window: nothing comes
   back;
3. send ``user_message`` and collect until ``agent_completed``: a complete agent run.

Every frame goes to one trace under ``data/``; marks in the trace separate the checks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .client import connect
from .events import TERMINAL_EVENTS
from .expect import check_connection, check_no_reply, check_run
from .server import EmbeddedServer

__all__ = ["Check", "run_demo"]


@dataclass(frozen=True)
class Check:
    """One check of the demo: its name, whether it passed, and what was seen."""

    name: str
    passed: bool
    observed: str


async def run_demo(
    out_dir: str | Path = "data", *, url: str | None = None, quiet_window: float = 1.0
) -> tuple[list[Check], Path]:
    """Run the three checks; return them and the trace path.

    Without ``url`` an embedded reference server (dialect ``bridge``, demo auth) is started
    and stopped around the checks.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    trace = out / time.strftime("demo-937-%Y%m%dT%H%M%S.jsonl")
    server = None if url else EmbeddedServer().start()
    try:
        async with connect(url or server.url, trace=trace, labels={"job": "demo-937"}) as session:
            # The verdicts come from netra_ws.expect, the same checks the probes use.
            session.mark("check 1: first frame after connect")
            await session.next(timeout=5)
            connected = check_connection(session.records())
            checks = [
                Check(
                    "connect: first frame is connection_established",
                    connected.passed,
                    connected.explanation,
                )
            ]

            session.mark("check 2: output event sent as input")
            await session.send({"type": "agent_started", "payload": {"agent_name": "test"}})
            await session.quiet(quiet_window)
            silence = check_no_reply(session.records())
            checks.append(
                Check(
                    "negative: agent_started sent as input gets no reply",
                    silence.passed,
                    " ".join(c.explanation for c in silence),
                )
            )

            session.mark("check 3: user_message starts an agent run")
            await session.send_user_message("Analyze my costs for the last 30 days")
            await session.collect(until=TERMINAL_EVENTS, timeout=30)
            run = check_run(session.records())
            checks.append(
                Check(
                    "workflow: user_message yields the five critical events",
                    run.passed,
                    run["order"].explanation
                    if run.passed
                    else " ".join(f"{c.name}: {c.explanation}" for c in run if not c.passed),
                )
            )
    finally:
        if server is not None:
            server.stop()
    return checks, trace
