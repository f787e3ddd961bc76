"""Every verdict of the kit, judged from records. Pure: no network.

A probe (:mod:`netra_ws.probes`) connects, sends and records; a report
(:mod:`netra_ws.report`) reads traces months later. Both hand the records to the functions
here, so a verdict from a trace is the verdict the live probe gave, with the same sentence::

    result = judge_connection(trace.records)          # or a live session's writer.records
    result.status, result.explanation                 # "passed", "the first frame is …"
    report = judge_traces([read_trace(p) for p in paths])   # a whole folder of probe traces
    print(report.to_text())

The input is always a list of trace records (``meta``, ``open``, ``frame``, ``mark``,
``close``, ``error``), in the order they were written; what a probe knew while it ran and
the checks cannot see (a quiet window, a collection that timed out, why it stopped) it wrote
as ``mark`` records, so the trace alone is enough.

- :func:`judge_connection`: the first frame must be ``connection_established``;
- :func:`judge_negative`: output event names sent as input must get no reply;
- :func:`judge_workflow`: ``user_message`` must start runs that pass a profile's checks;
- :func:`judge_auth_row` / :func:`judge_auth`: the auth matrix (:data:`AUTH_MATRIX`);
- :func:`judge_traces`: each probe's latest trace in a folder, judged as above;
- :func:`evaluate_contract`: the seven contract tests, from the probes' results.

The status type and the checks behind each verdict are :mod:`netra_ws.expect`'s.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, SupportsIndex, overload
from urllib.parse import urlsplit

import pandas as pd

from .events import AGENT_EVENTS, is_demo_user, is_fallback_user, normalize
from .expect import (
    DEFAULT_PROFILE,
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
from .redact import redact_url
from .trace import BUDGET_MARK, Trace
from .untrusted import for_terminal

__all__ = [
    "AUTH_MATRIX",
    "CONTRACT_TESTS",
    "FAILED",
    "INCONCLUSIVE",
    "NOT_RUN",
    "PASSED",
    "PROBES",
    "SKIPPED",
    "Cause",
    "ConnectionEnd",
    "ContractResult",
    "ContractStatus",
    "Credential",
    "Diagnosis",
    "Evidence",
    "ProbeReport",
    "ProbeResult",
    "Status",
    "connection_end",
    "connection_problem",
    "diagnose",
    "evaluate_contract",
    "first_frame_facts",
    "judge_auth",
    "judge_auth_row",
    "judge_connection",
    "judge_negative",
    "judge_traces",
    "judge_workflow",
    "not_tried_row",
    "probe_of",
    "target_words",
]

PROBES: tuple[str, ...] = ("connection", "negative", "workflow", "auth")

# The marks a probe writes for what only it knows; the verdicts read them back.
TRAP_MARK = "negative probe: the single read returned"
SENT_MARK = "workflow probe: user_message sent"
COLLECTED_MARK = "workflow probe: collection ended"
STOPPED_MARK = "probe stopped"
NOT_TRIED_MARK = "auth probe: not tried"  # the probe lacked the token or secret it needs
QUIET_MARK = "quiet window begins"  # written by Session.quiet()

Record = Mapping[str, Any]

# On a terminal, an explanation is cut at this length (the trace and the report keep more),
# and at most this many failed checks are listed.
_SAID = 1_500
_LISTED = 12
# Explicit dtypes for the auth matrix, so missing values show as <NA>, never NaN or None.
_ROW_DTYPES = {
    "credential": "string",
    "expected": "string",
    "http_status": "Int64",
    "subprotocol": "string",
    "first_frame": "string",
    "user_id": "string",
    "close_code": "Int64",
    "ended": "string",
    "agent_events": "boolean",
    "status": "string",
    "explanation": "string",
    "trace": "string",
}


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
        """The notebook view: a coloured verdict line over the probe's readable table."""
        from .tables import verdict_html

        return verdict_html(
            self.probe, self.status, self.explanation, self.to_frame(), sideways=True
        )

    def __str__(self) -> str:
        return f"{self.status.upper()} {self.probe}: {for_terminal(self.explanation, _SAID)}"


