"""The Issue #937 probes, each a verdict with its evidence. A thin network shell.

Each probe connects (to a URL, or to an embedded reference server it starts), does one
step of the #937 investigation, records every frame to its own trace, and hands the
records to :mod:`netra_ws.verdicts` for the verdict (the same functions judge a trace
later, so a report's verdict is the live one):

- :func:`probe_connection`: connect; the first frame must be ``connection_established``;
- :func:`probe_negative`: send each output event name as input; nothing may come back
  (and see the trap: one read right after connecting returns ``connection_established``);
- :func:`probe_workflow`: send ``user_message`` (flat and ``payload`` forms), collect the
  agent events, check them against a profile. No agent events is a failure, never a pass;
- :func:`probe_auth`: the auth matrix (no token, header, ``jwt.<base64url>`` subprotocol,
  bare ``jwt-auth`` plus header, expired token, bad signature).

In a notebook cell (top-level ``await``)::

    report = await run_probes()                          # embedded server, dialect bridge
    report = await run_probes(dialect="staging-937")     # what #937 met on staging
    report = await run_probes(url, token=token)          # a real server
    report                                               # one row per probe
    report["workflow"].to_frame()                        # what the workflow probe checked

A target is a URL, an :class:`~netra_ws.server.EmbeddedServer` you started, a
:class:`~netra_ws.target.Target`, or None: then the probe starts an embedded server with
``dialect`` and ``server_auth`` and stops it afterwards (see
:func:`netra_ws.target.resolve_target`). Against an embedded server the probes mint the
tokens they need. Tokens never reach traces, results or output: the trace writer redacts
them, and results hold only descriptions of credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .client import Session, connect
from .errors import NetraWsError, WaitTimeout
from .events import AGENT_EVENTS, TERMINAL_EVENTS
from .expect import Profile, load_profile
from .redact import redact_text
from .server import EmbeddedServer
from .target import Target as ResolvedTarget
from .target import resolve_target
from .trace import TraceWriter
from .verdicts import (
    AUTH_MATRIX,
    COLLECTED_MARK,
    NOT_TRIED_MARK,
    PROBES,
    SENT_MARK,
    STOPPED_MARK,
    TRAP_MARK,
    ProbeReport,
    ProbeResult,
    judge_auth,
    judge_auth_row,
    judge_connection,
    judge_negative,
    judge_workflow,
)

__all__ = [
    "PROBES",
    "ProbeReport",
    "ProbeResult",
    "probe_auth",
    "probe_connection",
    "probe_negative",
    "probe_workflow",
    "run_probes",
]

Target = str | EmbeddedServer | ResolvedTarget | None

DEFAULT_TEXT = "Analyze my costs for the last 30 days"
# The user the probes mint tokens for; connection_established shows it as "netra-ws...".
PROBE_USER = "netra-ws-probe"
# The alphabet of a JWT's parts (RFC 7515: base64url without padding).
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
# How long to wait for the first frame after connecting, at most.
_FIRST_FRAME_WAIT = 10.0


# --- targets and traces ----------------------------------------------------------------------


def _resolve(
    target: Target, token: str | None, auth: str | None, dialect: str, server_auth: str
) -> ResolvedTarget:
    """Where a probe connects, with its credentials; ``with`` stops a server it started."""
    return resolve_target(
        target,
        token=token,
        auth=auth,
        user_id=PROBE_USER,
        dialect=dialect,
        server_auth=server_auth,
    )


def _writer(
    out: str | os.PathLike[str] | None, name: str, tgt: ResolvedTarget, **labels: Any
) -> TraceWriter:
    """A trace writer for one connection to ``tgt`` (its limits):
    ``<out>/<name>-<time>.jsonl``, or in memory."""
    path = None
    if out is not None:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() // 1000 % 1_000_000:06d}"
        path = Path(out) / f"{name}-{stamp}.jsonl"
    return TraceWriter(
        path, target=tgt.url, labels={"probe": name, **tgt.labels, **labels}, limits=tgt.limits
    )


def _traces(*writers: TraceWriter) -> tuple[Path, ...]:
    return tuple(w.path for w in writers if w.path is not None)


@contextlib.contextmanager
def _stops_on_errors(session: Session) -> Iterator[None]:
    """Why a probe stopped early goes into its trace as a mark, for the verdict to read."""
    try:
        yield
    except NetraWsError as exc:
        session.mark(STOPPED_MARK, reason=redact_text(str(exc)), exception=type(exc).__name__)


async def _recorded(
    url: str, writer: TraceWriter, steps: Callable[[Session], Awaitable[None]], **options: Any
) -> list[dict[str, Any]]:
    """Connect, run ``steps`` on the session, and return every record of the connection.

    A refused connection is recorded by :func:`connect` (an ``error`` record); a failure
    after connecting by a :data:`STOPPED_MARK` mark: the verdicts read both."""
    try:
        async with connect(url, trace=writer, **options) as session:
            with _stops_on_errors(session):
                await steps(session)
    except NetraWsError:
        pass  # recorded: see above
    finally:
        writer.close()  # connect() closes it too; a refused handshake may not get that far
    return writer.records


# --- connection ------------------------------------------------------------------------------


async def probe_connection(
    target: Target = None,
    *,
    token: str | None = None,
    auth: str | None = None,
    out: str | os.PathLike[str] | None = "data",
    timeout: float = _FIRST_FRAME_WAIT,
    dialect: str = "bridge",
    server_auth: str = "strict",
) -> ProbeResult:
    """Connect and report the first frame, the handshake facts and the time it took.

    Passes when the first frame received is ``connection_established``. ``facts`` hold the
    HTTP status, the chosen subprotocol, the handshake time, the first frame, the user id
    the server reports, and ``established_ms`` (from the start of connecting). When it
    fails, the explanation says why (refused handshake, AUTH_FAILED, another first frame).
    """

    async def steps(session: Session) -> None:
        await session.next(timeout=timeout)

    with _resolve(target, token, auth, dialect, server_auth) as tgt:
        writer = _writer(out, "connection", tgt)
        options = {**tgt.connect_options(), "open_timeout": timeout}
        records = await _recorded(tgt.url, writer, steps, **options)
        return judge_connection(records, target=tgt.label, traces=_traces(writer))


# --- negative --------------------------------------------------------------------------------


async def probe_negative(
    target: Target = None,
    *,
    names: Sequence[str] = AGENT_EVENTS,
    quiet: float = 2.0,
    token: str | None = None,
    auth: str | None = None,
    out: str | os.PathLike[str] | None = "data",
    timeout: float = _FIRST_FRAME_WAIT,
    dialect: str = "bridge",
    server_auth: str = "strict",
) -> ProbeResult:
    """Send each output event name in ``names`` as input; nothing may come back.

    Each name gets its own ``quiet`` window (seconds); a reply (an ``ack``, an error, any
    event) or a close fails the probe. First it shows the Issue #937 trap: the first name
    is sent right after connecting and one frame is read — it is ``connection_established``
    (``facts["single_read_after_connect"]``), queued at connect time, not a reply.
    Inconclusive when the connection is refused (pass a token).
    """
    if not names:
        raise ValueError("names must hold at least one event name to send")

    async def steps(session: Session) -> None:
        session.mark("negative probe: the trap, one read right after sending", sent=names[0])
        await session.send(_as_input(names[0]))
        trap = await session.next(timeout=timeout)
        session.mark(TRAP_MARK, event=trap.name)
        await session.quiet(quiet)
        for name in names[1:]:
            session.mark("negative probe: output event sent as input", sent=name)
            await session.send(_as_input(name))
            await session.quiet(quiet)

    with _resolve(target, token, auth, dialect, server_auth) as tgt:
        writer = _writer(out, "negative", tgt)
        options = {**tgt.connect_options(), "open_timeout": timeout}
        records = await _recorded(tgt.url, writer, steps, **options)
        return judge_negative(records, target=tgt.label, traces=_traces(writer))


def _as_input(name: str) -> dict[str, Any]:
    # The shape the flawed tests sent: the output event itself, with a payload.
    return {"type": name, "payload": {"agent_name": "netra-ws-probe"}, "timestamp": time.time()}


# --- workflow --------------------------------------------------------------------------------


async def probe_workflow(
    target: Target = None,
    *,
    profile: str | Path | Mapping[str, Any] | Profile = "netra-bridge",
    forms: Sequence[str] = ("flat", "payload"),
    text: str = DEFAULT_TEXT,
    timeout: float = 30.0,
    budgets: Mapping[str, float | None] | None = None,
    token: str | None = None,
    auth: str | None = None,
    out: str | os.PathLike[str] | None = "data",
    dialect: str = "bridge",
    server_auth: str = "strict",
) -> ProbeResult:
    """Send ``user_message`` in each of ``forms``; collect the runs; check them.

    Each message is followed by a collection until ``agent_completed`` / ``agent_error``
    or ``timeout`` seconds. The records go to :func:`netra_ws.expect.check_run` with
    ``profile`` and ``budgets``; ``checks`` holds every check. No agent events is a failure
    whose explanation names the likely causes (demo user, swallowed input, slow agent).
    """
    prof = load_profile(profile)  # a bad profile fails here, before connecting

    async def steps(session: Session) -> None:
        # No welcome frame is the connection probe's finding; carry on without it.
        with contextlib.suppress(WaitTimeout):
            await session.next(timeout=min(timeout, _FIRST_FRAME_WAIT))
        for form in forms:
            session.mark(SENT_MARK, form=form)
            await session.send_user_message(text, form=form)  # type: ignore[arg-type]
            run = await session.collect(until=TERMINAL_EVENTS, timeout=timeout)
            session.mark(COLLECTED_MARK, reason=run.reason, frames=len(run), timeout_s=timeout)

    with _resolve(target, token, auth, dialect, server_auth) as tgt:
        writer = _writer(out, "workflow", tgt, profile=prof.name)
        records = await _recorded(tgt.url, writer, steps, **tgt.connect_options())
        return judge_workflow(
            records, prof, budgets=budgets, target=tgt.label, traces=_traces(writer)
        )


# --- auth matrix -----------------------------------------------------------------------------


async def probe_auth(
    target: Target = None,
    *,
    token: str | None = None,
    secret: str | None = None,
    text: str = DEFAULT_TEXT,
    timeout: float = _FIRST_FRAME_WAIT,
    out: str | os.PathLike[str] | None = "data",
    dialect: str = "bridge",
    server_auth: str = "strict",
) -> ProbeResult:
    """The auth matrix: is authentication enforced, and which token forms work?

    One connection per credential (one trace each): no token, the token as a header, as a
    ``jwt.<base64url>`` subprotocol, as a header with a bare ``jwt-auth`` subprotocol, an
    expired token and a token with a bad signature. Each row reports the HTTP status, the
    chosen subprotocol, the first frame, the user id, the close code and whether agent
    events flowed after a ``user_message``. A valid token must get agent events; the others
    must be refused (HTTP 401/403, or AUTH_FAILED and close 1008) — a server that accepts
    them (demo or relaxed auth) fails, and the row says as whom.

    Against a real server give ``token`` (valid); the expired row also needs the signing
    ``secret``. Rows that lack what they need are inconclusive. The bad signature is the
    valid token with its signature replaced, so it needs no secret.
    """

    async def steps(session: Session) -> None:
        await session.next(timeout=timeout)
        await session.send_user_message(text)
        await session.collect(until=TERMINAL_EVENTS, timeout=timeout)

    with _resolve(target, token, None, dialect, server_auth) as tgt:
        valid = tgt.token
        malformed = _not_a_jwt(valid) if valid else None
        tokens = {
            "none": None,
            "valid": valid,
            "expired": tgt.expired_token(secret),
            "bad-signature": _bad_signature(valid) if valid and not malformed else None,
        }
        # Why a row could not be tried, when the verdict's generic words would mislead.
        reasons = {"bad-signature": f"not tried: the token is {malformed}."} if malformed else {}
        rows: list[dict[str, Any]] = []
        traces: list[Path] = []
        for credential in AUTH_MATRIX:
            token_ = tokens[credential.kind]
            writer = _writer(out, f"auth-{credential.slug}", tgt, credential=credential.label)
            if credential.kind != "none" and token_ is None:
                writer.mark(  # the verdict says why
                    NOT_TRIED_MARK,
                    credential_kind=credential.kind,
                    reason=reasons.get(credential.kind),
                )
                writer.close()
                records = writer.records
            else:
                records = await _recorded(
                    tgt.url,
                    writer,
                    steps,
                    token=token_,
                    auth=credential.form if token_ else "none",
                    subprotocols=credential.subprotocols or None,
                    open_timeout=timeout,
                    follow_redirects=tgt.follow_redirects,
                )
            name = writer.path.name if writer.path is not None else None
            rows.append(judge_auth_row(credential, records, trace=name))
            traces += _traces(writer)
        return judge_auth(rows, target=tgt.label, traces=tuple(traces))


def _not_a_jwt(token: str) -> str | None:
    """Why ``token`` is not a JWT (``header.payload.signature``, base64url), or None.

    A malformed token is a finding to report, not a crash: the probes still send it (the
    server should refuse it), only the bad-signature row cannot be made from it.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return f"not a JWT: {len(parts)} dot-separated part(s), a JWT has 3 (header.body.signature)"
    if not all(parts[:2]) or not all(_BASE64URL.fullmatch(part) for part in parts):
        return "not a JWT: its parts are not base64url text"
    return None


