"""Charts of traces and of :mod:`netra_ws.analysis` tables, sized for an issue comment.

Every helper takes a DataFrame and an optional matplotlib ``ax``, draws with the
object-oriented API, and returns the ``Axes``; none calls ``plt.show()``. Without ``ax`` a
new figure is made (through pyplot, so a notebook displays it) at 8 x 4.5 inches, which
:func:`save_figure` writes as a 960 x 540 PNG: readable at the width of a GitHub comment.
Typical use::

    df = load_traces("data/runs/")
    ax = plot_timeline(trace.to_frame(), marks=trace.marks_frame())   # what arrived, when
    plot_gaps(event_gaps(df), threshold_s=2)                        # stalls in red
    plot_gap_ecdf(event_gaps(df), by="event")                       # distributions
    plot_tool_latency(phase_durations(df))                          # one box per tool
    plot_overlay(event_gaps(before), event_gaps(after), labels=("before", "after"))
    plot_comparison(compare_runs(before, after), labels=("before", "after"))
    save_figure(ax, "timeline")                                     # -> data/timeline.png

Pass your own ``ax`` to put several charts in one figure
(``fig, (a1, a2) = plt.subplots(1, 2)``). The returned ``Axes`` can be restyled freely.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from .analysis import HOUSEKEEPING_EVENTS, assign_runs
from .events import squeeze

__all__ = [
    "CHANGE_COLORS",
    "FIGSIZE",
    "describe_gaps",
    "describe_timeline",
    "duration_words",
    "plot_comparison",
    "plot_gap_ecdf",
    "plot_gap_histogram",
    "plot_gaps",
    "plot_overlay",
    "plot_timeline",
    "plot_tool_latency",
    "save_figure",
]

# 8 x 4.5 in at 120 dpi is 960 x 540 px: GitHub shows comment images up to about 900 px
# wide, so the default fonts stay legible without zooming.
FIGSIZE: tuple[float, float] = (8.0, 4.5)
_DPI = 120

SEND_COLOR = "tab:orange"
RECEIVE_COLOR = "tab:blue"
GAP_COLOR = "tab:blue"
STALL_COLOR = "tab:red"
MARK_COLOR = "0.35"
BASELINE_COLOR = "0.7"
# compare_runs()["change"] -> the colour of the "b" bar.
CHANGE_COLORS: dict[str, str] = {
    "better": "tab:green",
    "worse": "tab:red",
    "same": "tab:gray",
    "only_a": "tab:gray",
    "only_b": "tab:purple",
    "no_data": "tab:gray",
}

# Metrics of compare_runs() with the single name "all": shown without it.
_RUN_METRICS = ("time_to_first_event", "duration")
_NO_RUN = "(no run)"
_UNPARSED = "(not parsed)"
_AXIS_LABELS = {
    "gap_s": "gap since the previous event (s)",
    "since_trigger_s": "time since the trigger (s)",
    "time_to_first_event_s": "time to first event (s)",
    "duration_s": "duration (s)",
    "span_s": "trigger to last event (s)",
}
# Above this many ticks, labels are thinned so they do not overlap at FIGSIZE.
_MAX_TICKS = 25


# --- timeline -------------------------------------------------------------------------------


def plot_timeline(
    df: pd.DataFrame,
    *,
    lanes: str = "event",
    marks: pd.DataFrame | None = None,
    include_housekeeping: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """A swimlane timeline of frames: one lane per event type (or per run), time across.

    ``df`` is a frame table (``Trace.to_frame()``, ``load_traces()``); x is ``t_s``, seconds
    since the start of each frame's trace. Sends are orange triangles, receives blue dots
    (``lanes="event"``), or every frame is coloured by its event type (``lanes="run"``,
    runs from :func:`netra_ws.analysis.assign_runs`; frames outside any run share the lane
    "(no run)", drawn last). Lanes read top to bottom in order of their first frame
    (wall-clock time when the table has ``t_wall_ns``, so runs of several traces sort by
    when they began). ``marks`` (``Trace.marks_frame()``) are drawn as labelled dotted
    vertical lines, or as shaded spans where the table has a ``t_end_s`` value; when both
    tables have ``session``, only the marks of the sessions shown are drawn.

    Example (a run, and a mark where the probe began to wait)::

        >>> from netra_ws.trace import TraceWriter
        >>> w = TraceWriter(None, session="s1")  # in memory: no file
        >>> for ms, event in [(0, "connection_established"), (100, "user_message"),
        ...                   (300, "agent_started"), (1500, "agent_completed")]:
        ...     way = "send" if event == "user_message" else "receive"
        ...     ns = ms * 10**6
        ...     _ = w.frame(way, f'{{"type": "{event}"}}', t_wall_ns=ns, t_mono_ns=ns)
        >>> _ = w.mark("quiet window begins", t_wall_ns=1600 * 10**6, t_mono_ns=1600 * 10**6)
        >>> trace = w.to_trace()
        >>> ax = plot_timeline(trace.to_frame(), marks=trace.marks_frame())
        >>> [t.get_text() for t in ax.get_yticklabels()]
        ['connection_established', 'user_message', 'agent_started', 'agent_completed']
    """
    if lanes not in ("event", "run"):
        raise ValueError(f"lanes must be 'event' or 'run', not {lanes!r}")
    _check(df, ["dir", "t_s", "event"], "plot_timeline")
    if lanes == "run" and "run" not in df.columns:
        df = assign_runs(df)
    frames = df
    if not include_housekeeping:
        frames = df[~df["event"].isin(HOUSEKEEPING_EVENTS).to_numpy(dtype=bool, na_value=False)]
    frames = frames.sort_values("t_s", kind="stable")
    ax = _axes(ax)

    event = frames["event"].astype("string").fillna(_UNPARSED)
    lane_of = event if lanes == "event" else frames["run"].astype("string").fillna(_NO_RUN)
    names = _lane_order(frames, lane_of)
    y = lane_of.map({name: i for i, name in enumerate(names)}).to_numpy(dtype=float)
    x = frames["t_s"].to_numpy(dtype=float, na_value=np.nan)
    is_send = frames["dir"].eq("send").to_numpy(dtype=bool, na_value=False)

    handles: list[Any] = []
    label: str | None  # a legend entry; None for a kind's later markers
    if lanes == "event":
        for mask, color, marker, label in (
            (~is_send, RECEIVE_COLOR, "o", "receive (server → client)"),
            (is_send, SEND_COLOR, "^", "send (client → server)"),
        ):
            if mask.any():
                ax.scatter(
                    x[mask],
                    y[mask],
                    s=36,
                    c=color,
                    marker=marker,
                    zorder=3,
                    label=label,
                    edgecolors="black",
                    linewidths=0.5,
                )
    else:
        # Colour says the event type (one square each in the legend), shape the direction
        # (one grey entry per direction): a kind's own entry never repeats a shape.
        palette = plt.get_cmap("tab10")
        for i, kind in enumerate(dict.fromkeys(event.tolist())):
            of_kind = (event == kind).to_numpy(dtype=bool)
            for mask, marker in ((~is_send & of_kind, "o"), (is_send & of_kind, "^")):
                if mask.any():
                    ax.scatter(
                        x[mask],
                        y[mask],
                        s=36,
                        color=palette(i % 10),
                        marker=marker,
                        zorder=3,
                        edgecolors="black",
                        linewidths=0.5,
                    )
            handles.append(Patch(color=palette(i % 10), label=kind))
        for mask, marker, label in (
            (~is_send, "o", "receive (server → client)"),
            (is_send, "^", "send (client → server)"),
        ):
            if mask.any():
                handles.append(
                    Line2D(
                        [],
                        [],
                        marker=marker,
                        linestyle="",
                        color="0.5",
                        markeredgecolor="black",
                        label=label,
                    )
                )

    if marks is not None:
        handles += _draw_marks(ax, marks, df)

    ax.set_yticks(range(len(names)), labels=names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first lane on top
    ax.set_xlabel("time since trace start (s)")
    ax.set_ylabel("event type" if lanes == "event" else "run")
    ax.set_title(title or ("Frames over time" if lanes == "event" else "Runs over time"))
    ax.grid(axis="x", alpha=0.3)
    existing, _ = ax.get_legend_handles_labels()
    if existing or handles:
        ax.legend(
            handles=existing + handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize="small",
            frameon=False,
        )
    return ax


def _lane_order(frames: pd.DataFrame, lane_of: pd.Series) -> list[str]:
    """Lanes top to bottom by when they began: wall-clock time when the table has it (``t_s``
    restarts at 0 in every trace, so runs of several traces would interleave), else ``t_s``;
    frames outside any run last."""
    clock = "t_wall_ns" if "t_wall_ns" in frames.columns else "t_s"
    starts = pd.Series(frames[clock].to_numpy(dtype=float, na_value=np.nan), index=frames.index)
    first = starts.groupby(lane_of.to_numpy(), sort=False).min()
    ordered = sorted(first.index, key=lambda name: (name == _NO_RUN, first[name]))
    return [str(name) for name in ordered]


def _draw_marks(ax: Axes, marks: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    _check(marks, ["label", "t_s"], "plot_timeline (marks)")
    if "session" in marks.columns and "session" in df.columns:
        marks = marks[marks["session"].isin(df["session"].dropna().unique())]
    if marks.empty:
        return []
    top = blended_transform_factory(ax.transData, ax.transAxes)
    ends = (
        marks["t_end_s"].to_numpy(dtype=float, na_value=np.nan)
        if "t_end_s" in marks.columns
        else np.full(len(marks), np.nan)
    )
    drew_span = drew_line = False
    for label, start, end in zip(
        marks["label"].astype("string").fillna("").tolist(),
        marks["t_s"].to_numpy(dtype=float, na_value=np.nan).tolist(),
        ends.tolist(),
        strict=True,
    ):
        if math.isnan(start):
            continue
        if not math.isnan(end):
            ax.axvspan(start, end, color=MARK_COLOR, alpha=0.15, zorder=1, gid="mark")
            drew_span = True
        else:
            ax.axvline(start, color=MARK_COLOR, linestyle=":", linewidth=1.2, zorder=2, gid="mark")
            drew_line = True
        # Inside the axes, along the line: labels above the axes collide with the title.
        ax.text(
            start,
            0.98,
            f" {label}",
            transform=top,
            rotation=90,
            fontsize="x-small",
            ha="right",
            va="top",
            color=MARK_COLOR,
            gid="mark-label",
            zorder=2,
        )
    handles: list[Any] = []
    if drew_line:
        handles.append(Line2D([], [], color=MARK_COLOR, linestyle=":", label="probe mark"))
    if drew_span:
        handles.append(Patch(color=MARK_COLOR, alpha=0.15, label="probe window"))
    return handles


# --- gaps -----------------------------------------------------------------------------------


def describe_timeline(df: pd.DataFrame, *, name: str = "the trace") -> str:
    """The alt text of :func:`plot_timeline` (``lanes="event"``) of ``df``, in plain words:
    what was sent and received, in order, and over how long. ``name`` names the trace."""
    _check(df, ["dir", "t_s", "event"], "describe_timeline")
    span = float(df["t_s"].max()) if len(df) and pd.notna(df["t_s"].max()) else 0.0
    sent = [str(e) for e in df.loc[df["dir"] == "send", "event"].fillna("frame")]
    received = [str(e) for e in df.loc[df["dir"] == "receive", "event"].fillna("frame")]
    return (
        f"Timeline of {name}: one lane per event type, time across, over {duration_words(span)}. "
        f"Sent ({_colour(SEND_COLOR)} triangles): {squeeze(sent) or 'nothing'}. "
        f"Received ({_colour(RECEIVE_COLOR)} dots): {squeeze(received) or 'nothing'}."
    )


def describe_gaps(gaps: pd.DataFrame, *, threshold_s: float = 2.0, name: str = "") -> str:
    """The alt text of :func:`plot_gaps` of ``gaps`` (:func:`netra_ws.analysis.event_gaps`),
    in plain words: how many gaps, the median and the largest, how many are stalls."""
    _check(gaps, ["run", "event", "gap_s"], "describe_gaps")
    rows = gaps[gaps["gap_s"].notna()]
    if rows.empty:
        return "Bar chart of the gaps between consecutive agent events: there are none."
    worst = rows.iloc[int(rows["gap_s"].to_numpy(dtype=float).argmax())]
    where = f" in {worst['trace']}" if "trace" in rows and pd.notna(worst.get("trace")) else ""
    runs = rows["run"].nunique()
    of = f" ({name})" if name else ""
    stalls = int((rows["gap_s"] > threshold_s).sum())
    median, largest = (duration_words(float(v)) for v in (rows["gap_s"].median(), worst["gap_s"]))
    return (
        f"Bar chart of the {len(rows)} gaps between consecutive agent events in {runs} runs"
        f"{of}, run after run: median {median}, largest {largest} "
        f"(before {worst['event']} #{worst['seq']}{where}); "
        f"{stalls} above the {threshold_s:g} s stall threshold, drawn in {_colour(STALL_COLOR)}."
    )


def duration_words(seconds: float) -> str:
    """A duration as the alt texts and the report write it: "250 ms", "2.50 s".

    >>> duration_words(0.25), duration_words(2.5)
    ('250 ms', '2.50 s')
    """
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _colour(color: str) -> str:
    """A matplotlib colour as a word for alt text: "tab:orange" -> "orange"."""
    return color.removeprefix("tab:")


def plot_gaps(
    gaps: pd.DataFrame,
    *,
    threshold_s: float = 2.0,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Bars of the gaps between consecutive events, run after run, stalls in red.

    ``gaps`` is :func:`netra_ws.analysis.event_gaps`; one bar per gap (a run's first event
    has none), in receipt order; a bar taller than ``threshold_s`` is a stall (the same
    rule as :func:`netra_ws.analysis.find_stalls`) and is red, the others blue; the
    threshold is a dashed line. The y axis is logarithmic, so normal jitter of milliseconds
    shows beside a stall of seconds. For one run the x axis names each event the gap led to;
    for several, it names the runs, separated by thin lines.

    Example (one gap of 1.5 s, over the threshold)::

        >>> from netra_ws.analysis import event_gaps
        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (600, "agent_thinking"),
        ...                (2100, "agent_completed")]).to_frame()
        >>> ax = plot_gaps(event_gaps(df), threshold_s=1.0)
        >>> [round(float(p.get_height()), 2) for p in ax.patches]
        [0.3, 0.1, 1.5]
    """
    _check(gaps, ["run", "event", "gap_s"], "plot_gaps")
    rows = gaps[gaps["gap_s"].notna()]
    ax = _axes(ax)
    heights = rows["gap_s"].to_numpy(dtype=float)
    stall = heights > threshold_s
    x = np.arange(len(rows))
    colors = np.where(stall, STALL_COLOR, GAP_COLOR)
    ax.bar(x, heights, width=0.8, color=colors, edgecolor="none")
    ax.axhline(threshold_s, color=STALL_COLOR, linestyle="--", linewidth=1, gid="threshold")

    runs = rows["run"].astype("string").fillna(_NO_RUN)
    run_names = list(dict.fromkeys(runs.tolist()))
    if len(run_names) <= 1:
        ticks, labels = x, rows["event"].astype("string").fillna(_UNPARSED).tolist()
        ax.set_xlabel("event the gap led to (receipt order)")
        where = f": run {run_names[0]}" if run_names else ""
    else:
        codes = runs.map({name: i for i, name in enumerate(run_names)}).to_numpy(dtype=int)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(codes)]
        ticks, labels = (starts + ends - 1) / 2, [runs.iloc[s] for s in starts]
        for boundary in starts[1:]:
            ax.axvline(boundary - 0.5, color="0.85", linewidth=0.8, zorder=0, gid="run-boundary")
        # Runs of one trace share "<trace>#": say it once, in the axis label.
        traces = {label.rpartition("#")[0] for label in labels}
        if len(traces) == 1 and all("#" in label for label in labels):
            labels = ["#" + label.rpartition("#")[2] for label in labels]
            ax.set_xlabel(f"run of {traces.pop()}")
        else:
            ax.set_xlabel("run")
        where = f" ({len(run_names)} runs)"
    shown_ticks, shown_labels = _thin(list(ticks), list(labels))
    ax.set_xticks(shown_ticks, labels=shown_labels, rotation=45, ha="right", fontsize="small")
    ax.set_xlim(-0.6, max(len(rows), 1) - 0.4)
    # Log scale: a linear one flattens every normal gap under one stall.
    ax.set_yscale("log")
    positive = heights[heights > 0]
    low = min(float(positive.min()) if positive.size else threshold_s, threshold_s) / 3
    high = max(float(heights.max()) if heights.size else threshold_s, threshold_s) * 2
    ax.set_ylim(low, high)
    ax.set_ylabel("gap since the previous event (s, log scale)")
    ax.set_title(title or f"Gaps between consecutive events{where}")
    if rows.empty:
        _say_empty(ax, "no gaps: no run had two events")
    ax.legend(
        handles=[
            Patch(color=GAP_COLOR, label="gap"),
            Patch(color=STALL_COLOR, label=f"stall (> {threshold_s:g} s)"),
            Line2D([], [], color=STALL_COLOR, linestyle="--", label="stall threshold"),
        ],
        loc="upper left",
        fontsize="small",
    )
    return ax


