"""Traces written by hand: each frame at a chosen millisecond, no network.

tests/test_analysis.py computes every gap, duration and percentile by hand from the
milliseconds these write; tests/test_plots.py draws them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from netra_ws.trace import TraceWriter

MONO0 = 7_000_000_000_000  # an arbitrary monotonic origin, ns
WALL0 = 1_757_672_130_000_000_000  # 2025-09-12T10:15:30Z, ns


class Script:
    """A trace written by hand: each frame at a chosen millisecond, no network.

    Server events are bridge envelopes (PROTOCOL.md §4) whose ISO timestamp is the receipt
    time minus ``server_lag_ms`` (the server clock is behind by that much).
    """

    def __init__(self, session: str = "s1", path: Any = None, server_lag_ms: float = 0.0):
        self.writer = TraceWriter(path, session=session)
        self.server_lag_ms = server_lag_ms

    def _write(self, direction: str, ms: float, obj: Any) -> None:
        ns = round(ms * 1_000_000)
        text = obj if isinstance(obj, str) else json.dumps(obj)
        self.writer.frame(direction, text, t_wall_ns=WALL0 + ns, t_mono_ns=MONO0 + ns)

    def _server_time(self, ms: float, latency_ms: float) -> float:
        return (WALL0 / 1e9) + (ms - self.server_lag_ms - latency_ms) / 1000

    def send(self, ms: float, type_: str = "user_message", **fields: Any) -> Script:
        self._write("send", ms, {"type": type_, "message": "What did we spend?", **fields})
        return self

    def event(
        self,
        ms: float,
        name: str,
        run_id: str | None = "run-1",
        tool: str | None = None,
        latency_ms: float = 1.0,
    ) -> Script:
        stamp = datetime.fromtimestamp(self._server_time(ms, latency_ms), tz=UTC)
        payload: dict[str, Any] = {"status": name.split("_")[-1]}
        if tool is not None:
            payload["tool_name"] = tool
        frame: dict[str, Any] = {
            "type": name,
            "user_id": "demo-user-001",
            "agent_name": "supervisor_agent",
            "timestamp": stamp.isoformat(),
            "payload": payload,
        }
        if run_id is not None:
            frame["run_id"] = run_id
        self._write("receive", ms, frame)
        return self

    def status(self, ms: float, name: str, latency_ms: float = 1.0) -> Script:
        frame = {
            "type": name,
            "data": {"connection_id": "main_1"},
            "timestamp": self._server_time(ms, latency_ms),
            "server_id": None,
            "correlation_id": None,
        }
        self._write("receive", ms, frame)
        return self

    def mark(self, ms: float, label: str) -> Script:
        ns = round(ms * 1_000_000)
        self.writer.mark(label, t_wall_ns=WALL0 + ns, t_mono_ns=MONO0 + ns)
        return self

    def frame(self) -> pd.DataFrame:
        return self.writer.to_trace().to_frame()

    def close(self) -> None:
        self.writer.close()


def three_runs(session: str = "s1", path: Any = None) -> Script:
    """The reference trace of these tests.

    run 1: trigger at 100 ms, then started 350, thinking 500 and 800, cost_analyzer from
           900 to 2400 (a heartbeat at 1600 in between), completed 2600;
    run 2: trigger at 5000, no reply at all;
    run 3: trigger at 6000, started 6100, thinking 6300, then nothing.
    """
    s = Script(session, path)
    s.status(0, "connection_established")
    s.send(100)
    s.event(350, "agent_started")
    s.event(500, "agent_thinking")
    s.event(800, "agent_thinking")
    s.event(900, "tool_executing", tool="cost_analyzer")
    s.status(1600, "heartbeat")
    s.event(2400, "tool_completed", tool="cost_analyzer")
    s.event(2600, "agent_completed")
    s.send(5000)
    s.send(6000)
    s.event(6100, "agent_started", run_id="run-3")
    s.event(6300, "agent_thinking", run_id="run-3")
    return s


def one_run(ttfe_ms: float, think_ms: float, tools: dict[str, float], session: str) -> Script:
    s = Script(session).send(0)
    s.event(ttfe_ms, "agent_started")
    at = ttfe_ms + 10
    s.event(at, "agent_thinking")
    at += think_ms
    for tool, ms in tools.items():
        s.event(at, "tool_executing", tool=tool)
        at += ms
        s.event(at, "tool_completed", tool=tool)
        at += 10
    s.event(at, "agent_completed")
    return s
