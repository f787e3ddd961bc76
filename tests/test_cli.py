"""``python -m netra_ws`` as a user runs it: real subprocesses, real sockets."""

from __future__ import annotations

import subprocess
import sys

from conftest import run, t

from netra_ws import connect, read_trace
from netra_ws.tokens import verify_token


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netra_ws", *args], capture_output=True, text=True, timeout=timeout
    )


def test_token_command_prints_a_token_the_server_accepts():
    result = _cli("token", "--user", "carol", "--secret", "s3cret-for-the-cli-token-test-32b")
    assert result.returncode == 0, result.stderr
    claims = verify_token(result.stdout.strip(), secret="s3cret-for-the-cli-token-test-32b")
    assert claims["sub"] == "carol" and claims["type"] == "access"


def test_serve_command_prints_its_url_and_enforces_strict_auth():
    env_secret = "shared-secret-for-cli-test"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "netra_ws",
            "serve",
            "--port",
            "0",
            "--auth",
            "strict",
            "--secret",
            env_secret,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/api/v1/websocket")
        token = _cli("token", "--user", "dave", "--secret", env_secret).stdout.strip()

        async def scenario():
            async with connect(url, token=token) as session:
                first = await session.next(timeout=t(5))
                await session.send_user_message("hi")
                return first, await session.collect(until="agent_completed", timeout=t(10))

        first, result = run(scenario())
        assert first.event.payload["user_id"] == "dave..."
        assert result.reason == "matched"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    assert token not in stderr  # the server log never shows a token
    assert "listening on" in stderr


def test_demo_command_runs_the_three_checks(tmp_path):
    result = _cli("demo", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASS") == 3
    traces = list(tmp_path.glob("demo-937-*.jsonl"))
    assert len(traces) == 1
    frames = read_trace(traces[0]).frames
    events = [(f["dir"], f["event"]) for f in frames]
    assert events[0] == ("receive", "connection_established")
    assert events[1] == ("send", "agent_started")
    # nothing received between the sent agent_started and the user_message
    assert events[2] == ("send", "user_message")
    assert events[-1] == ("receive", "agent_completed")
