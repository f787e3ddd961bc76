"""`netra-ws connect`, driven for real: a pseudo-terminal (pexpect), a real server.

The console runs as a user runs it (``python -m netra_ws connect``) in a pty, so
prompt_toolkit reads keys and prints above the line being typed. Everything is checked twice:
on the screen, and in the trace the console wrote (read back with ``read_trace``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest
from conftest import RUN, serve_cli, t

from netra_ws.tokens import mint_token
from netra_ws.trace import read_trace

SECRET = "console-test-secret-0123456789abcdef"
RECORDING = re.compile(r"recording to (\S+console\.jsonl)")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "NO_COLOR": "1",
        # A pty from pexpect answers no cursor-position request: don't ask.
        "PROMPT_TOOLKIT_NO_CPR": "1",
        "NETRA_WS_HISTORY": str(tmp_path / "history"),
        "TERM": "xterm",
    }
    env.pop("NETRA_WS_TOKEN", None)
    return {**env, **extra}


def _spawn(tmp_path: Path, *args: str, **env: str) -> tuple[pexpect.spawn, Path]:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "netra_ws", "connect", "--out", str(tmp_path / "data"), *args],
        env=_env(tmp_path, **env),
        encoding="utf-8",
        timeout=t(20),
        dimensions=(40, 200),
    )
    child.expect(RECORDING)
    path = Path(child.match.group(1))
    child.expect("netra-ws>")
    return child, path


def _events(path: Path, direction: str) -> list[str | None]:
    return [f.get("event") for f in read_trace(path).frames if f["dir"] == direction]


def _finish(child: pexpect.spawn) -> str:
    """Wait for the closing summary and the exit; return what was printed up to them."""
    child.expect(r"\d+ frames \(.*; trace: \S+console\.jsonl")
    shown = child.before + child.after
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    return shown


def test_console_against_the_embedded_server(tmp_path):
    child, path = _spawn(tmp_path)
    child.expect("connection_established")
    child.sendline("What did we spend last month?")
    for event in RUN:
        child.expect(event)
    # A second message, then a line typed while its events arrive: the frames are printed
    # above it, and the line is sent whole.
    child.send("again\r/user par")
    child.expect("agent_completed")
    child.send("tial line\r")
    child.expect(r"→ #\d+\s+user_message\s+message=partial line")
    child.sendline("/save")
    child.expect(r"saved: (\S+)")
    assert Path(child.match.group(1)) == path
    saved = _events(path, "receive")  # on disk before the console closes
    assert saved[:1] == ["connection_established"] and saved.count("agent_completed") >= 2
    child.sendline("/show 1")
    child.expect('"event": "connection_established"')
    child.sendline("/check")
    child.expect(r"run 3: \w+")
    child.sendline("/quit")
    out = _finish(child)
    assert "close 1000 by client" in out
    trace = read_trace(path)
    sent = [f for f in trace.frames if f["dir"] == "send"]
    assert [f["event"] for f in sent] == ["user_message"] * 3
    assert [f.get("data").count("partial line") for f in sent] == [0, 0, 1]
    assert _events(path, "receive").count("agent_started") >= 2
    assert trace.records[0]["kind"] == "open"
    assert trace.records[-1]["kind"] == "close"
    assert (tmp_path / "history").read_text().count("What did we spend") == 1


def test_console_against_serve_strict_with_a_token(tmp_path):
    with serve_cli(tmp_path, "--auth", "strict", "--secret", SECRET) as (url, _):
        token = mint_token("console-user", secret=SECRET)
        child, path = _spawn(tmp_path, url, "--token-env", "MY_TOKEN", MY_TOKEN=token)
        child.expect(r"user_id=console-\.\.\.")
        child.sendline('{"type": "user_message", "payload": {"content": "hi"}}')
        child.expect("agent_completed")
        child.sendline("/mark checked")
        child.expect("mark  checked")
        child.sendeof()  # Ctrl-D
        _finish(child)
    trace = read_trace(path)
    assert token not in path.read_text()
    assert [r["label"] for r in trace.marks] == ["checked"]
    assert _events(path, "receive")[-1] == "agent_completed"


def test_console_ends_when_the_server_refuses_the_token(tmp_path):
    with serve_cli(tmp_path, "--auth", "strict", "--secret", SECRET) as (url, _):
        child, path = _spawn(tmp_path, url, "--token-env", "MY_TOKEN", MY_TOKEN="x" * 40)
        child.expect("AUTH_FAILED")
        child.expect(r"close 1008")
        out = _finish(child)  # the server closed: the console left on its own
    assert "0 agent events" in out
    assert read_trace(path).records[-1]["code"] == 1008


def test_ctrl_c_closes_cleanly(tmp_path):
    child, path = _spawn(tmp_path)
    child.expect("connection_established")
    child.sendintr()
    _finish(child)
    assert read_trace(path).records[-1]["kind"] == "close"


def test_piped_console_prints_plain_text(tmp_path):
    script = "hello\n/expect agent_completed 10\n/quiet 0.2\n/nope\n/quit\n"
    out = subprocess.run(
        [sys.executable, "-m", "netra_ws", "connect", "--out", str(tmp_path / "data")],
        input=script,
        capture_output=True,
        text=True,
        env={**_env(tmp_path), "NO_COLOR": ""},
        timeout=t(60),
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "\x1b" not in out.stdout  # not a terminal: no colour
    assert "✓ agent_completed arrived" in out.stdout
    assert "quiet window 0.2 s: nothing arrived" in out.stdout
    assert "unknown command /nope" in out.stdout
    path = Path(RECORDING.search(out.stdout).group(1))
    assert "quiet window begins" in [m["label"] for m in read_trace(path).marks]


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_only_for_a_terminal_without_no_color(tmp_path, no_color):
    child, _ = _spawn(tmp_path, *(["--no-color"] if no_color else []), NO_COLOR="")
    child.expect("connection_established")
    child.sendline("/quit")
    out = child.before + _finish(child)
    assert ("\x1b[2m" in out) is not no_color  # dim: housekeeping frames
