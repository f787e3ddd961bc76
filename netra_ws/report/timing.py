"""The timing part of a report: the representative run and the runs grouped for timing. Pure.

Everything is computed by :mod:`netra_ws.analysis` on the sources' frame tables (made once,
see :mod:`netra_ws.report.sources`); this module only chooses what to show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ..analysis import event_gaps, run_stats, summarize_runs
from ..untrusted import for_markdown
from .sources import Source

__all__ = ["STALL_THRESHOLD_S", "Group", "Representative", "Timing", "representative"]

# A gap between consecutive agent events above this is drawn (and counted) as a stall.
STALL_THRESHOLD_S = 2.0


@dataclass
class Representative:
    """The run a report shows frame by frame: its ``source``, the rows shown (``frame``, with
    run labels), its ``run_stats`` row (None when only a connection is shown), and ``note``
    naming where it comes from (Markdown, the file name neutralised)."""

    source: Source
    frame: pd.DataFrame
    run: pd.Series | None
    note: str


def representative(sources: Sequence[Source]) -> Representative | None:
    """A run worth showing: the first complete run of the workflow probe's trace, else of
    any other trace with a user_message; failing that, the first run at all (a run that got
    no reply is what there is to show); failing that, the connection probe's frames."""
    # The workflow probe first, then the notebooks' own sessions, then other probes.
    ranked = sorted(
        (s for s in sources if s.triggered),
        key=lambda s: (s.probe != "workflow", s.probe is not None, s.started),
    )
    fallback = None
    for source in ranked:
        runs = source.run_stats
        done = [i for i in range(len(runs)) if runs.iloc[i]["outcome"] == "completed"]
        if done:
            return _shown_run(source, done[0])
        if fallback is None and len(runs):
            fallback = (source, 0)
    if fallback is not None:
        return _shown_run(*fallback)
    connection = [s for s in sources if s.probe == "connection"]
    if connection:
        source = max(connection, key=lambda s: s.started)
        return Representative(source, source.frame, None, for_markdown(source.name, 300))
    return None


def _shown_run(source: Source, i: int) -> Representative:
    """Run ``i`` of the source: its frames, and the frames before its trigger outside any run."""
    frame, runs = source.runs, source.run_stats
    run = runs.iloc[i]
    in_run = (frame["run"] == run["run"]).fillna(False)
    before = frame["run"].isna() & (frame["seq"] < run["trigger_seq"]).fillna(False)
    note = for_markdown(source.name, 300)
    if len(runs) > 1:
        note += f", run {i + 1} of {len(runs)}"
    return Representative(source, frame[in_run | before], run, note)


@dataclass
class Group:
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
        if not len(self.gaps):
            return None
        return self.gaps.iloc[int(self.gaps["gap_s"].to_numpy(dtype=float).argmax())]


@dataclass
class Timing:
    """The timing groups of a report, the one with the most runs first (``main``)."""

    groups: list[Group]

    @property
    def main(self) -> Group:
        return self.groups[0]

    @classmethod
    def of(cls, sources: Sequence[Source]) -> Timing | None:
        """Group the sources that sent a run trigger; None when none did."""
        grouped: dict[str, list[pd.DataFrame]] = {}
        for source in sources:
            if not source.triggered:
                continue
            name = f"capture {source.capture}" if source.capture else "probes and sessions"
            # The file name: short enough for chart labels, unique within a capture.
            path = source.path
            short = path.name if path is not None else f"session {source.trace.session}"
            grouped.setdefault(name, []).append(source.frame.assign(trace=short))
        groups = []
        for name, frames in grouped.items():
            frame = pd.concat(frames, ignore_index=True)
            frame["trace"] = frame["trace"].astype("string")
            gaps = event_gaps(frame)
            groups.append(
                Group(
                    name,
                    len(frames),
                    run_stats(frame),
                    gaps[gaps["gap_s"].notna()].reset_index(drop=True),
                    summarize_runs(frame),
                )
            )
        groups.sort(key=lambda g: (-len(g.runs), g.name))
        return cls(groups) if groups else None