class ProbeReport(list[ProbeResult]):
    """The results of the probes: a list of :class:`ProbeResult` with a verdict.

    ``report.status`` / ``report.passed`` is the overall verdict, ``report["auth"]`` one
    probe's result, ``report.to_frame()`` one row per probe, ``print(report.to_text())``
    the CLI's table; ``out_dir`` holds the traces.
    """

    def __init__(
        self,
        results: Iterable[ProbeResult] = (),
        *,
        target: str = "",
        out_dir: str | Path | None = None,
    ):
        super().__init__(results)
        self.target = target
        self.out_dir: Path | None = Path(out_dir) if out_dir is not None else None

    @overload  # list's, plus a probe's name
    def __getitem__(self, key: str) -> ProbeResult: ...
    @overload
    def __getitem__(self, key: SupportsIndex) -> ProbeResult: ...
    @overload
    def __getitem__(self, key: slice) -> list[ProbeResult]: ...
    def __getitem__(self, key: str | SupportsIndex | slice) -> ProbeResult | list[ProbeResult]:
        if isinstance(key, str):
            for result in self:
                if result.probe == key:
                    return result
            raise KeyError(f"no probe {key!r}; ran: {', '.join(r.probe for r in self)}")
        return super().__getitem__(key)

    def get(self, name: str) -> ProbeResult | None:
        """The result of probe ``name``, or None when it did not run."""
        return next((r for r in self if r.probe == name), None)

    @property
    def status(self) -> Status:
        return overall_status(result.status for result in self)

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    @property
    def diagnosis(self) -> Diagnosis:
        """Why the agent events did (not) arrive, with the evidence (:func:`diagnose`)."""
        return diagnose(self)

    def to_dict(self) -> dict[str, Any]:
        """The verdicts, the diagnosis and the evidence as plain JSON data (``probe --json``):
        no token or secret is in it (results hold descriptions of credentials only)."""
        return {
            "target": self.target,
            "verdict": self.status,
            "traces": str(self.out_dir) if self.out_dir is not None else None,
            "diagnosis": self.diagnosis.to_dict(),
            "probes": [
                {
                    "probe": r.probe,
                    "status": r.status,
                    "explanation": r.explanation,
                    "evidence": list(r.evidence),
                    "traces": [p.name for p in r.traces],
                    "facts": r.facts,
                    "checks": [
                        {"name": c.name, "status": c.status, "explanation": c.explanation}
                        for c in r.checks
                    ],
                    "rows": r.rows,
                }
                for r in self
            ],
        }

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
        """The verdicts as plain text: one paragraph per probe, then the auth matrix.

        Every value that came from a server passes :func:`netra_ws.untrusted.for_terminal`:
        an event name, a close reason or a page cannot repaint the terminal, and a flood of
        it is cut with its length said (the trace keeps it whole)."""
        lines = [f"target: {for_terminal(self.target, 300)}"]
        for result in self:
            head = f"{result.status.upper():<12} {result.probe:<10} "
            failures = result.checks.failures
            if len(failures) > 1:
                # One line per failed check reads better than one long paragraph.
                lines.append(f"{head}{len(failures)} of {len(result.checks)} checks failed:")
                lines += [
                    _wrap(
                        f"- {for_terminal(c.name, 80)}: {for_terminal(c.explanation, _SAID)}",
                        width,
                        len(head),
                    )
                    for c in failures[:_LISTED]
                ]
                if len(failures) > _LISTED:
                    lines.append(" " * len(head) + f"… and {len(failures) - _LISTED} more")
            else:
                lines.append(_wrap(for_terminal(result.explanation, _SAID), width, len(head), head))
            if result.rows:
                table = result.to_frame().drop(columns=["explanation", "trace"])
                table = table.astype(object).where(table.notna(), "-")
                table = table.map(lambda v: for_terminal(v, 40) if isinstance(v, str) else v)
                lines.append(textwrap.indent(table.to_string(index=False), " " * 4))
        if self.out_dir is not None:
            lines.append(f"traces: {self.out_dir}")
        if len(self):
            lines.append(_wrap(for_terminal(self.diagnosis, _SAID), width, 11, "diagnosis: "))
        lines.append(f"verdict: {self.status}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        """The notebook view: the overall verdict over one readable row per probe."""
        from .tables import verdict_html

        where = f" ({self.target})" if self.target else ""
        return verdict_html(
            "probes", self.status, f"{len(self)} probes{where}", self.to_frame(), sideways=False
        )

    def __repr__(self) -> str:
        return f"<ProbeReport {self.status}: {', '.join(f'{r.probe} {r.status}' for r in self)}>"


def _wrap(text: str, width: int, indent: int, head: str = "") -> str:
    return textwrap.fill(
        text,
        width,
        initial_indent=head or " " * indent,
        subsequent_indent=" " * (indent + (0 if head else 2)),
    )


# --- records ---------------------------------------------------------------------------------


def of_kind(records: Iterable[Record], kind: str) -> list[Record]:
    """The records of one ``kind`` (``open``, ``frame``, ``mark``…), in order."""
    return [r for r in records if r.get("kind") == kind]


def received(records: Iterable[Record]) -> list[Record]:
    """The frames the client received, in order."""
    return [r for r in of_kind(records, "frame") if r.get("dir") == "receive"]


def sent(records: Iterable[Record]) -> list[Record]:
    """The frames the client sent, in order."""
    return [r for r in of_kind(records, "frame") if r.get("dir") == "send"]


def marks_of(records: Iterable[Record], label: str) -> list[Record]:
    """The ``mark`` records with this ``label``, in order."""
    return [r for r in of_kind(records, "mark") if r.get("label") == label]


def first_of(records: Iterable[Record], kind: str) -> Record | None:
    return next(iter(of_kind(records, kind)), None)


def server_close(records: Sequence[Record]) -> Record | None:
    """The close record of a close the server started, or None."""
    return next(
        (r for r in of_kind(records, "close") if r.get("initiated_by") not in ("client", None)),
        None,
    )


def frame_ref(frame: Record) -> str:
    """A frame as the explanations name it: "connection_established #1"."""
    return f"{frame.get('event') or 'frame'} #{frame.get('seq')}"


# --- how a connection ended --------------------------------------------------------------------

# What a connection came to, as the verdicts tell it apart (PROTOCOL.md §8): the server
# kept the client out on purpose ("refused"), fell over ("failed"), was never reached or
# never answered ("unreachable", "timed out"), or the connection went on ("accepted").
EndKind = Literal["accepted", "refused", "failed", "not websocket", "unreachable", "timed out"]

# Close codes that mean the server refused the credentials, and those that mean it failed.
_REFUSAL_CLOSES = frozenset({1008})
_FAILURE_CLOSES = frozenset({1011, 1006})
_REFUSAL_STATUSES = frozenset({401, 403})


@dataclass(frozen=True)
class ConnectionEnd:
    """How one connection came out, decided from its records alone (:func:`connection_end`).

    ``kind``: ``"accepted"`` (the welcome frame, or frames and no refusal), ``"refused"``
    (HTTP 401/403 at the handshake, or accepted and then refused: AUTH_FAILED, close 1008,
    or any error frame that came first and was followed by the server's close), ``"failed"``
    (the server fell over: HTTP 5xx, close 1011 or 1006 — a crash is not a refusal), ``"not
    websocket"`` (an HTTP answer that is no upgrade and no refusal), ``"unreachable"`` or
    ``"timed out"``. ``at_connect`` is true when it happened before the server read anything
    the client sent: the first frame of the connection, whenever it arrived, or the
    handshake. ``evidence`` names the frames (``seq``) it rests on; ``words`` says it.
    """

    kind: EndKind
    words: str
    at_connect: bool = False
    http_status: int | None = None
    error_code: str | None = None
    close_code: int | None = None
    evidence: tuple[int, ...] = ()

    @property
    def kept_out(self) -> bool:
        """True when the connection never got past its start (refused, failed, unreached)."""
        return self.kind != "accepted" and self.at_connect


def connection_end(records: Sequence[Record]) -> ConnectionEnd:
    """How the connection of these records ended; see :class:`ConnectionEnd`.

    A first frame that is an error, followed by a close the server started, is the
    connection's answer to connecting, even when the client had already sent something: the
    server sends it before it reads any input (the refusal of PROTOCOL.md §8 races a fast
    client). It is never the reply to what the client sent.
    """
    error = first_of(records, "error")
    opened = first_of(records, "open")
    if opened is None and error is not None:
        return _handshake_end(error)
    violated = _client_failed(records)
    if violated is not None:
        return violated
    frames = received(records)
    close = server_close(records)
    code = close.get("code") if close is not None else None
    first = frames[0] if frames else None
    closed = f", then the server closed the connection with {code}" if close is not None else ""
    reason = f" {close.get('reason')}" if close is not None and close.get("reason") else ""
    if first is not None and first.get("event") != "connection_established":
        error_code = first.get("error_code")
        if error_code or first.get("event") in ("error_message", "error"):
            said = f"{frame_ref(first)} {error_code or ''}".rstrip()
            if error_code == "AUTH_FAILED" or code in _REFUSAL_CLOSES:
                return ConnectionEnd(
                    "refused",
                    f"the server refused the connection: {said}{closed}{reason}.",
                    at_connect=True,
                    error_code=error_code,
                    close_code=code,
                    evidence=(int(first["seq"]),),
                )
            if close is not None:
                kind: EndKind = "failed" if code in _FAILURE_CLOSES else "refused"
                what = "failed" if kind == "failed" else "refused the connection"
                return ConnectionEnd(
                    kind,
                    f"the server {what} at connect: its first frame was {said}{closed}{reason}.",
                    at_connect=True,
                    error_code=error_code,
                    close_code=code,
                    evidence=(int(first["seq"]),),
                )
    if close is not None and code in _REFUSAL_CLOSES:
        return ConnectionEnd(
            "refused",
            f"the server closed the connection with {code}{reason} (policy: credentials).",
            at_connect=first is None,
            close_code=code,
        )
    if close is not None and code in _FAILURE_CLOSES:
        how = (
            "the connection was lost without a close frame (1006)"
            if code == 1006
            else f"the server closed the connection with {code}{reason} (a server failure)"
        )
        return ConnectionEnd(
            "failed",
            how + (" before sending anything." if first is None else "."),
            at_connect=first is None,
            close_code=code,
        )
    return ConnectionEnd(
        "accepted",
        "the connection was accepted" + (f"{closed}{reason}." if close is not None else "."),
        close_code=code,
    )


# Close codes the *client* sends when the server broke the protocol (RFC 6455 §7.4.1), what
# each says about the server, and keepalive's 1011: no pong came back in time.
_VIOLATIONS = {
    1002: "the server broke the WebSocket protocol",
    1007: "the server broke the WebSocket protocol: a text frame that is not valid UTF-8",
    1009: "the server sent a frame over the client's size limit",
}


def _header(headers: Any, name: str) -> str | None:
    """A header's value from a recorded header mapping, whatever the case of its name."""
    if not isinstance(headers, Mapping):
        return None
    return next((str(v) for k, v in headers.items() if str(k).lower() == name), None)


def _client_failed(records: Sequence[Record]) -> ConnectionEnd | None:
    """The client closed the connection because of what the server did (a protocol
    violation, or silence to keepalive pings), or None. The close the client sent is the
    evidence: websockets never hands over the offending frame."""
    close = next((r for r in of_kind(records, "close") if r.get("initiated_by") == "client"), None)
    if close is None:
        return None
    code, reason = close.get("sent_code"), str(close.get("sent_reason") or "")
    if code in _VIOLATIONS:
        detail = f" ({reason})" if reason else ""
        return ConnectionEnd(
            "failed",
            f"{_VIOLATIONS[code]}{detail}; the client closed the connection with {code}.",
            close_code=code,
        )
    if code == 1011 and "keepalive" in reason:
        return ConnectionEnd(
            "failed",
            "the server stopped answering: no pong came back to the client's keepalive ping, "
            "so the client closed the connection (1011).",
            close_code=code,
        )
    return None


def _handshake_end(error: Record) -> ConnectionEnd:
    status = error.get("http_status")
    message = str(error.get("message") or error.get("exception") or "the connection failed")
    if isinstance(status, int):
        if status in _REFUSAL_STATUSES:
            kind: EndKind = "refused"
            words = f"the server refused the handshake with HTTP {status}."
        elif status >= 500:
            kind, words = "failed", f"the server failed the handshake with HTTP {status}."
        else:
            kind = "not websocket"
            location = _header(error.get("response_headers"), "location")
            hop = f" (a redirect to {location}, not followed)" if location else ""
            words = f"the server answered HTTP {status}{hop}, not a WebSocket upgrade."
        return ConnectionEnd(kind, words, at_connect=True, http_status=status)
    if error.get("exception") == "WaitTimeout":
        return ConnectionEnd("timed out", f"the handshake timed out: {message}", at_connect=True)
    return ConnectionEnd("unreachable", f"the target was not reached: {message}", at_connect=True)


def kit_stopped(records: Sequence[Record]) -> str | None:
    """Why the kit itself ended the recording, in words, or None: its trace budget was
    reached (a :data:`~netra_ws.trace.BUDGET_MARK`). What came after is not in the trace,
    so nothing about the server may rest on its absence: the verdicts that need it are
    inconclusive."""
    mark = next(iter(marks_of(records, BUDGET_MARK)), None)
    if mark is None:
        return None
    budget = mark.get("trace_budget")
    size = f" of {budget / 2**20:g} MiB" if isinstance(budget, int) else ""
    return (
        f"the kit stopped recording: its trace budget{size} was reached after frame "
        f"#{mark.get('frames')}, and the session closed the connection (1001); what the "
        "server sent after that is not in the trace. Rerun with a larger --trace-budget "
        "(Limits(trace_budget=…)) to see it."
    )


def connection_problem(records: Sequence[Record]) -> str | None:
    """What broke the connection, in words, or None: the kit's own stop (its trace budget),
    else how it ended (:func:`connection_end`) when that was not "accepted", else why the
    probe stopped (its mark), else a close the server started."""
    by_kit = kit_stopped(records)
    if by_kit is not None:
        return by_kit
    end = connection_end(records)
    if end.kind != "accepted":
        return end.words
    stopped = next(iter(marks_of(records, STOPPED_MARK)), None)
    if stopped is not None:
        return str(stopped.get("reason") or "the probe stopped early.")
    close = server_close(records)
    if close is not None:
        reason = f" {close.get('reason')}" if close.get("reason") else ""
        return f"the server closed the connection with {close.get('code')}{reason}."
    return None


def first_frame_facts(records: Sequence[Record]) -> dict[str, Any]:
    """What the first received frame says (its event, user id, …), as facts of a result."""
    opened = first_of(records, "open")
    first = next(iter(received(records)), None)
    if first is None:
        return {"first_frame": None}
    facts: dict[str, Any] = {"first_frame": first.get("event") or first.get("parse_error")}
    if first.get("event") == "connection_established":
        data = normalize(first["data"]).payload
        facts.update(user_id=data.get("user_id"), connection_id=data.get("connection_id"))
        facts["mode"] = data.get("mode")
    if opened is not None and isinstance(first.get("t_mono_ns"), int):
        facts["established_ms"] = round(
            (first["t_mono_ns"] - opened["t_mono_ns"]) / 1e6 + float(opened.get("connect_ms", 0)),
            3,
        )
    return facts


def _handshake_facts(records: Sequence[Record]) -> dict[str, Any]:
    opened = first_of(records, "open")
    if opened is None:
        return {}
    return {
        "http_status": opened.get("http_status"),
        "subprotocol": opened.get("subprotocol"),
        "auth": opened.get("auth"),
        "handshake_ms": opened.get("connect_ms"),
    }


def target_words(url: str, dialect: str | None = None, server_auth: str | None = None) -> str:
    """The target in words, without secrets: "embedded <dialect> server, auth <mode> (<url>)"
    for a reference server, else the redacted URL."""
    shown = redact_url(url)
    if dialect:
        return f"embedded {dialect} server, auth {server_auth} ({shown})"
    return shown


# --- connection ------------------------------------------------------------------------------

# What to do next, after a connection that never got past its start.
_AFTER_KEPT_OUT: dict[str, str] = {
    "refused": " Connect with a valid token (header or jwt.<token> subprotocol).",
    "failed": " That is the server failing, not refusing a credential: see its logs.",
    "not websocket": " Check the URL: is it the WebSocket endpoint (ws:// or wss://, the path)?",
    "unreachable": "",
    "timed out": "",
}


def judge_connection(
    records: Sequence[Record], *, target: str = "", traces: tuple[Path, ...] = ()
) -> ProbeResult:
    """The connection probe's verdict: is the first frame ``connection_established``?"""
    check = check_connection(records)
    end = connection_end(records)
    facts: dict[str, Any] = {"target": target, **_handshake_facts(records)}
    facts.update(first_frame_facts(records), ended=end.kind)
    explanation = check.explanation
    if end.kept_out and end.kind != "accepted":
        explanation = end.words + _AFTER_KEPT_OUT[end.kind]
    return ProbeResult(
        "connection",
        check.status,
        explanation,
        evidence=check.evidence,
        traces=traces,
        facts=facts,
        checks=Checks([check]),
    )


# --- negative --------------------------------------------------------------------------------


def judge_negative(
    records: Sequence[Record], *, target: str = "", traces: tuple[Path, ...] = ()
) -> ProbeResult:
    """The negative probe's verdict: did any output event name sent as input get a reply?

    Refused before its first read: inconclusive (nothing was learnt about inputs). Cut off
    after inputs were sent: a finding, failed.
    """
    checks = check_no_reply(records)
    names = [str(f.get("event") or "frame") for f in sent(records)]
    windows = [m.get("window_s") for m in marks_of(records, QUIET_MARK)]
    quiet = windows[0] if windows else None
    facts: dict[str, Any] = {"target": target, "quiet_s": quiet, "sent": names}
    end = connection_end(records)
    if end.kept_out:
        # The frame that answered the connection is no reply to an input, however the
        # client's send and the server's refusal raced (PROTOCOL.md §8).
        return ProbeResult(
            "negative",
            INCONCLUSIVE,
            f"the probe could not judge any input: {end.words} Nothing was learnt about inputs.",
            evidence=end.evidence,
            traces=traces,
            facts={**facts, "ended": end.kind},
            checks=checks,
        )
    problem = connection_problem(records)
    trap = marks_of(records, TRAP_MARK)
    if not trap:
        return ProbeResult(
            "negative",
            INCONCLUSIVE,
            f"the probe could not finish: {problem or 'it stopped before its first read.'}",
            traces=traces,
            facts=facts,
            checks=checks,
        )
    first = next(iter(received(records)), None)
    trap_text = f"{trap[0].get('event')} #{first.get('seq')}" if first else "nothing"
    facts["single_read_after_connect"] = trap_text
    head = names[0] if names else "the first name"
    trap_note = (
        f" The trap: one read right after sending {head} returned {trap_text}, the frame "
        "queued at connect time — the flawed tests took it for a reply."
        if trap_text.startswith("connection_established")
        else f" One read right after sending {head} returned {trap_text}."
    )
    status = FAILED if problem and checks.status == PASSED else checks.status
    if status == FAILED and checks.status == PASSED and kit_stopped(records):
        status = INCONCLUSIVE  # the kit's own limit is no finding about the server
    if status == PASSED:
        explanation = (
            f"none of the {len(checks)} output event names sent as input ({', '.join(names)}) "
            f"got a reply within {quiet:g} s each.{trap_note}"
        )
    else:
        failed = " ".join(c.explanation for c in checks.failures)
        if problem:
            failed = f"the probe could not finish: {problem} {failed}".rstrip()
        explanation = failed + trap_note
    return ProbeResult(
        "negative",
        status,
        explanation,
        evidence=tuple(seq for c in checks.failures for seq in c.evidence),
        traces=traces,
        facts=facts,
        checks=checks,
    )


# --- workflow --------------------------------------------------------------------------------


def judge_workflow(
    records: Sequence[Record],
    profile: str | Path | Mapping[str, Any] | Profile = DEFAULT_PROFILE,
    *,
    budgets: Mapping[str, float | None] | None = None,
    target: str = "",
    traces: tuple[Path, ...] = (),
) -> ProbeResult:
    """The workflow probe's verdict: the profile's checks over the runs ``user_message``
    started. A connection that failed fails it, and a collection that timed out is said
    first (the checks see a run that did not end; only the probe's mark knows it stopped
    waiting)."""
    prof = load_profile(profile)
    checks = check_run(records, prof, budgets)
    forms = [m.get("form") for m in marks_of(records, SENT_MARK)]
    facts: dict[str, Any] = {"target": target, "profile": prof.name, "forms": forms}
    facts.update(first_frame_facts(records))
    facts["agent_events"] = sum(1 for f in received(records) if f.get("event") in AGENT_EVENTS)
    end = connection_end(records)
    facts["ended"] = end.kind
    if end.kept_out:
        return ProbeResult(
            "workflow",
            INCONCLUSIVE,
            f"no user_message could be judged: {end.words}",
            evidence=end.evidence,
            traces=traces,
            facts=facts,
            checks=checks,
        )
    problem = connection_problem(records)
    status = FAILED if problem else checks.status
    stopped = kit_stopped(records)
    if stopped is not None:
        # The rest of the run is in what was not recorded: a check that failed on the part
        # that was (a missing terminal event, an unpaired tool) may fail only because of the
        # cut, so the checks are reported, not judged.
        found = "; ".join(f"{c.name}: {c.explanation}" for c in checks.failures)
        return ProbeResult(
            "workflow",
            INCONCLUSIVE,
            f"{stopped} On the recorded part: {found}" if found else stopped,
            traces=traces,
            facts=facts,
            checks=checks,
        )
    if status == PASSED:
        explanation = f"{checks['agent events'].explanation} All {len(checks)} checks passed."
    else:
        explanation = " ".join(
            f"{c.name}: {c.explanation}" for c in checks if c.status == FAILED
        ) or "; ".join(f"{c.name}: {c.explanation}" for c in checks if c.status != PASSED)
        notes = _timeouts(records)
        if notes:
            explanation = f"{'; '.join(notes)}. {explanation}"
        if end.kind == "failed":
            # The server failed: what the checks guess about missing events (auth, a slow
            # agent) does not apply; what they found about the events that came does.
            found = " ".join(
                f"{c.name}: {c.explanation}"
                for c in checks
                if c.status == FAILED and c.name != "agent events"
            )
            if "agent events" in checks.names and checks["agent events"].status == FAILED:
                found = f"No agent event arrived before that. {found}".rstrip()
            explanation = f"the connection failed: {end.words} {found}".rstrip()
        elif problem:
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


def _timeouts(records: Sequence[Record]) -> list[str]:
    """One note per collection that ended on its timeout: the form and the last event seen."""
    notes = []
    sent: Record | None = None
    last: Record | None = None
    for record in records:
        kind, label = record.get("kind"), record.get("label")
        if kind == "mark" and label == SENT_MARK:
            sent, last = record, None
        elif kind == "frame" and record.get("dir") == "receive":
            if record.get("event") in AGENT_EVENTS:
                last = record
        elif kind == "mark" and label == COLLECTED_MARK and record.get("reason") == "timeout":
            form = sent.get("form") if sent is not None else None
            window = record.get("timeout_s")
            within = f"the {window:g} s timeout" if isinstance(window, (int, float)) else "time"
            seen = f"last event {frame_ref(last)}" if last is not None else "no agent event"
            notes.append(f"no agent_completed within {within} ({form} user_message); {seen}")
    return notes


# --- auth matrix -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """One row of the auth matrix: what is sent (``kind`` of token, client auth ``form``,
    extra ``subprotocols``), named by ``label`` (``slug`` in file names)."""

    label: str
    slug: str
    kind: Literal["none", "valid", "expired", "bad-signature"]
    form: str
    subprotocols: tuple[str, ...] = ()

    @property
    def should_work(self) -> bool:
        return self.kind == "valid"


AUTH_MATRIX: tuple[Credential, ...] = (
    Credential("no token", "none", "none", "none"),
    Credential("header", "header", "valid", "header"),
    Credential("jwt.<base64url> subprotocol", "subprotocol", "valid", "subprotocol"),
    Credential("bare jwt-auth + header", "jwt-auth-header", "valid", "header", ("jwt-auth",)),
    Credential("expired token", "expired", "expired", "header"),
    Credential("bad signature", "bad-signature", "bad-signature", "header"),
)

# Why a row was not tried, when the probe lacked what it needs.
_NOT_TRIED = {
    "valid": "not tried: no token given (pass token=…, or --token-env NAME).",
    "expired": "not tried: an expired token needs the signing secret (--secret-env NAME, or "
    "--dev-secret against `python -m netra_ws serve`; secret=… in Python).",
    "bad-signature": "not tried: it is made from a valid token, and none was given.",
    "none": "not tried: there is no trace of this credential.",
}


def _empty_row(credential: Credential) -> dict[str, Any]:
    return {
        "credential": credential.label,
        "expected": "agent events" if credential.should_work else "refused",
        "http_status": None,
        "subprotocol": None,
        "first_frame": None,
        "user_id": None,
        "close_code": None,
        "ended": None,
        "agent_events": None,
        "status": INCONCLUSIVE,
        "explanation": "",
        "trace": None,
    }


def not_tried_row(credential: Credential, *, traced: bool = True) -> dict[str, Any]:
    """The inconclusive row of a credential the probe could not try (``traced``: it lacked
    the token or secret) or that has no trace (``traced=False``)."""
    row = _empty_row(credential)
    row["explanation"] = _NOT_TRIED[credential.kind if traced else "none"]
    return row


def judge_auth_row(
    credential: Credential, records: Sequence[Record], *, trace: str | None = None
) -> dict[str, Any]:
    """The auth matrix row of one credential, from the records of its connection (or of
    the probe saying it could not try it).

    A row passes only when the server did what the row expects for the reason it expects:
    a valid token is accepted as a user and gets agent events; a bad credential is refused
    (HTTP 401/403, AUTH_FAILED, close 1008, or an error frame and a close at connect). A
    server that fails (HTTP 5xx, close 1011 or 1006) has not refused anything.
    """
    not_tried = marks_of(records, NOT_TRIED_MARK)
    if not_tried:
        row = not_tried_row(credential)
        # A mark may say why more precisely (e.g. the token is not a JWT).
        row["explanation"] = not_tried[0].get("reason") or row["explanation"]
        row["trace"] = trace
        return row
    row = _empty_row(credential)
    row["trace"] = trace
    end = connection_end(records)
    opened = first_of(records, "open")
    row["http_status"] = opened.get("http_status") if opened is not None else end.http_status
    if opened is not None:
        row["subprotocol"] = opened.get("subprotocol")
    frames = received(records)
    if frames:
        first = frames[0]
        row["first_frame"] = (
            " ".join(str(v) for v in (first.get("event"), first.get("error_code")) if v) or None
        )
        if first.get("event") == "connection_established":
            row["user_id"] = first_frame_facts(records).get("user_id")
    close = server_close(records)
    row["close_code"] = close.get("code") if close is not None else None
    row["agent_events"] = any(f.get("event") in AGENT_EVENTS for f in frames)
    row["ended"] = end.kind
    row["status"], row["explanation"] = _judge_row(credential, row, end)
    return row


def _judge_row(
    credential: Credential, row: Mapping[str, Any], end: ConnectionEnd
) -> tuple[Status, str]:
    how = refusal_words(row)
    if end.kind in ("unreachable", "timed out"):
        return INCONCLUSIVE, end.words
    if end.kind == "not websocket":
        return INCONCLUSIVE, f"{end.words} Nothing was learnt about tokens."
    if end.kind == "failed" and end.at_connect:
        return FAILED, f"the server failed instead of answering the credential ({how})."
    accepted = row["first_frame"] == "connection_established"
    who = f"accepted as user {row['user_id']!r}"
    if credential.should_work:
        if accepted and row["agent_events"]:
            return PASSED, f"{who}{_whose(row['user_id'])}; agent events flowed."
        if accepted:
            return (
                FAILED,
                f"{who}{_whose(row['user_id'])}, but no agent events flowed after "
                "user_message (see the workflow probe).",
            )
        if end.kind == "refused":
            return FAILED, f"a valid token was refused ({how}): check the token and its form."
        return FAILED, f"a valid token got no welcome frame ({how})."
    if accepted:
        flowed = "agent events flowed" if row["agent_events"] else "no agent events flowed"
        return FAILED, (
            f"{who} ({flowed}): authentication is not enforced — the server runs in a "
            "demo or relaxed auth mode."
        )
    if end.kind == "refused":
        return PASSED, f"refused ({how})."
    return FAILED, f"not refused: {how}."


def _whose(user_id: Any) -> str:
    """Who the server took a valid token's connection for, when that is not the token's user."""
    if is_demo_user(user_id):
        return " — the demo user: the server ignored the token"
    if is_fallback_user(user_id):
        return " — a made-up fallback user: the server did not accept the token"
    return ""


def refusal_words(row: Mapping[str, Any]) -> str:
    """How a connection was refused, from an auth row: "HTTP 403", "error_message
    AUTH_FAILED, then close 1008", or "no welcome frame"."""
    parts = []
    if row.get("http_status") not in (None, 101):
        parts.append(f"HTTP {row['http_status']}")
    if row.get("first_frame"):
        parts.append(str(row["first_frame"]))
    if row.get("close_code"):
        parts.append(f"close {row['close_code']}")
    return ", then ".join(parts) or "no welcome frame"


def judge_auth(
    rows: list[dict[str, Any]], *, target: str = "", traces: tuple[Path, ...] = ()
) -> ProbeResult:
    """The auth probe's verdict from its matrix rows (one per :data:`AUTH_MATRIX` entry)."""
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
        "auth", status, explanation, traces=traces, facts={"target": target}, rows=rows
    )


