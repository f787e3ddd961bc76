"""Find an investigation's traces and read each one once, with its provenance. Pure.

A report reads many traces (the notebooks' outputs, a probes folder, captures); every later
stage (verdicts, findings, timing, charts, Markdown) works on the :class:`Source` objects made
here, so each file is parsed once and turned into a frame table once.

Provenance decides what a trace may say about the server (:func:`provenance`): a trace of a
run with an injected fault (its ``faults`` label, or a ``faults.json`` fault log beside it
that names one of its runs) shows the fault, not the server; a trace of an embedded server
set up otherwise than the investigation's own (another dialect or auth mode) is a
reference run, not evidence for the verdict.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import assign_runs, run_stats
from ..errors import NetraWsError, TraceFormatError
from ..events import RUN_TRIGGER_TYPES
from ..notebooks import NOTEBOOKS, latest_output
from ..trace import Trace, TraceWarning, read_trace
from ..verdicts import ProbeReport, label_of, probe_of, started
from .words import shown_path

__all__ = [
    "Provenance",
    "ReportSource",
    "Source",
    "gather",
    "investigation_sources",
    "main_server",
    "provenance",
]

ReportSource = str | os.PathLike[str] | Trace | ProbeReport

# The notebooks whose outputs a report reads (the last one writes the report).
INVESTIGATION_NOTEBOOKS = NOTEBOOKS[:-1]

_CONNECTION_ID = r'"connection_id"\s*:\s*"([^"]+)"'


@dataclass(eq=False)
class Source:
    """One trace of the investigation, read once: its records, its frame table (made on first
    use, then kept), its runs, and where it came from (probe, embedded server, capture)."""

    trace: Trace

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.trace.records

    @property
    def path(self) -> Path | None:
        return self.trace.path

    @cached_property
    def frame(self) -> pd.DataFrame:
        """The frame table (:meth:`netra_ws.trace.Trace.to_frame`), made once."""
        return self.trace.to_frame()

    @cached_property
    def runs(self) -> pd.DataFrame:
        """The frame table with each frame's run (:func:`netra_ws.analysis.assign_runs`)."""
        return assign_runs(self.frame)

    @cached_property
    def run_stats(self) -> pd.DataFrame:
        """One row per run (:func:`netra_ws.analysis.run_stats`)."""
        return run_stats(self.runs)

    @property
    def probe(self) -> str | None:
        return probe_of(self.trace)

    @property
    def server(self) -> tuple[str, str] | None:
        """The embedded server the trace met, as (dialect, auth mode); None for a URL."""
        dialect = label_of(self.trace, "dialect")
        return (str(dialect), str(label_of(self.trace, "server_auth"))) if dialect else None

    @property
    def capture(self) -> str | None:
        value = label_of(self.trace, "capture")
        return str(value) if value else None

    @property
    def started(self) -> tuple[str, str]:
        return started(self.trace)

    @cached_property
    def injected(self) -> list[str]:
        """The faults injected on purpose into this trace's runs, as the server logs them
        (``stall agent_thinking#2 2.5s``): from its ``faults`` label (an embedded server
        with a fault plan), or from a ``faults.json`` fault log (``Target.faults()``, as
        notebook 04 saves it) in its folder or the two above whose run or connection is
        this trace's. Empty when nothing was injected: the trace is the server's own."""
        label = label_of(self.trace, "faults")
        found = [str(f) for f in label] if isinstance(label, list) else []
        if self.path is None:
            return found
        frame = self.frame
        runs = set(frame["run_id"].dropna().astype(str))
        # A fault before any run (a dropped connection) names the connection instead.
        hello = frame["data"][frame["event"].eq("connection_established").fillna(False)]
        connections = set(hello.dropna().astype(str).str.extract(_CONNECTION_ID)[0].dropna())
        for log in self.fault_logs.values():
            for fault in _fault_log(log):
                if fault.get("run_id") in runs or fault.get("connection_id") in connections:
                    found.append(str(fault.get("fault") or fault.get("kind") or "fault"))
        return list(dict.fromkeys(found))

    @cached_property
    def fault_logs(self) -> dict[str, Path]:
        """The ``faults.json`` fault logs in this trace's folder or the two above, by the
        name a report gives them (beside :attr:`name`, as in a bundle)."""
        if self.path is None:
            return {}
        logs = {}
        parts = self.name.split("/")
        for up, folder in enumerate(list(self.path.parents)[:3], start=1):
            log = folder / "faults.json"
            if log.is_file():
                logs["/".join([*parts[: max(len(parts) - up, 0)], "faults.json"])] = log
        return logs

    @cached_property
    def triggered(self) -> bool:
        """Did the client send a run trigger (user_message…) in this trace?"""
        frame = self.frame
        sent = frame["dir"].eq("send").to_numpy(dtype=bool, na_value=False)
        trigger = frame["event"].isin(RUN_TRIGGER_TYPES).to_numpy(dtype=bool, na_value=False)
        return bool((sent & trigger).any())

    @property
    def name(self) -> str:
        """The trace as a reader finds it: from its notebook's folder when it has one
        (``04_timing_analysis/<time>/runs/run-0017.jsonl``), else its folder and file."""
        if self.path is None:
            return f"session {self.trace.session}"
        parts = self.path.parts
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] in INVESTIGATION_NOTEBOOKS:
                return "/".join(parts[i:])
        return f"{self.path.parent.name}/{self.path.name}"


