"""Every exception ``netra_ws`` raises, under one base class.

The tree::

    NetraWsError
    ├── ConnectFailed             the TCP/TLS connection or the handshake did not complete
    │   ├── ConnectRefused        nothing listens there (or DNS failed)
    │   └── HandshakeRejected     the server answered the upgrade with an HTTP status (401, 403, …)
    ├── AuthenticationFailed      accepted, then AUTH_FAILED and/or close 1008
    ├── SessionClosed             the connection closed while the caller was waiting
    ├── WaitTimeout               nothing matching arrived in time (also the open timeout)
    ├── TraceBudgetReached        a session's trace budget is used up: nothing more is recorded
    ├── FrameParseError           a frame is not a JSON object (recorded raw, never dropped)
    ├── TraceFormatError          a file is not a netra-ws trace
    ├── HarFormatError            a file is not a HAR, or holds no WebSocket connection
    ├── RedactionError            a redaction pattern or secret is unusable, or a file unreadable
    └── InvalidToken              a JWT the server must refuse (expired, bad signature, …)

The four about bad input (FrameParseError, TraceFormatError, HarFormatError and
RedactionError) are ValueErrors too: ``except ValueError`` catches them as well.

Each exception carries the evidence that explains it (status, headers, close code, the
frames received while waiting) so a notebook can show it and a report can quote it.

Two warnings are issued (:func:`warnings.warn`), never raised: the reader goes on and
returns what it could read. They are UserWarnings, outside the tree above::

    UserWarning
    ├── TraceWarning              (netra_ws.trace) lines of a trace were skipped, or no header
    └── HarWarning                (netra_ws.har) a HAR was imported with something to know

tests/test_exports.py checks this drawing against the classes themselves.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationFailed",
    "ConnectFailed",
    "ConnectRefused",
    "FrameParseError",
    "HandshakeRejected",
    "HarFormatError",
    "InvalidToken",
    "NetraWsError",
    "RedactionError",
    "SessionClosed",
    "TraceBudgetReached",
    "TraceFormatError",
    "WaitTimeout",
]


class NetraWsError(Exception):
    """Base class of every error raised by netra_ws; catch this to catch them all."""


class ConnectFailed(NetraWsError):
    """The connection could not be opened. ``url`` has its secrets removed."""

    def __init__(self, message: str, *, url: str = "", cause: BaseException | None = None):
        super().__init__(message)
        self.url = url
        self.cause = cause


class ConnectRefused(ConnectFailed):
    """Nothing accepted the TCP connection: check the host, the port and that the server runs."""


class HandshakeRejected(ConnectFailed):
    """The server refused the WebSocket upgrade with an HTTP status.

    401 usually means "no token", 403 "a token that was not accepted" or, on some servers,
    "none of the offered subprotocols is supported". ``headers`` are redacted.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int,
        headers: dict[str, str] | None = None,
        body: str = "",
    ):
        super().__init__(message, url=url)
        self.status = status
        self.headers = headers or {}
        self.body = body


class AuthenticationFailed(NetraWsError):
    """The server accepted the connection, then refused the credentials.

    The Netra main endpoint sends an ``error_message`` frame with ``error_code`` AUTH_FAILED
    and closes with 1008. ``frame`` is that frame's received record (or None when only the
    close was seen); ``close_code`` and ``close_reason`` are None when no close arrived.
    Supply a valid token (``token=…``) or check the auth form the server expects.
    """

    def __init__(
        self,
        message: str,
        *,
        frame: Any = None,
        close_code: int | None = None,
        close_reason: str | None = None,
    ):
        super().__init__(message)
        self.frame = frame
        self.close_code = close_code
        self.close_reason = close_reason


class SessionClosed(NetraWsError):
    """The connection closed while the caller waited; ``received`` holds what came meanwhile."""

    def __init__(
        self,
        message: str,
        *,
        close_code: int | None = None,
        close_reason: str | None = None,
        received: list[Any] | None = None,
    ):
        super().__init__(message)
        self.close_code = close_code
        self.close_reason = close_reason
        self.received = received or []


class WaitTimeout(NetraWsError):
    """Nothing matching arrived within ``timeout`` seconds.

    ``waited_for`` says what was expected; ``received`` holds the frames that did arrive in
    the meantime (often the explanation: an ``ack``, an error, a heartbeat).
    """

    def __init__(
        self,
        message: str,
        *,
        waited_for: str = "",
        timeout: float | None = None,
        received: list[Any] | None = None,
    ):
        super().__init__(message)
        self.waited_for = waited_for
        self.timeout = timeout
        self.received = received or []


class TraceBudgetReached(NetraWsError):
    """The trace of this session reached its budget (:class:`netra_ws.limits.Limits`).

    Nothing more is recorded: a session closes its connection (code 1001) and its trace
    ends with a mark that says so. To record more, start a new session with a larger
    ``Limits(trace_budget=…)`` (``--trace-budget`` on the command line).
    """

    def __init__(self, message: str, *, budget: int, recorded: int):
        super().__init__(message)
        self.budget = budget
        self.recorded = recorded


class FrameParseError(NetraWsError, ValueError):
    """A frame is not a JSON object. The raw frame is still recorded; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class TraceFormatError(NetraWsError, ValueError):
    """A file is not a netra-ws trace (no readable ``meta`` header, or no records at all)."""


class HarFormatError(NetraWsError, ValueError):
    """A file is not a HAR capture that holds a WebSocket connection.

    Not JSON, no ``log.entries``, or entries but none of them a WebSocket. ``entry_count`` is
    the number of HAR entries when the file was a HAR (None otherwise). Export the HAR again
    with the WebSocket connection in it (DevTools: filter "WS", reconnect with DevTools
    open, then "Save all as HAR with content").
    """

    def __init__(self, message: str, *, entry_count: int | None = None):
        super().__init__(message)
        self.entry_count = entry_count


class RedactionError(NetraWsError, ValueError):
    """Redaction cannot be trusted as configured, or a file cannot be read to redact it.

    An invalid or empty-matching pattern (``Redactor(patterns=…)``, ``$NETRA_WS_REDACT``), a
    secret too short to register, or a file that is not UTF-8 text. Fix the input: nothing
    is written while this is raised.
    """


class InvalidToken(NetraWsError):
    """A token the server must refuse; the message says why (expired, bad signature, …).

    Raised by :func:`netra_ws.tokens.verify_token` (and so by the reference server's auth).
    Mint a valid one with :func:`netra_ws.tokens.mint_token`, with the server's secret.
    """