def _bad_signature(token: str) -> str:
    """The token with its signature replaced by one made with a random key; the token must
    be JWT-shaped (check :func:`_not_a_jwt` first)."""
    head, body, _ = token.split(".")
    digest = hmac.new(secrets.token_bytes(32), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# --- all of them -----------------------------------------------------------------------------


async def run_probes(
    target: Target = None,
    *,
    probes: Sequence[str] = PROBES,
    token: str | None = None,
    auth: str | None = None,
    profile: str | Path | Mapping[str, Any] | Profile = "netra-bridge",
    secret: str | None = None,
    out: str | os.PathLike[str] | None = "data",
    timeout: float = 30.0,
    quiet: float = 2.0,
    dialect: str = "bridge",
    server_auth: str = "strict",
) -> ProbeReport:
    """Run the probes against one target; return a :class:`ProbeReport`.

    ``target`` None starts one embedded server (``dialect``, ``server_auth``) for all of
    them. The traces go to a new directory ``<out>/probes-<time>/`` (``out=None`` keeps
    them in memory). ``timeout`` bounds each collection of agent events, ``quiet`` each
    negative window. Show the report in a notebook, or ``print(report.to_text())``.
    """
    unknown = [name for name in probes if name not in PROBES]
    if unknown:
        raise ValueError(f"unknown probes {unknown}; known: {', '.join(PROBES)}")
    out_dir = None
    if out is not None:
        out_dir = Path(out) / time.strftime("probes-%Y%m%dT%H%M%S")
        suffix = 1
        while out_dir.exists():  # two runs in one second: never mix their traces
            suffix += 1
            out_dir = Path(out) / time.strftime(f"probes-%Y%m%dT%H%M%S-{suffix}")
    first_wait = min(timeout, _FIRST_FRAME_WAIT)
    with _resolve(target, token, auth, dialect, server_auth) as tgt:
        results = []
        for name in probes:  # each probe borrows tgt: its server, token and auth form
            if name == "connection":
                result = await probe_connection(tgt, timeout=first_wait, out=out_dir)
            elif name == "negative":
                result = await probe_negative(tgt, quiet=quiet, timeout=first_wait, out=out_dir)
            elif name == "workflow":
                result = await probe_workflow(tgt, profile=profile, timeout=timeout, out=out_dir)
            else:
                result = await probe_auth(tgt, secret=secret, timeout=first_wait, out=out_dir)
            results.append(result)
        return ProbeReport(results, target=tgt.label, out_dir=out_dir)
