"""Where a notebook connects: the embedded reference server, or a real URL and its token.

Every walk-through notebook takes the same parameters: ``TARGET_URL`` (None starts the
embedded reference server), ``TOKEN_ENV`` (the name of the environment variable holding a
JWT for a real target), ``AUTH`` (how to send it) and ``DIALECT``. :func:`open_target` turns
them into a :class:`Target`, so the rest of the notebook reads the same either way::

    target = open_target(TARGET_URL, auth=AUTH, token_env=TOKEN_ENV, dialect=DIALECT)
    async with target.connect(trace=out / "connect.jsonl") as session:
        first = await session.next(timeout=5)
    result = await probe_connection(target.where, token=target.token, auth=AUTH, out=out)
    target.stop()

The token is never shown: it is left out of ``repr`` and of every description, and a token
read from the environment is registered with :func:`netra_ws.redact.register_secret`, so
traces and logs cannot hold it even when it is not JWT-shaped. :meth:`Target.token_claims`
shows what a token says without its signature.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
import pandas as pd

from .client import AUTH_FORMS, connect
from .redact import MIN_SECRET_LENGTH, redact_url, register_secret
from .server import EmbeddedServer

__all__ = ["DEFAULT_TOKEN_ENV", "NOTEBOOK_USER", "Target", "open_target"]

DEFAULT_TOKEN_ENV = "NETRA_WS_TOKEN"
# The user the embedded server's token is minted for; connection_established shows the
# first 8 characters ("notebook...").
NOTEBOOK_USER = "notebook-user"

_SERVER_LOGGER = "netra_ws.server"
_TIME_CLAIMS = ("iat", "exp", "nbf")
_FAULT_COLUMNS = {
    "t_wall": "datetime64[ns, UTC]",
    "kind": "string",
    "fault": "string",
    "run_id": "string",
    "connection_id": "string",
}


class _FaultLog(logging.Handler):
    """Collects the server's ``FAULT <what> run=<run_id> conn=<connection_id>`` log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.rows: list[dict[str, Any]] = []
        self._rows_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not message.startswith("FAULT "):
            return
        what, _, where = message[len("FAULT ") :].partition(" run=")
        run_id, _, connection_id = where.partition(" conn=")
        row = {
            "t_wall": pd.Timestamp(record.created, unit="s", tz="UTC"),
            "kind": what.split(" ", 1)[0],
            "fault": what,
            "run_id": run_id or None,
            "connection_id": connection_id or None,
        }
        with self._rows_lock:
            self.rows.append(row)

    def to_frame(self) -> pd.DataFrame:
        with self._rows_lock:
            rows = list(self.rows)
        return pd.DataFrame(rows, columns=list(_FAULT_COLUMNS)).astype(_FAULT_COLUMNS)