def plot_gap_histogram(
    gaps: pd.DataFrame,
    *,
    by: str | None = None,
    value: str = "gap_s",
    bins: int = 30,
    log: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Histogram of gaps (or of any seconds column: ``value="duration_s"``…) across runs.

    With ``by`` (a column such as ``"event"``, or a ``"set"`` column you added), one
    outline per group over shared bins, so the groups compare bar for bar; without it,
    filled bars. ``log=True`` uses logarithmic bins and x axis (gaps span milliseconds to
    seconds). NaN values are left out; the legend says how many values each group has.

    Example::

        >>> from netra_ws.analysis import event_gaps
        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (600, "agent_thinking"),
        ...                (2100, "agent_completed")]).to_frame()
        >>> ax = plot_gap_histogram(event_gaps(df), by="event")
        >>> [t.get_text() for t in ax.get_legend().get_texts()]
        ['agent_completed (n=1)', 'agent_thinking (n=2)']
    """
    groups, label = _groups(gaps, value, by, "plot_gap_histogram")
    ax = _axes(ax)
    present = [v for _, v in groups if len(v)]
    everything = np.concatenate(present) if present else np.empty(0)
    edges = _bin_edges(everything, bins, log).tolist()  # matplotlib's types take no array
    for name, values in groups:
        if len(values) == 0:
            continue  # a group with no values would draw a flat outline and a legend entry
        text = f"{name} (n={len(values)})" if by is not None else f"n={len(values)}"
        if by is None:
            ax.hist(values, bins=edges, color=GAP_COLOR, edgecolor="white", label=text)
        else:
            ax.hist(values, bins=edges, histtype="step", linewidth=1.8, label=text)
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("count")
    ax.set_title(title or f"Distribution of {_noun(value)}")
    if present:
        ax.legend(fontsize="small")
    else:
        _say_empty(ax, f"no {_noun(value)} to show")
    return ax


def plot_gap_ecdf(
    gaps: pd.DataFrame,
    *,
    by: str | None = None,
    value: str = "gap_s",
    log: bool = False,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Empirical CDF of gaps (or any seconds column), one line per group of ``by``.

    Read a percentile off the y axis: where a line crosses 0.9, 90 % of its gaps were
    shorter. Dotted guides mark 0.5 and 0.9. Use it to overlay event types
    (``by="event"``), runs, or two sets (see :func:`plot_overlay`).

    Example::

        >>> from netra_ws.analysis import event_gaps
        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (600, "agent_thinking"),
        ...                (2100, "agent_completed")]).to_frame()
        >>> ax = plot_gap_ecdf(event_gaps(df), by="event")
        >>> len(ax.get_lines())  # one line per event type with gaps, plus the two guides
        4
    """
    groups, label = _groups(gaps, value, by, "plot_gap_ecdf")
    ax = _axes(ax)
    for name, values in groups:
        if len(values) == 0:
            continue
        text = f"{name} (n={len(values)})" if by is not None else f"n={len(values)}"
        ax.ecdf(values, label=text, linewidth=1.8)
    for level in (0.5, 0.9):
        ax.axhline(level, color="0.6", linestyle=":", linewidth=1, gid="guide")
    if log:
        ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(label)
    ax.set_ylabel("fraction at or below x")
    ax.set_title(title or f"Cumulative distribution of {_noun(value)}")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="lower right")
    else:
        _say_empty(ax, f"no {_noun(value)} to show")
    return ax


