"""diff_traces and `netra-ws diff`: "local passes, staging fails — what is different?"

The traces are recorded here from real embedded servers: the backend as intended
(``bridge``) and as #937 met it (``staging-937``), in ``demo`` auth (the demo user) and in
``strict`` auth with a token (the token's own user, and still no agent events).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FAST, RUN, t

from netra_ws.diff import diff_traces
from netra_ws.events import CRITICAL_EVENTS
from netra_ws.target import resolve_target
from netra_ws.trace import TraceWriter, read_trace

USER = "notebook-user"


async def _record(dialect: str, server_auth: str, path: Path, messages: int = 1) -> Path:
    with resolve_target(
        None, dialect=dialect, server_auth=server_auth, user_id=USER, scenario=FAST
    ) as target:
        async with target.connect(trace=path, labels=target.labels) as session:
            await session.next(timeout=t(5))
            for _ in range(messages):
                await session.send_user_message("What did we spend?")
                # staging-937 swallows it: the timeout is the expected end there.
                await session.collect(until="agent_completed", timeout=t(1))
    return path


@pytest.fixture(scope="module")
def traces(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("diff")

    async def record_all() -> list[Path]:
        return await asyncio.gather(
            _record("bridge", "strict", out / "bridge.jsonl", messages=2),
            _record("staging-937", "demo", out / "staging-demo.jsonl"),
            _record("staging-937", "strict", out / "staging-strict.jsonl"),
        )

    bridge, demo, strict = asyncio.run(record_all())
    return {"bridge": bridge, "demo": demo, "strict": strict}


def test_bridge_vs_staging_in_demo_auth_names_missing_events_and_the_demo_user(traces):
    d = diff_traces(traces["bridge"], traces["demo"])
    assert d.missing == list(CRITICAL_EVENTS)
    assert d.extra == [] and not d.reordered and not d.same
    assert d.users == ("notebook...", "demo-use...")
    assert "demo user" in d.headline and "says nothing about a real user" in d.headline
    text = d.to_text()
    assert "missing on B:  agent_started, agent_thinking, tool_executing" in text
    assert "user:          A notebook..., B demo-use... (the demo user" in text
    rows = d.to_frame()
    assert set(rows["aspect"]) >= {"events", "user", "field", "timing", "connection"}
    user = rows[rows["aspect"] == "field"]
    assert user["item"].tolist() == ["connection_established.user_id"]
    assert (d.events.set_index("event").loc["agent_thinking", ["a", "b"]] == [4, 0]).all()


def test_bridge_vs_staging_in_strict_auth_is_the_same_user_and_still_silent(traces):
    d = diff_traces(traces["bridge"], traces["strict"])
    assert d.missing == list(CRITICAL_EVENTS)
    assert d.users == ("notebook...", "notebook...")
    assert "the same user as A" in d.headline and "swallowed" in d.headline
    assert "demo" not in d.headline
    assert "user:" not in d.to_text()


def test_two_runs_of_one_trace_differ_only_in_timing(traces):
    path = traces["bridge"]
    d = diff_traces(f"{path}#1", read_trace(path).filter(run=2))
    assert d.missing == [] and d.extra == [] and d.same
    assert d.sequence_a == d.sequence_b
    measures = d.timing["measure"].tolist()
    assert "time to first agent event" in measures and "phase thinking" in measures


def test_reordered_and_changed_fields(tmp_path):
    def write(name: str, events: list[str], tool: str) -> Path:
        with TraceWriter(tmp_path / name) as w:
            for i, event in enumerate(events):
                frame = {"type": event, "run_id": f"r{i}", "payload": {"tool_name": tool}}
                w.frame("receive", json.dumps(frame), t_wall_ns=i, t_mono_ns=i)
        return tmp_path / name

    a = write("a.jsonl", RUN, "cost_analyzer")
    b = write("b.jsonl", [RUN[0], RUN[3], RUN[4], RUN[1], RUN[5]], "search")
    d = diff_traces(a, b)
    assert d.reordered and d.missing == [] and d.extra == []
    assert d.events.set_index("event").loc["agent_thinking", "change"] == "fewer on B"
    fields = d.fields.set_index(["event", "field"])
    assert fields.loc[("tool_executing", "tool_name"), "b"] == '"search"'
    assert not d.same


def test_cli_diff(traces):
    out = subprocess.run(
        [sys.executable, "-m", "netra_ws", "diff", str(traces["bridge"]), str(traces["demo"])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1, out.stderr  # they differ
    assert "missing on B:  agent_started" in out.stdout and "demo-use..." in out.stdout
    same = subprocess.run(
        [
            sys.executable,
            "-m",
            "netra_ws",
            "diff",
            f"{traces['bridge']}#1",
            f"{traces['bridge']}#2",
            "--csv",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert same.returncode == 0, same.stdout + same.stderr
    assert same.stdout.splitlines()[0] == "aspect,item,a,b,note"
