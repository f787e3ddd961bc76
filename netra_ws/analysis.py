"""Frame tables in, answers out: runs, gaps, time to first event, phases, stalls, comparisons.

Every function takes the frame table of :meth:`netra_ws.trace.Trace.to_frame` or
:func:`netra_ws.trace.load_traces` (one row per frame, both directions) and returns a NEW
DataFrame; the input is never modified. A table of many per-run trace files feeds straight
in: frames are grouped by the ``trace`` column when there is one, else by ``session``.
Typical use::

    df = load_traces("data/runs/")            # or trace.to_frame()
    runs = run_stats(df)                      # one row per run: time to first event, duration
    gaps = event_gaps(df)                     # one row per received event: gap since the last
    phases = phase_durations(df)              # thinking blocks and tool calls, with durations
    stalls = find_stalls(df, threshold_s=2)   # gaps above 2 s, with the events on both sides
    summary = summarize_runs(df)              # count, p50, p90, p99, max per event and phase
    compare_runs(before_df, after_df)         # deltas, and whether each got better or worse
    clock_offsets(df)                         # server clock vs receipt time, per session

Runs. :func:`split_runs` states what a run is, over a list of trace records;
:func:`assign_runs` labels a frame table by the same rule (tested equal), and every other
function uses it, as does :mod:`netra_ws.expect`. In short: a run starts at each
run-trigger send (``user_message`` and its aliases, ``start_agent``, …:
:data:`netra_ws.events.RUN_TRIGGER_TYPES`), and the frames after it, up to the next trigger,
belong to it. Where the server sends a ``run_id``, it decides instead, so the late events of
an earlier run are not credited to the next one. A table that already has a ``run`` column
(your own labelling) is used as it is.

Time. Gaps and durations use ``t_mono_ns`` (the monotonic clock, comparable within one
trace only); results are in seconds (``*_s`` columns, float64, NaN when there is no value).
``t_s`` columns are seconds since the start of the frame's trace, as in the frame table.

Housekeeping. ``connection_established``, ``heartbeat``, ``heartbeat_ack``, ``pong`` and
``ack`` (:data:`HOUSEKEEPING_EVENTS`) are not agent events: they are left out of gaps, first
events and counts unless you pass ``include_housekeeping=True``. Error frames and frames that
did not parse count as events: an error in the middle of a run is something the server said.

Duplicates and disorder. A frame that appears twice in the table (same trace or session, same
``seq`` and time: a file loaded twice) counts once. Rows are put back in receipt order
(``t_mono_ns``, then ``seq``), whatever order the table is in. An event the server really
sent twice (two frames) counts twice. Frames without ``t_mono_ns`` cannot be timed and are
left out of everything but :func:`assign_runs`.

Speed. Each function first puts the table in run and receipt order (half a second for a
million frames). That work is kept for the table analysed last, as long as it lives and its
columns are the ones it was done from, so asking several questions of one table pays once.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import ExtensionArray
from pandas.arrays import NumpyExtensionArray

from .events import AGENT_EVENTS, RUN_TRIGGER_TYPES, TERMINAL_EVENTS

__all__ = [
    "CHANGES",
    "HOUSEKEEPING_EVENTS",
    "METRICS",
    "OUTCOMES",
    "Run",
    "assign_runs",
    "clock_offsets",
    "compare_runs",
    "event_gaps",
    "find_stalls",
    "phase_durations",
    "run_stats",
    "split_runs",
    "summarize",
    "summarize_runs",
]

# Frames that keep the connection alive or acknowledge input: they say nothing about an
# agent run, and a heartbeat in the middle of a stall must not hide the stall.
HOUSEKEEPING_EVENTS: tuple[str, ...] = (
    "connection_established",
    "heartbeat",
    "heartbeat_ack",
    "pong",
    "ack",
)

# run_stats()["outcome"]: how a run ended.
OUTCOMES: tuple[str, ...] = ("completed", "error", "incomplete", "no_reply")

# summarize_runs()["metric"], in the order the table lists them.
METRICS: tuple[str, ...] = ("time_to_first_event", "duration", "gap", "phase")

# compare_runs()["change"]. Every metric is a time, so lower is better.
CHANGES: tuple[str, ...] = ("better", "worse", "same", "only_a", "only_b", "no_data")

_STATS: tuple[str, ...] = ("p50", "p90", "p99", "max")
_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}
_ALL = "all"  # the name of the row that pools every event type
_THINKING = "agent_thinking"
_TOOL_START, _TOOL_END = "tool_executing", "tool_completed"

# What each function reads from the frame table (session is always needed for the output).
_RUN_COLUMNS = ("session", "seq", "dir", "t_mono_ns", "event", "run_id")
_TIMED_COLUMNS = (*_RUN_COLUMNS, "t_s")
_PHASE_COLUMNS = (*_TIMED_COLUMNS, "tool_name")
_OFFSET_COLUMNS = ("session", "seq", "dir", "t_wall_ns", "event", "server_ts")

_NS = 1e9
_NO_TIME = np.iinfo(np.int64).max  # sorts frames without a time after every timed frame


# --- runs ------------------------------------------------------------------------------------


def assign_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``df`` with a ``run`` column saying which agent run each frame is in.

    The rule is :func:`split_runs`' (read it there), applied to the table's rows in numpy:
    in short, a run-trigger send starts a run, the frames after it up to the next trigger
    of the same trace belong to it, and a received ``run_id`` keeps the frames that carry
    it in the run where it was first seen. Frames in no run (``connection_established``,
    a probe's output-name-as-input) have ``run`` NA.

    ``run`` is a string ``"<trace>#<n>"``: the trace file name without ``.jsonl`` (or the
    session id when there is no ``trace`` column) and the run's number in that trace, in
    order of start. It is unique across the table; group by it, or pass the table on to
    :func:`run_stats`, :func:`event_gaps` and the rest, which use it as it is.

    Example (a run, then a trigger that got no reply)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (1500, "agent_completed"), (5000, "user_message")]).to_frame()
        >>> assign_runs(df).groupby("run").size()
        run
        s1#1    3
        s1#2    1
        dtype: int64
    """
    _check_frame(df, _RUN_COLUMNS, "assign_runs")
    base = _Base(df)
    codes, run_stream, run_number = _run_codes(base)
    labels = _run_labels(base.stream_labels, run_stream, run_number)
    # A duplicate sorts right after its original: it gets the original's run.
    per_row = codes[np.cumsum(~base.dup) - 1] if len(codes) else codes
    run = np.full(len(df), -1, dtype=np.int64)
    run[base.order] = per_row
    return df.assign(run=labels.take(run, allow_fill=True))


@dataclass(frozen=True)
class Run:
    """One agent run of :func:`split_runs`: where it is, what started it, its frames.

    ``trigger`` and ``frames`` are positions in the list given to :func:`split_runs`;
    ``frames`` are in receipt order and hold the trigger (first) and every frame of the run,
    whatever its direction or kind (acks, heartbeats and errors too: filter what you
    judge). ``label`` is the run's label in :func:`assign_runs`' ``run`` column.
    """

    stream: str  # the trace file without .jsonl, else the session id, else "?"
    number: int  # 1, 2, … within the stream, in order of start
    trigger: int | None  # the send that started it; None: a run without a trigger
    frames: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.stream}#{self.number}"