def plot_overlay(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    value: str = "gap_s",
    labels: tuple[str, str] = ("a", "b"),
    kind: str = "ecdf",
    log: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Two sets of runs on one chart: the distribution of ``value`` in ``a`` and in ``b``.

    ``a`` and ``b`` are the same kind of table for each set (``event_gaps`` of before and
    after, ``run_stats`` with ``value="time_to_first_event_s"``…). ``kind`` is "ecdf" (the
    default: percentiles read straight off) or "hist". ``labels`` name the sets in the
    legend and the title.

    Example (the same run, answered twice as slowly on staging)::

        >>> from netra_ws.analysis import event_gaps
        >>> from netra_ws.trace import TraceWriter
        >>> def gaps(slowdown):
        ...     w = TraceWriter(None, session="s1")  # in memory: no file
        ...     for ms, event in [(0, "user_message"), (200, "agent_started"),
        ...                       (500, "agent_thinking"), (1500, "agent_completed")]:
        ...         way = "send" if event == "user_message" else "receive"
        ...         ns = ms * slowdown * 10**6
        ...         _ = w.frame(way, f'{{"type": "{event}"}}', t_wall_ns=ns, t_mono_ns=ns)
        ...     return event_gaps(w.to_trace().to_frame())
        >>> ax = plot_overlay(gaps(1), gaps(2), labels=("local", "staging"))
        >>> ax.get_title()
        'Gaps: local vs staging'
    """
    if kind not in ("ecdf", "hist"):
        raise ValueError(f"kind must be 'ecdf' or 'hist', not {kind!r}")
    if len(labels) != 2 or labels[0] == labels[1]:
        raise ValueError(f"labels must be two different names, not {labels!r}")
    _check(a, [value], "plot_overlay (a)")
    _check(b, [value], "plot_overlay (b)")
    both = pd.concat(
        [
            pd.DataFrame({value: _floats(a[value]), "set": labels[0]}),
            pd.DataFrame({value: _floats(b[value]), "set": labels[1]}),
        ],
        ignore_index=True,
    )
    both["set"] = pd.Categorical(both["set"], categories=list(labels))
    title = f"{_noun(value).capitalize()}: {labels[0]} vs {labels[1]}"
    if kind == "ecdf":
        return plot_gap_ecdf(both, by="set", value=value, log=log, title=title, ax=ax)
    return plot_gap_histogram(both, by="set", value=value, log=log, title=title, ax=ax)


# --- phases and comparisons -----------------------------------------------------------------


def plot_tool_latency(
    phases: pd.DataFrame, *, title: str | None = None, ax: Axes | None = None
) -> Axes:
    """One box per tool: ``tool_executing`` to ``tool_completed`` latency, in seconds.

    ``phases`` is :func:`netra_ws.analysis.phase_durations`; only matched tool calls have a
    latency. Boxes are sorted by tool name; the tick label gives the number of calls, and
    how many never completed, which is often the real finding.

    Example (a search that took 1.2 s, then a fetch that never completed)::

        >>> import json
        >>> from netra_ws.analysis import phase_durations
        >>> from netra_ws.trace import TraceWriter
        >>> w = TraceWriter(None, session="s1")  # in memory: no file
        >>> for ms, way, frame in [
        ...     (0, "send", {"type": "user_message"}),
        ...     (800, "receive", {"type": "tool_executing", "tool_name": "search"}),
        ...     (2000, "receive", {"type": "tool_completed", "tool_name": "search"}),
        ...     (2100, "receive", {"type": "tool_executing", "tool_name": "fetch"}),
        ... ]:
        ...     _ = w.frame(way, json.dumps(frame), t_wall_ns=ms * 10**6, t_mono_ns=ms * 10**6)
        >>> ax = plot_tool_latency(phase_durations(w.to_trace().to_frame()))
        >>> [t.get_text() for t in ax.get_xticklabels()]
        ['fetch\\n(n=0, 1 unmatched)', 'search\\n(n=1)']
    """
    _check(phases, ["kind", "tool_name", "duration_s", "matched"], "plot_tool_latency")
    tools = phases[phases["kind"].eq("tool").to_numpy(dtype=bool, na_value=False)]
    ax = _axes(ax)
    names = sorted(tools["tool_name"].astype("string").fillna("?").unique().tolist())
    data, labels = [], []
    tool_names = tools["tool_name"].astype("string").fillna("?")
    for name in names:
        rows = tools[(tool_names == name).to_numpy(dtype=bool)]
        values = _floats(rows["duration_s"])
        values = values[~np.isnan(values)]
        unmatched = int((~rows["matched"].to_numpy(dtype=bool)).sum())
        extra = f", {unmatched} unmatched" if unmatched else ""
        data.append(values)
        labels.append(f"{name}\n(n={len(values)}{extra})")
    if data:
        parts = ax.boxplot(
            data,
            tick_labels=labels,
            patch_artist=True,
            widths=0.6,
            medianprops={"color": "black", "linewidth": 1.5},
            boxprops={"facecolor": "lightsteelblue", "edgecolor": "black"},
            flierprops={"marker": "o", "markersize": 3, "alpha": 0.6},
        )
        for median in parts["medians"]:
            median.set_gid("median")
    else:
        ax.set_xticks([])
        _say_empty(ax, "no tool calls")
    ax.set_ylabel("tool_executing → tool_completed (s)")
    ax.set_xlabel("tool")
    ax.set_title(title or "Tool latency")
    ax.grid(axis="y", alpha=0.3)
    return ax


def plot_comparison(
    comparison: pd.DataFrame,
    *,
    stat: str = "p90",
    labels: tuple[str, str] = ("a", "b"),
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Paired horizontal bars for each metric of :func:`netra_ws.analysis.compare_runs`.

    For each (metric, name) row with ``stat``, a grey bar for ``a`` and a bar for ``b``
    coloured by the change (:data:`CHANGE_COLORS`: green better, red worse, grey same), with
    the delta written at its end. Rows read top to bottom in the table's order.

    Example (the same run, answered three times slower after a change)::

        >>> from netra_ws.analysis import compare_runs
        >>> from netra_ws.trace import scripted
        >>> run = [(0, "user_message"), (200, "agent_started"), (1500, "agent_completed")]
        >>> def table(slowdown):
        ...     return scripted(run, scale=slowdown).to_frame()
        >>> ax = plot_comparison(compare_runs(table(1), table(3)), stat="p90",
        ...                      labels=("before", "after"))
        >>> [t.get_text() for t in ax.get_yticklabels()][:2]
        ['time_to_first_event', 'duration']
    """
    _check(comparison, ["metric", "name", "stat", "a", "b", "delta", "change"], "plot_comparison")
    rows = comparison[comparison["stat"].eq(stat).to_numpy(dtype=bool, na_value=False)]
    if rows.empty and not comparison.empty:
        have = sorted(comparison["stat"].dropna().unique().tolist())
        raise ValueError(f"plot_comparison: no rows with stat {stat!r}; the table has {have}")
    ax = _axes(ax)
    y = np.arange(len(rows))
    va, vb = _floats(rows["a"]), _floats(rows["b"])
    change = rows["change"].astype("string").fillna("no_data").tolist()
    height = 0.38
    ax.barh(y - height / 2, np.nan_to_num(va), height, color=BASELINE_COLOR, label=labels[0])
    colors = [CHANGE_COLORS.get(c, "tab:gray") for c in change]
    ax.barh(y + height / 2, np.nan_to_num(vb), height, color=colors)
    for yi, b_value, delta, what in zip(y, vb, _floats(rows["delta"]), change, strict=True):
        text = "—" if math.isnan(delta) else _seconds(delta, signed=True)
        where = 0.0 if math.isnan(b_value) else b_value
        ax.text(
            where,
            yi + height / 2,
            f" {text} {what}",
            va="center",
            fontsize="x-small",
            gid="delta",
        )
    names = [
        metric if metric in _RUN_METRICS else f"{metric}: {name}"
        for metric, name in zip(
            rows["metric"].astype(str).tolist(), rows["name"].astype(str).tolist(), strict=True
        )
    ]
    ax.set_yticks(y, labels=names, fontsize="small")
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(f"{stat} (s)")
    ax.set_title(title or f"{labels[0]} vs {labels[1]}: {stat} per metric")
    # only_a and no_data draw no b bar: nothing to explain in the legend.
    shown = [c for c in dict.fromkeys(change) if c not in ("only_a", "no_data")]
    handles = [Patch(color=BASELINE_COLOR, label=labels[0])] + [
        Patch(color=CHANGE_COLORS.get(c, "tab:gray"), label=f"{labels[1]}: {c}") for c in shown
    ]
    ax.legend(handles=handles, loc="lower right", fontsize="small")
    ax.margins(x=0.25)  # room for the delta labels
    ax.grid(axis="x", alpha=0.3)
    return ax


# --- saving ---------------------------------------------------------------------------------


def save_figure(
    fig_or_ax: Figure | SubFigure | Axes,
    name: str,
    out_dir: str | os.PathLike[str] = "data",
) -> Path:
    """Save the figure (of an ``Axes``, or a ``Figure``) as ``<out_dir>/<name>.png``.

    ``name`` may end in ``.png`` and may contain sub-folders; directories are created; an
    existing image of that name is replaced (a chart is derived, unlike a trace). 120 dpi
    and a tight bounding box: the default size gives about 960 x 540 pixels. Returns the
    path, ready for a Markdown ``![chart](path)``.

    Example (into a temporary directory; the default is ``data/``)::

        >>> import tempfile
        >>> fig, ax = plt.subplots()
        >>> with tempfile.TemporaryDirectory() as out:
        ...     path = save_figure(ax, "charts/empty", out_dir=out)
        ...     path.relative_to(out), path.stat().st_size > 0
        (PosixPath('charts/empty.png'), True)
    """
    if isinstance(fig_or_ax, (Axes, SubFigure)):
        figure = fig_or_ax.get_figure(root=True)
    elif isinstance(fig_or_ax, Figure):
        figure = fig_or_ax
    else:
        raise TypeError(
            f"save_figure() takes a matplotlib Figure or Axes, not {type(fig_or_ax).__name__}"
        )
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name must be a non-empty file name, not {name!r}")
    path = Path(out_dir) / name
    if path.suffix.lower() != ".png":
        if path.suffix and path.suffix.lower() in {".jpg", ".jpeg", ".svg", ".pdf", ".gif"}:
            raise ValueError(f"save_figure() writes PNG images; name {name!r} asks for another")
        path = path.with_name(path.name + ".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    assert figure is not None  # an Axes always belongs to a figure
    figure.savefig(path, dpi=_DPI, bbox_inches="tight", facecolor="white")
    return path


# --- helpers --------------------------------------------------------------------------------


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=FIGSIZE, layout="constrained")
    elif not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes, not {type(ax).__name__}")
    return ax


def _say_empty(ax: Axes, text: str) -> None:
    # An empty chart in an issue comment must not look like a rendering failure.
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="0.4",
        gid="empty",
    )


