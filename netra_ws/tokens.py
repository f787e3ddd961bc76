"""JWTs the way the Netra auth service mints and validates them (PROTOCOL.md §2). Pure.

Tokens are HS256, signed with a shared secret. The development secret below is public on
purpose: it only ever signs tokens for the embedded reference server. Point both sides at
another one with ``NETRA_WS_JWT_SECRET`` (or ``--secret``) when a real server is involved.

What the auth service of the #937 commit mints, and so what :func:`mint_token` mints::

    sub, iat, exp, token_type:"access", type:"access", iss:"netra-auth-service",
    aud:"netra-platform", jti, env:<environment name>, svc_id  (+ email, permissions when given)

and what it validates, so what :func:`verify_token` validates: the signature (HS256 only),
expiry, ``token_type == "access"`` (a token with only ``type`` is refused: "JWT TYPE
MISMATCH"), the issuer, the audience and the environment. Every refusal names the claim
that failed, e.g. ``wrong audience (aud): 'x', expected 'netra-platform'``.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jwt

from .errors import InvalidToken

__all__ = [
    "AUDIENCE",
    "DEFAULT_ENVIRONMENT",
    "DEV_SECRET",
    "ENVIRONMENTS",
    "ISSUER",
    "SECRET_ENV",
    "SERVICE_ID",
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
AUDIENCE = "netra-platform"  # the auth service's audience for access tokens
# The environment names the backend runs under; a token carries one in ``env`` and is only
# valid in that environment.
ENVIRONMENTS = ("development", "test", "staging", "production")
DEFAULT_ENVIRONMENT = "development"
# ``svc_id``: which service minted the token. The auth service writes its own id there and
# does not check it on the way back; any fixed value interoperates.
SERVICE_ID = "netra-auth-service"
TOKEN_SUBPROTOCOL_PREFIXES = ("jwt.", "jwt-auth.", "bearer.")
# The backend ignores token-bearing entries shorter than this (PROTOCOL.md §2).
_MIN_TOKEN_LENGTH = 10
_ALGORITHM = "HS256"


def resolve_secret(secret: str | None = None) -> str:
    """The signing secret: the argument, else ``$NETRA_WS_JWT_SECRET``, else the dev secret."""
    return secret or os.environ.get(SECRET_ENV) or DEV_SECRET


def mint_token(
    user_id: str,
    *,
    secret: str | None = None,
    expires_in: float = 3600.0,
    not_before_in: float | None = None,
    env: str = DEFAULT_ENVIRONMENT,
    email: str | None = None,
    permissions: Sequence[str] | None = None,
    issuer: str = ISSUER,
    audience: str = AUDIENCE,
    token_type: str = "access",
    svc_id: str = SERVICE_ID,
    algorithm: str = _ALGORITHM,
    extra_claims: Mapping[str, Any] | None = None,
    **claims: Any,
) -> str:
    """Mint a token with every claim the auth service mints (module docstring).

    ``env`` must match the environment of the server that will read it (the reference
    server's ``ServerConfig(environment=…)``, default ``"development"``). ``token_type``
    sets both ``token_type`` and ``type``. ``email`` and ``permissions`` are added only when
    given, as the auth service does. A negative ``expires_in`` gives an already expired
    token, for negative tests. ``extra_claims`` and then ``claims`` are added last and may
    override any standard claim; a value of None removes that claim (``sub=None``: a token
    without a subject). ``extra_claims`` takes names that are not Python identifiers, and
    is what ``netra-ws token --claim KEY=VALUE`` fills. The backend's own e2e helper minted
    only ``type``; ``extra_claims={"token_type": None}`` makes such a token, which
    :func:`verify_token` refuses ("JWT TYPE MISMATCH") as the auth service did.
    """
    now = int(time.time())
    body: dict[str, Any] = {
        "sub": user_id,
        "iat": now,
        "exp": now + int(expires_in),
        "token_type": token_type,
        "type": token_type,
        "iss": issuer,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "env": env,
        "svc_id": svc_id,
    }
    if email is not None:
        body["email"] = email
    if permissions is not None:
        body["permissions"] = list(permissions)
    if not_before_in is not None:
        body["nbf"] = now + int(not_before_in)
    body.update(extra_claims or {})
    body.update(claims)
    body = {name: value for name, value in body.items() if value is not None}
    return jwt.encode(body, resolve_secret(secret), algorithm=algorithm)


def verify_token(
    token: str, *, secret: str | None = None, environment: str = DEFAULT_ENVIRONMENT
) -> dict[str, Any]:
    """Return the claims of a token the auth service accepts, or raise :class:`InvalidToken`.

    Checks, as the auth service does: HS256 only (``alg: none`` and every other algorithm
    refused), the signature, ``exp`` (and ``nbf`` when present), ``sub``, ``token_type ==
    "access"``, ``iss``, ``aud`` and ``env == environment``. The message names the claim
    that failed, so the caller can log it or put it in the refusal frame as it is.

    Example::

        >>> verify_token(mint_token("alice"))["sub"]
        'alice'
        >>> verify_token(mint_token("alice", expires_in=-60))
        Traceback (most recent call last):
        ...
        netra_ws.errors.InvalidToken: token expired (exp)
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"not a JWT: {exc}") from exc
    if header.get("alg") != _ALGORITHM:
        raise InvalidToken(f"algorithm refused (alg): {header.get('alg')!r}, expected 'HS256'")
    try:
        claims = jwt.decode(
            token,
            resolve_secret(secret),
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            audience=AUDIENCE,
            options={"require": ["exp", "iat", "sub", "iss", "aud"]},
        )
    except jwt.InvalidSignatureError as exc:
        raise InvalidToken("bad signature (signed with another secret)") from exc
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired (exp)") from exc
    except jwt.ImmatureSignatureError as exc:
        raise InvalidToken("token not yet valid (nbf)") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"missing claim ({exc.claim})") from exc
    except jwt.InvalidIssuerError as exc:
        iss = _unverified(token).get("iss")
        raise InvalidToken(f"wrong issuer (iss): {iss!r}, expected {ISSUER!r}") from exc
    except jwt.InvalidAudienceError as exc:
        aud = _unverified(token).get("aud")
        raise InvalidToken(f"wrong audience (aud): {aud!r}, expected {AUDIENCE!r}") from exc
    except jwt.InvalidTokenError as exc:
        raise InvalidToken(f"invalid token: {exc}") from exc
    token_type = claims.get("token_type")
    if token_type is None:
        only = f"; only type={claims['type']!r} is set" if "type" in claims else ""
        raise InvalidToken(f"JWT TYPE MISMATCH (token_type): no token_type claim{only}")
    if token_type != "access":
        raise InvalidToken(f"JWT TYPE MISMATCH (token_type): {token_type!r}, expected 'access'")
    # Stricter than needed, on purpose: a token whose two type claims disagree is refused
    # rather than trusted on the one the auth service reads.
    if "type" in claims and claims["type"] != token_type:
        raise InvalidToken(
            f"JWT TYPE MISMATCH (type): {claims['type']!r} contradicts token_type {token_type!r}"
        )
    if claims.get("env") != environment:
        raise InvalidToken(
            f"wrong environment (env): {claims.get('env')!r}, expected {environment!r}"
        )
    return claims


def _unverified(token: str) -> dict[str, Any]:
    """The claims without any check: only to say in an error message what the token said."""
    return jwt.decode(token, options={"verify_signature": False})


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