def split_runs(records: Sequence[Mapping[str, Any]]) -> list[Run]:
    """The agent runs in a list of trace records: THE definition of a run in this kit.

    ``records`` are frame records with their normalized fields (a Trace's records, those
    of :func:`netra_ws.trace.frame_record`, or the rows of a frame table as dicts); records
    of another ``kind`` are skipped. Frames are grouped by stream (their ``trace`` when
    the records have that key, else their ``session``) and put in receipt order
    (``t_mono_ns``, then ``seq``; frames without ``t_mono_ns`` last). Then, per stream:

    1. A run trigger (``dir`` "send", ``event`` in
       :data:`netra_ws.events.RUN_TRIGGER_TYPES`) starts a run; the frames after it, up to
       the next trigger (its *segment*), belong to it, sent frames included.
    2. A received frame with a ``run_id`` is in that ``run_id``'s run, even after a later
       trigger (a late event). A ``run_id`` belongs to the segment it is first received
       in, or to that of the trigger that last sent it (a client choosing, or reusing, its
       run ids). The first ``run_id`` received of a segment joins the trigger's run; any
       other, and any received before the first trigger, makes a run of its own, without
       a trigger, from its first frame.
    3. Before the first trigger, the frames without a ``run_id`` are in no run
       (``connection_established``, a probe's output-name-as-input), except from the first
       received agent event (:data:`netra_ws.events.AGENT_EVENTS`) without a ``run_id`` on:
       those make one run without a trigger (a capture of received frames only).
    4. A frame that repeats another (same stream, ``seq`` and ``t_mono_ns``: a file loaded
       twice) is in its run, right after it.

    Runs are numbered per stream in order of start (their trigger, else their first frame)
    and returned by stream, then number. :func:`assign_runs` labels a frame table by this
    rule, with numpy; a test holds the two equal. Example (``trigger`` and ``frames`` are
    indexes into ``records``; these records name no stream, hence "?")::

        >>> from netra_ws.trace import scripted
        >>> trace = scripted([(0, "user_message"), (200, "agent_started"),
        ...                   (1500, "agent_completed"), (5000, "user_message")])
        >>> [(run.label, run.trigger, run.frames) for run in split_runs(trace.records)]
        [('?#1', 0, (0, 1, 2)), ('?#2', 3, (3,))]
    """
    frames = [i for i, r in enumerate(records) if r.get("kind", "frame") == "frame"]
    key = "trace" if any("trace" in records[i] for i in frames) else "session"
    names: dict[str, int] = {}
    for i in frames:
        name = _text(records[i].get(key))
        if name is not None:
            names.setdefault(name, len(names))
    # As in assign_runs: named streams by first appearance, the unnamed one last.
    labels = [_stream_label(name) for name in names] + ["?"]

    def receipt(i: int) -> tuple[int, int, int]:
        name = _text(records[i].get(key))
        stream = len(names) if name is None else names[name]
        return stream, _whole(records[i].get("t_mono_ns")), _whole(records[i].get("seq"))

    runs: list[tuple[int, int | None, list[int]]] = []  # stream, trigger, frames; by start
    stream: _Stream | None = None
    previous, code = (-1, -1, -1), None  # the previous frame, and its run
    for i in sorted(frames, key=receipt):
        at = receipt(i)
        if at != previous or at[2] == _NO_TIME:  # else a repeat, in its original's run
            if stream is None or at[0] != previous[0]:
                stream = _Stream()
            code = stream.place(records[i], len(runs))
            if code == len(runs):  # a new run: the frame is its trigger or its first frame
                runs.append((at[0], i if stream.segment == code else None, []))
            previous = at
        if code is not None:
            runs[code][2].append(i)
    numbers = [0] * len(labels)
    out = []
    for s, trigger, members in runs:
        numbers[s] += 1
        out.append(Run(labels[s], numbers[s], trigger, tuple(members)))
    return out


class _Stream:
    """split_runs' walk through one stream: which run each frame is in, in receipt order."""

    def __init__(self) -> None:
        self.segment: int | None = None  # the run of the last trigger (rule 1)
        self.before: int | None = None  # the run without trigger before it (rule 3)
        self.run_of: dict[str, int] = {}  # run_id -> its run (rule 2)
        self.claimed: dict[str, int] = {}  # run_id -> the segment of the trigger that sent it
        self.answered: set[int] = set()  # segments a run_id has joined

    def place(self, record: Mapping[str, Any], new: int) -> int | None:
        """The run code of the next frame; ``new`` (the next free code) starts a run."""
        direction, event = _text(record.get("dir")), _text(record.get("event"))
        run_id = _text(record.get("run_id"))
        if direction == "send" and event in RUN_TRIGGER_TYPES:
            self.segment = new
            if run_id is not None:
                self.run_of.pop(run_id, None)
                self.claimed[run_id] = new
            return new
        if direction == "receive" and run_id is not None:
            if run_id not in self.run_of:
                segment = self.claimed.pop(run_id, self.segment)
                if segment is not None and segment not in self.answered:
                    self.answered.add(segment)
                    self.run_of[run_id] = segment
                else:
                    self.run_of[run_id] = new
            return self.run_of[run_id]
        if self.segment is not None:
            return self.segment
        if self.before is None and direction == "receive" and event in AGENT_EVENTS:
            self.before = new
        return self.before


def _text(value: Any) -> str | None:
    """A record's string field, None when it is missing or NA (rows of a table give NA)."""
    return value if isinstance(value, str) else None


def _whole(value: Any) -> int:
    """A record's integer field, _NO_TIME when it is missing or NA (sorted last)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return _NO_TIME


class _Base:
    """What every analysis needs from the frame table, computed once, in receipt order.

    ``order`` lists the table's rows by (stream, t_mono_ns, seq); the arrays below follow
    it, with repeated frames (``dup``) still in, so that assign_runs can label them.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        # Weak: _Frames are kept between calls (_prepare), and must not keep a table alive.
        self._df = weakref.ref(df)
        self.stream = _stream_column(df)
        s, names = _block_codes(df[self.stream].array)
        # A stream without a name (a trace with no header) is a stream all the same.
        self.stream_labels = [_stream_label(v) for v in names] + ["?"]
        s = np.where(s < 0, len(names), s)
        t, seq = _int64(df["t_mono_ns"]), _int64(df["seq"])
        self.order = order = _receipt_order(s, t, seq)
        self.s, self.t, self.seq = s[order], t[order], seq[order]
        # The same frame twice (a file loaded twice) sorts next to itself.
        s, t, seq = self.s, self.t, self.seq
        self.dup = np.zeros(len(order), dtype=bool)
        self.dup[1:] = (s[1:] == s[:-1]) & (seq[1:] == seq[:-1]) & (t[1:] == t[:-1])
        self.dup[1:] &= seq[1:] != _NO_TIME
        self.event, self.event_names = _codes(df["event"])
        self.event_array = self.event_names.astype(pd.StringDtype())
        self.is_recv = _eq(df["dir"], "receive")
        self.has_run_id = df["run_id"].notna().to_numpy(dtype=bool)
        self.run_id_codes, _ = _block_codes(df["run_id"].array)
        self.is_trig = _eq(df["dir"], "send") & self.event_in(RUN_TRIGGER_TYPES)

    @property
    def df(self) -> pd.DataFrame:
        df = self._df()
        assert df is not None, "the table is gone; analyses hold it while they run"
        return df

    def event_in(self, names: Iterable[str], codes: np.ndarray | None = None) -> np.ndarray:
        """Mask of the rows (or of ``codes``) whose event is one of ``names``."""
        lookup = np.r_[np.isin(np.asarray(self.event_names, dtype=object), list(names)), False]
        mask: np.ndarray = lookup[self.event if codes is None else codes]  # -1 (NA): False
        return mask


def _stream_column(df: pd.DataFrame) -> str:
    # One trace file is one session and one monotonic clock; load_traces() names the file in
    # "trace", which also tells apart two files that reused a session id.
    return "trace" if "trace" in df.columns else "session"


def _receipt_order(s: np.ndarray, t: np.ndarray, seq: np.ndarray) -> np.ndarray:
    # A capture is written in receipt order, so the sort is usually a no-op: check in O(n)
    # before paying O(n log n).
    later = (s[1:] > s[:-1]) | (
        (s[1:] == s[:-1]) & ((t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (seq[1:] >= seq[:-1])))
    )
    if later.all():
        return np.arange(len(s))
    return np.lexsort((seq, t, s))


def _stream_label(value: Any) -> str:
    text = str(value)
    return text[: -len(".jsonl")] if text.endswith(".jsonl") else text


