"""The Issue #937 probes, each a verdict with its evidence. A thin network shell.

Each probe connects (to a URL, or to an embedded reference server it starts), does one
step of the #937 investigation, records every frame to its own trace, and hands the
records to the pure checks of :mod:`netra_ws.expect` for the verdict:

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

A target is a URL, an :class:`~netra_ws.server.EmbeddedServer` you started, or None: then
the probe starts an embedded server with ``dialect`` and ``server_auth`` and stops it
afterwards. Against an embedded server the probes mint the tokens they need. Tokens never
reach traces, results or output: the trace writer redacts them, and results hold only
descriptions of credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .client import connect
from .errors import (
    AuthenticationFailed,
    HandshakeRejected,
    NetraWsError,
    SessionClosed,
    WaitTimeout,
)
from .events import AGENT_EVENTS, TERMINAL_EVENTS, normalize
from .expect import (
    FAILED,
    INCONCLUSIVE,
    PASSED,
    Checks,
    Profile,
    Status,
    check_connection,
    check_no_reply,
    check_run,
    load_profile,
    overall_status,
)
from .redact import redact_text, redact_url
from .server import EmbeddedServer
from .tokens import mint_token
from .trace import TraceWriter

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

PROBES: tuple[str, ...] = ("connection", "negative", "workflow", "auth")

Target = str | EmbeddedServer | None

DEFAULT_TEXT = "Analyze my costs for the last 30 days"
# The user the probes mint tokens for; connection_established shows it as "netra-ws...".
PROBE_USER = "netra-ws-probe"
# Explicit dtypes for the auth matrix, so missing values show as <NA>, never NaN or None.
_ROW_DTYPES = {
    "credential": "string",
    "expected": "string",
    "http_status": "Int64",
    "subprotocol": "string",
    "first_frame": "string",
    "user_id": "string",
    "close_code": "Int64",
    "agent_events": "boolean",
    "status": "string",
    "explanation": "string",
    "trace": "string",
}
# How long to wait for the first frame after connecting, at most.
_FIRST_FRAME_WAIT = 10.0


# --- results ---------------------------------------------------------------------------------


@dataclass
class ProbeResult:
    """The verdict of one probe.

    ``status`` is ``"passed"``, ``"failed"`` or ``"inconclusive"`` (the probe could not
    judge, e.g. no token to try); ``explanation`` says in plain words what was seen and
    what to do next; ``evidence`` holds frame ``seq`` numbers in the probe's trace
    (``traces``, one file per connection). ``facts`` are the plain observations (handshake,
    first frame, user id…), ``checks`` the expectations behind the verdict, ``rows`` the
    probe's table (the auth matrix). ``to_frame()`` shows the most useful table.
    """

    probe: str
    status: Status
    explanation: str
    evidence: tuple[int, ...] = ()
    traces: tuple[Path, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)
    checks: Checks = field(default_factory=Checks)
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_frame(self) -> pd.DataFrame:
        """The probe's table: the auth matrix (one row per credential), the checks of the
        negative and workflow probes (one row per check), or the connection facts (one row).
        """
        if self.rows:
            table = pd.DataFrame(self.rows)
            return table.astype({k: v for k, v in _ROW_DTYPES.items() if k in table})
        if len(self.checks) > 1:
            return self.checks.to_frame()
        return pd.DataFrame([{"status": self.status, **self.facts}])

    def _repr_html_(self) -> str:
        head = f"<p><b>{self.probe}: {self.status}</b> — {_html_escape(self.explanation)}</p>"
        return head + self.to_frame()._repr_html_()  # type: ignore[operator]

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.probe}: {self.explanation}"


class ProbeReport(list[ProbeResult]):
    """The results of :func:`run_probes`: a list of :class:`ProbeResult` with a verdict.

    ``report.status`` / ``report.passed`` is the overall verdict, ``report["auth"]`` one
    probe's result, ``report.to_frame()`` one row per probe, ``print(report.to_text())``
    the CLI's table; ``out_dir`` holds the traces.
    """

    def __init__(
        self,
        results: Iterable[ProbeResult] = (),
        *,
        target: str = "",
        out_dir: str | os.PathLike[str] | None = None,
    ):
        super().__init__(results)
        self.target = target
        self.out_dir: Path | None = Path(out_dir) if out_dir is not None else None

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, str):
            for result in self:
                if result.probe == key:
                    return result
            raise KeyError(f"no probe {key!r}; ran: {', '.join(r.probe for r in self)}")
        return super().__getitem__(key)

    @property
    def status(self) -> Status:
        return overall_status(result.status for result in self)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_frame(self) -> pd.DataFrame:
        """One row per probe: probe, status, explanation, evidence (seqs), traces."""
        return pd.DataFrame(
            [
                {
                    "probe": r.probe,
                    "status": r.status,
                    "explanation": r.explanation,
                    "evidence": list(r.evidence),
                    "traces": [p.name for p in r.traces],
                }
                for r in self
            ],
            columns=["probe", "status", "explanation", "evidence", "traces"],
        ).astype({"probe": "string", "status": "string", "explanation": "string"})

    def to_text(self, width: int = 100) -> str:
        """The verdicts as plain text: one paragraph per probe, then the auth matrix."""
        lines = [f"target: {self.target}"]
        for result in self:
            head = f"{result.status.upper():<12} {result.probe:<10} "
            failures = result.checks.failures
            if len(failures) > 1:
                # One line per failed check reads better than one long paragraph.
                lines.append(f"{head}{len(failures)} of {len(result.checks)} checks failed:")
                lines += [_wrap(f"- {c.name}: {c.explanation}", width, len(head)) for c in failures]
            else:
                lines.append(_wrap(result.explanation, width, len(head), head))
            if result.rows:
                table = result.to_frame().drop(columns=["explanation", "trace"])
                table = table.astype(object).where(table.notna(), "-")
                lines.append(textwrap.indent(table.to_string(index=False), " " * 4))
        if self.out_dir is not None:
            lines.append(f"traces: {self.out_dir}")
        lines.append(f"verdict: {self.status}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()  # type: ignore[operator]

    def __repr__(self) -> str:
        return f"<ProbeReport {self.status}: {', '.join(f'{r.probe} {r.status}' for r in self)}>"


def _wrap(text: str, width: int, indent: int, head: str = "") -> str:
    return textwrap.fill(
        text,
        width,
        initial_indent=head or " " * indent,
        subsequent_indent=" " * (indent + (0 if head else 2)),
    )


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- targets and traces ----------------------------------------------------------------------


class _Target:
    """Where a probe connects; starts (and later stops) an embedded server for None."""

    def __init__(self, target: Target, *, dialect: str, server_auth: str):
        self._given = target
        self._options = {"dialect": dialect, "auth": server_auth}
        self.server: EmbeddedServer | None = None
        self._owned = False

    def __enter__(self) -> _Target:
        if self._given is None:
            self.server = EmbeddedServer(**self._options).start()
            self._owned = True
        elif isinstance(self._given, EmbeddedServer):
            self.server = self._given
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owned and self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        if self.server is not None:
            return self.server.url
        assert isinstance(self._given, str)
        return self._given

    @property
    def labels(self) -> dict[str, str]:
        """Trace labels naming the embedded server's dialect and auth mode (none for a URL),
        so a report built from the traces alone can say what the probes met."""
        if self.server is None:
            return {}
        return {"dialect": self.server.config.dialect, "server_auth": self.server.config.auth}

    @property
    def label(self) -> str:
        if self.server is not None:
            config = self.server.config
            return f"embedded {config.dialect} server, auth {config.auth} ({self.server.url})"
        return redact_url(self.url)

    def token(self, given: str | None) -> str | None:
        """The token to use: the one given, else one the embedded server accepts."""
        if given:
            return given
        return self.server.token(PROBE_USER) if self.server is not None else None

    def expired_token(self, secret: str | None) -> str | None:
        if self.server is not None:
            return self.server.token(PROBE_USER, expires_in=-60)
        if secret:
            return mint_token(PROBE_USER, secret=secret, expires_in=-60)
        return None


def _credentials(target: _Target, token: str | None, auth: str | None) -> dict[str, Any]:
    resolved = target.token(token)
    # connect() refuses an auth form without a token; with none, connect without one.
    return {"token": resolved, "auth": auth if resolved else None}


def _writer(out: str | os.PathLike[str] | None, name: str, url: str, **labels: Any) -> TraceWriter:
    """A trace writer for one connection: ``<out>/<name>-<time>.jsonl``, or in memory."""
    path = None
    if out is not None:
        stamp = time.strftime("%Y%m%dT%H%M%S") + f"-{time.time_ns() // 1000 % 1_000_000:06d}"
        path = Path(out) / f"{name}-{stamp}.jsonl"
    return TraceWriter(path, target=url, labels={"probe": name, **labels})


def _traces(*writers: TraceWriter) -> tuple[Path, ...]:
    return tuple(w.path for w in writers if w.path is not None)


def _refused(exc: NetraWsError) -> str:
    """A connection error's message (which says what to do next), never with a token."""
    return redact_text(str(exc))


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
    with _Target(target, dialect=dialect, server_auth=server_auth) as tgt:
        writer = _writer(out, "connection", tgt.url, **tgt.labels)
        facts: dict[str, Any] = {"target": tgt.label}
        try:
            async with connect(
                tgt.url, **_credentials(tgt, token, auth), trace=writer, open_timeout=timeout
            ) as session:
                facts.update(
                    http_status=session.handshake.status,
                    subprotocol=session.handshake.subprotocol,
                    auth=session.handshake.auth,
                    handshake_ms=session.handshake.connect_ms,
                )
                await session.next(timeout=timeout)
        except NetraWsError:
            pass  # recorded in the trace; check_connection explains it
        records = writer.records
    check = check_connection(records)
    facts.update(first_frame_facts(records))
    return ProbeResult(
        "connection",
        check.status,
        check.explanation,
        evidence=check.evidence,
        traces=_traces(writer),
        facts=facts,
        checks=Checks([check]),
    )


