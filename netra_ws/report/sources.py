"""Find an investigation's traces and read each one once, with its provenance. Pure.

A report reads many traces (the notebooks' outputs, a probes folder, captures); every later
stage (verdicts, findings, timing, charts, Markdown) works on the :class:`Source` objects made
here, so each file is parsed once and turned into a frame table once.
"""

from __future__ import annotations

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

__all__ = ["ReportSource", "Source", "gather", "investigation_sources", "main_server"]

ReportSource = str | os.PathLike[str] | Trace | ProbeReport

# The notebooks whose outputs a report reads (the last one writes the report).
INVESTIGATION_NOTEBOOKS = NOTEBOOKS[:-1]


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
                f"No output of notebook {name} under {data_dir}: it has not run there, so its "
                "part is missing from this report. Run it, then build the report again."
            )
    return folders, notes


def _trace_files(path: Path, notes: list[str]) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        notes.append(f"{path} does not exist: nothing was read from it.")
        return []
    if any((path / name).is_dir() for name in INVESTIGATION_NOTEBOOKS):
        folders, missing = investigation_sources(path)
        notes += missing
        return [file for folder in folders for file in sorted(folder.rglob("*.jsonl"))]
    files = sorted(path.rglob("*.jsonl"))
    if not files:
        notes.append(f"{path} holds no *.jsonl trace.")
    return files
