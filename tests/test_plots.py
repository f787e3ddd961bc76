"""netra_ws.plots: what each chart draws (lanes, points, bars, colours, marks, labels)."""

from __future__ import annotations

import struct

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from helpers.scripts import Script, one_run, three_runs
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from netra_ws import plots
from netra_ws.analysis import compare_runs, event_gaps, phase_durations
from netra_ws.plots import (
    CHANGE_COLORS,
    plot_comparison,
    plot_gap_ecdf,
    plot_gap_histogram,
    plot_gaps,
    plot_overlay,
    plot_timeline,
    plot_tool_latency,
    save_figure,
)
from netra_ws.trace import TraceWriter


@pytest.fixture(autouse=True)
def _close_figures(monkeypatch):
    def no_show(*args, **kwargs):
        raise AssertionError("a plot helper called plt.show()")

    monkeypatch.setattr(plt, "show", no_show)
    yield
    plt.close("all")


@pytest.fixture
def script() -> Script:
    s = three_runs()
    s.mark(50, "probe: send user_message")
    s.mark(3000, "probe: quiet window begins")
    return s


def ytick_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def xtick_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_xticklabels()]


def legend_texts(ax) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def marks_drawn(ax) -> tuple[list, list]:
    lines = [line for line in ax.get_lines() if line.get_gid() == "mark"]
    spans = [patch for patch in ax.patches if patch.get_gid() == "mark"]
    return lines, spans


def bar_patches(ax) -> list:
    return [patch for container in ax.containers for patch in container]


# --- timeline -------------------------------------------------------------------------------


def test_timeline_by_event_lanes_points_and_marks(script):
    df = script.frame()
    marks = script.writer.to_trace().marks_frame()
    marks["t_end_s"] = [np.nan, 5.0]  # the quiet window is a span
    ax = plot_timeline(df, marks=marks)

    lanes = [
        "connection_established",
        "user_message",
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "heartbeat",
        "tool_completed",
        "agent_completed",
    ]
    assert ytick_texts(ax) == lanes  # one lane per event type, in order of first appearance
    receive, send = ax.collections
    assert len(receive.get_offsets()) == 10 and len(send.get_offsets()) == 3
    assert tuple(receive.get_facecolor()[0]) == to_rgba(plots.RECEIVE_COLOR)
    assert tuple(send.get_facecolor()[0]) == to_rgba(plots.SEND_COLOR)
    assert receive.get_paths()[0] != send.get_paths()[0]  # a different marker shape
    assert set(send.get_offsets()[:, 1]) == {lanes.index("user_message")}
    assert list(send.get_offsets()[:, 0]) == pytest.approx([0.1, 5.0, 6.0])

    lines, spans = marks_drawn(ax)
    assert [line.get_xdata()[0] for line in lines] == pytest.approx([0.05])
    assert len(spans) == 1
    labels = [t.get_text().strip() for t in ax.texts if t.get_gid() == "mark-label"]
    assert labels == ["probe: send user_message", "probe: quiet window begins"]
    assert ax.get_title() == "Frames over time"
    assert ax.get_xlabel() == "time since trace start (s)"
    assert legend_texts(ax) == [
        "receive (server → client)",
        "send (client → server)",
        "probe mark",
        "probe window",
    ]


def test_timeline_without_housekeeping(script):
    ax = plot_timeline(script.frame(), include_housekeeping=False)
    assert "heartbeat" not in ytick_texts(ax)
    assert "connection_established" not in ytick_texts(ax)
    assert len(ytick_texts(ax)) == 6


def test_timeline_by_run(script):
    ax = plot_timeline(script.frame(), lanes="run")
    assert ytick_texts(ax) == ["s1#1", "s1#2", "s1#3", "(no run)"]  # by start; no run last
    assert ax.get_ylabel() == "run"
    # Every frame is drawn once, on its run's lane.
    points = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(points) == 13
    per_lane = np.bincount(points[:, 1].astype(int))
    assert per_lane.tolist() == [8, 1, 3, 1]
    legend = legend_texts(ax)
    assert legend[0] == "connection_established"
    assert "agent_completed" in legend and legend[-1] == "send (client → server)"
    assert len(legend) == len(set(legend))  # one entry per event type
    # Colour is the event type (a patch each), shape the direction: one triangle in all.
    handles = ax.get_legend().legend_handles
    kinds = [h for h, text in zip(handles, legend, strict=True) if "→" not in text]
    assert all(isinstance(h, Patch) for h in kinds)
    triangles = [h for h in handles if isinstance(h, Line2D) and h.get_marker() == "^"]
    assert len(triangles) == 1


