"""No token, signing secret or Authorization value in anything the kit writes.

The demo and the probe CLI run in subprocesses with ``NETRA_WS_JWT_SECRET`` set to a fresh
random secret (the embedded server signs with it) and a token minted with it in
``NETRA_WS_TOKEN``; every file under their output folders and their stdout/stderr are
scanned for the token, its signature, its base64url subprotocol form, the secret, and
anything shaped like a JWT (tokens minted during the run are not known to the test).
Debug logging of the client and the server is scanned too. (The fault tests scan their
own traces and server logs: tests/test_reliability_faults.py.)
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run, t
from helpers.reliability import scan_for_secrets, secret_forms

from netra_ws import connect, read_trace
from netra_ws.errors import AuthenticationFailed
from netra_ws.tokens import SECRET_ENV, encode_subprotocol_token, mint_token

USER = "secret-scan-user"


@pytest.fixture
def credentials() -> tuple[str, str, dict[str, str]]:
    """(token, secret, the environment the subprocess gets)."""
    secret = secrets.token_urlsafe(32)
    token = mint_token(USER, secret=secret)
    env = {**os.environ, SECRET_ENV: secret, "NETRA_WS_TOKEN": token}
    return token, secret, env


def _cli(args: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netra_ws", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _traces_using_a_token(folder: Path) -> list[Path]:
    """Traces whose connection sent a token (their ``open`` record names the auth form)."""
    found = []
    for path in sorted(folder.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record.get("kind") == "open" and record.get("auth") in (
                "header",
                "subprotocol",
                "both",
            ):
                found.append(path)
                break
    return found


def test_the_scan_finds_every_form_it_looks_for(tmp_path):
    # The scans below pass only by finding nothing; this shows they can find something.
    token = mint_token(USER, secret="a-secret-for-the-control-case-0123")
    forms = secret_forms(token, "a-secret-for-the-control-case-0123")
    assert set(forms) == {
        "token",
        "token signature",
        "token as base64url subprotocol",
        "signing secret",
    }
    for name, value in forms.items():
        (tmp_path / f"{len(name)}.txt").write_text(f"…{value}…", encoding="utf-8")
    scanned, leaks = scan_for_secrets([tmp_path], {"log": f"Bearer {token}"}, forms, any_jwt=True)
    assert scanned == len(forms) + 1
    assert {leak.split(" in ")[0] for leak in leaks} == {*forms, "a JWT", "a base64url JWT"}
    other = mint_token("someone-else")  # unknown to the scan, but JWT-shaped
    _, leaks = scan_for_secrets([], {"x": encode_subprotocol_token(other)}, {}, any_jwt=True)
    assert leaks and leaks[0].startswith("a base64url JWT in x")
    # 'ZXlK' and twenty letters in a PNG's base64 (a notebook chart) are not a token.
    chart = "iVBORw0KGgoAAAANSUhEUgZXlKSgqGDRuGxYsX63Sc4sWLYabc+/9k="
    assert scan_for_secrets([], {"chart": chart}, {}, any_jwt=True)[1] == []


def test_debug_logs_of_client_and_server_hold_no_token(make_server, caplog):
    caplog.set_level(logging.DEBUG)  # everything, websockets' handshake headers included
    secret = secrets.token_urlsafe(32)
    srv = make_server(auth="strict", secret=secret)
    token = srv.token(USER)
    bad = mint_token(USER, secret="not-the-servers-secret-at-all-0123")

    async def scenario():
        for form in ("header", "subprotocol", "both"):
            async with connect(srv.url, token=token, auth=form) as session:
                await session.expect("connection_established", timeout=t(5))
        async with connect(f"{srv.url}?token={token}", token=bad) as session:
            with pytest.raises(AuthenticationFailed):
                await session.next(timeout=t(5))

    run(scenario())
    text = caplog.text
    # The handshake headers were logged, on both sides, with their values redacted.
    assert "> Authorization: Bearer [REDACTED]" in text  # the client's
    assert "< Authorization: Bearer [REDACTED]" in text  # the server's
    assert "jwt.[REDACTED]" in text
    forms = {**secret_forms(token, secret), **{f"bad {k}": v for k, v in secret_forms(bad).items()}}
    scanned, leaks = scan_for_secrets([], {"debug log": text}, forms, any_jwt=True)
    assert scanned == 1 and leaks == []


def test_the_probe_cli_writes_no_secret(tmp_path, credentials):
    token, secret, env = credentials
    out = tmp_path / "out"
    done = _cli(["probe", "--out", str(out), "--quiet", "0.2", "--timeout", "10"], env, t(120))
    assert done.returncode == 0, done.stdout + done.stderr
    # The probes really used the token from $NETRA_WS_TOKEN (the server shows its user).
    used = _traces_using_a_token(out)
    assert used
    welcome = next(
        f
        for path in used
        for f in read_trace(path).frames
        if f.get("event") == "connection_established"
    )
    assert json.loads(welcome["data"])["data"]["user_id"] == USER[:8] + "..."
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    scanned, leaks = scan_for_secrets([out], texts, secret_forms(token, secret), any_jwt=True)
    assert scanned >= 8 and leaks == []


@pytest.mark.slow
def test_the_demo_writes_no_secret(tmp_path, credentials):
    token, secret, env = credentials
    out = tmp_path / "demo"
    done = _cli(["demo", "--out", str(out)], env, t(600))
    # Whatever its verdict, the demo ran its connections with tokens (the embedded server
    # signs with $NETRA_WS_JWT_SECRET): there was something to leak.
    assert _traces_using_a_token(out), done.stdout + done.stderr
    texts = {"stdout": done.stdout, "stderr": done.stderr}
    scanned, leaks = scan_for_secrets([out], texts, secret_forms(token, secret), any_jwt=True)
    assert scanned >= 10 and leaks == [], leaks
