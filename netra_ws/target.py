"""The one answer to "which target?": the embedded reference server, or a URL and its token.

Everything that connects somewhere (the notebooks, :func:`netra_ws.capture.capture_runs`,
the contract suite, the CLI and the probes) turns what it was given into a :class:`Target`
with :func:`resolve_target`, so these rules live here and nowhere else:

- ``None``: an :class:`~netra_ws.server.EmbeddedServer` starts now (``dialect``,
  ``server_auth`` — ``strict`` by default, like production — and ``server_options``). The
  target owns it: ``stop()`` (or leaving ``with``) stops it. Its ``FAULT`` log lines are
  collected for :meth:`Target.faults`.
- an :class:`~netra_ws.server.EmbeddedServer` you started: used as is, never stopped here.
- a URL.
- a :class:`Target`: a borrowed view of it (``stop()`` leaves its server running), with
  its token and auth form replaced by those given.

The token, for any of them: ``token`` when given; else the value of the environment
variable named ``token_env`` when it is set (a credential never typed into a notebook or a
command line); else, for an embedded server, one it mints for ``user_id``; else none — the
target connects without a token and says so (``token_source``). ``auth`` is how the token
is sent: ``"header"`` (``Authorization: Bearer``, the default), ``"subprotocol"``
(``jwt.<base64url>``, as the browser does), ``"both"`` or ``"none"``; a form outside
:data:`~netra_ws.client.AUTH_FORMS` is a ``ValueError`` here, before anything starts.
``dialect``, ``server_auth`` and ``server_options`` apply only to ``None``.

In a notebook, :func:`open_target` is the resolver with the notebooks' parameters and
defaults (``$NETRA_WS_TOKEN`` for a real URL only, the user ``notebook-user``)::

    target = open_target(TARGET_URL, auth=AUTH, token_env=TOKEN_ENV, dialect=DIALECT)
    async with target.connect(trace=out / "connect.jsonl") as session:
        first = await session.next(timeout=5)
    runs = capture_runs(target, 20)                     # the same target, its token
    result = await probe_connection(target.where, token=target.token, auth=AUTH, out=out)
    target.stop()

In code::

    with resolve_target(url, token_env="NETRA_WS_TOKEN", user_id="me") as target:
        target.label            # "embedded bridge server, auth strict (ws://…)" or the URL
        target.labels           # trace labels: {"dialect": …, "server_auth": …} or {}
        target.connect_options()    # token=/auth= for netra_ws.connect (auth "none" without)
        target.expired_token(secret)    # for the auth matrix; None when it cannot be minted

The token is never shown: it is left out of ``repr`` and of every description, and a token
read from the environment or given by the caller is registered with
:func:`netra_ws.redact.register_secret`, so traces and logs cannot hold it even when it is
not JWT-shaped. :meth:`Target.token_claims` shows what a token says without its signature.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import jwt
import pandas as pd

from .client import AUTH_FORMS, connect
from .limits import DEFAULT_LIMITS, Limits
from .redact import MIN_SECRET_LENGTH, register_secret
from .server import EmbeddedServer
from .tokens import mint_token
from .verdicts import target_words

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "DEFAULT_USER",
    "NOTEBOOK_USER",
    "Target",
    "open_target",
    "resolve_target",
]

DEFAULT_TOKEN_ENV = "NETRA_WS_TOKEN"
# The user an embedded server's token is minted for unless the caller names one;
# connection_established shows the first 8 characters ("netra-ws...").
DEFAULT_USER = "netra-ws-user"
# The notebooks' user: connection_established shows "notebook...".
NOTEBOOK_USER = "notebook-user"
# How far in the past an expired token expired: beyond any clock-skew leeway.
_EXPIRED_BY_S = 60.0

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
    """Collects the server's ``FAULT <what> run=<run_id> conn=<connection_id>`` log lines.

    ``attach()`` / ``detach()`` hook it to the server logger. FAULT lines are INFO, so the
    first attached log lowers the logger's level to INFO when it is higher, and the last one
    detached puts it back: targets may overlap in any order without leaving the level
    changed or hiding each other's lines.
    """

    _attached: ClassVar[list[_FaultLog]] = []  # guarded by _attach_lock
    _level_before: ClassVar[int | None] = None  # set when the first attach lowered it
    _attach_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.rows: list[dict[str, Any]] = []
        self._rows_lock = threading.Lock()

    def attach(self) -> None:
        logger = logging.getLogger(_SERVER_LOGGER)
        with _FaultLog._attach_lock:
            if not _FaultLog._attached and not logger.isEnabledFor(logging.INFO):
                _FaultLog._level_before = logger.level
                logger.setLevel(logging.INFO)
            _FaultLog._attached.append(self)
            logger.addHandler(self)

    def detach(self) -> None:
        logger = logging.getLogger(_SERVER_LOGGER)
        with _FaultLog._attach_lock:
            if self not in _FaultLog._attached:
                return
            _FaultLog._attached.remove(self)
            logger.removeHandler(self)
            if not _FaultLog._attached and _FaultLog._level_before is not None:
                logger.setLevel(_FaultLog._level_before)
                _FaultLog._level_before = None

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
    """Where to connect: the URL, the token (never shown) and the embedded server, if any.

    Make one with :func:`resolve_target` (or :func:`open_target` in a notebook). ``where``
    is what the probes take, ``connect()`` opens a recorded session with the target's
    credentials, ``connect_options()`` gives the ``token``/``auth`` keywords for
    :func:`netra_ws.connect`. ``label`` names the target in words, ``labels`` for traces.
    Call ``stop()`` (or use ``with``): it stops the embedded server only when this target
    started it (``owned``).
    """

    url: str
    auth: str
    token: str | None = field(repr=False)
    token_source: str
    server: EmbeddedServer | None = None
    owned: bool = False
    user_id: str = DEFAULT_USER
    # How far the kit trusts the server: redirects (same origin only) and what it records.
    follow_redirects: bool = False
    limits: Limits = DEFAULT_LIMITS
    _faults: _FaultLog | None = field(default=None, repr=False)

    @property
    def embedded(self) -> bool:
        """True when the target is an embedded reference server (started here or given)."""
        return self.server is not None

    @property
    def where(self) -> str | EmbeddedServer:
        """What the probes take as their target: the embedded server, or the URL."""
        return self.server if self.server is not None else self.url

    @property
    def label(self) -> str:
        """The target in words, without secrets: the embedded server's dialect and auth
        mode, or the URL with its credentials removed."""
        if self.server is None:
            return target_words(self.url)
        return target_words(self.url, self.server.config.dialect, self.server.config.auth)

    @property
    def labels(self) -> dict[str, Any]:
        """Trace labels naming the embedded server's dialect and auth mode, and the faults it
        injects (``faults``, when any), none for a URL: so a report built from the traces
        alone can say what was met."""
        if self.server is None:
            return {}
        # The keywords of verdicts.target_words, which reads them back from the trace.
        labels: dict[str, Any] = {
            "dialect": self.server.config.dialect,
            "server_auth": self.server.config.auth,
        }
        # Faults injected on purpose: a report must not take them for the server's own.
        faults = [fault.description for fault in self.server.config.fault_plan]
        if faults:
            labels["faults"] = faults
        return labels

    def connect_options(self, auth: str | None = None) -> dict[str, Any]:
        """``token``, ``auth``, ``follow_redirects`` and ``limits`` for
        :func:`netra_ws.connect` (or ``capture_runs``).

        ``auth`` overrides the target's form; without a token the form is ``"none"`` (an
        auth form with no token to send would be refused by ``connect``).
        """
        form = _auth_form(auth) if auth is not None else self.auth
        trust = {"follow_redirects": self.follow_redirects, "limits": self.limits}
        if form == "none" or self.token is None:
            return {"token": None, "auth": "none", **trust}
        return {"token": self.token, "auth": form, **trust}

    def connect(self, *, auth: str | None = None, **options: Any) -> connect:
        """Open a recorded session to the target: ``async with target.connect(…) as s:``.

        ``auth`` (``"header"``, ``"subprotocol"``, ``"both"``, ``"none"``) overrides the
        target's form for this connection; ``options`` are those of :func:`netra_ws.connect`
        (``trace``, ``labels``, ``open_timeout``…).
        """
        return connect(self.url, **self.connect_options(auth), **options)

    def token_for(
        self,
        user_id: str | None = None,
        *,
        expires_in: float = 3600.0,
        secret: str | None = None,
    ) -> str | None:
        """A new token for ``user_id`` (default: the target's user), or None.

        The embedded server mints one it accepts (``secret`` is not needed). For a URL a
        token is minted with the server's signing ``secret`` when you give it; without one
        there is no way to mint, so the answer is None — say "not tried" rather than guess.
        A negative ``expires_in`` gives an already expired token.
        """
        user = user_id or self.user_id
        if self.server is not None:
            return self.server.token(user, expires_in=expires_in)
        if secret:
            return mint_token(user, secret=secret, expires_in=expires_in)
        return None

    def expired_token(self, secret: str | None = None) -> str | None:
        """A token that expired a minute ago, for the target's user; None for a URL
        without the signing ``secret`` (see :meth:`token_for`)."""
        return self.token_for(expires_in=-_EXPIRED_BY_S, secret=secret)

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
        frame table to find the run it hit. Collected only for a server the target started
        (empty otherwise, and for a URL). Lines logged by other embedded servers of this
        process while the target is open are included too.
        """
        if self._faults is None:
            return _FaultLog().to_frame()
        return self._faults.to_frame()

    def stop(self) -> None:
        """Stop the embedded server and its fault log if this target started them; a
        server you gave, or a borrowed target, keeps running. Idempotent."""
        if not self.owned:
            return
        if self._faults is not None:
            self._faults.detach()
        if self.server is not None:
            self.server.stop()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Target {self.label}; auth {self.auth}; token: {self.token_source}>"


def _auth_form(auth: str | None) -> str:
    """The client auth form, checked: ``header`` when None."""
    form = auth or "header"
    if form not in AUTH_FORMS:
        raise ValueError(f"auth must be one of {AUTH_FORMS}, not {auth!r}")
    return form


def _given_token(token: str | None, token_env: str | None) -> tuple[str | None, str]:
    """The token the caller supplied (``token``, else ``$<token_env>``) and where it came
    from, in words; a supplied token is registered as a secret, so no trace or log can hold
    it even when it has no recognisable shape."""
    if token_env and not token:
        token = os.environ.get(token_env) or None
        source = f"from ${token_env} (not shown)"
        if token is None:
            return None, f"none: ${token_env} is not set, so no token is sent"
    elif token:
        source = "given by the caller (not shown)"
    else:
        return None, "none given, so no token is sent"
    if len(token) >= MIN_SECRET_LENGTH:  # shorter ones would redact ordinary words
        register_secret(token)
    return token, source


def resolve_target(
    target: str | EmbeddedServer | Target | None = None,
    *,
    token: str | None = None,
    token_env: str | None = None,
    auth: str | None = None,
    user_id: str = DEFAULT_USER,
    dialect: str = "bridge",
    server_auth: str = "strict",
    follow_redirects: bool = False,
    limits: Limits | None = None,
    **server_options: Any,
) -> Target:
    """Turn what the caller gave into a :class:`Target`; use it with ``with``.

    ``target`` is None (start an embedded server: ``dialect``, ``server_auth`` and
    ``server_options`` such as ``scenario``, ``faults``, ``seed`` — see
    :class:`~netra_ws.server.ServerConfig`), an :class:`~netra_ws.server.EmbeddedServer`
    already started, a URL, or a :class:`Target` (borrowed). The token is ``token``, else
    ``$<token_env>`` when ``token_env`` names a variable that is set, else (embedded) one
    the server mints for ``user_id`` — else none. ``auth`` is the form the token is sent in
    (None: ``header``, or the given Target's). Raises ``ValueError`` for an unknown form
    before anything starts. ``follow_redirects`` and ``limits`` (:class:`~netra_ws.limits.Limits`)
    go with every connection to it (see :func:`netra_ws.connect`). Stop the target when
    done (``with`` does it): only a server started here is stopped.
    """
    trust: dict[str, Any] = {
        "follow_redirects": follow_redirects,
        "limits": limits or DEFAULT_LIMITS,
    }
    form = _auth_form(auth)  # first: a bad form must not start a server
    supplied, source = _given_token(token, token_env)
    if isinstance(target, Target):
        changes: dict[str, Any] = {"owned": False}
        if follow_redirects or limits is not None:
            changes.update(trust)
        if auth is not None:
            changes["auth"] = form
        if supplied is not None:
            changes.update(token=supplied, token_source=source)
        return replace(target, **changes)
    if isinstance(target, str):
        return Target(
            url=target,
            auth=form,
            token=supplied,
            token_source=source,
            user_id=user_id,
            **trust,
        )
    if target is not None and not isinstance(target, EmbeddedServer):
        raise TypeError(
            "target must be a URL, an EmbeddedServer, a Target or None (an embedded server), "
            f"not {type(target).__name__}"
        )

    faults: _FaultLog | None = None
    server = target
    if server is None:
        faults = _FaultLog()
        faults.attach()
        try:
            server = EmbeddedServer(dialect=dialect, auth=server_auth, **server_options).start()
        except BaseException:
            faults.detach()
            raise
    if supplied is None:
        supplied = server.token(user_id)
        source = f"minted by the embedded server for user {user_id!r} (not shown)"
    return Target(
        url=server.url,
        auth=form,
        token=supplied,
        token_source=source,
        server=server,
        owned=target is None,
        user_id=user_id,
        _faults=faults,
        **trust,
    )


def open_target(
    url: str | None = None,
    *,
    auth: str = "header",
    token_env: str = DEFAULT_TOKEN_ENV,
    user_id: str = NOTEBOOK_USER,
    server_auth: str = "strict",
    **server_options: Any,
) -> Target:
    """The notebook's target, from its parameters: a real ``url``, or (None) an embedded
    server started now. :func:`resolve_target` with the notebooks' defaults.

    The token of a URL comes from the environment variable named ``token_env`` (never from
    the notebook itself, so it cannot end up in a shared notebook); unset, the target
    connects without a token and says so in its repr. For None, ``server_auth`` and
    ``server_options`` (``dialect``, ``scenario``, ``faults``, ``seed``…) configure the
    server, a token is minted for ``user_id``, and :meth:`Target.faults` collects what the
    server injected. Call ``target.stop()`` at the end of the notebook.
    """
    return resolve_target(
        url,
        # The notebooks' TOKEN_ENV holds a token for a real target, which an embedded server
        # (with its own secret) would refuse: the embedded server's token is minted.
        token_env=token_env if url is not None else None,
        auth=auth,
        user_id=user_id,
        server_auth=server_auth,
        **server_options,
    )
