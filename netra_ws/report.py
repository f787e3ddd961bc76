"""Traces and verdicts in, a Markdown issue comment and its PNG charts out. Pure: no network.

Build a report from the traces of an investigation (files, folders, or loaded traces) or
from a :class:`~netra_ws.probes.ProbeReport`, then write it or paste it::

    report = build_report("data/probes-20260101T120000/")   # a folder of traces
    report = build_report("data/")                          # the notebooks' latest outputs
    report = build_report(await run_probes(out="data"))      # verdicts straight from the probes
    report.verdict                                          # "passed" / "failed" / "inconclusive"
    path = report.write("data/report.md")                   # + data/report-timeline.png, …
    print(report.summary())                                 # one line, for a terminal

From the command line: ``python -m netra_ws report data/ --out data/report.md``.

The verdicts are recomputed from the traces with :mod:`netra_ws.expect` (:func:`judge_traces`),
so a folder saved months ago gives the same verdicts as the run that wrote it. The probes
label their traces (``probe``, ``dialect``, ``server_auth``, ``profile``, ``credential``),
which is how each trace finds its part of the report. The seven contract tests are judged
by :func:`netra_ws.contract.evaluate_contract`, the function the pytest suite uses.

The Markdown reads as a GitHub comment: the verdict, a table per probe and per contract
test, the key findings in plain sentences, the event sequence of a representative run,
timing statistics, charts (PNG files next to the report, referenced by relative path, with
alt text that says what they show), the environment, and the commands that reproduce it.
Its Markdown, summary, findings, notes and alt texts go through :mod:`netra_ws.redact` (and
again at every rendering), so a token that slipped into a trace never reaches the issue.
"""

from __future__ import annotations

import base64
import io
import os
import platform
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from .analysis import assign_runs, event_gaps, run_stats, summarize_runs
from .contract import ContractResult, evaluate_contract
from .errors import NetraWsError, TraceFormatError
from .events import AGENT_EVENTS, RUN_TRIGGER_TYPES
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
)
from .notebooks import NOTEBOOKS, latest_output
from .plots import FIGSIZE, plot_gaps, plot_timeline
from .probes import (  # the live probes' rules: a verdict from traces is the same verdict
    AUTH_MATRIX,
    PROBES,
    ProbeReport,
    ProbeResult,
    auth_result,
    empty_auth_row,
    first_frame_facts,
    judge_auth_row,
    workflow_result,
)
from .redact import Redactor, redact_url
from .trace import Trace, TraceWarning, read_trace

__all__ = [
    "STALL_THRESHOLD_S",
    "Chart",
    "Report",
    "build_report",
    "investigation_sources",
    "judge_traces",
]

ReportSource = str | os.PathLike[str] | Trace | ProbeReport

# A gap between consecutive agent events above this is drawn (and counted) as a stall.
STALL_THRESHOLD_S = 2.0

# The notebooks whose outputs a report reads (the last one writes the report).
_INVESTIGATION_NOTEBOOKS = NOTEBOOKS[:-1]
_DEFAULT_TITLE = "Issue #937 — WebSocket agent events: findings"
_ICONS = {
    PASSED: "✅ passed",
    FAILED: "❌ failed",
    INCONCLUSIVE: "⚠️ inconclusive",
    "skipped": "⏭️ skipped",
    "not run": "➖ not run",
}
_PROBE_TITLES = {
    "connection": "Connecting",
    "negative": "Output events sent as input",
    "workflow": "user_message",
    "auth": "Authentication",
}
_AUTH_FORMS = {
    "header": "with the token in the Authorization header",
    "subprotocol": "with the token as a jwt.<base64url> subprotocol",
    "both": "with the token as a header and as a subprotocol",
    "none": "without a token",
}
_CHARTS = "<!-- charts -->"  # where the images go in the rendered body
_SEQUENCE_ROWS = 20  # longer runs are cut, with a line saying how many frames were left out


# --- the report ------------------------------------------------------------------------------


@dataclass
class Chart:
    """One chart of a report: its ``figure`` (matplotlib, not shown), the file ``name`` it is
    saved under (``<report stem>-<name>.png``) and the ``alt`` text that says what it shows,
    numbers included, for readers who do not see the image."""

    name: str
    figure: Figure
    alt: str
    _png: bytes | None = field(default=None, repr=False)

    def png(self) -> bytes:
        """The chart as PNG bytes, 120 dpi (what :meth:`Report.write` saves); drawn once."""
        if self._png is None:
            buffer = io.BytesIO()
            self.figure.savefig(
                buffer, format="png", dpi=120, bbox_inches="tight", facecolor="white"
            )
            self._png = buffer.getvalue()
        return self._png


@dataclass
class Report:
    """A Markdown issue comment: the verdicts, the findings, timing and charts of traces.

    Make one with :func:`build_report`. ``verdict`` is the overall status of the probes;
    ``probes`` the verdict per probe (:class:`~netra_ws.probes.ProbeReport`), ``contract``
    the seven contract tests, ``findings`` the key sentences, ``charts`` the figures,
    ``notes`` what is missing or was skipped, ``traces`` the trace files read. Next:
    :meth:`write` it to a ``.md`` file (the PNG charts go next to it), or paste
    :attr:`markdown` into the issue.
    """

    title: str
    verdict: Status
    probes: ProbeReport
    contract: list[ContractResult]
    findings: list[str]
    charts: list[Chart]
    notes: list[str]
    traces: list[Path]
    body: str = field(repr=False)  # the Markdown before redaction, charts at _CHARTS
    redactor: Redactor = field(default_factory=Redactor, repr=False)

    @property
    def markdown(self) -> str:
        """The report as Markdown, charts referenced as ``report-<name>.png`` (redacted)."""
        return self.to_markdown()

    def to_markdown(
        self, *, stem: str = "report", image_base: str = "", embed_images: bool = False
    ) -> str:
        """The report as Markdown, redacted.

        Charts are referenced as ``<image_base><stem>-<name>.png``; with ``embed_images``
        they are inlined as ``data:`` URIs instead, which is how a notebook shows the report
        with its charts wherever the notebook is opened. :meth:`write` uses the file's stem.
        """
        redact = self.redactor.redact_text
        images = []
        for chart in self.charts:
            if embed_images:  # base64 is never redacted: a regex could only corrupt it
                src = "data:image/png;base64," + base64.b64encode(chart.png()).decode("ascii")
            else:
                src = redact(f"{image_base}{stem}-{chart.name}.png")
            images.append(f"![{redact(_alt(chart.alt))}]({src})")
        return redact(self.body).replace(_CHARTS, "\n\n".join(images))

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the report to ``path`` (``.md``) and each chart next to it as
        ``<stem>-<name>.png``; return the report's path. Existing files are replaced.

        Attach the PNGs with the Markdown (or commit them beside it) so the images resolve;
        without them the alt text still says what each chart shows.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        for chart, image in zip(self.charts, self.chart_paths(out), strict=True):
            image.write_bytes(chart.png())
        out.write_text(self.to_markdown(stem=out.stem), encoding="utf-8")
        return out

    def chart_paths(self, path: str | os.PathLike[str]) -> list[Path]:
        """Where :meth:`write` puts (or put) the charts for a report written to ``path``."""
        out = Path(path)
        return [out.parent / f"{out.stem}-{chart.name}.png" for chart in self.charts]

    def summary(self) -> str:
        """One line: the verdict, each probe's status, and the contract tests' tally."""
        probes = ", ".join(f"{r.probe} {r.status}" for r in self.probes) or "no probe traces"
        tally = Counter(c.status for c in self.contract)
        contract = ", ".join(f"{n} {s}" for s, n in tally.items())
        return self.redactor.redact_text(
            f"verdict: {self.verdict} — {probes}; contract tests: {contract}"
        )

    def _repr_markdown_(self) -> str:
        return self.to_markdown(embed_images=True)

    def __repr__(self) -> str:
        return f"<Report {self.summary()}; {len(self.traces)} traces, {len(self.charts)} charts>"


