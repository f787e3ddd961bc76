"""Who is connecting: token extraction, verification and subprotocol choice. Pure.

Follows PROTOCOL.md §2: the Authorization header first, then ``jwt.`` / ``jwt-auth.`` /
``bearer.`` subprotocol entries; no query-string token. Tokens are checked as the auth
service checks them (:func:`netra_ws.tokens.verify_token`: signature, expiry, token_type,
issuer, audience, environment), so a token the real auth service mints is accepted here
and the refusal reason names the claim that failed.

The auth modes (``ServerConfig(auth=…)``, ``serve --auth``), the backend's permissive levels:

- ``demo``: ``DEMO_MODE`` on, the dev default: everyone is ``demo-user-001``, token or not;
- ``relaxed``: dev with ``DEMO_MODE=0``: a valid token is its ``sub``; no token or a bad
  one becomes a made-up ``relaxed_NNNN`` user;
- ``strict``: production: no or a bad token is refused after the handshake, in the
  server's refusal style (:data:`AUTH_FAILURES`);
- ``reject``: what the staging e2e tests expected: HTTP 401 without a token, 403 with a bad
  one, before any frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from websockets.datastructures import Headers
from websockets.typing import Subprotocol

from ..events import DEMO_USER
from ..tokens import (
    DEFAULT_ENVIRONMENT,
    TOKEN_SUBPROTOCOL_PREFIXES,
    InvalidToken,
    decode_subprotocol_token,
    verify_token,
)

__all__ = [
    "AUTH_FAILURES",
    "AUTH_MODES",
    "DEMO_USER",
    "AuthResult",
    "authenticate",
    "find_token",
    "select_subprotocol",
]

AUTH_MODES = ("demo", "relaxed", "strict", "reject")
# How a strict server refuses after the handshake (PROTOCOL.md §7.4):
# "auth-failed"      the main route as written: flat AUTH_FAILED error, close 1008;
# "connection-error" what 538297d did: the route crashed first, so a status-envelope
#                    CONNECTION_ERROR frame, then close 1011 "main mode error".
AUTH_FAILURES = ("auth-failed", "connection-error")
_BARE_SUBPROTOCOLS = ("jwt-auth", "jwt", "bearer", "e2e-testing")
_relaxed_ids = itertools.count(1)


@dataclass(frozen=True)
class AuthResult:
    """The outcome for one connection. ``token`` is None when none was presented."""

    ok: bool
    user_id: str
    source: str  # "header", "subprotocol" or "none"
    reason: str = ""
    token: str | None = None


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def find_token(headers: Headers, offered: Sequence[str]) -> tuple[str | None, str]:
    """The token a connection presents and where it came from (``header``,
    ``subprotocol`` or ``none``), in the backend's order of precedence."""
    token = _bearer(headers)
    if token is not None:
        return token, "header"
    token = decode_subprotocol_token(offered)
    return token, "none" if token is None else "subprotocol"


def authenticate(
    headers: Headers,
    offered: Sequence[str],
    *,
    mode: str,
    secret: str,
    environment: str = DEFAULT_ENVIRONMENT,
) -> AuthResult:
    """Decide who the connection belongs to under ``mode`` (one of :data:`AUTH_MODES`).

    ``environment`` is the server's: a token is valid only when its ``env`` claim names it.
    """
    token, source = find_token(headers, offered)
    if mode == "demo":
        return AuthResult(True, DEMO_USER, source, "demo mode: everyone is the demo user", token)
    if token is None:
        reason = "no token (Authorization header or jwt.<token> subprotocol)"
        if mode == "relaxed":
            return AuthResult(True, f"relaxed_{next(_relaxed_ids):04d}", source, reason, None)
        return AuthResult(False, "", source, reason, None)
    try:
        claims = verify_token(token, secret=secret, environment=environment)
    except InvalidToken as exc:
        if mode == "relaxed":
            return AuthResult(True, f"relaxed_{next(_relaxed_ids):04d}", source, str(exc), token)
        return AuthResult(False, "", source, str(exc), token)
    return AuthResult(True, str(claims["sub"]), source, "valid token", token)


def select_subprotocol(offered: Sequence[str]) -> Subprotocol | None:
    """The entry the server echoes: the first token-bearing one, else a bare known name.

    None means "nothing acceptable"; the caller refuses the handshake when something was
    offered and None came back.
    """
    for entry in offered:
        if entry.lower().startswith(TOKEN_SUBPROTOCOL_PREFIXES):
            return Subprotocol(entry)
    for entry in offered:
        if entry.lower() in _BARE_SUBPROTOCOLS:
            return Subprotocol(entry)
    return None
