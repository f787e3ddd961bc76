"""``python -m netra_ws`` as a user runs it: real subprocesses, real sockets."""

from __future__ import annotations

import subprocess
import sys

from conftest import run, serve_cli, t
from helpers.demo import demo_run

from netra_ws import CRITICAL_EVENTS, connect, read_trace
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


def test_serve_command_prints_its_url_and_enforces_strict_auth(tmp_path):
    env_secret = "shared-secret-for-cli-test"
    with serve_cli(tmp_path, "--auth", "strict", "--secret", env_secret) as (url, log):
        assert url.endswith("/api/v1/websocket")
        token = _cli("token", "--user", "dave", "--secret", env_secret).stdout.strip()

        async def scenario():
            async with connect(url, token=token) as session:
                first = await session.next(timeout=t(5))
                await session.send_user_message("hi")
                return first, await session.collect(until="agent_completed", timeout=t(10))

        first, result = run(scenario())
        assert first.event.payload["user_id"] == "dave..."
        assert result.reason == "matched"
        assert token not in log()  # the server log never shows a token
        assert "listening on" in log()


def test_demo_command_runs_the_three_checks():
    """The #937 checks, in the traces the demo's notebooks saved (one shared demo run)."""
    demo = demo_run()
    assert demo.result.returncode == 0, demo.result.stdout + demo.result.stderr
    assert (demo.out / "report.md").is_file()
    assert f"report: {demo.out / 'report.md'}" in demo.result.stdout

    # 1. Connect, send nothing: the first frame is connection_established.
    (connect,) = demo.out.glob("01_connect/*/connect.jsonl")
    frames = read_trace(connect).frames
    assert (frames[0]["dir"], frames[0]["event"]) == ("receive", "connection_established")

    # 2. agent_started sent as input: nothing is received in its quiet window.
    (negative,) = demo.out.glob("02_broken_vs_correct/*/negative-*.jsonl")
    records = read_trace(negative).records
    sent = next(i for i, r in enumerate(records) if r.get("event") == "agent_started")
    begins = next(
        i for i, r in enumerate(records[sent:], sent) if r.get("label") == "quiet window begins"
    )
    ends = next(
        i for i, r in enumerate(records[begins:], begins) if r.get("label") == "quiet window ends"
    )
    assert records[begins]["window_s"] > 0 and records[ends]["received"] == 0
    assert not [r for r in records[begins:ends] if r.get("kind") == "frame"]

    # 3. user_message: a complete agent run, every critical event, in order.
    (correct,) = demo.out.glob("02_broken_vs_correct/*/correct.jsonl")
    events = [(f["dir"], f["event"]) for f in read_trace(correct).frames]
    start = events.index(("send", "user_message"))
    received = [event for direction, event in events[start:] if direction == "receive"]
    assert received[0] == "agent_started" and received[-1] == "agent_completed"
    assert set(CRITICAL_EVENTS) <= set(received)