def _alt(text: str) -> str:
    return " ".join(text.replace("[", "(").replace("]", ")").split())


# --- building --------------------------------------------------------------------------------


def build_report(
    sources: ReportSource | Iterable[ReportSource],
    *,
    title: str = _DEFAULT_TITLE,
    profile: str | Path | Mapping[str, Any] | Profile | None = None,
    dialect: str | None = None,
    commands: Sequence[str] | None = None,
    notes: Sequence[str] = (),
    charts: bool = True,
    redactor: Redactor | None = None,
) -> Report:
    """Build the report of an investigation from its traces (or a ProbeReport).

    ``sources``: trace files, folders, loaded :class:`~netra_ws.trace.Trace` objects, or a
    :class:`~netra_ws.probes.ProbeReport` (its verdicts are used as they are, its traces
    read for the rest). A folder that holds notebook output folders (``01_connect/``…, as
    ``data/`` does) stands for the latest execution of each of notebooks 01–04, and a note
    says which are missing; any other folder for every ``*.jsonl`` under it.

    Traces of an embedded server with another dialect or auth mode than the investigation's
    own (the ``staging-937`` comparison of notebook 02) are reported as comparisons, not
    verdicts. The investigation's own is the most common among the probe traces, or the
    most common of ``dialect``. ``profile`` overrides the workflow traces' own profile
    label. ``commands`` replace the derived "reproduce" commands; ``notes`` are added under
    the findings; ``charts=False`` skips drawing (for a quick verdict: :meth:`Report.summary`).

    Nothing is written: call :meth:`Report.write`. Unreadable files are skipped, with a note.
    """
    redactor = redactor or Redactor()
    gathered = _gather(sources)
    all_notes = [redactor.redact_text(note) for note in [*gathered.notes, *notes]]
    own = _main_server(gathered.traces, dialect)
    primary = [t for t in gathered.traces if _server(t) in (None, own)]
    others: dict[tuple[str, str], list[Trace]] = {}
    for trace in gathered.traces:
        key = _server(trace)
        if key not in (None, own):
            others.setdefault(key, []).append(trace)

    judged = judge_traces(primary, profile=profile)
    given = {r.probe: r for report in gathered.reports for r in report}
    results = [given.get(name) or _find(judged, name) for name in PROBES]
    probes = ProbeReport(
        [r for r in results if r is not None],
        target=next((rep.target for rep in gathered.reports), judged.target),
        out_dir=judged.out_dir,
    )
    contract = evaluate_contract(probes)
    comparisons = {key: judge_traces(group, profile=profile) for key, group in others.items()}

    by_path = {t.path.resolve(): t for t in gathered.traces if t.path is not None}
    findings = [_finding(r, _traces_of(r, by_path, primary)) for r in probes]
    frames = {trace: trace.to_frame() for trace in primary}  # each trace's table, once
    timing = _Timing.of(primary, frames)
    if timing is not None:
        findings.append(_timing_finding(timing))
    findings += [_comparison_finding(key, rep) for key, rep in comparisons.items()]
    findings = [redactor.redact_text(finding) for finding in findings]

    representative = _representative(primary, frames)
    drawn = _charts(representative, timing, frames) if charts else []
    for chart in drawn:
        chart.alt = redactor.redact_text(chart.alt)
    body = _render(
        title=title,
        probes=probes,
        contract=contract,
        findings=findings,
        notes=all_notes,
        representative=representative,
        timing=timing,
        has_charts=bool(drawn),
        environment=_environment(primary, own),
        commands=list(commands) if commands is not None else _commands(primary, own, sources),
    )
    return Report(
        title=title,
        verdict=probes.status,
        probes=probes,
        contract=contract,
        findings=findings,
        charts=drawn,
        notes=all_notes,
        traces=[t.path for t in gathered.traces if t.path is not None],
        body=body,
        redactor=redactor,
    )


def investigation_sources(
    data_dir: str | os.PathLike[str], notebooks: Sequence[str] = _INVESTIGATION_NOTEBOOKS
) -> tuple[list[Path], list[str]]:
    """The latest output folder of each notebook under ``data_dir``, and a note per missing one.

    What :func:`build_report` reads for a folder like ``data/``. A missing notebook is not an
    error: its note (for the report) says it has not run there, and what to do.
    """
    folders, notes = [], []
    for name in notebooks:
        try:
            folders.append(latest_output(data_dir, name))
        except NetraWsError:
            notes.append(
                f"No output of notebook {name} under {data_dir}: it has not run there, so its "
                "part is missing from this report. Run it, then build the report again."
            )
    return folders, notes


@dataclass
class _Gathered:
    traces: list[Trace] = field(default_factory=list)
    reports: list[ProbeReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _gather(sources: ReportSource | Iterable[ReportSource]) -> _Gathered:
    if isinstance(sources, (str, os.PathLike, Trace, ProbeReport)):
        sources = [sources]
    out = _Gathered()
    files: list[Path] = []
    for source in sources:
        if isinstance(source, ProbeReport):
            out.reports.append(source)
            files += [path for result in source for path in result.traces]
        elif isinstance(source, Trace):
            out.traces.append(source)
        else:
            files += _trace_files(Path(source), out.notes)
    seen = {t.path.resolve() for t in out.traces if t.path is not None}
    for path in files:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceWarning)
            try:
                out.traces.append(read_trace(path))
            except (TraceFormatError, OSError) as exc:
                out.notes.append(f"Skipped {path.name}: {exc}")
        out.notes += [str(w.message) for w in caught if issubclass(w.category, TraceWarning)]
    if not out.traces and not out.reports:
        out.notes.append("No traces were found, so there is nothing to judge.")
    return out


def _trace_files(path: Path, notes: list[str]) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        notes.append(f"{path} does not exist: nothing was read from it.")
        return []
    if any((path / name).is_dir() for name in _INVESTIGATION_NOTEBOOKS):
        folders, missing = investigation_sources(path)
        notes += missing
        return [file for folder in folders for file in sorted(folder.rglob("*.jsonl"))]
    files = sorted(path.rglob("*.jsonl"))
    if not files:
        notes.append(f"{path} holds no *.jsonl trace.")
    return files


def _find(report: ProbeReport, name: str) -> ProbeResult | None:
    return next((r for r in report if r.probe == name), None)


def _traces_of(
    result: ProbeResult, by_path: Mapping[Path, Trace], pool: list[Trace]
) -> list[Trace]:
    found = [by_path[p.resolve()] for p in result.traces if p.resolve() in by_path]
    return found or [t for t in pool if _probe_of(t) == result.probe]