def _fault_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``faults.json`` fault log, or none (missing or unreadable)."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [row for row in rows if isinstance(row, dict)] if isinstance(rows, list) else []


@dataclass
class Provenance:
    """The sources sorted by what they may say: ``evidence`` (the investigation's own
    server or URL, nothing injected: the verdict and every finding about the server come
    from these), ``injected`` (the same server, with a fault injected on purpose: shown as
    such, never as the server's behaviour) and ``references`` (other embedded servers,
    by (dialect, auth mode): comparisons, never part of the verdict)."""

    own: tuple[str, str] | None
    evidence: list[Source]
    injected: list[Source]
    references: dict[tuple[str, str], list[Source]]


def provenance(sources: Sequence[Source], dialect: str | None = None) -> Provenance:
    """Sort ``sources`` into evidence, injected-fault runs and reference runs; the
    investigation's own server is :func:`main_server` (of ``dialect``, when given)."""
    own = main_server(sources, dialect)
    out = Provenance(own, [], [], {})
    for source in sources:
        key = source.server
        if key is not None and key != own:
            out.references.setdefault(key, []).append(source)
        elif source.injected:
            out.injected.append(source)
        else:
            out.evidence.append(source)
    return out


def main_server(sources: Sequence[Source], dialect: str | None) -> tuple[str, str] | None:
    """The embedded server most probe traces met (of ``dialect``, when given), or None."""
    counts = Counter(
        key
        for s in sources
        if s.probe is not None and (key := s.server) is not None and dialect in (None, key[0])
    )
    return counts.most_common(1)[0][0] if counts else None


@dataclass
class Gathered:
    """What :func:`gather` found: the sources, the probe reports given, and notes on what
    was missing or skipped."""

    sources: list[Source] = field(default_factory=list)
    reports: list[ProbeReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def gather(sources: ReportSource | Iterable[ReportSource]) -> Gathered:
    """Read every trace named by ``sources`` (files, folders, traces, probe reports) once.

    Unreadable files are skipped with a note, and the reader's warnings (skipped lines)
    become notes too, so the report says what it could not use.
    """
    if isinstance(sources, (str, os.PathLike, Trace, ProbeReport)):
        sources = [sources]
    out = Gathered()
    files: list[Path] = []
    for source in sources:
        if isinstance(source, ProbeReport):
            out.reports.append(source)
            files += [path for result in source for path in result.traces]
        elif isinstance(source, Trace):
            out.sources.append(Source(source))
        else:
            files += _trace_files(Path(source), out.notes)
    seen = {s.path.resolve() for s in out.sources if s.path is not None}
    for path in files:
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TraceWarning)
            try:
                out.sources.append(Source(read_trace(path)))
            except (TraceFormatError, OSError) as exc:
                out.notes.append(f"Skipped {path.name}: {exc}")
        out.notes += [str(w.message) for w in caught if issubclass(w.category, TraceWarning)]
    if not out.sources and not out.reports:
        out.notes.append("No traces were found, so there is nothing to judge.")
    return out


def investigation_sources(
    data_dir: str | os.PathLike[str], notebooks: Sequence[str] = INVESTIGATION_NOTEBOOKS
) -> tuple[list[Path], list[str]]:
    """The latest output folder of each notebook under ``data_dir``, and a note per missing one.

    What :func:`netra_ws.report.build_report` reads for a folder like ``data/``. A missing
    notebook is not an error: its note (for the report) says it has not run there, and what
    to do.
    """
    folders, notes = [], []
    for name in notebooks:
        try:
            folders.append(latest_output(data_dir, name))
        except NetraWsError:
            notes.append(
                f"No output of notebook {name} under {shown_path(Path(data_dir))}: it has not run "
                "there, so its part is missing from this report. Run it, then build the report "
                "again."
            )
    return folders, notes


def _trace_files(path: Path, notes: list[str]) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        notes.append(f"{shown_path(path)} does not exist: nothing was read from it.")
        return []
    if any((path / name).is_dir() for name in INVESTIGATION_NOTEBOOKS):
        folders, missing = investigation_sources(path)
        notes += missing
        return [file for folder in folders for file in sorted(folder.rglob("*.jsonl"))]
    files = sorted(path.rglob("*.jsonl"))
    if not files:
        notes.append(f"{shown_path(path)} holds no *.jsonl trace.")
    return files
