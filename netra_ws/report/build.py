"""Traces and verdicts in, a Markdown issue comment and its PNG charts out: the pipeline. Pure.

:func:`build_report` runs the stages in order, each in its own module:
:mod:`~netra_ws.report.sources` (read each trace once, with its provenance) →
:mod:`netra_ws.verdicts` (the same verdicts as the live probes) →
:mod:`~netra_ws.report.findings` (the sentences) → :mod:`~netra_ws.report.timing` (through
:mod:`netra_ws.analysis`) → :mod:`~netra_ws.report.charts` → :mod:`~netra_ws.report.markdown`.
"""

from __future__ import annotations

import base64
import os
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..expect import Profile, Status
from ..redact import Redactor
from ..untrusted import for_prose, plain_words
from ..verdicts import (
    PROBES,
    ContractResult,
    ProbeReport,
    ProbeResult,
    evaluate_contract,
    judge_traces,
)
from .charts import Chart, draw_charts
from .findings import finding, injected_finding, reference_section, timing_finding
from .markdown import CHARTS, STEM, environment, fit, render, reproduce_commands
from .sources import ReportSource, Source, gather, provenance
from .timing import Timing, representative

__all__ = ["Report", "build_report"]

_DEFAULT_TITLE = "Issue #937 — WebSocket agent events: findings"


@dataclass
class Report:
    """A Markdown issue comment: the verdicts, the findings, timing and charts of traces.

    Make one with :func:`build_report`. ``verdict`` is the overall status of the probes;
    ``probes`` the verdict per probe (:class:`~netra_ws.probes.ProbeReport`), ``contract``
    the seven contract tests, ``findings`` the key sentences (Markdown, every server value
    neutralised by :mod:`netra_ws.untrusted`), ``charts`` the figures, ``notes`` what is
    missing or was skipped, ``traces`` the trace files read, ``files`` what a bundle holds
    beside the report and charts (name in the zip → file: the traces and fault logs). Next:
    :meth:`write` it to a ``.md`` file (the PNG charts go next to it) and paste it, or
    :meth:`bundle` it into one zip to attach.
    """

    title: str
    verdict: Status
    probes: ProbeReport
    contract: list[ContractResult]
    findings: list[str]
    charts: list[Chart]
    notes: list[str]
    traces: list[Path]
    body: str = field(repr=False)  # the Markdown before redaction, charts at CHARTS
    files: dict[str, Path] = field(default_factory=dict, repr=False)
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
            images.append(f"![{plain_words(redact(chart.alt), 1000)}]({src})")
        body = redact(self.body).replace(STEM, stem)
        markdown = body.replace(CHARTS, "\n\n".join(images))
        # Embedded images are for notebooks, never a comment: only the file form is cut.
        return markdown if embed_images else fit(markdown)

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

    def bundle(self, path: str | os.PathLike[str]) -> Path:
        """Write the report (``<stem>.md`` inside), its charts and everything it refers to
        (the redacted traces, by the names the report uses, and the fault logs) into one
        ``.zip`` at ``path``, to attach to the issue as it is; return its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        stem = out.stem
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{stem}.md", self.to_markdown(stem=stem))
            for chart in self.charts:
                archive.writestr(f"{stem}-{chart.name}.png", chart.png())
            for name, file in sorted(self.files.items()):
                text = file.read_text(encoding="utf-8", errors="replace")
                archive.writestr(name, self.redactor.redact_text(text))
        return out

    def attachments(self, path: str | os.PathLike[str]) -> list[Path]:
        """The files to attach to the comment beside a report written to ``path`` for its
        images to show: the charts (:meth:`chart_paths`)."""
        return self.chart_paths(path)

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
    :class:`~netra_ws.verdicts.ProbeReport` (its verdicts are used as they are, its traces
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
    gathered = gather(sources)
    all_notes = [for_prose(redactor.redact_text(note)) for note in [*gathered.notes, *notes]]
    sorted_ = provenance(gathered.sources, dialect)
    own, primary = sorted_.own, sorted_.evidence

    judged = judge_traces([s.trace for s in primary], profile=profile)
    given = {r.probe: r for report in gathered.reports for r in report}
    results = [given.get(name) or judged.get(name) for name in PROBES]
    probes = ProbeReport(
        [r for r in results if r is not None],
        target=next((rep.target for rep in gathered.reports), judged.target),
        out_dir=judged.out_dir,
    )
    contract = evaluate_contract(probes)

    by_path = {s.path.resolve(): s for s in gathered.sources if s.path is not None}
    findings = [finding(r, _sources_of(r, by_path, primary)) for r in probes]
    # Timing, like every finding about the server, only from runs without injected faults.
    timing = Timing.of(primary)
    if timing is not None:
        findings.append(timing_finding(timing))
    if sorted_.injected:
        findings.append(injected_finding(sorted_.injected, Timing.of(sorted_.injected)))
    findings = [redactor.redact_text(text) for text in findings]
    references = [
        reference_section(key, judge_traces([s.trace for s in group], profile=profile), group)
        for key, group in sorted_.references.items()
    ]
    references = [(redactor.redact_text(a), redactor.redact_text(b)) for a, b in references]

    shown = representative(primary)
    drawn = draw_charts(shown, timing) if charts else []
    for chart in drawn:
        chart.alt = redactor.redact_text(chart.alt)
    body = render(
        title=title,
        probes=probes,
        contract=contract,
        findings=findings,
        notes=all_notes,
        representative=shown,
        timing=timing,
        charts=[chart.name for chart in drawn],
        references=references,
        environment=environment(primary, own),
        commands=(
            list(commands)
            if commands is not None
            else reproduce_commands(primary, own, sources)
        ),
    )
    return Report(
        title=title,
        verdict=probes.status,
        probes=probes,
        contract=contract,
        findings=findings,
        charts=drawn,
        notes=all_notes,
        traces=[s.path for s in gathered.sources if s.path is not None],
        body=body,
        redactor=redactor,
        files=_files(gathered.sources),
    )


def _files(sources: Sequence[Source]) -> dict[str, Path]:
    """What a bundle holds beside the report: each trace under the name the report gives it
    (:attr:`Source.name`), and the fault logs of injected runs."""
    files = {s.name: s.path for s in sources if s.path is not None}
    for source in sources:
        if source.injected:
            files.update(source.fault_logs)
    return files


def _sources_of(
    result: ProbeResult, by_path: Mapping[Path, Source], pool: list[Source]
) -> list[Source]:
    """The sources a result was judged from: its trace files, else the pool's of its probe."""
    found = [by_path[p.resolve()] for p in result.traces if p.resolve() in by_path]
    return found or [s for s in pool if s.probe == result.probe]
