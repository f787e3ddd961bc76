"""``python -m netra_ws serve`` with scenario, faults, seed, limits and replay, as a user runs
it: a real subprocess, a real socket, the client's trace and the server's log."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys

import pytest
from conftest import RUN, run, serve_cli, t
from websockets.asyncio.client import connect as ws_connect

from netra_ws import connect, read_trace
from netra_ws.cli import main
from netra_ws.server import Scenario, ServerConfig


async def _two_runs(url, path):
    async with connect(url, trace=path) as session:
        await session.expect("connection_established", timeout=t(10))
        for text in ("first", "second"):
            await session.send_user_message(text)
            await session.collect(until="agent_completed", timeout=t(10))
        await session.send({"type": "ping", "pad": "x" * 9000})  # above --max-message-size
        await session.collect(timeout=t(5))


def _received(trace):
    return [f for f in trace.frames if f["dir"] == "receive"]


def test_serve_with_dialect_scenario_faults_seed_and_limits(tmp_path):
    scenario = tmp_path / "scenario.json"
    scenario.write_text(
        json.dumps(
            {"first_delay": 0.01, "step_delay": 0.03, "jitter": 0.5, "max_message_size": 2048}
        )
    )
    path = tmp_path / "cli.jsonl"
    with serve_cli(
        tmp_path,
        "--dialect",
        "manager",
        "--scenario",
        str(scenario),
        "--fault",
        "drop:tool_completed@run=1",
        "--fault",
        "stall:agent_thinking#2:0.3@run=2",
        "--seed",
        "3",
        "--max-message-size",
        "8192",  # the flag wins over the file's 2048
    ) as (url, server_log):
        run(_two_runs(url, path))
        log = server_log()

    received = _received(read_trace(path))
    welcome = json.loads(received[0]["data"])["data"]
    first_run, second_run = (
        [f for f in received if f.get("run_id") == run_id]
        for run_id in dict.fromkeys(f["run_id"] for f in received if f.get("run_id"))
    )
    assert {f["envelope"] for f in first_run + second_run} == {"manager"}
    assert [f["event"] for f in first_run] == [n for n in RUN if n != "tool_completed"]
    assert [f["event"] for f in second_run] == RUN
    stalled = (second_run[2]["t_mono_ns"] - second_run[1]["t_mono_ns"]) / 1e9
    assert stalled >= 0.3
    close = next(r for r in read_trace(path).records if r["kind"] == "close")
    assert close["code"] == 1009
    conn = welcome["connection_id"]
    assert f"FAULT drop tool_completed#1 run={first_run[0]['run_id']} conn={conn}" in log
    assert f"FAULT stall agent_thinking#2 0.3s run={second_run[0]['run_id']} conn={conn}" in log
    assert "seed=3" in log and "dialect=manager" in log


def test_serve_replays_a_trace_with_speed_and_a_fault(make_server, tmp_path):
    recorded = tmp_path / "recorded.jsonl"
    recorder = make_server(
        dialect="manager",
        scenario=Scenario(first_delay=0.05, step_delay=0.05),
        faults=["binary:after=agent_started"],
    )

    async def record(url, path):
        async with connect(url, trace=path) as session:
            await session.expect("connection_established", timeout=t(10))
            await session.send_user_message("analyze")
            await session.collect(until="agent_completed", timeout=t(10))

    run(record(recorder.url, recorded))
    scenario = tmp_path / "ignored.json"
    scenario.write_text(json.dumps({"thinking": []}))
    replayed = tmp_path / "replayed.jsonl"
    with serve_cli(
        tmp_path,
        "--replay",
        str(recorded),
        "--speed",
        "2",
        "--fault",
        "drop:agent_thinking#1",
        "--seed",
        "1",
        "--dialect",
        "wrapped",  # replay serves the recorded frames: the dialect has no say
        "--scenario",
        str(scenario),
    ) as (url, server_log):
        run(record(url, replayed))
        log = server_log()

    original, got = _received(read_trace(recorded)), _received(read_trace(replayed))
    dropped = next(i for i, f in enumerate(original) if f.get("event") == "agent_thinking")
    assert [f["data"] for f in got] == [f["data"] for i, f in enumerate(original) if i != dropped]
    assert {f["opcode"] for f in got} == {"text", "binary"}

    def span(frames):
        return (frames[-1]["t_mono_ns"] - frames[1]["t_mono_ns"]) / 1e9

    assert abs(span(got) - span(original) / 2) < t(0.03), (span(got), span(original))
    assert "FAULT drop agent_thinking#1 run=replay" in log and "replay of" in log


def _refused(capsys, *args):
    """Run the CLI in-process (argparse fails before any server starts); return stderr."""
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "0", *args])
    assert info.value.code == 2
    return capsys.readouterr().err


def test_serve_refuses_bad_specs_and_files_with_the_reason(tmp_path, capsys):
    assert "unknown event 'agent_thinkng'" in _refused(capsys, "--fault", "drop:agent_thinkng")
    scenario = tmp_path / "typo.json"
    scenario.write_text(json.dumps({"step_dealy": 1}))
    assert "unknown scenario key 'step_dealy'" in _refused(capsys, "--scenario", str(scenario))
    assert "nope.jsonl" in _refused(capsys, "--replay", str(tmp_path / "nope.jsonl"))
    assert "must be a number > 0" in _refused(capsys, "--speed", "0")
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = capsys.readouterr().out
    assert "tcp-close:after=EVENT" in help_text and "FAULT <kind>" in help_text


@pytest.mark.parametrize("verbose", [False, True])
def test_connections_and_runs_are_logged_only_when_verbose(tmp_path, verbose):
    fast = tmp_path / "fast.json"
    fast.write_text(json.dumps({"first_delay": 0.01, "step_delay": 0.01}))
    args = ["--scenario", str(fast), *(["--verbose"] if verbose else [])]
    with serve_cli(tmp_path, *args) as (url, log):
        run(_two_runs(url, tmp_path / "t.jsonl"))
        lines = [line for line in log().splitlines() if "netra_ws.server.connections" in line]
        wanted = [" opened user=", " run ", " started (run 1)", " completed"]
        if verbose:
            for part in wanted:
                assert any(part in line for line in lines), (part, log())
        else:
            assert lines == []
        # Whatever the level, websockets' frame-level log stays off.
        assert "> TEXT" not in log() and "< TEXT" not in log()


def test_serve_env_and_auth_failure_reach_the_server(tmp_path):
    """--env decides which tokens are valid; --auth-failure how strict refuses them."""
    secret = "serve-env-secret-0123456789abcdef"
    args = ["--dialect", "staging-937", "--auth", "strict", "--secret", secret]
    with serve_cli(tmp_path, *args, "--env", "production") as (url, server_log):

        def mint(env: str) -> str:
            command = [sys.executable, "-m", "netra_ws", "token", "--secret", secret]
            out = subprocess.run([*command, "--env", env], capture_output=True, text=True)
            return out.stdout.strip()

        async def first_frame(token):
            headers = {"Authorization": f"Bearer {token}"}
            async with ws_connect(url, additional_headers=headers, open_timeout=t(10)) as ws:
                frame = json.loads(await asyncio.wait_for(ws.recv(), t(5)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ws.wait_closed(), t(0.5))
                return frame, ws.close_code

        accepted, code = run(first_frame(mint("production")))
        assert accepted["type"] == "connection_established" and code is None
        refused, code = run(first_frame(mint("development")))
        assert refused["data"]["error_code"] == "CONNECTION_ERROR" and code == 1011
        log = server_log()
    assert "wrong environment (env): 'development', expected 'production'" in log
    assert "auth_failure=connection-error, environment=production" in log


def test_server_config_refuses_unknown_styles_and_environments():
    with pytest.raises(ValueError, match="unknown auth_failure 'nope'; known: auth-failed"):
        ServerConfig(auth_failure="nope")
    with pytest.raises(ValueError, match="unknown environment 'prod'; known: development"):
        ServerConfig(environment="prod")