def _check(df: Any, required: Sequence[str], caller: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{caller}() takes a pandas DataFrame, not {type(df).__name__}")
    missing = [name for name in required if name not in df.columns]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise ValueError(
            f"{caller}: missing column(s) {names}; see its docstring for the table it takes"
        )


def _groups(
    table: pd.DataFrame, value: str, by: str | None, caller: str
) -> tuple[list[tuple[str, np.ndarray]], str]:
    _check(table, [value] + ([by] if by is not None else []), caller)
    values = _floats(table[value])
    keep = ~np.isnan(values)
    if by is None:
        return [("all", values[keep])], _AXIS_LABELS.get(value, value)
    keys = table[by]
    groups = []
    # Categorical keys keep their category order (the sets of plot_overlay); others sort.
    uniques = (
        list(keys.cat.categories)
        if isinstance(keys.dtype, pd.CategoricalDtype)
        else sorted(keys.dropna().unique().tolist(), key=str)
    )
    for name in uniques:
        mask = keys.eq(name).to_numpy(dtype=bool, na_value=False) & keep
        groups.append((str(name), values[mask]))
    if keys.isna().any():
        groups.append(("NA", values[keys.isna().to_numpy(dtype=bool) & keep]))
    return groups, _AXIS_LABELS.get(value, value)


def _bin_edges(values: np.ndarray, bins: int, log: bool) -> np.ndarray:
    if len(values) == 0:
        return np.linspace(0, 1, bins + 1)
    if log:
        positive = values[values > 0]
        low = positive.min() if len(positive) else 1e-3
        high = max(values.max(), low * 10)
        return np.geomspace(low, high, bins + 1)
    return np.histogram_bin_edges(values, bins=bins)


def _floats(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _noun(value: str) -> str:
    return {
        "gap_s": "gaps",
        "since_trigger_s": "times since the trigger",
        "time_to_first_event_s": "times to first event",
        "duration_s": "durations",
        "span_s": "spans",
    }.get(value, value)


def _seconds(value: float, *, signed: bool = False) -> str:
    """Seconds as people read them: "+784 ms", "+1.2 s"."""
    sign = "+" if signed else ""
    if abs(value) < 1:
        return f"{value * 1000:{sign}.3g} ms"
    return f"{value:{sign}.3g} s"


def _thin(ticks: list[Any], labels: list[str]) -> tuple[list[Any], list[str]]:
    """At most _MAX_TICKS labels, evenly spread, so that they stay readable."""
    if len(ticks) <= _MAX_TICKS:
        return ticks, labels
    step = math.ceil(len(ticks) / _MAX_TICKS)
    return ticks[::step], labels[::step]