@dataclass(eq=False)
class Target:
    """A notebook's target: the URL, the token (never shown) and the embedded server, if any.

    Make one with :func:`open_target`. ``where`` is what the probes take, ``connect()``
    opens a recorded session with the target's credentials, ``connect_options()`` gives the
    ``token``/``auth`` keywords for :func:`netra_ws.capture.capture_runs`. Call ``stop()``
    (or use ``with``) to stop the embedded server.
    """

    url: str
    auth: str
    token: str | None = field(repr=False)
    token_source: str
    server: EmbeddedServer | None = None
    _faults: _FaultLog | None = field(default=None, repr=False)
    _logger_level: int | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        """True when the target is the embedded reference server started for the notebook."""
        return self.server is not None

    @property
    def where(self) -> str | EmbeddedServer:
        """What the probes take as their target: the embedded server, or the URL."""
        return self.server if self.server is not None else self.url

    @property
    def label(self) -> str:
        """The target in words, without secrets."""
        if self.server is not None:
            config = self.server.config
            return f"embedded {config.dialect} server, auth {config.auth} ({self.url})"
        return redact_url(self.url)

    def connect_options(self, auth: str | None = None) -> dict[str, Any]:
        """``token`` and ``auth`` for :func:`netra_ws.connect` (or ``capture_runs``).

        ``auth`` overrides the target's form; without a token the form is ``"none"``.
        """
        form = auth or self.auth
        if form not in AUTH_FORMS:
            raise ValueError(f"auth must be one of {AUTH_FORMS}, not {form!r}")
        if form == "none" or self.token is None:
            return {"token": None, "auth": "none"}
        return {"token": self.token, "auth": form}

    def connect(self, *, auth: str | None = None, **options: Any) -> connect:
        """Open a recorded session to the target: ``async with target.connect(…) as s:``.

        ``auth`` (``"header"``, ``"subprotocol"``, ``"both"``, ``"none"``) overrides the
        target's form for this connection; ``options`` are those of :func:`netra_ws.connect`
        (``trace``, ``labels``, ``open_timeout``…).
        """
        return connect(self.url, **self.connect_options(auth), **options)

    def token_claims(self) -> pd.DataFrame:
        """What the token says, read WITHOUT checking its signature: one row per claim.

        The signature and the encoded token are never part of it. Times (``iat``, ``exp``,
        ``nbf``) are shown as UTC datetimes. Empty when there is no token; a value that is
        not a JWT gives one row saying so.
        """
        if self.token is None:
            return pd.DataFrame({"claim": [], "value": []}, dtype="string")
        try:
            header = jwt.get_unverified_header(self.token)
            claims = jwt.decode(self.token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            return pd.DataFrame({"claim": ["(not a JWT)"], "value": [type(exc).__name__]})
        rows = [("alg (header)", header.get("alg"))]
        for name, value in claims.items():
            if name in _TIME_CLAIMS and isinstance(value, (int, float)):
                value = datetime.fromtimestamp(value, tz=UTC).isoformat()
            rows.append((name, value))
        return pd.DataFrame(
            {"claim": [r[0] for r in rows], "value": [str(r[1]) for r in rows]}, dtype="string"
        )

    def faults(self) -> pd.DataFrame:
        """The faults the embedded server injected so far, one row per ``FAULT`` log line.

        Columns: t_wall, kind (``stall``, ``drop``…), fault (what the server logged, e.g.
        ``stall agent_thinking#2 2.5s``), run_id, connection_id: join ``run_id`` with a
        frame table to find the run it hit. Empty for a real target. Lines logged by other
        embedded servers of this process while the target is open are included too.
        """
        if self._faults is None:
            return _FaultLog().to_frame()
        return self._faults.to_frame()

    def stop(self) -> None:
        """Stop the embedded server (if any) and its fault log; idempotent."""
        if self._faults is not None:
            logger = logging.getLogger(_SERVER_LOGGER)
            logger.removeHandler(self._faults)
            if self._logger_level is not None:
                logger.setLevel(self._logger_level)
                self._logger_level = None
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Target {self.label}; auth {self.auth}; token: {self.token_source}>"


def open_target(
    url: str | None = None,
    *,
    auth: str = "header",
    token_env: str = DEFAULT_TOKEN_ENV,
    user_id: str = NOTEBOOK_USER,
    server_auth: str = "strict",
    **server_options: Any,
) -> Target:
    """The notebook's target: a real ``url``, or (None) an embedded server started now.

    - ``url`` None: an :class:`~netra_ws.server.EmbeddedServer` starts with ``server_auth``
      (``strict`` by default, like production) and ``server_options`` (``dialect``,
      ``scenario``, ``faults``, ``seed``… — see :class:`~netra_ws.server.ServerConfig`), and
      a token it accepts is minted for ``user_id``. The server's ``FAULT`` log lines are
      collected for :meth:`Target.faults`.
    - a URL: the token is read from the environment variable named ``token_env`` (never
      from the notebook itself, so it cannot end up in a shared notebook). When the
      variable is unset the target connects without a token and says so in its repr.
      ``server_auth`` and ``server_options`` do not apply.

    ``auth`` is how the token is sent: ``"header"`` (``Authorization: Bearer``),
    ``"subprotocol"`` (``jwt.<base64url>``, as the browser does), ``"both"`` or ``"none"``.
    """
    if auth not in AUTH_FORMS:
        raise ValueError(f"auth must be one of {AUTH_FORMS}, not {auth!r}")
    if url is not None:
        token = os.environ.get(token_env) or None
        if token is not None:
            if len(token) >= MIN_SECRET_LENGTH:  # shorter ones would redact ordinary words
                register_secret(token)
            source = f"from ${token_env} (not shown)"
        else:
            source = f"none: ${token_env} is not set, so no token is sent"
        return Target(url=url, auth=auth, token=token, token_source=source)

    faults = _FaultLog()
    logger = logging.getLogger(_SERVER_LOGGER)
    previous = logger.level
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)  # FAULT lines are INFO; restored by stop()
    logger.addHandler(faults)
    try:
        server = EmbeddedServer(auth=server_auth, **server_options).start()
    except BaseException:
        logger.removeHandler(faults)
        logger.setLevel(previous)
        raise
    return Target(
        url=server.url,
        auth=auth,
        token=server.token(user_id),
        token_source=f"minted by the embedded server for user {user_id!r} (not shown)",
        server=server,
        _faults=faults,
        _logger_level=previous,
    )
