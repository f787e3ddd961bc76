"""Test JWTs the way the Netra backend issues and reads them (PROTOCOL.md §2). Pure.

Tokens are HS256, signed with a shared secret. The development secret below is public on
purpose: it only ever signs tokens for the embedded reference server. Point both sides at
another one with ``NETRA_WS_JWT_SECRET`` (or ``--secret``) when a real server is involved.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import jwt

from .errors import InvalidToken

__all__ = [
    "DEV_SECRET",
    "ISSUER",
    "SECRET_ENV",
    "TOKEN_SUBPROTOCOL_PREFIXES",
    "InvalidToken",
    "decode_subprotocol_token",
    "encode_subprotocol_token",
    "mint_token",
    "resolve_secret",
    "verify_token",
]

SECRET_ENV = "NETRA_WS_JWT_SECRET"
DEV_SECRET = "netra-ws-development-secret-not-for-production"
ISSUER = "netra-auth-service"
TOKEN_SUBPROTOCOL_PREFIXES = ("jwt.", "jwt-auth.", "bearer.")
# The backend ignores token-bearing entries shorter than this (PROTOCOL.md §2).
_MIN_TOKEN_LENGTH = 10


def resolve_secret(secret: str | None = None) -> str:
    """The signing secret: the argument, else ``$NETRA_WS_JWT_SECRET``, else the dev secret."""
    return secret or os.environ.get(SECRET_ENV) or DEV_SECRET


def mint_token(
    user_id: str,
    *,
    secret: str | None = None,
    expires_in: float = 3600.0,
    not_before_in: float | None = None,
    email: str | None = None,
    permissions: Sequence[str] = ("read", "write"),
    issuer: str = ISSUER,
    token_type: str = "access",
    algorithm: str = "HS256",
    **claims: Any,
) -> str:
    """Mint a test token with the claims the backend's test helpers use.

    A negative ``expires_in`` gives an already expired token, for negative tests.
    ``claims`` are added last and may override any standard claim.
    """
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": user_id,
        "email": email or f"{user_id}@example.com",
        "permissions": list(permissions),
        "iat": now,
        "exp": now + int(expires_in),
        "type": token_type,
        "iss": issuer,
        "jti": uuid.uuid4().hex,
    }
    if not_before_in is not None:
        body["nbf"] = now + int(not_before_in)
    body.update(claims)
    return jwt.encode(body, resolve_secret(secret), algorithm=algorithm)


def verify_token(token: str, *, secret: str | None = None) -> dict[str, Any]:
    """Return the claims of a valid access token, or raise :class:`InvalidToken`.

    Strict on purpose: HS256 only (so ``alg: none`` fails), ``exp``/``iat``/``sub`` required,
    issuer and ``type: access`` checked.

    Example::

        >>> verify_token(mint_token("alice"))["sub"]
        'alice'
        >>> verify_token(mint_token("alice", expires_in=-60))
        Traceback (most recent call last):
        ...
        netra_ws.errors.InvalidToken: token expired
    """
    try:
        claims = jwt.decode(
            token,
            resolve_secret(secret),
            algorithms=["HS256"],
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("token not yet valid") from exc
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("bad signature") from exc
    except jwt.InvalidIssuerError as exc:
        raise InvalidToken("wrong issuer") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"invalid token: {exc}") from exc
    if claims.get("type") != "access":
        raise InvalidToken(f"wrong token type {claims.get('type')!r}, expected 'access'")
    return claims


def encode_subprotocol_token(token: str, prefix: str = "jwt.") -> str:
    """``jwt.<base64url(token)>``, the browser frontend's form (padding stripped).

    Example::

        >>> encode_subprotocol_token("header.payload.signature")
        'jwt.aGVhZGVyLnBheWxvYWQuc2lnbmF0dXJl'
    """
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    return f"{prefix}{encoded}"


def decode_subprotocol_token(entries: Iterable[str]) -> str | None:
    """The token carried by the first token-bearing subprotocol entry, or None.

    ``<t>`` may be the raw JWT or its base64url encoding; both are accepted as the backend
    does. Entries whose ``<t>`` is shorter than 10 characters count as no token.

    Example::

        >>> decode_subprotocol_token(["chat", "jwt.aGVhZGVyLnBheWxvYWQuc2lnbmF0dXJl"])
        'header.payload.signature'
        >>> decode_subprotocol_token(["jwt.short"]) is None
        True
    """
    for entry in entries:
        entry = entry.strip()
        prefix = next((p for p in TOKEN_SUBPROTOCOL_PREFIXES if entry.lower().startswith(p)), None)
        if prefix is None:
            continue
        value = entry[len(prefix) :]
        if len(value) < _MIN_TOKEN_LENGTH:
            continue
        if value.count(".") == 2:
            return value
        try:
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return value  # not base64: let verification explain why it is refused
    return None