def test_timeline_runs_of_several_traces_sort_by_when_they_began():
    """t_s restarts in every trace; the lanes follow the wall clock, not t_s."""
    frames = []
    for session, wall_s, run_at_ms in (("late", 100, 100), ("early", 0, 5000)):
        w = TraceWriter(None, session=session)
        for ms, event in [(run_at_ms, "user_message"), (run_at_ms + 50, "agent_started")]:
            way = "send" if event == "user_message" else "receive"
            mono, wall = ms * 10**6, (wall_s * 1000 + ms) * 10**6
            w.frame(way, f'{{"type": "{event}"}}', t_wall_ns=wall, t_mono_ns=mono)
        frames.append(w.to_trace().to_frame())
    ax = plot_timeline(pd.concat(frames, ignore_index=True), lanes="run")
    assert ytick_texts(ax) == ["early#1", "late#1"]


def test_timeline_marks_of_other_sessions_are_not_drawn(script):
    marks = pd.concat(
        [
            script.writer.to_trace().marks_frame(),
            Script("other").mark(10, "elsewhere").writer.to_trace().marks_frame(),
        ],
        ignore_index=True,
    )
    ax = plot_timeline(script.frame(), marks=marks)
    lines, _ = marks_drawn(ax)
    assert len(lines) == 2


def test_timeline_draws_into_a_given_ax(script):
    _, (left, right) = plt.subplots(1, 2)
    before = plt.get_fignums()
    out = plot_timeline(script.frame(), ax=right)
    assert out is right and plt.get_fignums() == before
    assert not left.collections


def test_timeline_checks_arguments(script):
    with pytest.raises(ValueError, match="lanes"):
        plot_timeline(script.frame(), lanes="tool")
    with pytest.raises(ValueError, match="'t_s'"):
        plot_timeline(script.frame().drop(columns=["t_s"]))
    with pytest.raises(ValueError, match="'label'"):
        plot_timeline(script.frame(), marks=pd.DataFrame({"t_s": [1.0]}))


# --- gaps -----------------------------------------------------------------------------------