# --- the diagnosis ----------------------------------------------------------------------------

# Why agent events did not arrive (or that they did), as a cause class a script can test.
Cause = Literal[
    "works",
    "trap",
    "wrong path",
    "unreachable",
    "refused",
    "server failed",
    "demo user",
    "fallback user",
    "swallowed",
    "answered otherwise",
    "contract mismatch",
    "replies to output names",
    "undetermined",
]

# The WebSocket paths the Netra backend serves (PROTOCOL.md §1); any other is refused (403).
NETRA_PATHS: tuple[str, ...] = (
    "/api/v1/websocket",
    "/ws",
    "/websocket",
    "/ws/test",
    "/ws/factory",
    "/ws/isolated",
)
_URL = re.compile(r"wss?://[^\s()]+")


@dataclass(frozen=True)
class Evidence:
    """Where a diagnosis can be checked: a probe's trace file and the frames (``seqs``)."""

    probe: str
    trace: str | None
    seqs: tuple[int, ...] = ()

    def __str__(self) -> str:
        frames = ", ".join(f"#{seq}" for seq in self.seqs)
        return f"{self.probe}: {self.trace or 'in memory'}" + (f" {frames}" if frames else "")


@dataclass(frozen=True)
class Diagnosis:
    """Why the agent events did (not) arrive: a ``cause`` class, the ``summary`` sentence that
    names it with its evidence, ``also`` (other defects the probes found on the way), and
    ``evidence`` (trace files and frame numbers). Make one with :func:`diagnose`."""

    cause: Cause
    summary: str
    also: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    @property
    def server_defect(self) -> bool:
        """True when the cause lies in the server, not in how it was tested or reached."""
        return self.cause in ("server failed", "swallowed", "contract mismatch")

    def to_dict(self) -> dict[str, Any]:
        """The diagnosis as plain JSON data (``probe --json``)."""
        return {
            "cause": self.cause,
            "summary": self.summary,
            "also": list(self.also),
            "server_defect": self.server_defect,
            "evidence": [
                {"probe": e.probe, "trace": e.trace, "seqs": list(e.seqs)} for e in self.evidence
            ],
        }

    def __str__(self) -> str:
        return " ".join([self.summary, *self.also])


