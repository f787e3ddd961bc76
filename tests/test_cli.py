"""``python -m netra_ws`` as a user runs it: real subprocesses, real sockets."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest
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


# --- the first hour of a new user (issue #16) ---------------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def _env(**values: str) -> dict[str, str]:
    """This environment without any NETRA_WS_ variable, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRA_WS_")}
    return {**env, **values}


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "netra_ws", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env if env is not None else _env(),
        cwd=cwd,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _readme_commands() -> list[str]:
    """The shell commands of the README's "Against a real server" section, comments cut."""
    section = README.read_text(encoding="utf-8").split("## Against a real server", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_the_readme_commands_against_a_stand_alone_server_end_in_a_passing_probe(tmp_path):
    """serve, token, probe exactly as the README says; only the port is a free one."""
    serve, token, probe = _readme_commands()
    python = ".venv/bin/python -m netra_ws "
    assert serve.startswith(python + "serve --port 8765 ")
    assert token.startswith("export NETRA_WS_TOKEN=$(" + python + "token ")
    assert probe.startswith(python + "probe ws://127.0.0.1:8765/api/v1/websocket ")
    serve_args = shlex.split(serve.removeprefix(python + "serve --port 8765"))
    with serve_cli(tmp_path, *serve_args) as (url, log):
        minted = _run(*shlex.split(token.removeprefix("export NETRA_WS_TOKEN=$(" + python)[:-1]))
        assert minted.returncode == 0, minted.stderr
        probe_args = shlex.split(probe.removeprefix(python))
        probe_args[1] = url  # the port serve picked
        result = _run(*probe_args, env=_env(NETRA_WS_TOKEN=minted.stdout.strip()), cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.rstrip().endswith("verdict: passed")
        # serve's stderr says what to type to get there.
        hint = log()
        assert "token --user alice)" in hint and f"probe {url} --token-env NETRA_WS_TOKEN" in hint
        assert "--dev-secret" in hint


def test_a_malformed_token_is_a_finding_not_a_traceback(tmp_path):
    result = _run(
        "probe", "--out", str(tmp_path), "--quiet", "0.1", "--timeout", "5", "--json",
        env=_env(NETRA_WS_TOKEN="garbage"),
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert "warning: the token is not a JWT: 1 dot-separated part(s)" in result.stderr
    assert result.returncode == 1  # the embedded strict server refuses it: a finding
    rows = {r["credential"]: r for r in json.loads(result.stdout)["probes"][3]["rows"]}
    assert rows["bad signature"]["explanation"].startswith("not tried: the token is not a JWT")
    assert rows["header"]["status"] == "failed"  # the other probes still ran


def test_serve_on_a_port_in_use_says_so_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run("serve", "--port", str(port), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (another serve?): stop that "
        "server, or pass --port 0 for a free port (the URL is printed)"
    ]


def test_an_unreachable_target_is_said_once_and_nothing_is_written(tmp_path):
    url = f"ws://127.0.0.1:{_closed_port()}/api/v1/websocket"
    result = _run("probe", url, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"error: the target was not reached: connection refused by {url}: is the server running?"
    ]
    assert not (tmp_path / "out").exists()


def test_a_wrong_path_is_a_target_error(tmp_path):
    with serve_cli(tmp_path, "--auth", "strict") as (url, _log):
        wrong = url.replace("/api/v1/websocket", "/no/such/path")
        result = _run("probe", wrong, "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: the connection was refused at the handshake, and ")
    assert "'/no/such/path' is not a Netra WebSocket endpoint" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("url", "suggested"),
    [
        ("http://127.0.0.1:1/ws", "ws://127.0.0.1:1/ws"),
        ("https://example.invalid/ws", "wss://example.invalid/ws"),
        ("127.0.0.1:8765/ws", None),
    ],
)
def test_a_non_websocket_url_says_what_to_type(url, suggested):
    result = _run("probe", url)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ws://" in result.stderr and (suggested is None or suggested in result.stderr)


def test_an_inconclusive_verdict_exits_3_in_probe_and_report(tmp_path):
    """Without the secret the expired-token row cannot be tried: inconclusive, not failed.
    The report of the same traces agrees (it exited 0 before)."""
    with serve_cli(tmp_path, "--auth", "strict") as (url, _log):
        token = _run("token", "--user", "alice").stdout.strip()
        probe = _run(
            "probe", url, "--token-env", "TOKEN", "--out", str(tmp_path), "--quiet", "0.1",
            env=_env(TOKEN=token),
        )  # fmt: skip
    assert probe.returncode == 3, probe.stdout + probe.stderr
    assert probe.stdout.rstrip().endswith("verdict: inconclusive")
    (folder,) = tmp_path.glob("probes-*")
    report = _run("report", str(folder), "--out", str(tmp_path / "report.md"))
    assert report.returncode == 3, report.stdout + report.stderr
    # The inconclusive row names the CLI flags, not only the Python keyword.
    explanation = json.dumps(read_trace(next(folder.glob("auth-expired-*.jsonl"))).records)
    assert "auth probe: not tried" in explanation
    from netra_ws.verdicts import AUTH_MATRIX, not_tried_row

    expired = next(c for c in AUTH_MATRIX if c.kind == "expired")
    words = not_tried_row(expired)["explanation"]
    assert "--secret-env NAME" in words and "--dev-secret" in words


def test_help_shows_defaults_and_how_clients_authenticate():
    top = _run("--help").stdout
    assert "``" not in top and "python -m netra_ws COMMAND" in top
    assert "exit codes" in top and "3  inconclusive" in top
    serve = " ".join(_run("serve", "--help").stdout.split())
    for text in (
        "--host HOST the address to listen on (default: 127.0.0.1)",
        "0 picks a free one (default: 8765)",
        "(default: demo)",
        "(default: bridge)",
        "Authorization: Bearer <token>",
        "jwt.<base64url(token)>",
    ):
        assert text in serve, text
    token = " ".join(_run("token", "--help").stdout.split())
    assert "Print a JWT with the auth service's claims" in token
    assert "(default: test-user)" in token and "(default: 3600.0)" in token
    assert "a negative value mints an already expired token" in token
    probe = " ".join(_run("probe", "--help").stdout.split())
    for text in ("(default: 30.0)", "(default: 2.0)", "(default: data)", "exit codes"):
        assert text in probe, text
    report = " ".join(_run("report", "--help").stdout.split())
    assert "(default: report.md)" in report and "exit codes" in report
    assert "(default: None)" not in serve + token + probe + report


def test_cli_errors_name_cli_flags_not_python_keywords(tmp_path):
    trace = tmp_path / "t.jsonl"
    trace.write_text(json.dumps({"kind": "meta", "format": "netra-ws-trace/1"}) + "\n")
    (tmp_path / "t.har").write_text("{}")
    result = _run("export-har", str(trace))
    assert result.returncode == 2
    assert "--overwrite" in result.stderr and "overwrite=True" not in result.stderr
    for command in (["probe"], ["report", str(trace)]):
        result = _run(*command, "--profile", "nope")
        assert result.returncode == 2
        assert "unknown profile 'nope'" in result.stderr and "dict" not in result.stderr
