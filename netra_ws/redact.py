"""Secret redaction: nothing that authenticates a user may reach a trace, a report or a log.

Pure functions. Apply them at the boundary where data is written (the trace writer, the
report, the logger), never rely on the caller having done it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "redact_headers",
    "redact_subprotocol",
    "redact_text",
    "redact_url",
]

REDACTED = "[REDACTED]"

# Header names whose whole value is a credential.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)

# Three base64url segments, the first starting like a JSON object header ('{"' -> 'eyJ').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Subprotocol entries that carry a token: jwt.<t>, jwt-auth.<t>, bearer.<t>.
_TOKEN_SUBPROTOCOL = re.compile(r"\b(jwt-auth|jwt|bearer)\.[^\s,;\"']+", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact_text(text: str) -> str:
    """Replace JWT-shaped strings, token subprotocols and ``Bearer …`` values inside free text."""
    text = _TOKEN_SUBPROTOCOL.sub(lambda m: f"{m.group(1)}.{REDACTED}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def redact_subprotocol(value: str) -> str:
    """``jwt.<token>`` becomes ``jwt.[REDACTED]``; bare names such as ``jwt-auth`` are kept."""
    return ", ".join(
        _TOKEN_SUBPROTOCOL.sub(lambda m: f"{m.group(1)}.{REDACTED}", part.strip())
        for part in value.split(",")
    )


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return the headers with credential values replaced; names are kept as evidence.

    Repeated headers are joined with ", " (as HTTP allows), so the result is a plain dict
    that serialises to JSON.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in items:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            value = REDACTED
        elif lower == "sec-websocket-protocol":
            value = redact_subprotocol(value)
        else:
            value = redact_text(value)
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def redact_url(url: str) -> str:
    """Drop the query string, the fragment and any ``user:password@`` from a URL.

    The protocol forbids tokens in the query string, but users paste such URLs anyway.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