def diagnose(report: ProbeReport) -> Diagnosis:
    """Name the cause the probes point to, with the evidence, choosing among: the test read
    the queued ``connection_established`` (the #937 trap, the server works); a wrong path; an
    unreachable server; a refused connection; a failing server; a connection accepted as the
    demo or a made-up fallback user (auth not enforced, so the run says nothing about a real
    user); a connection accepted as the token's own user whose input was swallowed (a
    server-side defect, not authentication); inputs answered with something else; events
    that break the contract; or replies to output names sent as input.
    """
    connection, workflow = report.get("connection"), report.get("workflow")
    negative, auth = report.get("negative"), report.get("auth")
    also = tuple(_also(auth))
    kept_out = next(
        (
            r
            for r in (connection, workflow, negative)
            if r and r.facts.get("ended") not in (None, "accepted")
        ),
        None,
    )
    if kept_out is not None:
        return _kept_out(kept_out, report.target, also)
    if negative is not None and negative.status == FAILED:
        return Diagnosis(
            "replies to output names",
            "The server answers output event names sent as input; the Netra backend ignores "
            f"them: {negative.explanation}",
            also,
            (_evidence(negative),),
        )
    if workflow is None:
        return Diagnosis(
            "undetermined",
            "No user_message was sent, so nothing says why events do or do "
            "not arrive: run the workflow probe.",
            also,
        )
    user = workflow.facts.get("user_id")
    events = workflow.facts.get("agent_events") or 0
    if workflow.status == PASSED:
        return Diagnosis(
            "trap",
            "The server works: user_message starts agent runs whose events arrive complete and "
            "in order, and output event names sent as input are ignored by design — the #937 "
            "tests sent those and read the connection_established frame queued at connect "
            "time instead: a test flaw, not a server defect.",
            also,
            tuple(_evidence(r) for r in (workflow, negative) if r is not None),
        )
    if events:
        return Diagnosis(
            "contract mismatch",
            f"Agent events arrive ({events}), but not as the profile demands: "
            f"{workflow.explanation}",
            also,
            (_evidence(workflow),),
        )
    replies = (
        workflow.checks["agent events"].explanation
        if "agent events" in (workflow.checks.names)
        else ""
    )
    if "the server answered" in replies:
        return Diagnosis(
            "answered otherwise",
            f"user_message started no run: {replies}",
            also,
            (_evidence(workflow),),
        )
    if is_demo_user(user):
        return Diagnosis(
            "demo user",
            f"No agent events: the server accepted the connection as the demo user ({user!r}),"
            " so it did not use the token (none sent, or DEMO_MODE). That says nothing about "
            "a real user: probe a server that enforces authentication, with a valid token.",
            also,
            (_evidence(workflow),),
        )
    if is_fallback_user(user):
        return Diagnosis(
            "fallback user",
            f"No agent events: the server did not accept the token and made up a fallback "
            f"user ({user!r}, the relaxed auth level). Send a valid token.",
            also,
            (_evidence(workflow),),
        )
    if user is not None:
        return Diagnosis(
            "swallowed",
            f"No agent events: the server accepted the connection as {user!r}, the token's own "
            "user, and swallowed every user_message without a reply — not an authentication "
            "problem: a server-side defect (PROTOCOL.md §8: the routing of that commit turns "
            "user_message into an internal type that nothing answers).",
            also,
            (_evidence(workflow),),
        )
    return Diagnosis(
        "undetermined", f"No agent events: {workflow.explanation}", also, (_evidence(workflow),)
    )