def first_frame_facts(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the first received frame says (its event, user id, …), as facts of a result."""
    opened = next((r for r in records if r.get("kind") == "open"), None)
    first = next((r for r in records if r.get("kind") == "frame" and r["dir"] == "receive"), None)
    if first is None:
        return {"first_frame": None}
    facts: dict[str, Any] = {"first_frame": first.get("event") or first.get("parse_error")}
    if first.get("event") == "connection_established":
        data = normalize(first["data"]).payload
        facts.update(user_id=data.get("user_id"), connection_id=data.get("connection_id"))
        facts["mode"] = data.get("mode")
    if opened is not None:
        facts["established_ms"] = round(
            (first["t_mono_ns"] - opened["t_mono_ns"]) / 1e6 + float(opened.get("connect_ms", 0)),
            3,
        )
    return facts


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
    with _Target(target, dialect=dialect, server_auth=server_auth) as tgt:
        writer = _writer(out, "negative", tgt.url, **tgt.labels)
        facts: dict[str, Any] = {"target": tgt.label, "quiet_s": quiet, "sent": list(names)}
        error: NetraWsError | None = None
        try:
            async with connect(
                tgt.url, **_credentials(tgt, token, auth), trace=writer, open_timeout=timeout
            ) as session:
                session.mark(
                    "negative probe: the trap, one read right after sending", sent=names[0]
                )
                await session.send(_as_input(names[0]))
                trap = await session.next(timeout=timeout)
                facts["single_read_after_connect"] = f"{trap.name} #{trap.seq}"
                session.mark("negative probe: the single read returned", event=trap.name)
                await session.quiet(quiet)
                for name in names[1:]:
                    session.mark("negative probe: output event sent as input", sent=name)
                    await session.send(_as_input(name))
                    await session.quiet(quiet)
        except NetraWsError as exc:
            error = exc
    checks = check_no_reply(writer.records)
    if error is not None:
        # Refused before the first read (no token, AUTH_FAILED at connect): nothing was
        # learnt about inputs. Cut off later, after inputs were sent: that is a finding.
        refused = "single_read_after_connect" not in facts
        return ProbeResult(
            "negative",
            INCONCLUSIVE if refused else FAILED,
            f"the probe could not finish: {_refused(error)}"
            + ("" if refused else " " + " ".join(c.explanation for c in checks.failures)),
            evidence=() if refused else tuple(s for c in checks.failures for s in c.evidence),
            traces=_traces(writer),
            facts=facts,
            checks=checks,
        )
    trap_text = facts.get("single_read_after_connect", "nothing")
    trap_note = (
        f" The trap: one read right after sending {names[0]} returned {trap_text}, the frame "
        "queued at connect time — the flawed tests took it for a reply."
        if trap_text.startswith("connection_established")
        else f" One read right after sending {names[0]} returned {trap_text}."
    )
    if checks.status == PASSED:
        explanation = (
            f"none of the {len(checks)} output event names sent as input ({', '.join(names)}) "
            f"got a reply within {quiet:g} s each.{trap_note}"
        )
    else:
        explanation = " ".join(c.explanation for c in checks.failures) + trap_note
    return ProbeResult(
        "negative",
        checks.status,
        explanation,
        evidence=tuple(seq for c in checks.failures for seq in c.evidence),
        traces=_traces(writer),
        facts=facts,
        checks=checks,
    )


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
    with _Target(target, dialect=dialect, server_auth=server_auth) as tgt:
        writer = _writer(out, "workflow", tgt.url, profile=prof.name, **tgt.labels)
        facts: dict[str, Any] = {"target": tgt.label, "profile": prof.name, "forms": list(forms)}
        error: NetraWsError | None = None
        timed_out: list[str] = []  # what each collection that hit the timeout last saw
        try:
            async with connect(tgt.url, **_credentials(tgt, token, auth), trace=writer) as session:
                # No welcome frame is the connection probe's finding; carry on without it.
                with contextlib.suppress(WaitTimeout):
                    await session.next(timeout=min(timeout, _FIRST_FRAME_WAIT))
                for form in forms:
                    session.mark("workflow probe: user_message sent", form=form)
                    await session.send_user_message(text, form=form)  # type: ignore[arg-type]
                    run = await session.collect(until=TERMINAL_EVENTS, timeout=timeout)
                    session.mark(
                        "workflow probe: collection ended", reason=run.reason, frames=len(run)
                    )
                    if run.reason == "timeout":
                        timed_out.append(_timeout_note(form, run.frames, timeout))
        except NetraWsError as exc:
            error = exc
    records = writer.records
    checks = check_run(records, prof, budgets)
    facts.update(first_frame_facts(records))
    facts["agent_events"] = sum(
        1 for r in records if r.get("dir") == "receive" and r.get("event") in AGENT_EVENTS
    )
    # The checks see a run that did not end; only the probe knows it stopped waiting.
    return workflow_result(
        checks,
        facts,
        _traces(writer),
        problem=_refused(error) if error is not None else None,
        notes=timed_out,
    )


def workflow_result(
    checks: Checks,
    facts: dict[str, Any],
    traces: tuple[Path, ...],
    *,
    problem: str | None = None,
    notes: Sequence[str] = (),
) -> ProbeResult:
    """The workflow probe's verdict from its checks (live, or recomputed from a trace).

    ``problem``: why the connection failed, if it did (the verdict is then failed);
    ``notes``: what the checks cannot know, said before their explanations.
    """
    status = FAILED if problem else checks.status
    if status == PASSED:
        explanation = f"{checks['agent events'].explanation} All {len(checks)} checks passed."
    else:
        explanation = " ".join(
            f"{c.name}: {c.explanation}" for c in checks if c.status == FAILED
        ) or "; ".join(f"{c.name}: {c.explanation}" for c in checks if c.status != PASSED)
        if notes:
            explanation = f"{'; '.join(notes)}. {explanation}"
        if problem:
            explanation = f"the connection failed: {problem} {explanation}"
    return ProbeResult(
        "workflow",
        status,
        explanation,
        evidence=tuple(seq for c in checks if c.status == FAILED for seq in c.evidence),
        traces=traces,
        facts=facts,
        checks=checks,
    )


def _timeout_note(form: str, frames: Sequence[Any], timeout: float) -> str:
    last = next((f for f in reversed(frames) if f.name in AGENT_EVENTS), None)
    seen = f"last event {last.name} #{last.seq}" if last is not None else "no agent event"
    return f"no agent_completed within the {timeout:g} s timeout ({form} user_message); {seen}"


# --- auth matrix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Credential:
    label: str
    slug: str
    kind: str  # "none", "valid", "expired", "bad-signature"
    form: str  # client auth form
    subprotocols: tuple[str, ...] = ()

    @property
    def should_work(self) -> bool:
        return self.kind == "valid"


AUTH_MATRIX = (
    _Credential("no token", "none", "none", "none"),
    _Credential("header", "header", "valid", "header"),
    _Credential("jwt.<base64url> subprotocol", "subprotocol", "valid", "subprotocol"),
    _Credential("bare jwt-auth + header", "jwt-auth-header", "valid", "header", ("jwt-auth",)),
    _Credential("expired token", "expired", "expired", "header"),
    _Credential("bad signature", "bad-signature", "bad-signature", "header"),
)


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
    with _Target(target, dialect=dialect, server_auth=server_auth) as tgt:
        valid = tgt.token(token)
        tokens = {
            "none": None,
            "valid": valid,
            "expired": tgt.expired_token(secret),
            "bad-signature": _bad_signature(valid) if valid else None,
        }
        rows, traces = [], []
        for credential in AUTH_MATRIX:
            row, path = await _auth_row(
                tgt.url,
                credential,
                tokens[credential.kind],
                out=out,
                timeout=timeout,
                text=text,
                labels=tgt.labels,
            )
            rows.append(row)
            traces += [path] if path is not None else []
        label = tgt.label
    return auth_result(rows, tuple(traces), label)


def auth_result(rows: list[dict[str, Any]], traces: tuple[Path, ...], label: str) -> ProbeResult:
    """The auth probe's verdict from its matrix rows (live, or rebuilt from traces)."""
    status = overall_status(row["status"] for row in rows)
    if status == PASSED:
        explanation = (
            "authentication is enforced: no token, an expired token and a bad signature were "
            "refused; a valid token worked as a header, as a jwt.<base64url> subprotocol and as "
            "a header with a bare jwt-auth subprotocol."
        )
    else:
        explanation = " ".join(
            f"{row['credential']}: {row['explanation']}" for row in rows if row["status"] == status
        )
    return ProbeResult(
        "auth", status, explanation, traces=traces, facts={"target": label}, rows=rows
    )


def _bad_signature(token: str) -> str:
    """The token with its signature replaced by one made with a random key."""
    head, body, _ = token.split(".")
    digest = hmac.new(secrets.token_bytes(32), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def _auth_row(
    url: str,
    credential: _Credential,
    token: str | None,
    *,
    out: str | os.PathLike[str] | None,
    timeout: float,
    text: str,
    labels: Mapping[str, str],
) -> tuple[dict[str, Any], Path | None]:
    """Try one credential; the row of the matrix and the trace of its connection."""
    row = empty_auth_row(credential)
    if credential.kind != "none" and token is None:
        row["explanation"] = {
            "valid": "not tried: no token given (pass token=…, or --token-env NAME).",
            "expired": "not tried: an expired token needs the signing secret (pass secret=…).",
            "bad-signature": "not tried: it is made from a valid token, and none was given.",
        }[credential.kind]
        return row, None
    writer = _writer(out, f"auth-{credential.slug}", url, credential=credential.label, **labels)
    row["trace"] = writer.path.name if writer.path is not None else None
    accepted = False
    try:
        async with connect(
            url,
            token=token,
            auth=credential.form if token else "none",
            subprotocols=credential.subprotocols or None,
            trace=writer,
            open_timeout=timeout,
        ) as session:
            row["http_status"] = session.handshake.status
            row["subprotocol"] = session.handshake.subprotocol
            first = await session.next(timeout=timeout)
            row["first_frame"] = first.name
            if first.name == "connection_established" and first.event is not None:
                accepted = True
                row["user_id"] = first.event.payload.get("user_id")
            await session.send_user_message(text)
            run = await session.collect(until=TERMINAL_EVENTS, timeout=timeout)
            row["agent_events"] = any(r.name in AGENT_EVENTS for r in run)
            row["close_code"] = session.close_code
    except HandshakeRejected as exc:
        row["http_status"] = exc.status
        row["agent_events"] = False
    except AuthenticationFailed as exc:
        if exc.frame is not None:
            row["first_frame"] = f"{exc.frame.name} {exc.frame.record.get('error_code')}"
        row["close_code"] = exc.close_code
        row["agent_events"] = False
    except (SessionClosed, WaitTimeout) as exc:
        row["close_code"] = getattr(exc, "close_code", None)
        row["agent_events"] = False
    except NetraWsError as exc:
        row["explanation"] = f"could not connect: {_refused(exc)}"
        return row, writer.path
    finally:
        writer.close()  # connect() closes it too; a refused handshake may not get that far
    row["status"], row["explanation"] = judge_auth_row(credential, row, accepted)
    return row, writer.path


def empty_auth_row(credential: _Credential) -> dict[str, Any]:
    """The auth matrix row of a credential before anything is known (inconclusive)."""
    return {
        "credential": credential.label,
        "expected": "agent events" if credential.should_work else "refused",
        "http_status": None,
        "subprotocol": None,
        "first_frame": None,
        "user_id": None,
        "close_code": None,
        "agent_events": None,
        "status": INCONCLUSIVE,
        "explanation": "",
        "trace": None,
    }


def judge_auth_row(
    credential: _Credential, row: dict[str, Any], accepted: bool
) -> tuple[Status, str]:
    """The status of one auth matrix row, and the sentence that explains it."""
    how = _refusal(row)
    who = f"accepted as user {row['user_id']!r}"
    if credential.should_work:
        ignored = (
            " — the demo user: the server ignored the token"
            if str(row["user_id"]).startswith("demo-use")
            else ""
        )
        if accepted and row["agent_events"]:
            return PASSED, f"{who}{ignored}; agent events flowed."
        if accepted:
            return FAILED, (
                f"{who}{ignored}, but no agent events flowed after user_message (see the "
                "workflow probe)."
            )
        return FAILED, f"a valid token was refused ({how}): check the token and its form."
    if accepted:
        flowed = "agent events flowed" if row["agent_events"] else "no agent events flowed"
        return FAILED, (
            f"{who} ({flowed}): authentication is not enforced — the server runs in a "
            "demo or relaxed auth mode."
        )
    return PASSED, f"refused ({how})."


def _refusal(row: dict[str, Any]) -> str:
    parts = []
    if row["http_status"] not in (None, 101):
        parts.append(f"HTTP {row['http_status']}")
    if row["first_frame"]:
        parts.append(str(row["first_frame"]))
    if row["close_code"]:
        parts.append(f"close {row['close_code']}")
    return ", then ".join(parts) or "no welcome frame"


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
    with _Target(target, dialect=dialect, server_auth=server_auth) as tgt:
        where = tgt.server if tgt.server is not None else tgt.url
        common = {"out": out_dir, "token": token}
        results = []
        for name in probes:
            if name == "connection":
                result = await probe_connection(where, auth=auth, timeout=first_wait, **common)
            elif name == "negative":
                result = await probe_negative(
                    where, auth=auth, quiet=quiet, timeout=first_wait, **common
                )
            elif name == "workflow":
                result = await probe_workflow(
                    where, auth=auth, profile=profile, timeout=timeout, **common
                )
            else:
                result = await probe_auth(where, secret=secret, timeout=first_wait, **common)
            results.append(result)
        return ProbeReport(results, target=tgt.label, out_dir=out_dir)
