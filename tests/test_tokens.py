"""Tokens interoperate with the backend's auth service (PROTOCOL.md §2), both ways.

``netra-ws token`` mints every claim the auth service mints; a token built by hand with the
auth service's claims (PyJWT alone, same secret) is accepted by ``serve --auth strict``; and
each claim the auth service validates is refused with its own reason, in the server's log
and in the ``bridge`` dialect's AUTH_FAILED message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
from conftest import run, serve_cli, t
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from netra_ws.tokens import AUDIENCE, ISSUER, InvalidToken, mint_token, verify_token

SECRET = "token-interop-secret-9f8e7d6c5b4a3210"


def _backend_token(**overrides: Any) -> str:
    """What the auth service mints, built with PyJWT directly (never with mint_token)."""
    now = int(time.time())
    claims = {
        "sub": "backend-user-7",
        "iat": now,
        "exp": now + 600,
        "token_type": "access",
        "type": "access",
        "iss": "netra-auth-service",
        "aud": "netra-platform",
        "jti": "0f0e0d0c",
        "env": "development",
        "svc_id": "netra-auth-service",
        "email": "backend-user-7@example.com",
        "permissions": ["read"],
    }
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, "HS256")


def test_the_token_command_mints_every_claim_of_the_auth_service():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netra_ws",
            "token",
            "--user",
            "carol",
            "--secret",
            SECRET,
            "--env",
            "staging",
            "--claim",
            "email=carol@example.com",
            "--claim",
            'permissions=["read", "write"]',
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert claims["sub"] == "carol"
    assert claims["token_type"] == claims["type"] == "access"
    assert claims["iss"] == ISSUER == "netra-auth-service"
    assert claims["aud"] == AUDIENCE == "netra-platform"
    assert claims["env"] == "staging"
    assert isinstance(claims["jti"], str) and claims["jti"]
    assert isinstance(claims["svc_id"], str) and claims["svc_id"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["email"] == "carol@example.com"
    assert claims["permissions"] == ["read", "write"]
    # And the verifier of a staging server takes it; a development server does not.
    assert verify_token(token, secret=SECRET, environment="staging")["sub"] == "carol"
    with pytest.raises(InvalidToken, match=r"wrong environment \(env\): 'staging'"):
        verify_token(token, secret=SECRET)


def test_email_and_permissions_only_when_given():
    claims = jwt.decode(mint_token("u", secret=SECRET), options={"verify_signature": False})
    assert "email" not in claims and "permissions" not in claims


def test_a_backend_token_verifies():
    assert verify_token(_backend_token(), secret=SECRET)["sub"] == "backend-user-7"


# case -> (how the token differs from the auth service's, the reason the server gives)
REFUSALS = {
    "only type": ({"token_type": None}, "JWT TYPE MISMATCH (token_type): no token_type claim"),
    "refresh": ({"token_type": "refresh", "type": "refresh"}, "JWT TYPE MISMATCH (token_type)"),
    "issuer": ({"iss": "evil-auth-service"}, "wrong issuer (iss): 'evil-auth-service'"),
    "audience": ({"aud": "someone-else"}, "wrong audience (aud): 'someone-else'"),
    "environment": ({"env": "production"}, "wrong environment (env): 'production'"),
    "expired": ({"exp": int(time.time()) - 60}, "token expired (exp)"),
    "no subject": ({"sub": None}, "missing claim (sub)"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_verify_token_names_the_claim_that_failed(case):
    overrides, reason = REFUSALS[case]
    with pytest.raises(InvalidToken) as info:
        verify_token(_backend_token(**overrides), secret=SECRET)
    assert reason in str(info.value)


def test_alg_none_and_other_secrets_are_refused():
    claims = jwt.decode(_backend_token(), options={"verify_signature": False})
    with pytest.raises(InvalidToken, match=r"algorithm refused \(alg\): 'none'"):
        verify_token(jwt.encode(claims, None, algorithm="none"), secret=SECRET)
    with pytest.raises(InvalidToken, match="bad signature"):
        verify_token(_backend_token(), secret="a-different-secret-0123456789abcd")


async def _attempt(url: str, token: str) -> tuple[list[dict[str, Any]], int | None]:
    """Connect with ``token``, send a user_message, return the frames and the close code."""
    frames: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with connect(url, additional_headers=headers, open_timeout=t(10)) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"type": "user_message", "message": "hello"}))
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(t(5)):
                while True:
                    frame = json.loads(await ws.recv())
                    frames.append(frame)
                    if frame.get("type") == "agent_completed":
                        break
        return frames, ws.close_code


def test_serve_strict_accepts_the_auth_services_token_and_refuses_each_bad_claim(tmp_path):
    with serve_cli(tmp_path, "--auth", "strict", "--secret", SECRET) as (url, server_log):
        frames, code = run(_attempt(url, _backend_token()))
        assert frames[0]["data"]["user_id"] == "backend-..."
        assert frames[-1]["type"] == "agent_completed" and code is None
        for case, (overrides, reason) in REFUSALS.items():
            frames, code = run(_attempt(url, _backend_token(**overrides)))
            assert [f.get("error_code") for f in frames] == ["AUTH_FAILED"], case
            assert reason in frames[0]["error_message"], (case, frames[0]["error_message"])
            assert code == 1008
        log = server_log()
    for case, (_, reason) in REFUSALS.items():
        assert f"auth failed after accept: {reason}" in log, (case, log)