def _kept_out(result: ProbeResult, target: str, also: tuple[str, ...]) -> Diagnosis:
    """The diagnosis of a connection that never got past its start."""
    ended = str(result.facts.get("ended"))
    evidence = (_evidence(result),)
    url = _URL.search(target or "")
    path = urlsplit(url.group(0)).path if url else None
    if ended in ("refused", "not websocket") and path is not None and path not in NETRA_PATHS:
        return Diagnosis(
            "wrong path",
            f"The connection was refused at the handshake, and {path!r} is not a Netra "
            f"WebSocket endpoint (the backend serves {', '.join(NETRA_PATHS)}): fix the URL.",
            also,
            evidence,
        )
    cause: Cause = {
        "refused": "refused",
        "failed": "server failed",
        "not websocket": "wrong path",
    }.get(ended, "unreachable")  # type: ignore[assignment]
    return Diagnosis(cause, sentence_of(result.explanation), also, evidence)


def _also(auth: ProbeResult | None) -> list[str]:
    """Defects beside the main cause: credentials that made the server fail, not refuse."""
    if auth is None:
        return []
    crashed = [r["credential"] for r in auth.rows if r.get("ended") == "failed"]
    out = []
    if crashed:
        out.append(
            f"Besides: {join_and(crashed)} made the server fail instead of refusing "
            "(a crash, e.g. close 1011 after CONNECTION_ERROR, is a server defect too)."
        )
    return out


