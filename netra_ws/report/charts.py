"""The charts of a report: drawn by :mod:`netra_ws.plots`, described by its ``describe_*``. Pure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pandas as pd
from matplotlib.figure import Figure

from ..plots import FIGSIZE, describe_gaps, describe_timeline, plot_gaps, plot_timeline
from ..untrusted import plain_words
from .timing import STALL_THRESHOLD_S, Representative, Timing

__all__ = ["Chart", "draw_charts"]


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


def draw_charts(rep: Representative | None, timing: Timing | None) -> list[Chart]:
    """The timeline of the representative run's trace and the gaps of the main timing group."""
    charts = []
    if rep is not None:
        source = rep.source
        figure = Figure(figsize=FIGSIZE, layout="constrained")
        # No probe marks: at this scale their labels overprint; the sequence table has them.
        title = f"{source.path.name if source.path else 'session'}: frames over time"
        plot_timeline(_labelled(source.frame), title=plain_words(title), ax=figure.subplots())
        alt = describe_timeline(source.frame, name=source.name)
        charts.append(Chart("timeline", figure, alt))
    if timing is not None and len(timing.main.gaps):
        main = timing.main
        figure = Figure(figsize=FIGSIZE, layout="constrained")
        plot_gaps(
            _labelled(main.gaps),
            threshold_s=STALL_THRESHOLD_S,
            title=plain_words(f"Gaps between consecutive events: {main.name}"),
            ax=figure.subplots(),
        )
        alt = describe_gaps(main.gaps, threshold_s=STALL_THRESHOLD_S, name=main.name)
        charts.append(Chart("gaps", figure, alt))
    return charts


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its event names as a chart may print them: plain words, cut short (a
    server's event name can hold controls or a megabyte of text)."""
    if "event" not in frame:
        return frame
    events = frame["event"].map(lambda e: plain_words(e, 40) if pd.notna(e) else e)
    return frame.assign(event=events.astype("string"))