# --- labels and records ----------------------------------------------------------------------


def _label(trace: Trace, key: str) -> Any:
    labels = trace.meta.get("labels")
    return labels.get(key) if isinstance(labels, Mapping) else None


def _probe_of(trace: Trace) -> str | None:
    """Which probe wrote the trace: its ``probe`` label, ``auth-<slug>`` meaning ``auth``."""
    name = _label(trace, "probe")
    if not isinstance(name, str):
        return None
    return "auth" if name.startswith("auth-") else name


def _started(trace: Trace) -> tuple[str, str]:
    return (str(trace.meta.get("started_at") or ""), trace.path.name if trace.path else "")


def _server(trace: Trace) -> tuple[str, str] | None:
    """The embedded server a probe trace met, as (dialect, auth mode); None for a URL."""
    dialect = _label(trace, "dialect")
    return (str(dialect), str(_label(trace, "server_auth"))) if dialect else None


def _main_server(traces: Sequence[Trace], dialect: str | None) -> tuple[str, str] | None:
    counts = Counter(
        key
        for t in traces
        if _probe_of(t) is not None
        and (key := _server(t)) is not None
        and dialect in (None, key[0])
    )
    return counts.most_common(1)[0][0] if counts else None


def _of_kind(records: Iterable[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("kind") == kind]


def _received(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in _of_kind(records, "frame") if r.get("dir") == "receive"]


def _sent(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in _of_kind(records, "frame") if r.get("dir") == "send"]


def _marks(records: Iterable[Mapping[str, Any]], label: str) -> list[Mapping[str, Any]]:
    return [r for r in _of_kind(records, "mark") if r.get("label") == label]


def _server_close(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next(
        (r for r in _of_kind(records, "close") if r.get("initiated_by") not in ("client", None)),
        None,
    )


def _ref(frame: Mapping[str, Any]) -> str:
    return f"{frame.get('event') or 'frame'} #{frame.get('seq')}"


def _connection_problem(records: Sequence[Mapping[str, Any]]) -> str | None:
    """What broke the connection, in words, or None: an error record, AUTH_FAILED, or a close
    the server started (what the live probe saw as an exception)."""
    error = next(iter(_of_kind(records, "error")), None)
    if error is not None:
        return str(error.get("message") or error.get("exception") or "the connection failed")
    close = _server_close(records)
    closed = f", then the connection closed with {close.get('code')}" if close else ""
    refused = next((f for f in _received(records) if f.get("error_code") == "AUTH_FAILED"), None)
    if refused is not None:
        return f"the server refused the credentials: {_ref(refused)} AUTH_FAILED{closed}."
    if close is not None:
        reason = f" {close.get('reason')}" if close.get("reason") else ""
        return f"the server closed the connection with {close.get('code')}{reason}."
    return None


# --- verdicts from traces --------------------------------------------------------------------


def judge_traces(
    traces: Iterable[Trace],
    *,
    profile: str | Path | Mapping[str, Any] | Profile | None = None,
) -> ProbeReport:
    """Recompute the probes' verdicts from their traces, with :mod:`netra_ws.expect`.

    Each probe is judged from its latest trace (the auth probe from the latest trace of each
    credential; a credential without a trace is "not tried", inconclusive). Traces without a
    ``probe`` label are ignored here. ``profile`` overrides the profile the workflow trace
    was recorded with (its ``profile`` label; ``netra-bridge`` when that is not a built-in).
    Returns a :class:`~netra_ws.probes.ProbeReport` with only the probes that have traces:
    show it, or pass the traces to :func:`build_report` for the whole report.
    """
    groups: dict[str, list[Trace]] = {}
    for trace in traces:
        name = _probe_of(trace)
        if name in PROBES:
            groups.setdefault(name, []).append(trace)
    results = []
    for name in PROBES:
        group = sorted(groups.get(name, []), key=_started)
        if not group:
            continue
        if name == "connection":
            results.append(_judge_connection(group[-1]))
        elif name == "negative":
            results.append(_judge_negative(group[-1]))
        elif name == "workflow":
            results.append(_judge_workflow(group[-1], profile))
        else:
            results.append(_judge_auth(group))
    every = [t for group in groups.values() for t in group]
    folders = {t.path.parent for t in every if t.path is not None}
    return ProbeReport(
        results,
        target=_target_label(every),
        out_dir=folders.pop() if len(folders) == 1 else None,
    )


def _target_label(traces: Sequence[Trace]) -> str:
    if not traces:
        return ""
    latest = max(traces, key=_started)
    url = redact_url(str(latest.meta.get("target") or ""))
    dialect, auth = _label(latest, "dialect"), _label(latest, "server_auth")
    if dialect:
        return f"embedded {dialect} server, auth {auth} ({url})"
    return url


def _paths(*traces: Trace) -> tuple[Path, ...]:
    return tuple(t.path for t in traces if t.path is not None)


def _judge_connection(trace: Trace) -> ProbeResult:
    records = trace.records
    check = check_connection(records)
    facts: dict[str, Any] = {"target": _target_label([trace])}
    opened = next(iter(_of_kind(records, "open")), None)
    if opened is not None:
        facts.update(
            http_status=opened.get("http_status"),
            subprotocol=opened.get("subprotocol"),
            auth=opened.get("auth"),
            handshake_ms=opened.get("connect_ms"),
        )
    facts.update(first_frame_facts(records))
    return ProbeResult(
        "connection",
        check.status,
        check.explanation,
        evidence=check.evidence,
        traces=_paths(trace),
        facts=facts,
        checks=Checks([check]),
    )


def _judge_negative(trace: Trace) -> ProbeResult:
    records = trace.records
    checks = check_no_reply(records)
    names = [str(f.get("event") or "frame") for f in _sent(records)]
    windows = [m.get("window_s") for m in _marks(records, "quiet window begins")]
    quiet = windows[0] if windows else None
    facts: dict[str, Any] = {"target": _target_label([trace]), "quiet_s": quiet, "sent": names}
    trap = _marks(records, "negative probe: the single read returned")
    problem = _connection_problem(records)
    if not trap:
        # Refused before the first read: nothing was learnt about inputs.
        return ProbeResult(
            "negative",
            INCONCLUSIVE,
            f"the probe could not finish: {problem or 'it stopped before its first read.'}",
            traces=_paths(trace),
            facts=facts,
            checks=checks,
        )
    first = next(iter(_received(records)), None)
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
    if status == PASSED:
        explanation = (
            f"none of the {len(checks)} output event names sent as input ({', '.join(names)}) "
            f"got a reply within {quiet:g} s each.{trap_note}"
        )
    else:
        failed = (
            " ".join(c.explanation for c in checks.failures)
            or f"the probe could not finish: {problem}"
        )
        explanation = failed + trap_note
    return ProbeResult(
        "negative",
        status,
        explanation,
        evidence=tuple(seq for c in checks.failures for seq in c.evidence),
        traces=_paths(trace),
        facts=facts,
        checks=checks,
    )


def _workflow_profile(
    trace: Trace, given: str | Path | Mapping[str, Any] | Profile | None
) -> Profile:
    if given is not None:
        return load_profile(given)
    try:
        return load_profile(str(_label(trace, "profile") or "netra-bridge"))
    except ValueError:
        return load_profile("netra-bridge")  # a custom profile the trace only names


def _judge_workflow(
    trace: Trace, profile: str | Path | Mapping[str, Any] | Profile | None
) -> ProbeResult:
    records = trace.records
    prof = _workflow_profile(trace, profile)
    checks = check_run(records, prof)
    problem = _connection_problem(records)
    forms = [m.get("form") for m in _marks(records, "workflow probe: user_message sent")]
    facts: dict[str, Any] = {"target": _target_label([trace]), "profile": prof.name, "forms": forms}
    facts.update(first_frame_facts(records))
    facts["agent_events"] = sum(1 for f in _received(records) if f.get("event") in AGENT_EVENTS)
    return workflow_result(checks, facts, _paths(trace), problem=problem)


def _judge_auth(traces: Sequence[Trace]) -> ProbeResult:
    latest: dict[str, Trace] = {}
    for trace in sorted(traces, key=_started):
        latest[str(_label(trace, "credential"))] = trace
    rows = []
    for credential in AUTH_MATRIX:
        trace = latest.get(credential.label)
        rows.append(
            _auth_row(credential, trace) if trace is not None else _auth_row_not_tried(credential)
        )
    return auth_result(rows, _paths(*latest.values()), _target_label(list(latest.values())))


def _auth_row_not_tried(credential: Any) -> dict[str, Any]:
    row = empty_auth_row(credential)
    row["explanation"] = "not tried: there is no trace of this credential."
    return row


def _auth_row(credential: Any, trace: Trace) -> dict[str, Any]:
    """The auth matrix row of one credential, read from its trace as the live probe saw it."""
    records = trace.records
    row = empty_auth_row(credential)
    row["trace"] = trace.path.name if trace.path is not None else None
    opened = next(iter(_of_kind(records, "open")), None)
    error = next(iter(_of_kind(records, "error")), None)
    if opened is None and error is not None:
        if error.get("http_status") is None:
            row["explanation"] = f"could not connect: {error.get('message')}"
            return row
        row["http_status"] = error.get("http_status")
    if opened is not None:
        row["http_status"] = opened.get("http_status")
        row["subprotocol"] = opened.get("subprotocol")
    received = _received(records)
    accepted = False
    if received:
        first = received[0]
        if first.get("event") == "connection_established":
            accepted = True
            row["user_id"] = first.get("user_id")
            row["first_frame"] = first.get("event")
        elif first.get("error_code"):
            row["first_frame"] = f"{first.get('event')} {first.get('error_code')}"
        else:
            row["first_frame"] = first.get("event")
    close = _server_close(records)
    row["close_code"] = close.get("code") if close is not None else None
    row["agent_events"] = any(f.get("event") in AGENT_EVENTS for f in received)
    row["status"], row["explanation"] = judge_auth_row(credential, row, accepted)
    return row


# --- findings --------------------------------------------------------------------------------


def _finding(result: ProbeResult, traces: list[Trace]) -> str:
    """The key finding of one probe in plain sentences: what was sent, what came back, and
    what that means."""
    title = f"**{_PROBE_TITLES.get(result.probe, result.probe)}.** "
    trace = max(traces, key=_started) if traces else None
    text = None
    if trace is not None:
        if result.probe == "connection":
            text = _connection_sentences(result, trace)
        elif result.probe == "negative":
            text = _negative_sentences(result, trace)
        elif result.probe == "workflow":
            text = _workflow_sentences(result, trace)
    if result.probe == "auth":
        text = _auth_sentences(result)
    return title + (text or _sentence(result.explanation))


def _capital(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]


def _sentence(text: str) -> str:
    text = _capital(text)
    return text if text.endswith((".", "!", "?")) else text + "."


def _auth_words(records: Sequence[Mapping[str, Any]]) -> str:
    opened = next(iter(_of_kind(records, "open")), None)
    if opened is not None and opened.get("auth"):
        return _AUTH_FORMS.get(str(opened["auth"]), f"with auth {opened['auth']}")
    error = next(iter(_of_kind(records, "error")), None)
    if error is not None:
        header = "Authorization" in (error.get("request_header_names") or [])
        offered = any(
            str(s).startswith(("jwt.", "jwt-auth.", "bearer."))
            for s in error.get("offered_subprotocols") or []
        )
        if header:
            return _AUTH_FORMS["both" if offered else "header"]
        return _AUTH_FORMS["subprotocol" if offered else "none"]
    return "with the auth form the trace does not record"


def _demo_user_note(user_id: Any) -> str:
    if str(user_id).startswith("demo-use"):
        return (
            " That is the demo user: the server did not take a token (none sent, or its"
            " DEMO_MODE), and the demo user gets no agent runs on staging."
        )
    return ""


def _connection_sentences(result: ProbeResult, trace: Trace) -> str:
    records = trace.records
    how = _auth_words(records)
    facts = result.facts
    received = _received(records)
    if result.status == PASSED and received:
        first = received[0]
        ms = facts.get("established_ms")
        when = f", {ms:.1f} ms after connecting began" if isinstance(ms, (int, float)) else ""
        return (
            f"We connected {how} and, without sending anything, read one frame: "
            f"{_ref(first)}{when}. The server queues it at connect time, so it is never the "
            f"reply to anything a client sends. It names user_id {facts.get('user_id')!r}."
            + _demo_user_note(facts.get("user_id"))
        )
    error = next(iter(_of_kind(records, "error")), None)
    if error is not None and error.get("http_status"):
        return (
            f"We connected {how}: the server refused the handshake with HTTP "
            f"{error.get('http_status')}. It enforces authentication before accepting; "
            "connect with a valid token."
        )
    refused = next((f for f in received if f.get("error_code") == "AUTH_FAILED"), None)
    if refused is not None:
        close = _server_close(records)
        closed = f" and closed the connection with {close.get('code')}" if close else ""
        status = next(iter(_of_kind(records, "open")), {}).get("http_status")
        return (
            f"We connected {how}: the WebSocket handshake succeeded (HTTP {status}), then the "
            f"server sent {_ref(refused)} AUTH_FAILED{closed}. The server enforces "
            "authentication: connect with a valid token (header or jwt.<token> subprotocol)."
        )
    return f"We connected {how}: {result.explanation}"


def _negative_sentences(result: ProbeResult, trace: Trace) -> str | None:
    records = trace.records
    sent = [str(f.get("event") or "frame") for f in _sent(records)]
    if not sent:
        return None
    windows = [m.get("window_s") for m in _marks(records, "quiet window begins")]
    quiet = f"{windows[0]:g} s" if windows and isinstance(windows[0], (int, float)) else "a while"
    if result.status == PASSED:
        text = f"We sent {sent[0]} as input and waited {quiet}: nothing came back."
        if len(sent) > 1:
            text += f" The same for {_and(sent[1:])} ({quiet} each)."
        trap = result.facts.get("single_read_after_connect") or ""
        text += " The server ignores its own output names; the flawed test read "
        if str(trap).startswith("connection_established"):
            text += (
                f"connection_established instead: one read right after sending {sent[0]} "
                f"returned {trap}, the frame queued at connect time."
            )
        else:
            text += "the frame that was already waiting instead."
        return text
    if result.status == INCONCLUSIVE:
        why = result.explanation.removeprefix("the probe could not finish: ")
        return (
            f"We tried to send {sent[0]} as input, but the connection was refused first, so "
            f"nothing was learnt about inputs: {why}"
        )
    replies = " ".join(c.explanation for c in result.checks.failures)
    return (
        f"We sent {_and(sent)} as input and waited {quiet} after each, expecting silence "
        f"(the Netra backend ignores output names sent as input): {replies}"
    )


def _workflow_sentences(result: ProbeResult, trace: Trace) -> str:
    records = trace.records
    triggers = [f for f in _sent(records) if f.get("event") in RUN_TRIGGER_TYPES]
    if not triggers:
        problem = _connection_problem(records)
        if problem is None:
            return f"No user_message was sent: {result.explanation}"
        return (
            f"We connected {_auth_words(records)} to send user_message, but {problem} No agent "
            "run could start, so no event was validated."
        )
    frame = trace.to_frame()
    runs = run_stats(frame)
    if not (runs["n_events"] > 0).any():
        window = _collection_window(records)
        waited = f" and collected for {window} each" if window else ""
        what = _and([f"user_message ({_form(f)})" for f in triggers])
        text = f"We sent {what}{waited}: no agent events came back."
        arrived = result.checks["agent events"].explanation if result.checks else ""
        causes = re.search(r"Likely causes: .*?(?= This is a failure|$)", arrived)
        text += f" {causes.group(0)}" if causes else _demo_user_note(result.facts.get("user_id"))
        return text + (
            " This is a failure, not a pass: no event was validated (the proposed #937 fix "
            "would have validated a hand-made event here)."
        )
    sentences = []
    for trigger, (_, run) in zip(triggers, runs.iterrows(), strict=False):
        events = _run_events(frame, run["run"])
        took = (
            f" in {_duration(run['duration_s'])}, the first after "
            f"{_duration(run['time_to_first_event_s'])}"
            if pd.notna(run["duration_s"])
            else f"; it never ended (last: {run['last_event']})"
        )
        sentences.append(
            f"We sent user_message ({_form(trigger)}) and received {_squeeze(events)}{took}."
        )
    profile = result.facts.get("profile") or "netra-bridge"
    checks = result.checks
    if result.status == PASSED:
        sentences.append(
            f"All {len(checks)} checks of profile {profile} passed: every frame parsed, every "
            "critical event arrived, in order, tool calls were paired, and each event carries "
            "its required fields."
        )
    else:
        failed = checks.failures or [c for c in checks if c.status != PASSED]
        sentences.append(
            f"{len(failed)} of {len(checks)} checks of profile {profile} did not pass: "
            + "; ".join(f"{c.name}: {c.explanation}" for c in failed)
        )
    return " ".join(sentences)


def _auth_sentences(result: ProbeResult) -> str:
    rows = result.rows
    if not rows:
        return _sentence(result.explanation)
    refused = [r for r in rows if r["expected"] == "refused" and r["status"] == PASSED]
    accepted = [r for r in rows if r["expected"] == "refused" and r["status"] == FAILED]
    worked = [r for r in rows if r["expected"] != "refused" and r["status"] == PASSED]
    starved = [r for r in rows if r["expected"] != "refused" and r["status"] == FAILED]
    untried = [r for r in rows if r["status"] == INCONCLUSIVE]
    text = []
    if result.status == PASSED:
        text.append("Authentication is enforced.")
    if refused:
        how = "; ".join(sorted({_refusal_words(r) for r in refused}))
        text.append(f"{_capital(_credentials(refused, 'refused'))} ({how}).")
    if accepted:
        users = _and(sorted({repr(str(r["user_id"])) for r in accepted}))
        text.append(
            f"Authentication is not enforced: {_credentials(accepted, 'accepted')} as {users}."
        )
    if worked:
        forms = _and([r["credential"] for r in worked])
        text.append(f"A valid token got agent events ({forms}).")
    if starved:
        demo = any(str(r["user_id"]).startswith("demo-use") for r in starved)
        outcome = (
            "no agent events flowed after user_message"
            if all(r["first_frame"] == "connection_established" for r in starved)
            else "the connection was refused"
        )
        text.append(
            f"With a valid token ({_and([r['credential'] for r in starved])}) {outcome}"
            + (" — the server saw the demo user, so it ignored the token." if demo else ".")
        )
    if untried:
        names = [str(r["credential"]) for r in untried]
        if names == ["expired token"]:
            need = "it needs the signing secret"
        elif "expired token" in names:
            need = "they need a valid token, and the expired one the signing secret"
        else:
            need = "they need a valid token"
        text.append(f"Not tried: {_and(names)} — {need}.")
    return " ".join(text) or _sentence(result.explanation)


def _credentials(rows: Sequence[Mapping[str, Any]], verb: str) -> str:
    names = [str(r["credential"]) for r in rows]
    return f"{_and(names)} {'was' if len(names) == 1 else 'were'} {verb}"


def _refusal_words(row: Mapping[str, Any]) -> str:
    parts = []
    if row.get("http_status") not in (None, 101):
        parts.append(f"HTTP {row['http_status']}")
    if row.get("first_frame"):
        parts.append(str(row["first_frame"]))
    if row.get("close_code"):
        parts.append(f"close {row['close_code']}")
    return ", then ".join(parts) or "no welcome frame"


def _comparison_finding(server: tuple[str, str], report: ProbeReport) -> str:
    dialect, auth = server
    verdicts = "; ".join(f"the {r.probe} probe {r.status}: {r.explanation}" for r in report)
    return (
        f"**For comparison: an embedded {dialect} server, auth {auth}.** These traces are not "
        f"part of the verdict above; against that server {verdicts}"
    )


def _and(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _form(frame: Mapping[str, Any]) -> str:
    return "payload form" if '"payload"' in str(frame.get("data") or "") else "flat form"


def _collection_window(records: Sequence[Mapping[str, Any]]) -> str | None:
    sent = _marks(records, "workflow probe: user_message sent")
    ended = _marks(records, "workflow probe: collection ended")
    spans = [
        (e["t_mono_ns"] - s["t_mono_ns"]) / 1e9
        for s, e in zip(sent, ended, strict=False)
        if isinstance(s.get("t_mono_ns"), int) and isinstance(e.get("t_mono_ns"), int)
    ]
    return f"{max(spans):.1f} s" if spans else None


def _run_events(frame: pd.DataFrame, run: Any) -> list[str]:
    runs = assign_runs(frame)
    mine = runs[(runs["run"] == run).fillna(False) & (runs["dir"] == "receive")]
    return [str(e) for e in mine["event"].dropna() if e in AGENT_EVENTS]


def _squeeze(names: Sequence[str]) -> str:
    out: list[list[Any]] = []
    for name in names:
        if out and out[-1][0] == name:
            out[-1][1] += 1
        else:
            out.append([name, 1])
    return " → ".join(name if n == 1 else f"{name} ×{n}" for name, n in out)


def _duration(seconds: Any) -> str:
    if seconds is None or pd.isna(seconds):
        return "–"
    seconds = float(seconds)
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


# --- the representative run and timing -------------------------------------------------------


@dataclass
class _Representative:
    trace: Trace
    frame: pd.DataFrame  # the rows shown
    run: pd.Series | None  # its run_stats row
    note: str


def _representative(
    traces: Sequence[Trace], frames: Mapping[Trace, pd.DataFrame]
) -> _Representative | None:
    """A run worth showing: the first complete run of the workflow probe's trace, else of
    any other trace with a user_message; failing that, the first run at all (a run that got
    no reply is what there is to show); failing that, the connection probe's frames."""
    # The workflow probe first, then the notebooks' own sessions, then other probes.
    ranked = sorted(
        (t for t in traces if _sent_triggers(frames[t])),
        key=lambda t: (_probe_of(t) != "workflow", _probe_of(t) is not None, _started(t)),
    )
    fallback = None
    for trace in ranked:
        frame = assign_runs(frames[trace])
        runs = run_stats(frame)
        done = [i for i in range(len(runs)) if runs.iloc[i]["outcome"] == "completed"]
        if done:
            return _shown_run(trace, frame, runs, done[0])
        if fallback is None and len(runs):
            fallback = (trace, frame, runs, 0)
    if fallback is not None:
        return _shown_run(*fallback)
    connection = [t for t in traces if _probe_of(t) == "connection"]
    if connection:
        trace = max(connection, key=_started)
        return _Representative(trace, frames[trace], None, f"`{_name(trace)}`")
    return None


def _shown_run(trace: Trace, frame: pd.DataFrame, runs: pd.DataFrame, i: int) -> _Representative:
    """Run ``i`` of the trace: its frames, and the frames before its trigger outside any run."""
    run = runs.iloc[i]
    in_run = (frame["run"] == run["run"]).fillna(False)
    before = frame["run"].isna() & (frame["seq"] < run["trigger_seq"]).fillna(False)
    note = f"`{_name(trace)}`"
    if len(runs) > 1:
        note += f", run {i + 1} of {len(runs)}"
    return _Representative(trace, frame[in_run | before], run, note)


def _sent_triggers(frame: pd.DataFrame) -> bool:
    """Did the client send a run trigger (user_message…) in this frame table?"""
    sent = frame["dir"].eq("send").to_numpy(dtype=bool, na_value=False)
    trigger = frame["event"].isin(RUN_TRIGGER_TYPES).to_numpy(dtype=bool, na_value=False)
    return bool((sent & trigger).any())


def _name(trace: Trace) -> str:
    """The trace as a reader finds it: from its notebook's folder when it has one
    (``04_timing_analysis/<time>/runs/run-0017.jsonl``), else its folder and file."""
    if trace.path is None:
        return f"session {trace.session}"
    parts = trace.path.parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in _INVESTIGATION_NOTEBOOKS:
            return "/".join(parts[i:])
    return f"{trace.path.parent.name}/{trace.path.name}"


@dataclass
class _Group:
    """The runs of one kind of trace: one capture (``capture`` label), or the probes'
    and notebook sessions' runs together."""

    name: str
    traces: int
    runs: pd.DataFrame  # analysis.run_stats
    gaps: pd.DataFrame  # analysis.event_gaps, with a value
    summary: pd.DataFrame  # analysis.summarize_runs

    @property
    def stalls(self) -> pd.DataFrame:
        return self.gaps[self.gaps["gap_s"] > STALL_THRESHOLD_S]

    @property
    def worst(self) -> pd.Series | None:
        return self.gaps.loc[self.gaps["gap_s"].idxmax()] if len(self.gaps) else None


@dataclass
class _Timing:
    groups: list[_Group]  # the one with the most runs first

    @property
    def main(self) -> _Group:
        return self.groups[0]

    @classmethod
    def of(cls, traces: Sequence[Trace], frames: Mapping[Trace, pd.DataFrame]) -> _Timing | None:
        grouped: dict[str, list[pd.DataFrame]] = {}
        for trace in traces:
            frame = frames[trace]
            if not _sent_triggers(frame):
                continue
            capture = _label(trace, "capture")
            name = f"capture {capture}" if capture else "probes and sessions"
            # The file name: short enough for chart labels, unique within a capture.
            short = trace.path.name if trace.path is not None else f"session {trace.session}"
            grouped.setdefault(name, []).append(frame.assign(trace=short))
        groups = []
        for name, frames in grouped.items():
            frame = pd.concat(frames, ignore_index=True)
            frame["trace"] = frame["trace"].astype("string")
            gaps = event_gaps(frame)
            groups.append(
                _Group(
                    name,
                    len(frames),
                    run_stats(frame),
                    gaps[gaps["gap_s"].notna()].reset_index(drop=True),
                    summarize_runs(frame),
                )
            )
        groups.sort(key=lambda g: (-len(g.runs), g.name))
        return cls(groups) if groups else None


def _charts(
    rep: _Representative | None, timing: _Timing | None, frames: Mapping[Trace, pd.DataFrame]
) -> list[Chart]:
    charts = []
    if rep is not None:
        frame = frames[rep.trace]
        figure = Figure(figsize=FIGSIZE, layout="constrained")
        # No probe marks: at this scale their labels overprint; the sequence table has them.
        title = f"{rep.trace.path.name if rep.trace.path else 'session'}: frames over time"
        plot_timeline(frame, title=title, ax=figure.subplots())
        charts.append(Chart("timeline", figure, _timeline_alt(rep.trace, frame)))
    if timing is not None and len(timing.main.gaps):
        figure = Figure(figsize=FIGSIZE, layout="constrained")
        plot_gaps(
            timing.main.gaps,
            threshold_s=STALL_THRESHOLD_S,
            title=f"Gaps between consecutive events: {timing.main.name}",
            ax=figure.subplots(),
        )
        charts.append(Chart("gaps", figure, _gaps_alt(timing.main)))
    return charts


def _timeline_alt(trace: Trace, frame: pd.DataFrame) -> str:
    span = frame["t_s"].max() if len(frame) else 0.0
    sent = [str(e) for e in frame.loc[frame["dir"] == "send", "event"].fillna("frame")]
    received = [str(e) for e in frame.loc[frame["dir"] == "receive", "event"].fillna("frame")]
    return (
        f"Timeline of {_name(trace)}: one lane per event type, time across, over "
        f"{_duration(span)}. Sent (orange triangles): {_squeeze(sent) or 'nothing'}. "
        f"Received (blue dots): {_squeeze(received) or 'nothing'}."
    )


def _gaps_alt(group: _Group) -> str:
    worst = group.worst
    assert worst is not None
    return (
        f"Bar chart of the {len(group.gaps)} gaps between consecutive agent events in "
        f"{len(group.runs)} runs ({group.name}), run after run: median "
        f"{_duration(group.gaps['gap_s'].median())}, largest {_duration(worst['gap_s'])} "
        f"(before {worst['event']} #{worst['seq']} in {worst['trace']}); {len(group.stalls)} "
        f"above the {STALL_THRESHOLD_S:g} s stall threshold, drawn in red."
    )


# --- rendering -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return "–"
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(])")


def _first_sentence(text: str) -> str:
    head = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return head if head == text.strip() else head + " (more under Key findings)"


def _short(result: ProbeResult) -> str:
    """What the probe saw, in one short line for the verdict table."""
    facts = result.facts
    if result.probe == "connection":
        if result.status != PASSED:
            return _first_sentence(result.explanation)
        first = facts.get("first_frame") or "nothing"
        user = f"; user_id {facts['user_id']!r}" if facts.get("user_id") else ""
        return f"first frame {first}{user}"
    if result.probe == "negative":
        sent = facts.get("sent") or []
        if result.status == INCONCLUSIVE:
            return "refused before any input could be judged"
        quiet = facts.get("quiet_s")
        window = f" within {quiet:g} s each" if isinstance(quiet, (int, float)) else ""
        replied = len(result.checks.failures)
        return (
            f"{len(sent)} output names sent as input, no reply{window}"
            if replied == 0
            else f"{replied} of {len(sent)} output names sent as input got a reply"
        )
    if result.probe == "workflow":
        checks = result.checks
        events = facts.get("agent_events")
        if (
            "agent events" in checks.names
            and checks["agent events"].status == FAILED
            and not events
        ):
            return "no agent events after user_message"
        passed = sum(1 for c in checks if c.status == PASSED)
        return f"{events} agent events; {passed} of {len(checks)} checks passed"
    if result.rows:
        ok = sum(1 for row in result.rows if row["status"] == PASSED)
        return f"{ok} of {len(result.rows)} credentials behaved as expected"
    return _first_sentence(result.explanation)


def _verdict_line(probes: ProbeReport, contract: list[ContractResult]) -> str:
    if not len(probes):
        return "**Verdict: ⚠️ inconclusive** — no probe traces were found."
    tally = Counter(c.status for c in contract)
    contract_text = ", ".join(f"{n} {status}" for status, n in tally.items())
    parts = ", ".join(f"{r.probe} {r.status}" for r in probes)
    return (
        f"**Verdict: {_ICONS[probes.status]}** — {parts}. "
        f"Contract tests: {contract_text}. {_headline(probes)}"
    )


def _headline(probes: ProbeReport) -> str:
    workflow = next((r for r in probes if r.probe == "workflow"), None)
    negative = next((r for r in probes if r.probe == "negative"), None)
    connection = next((r for r in probes if r.probe == "connection"), None)
    if connection is not None and connection.status != PASSED:
        return _sentence(f"The connection failed: {connection.explanation}")
    if (
        workflow is not None
        and workflow.status == PASSED
        and (negative is None or negative.status == PASSED)
    ):
        return (
            "The server works: user_message starts agent runs whose events arrive complete "
            "and in order, and output event names sent as input are ignored by design — the "
            "#937 tests sent those and read the connection_established frame instead."
        )
    if workflow is not None and not workflow.facts.get("agent_events"):
        return "No agent events arrived after user_message."
    if workflow is not None and workflow.status != PASSED:
        return "Agent events arrive, but not as the profile demands."
    return ""


def _render(
    *,
    title: str,
    probes: ProbeReport,
    contract: list[ContractResult],
    findings: list[str],
    notes: list[str],
    representative: _Representative | None,
    timing: _Timing | None,
    has_charts: bool,
    environment: list[tuple[str, str]],
    commands: list[str],
) -> str:
    out = [f"## {title}", "", _verdict_line(probes, contract), ""]

    out += ["### Verdicts", ""]
    rows = []
    for name in PROBES:
        result = _find(probes, name)
        if result is None:
            rows.append((name, _ICONS["not run"], "no trace of this probe"))
        else:
            rows.append((name, _ICONS[result.status], _short(result)))
    out += [_table(("probe", "verdict", "what we saw"), rows), ""]
    auth = _find(probes, "auth")
    if auth is not None and auth.rows:
        out += [
            _table(
                ("credential", "expected", "HTTP", "first frame", "user_id", "close", "verdict"),
                (
                    (
                        r["credential"],
                        r["expected"],
                        r["http_status"],
                        r["first_frame"],
                        r["user_id"],
                        r["close_code"],
                        _ICONS[r["status"]],
                    )
                    for r in auth.rows
                ),
            ),
            "",
        ]
    reasons = [_first_sentence(c.message) for c in contract]
    # The five structure tests often fail for one reason: say it once.
    reasons = [
        "same as above" if i and reason == reasons[i - 1] and c.status == FAILED else reason
        for i, (c, reason) in enumerate(zip(contract, reasons, strict=True))
    ]
    out += [
        _table(
            ("contract test", "verdict", "reason"),
            (
                (c.test, _ICONS[c.status], reason)
                for c, reason in zip(contract, reasons, strict=True)
            ),
        ),
        "",
    ]

    out += ["### Key findings", ""]
    out += [f"{i}. {text}" for i, text in enumerate(findings, 1)] or ["No probe traces."]
    for note in notes:  # one quote each: consecutive "> " lines would merge
        out += ["", f"> {note}"]
    out.append("")

    out += ["### Event sequence of a representative run", ""]
    out += _sequence(representative)

    out += ["### Timing", ""]
    out += _timing(timing)
    if has_charts:
        out += [_CHARTS, ""]

    out += ["### Environment", "", _table(("setting", "value"), environment), ""]
    out += ["### Reproduce", "", "```sh", *commands, "```", ""]
    return "\n".join(out)


def _sequence(rep: _Representative | None) -> list[str]:
    if rep is None:
        return ["No trace holds a run or a connection.", ""]
    frame = rep.frame
    origin = None
    if rep.run is not None:
        trigger = frame[frame["seq"] == rep.run["trigger_seq"]]
        origin = trigger["t_s"].iloc[0] if not trigger.empty else None
    origin = frame["t_s"].min() if origin is None and len(frame) else origin
    rows = []
    for _, f in frame.head(_SEQUENCE_ROWS).iterrows():
        rows.append(
            (
                f["seq"],
                _ms(f["t_s"] - origin) if pd.notna(f["t_s"]) else None,
                "→ sent" if f["dir"] == "send" else "← received",
                f["event"],
                _details(f),
            )
        )
    what = "its trigger" if rep.run is not None else "the first frame"
    lines = [
        f"From {rep.note}; times in ms from {what}:",
        "",
        _table(("#", "t (ms)", "dir", "event", "details"), rows),
    ]
    if len(frame) > _SEQUENCE_ROWS:
        lines.append(f"\n… and {len(frame) - _SEQUENCE_ROWS} more frames in the trace.")
    if rep.run is not None and rep.run["n_events"] == 0:
        lines.append(
            f"\nNothing came back after {rep.run['trigger']} #{rep.run['trigger_seq']}: "
            "the run got no reply."
        )
    return [*lines, ""]


def _ms(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms:+d}" if ms else "0"


def _details(frame: pd.Series) -> str | None:
    for key in ("tool_name", "error_code"):
        if pd.notna(frame.get(key)):
            return f"{key} {frame[key]}"
    if frame.get("event") == "connection_established" and pd.notna(frame.get("user_id")):
        return f"user_id {frame['user_id']}"
    if frame.get("event") in RUN_TRIGGER_TYPES:
        return _form({"data": frame.get("data")})
    if frame.get("event") == "agent_started" and pd.notna(frame.get("run_id")):
        return f"run_id {frame['run_id']}"
    return None


def _timing(timing: _Timing | None) -> list[str]:
    if timing is None:
        return ["No user_message (or other run trigger) was sent: there is nothing to time.", ""]
    rows = []
    for group in timing.groups:
        runs = group.runs
        ttfe, done = runs["time_to_first_event_s"].dropna(), runs["duration_s"].dropna()
        worst = group.worst
        rows.append(
            (
                group.name,
                group.traces,
                len(runs),
                _tally(runs),
                f"{_duration(ttfe.median())} / {_duration(ttfe.max())}" if len(ttfe) else None,
                f"{_duration(done.median())} / {_duration(done.max())}" if len(done) else None,
                f"{_duration(worst['gap_s'])} before {worst['event']}"
                if worst is not None
                else None,
                len(group.stalls),
            )
        )
    header = (
        "runs of",
        "traces",
        "runs",
        "outcomes",
        "first event p50 / max",
        "duration p50 / max",
        "largest gap",
        f"gaps > {STALL_THRESHOLD_S:g} s",
    )
    lines = [_table(header, rows), ""]
    main = timing.main
    summary = main.summary[main.summary["count"] > 0]
    if len(summary):
        lines += [f"Percentiles for {main.name} ({len(main.runs)} runs):", ""]
        lines.append(
            _table(
                ("metric", "event / phase", "n", "p50", "p90", "max"),
                (
                    (
                        s["metric"].replace("_", " "),
                        s["name"],
                        s["count"],
                        _duration(s["p50"]),
                        _duration(s["p90"]),
                        _duration(s["max"]),
                    )
                    for _, s in summary.iterrows()
                ),
            )
        )
        lines.append("")
    return lines


def _tally(runs: pd.DataFrame) -> str:
    counts = Counter(runs["outcome"])
    return ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in counts.items())


def _timing_finding(timing: _Timing) -> str:
    """What the timing says, in sentences: stalls first, since they look like lost events."""
    runs = sum(len(g.runs) for g in timing.groups)
    stalled = [g for g in timing.groups if len(g.stalls)]
    answered = [g for g in timing.groups if g.runs["n_events"].gt(0).any()]
    if not answered:
        return (
            f"**Timing.** None of the {runs} run(s) got an agent event, so there is nothing "
            "to time."
        )
    if not stalled:
        worst = max(
            (g for g in answered if g.worst is not None),
            key=lambda g: g.worst["gap_s"],  # type: ignore[index]
            default=None,
        )
        slowest = f", the largest {_duration(worst.worst['gap_s'])}" if worst else ""
        return (
            f"**Timing.** In {runs} run(s), no gap between consecutive events exceeded "
            f"{STALL_THRESHOLD_S:g} s{slowest}: a test reading with a 2–3 s timeout per frame "
            "would see every event."
        )
    parts = []
    for group in stalled:
        found = "; ".join(
            f"{_duration(g['gap_s'])} before {g['event']} #{g['seq']} in {g['trace']}"
            for _, g in group.stalls.head(3).iterrows()
        )
        runs_hit = group.stalls["trace"].nunique()
        parts.append(f"in {group.name}, {runs_hit} of {len(group.runs)} run(s) stalled ({found})")
    return (
        f"**Timing.** Events can arrive late: {'; '.join(parts)}. A gap above "
        f"{STALL_THRESHOLD_S:g} s is longer than the 2–3 s per-frame timeout of the backend's "
        'tests, which would report such a run as "no events" although every event came.'
    )


def _environment(traces: Sequence[Trace], server: tuple[str, str] | None) -> list[tuple[str, str]]:
    targets = sorted({redact_url(str(t.meta.get("target") or "")) for t in traces} - {""})
    kind = "embedded reference server" if server else "server"
    if len(targets) > 3:
        hosts = sorted({re.sub(r":\d+(?=/|$)", ":<port>", t) for t in targets})
        shown = ", ".join(hosts) + f" ({len(targets)} {kind}s, one per notebook or capture)"
    else:
        shown = ", ".join(targets) or "–"
        shown += f" ({kind})" if server and targets else ""
    opens = [r for t in traces if _probe_of(t) != "auth" for r in _of_kind(t.records, "open")]
    forms = sorted({str(r.get("auth")) for r in opens if r.get("auth")})
    started = sorted(str(t.meta.get("started_at")) for t in traces if t.meta.get("started_at"))
    writers = sorted({str(t.meta.get("writer")) for t in traces if t.meta.get("writer")})
    captured = f"{_utc(started[0])} – {_utc(started[-1])}" if started else "–"
    return [
        ("target", shown),
        ("dialect", server[0] if server else "– (a URL target: not recorded)"),
        ("server auth mode", server[1] if server else "–"),
        ("client auth form", ", ".join(forms) or "–"),
        ("captured (UTC)", captured),
        ("traces", f"{len(traces)} file(s), written by {', '.join(writers) or 'unknown'}"),
        ("report built", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("netra_ws", _version("netra-ws")),
        ("python", f"{platform.python_version()} ({platform.system()})"),
        ("websockets", _version("websockets")),
    ]


def _utc(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _commands(traces: Sequence[Trace], server: tuple[str, str] | None, sources: Any) -> list[str]:
    """The commands that reproduce the investigation: the demo when the traces came from the
    notebooks, the probes and the contract suite against the same target, and this report."""
    data_dirs = sorted(
        {
            _shown(t.path.parent.parent.parent)
            for t in traces
            if t.path is not None and t.path.parent.parent.name in _INVESTIGATION_NOTEBOOKS
        }
    )
    # The target the probes met (a notebook's capture may add an embedded reference server).
    url = _target_label([t for t in traces if _probe_of(t) is not None] or traces) or "<url>"
    lines = []
    if data_dirs:
        out = "" if data_dirs[0] == "data" else f" --out {data_dirs[0]}"
        if server:
            lines += [
                "# notebooks 01–05, headless, against the embedded server; then this report",
                f"python -m netra_ws demo{out}",
            ]
        else:
            lines += [
                "# notebooks 01–05, headless, against the same target; then this report",
                f"NETRA_WS_TOKEN=<your token> python -m netra_ws demo --url {url}{out}",
            ]
    if server:
        dialect, auth = server
        lines += [
            "# the probes, with verdicts (traces go to data/probes-<time>/)",
            f"python -m netra_ws probe --dialect {dialect} --server-auth {auth}",
            "# the seven contract tests",
            f"NETRA_WS_DIALECT={dialect} NETRA_WS_AUTH={auth} "
            "python -m pytest --pyargs netra_ws.contract",
        ]
    else:
        lines += [
            "# the probes, with verdicts (the token comes from the environment, never the line)",
            f"NETRA_WS_TOKEN=<your token> python -m netra_ws probe {url}",
            "# the seven contract tests",
            f"NETRA_WS_URL={url} NETRA_WS_TOKEN=<your token> "
            "python -m pytest --pyargs netra_ws.contract",
        ]
    if isinstance(sources, (str, os.PathLike)):
        where = _shown(Path(sources))
    elif data_dirs:
        where = data_dirs[0]
    else:
        folders = sorted({_shown(t.path.parent) for t in traces if t.path is not None})
        where = " ".join(folders[:4]) or "<traces>"
    return [*lines, "# this report, from the traces", f"python -m netra_ws report {where}"]


def _shown(path: Path) -> str:
    """A path as a reader can use it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