def test_gap_bars_of_one_run_with_stalls_highlighted(script):
    gaps = event_gaps(script.frame())
    ax = plot_gaps(gaps[gaps["run"] == "s1#1"], threshold_s=1.0)
    bars = bar_patches(ax)
    assert [b.get_height() for b in bars] == pytest.approx([0.15, 0.3, 0.1, 1.5, 0.2])
    colors = [b.get_facecolor() for b in bars]
    assert colors[3] == to_rgba(plots.STALL_COLOR)
    assert all(c == to_rgba(plots.GAP_COLOR) for i, c in enumerate(colors) if i != 3)
    assert xtick_texts(ax) == [
        "agent_thinking",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    (threshold,) = [line for line in ax.get_lines() if line.get_gid() == "threshold"]
    assert threshold.get_ydata()[0] == pytest.approx(1.0)
    assert ax.get_title() == "Gaps between consecutive events: run s1#1"
    assert ax.get_ylabel() == "gap since the previous event (s, log scale)"
    assert legend_texts(ax) == ["gap", "stall (> 1 s)", "stall threshold"]
    # Log scale: the 0.1 s gap is a tenth of the way up, not flattened under the 1.5 s stall.
    assert ax.get_yscale() == "log"
    low, high = ax.get_ylim()
    assert low < 0.1 and high > 1.5
    assert (np.log(0.1) - np.log(low)) / (np.log(high) - np.log(low)) > 0.1


def test_gap_bars_of_several_runs(script):
    ax = plot_gaps(event_gaps(script.frame()))
    assert len(bar_patches(ax)) == 6  # five gaps in run 1, one in run 3
    assert all(b.get_facecolor() == to_rgba(plots.GAP_COLOR) for b in bar_patches(ax))
    assert xtick_texts(ax) == ["#1", "#3"]
    assert ax.get_xlabel() == "run of s1"
    assert [t for t in ax.get_xticks()] == pytest.approx([2.0, 5.0])
    boundaries = [line for line in ax.get_lines() if line.get_gid() == "run-boundary"]
    assert [line.get_xdata()[0] for line in boundaries] == pytest.approx([4.5])
    assert ax.get_title() == "Gaps between consecutive events (2 runs)"


def test_gap_bars_without_gaps_say_so():
    ax = plot_gaps(event_gaps(Script().send(0).frame()))
    assert not bar_patches(ax)
    assert [t.get_text() for t in ax.texts if t.get_gid() == "empty"] == [
        "no gaps: no run had two events"
    ]


def test_gap_bars_need_the_gap_table(script):
    with pytest.raises(ValueError, match="'gap_s'"):
        plot_gaps(script.frame())


def test_gap_histogram_single_and_grouped(script):
    gaps = event_gaps(script.frame())
    ax = plot_gap_histogram(gaps, bins=10)
    bars = bar_patches(ax)
    assert len(bars) == 10
    assert sum(b.get_height() for b in bars) == 6  # every gap, none of the NaN
    assert legend_texts(ax) == ["n=6"]
    assert ax.get_ylabel() == "count" and ax.get_title() == "Distribution of gaps"

    ax = plot_gap_histogram(gaps, by="event", log=True)
    outlines = [p for p in ax.patches if p.get_gid() != "mark"]
    assert len(outlines) == 4  # thinking, tool_executing, tool_completed, completed
    assert legend_texts(ax) == [
        "agent_completed (n=1)",
        "agent_thinking (n=3)",
        "tool_completed (n=1)",
        "tool_executing (n=1)",
    ]
    assert ax.get_xscale() == "log"


def test_gap_ecdf_one_line_per_group(script):
    gaps = event_gaps(script.frame())
    ax = plot_gap_ecdf(gaps, by="event")
    curves = [line for line in ax.get_lines() if line.get_gid() != "guide"]
    assert len(curves) == 4
    assert all(max(line.get_ydata()) == pytest.approx(1.0) for line in curves)
    thinking = curves[1]
    assert thinking.get_label() == "agent_thinking (n=3)"
    # The steps of 0.15, 0.2, 0.3: a third of the gaps at or below each.
    assert sorted(set(np.round(thinking.get_ydata(), 6))) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    guides = [line for line in ax.get_lines() if line.get_gid() == "guide"]
    assert [g.get_ydata()[0] for g in guides] == [0.5, 0.9]
    assert ax.get_ylabel() == "fraction at or below x"


def test_distributions_of_another_column():
    from netra_ws.analysis import run_stats

    runs = run_stats(three_runs().frame())
    ax = plot_gap_ecdf(runs, value="time_to_first_event_s")
    assert ax.get_xlabel() == "time to first event (s)"
    assert ax.get_title() == "Cumulative distribution of times to first event"
    assert legend_texts(ax) == ["n=2"]  # the run without a reply has no value


# --- tools, overlays, comparisons -----------------------------------------------------------


def test_tool_latency_boxes():
    s = Script().send(0)
    for start, ms in ((100, 100), (300, 200), (600, 400)):
        s.event(start, "tool_executing", tool="search").event(
            start + ms, "tool_completed", tool="search"
        )
    s.event(1100, "tool_executing", tool="calc").event(1150, "tool_completed", tool="calc")
    s.event(1200, "tool_executing", tool="calc")  # never completes
    ax = plot_tool_latency(phase_durations(s.frame()))
    boxes = [p for p in ax.patches]
    assert len(boxes) == 2
    assert xtick_texts(ax) == ["calc\n(n=1, 1 unmatched)", "search\n(n=3)"]
    medians = [line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "median"]
    assert medians == pytest.approx([0.05, 0.2])
    assert ax.get_ylabel() == "tool_executing → tool_completed (s)"
    assert ax.get_title() == "Tool latency"


def test_tool_latency_without_tools_draws_nothing(script):
    ax = plot_tool_latency(phase_durations(Script().send(0).frame()))
    assert not ax.patches and xtick_texts(ax) == []
    assert [t.get_text() for t in ax.texts if t.get_gid() == "empty"] == ["no tool calls"]


def test_overlay_of_two_sets():
    before = event_gaps(one_run(100, 100, {"search": 500}, "b").frame())
    after = event_gaps(one_run(100, 100, {"search": 900}, "a").frame())
    ax = plot_overlay(before, after, labels=("before", "after"))
    curves = [line for line in ax.get_lines() if line.get_gid() != "guide"]
    assert [c.get_label() for c in curves] == ["before (n=4)", "after (n=4)"]
    assert ax.get_title() == "Gaps: before vs after"
    assert max(curves[1].get_xdata()) == pytest.approx(0.9)
    ax = plot_overlay(before, after, labels=("before", "after"), kind="hist")
    assert legend_texts(ax) == ["before (n=4)", "after (n=4)"]
    with pytest.raises(ValueError, match="kind"):
        plot_overlay(before, after, kind="box")
    with pytest.raises(ValueError, match="labels"):
        plot_overlay(before, after, labels=("x", "x"))


def test_comparison_bars_coloured_by_change():
    a = one_run(200, 400, {"search": 1000, "legacy": 50}, "a").frame()
    b = one_run(204, 200, {"search": 2000, "vector": 30}, "b").frame()
    cmp = compare_runs(a, b, stats=["p50", "p90"])
    ax = plot_comparison(cmp, stat="p50", labels=("before", "after"))
    rows = cmp[cmp["stat"] == "p50"]
    names = ytick_texts(ax)
    assert len(names) == len(rows)
    assert names[:2] == ["time_to_first_event", "duration"]
    assert "phase: tool:search" in names and "gap: all" in names
    a_bars, b_bars = ax.containers
    assert [bar.get_width() for bar in a_bars] == pytest.approx(rows["a"].fillna(0).tolist())
    assert [bar.get_width() for bar in b_bars] == pytest.approx(rows["b"].fillna(0).tolist())
    for bar, change in zip(b_bars, rows["change"], strict=True):
        assert bar.get_facecolor() == to_rgba(CHANGE_COLORS[change])
    search = names.index("phase: tool:search")
    assert b_bars[search].get_facecolor() == to_rgba("tab:red")  # worse
    deltas = [t.get_text() for t in ax.texts if t.get_gid() == "delta"]
    assert deltas[search] == " +1 s worse"
    assert ax.get_xlabel() == "p50 (s)"
    assert ax.get_title() == "before vs after: p50 per metric"
    assert legend_texts(ax)[0] == "before"
    assert "after: worse" in legend_texts(ax) and "after: only_a" not in legend_texts(ax)
    ttfe = deltas[names.index("time_to_first_event")]
    assert ttfe == " +4 ms same"
    with pytest.raises(ValueError, match="p99"):
        plot_comparison(cmp, stat="p99")


# --- saving ---------------------------------------------------------------------------------


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_save_figure(tmp_path, script):
    ax = plot_gaps(event_gaps(script.frame()))
    path = save_figure(ax, "gaps", out_dir=tmp_path / "charts")
    assert path == tmp_path / "charts" / "gaps.png"
    width, height = png_size(path)
    # 8 x 4.5 in at 120 dpi, give or take the tight bounding box.
    assert 800 <= width <= 1000 and 450 <= height <= 600
    again = save_figure(ax.get_figure(), "gaps.png", out_dir=tmp_path / "charts")
    assert again == path
    with pytest.raises(ValueError, match="PNG"):
        save_figure(ax, "gaps.svg", out_dir=tmp_path)
    with pytest.raises(TypeError, match="Figure or Axes"):
        save_figure("gaps", "gaps", out_dir=tmp_path)
    with pytest.raises(ValueError, match="name"):
        save_figure(ax, "", out_dir=tmp_path)


def test_public_names():
    for name in plots.__all__:
        assert hasattr(plots, name), name
    for name in [n for n in plots.__all__ if n.startswith(("plot_", "save_"))]:
        assert getattr(plots, name).__doc__, name