def _run_codes(base: _Base) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run code of each distinct frame in receipt order (-1: no run), and per code its
    stream and its number within the stream. Codes follow (stream, start time)."""
    keep = ~base.dup
    s = base.s[keep]
    rows = base.order[keep]
    is_recv, is_trig = base.is_recv[rows], base.is_trig[rows]
    n = len(rows)

    # seg: how many triggers this stream has sent so far (0 before the first).
    new_stream = np.ones(n, dtype=bool)
    new_stream[1:] = s[1:] != s[:-1]
    stream_idx = np.cumsum(new_stream) - 1
    triggers_so_far = np.cumsum(is_trig)
    before_stream = (triggers_so_far - is_trig)[new_stream]
    seg = triggers_so_far - before_stream[stream_idx]
    # trigger_pos[k]: the position of the (k + 1)-th trigger overall; the sentinel keeps the
    # lookups valid when there is no trigger at all (they are masked out then).
    trigger_pos = np.r_[np.flatnonzero(is_trig), -1]

    # Without run ids, a frame's run is its segment, anchored at the segment's trigger.
    anchor = np.where(seg > 0, trigger_pos[triggers_so_far - 1], -1)
    # Before a stream's first trigger (a receive-only capture), the first received agent
    # event without a run_id anchors the frames after it instead. Usually only the welcome
    # frames are before the first trigger: look at those alone.
    pre = np.flatnonzero(seg == 0)
    pre_rows = rows[pre]
    opens = pre[
        is_recv[pre]
        & base.event_in(AGENT_EVENTS, base.event[pre_rows])
        & ~base.has_run_id[pre_rows]
    ]
    if len(opens):
        streams, first = np.unique(stream_idx[opens], return_index=True)
        opened_at = np.full(int(stream_idx[-1]) + 1, n, dtype=np.int64)
        opened_at[streams] = opens[first]
        start = opened_at[stream_idx[pre]]
        after = pre >= start
        anchor[pre[after]] = start[after]

    carriers = np.flatnonzero(base.has_run_id[rows] & (is_recv | is_trig))
    if len(carriers):
        # Rows carrying a run_id, grouped by (stream, run_id), in receipt order. Run ids are
        # numbered in order of appearance, so this is usually sorted already.
        # Codes of the whole column, then picked: gathering the carriers' strings first
        # would copy most of the column's text.
        rid = base.run_id_codes[rows[carriers]]
        pair = s[carriers].astype(np.int64) * (int(rid.max()) + 1) + rid
        by_pair = _stable_order(pair)
        pair, found = pair[by_pair], carriers[by_pair]
        first = np.ones(len(found), dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        # A run_id belongs to the segment it was first seen in, or to the segment of the
        # trigger that last sent it (a client reusing its run ids). Segments only grow with
        # time, so "the latest claim so far" is a running maximum within each pair.
        claims = first | is_trig[found]
        group = np.cumsum(first) - 1
        span = int(seg.max()) + 2
        lifted = np.where(claims, seg[found], -1) + group * span
        claim_seg = np.maximum.accumulate(lifted) - group * span

        # Only received frames make runs: a client can send any run_id it likes.
        received = is_recv[found]
        pair, found, claim_seg = pair[received], found[received], claim_seg[received]
        if len(found):
            new_key = np.ones(len(found), dtype=bool)
            new_key[1:] = (pair[1:] != pair[:-1]) | (claim_seg[1:] != claim_seg[:-1])
            key = np.cumsum(new_key) - 1
            key_first = found[new_key]  # where each (stream, run_id, segment) is first seen
            key_seg = claim_seg[new_key]
            # Number the run ids of one segment by first sight; the first one answers the
            # segment's trigger, the others (and any before the first trigger) get runs of
            # their own. A run_id a trigger sent may first come back segments later, so
            # group by segment after ordering by time (a no-op when none does).
            block = s[key_first].astype(np.int64) * span + key_seg
            by_time = _stable_order(key_first)
            by_block = by_time[_stable_order(block[by_time])]
            seen_block = block[by_block]
            same_block = np.zeros(len(by_block), dtype=bool)
            same_block[1:] = seen_block[1:] == seen_block[:-1]
            rank = np.empty(len(by_block), dtype=np.int64)
            rank[by_block] = _rank_in_group(np.cumsum(~same_block))
            answers_trigger = (rank == 0) & (key_seg > 0)
            seg_trigger = trigger_pos[key_seg + before_stream[stream_idx[key_first]] - 1]
            anchor[found] = np.where(answers_trigger, seg_trigger, key_first)[key]

    # Each run has one anchor (its trigger, or its first frame); number the anchors in order.
    in_run = anchor >= 0
    is_anchor = np.zeros(n, dtype=bool)
    is_anchor[anchor[in_run]] = True
    codes = np.full(n, -1, dtype=np.int64)
    codes[in_run] = (np.cumsum(is_anchor) - 1)[anchor[in_run]]
    run_stream = s[is_anchor]
    first_of_stream = np.ones(len(run_stream), dtype=bool)
    first_of_stream[1:] = run_stream[1:] != run_stream[:-1]
    return codes, run_stream, _rank_in_group(np.cumsum(first_of_stream)) + 1


def _run_labels(
    stream_labels: list[str], run_stream: np.ndarray, run_number: np.ndarray
) -> ExtensionArray:
    """The label "<stream>#<n>" of each run, built in Arrow (100,000 f-strings take 50 ms)."""
    streams = pa.array(stream_labels, type=pa.string()).take(pa.array(run_stream))
    numbers = pc.cast(pa.array(run_number), pa.string())
    # pandas-stubs leave out ExtensionDtype.__from_arrow__ (pandas' documented hook that
    # wraps an Arrow array without copying it), hence the cast to reach it.
    dtype = cast(Any, pd.StringDtype())
    labels: ExtensionArray = dtype.__from_arrow__(
        pc.binary_join_element_wise(streams, numbers, "#")
    )
    return labels


# --- the prepared table every analysis starts from ------------------------------------------


@dataclass(frozen=True)
class _Frames:
    """The timed frames that are in a run, without duplicates, sorted by (run, receipt time).

    Frame arrays have one entry per frame (``rows`` maps them to the table's rows); run
    arrays one per run code, 0..n_runs-1, in (stream, start) order.
    """

    base: _Base
    rows: np.ndarray  # table row of each frame
    rk: np.ndarray  # run code of each frame
    t: np.ndarray  # t_mono_ns, int64
    t_s: np.ndarray
    is_recv: np.ndarray
    event: np.ndarray  # event code (-1: NA); names in base.event_names
    runs: pd.DataFrame  # per run: [trace,] session, run, run_id
    trig: np.ndarray  # frame index of each run's trigger, -1 when it has none

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    def take(self, column: str, idx: np.ndarray) -> Any:
        """Values of a table column for frame indexes (-1 gives NA)."""
        if column == "event":
            # From the few distinct names: cheaper than gathering from a million strings.
            codes = np.where(idx >= 0, self.event[np.maximum(idx, 0)], -1)
            return self.base.event_array.take(codes, allow_fill=True)
        values = self.base.df[column].array
        positions = np.where(idx >= 0, self.rows[np.maximum(idx, 0)], -1)
        return values.take(positions, allow_fill=True)

    def event_in(self, names: Iterable[str]) -> np.ndarray:
        return self.base.event_in(names, self.event)

    def events(self, include_housekeeping: bool) -> np.ndarray:
        """Indexes of the received frames that count as events, in (run, time) order."""
        keep = self.is_recv if include_housekeeping else self.is_recv & ~self.housekeeping
        return np.flatnonzero(keep)

    @cached_property
    def housekeeping(self) -> np.ndarray:
        return self.event_in(HOUSEKEEPING_EVENTS)

    def run_columns(self, rk: np.ndarray) -> dict[str, Any]:
        """The identifying columns (trace, session, run, run_id of the run) for run codes."""
        return {name: self.runs[name].array.take(rk) for name in self.runs.columns}

    def seconds(self, to: np.ndarray, since: np.ndarray) -> np.ndarray:
        """Seconds between frame indexes, NaN where either is -1."""
        ok = (to >= 0) & (since >= 0)
        out = np.full(len(to), np.nan)
        out[ok] = (self.t[to[ok]] - self.t[since[ok]]) / _NS
        return out


# What _prepare reads from the table; the result is the same while these are the same.
_PREPARED_FROM = ("trace", "session", "t_mono_ns", "seq", "event", "dir", "run_id", "run", "t_s")

# The last table prepared: a weak reference to it, the columns it was prepared from (held,
# so that pandas copies a column someone writes to instead of changing it under us), and
# the result.
_last_prepared: tuple[weakref.ref[pd.DataFrame], dict[str, pd.Series], _Frames] | None = None


def _prepare(df: pd.DataFrame, required: Sequence[str], caller: str) -> _Frames:
    """The table's timed frames in runs, from the last call when nothing has changed since."""
    global _last_prepared
    _check_frame(df, required, caller)
    columns = {name: df[name] for name in _PREPARED_FROM if name in df.columns}
    if _last_prepared is not None:
        ref, held, frames = _last_prepared
        same = ref() is df and held.keys() == columns.keys()
        if same and all(_same_column(held[name], columns[name]) for name in held):
            return frames
    frames = _prepare_frames(df)
    _last_prepared = (weakref.ref(df), columns, frames)
    return frames


def _same_column(a: pd.Series, b: pd.Series) -> bool:
    """Whether two Series hold the very same values (not equal ones: the same memory)."""
    if a.array is b.array:  # extension arrays (Arrow strings, Int64) are the block itself
        return True
    # A numpy column gets a new wrapper each time: compare the memory it shows. ``a`` is
    # held, so its memory cannot be freed and reused for another array.
    if isinstance(a.array, NumpyExtensionArray) and isinstance(b.array, NumpyExtensionArray):
        x, y = a.array.to_numpy(), b.array.to_numpy()
        return x.dtype != object and x.__array_interface__ == y.__array_interface__
    return False


def _prepare_frames(df: pd.DataFrame) -> _Frames:
    base = _Base(df)
    if "run" in df.columns:
        # Somebody's own labelling (or assign_runs' output): trust it, number in time order.
        keep = ~base.dup
        user, names = _codes(df["run"])
        codes = user[base.order[keep]]
        present, first_seen = np.unique(codes, return_index=True)
        ranked = present[present >= 0][np.argsort(first_seen[present >= 0], kind="stable")]
        renumber = np.full(len(names) + 1, -1, dtype=np.int64)
        renumber[ranked] = np.arange(len(ranked))
        codes = renumber[codes]
        labels = names.astype(pd.StringDtype()).take(ranked)
    else:
        codes, run_stream, run_number = _run_codes(base)
        labels = _run_labels(base.stream_labels, run_stream, run_number)

    rows = base.order[~base.dup]
    t = base.t[~base.dup]
    keep = (codes >= 0) & (t != _NO_TIME)
    rows, codes, t = rows[keep], codes[keep], t[keep]
    # Runs are contiguous once sorted by code (they already are unless runs overlap); a
    # stable sort keeps receipt order inside each run.
    by_run = _stable_order(codes)
    rows, codes, t = rows[by_run], codes[by_run], t[by_run]
    # Renumber densely: a run whose frames all lacked times is gone.
    used = np.zeros(len(labels) + 1, dtype=bool)
    used[codes] = True
    rk = (np.cumsum(used) - 1)[codes]
    n_runs = int(used.sum())

    is_recv = base.is_recv[rows]
    run_start = _first_index(rk, np.ones(len(rk), dtype=bool), n_runs)
    runs: dict[str, Any] = {}
    if base.stream == "trace":
        runs["trace"] = df["trace"].array.take(rows[run_start])
    runs["session"] = df["session"].array.take(rows[run_start])
    runs["run"] = labels.take(np.flatnonzero(used[:-1]))
    has_run_id = is_recv & base.has_run_id[rows]
    first_run_id = _first_index(rk, has_run_id, n_runs)
    runs["run_id"] = df["run_id"].array.take(
        np.where(first_run_id >= 0, rows[first_run_id], -1), allow_fill=True
    )

    frames = _Frames(
        base=base,
        rows=rows,
        rk=rk,
        t=t,
        t_s=_float64(df["t_s"])[rows],
        is_recv=is_recv,
        event=base.event[rows],
        runs=pd.DataFrame(runs),
        trig=_first_index(rk, base.is_trig[rows], n_runs),
    )
    # Kept for the next call (_prepare): nobody may write to these arrays.
    for holder in (base, frames):
        for value in vars(holder).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
    return frames


def _first_index(rk: np.ndarray, mask: np.ndarray, n_runs: int) -> np.ndarray:
    """Index of the first frame of each run where ``mask`` holds, -1 where there is none.

    ``rk`` is sorted, so the first masked frame of a run is where the masked run code changes.
    """
    idx = np.flatnonzero(mask)
    out = np.full(n_runs, -1, dtype=np.int64)
    if len(idx):
        runs = rk[idx]
        new = np.r_[True, runs[1:] != runs[:-1]]
        out[runs[new]] = idx[new]
    return out


def _last_index(rk: np.ndarray, mask: np.ndarray, n_runs: int) -> np.ndarray:
    idx = np.flatnonzero(mask)
    out = np.full(n_runs, -1, dtype=np.int64)
    if len(idx):
        runs = rk[idx]
        last = np.r_[runs[1:] != runs[:-1], True]
        out[runs[last]] = idx[last]
    return out


# --- per-frame and per-run tables -----------------------------------------------------------


def event_gaps(df: pd.DataFrame, *, include_housekeeping: bool = False) -> pd.DataFrame:
    """One row per received event in a run, with the gap since the previous one.

    ``gap_s`` is the time since the previous received event of the same run (NaN for the
    run's first event: there is none; its wait is ``since_trigger_s``, the
    ``time_to_first_event_s`` of :func:`run_stats`). ``since_trigger_s`` is the time since
    the run's trigger send (NaN for a run without one). ``prev_event``/``prev_seq`` name the
    event before the gap. Housekeeping frames are left out unless
    ``include_housekeeping=True``; a run with no events has no rows here (see
    :func:`run_stats` for it).

    Columns: [trace,] session, run, run_id (the run's), seq, event, tool_name, t_s,
    since_trigger_s, gap_s, prev_event, prev_seq. Next: :func:`find_stalls`,
    ``summarize(gaps, "gap_s", by="event")``, :func:`netra_ws.plots.plot_gaps`.

    Example (a run whose events arrived 0.2 s, 0.5 s and 1.5 s after the trigger)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (1500, "agent_completed")]).to_frame()
        >>> event_gaps(df)[["event", "since_trigger_s", "gap_s"]]
                     event  since_trigger_s  gap_s
        0    agent_started              0.2    NaN
        1   agent_thinking              0.5    0.3
        2  agent_completed              1.5    1.0
    """
    fr = _prepare(df, _TIMED_COLUMNS, "event_gaps")
    idx, prev, gap = _gap_arrays(fr, include_housekeeping)
    rk = fr.rk[idx]
    columns = fr.run_columns(rk)
    columns.update(
        seq=fr.take("seq", idx),
        event=fr.take("event", idx),
        tool_name=_maybe_take(fr, "tool_name", idx),
        t_s=fr.t_s[idx],
        since_trigger_s=fr.seconds(idx, fr.trig[rk]),
        gap_s=gap,
        prev_event=fr.take("event", prev),
        prev_seq=fr.take("seq", prev),
    )
    return pd.DataFrame(columns)


def _gap_arrays(
    fr: _Frames, include_housekeeping: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Event frame indexes, the event before each in its run (-1: none), the gap seconds."""
    idx = fr.events(include_housekeeping)
    rk = fr.rk[idx]
    prev = np.where(_same_as_previous(rk), _previous(idx), -1)
    return idx, prev, fr.seconds(idx, prev)


def run_stats(df: pd.DataFrame, *, include_housekeeping: bool = False) -> pd.DataFrame:
    """One row per run: when it started, time to first event, duration, how it ended.

    Every run of :func:`assign_runs` has a row, including a trigger that got no reply at all
    (``n_events`` 0, ``time_to_first_event_s`` NaN, ``outcome`` "no_reply"): a run that
    never answered is the finding, not noise to drop.

    - ``time_to_first_event_s``: trigger send to the first received event (NaN when there is
      no trigger or no event);
    - ``duration_s``: start (the trigger, or the first event of a run without one) to the
      first ``agent_completed``/``agent_error``; NaN when the run never ended;
    - ``span_s``: start to the last received event, for runs that never ended;
    - ``outcome``: "completed", "error" (``agent_error``), "incomplete" (events but no end)
      or "no_reply" (:data:`OUTCOMES`).

    Columns: [trace,] session, run, run_id, trigger, trigger_seq, t_start_s, n_events,
    first_event, time_to_first_event_s, last_event, end_event, duration_s, span_s, outcome.
    Next: ``runs.outcome.value_counts()``, ``summarize(runs, "time_to_first_event_s")``.

    Example (a run, then a trigger that got no reply)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (1500, "agent_completed"), (5000, "user_message")]).to_frame()
        >>> runs = run_stats(df)
        >>> runs[["run", "time_to_first_event_s", "duration_s", "outcome"]]
            run  time_to_first_event_s  duration_s    outcome
        0  s1#1                    0.2         1.5  completed
        1  s1#2                    NaN         NaN   no_reply
    """
    fr = _prepare(df, _TIMED_COLUMNS, "run_stats")
    r = _run_arrays(fr, include_housekeeping)
    outcome = np.full(fr.n_runs, "incomplete", dtype=object)
    end_event = fr.event[np.maximum(r["end"], 0)]
    ended = r["end"] >= 0
    outcome[ended & fr.base.event_in(["agent_completed"], end_event)] = "completed"
    outcome[ended & fr.base.event_in(["agent_error"], end_event)] = "error"
    outcome[r["n_events"] == 0] = "no_reply"

    columns = {name: fr.runs[name].array for name in fr.runs.columns}
    columns.update(
        trigger=fr.take("event", fr.trig),
        trigger_seq=fr.take("seq", fr.trig),
        t_start_s=_take_float(fr.t_s, r["start"]),
        n_events=r["n_events"],
        first_event=fr.take("event", r["first"]),
        time_to_first_event_s=r["time_to_first_event_s"],
        last_event=fr.take("event", r["last"]),
        end_event=fr.take("event", r["end"]),
        duration_s=r["duration_s"],
        span_s=fr.seconds(r["last"], r["start"]),
        outcome=pd.array(outcome, dtype="string"),
    )
    return pd.DataFrame(columns)


def _run_arrays(fr: _Frames, include_housekeeping: bool) -> dict[str, np.ndarray]:
    n_runs = fr.n_runs
    is_event = np.zeros(len(fr.rk), dtype=bool)
    is_event[fr.events(include_housekeeping)] = True
    first = _first_index(fr.rk, is_event, n_runs)
    end = _first_index(fr.rk, is_event & fr.event_in(TERMINAL_EVENTS), n_runs)
    start = np.where(fr.trig >= 0, fr.trig, first)
    return {
        "first": first,
        "last": _last_index(fr.rk, is_event, n_runs),
        "end": end,
        "start": start,
        "n_events": np.bincount(fr.rk[is_event], minlength=n_runs),
        "time_to_first_event_s": fr.seconds(first, fr.trig),
        "duration_s": fr.seconds(end, start),
    }


def phase_durations(df: pd.DataFrame) -> pd.DataFrame:
    """One row per phase of each run: thinking blocks and tool calls, with their durations.

    - thinking: from the first ``agent_thinking`` of a block of consecutive thinking events
      to the next agent event of another kind (the agent acts or answers);
    - a tool: from ``tool_executing`` to its ``tool_completed``: same run, same
      ``tool_name``, first in first out (parallel calls of one tool pair in order).

    Unmatched phases are kept, with ``matched`` False and NaN ``duration_s``: a
    ``tool_executing`` that never completed (``end_*`` NA), a ``tool_completed`` with no
    ``tool_executing`` before it (``start_*`` NA; a duplicate completion ends up here), a
    thinking block the run never left. Only agent events (:data:`netra_ws.events.AGENT_EVENTS`)
    take part.

    Columns: [trace,] session, run, run_id, kind ("thinking"/"tool"), phase ("thinking" or
    "tool:<tool_name>"), tool_name, start_event, start_seq, end_event, end_seq, t_start_s,
    t_end_s, duration_s, matched. Next: ``summarize(phases, "duration_s", by="phase")``,
    :func:`netra_ws.plots.plot_tool_latency`.

    Example (a tool call that completed, then one that never did)::

        >>> import json
        >>> from netra_ws.trace import TraceWriter
        >>> w = TraceWriter(None, session="s1")  # in memory: no file
        >>> for ms, way, frame in [
        ...     (0, "send", {"type": "user_message"}),
        ...     (200, "receive", {"type": "agent_thinking"}),
        ...     (800, "receive", {"type": "tool_executing", "tool_name": "search"}),
        ...     (2000, "receive", {"type": "tool_completed", "tool_name": "search"}),
        ...     (2100, "receive", {"type": "tool_executing", "tool_name": "fetch"}),
        ... ]:
        ...     _ = w.frame(way, json.dumps(frame), t_wall_ns=ms * 10**6, t_mono_ns=ms * 10**6)
        >>> phase_durations(w.to_trace().to_frame())[["phase", "duration_s", "matched"]]
                 phase  duration_s  matched
        0     thinking         0.6     True
        1  tool:search         1.2     True
        2   tool:fetch         NaN    False
    """
    fr = _prepare(df, _PHASE_COLUMNS, "phase_durations")
    p = _phase_arrays(fr)
    start, end = p["start"], p["end"]
    columns = fr.run_columns(fr.rk[p["anchor"]])
    columns.update(
        kind=pd.array(["thinking", "tool"], dtype="string").take(p["is_tool"].astype(np.int64)),
        phase=p["labels"].take(p["label"]),
        tool_name=fr.take("tool_name", np.where(p["is_tool"], p["anchor"], -1)),
        start_event=fr.take("event", start),
        start_seq=fr.take("seq", start),
        end_event=fr.take("event", end),
        end_seq=fr.take("seq", end),
        t_start_s=_take_float(fr.t_s, start),
        t_end_s=_take_float(fr.t_s, end),
        duration_s=p["duration_s"],
        matched=(start >= 0) & (end >= 0),
    )
    return pd.DataFrame(columns)


def _phase_arrays(fr: _Frames) -> dict[str, Any]:
    """Phases as frame indexes (start, end: -1 when unmatched), in (run, time) order, with a
    label code per phase into ``labels`` ("thinking", then "tool:<name>" sorted)."""
    agent = np.flatnonzero(fr.is_recv & fr.event_in(AGENT_EVENTS))
    n = len(agent)
    rk = fr.rk[agent]
    event = fr.event[agent]
    same_run = _same_as_previous(rk)

    # Thinking blocks: a thinking event not preceded (in its run) by another one opens a
    # block; the block ends at the next agent event that is not thinking.
    think = fr.base.event_in([_THINKING], event)
    opens = np.flatnonzero(think & ~(_previous(think, False) & same_run))
    next_other = np.minimum.accumulate(np.where(~think, np.arange(n), n)[::-1])[::-1]
    closes = next_other[opens] if n else opens
    closed = closes < n
    closed[closed] = rk[closes[closed]] == rk[opens[closed]]
    think_start = agent[opens]
    think_end = np.where(closed, agent[np.minimum(closes, max(n - 1, 0))], -1)

    # Tools: per (run, tool_name), a tool_completed with nothing open is an orphan; the rest
    # pair first in first out. "Open calls" is a running sum of +1/-1 that cannot go below
    # zero: the walk reflected at 0 is S - min(0, running min of S).
    is_start = fr.base.event_in([_TOOL_START], event)
    tool_rows = np.flatnonzero(is_start | fr.base.event_in([_TOOL_END], event))
    tool_codes, tool_names = _codes(pd.Series(_maybe_take(fr, "tool_name", agent[tool_rows])))
    tool_codes = np.where(tool_codes < 0, len(tool_names), tool_codes)  # no name: one group
    key = rk[tool_rows].astype(np.int64) * (len(tool_names) + 1) + tool_codes
    by_group = _stable_order(key)  # time order within each group
    rows, key = tool_rows[by_group], key[by_group]
    new_group = ~_same_as_previous(key)
    group = np.cumsum(new_group) - 1
    step = np.where(is_start[rows], 1, -1)
    total = np.cumsum(step)
    walk = total - (total - step)[new_group][group]  # running sum within the group
    span = 2 * len(rows) + 2
    lowest = np.minimum.accumulate(walk - group * span) + group * span
    open_after = walk - np.minimum(lowest, 0)
    open_before = np.where(new_group, 0, _previous(open_after, 0))
    orphan = (step < 0) & (open_before == 0)

    # The k-th start of a group pairs with its k-th (non-orphan) completion.
    starting, ending = step > 0, (step < 0) & ~orphan
    start_key = group[starting] * (len(rows) + 1) + _rank_in_group(group[starting])
    end_key = group[ending] * (len(rows) + 1) + _rank_in_group(group[ending])
    at = np.searchsorted(end_key, start_key)
    paired = at < len(end_key)
    paired[paired] = end_key[at[paired]] == start_key[paired]
    completed_by = np.full(len(start_key), -1, dtype=np.int64)
    completed_by[paired] = agent[rows[ending][at[paired]]]

    n_think, n_orphans = len(think_start), int(orphan.sum())
    start = np.r_[think_start, agent[rows[starting]], np.full(n_orphans, -1)].astype(np.int64)
    end = np.r_[think_end, completed_by, agent[rows[orphan]]].astype(np.int64)
    tool_of = np.r_[tool_codes[by_group][starting], tool_codes[by_group][orphan]]
    anchor = np.where(start >= 0, start, end)
    # Frames are in (run, time) order, so phases sorted by their first frame are too.
    order = _stable_order(anchor)

    # Labels sorted by name, "thinking" first ("thinking" < "tool:…" anyway).
    names = [f"tool:{t}" for t in tool_names] + ["tool:?"]
    by_name = np.argsort(np.asarray(names, dtype=object), kind="stable")
    label_of_tool = np.empty(len(names), dtype=np.int64)
    label_of_tool[by_name] = np.arange(len(names)) + 1
    label = np.r_[np.zeros(n_think, dtype=np.int64), label_of_tool[tool_of]]
    return {
        "start": start[order],
        "end": end[order],
        "anchor": anchor[order],
        "is_tool": np.r_[np.zeros(n_think, bool), np.ones(len(tool_of), bool)][order],
        "label": label[order],
        "labels": pd.array(["thinking", *np.asarray(names, dtype=object)[by_name]], dtype="string"),
        "duration_s": fr.seconds(end[order], start[order]),
    }


def _rank_in_group(group: np.ndarray) -> np.ndarray:
    """0, 1, 2… within each run of equal values of a sorted ``group`` array."""
    if len(group) == 0:
        return np.empty(0, dtype=np.int64)
    new = np.r_[True, group[1:] != group[:-1]]
    positions = np.arange(len(group))
    return positions - np.maximum.accumulate(np.where(new, positions, 0))


def find_stalls(
    df: pd.DataFrame,
    threshold_s: float = 2.0,
    *,
    include_first: bool = True,
    include_housekeeping: bool = False,
) -> pd.DataFrame:
    """The waits longer than ``threshold_s`` seconds, with the events on both sides.

    A wait is a gap between consecutive received events of a run, and (with
    ``include_first``) the wait from the trigger send to the run's first event: a server
    that takes 40 s to start a run has stalled too. The default threshold, 2 s, is the
    per-frame receive timeout of the backend's own tests (PROTOCOL.md §6): a longer wait
    made them time out. Heartbeats do not break a stall (housekeeping is left out unless
    ``include_housekeeping=True``). A run that got no reply at all has no wait to measure:
    find it with ``run_stats(df).query("outcome == 'no_reply'")``.

    Columns: [trace,] session, run, run_id, gap_s, before_event, before_dir, before_seq,
    before_t_s, after_event, after_seq, after_t_s; one row per stall, in run and time order.

    Example (7 s of silence after agent_thinking)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (7500, "agent_completed")]).to_frame()
        >>> stalls = find_stalls(df, threshold_s=5)
        >>> stalls[["run", "gap_s", "before_event", "after_event"]]
            run  gap_s    before_event      after_event
        0  s1#1    7.0  agent_thinking  agent_completed
    """
    if not isinstance(threshold_s, (int, float)) or isinstance(threshold_s, bool):
        raise TypeError(f"threshold_s must be a number of seconds, not {threshold_s!r}")
    if not threshold_s >= 0:
        raise ValueError(f"threshold_s must be >= 0 seconds, not {threshold_s!r}")
    fr = _prepare(df, _TIMED_COLUMNS, "find_stalls")
    idx, before, _ = _gap_arrays(fr, include_housekeeping)
    if include_first:
        # The first event of a run waits for the trigger.
        before = np.where(before < 0, fr.trig[fr.rk[idx]], before)
    wait = fr.seconds(idx, before)
    stall = wait > threshold_s  # NaN (nothing before) is never a stall
    before, after = before[stall], idx[stall]

    columns = fr.run_columns(fr.rk[after])
    columns.update(
        gap_s=wait[stall],
        before_event=fr.take("event", before),
        before_dir=fr.take("dir", before),
        before_seq=fr.take("seq", before),
        before_t_s=fr.t_s[before],
        after_event=fr.take("event", after),
        after_seq=fr.take("seq", after),
        after_t_s=fr.t_s[after],
    )
    return pd.DataFrame(columns)


def clock_offsets(df: pd.DataFrame) -> pd.DataFrame:
    """Per session, how far receipt times (``t_wall_ns``) run ahead of server timestamps.

    For every received frame with a server timestamp (``server_ts``, unix seconds), the
    delay is receipt wall time minus ``server_ts``. ``offset_s`` is the minimum delay: the
    offset between the two clocks PLUS the smallest network and processing latency seen,
    not the clock offset alone (the two cannot be told apart from one side). It is an upper
    bound of the offset when the server clock is behind. Subtract it from a frame's delay to
    get the latency above the best case. Sends are left out (their ``timestamp`` is the
    client's own). Servers that round ISO timestamps to milliseconds bias it by up to 1 ms.

    Columns: [trace,] session, n (frames with a server timestamp), offset_s, delay_p50_s,
    delay_max_s, at_seq and at_event (the frame that gave the minimum). A session with no
    server timestamp is left out.

    Example (two frames stamped by a server, received 50 ms and 80 ms later)::

        >>> import json
        >>> from netra_ws.trace import TraceWriter
        >>> w = TraceWriter(None, session="s1")  # in memory: no file
        >>> for server_s, delay_s, event in [(1.0, 0.05, "agent_started"),
        ...                                  (2.0, 0.08, "agent_completed")]:
        ...     frame = json.dumps({"type": event, "timestamp": 1_700_000_000 + server_s})
        ...     ns = int((1_700_000_000 + server_s + delay_s) * 10**9)
        ...     _ = w.frame("receive", frame, t_wall_ns=ns, t_mono_ns=ns)
        >>> clock_offsets(w.to_trace().to_frame())
          session  n  offset_s  delay_p50_s  delay_max_s  at_seq       at_event
        0      s1  2      0.05        0.065         0.08       1  agent_started
    """
    _check_frame(df, _OFFSET_COLUMNS, "clock_offsets")
    stream = _stream_column(df)
    server_ts = _float64(df["server_ts"])
    wall = df["t_wall_ns"].to_numpy(dtype="float64", na_value=np.nan)
    rows = np.flatnonzero(_eq(df["dir"], "receive") & ~np.isnan(server_ts) & ~np.isnan(wall))
    # Float seconds of a present-day wall time resolve 0.2 µs: far below any latency.
    delay = wall[rows] / _NS - server_ts[rows]
    codes, _ = _codes(df[stream])
    codes = codes[rows]
    # Sorted by (stream, delay): the first row of each stream holds its minimum.
    by_delay = np.lexsort((delay, codes))
    rows, delay, codes = rows[by_delay], delay[by_delay], codes[by_delay]
    first = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(rows) else rows
    bounds = np.r_[first, len(rows)]
    columns: dict[str, Any] = {}
    if stream == "trace":
        columns["trace"] = df["trace"].array.take(rows[first])
    columns.update(
        session=df["session"].array.take(rows[first]),
        n=np.diff(bounds),
        offset_s=delay[first],
        # One median per session: a loop over sessions, not over frames.
        delay_p50_s=np.array([np.median(delay[i:j]) for i, j in pairwise(bounds)]),
        delay_max_s=delay[bounds[1:] - 1],
        at_seq=df["seq"].array.take(rows[first]),
        at_event=df["event"].array.take(rows[first]),
    )
    return pd.DataFrame(columns)


# --- summaries and comparisons --------------------------------------------------------------


def summarize(
    table: pd.DataFrame, value: str, by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Count, missing, p50, p90, p99 and max of one numeric column, overall or per group.

    ``table`` is any table of this module (or your own); ``value`` the column to summarize
    (``"gap_s"``, ``"duration_s"``, ``"time_to_first_event_s"``…); ``by`` a column or list
    of columns to group by (NA is a group of its own). ``count`` counts values, ``missing``
    the rows whose value is NaN/NA (runs with no reply, unmatched phases…). Percentiles
    interpolate linearly between order statistics (numpy's default), so with few values
    p99 lies between the two largest.

    Example (a run's gaps; its first event has none, hence ``missing``)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (500, "agent_thinking"), (600, "agent_thinking"),
        ...                (1500, "agent_completed")]).to_frame()
        >>> summarize(event_gaps(df), "gap_s", by="event")
                     event  count  missing  p50   p90    p99  max
        0  agent_completed      1        0  0.9  0.90  0.900  0.9
        1    agent_started      0        1  NaN   NaN    NaN  NaN
        2   agent_thinking      2        0  0.2  0.28  0.298  0.3
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"summarize() takes a pandas DataFrame, not {type(table).__name__}")
    keys = [] if by is None else [by] if isinstance(by, str) else list(by)
    _check_columns(table, [value, *keys], "summarize")
    column = table[value]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ValueError(
            f"summarize(): column {value!r} is {column.dtype}, not numeric; "
            "pick a seconds column such as 'gap_s' or 'duration_s'"
        )
    values = column.to_numpy(dtype="float64", na_value=np.nan)
    if not keys:
        return pd.DataFrame({name: [v] for name, v in _stats(values).items()})
    frame = table[keys].assign(_value=values)
    if frame.empty:
        empty = {"count": np.empty(0, dtype=np.int64), "missing": np.empty(0, dtype=np.int64)}
        return frame[keys].assign(**empty, **{name: np.empty(0) for name in _STATS})
    g = frame.groupby(keys, dropna=False, sort=True, observed=True)["_value"]
    out = g.count().rename("count").to_frame()
    out["missing"] = g.size() - out["count"]
    quantiles = g.quantile(np.array(list(_QUANTILES.values()))).unstack()
    for name, q in _QUANTILES.items():
        out[name] = quantiles[q]
    out["max"] = g.max()
    return out.reset_index()


def _stats(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    stats: dict[str, Any] = {"count": len(present), "missing": len(values) - len(present)}
    if len(present):
        qs = np.quantile(present, list(_QUANTILES.values()))
        stats.update(zip(_QUANTILES, qs.tolist(), strict=True))
        stats["max"] = float(present.max())
    else:
        stats.update(dict.fromkeys(_STATS, np.nan))
    return stats


def summarize_runs(df: pd.DataFrame, *, include_housekeeping: bool = False) -> pd.DataFrame:
    """The summary of a set of runs: one row per metric and name, with count and percentiles.

    Metrics (:data:`METRICS`), in this order:

    - ``time_to_first_event`` (name "all"): trigger to first event; ``missing`` counts the
      runs that got no reply (or had no trigger);
    - ``duration`` (name "all"): run start to its end event; ``missing`` counts the runs that
      never ended;
    - ``gap`` per event type (the wait before that event, since the previous received
      event; agent events in run order, then others), and name "all" for every gap pooled;
      first events have no gap and are not counted here;
    - ``phase`` per phase ("thinking", then "tool:<name>" by name); ``missing`` counts
      unmatched phases.

    The numbers are those of ``summarize()`` over :func:`run_stats`, :func:`event_gaps` and
    :func:`phase_durations`, computed without building those tables.

    Columns: metric, name, count, missing, p50, p90, p99, max (seconds). Compare two sets
    with :func:`compare_runs`; chart one with :func:`netra_ws.plots.plot_gap_ecdf`.

    Example (a run, then a trigger that got no reply)::

        >>> from netra_ws.trace import scripted
        >>> df = scripted([(0, "user_message"), (200, "agent_started"),
        ...                (1500, "agent_completed"), (5000, "user_message")]).to_frame()
        >>> summarize_runs(df)[["metric", "name", "count", "missing", "max"]]
                        metric             name  count  missing  max
        0  time_to_first_event              all      1        1  0.2
        1             duration              all      1        1  1.5
        2                  gap  agent_completed      1        0  1.3
        3                  gap              all      1        0  1.3
    """
    fr = _prepare(df, _PHASE_COLUMNS, "summarize_runs")
    runs = _run_arrays(fr, include_housekeeping)
    idx, _, gap = _gap_arrays(fr, include_housekeeping)
    has_gap = ~np.isnan(gap)
    gap, gap_event = gap[has_gap], fr.event[idx[has_gap]]
    phases = _phase_arrays(fr)

    rows: list[tuple[str, Any, dict[str, Any]]] = [
        ("time_to_first_event", _ALL, _stats(runs["time_to_first_event_s"])),
        ("duration", _ALL, _stats(runs["duration_s"])),
    ]
    names = fr.base.event_names
    present = np.unique(gap_event)
    for code in sorted(present.tolist(), key=lambda c: _event_rank(names[c] if c >= 0 else None)):
        name = names[code] if code >= 0 else pd.NA
        rows.append(("gap", name, _stats(gap[gap_event == code])))
    rows.append(("gap", _ALL, _stats(gap)))
    for code in np.unique(phases["label"]).tolist():
        values = phases["duration_s"][phases["label"] == code]
        rows.append(("phase", phases["labels"][code], _stats(values)))

    out = pd.DataFrame([{"metric": m, "name": n, **s} for m, n, s in rows])
    out["metric"] = out["metric"].astype("string")
    out["name"] = out["name"].astype("string")
    return out.astype({"count": "int64", "missing": "int64"})


def _event_rank(name: str | None) -> tuple[int, str]:
    """Agent events in run order, then anything else alphabetically, NA last."""
    if name is None:
        return (2, "")
    if name in AGENT_EVENTS:
        return (0, f"{AGENT_EVENTS.index(name):02d}")
    return (1, name)


def compare_runs(
    a: pd.DataFrame,
    b: pd.DataFrame,
    *,
    stats: Iterable[str] = ("p50", "p90"),
    rel_tol: float = 0.10,
    abs_tol_s: float = 0.005,
    include_housekeeping: bool = False,
) -> pd.DataFrame:
    """Compare two sets of runs (before/after, dialect A/B, staging/local): a table of deltas.

    ``a`` and ``b`` are frame tables (``a`` is the baseline); each is summarized with
    :func:`summarize_runs` and every (metric, name) is compared on each of ``stats``
    (any of "p50", "p90", "p99", "max"). ``delta`` is b - a in seconds and ``rel_change`` is
    delta / a. All metrics are times, so lower is better: ``change`` is "same" when
    ``|delta| <= max(abs_tol_s, rel_tol * a)`` (5 ms absorbs event-loop jitter, 10 % run to
    run noise), else "better" or "worse"; "only_a"/"only_b" when one side has no value (a
    tool that disappeared, runs that stopped answering), "no_data" when neither has.
    ``count_*``/``missing_*`` say how many values each side had: more missing values in
    ``time_to_first_event`` means more runs without a reply.

    Columns: metric, name, stat, a, b, delta, rel_change, change, count_a, count_b,
    missing_a, missing_b. Chart it with :func:`netra_ws.plots.plot_comparison`.

    Example (the same run, answered three times slower)::

        >>> from netra_ws.trace import scripted
        >>> run = [(0, "user_message"), (200, "agent_started"), (1500, "agent_completed")]
        >>> def table(slowdown):
        ...     return scripted(run, scale=slowdown).to_frame()
        >>> cmp = compare_runs(table(1), table(3), stats=["p50"])
        >>> cmp[["metric", "name", "a", "b", "change"]]
                        metric             name    a    b change
        0  time_to_first_event              all  0.2  0.6  worse
        1             duration              all  1.5  4.5  worse
        2                  gap  agent_completed  1.3  3.9  worse
        3                  gap              all  1.3  3.9  worse
    """
    stats = list(stats)
    unknown = [s for s in stats if s not in _STATS]
    if unknown or not stats:
        raise ValueError(f"stats must be some of {list(_STATS)}, not {stats!r}")
    if not rel_tol >= 0 or not abs_tol_s >= 0:
        raise ValueError(f"tolerances must be >= 0 (rel_tol={rel_tol!r}, abs_tol_s={abs_tol_s!r})")
    for name, table in (("a", a), ("b", b)):
        if not isinstance(table, pd.DataFrame):
            raise TypeError(
                f"compare_runs(): {name} must be a frame table (a pandas DataFrame), "
                f"not {type(table).__name__}"
            )
        _check_columns(table, _PHASE_COLUMNS, f"compare_runs() ({name})")
    sa = summarize_runs(a, include_housekeeping=include_housekeeping)
    sb = summarize_runs(b, include_housekeeping=include_housekeeping)
    sa["_pos"], sb["_pos"] = np.arange(len(sa)), np.arange(len(sb))
    joined = sa.merge(sb, on=["metric", "name"], how="outer", suffixes=("_a", "_b"))
    # An outer merge sorts its keys; put back summarize_runs' order (metrics in METRICS
    # order, names as a lists them, then the names only b has, as b lists them).
    metric_rank = joined["metric"].map({m: i for i, m in enumerate(METRICS)}).astype("int64")
    joined = joined.assign(_m=metric_rank).sort_values(
        ["_m", "_pos_a", "_pos_b"], kind="stable", na_position="last"
    )

    parts = []
    for stat in stats:
        va = joined[f"{stat}_a"].to_numpy(dtype="float64", na_value=np.nan)
        vb = joined[f"{stat}_b"].to_numpy(dtype="float64", na_value=np.nan)
        delta = vb - va
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(va != 0, delta / va, np.nan)
        tol = np.maximum(abs_tol_s, rel_tol * np.abs(va))
        change = np.select(
            [
                np.isnan(va) & np.isnan(vb),
                np.isnan(vb),
                np.isnan(va),
                np.abs(delta) <= tol,
                delta < 0,
            ],
            ["no_data", "only_a", "only_b", "same", "better"],
            default="worse",
        )
        parts.append(
            pd.DataFrame(
                {
                    "metric": joined["metric"].array,
                    "name": joined["name"].array,
                    "stat": pd.array([stat] * len(joined), dtype="string"),
                    "a": va,
                    "b": vb,
                    "delta": delta,
                    "rel_change": rel,
                    "change": pd.array(change, dtype="string"),
                    "count_a": _counts(joined["count_a"]),
                    "count_b": _counts(joined["count_b"]),
                    "missing_a": _counts(joined["missing_a"]),
                    "missing_b": _counts(joined["missing_b"]),
                    "_row": np.arange(len(joined)),
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    # Group the stats of one (metric, name) together, in the order they were asked for.
    return out.sort_values("_row", kind="stable").drop(columns="_row").reset_index(drop=True)


def _counts(column: pd.Series) -> ExtensionArray:
    return pd.array(column.to_numpy(dtype="float64", na_value=np.nan), dtype="Int64")


# --- helpers --------------------------------------------------------------------------------


def _check_frame(df: Any, required: Sequence[str], caller: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(
            f"{caller}() takes the frame table of Trace.to_frame() or load_traces() "
            f"(a pandas DataFrame), not {type(df).__name__}"
        )
    _check_columns(df, required, caller)


def _check_columns(df: pd.DataFrame, required: Sequence[str], caller: str) -> None:
    missing = [name for name in required if name not in df.columns]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        raise ValueError(
            f"{caller}: missing column(s) {names}; it takes the frame table of "
            "Trace.to_frame() or load_traces() (or a table with those columns)"
        )


def _int64(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype="int64", na_value=_NO_TIME)


def _float64(column: pd.Series) -> np.ndarray:
    return column.to_numpy(dtype="float64", na_value=np.nan)


def _eq(column: pd.Series, value: str) -> np.ndarray:
    return column.eq(value).to_numpy(dtype=bool, na_value=False)


def _codes(column: pd.Series) -> tuple[np.ndarray, ExtensionArray]:
    """Integer codes of a column (-1 for NA) and its distinct values, by first appearance."""
    values: ExtensionArray = column.array
    return values.factorize()  # what pd.factorize(values) calls for an ExtensionArray


def _block_codes(values: ExtensionArray) -> tuple[np.ndarray, ExtensionArray]:
    """Like :func:`_codes`, hashing only where the value changes.

    Streams (one value per file) and the run ids of a capture (one run after another) come
    in blocks, so this hashes a few values instead of a million strings.
    """
    if len(values) == 0:
        return values.factorize()
    changed = np.ones(len(values), dtype=bool)
    # NA compares as NA: count it as a change, which is always safe.
    changed[1:] = pd.Series(values[1:] != values[:-1]).to_numpy(dtype=bool, na_value=True)
    codes, uniques = values.take(np.flatnonzero(changed)).factorize()
    return codes[np.cumsum(changed) - 1], uniques


def _same_as_previous(values: np.ndarray) -> np.ndarray:
    """True where a value equals the one before it (never for the first)."""
    out = np.zeros(len(values), dtype=bool)
    out[1:] = values[1:] == values[:-1]
    return out


def _previous(values: np.ndarray, fill: Any = -1) -> np.ndarray:
    """The array shifted by one: each entry's predecessor, ``fill`` for the first."""
    out = np.empty_like(values)
    if len(values):
        out[0] = fill
        out[1:] = values[:-1]
    return out


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """The stable sort of ``keys``, skipped when they are sorted already (the usual case)."""
    if len(keys) < 2 or (keys[1:] >= keys[:-1]).all():
        return np.arange(len(keys))
    return np.argsort(keys, kind="stable")


def _maybe_take(fr: _Frames, column: str, idx: np.ndarray) -> Any:
    if column not in fr.base.df.columns:  # an imported table without it: all NA
        return pd.array([pd.NA] * len(idx), dtype="string")
    return fr.take(column, idx)


def _take_float(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    out = np.full(len(idx), np.nan)
    ok = idx >= 0
    out[ok] = values[idx[ok]]
    return out