def join_and(items: Sequence[str]) -> str:
    """Items as a sentence lists them.

    >>> join_and(["a", "b", "c"])
    'a, b and c'
    """
    items = list(items)
    return f"{', '.join(items[:-1])} and {items[-1]}" if len(items) > 1 else "".join(items)


def _evidence(result: ProbeResult) -> Evidence:
    trace = result.traces[0].name if result.traces else None
    return Evidence(result.probe, trace, result.evidence)


def sentence_of(text: str) -> str:
    """``text`` as a sentence: first letter upper case, a full stop at the end."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- from traces -----------------------------------------------------------------------------


def label_of(trace: Trace, key: str) -> Any:
    """The value of one of the trace's labels (its meta record's ``labels``), or None."""
    labels = trace.meta.get("labels")
    return labels.get(key) if isinstance(labels, Mapping) else None


def probe_of(trace: Trace) -> str | None:
    """Which probe wrote the trace: its ``probe`` label, ``auth-<slug>`` meaning ``auth``."""
    name = label_of(trace, "probe")
    if not isinstance(name, str):
        return None
    return "auth" if name.startswith("auth-") else name


def started(trace: Trace) -> tuple[str, str]:
    """A sort key: when the trace began, then its file name."""
    return (str(trace.meta.get("started_at") or ""), trace.path.name if trace.path else "")


def trace_target(traces: Sequence[Trace]) -> str:
    """The target of the latest of ``traces``, in words (see :func:`target_words`)."""
    if not traces:
        return ""
    latest = max(traces, key=started)
    return target_words(
        str(latest.meta.get("target") or ""),
        label_of(latest, "dialect"),
        label_of(latest, "server_auth"),
    )


def _paths(*traces: Trace) -> tuple[Path, ...]:
    return tuple(t.path for t in traces if t.path is not None)


def judge_traces(
    traces: Iterable[Trace],
    *,
    profile: str | Path | Mapping[str, Any] | Profile | None = None,
) -> ProbeReport:
    """Recompute the probes' verdicts from their traces.

    Each probe is judged from its latest trace (the auth probe from the latest trace of each
    credential; a credential without a trace is "not tried", inconclusive). Traces without a
    ``probe`` label are ignored here. ``profile`` overrides the profile the workflow trace
    was recorded with (its ``profile`` label; ``netra-bridge`` when that is not a built-in).
    Returns a :class:`ProbeReport` with only the probes that have traces: show it, or pass
    the traces to :func:`netra_ws.report.build_report` for the whole report.
    """
    groups: dict[str, list[Trace]] = {}
    for trace in traces:
        name = probe_of(trace)
        if name in PROBES:
            groups.setdefault(name, []).append(trace)
    results = []
    for name in PROBES:
        group = sorted(groups.get(name, []), key=started)
        if not group:
            continue
        latest = group[-1]
        target, paths = trace_target([latest]), _paths(latest)
        if name == "connection":
            results.append(judge_connection(latest.records, target=target, traces=paths))
        elif name == "negative":
            results.append(judge_negative(latest.records, target=target, traces=paths))
        elif name == "workflow":
            prof = profile if profile is not None else _recorded_profile(latest)
            results.append(judge_workflow(latest.records, prof, target=target, traces=paths))
        else:
            results.append(_judge_auth_traces(group))
    every = [t for group in groups.values() for t in group]
    folders = {t.path.parent for t in every if t.path is not None}
    return ProbeReport(
        results,
        target=trace_target(every),
        out_dir=folders.pop() if len(folders) == 1 else None,
    )


def _recorded_profile(trace: Trace) -> Profile:
    try:
        return load_profile(str(label_of(trace, "profile") or DEFAULT_PROFILE))
    except ValueError:
        return load_profile(DEFAULT_PROFILE)  # a custom profile the trace only names


def _judge_auth_traces(traces: Sequence[Trace]) -> ProbeResult:
    latest: dict[str, Trace] = {}
    for trace in sorted(traces, key=started):
        latest[str(label_of(trace, "credential"))] = trace
    rows = []
    for credential in AUTH_MATRIX:
        found = latest.get(credential.label)
        if found is None:
            rows.append(not_tried_row(credential, traced=False))
        else:
            name = found.path.name if found.path is not None else None
            rows.append(judge_auth_row(credential, found.records, trace=name))
    chosen = list(latest.values())
    return judge_auth(rows, target=trace_target(chosen), traces=_paths(*chosen))


# --- the contract tests ----------------------------------------------------------------------

ContractStatus = Literal["passed", "failed", "skipped", "not run"]
SKIPPED: ContractStatus = "skipped"
NOT_RUN: ContractStatus = "not run"

STRUCTURE_EVENTS: tuple[str, ...] = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)

# The test functions of netra_ws/contract/test_agent_events.py, in order; each maps to the
# probe it reads.
CONTRACT_TESTS: Mapping[str, str] = {
    "test_connection_established_on_connect": "connection",
    "test_output_event_sent_as_input_gets_no_reply": "negative",
    **{f"test_{event}_structure": "workflow" for event in STRUCTURE_EVENTS},
}


@dataclass(frozen=True)
class ContractResult:
    """The verdict of one contract test.

    ``status`` is ``"passed"``, ``"failed"``, ``"skipped"`` (the profile sets no fields for
    the event) or ``"not run"`` (its probe is missing, e.g. a report made from traces
    without a workflow trace); ``message`` is what pytest prints on failure or skip, and the
    check's explanation on a pass. ``probe`` is the result the verdict came from (None when
    not run): its ``traces`` hold the evidence.
    """

    test: str
    status: ContractStatus
    message: str
    probe: ProbeResult | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASSED


def evaluate_contract(probes: Mapping[str, ProbeResult] | ProbeReport) -> list[ContractResult]:
    """Judge the seven contract tests from the ``connection``, ``negative`` and ``workflow``
    probe results (a dict by probe name, or a :class:`ProbeReport`).

    One :class:`ContractResult` per test, in :data:`CONTRACT_TESTS` order. A structure test
    judges only events the server generated after ``user_message``: when none arrived it
    fails with the reason, never validating something else in their place.
    """
    results = []
    for test, probe_name in CONTRACT_TESTS.items():
        result = probes.get(probe_name)
        if result is None:
            results.append(
                ContractResult(test, NOT_RUN, f"the {probe_name} probe was not run: no verdict.")
            )
        elif probe_name == "workflow":
            event = test.removeprefix("test_").removesuffix("_structure")
            results.append(_structure(test, result, event))
        elif result.status == PASSED:
            results.append(ContractResult(test, PASSED, result.explanation, result))
        else:
            results.append(ContractResult(test, FAILED, result.explanation, result))
    return results


def _structure(test: str, workflow: ProbeResult, event: str) -> ContractResult:
    name = f"fields: {event}"
    if workflow.status == INCONCLUSIVE:  # nothing to validate, and the probe says why
        return ContractResult(test, FAILED, workflow.explanation, workflow)
    if name not in workflow.checks.names:
        return ContractResult(
            test, SKIPPED, f"the profile sets no required fields for {event}", workflow
        )
    check = workflow.checks[name]
    if check.status == PASSED:
        return ContractResult(test, PASSED, check.explanation, workflow)
    reasons = [check.explanation]
    arrived = workflow.checks["agent events"]
    if arrived.status != PASSED:
        reasons = [arrived.explanation]  # nothing arrived: the why is all that matters
    elif "required events" in workflow.checks.names:
        required = workflow.checks["required events"]
        if required.status != PASSED and event in required.explanation:
            reasons.append(required.explanation)
    return ContractResult(test, FAILED, " ".join(reasons), workflow)
