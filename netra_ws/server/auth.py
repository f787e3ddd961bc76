"""Who is connecting: token extraction, verification and subprotocol choice. Pure.

Follows PROTOCOL.md §2: the Authorization header first, then ``jwt.`` / ``jwt-auth.`` /
``bearer.`` subprotocol entries; no query-string token.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from websockets.datastructures import Headers
from websockets.typing import Subprotocol

from ..events import DEMO_USER
from ..tokens import (
    TOKEN_SUBPROTOCOL_PREFIXES,
    InvalidToken,
    decode_subprotocol_token,
    verify_token,
)

__all__ = ["AUTH_MODES", "DEMO_USER", "AuthResult", "authenticate", "select_subprotocol"]

AUTH_MODES = ("demo", "relaxed", "strict", "reject")
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


def authenticate(headers: Headers, offered: Sequence[str], *, mode: str, secret: str) -> AuthResult:
    """Decide who the connection belongs to under ``mode`` (one of :data:`AUTH_MODES`)."""
    token, source = _bearer(headers), "header"
    if token is None:
        token, source = decode_subprotocol_token(offered), "subprotocol"
    if token is None:
        source = "none"
    if mode == "demo":
        return AuthResult(True, DEMO_USER, source, "demo mode: everyone is the demo user", token)
    if token is None:
        reason = "no token (Authorization header or jwt.<token> subprotocol)"
        if mode == "relaxed":
            return AuthResult(True, f"relaxed_{next(_relaxed_ids):04d}", source, reason, None)
        return AuthResult(False, "", source, reason, None)
    try:
        claims = verify_token(token, secret=secret)
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
