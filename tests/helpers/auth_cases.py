"""The bad credentials tests/test_reliability_auth.py tries, in each auth mode and form.

docs/RELIABILITY.md counts them (:func:`case_ids`; tests/test_reliability_figures.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from netra_ws.tokens import ISSUER, mint_token

SECRET = "reliability-auth-secret-0f9e8d7c6b5a"
OTHER_SECRET = "some-other-services-secret-1a2b3c4d"
USER = "auth-case-user"


def _alg_none() -> str:
    now = int(time.time())
    claims = {"sub": USER, "iat": now, "exp": now + 600, "iss": ISSUER, "type": "access"}
    return jwt.encode(claims, None, algorithm="none")


# name -> a function making the credential (None: no token at all).
CASES: dict[str, Callable[[], str | None]] = {
    "no token": lambda: None,
    "garbage": lambda: "this-is-not-a-jwt-but-it-is-long-enough",
    "expired": lambda: mint_token(USER, secret=SECRET, expires_in=-60),
    "not yet valid (nbf)": lambda: mint_token(USER, secret=SECRET, not_before_in=3600),
    "bad signature": lambda: mint_token(USER, secret=OTHER_SECRET),
    "alg none": _alg_none,
    "HS512 instead of HS256": lambda: mint_token(USER, secret=SECRET * 2, algorithm="HS512"),
    "wrong issuer": lambda: mint_token(USER, secret=SECRET, issuer="evil-auth-service"),
    "wrong type (refresh)": lambda: mint_token(USER, secret=SECRET, token_type="refresh"),
    "no subject": lambda: mint_token(USER, secret=SECRET, sub=None),
    "oversize header (64 KiB)": lambda: "x" * 65536,
}
FORMS = ("header", "subprotocol")
MODES = ("strict", "reject")


def case_ids() -> list[tuple[str, str, str]]:
    """(mode, case, form) of every refusal tried; docs/RELIABILITY.md counts them."""
    ids = [
        (mode, case, form)
        for mode in MODES
        for case in CASES
        for form in (("none",) if case == "no token" else FORMS)
    ]
    ids += [(mode, "token in the query string", "query") for mode in MODES]
    return ids
