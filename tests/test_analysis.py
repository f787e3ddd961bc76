"""netra_ws.analysis on small hand-timed traces: every gap, duration and percentile below
is computed by hand from the milliseconds written in the test."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import run, t
from helpers.scripts import MONO0, WALL0, Script, one_run, three_runs
from hypothesis import given, settings
from hypothesis import strategies as st

from netra_ws import analysis
from netra_ws.analysis import (
    assign_runs,
    clock_offsets,
    compare_runs,
    event_gaps,
    find_stalls,
    phase_durations,
    run_stats,
    split_runs,
    summarize,
    summarize_runs,
)
from netra_ws.trace import Trace, frame_record, load_traces


@pytest.fixture
def df() -> pd.DataFrame:
    return three_runs().frame()


def approx(values: Any) -> Any:
    return pytest.approx(values, abs=1e-9, nan_ok=True)


def floats(column: pd.Series) -> list[float]:
    return column.to_numpy(dtype="float64", na_value=np.nan).tolist()


def strings(column: pd.Series) -> list[Any]:
    return [None if v is pd.NA else v for v in column.tolist()]


# --- assign_runs ----------------------------------------------------------------------------


def test_assign_runs_by_trigger_and_run_id(df):
    out = assign_runs(df)
    assert out is not df and "run" not in df.columns  # a new frame; the input is untouched
    assert list(out.columns) == [*df.columns, "run"]
    assert out["run"].dtype == "string"
    assert strings(out["run"]) == [
        None,  # connection_established: before any trigger
        *["s1#1"] * 8,  # trigger, 6 events and the heartbeat in the middle
        "s1#2",  # the trigger that got no reply still makes a run
        *["s1#3"] * 3,
    ]


def test_assign_runs_keeps_index_and_row_order():
    df = three_runs().frame()
    shuffled = df.sample(frac=1, random_state=7)
    shuffled.index = shuffled.index + 100
    out = assign_runs(shuffled)
    assert out.index.equals(shuffled.index)
    expected = assign_runs(df).set_index("seq")["run"]
    assert out.set_index("seq")["run"].loc[expected.index].equals(expected)


def test_late_event_with_run_id_stays_in_its_run():
    """The agent_completed of run A arrives after the second trigger: run_id decides."""
    s = Script()
    s.send(0).event(100, "agent_started", "A")
    s.send(200).event(250, "agent_completed", "A").event(300, "agent_started", "B")
    s.event(400, "agent_completed", "B")
    out = assign_runs(s.frame())
    assert strings(out["run"]) == ["s1#1", "s1#1", "s1#2", "s1#1", "s1#2", "s1#2"]
    stats = run_stats(s.frame())
    assert strings(stats["run_id"]) == ["A", "B"]
    assert floats(stats["duration_s"]) == approx([0.25, 0.2])


def test_without_run_id_the_trigger_decides():
    s = Script()
    s.send(0).event(100, "agent_started", None)
    s.send(200).event(250, "agent_completed", None)  # late, but nothing says so
    out = assign_runs(s.frame())
    assert strings(out["run"]) == ["s1#1", "s1#1", "s1#2", "s1#2"]


def test_run_ids_without_any_trigger_make_runs():
    """A receive-only capture (an imported HAR, a second tab): run_id alone identifies runs."""
    s = Script()
    s.status(0, "connection_established")
    s.event(100, "agent_started", "A").event(150, "agent_started", "B")
    s.event(200, "agent_completed", "A").event(300, "agent_completed", "B")
    out = assign_runs(s.frame())
    assert strings(out["run"]) == [None, "s1#1", "s1#2", "s1#1", "s1#2"]
    stats = run_stats(s.frame())
    assert strings(stats["trigger"]) == [None, None]
    assert floats(stats["time_to_first_event_s"]) == approx([math.nan, math.nan])
    assert floats(stats["duration_s"]) == approx([0.1, 0.15])


def test_second_run_id_in_one_segment_is_a_run_of_its_own():
    s = Script()
    s.send(0).event(100, "agent_started", "A").event(120, "agent_started", "X")
    s.event(300, "agent_completed", "A")
    stats = run_stats(s.frame())
    assert strings(stats["run"]) == ["s1#1", "s1#2"]
    assert strings(stats["run_id"]) == ["A", "X"]
    assert strings(stats["trigger"]) == ["user_message", None]
    assert floats(stats["time_to_first_event_s"]) == approx([0.1, math.nan])


def test_client_reusing_its_run_id_still_gets_two_runs():
    s = Script()
    s.send(0, run_id="mine").event(100, "agent_started", "mine")
    s.event(200, "agent_completed", "mine")
    s.send(1000, run_id="mine").event(1300, "agent_started", "mine")
    s.event(1500, "agent_completed", "mine")
    stats = run_stats(s.frame())
    assert strings(stats["run"]) == ["s1#1", "s1#2"]
    assert floats(stats["time_to_first_event_s"]) == approx([0.1, 0.3])


def test_server_ignoring_the_clients_run_id_does_not_split_the_run():
    s = Script()
    s.send(0, run_id="client-chosen").event(100, "agent_started", "server-chosen")
    s.event(200, "agent_completed", "server-chosen")
    stats = run_stats(s.frame())
    assert len(stats) == 1
    assert stats["run_id"].iloc[0] == "server-chosen"
    assert stats["outcome"].iloc[0] == "completed"


def test_a_run_id_sent_with_a_trigger_that_another_answered_is_a_run_of_its_own():
    """The rule of split_runs, even when the run_id comes back only after later triggers."""
    s = Script()
    s.send(0, run_id="R").event(100, "agent_started", "S")  # the server ignored R
    s.send(200).event(300, "agent_started", "T")
    s.event(400, "agent_started", "R")  # late, and its trigger was answered by S
    expected = ["s1#1", "s1#1", "s1#2", "s1#2", "s1#3"]
    assert strings(assign_runs(s.frame())["run"]) == expected
    assert [r.frames for r in split_runs(s.writer.records)] == [(0, 1), (2, 3), (4,)]


def test_agent_events_before_any_trigger_without_run_id_make_one_run():
    """Received frames only (a Collected, a second tab) from a server that sends no run_id."""
    s = Script()
    s.status(0, "connection_established")
    s.event(100, "agent_started", None).status(150, "heartbeat")
    s.event(200, "agent_completed", None)
    assert strings(assign_runs(s.frame())["run"]) == [None, "s1#1", "s1#1", "s1#1"]
    stats = run_stats(s.frame())
    assert strings(stats["trigger"]) == [None] and stats["outcome"].iloc[0] == "completed"


def test_output_names_sent_as_input_start_no_run():
    """The #937 mistake: sending agent_started is not a trigger."""
    s = Script()
    s.status(0, "connection_established")
    s._write("send", 10, {"type": "agent_started", "payload": {}})
    assert assign_runs(s.frame())["run"].isna().all()
    assert run_stats(s.frame()).empty


def test_many_trace_files_from_load_traces(tmp_path):
    # Two per-run traces that even share a session id: the file tells them apart.
    for name in ("run_001", "run_002"):
        s = Script("same-session", tmp_path / f"{name}.jsonl")
        s.status(0, "connection_established").send(10).event(40, "agent_started", None)
        s.event(90, "agent_completed", None)
        s.close()
    df = load_traces(tmp_path)
    out = assign_runs(df)
    assert strings(out["run"]) == [None, *["run_001#1"] * 3, None, *["run_002#1"] * 3]
    stats = run_stats(df)
    assert list(stats.columns[:3]) == ["trace", "session", "run"]
    assert strings(stats["trace"]) == ["run_001.jsonl", "run_002.jsonl"]
    assert floats(stats["time_to_first_event_s"]) == approx([0.03, 0.03])
    summary = summarize_runs(df)
    ttfe = summary[summary.metric == "time_to_first_event"].iloc[0]
    assert ttfe["count"] == 2 and ttfe["p50"] == pytest.approx(0.03)


def test_an_existing_run_column_is_used_as_it_is(df):
    labelled = df.assign(run=pd.array(["mine"] * len(df), dtype="string"))
    stats = run_stats(labelled)
    assert strings(stats["run"]) == ["mine"]
    assert stats["trigger_seq"].iloc[0] == 2  # the first trigger of the run


# --- one definition of a run: split_runs (records) and assign_runs (a table) agree ---------

# Small alphabets, so that triggers, reused run ids, late events and repeats all happen.
_DIRS = ("send", "receive")
_NAMES = (
    "user_message",
    "start_agent",
    "agent_started",
    "agent_thinking",
    "agent_completed",
    "agent_error",
    "connection_established",
    "heartbeat",
    "ack",
)
_RUN_IDS = (None, "A", "B", "C")
_STEP = st.tuples(
    st.sampled_from(_DIRS),
    st.sampled_from(_NAMES),
    st.sampled_from(_RUN_IDS),
    st.integers(-2, 3),  # time step in ms: 0 and negative steps put seq and time apart
    st.integers(0, 9),  # 0: the frame has no t_mono_ns, 1: it is written twice
)


def _stream_records(steps: list[tuple[str, str, str | None, int, int]]) -> list[dict]:
    """Trace records of one stream, as the writer makes them, from hypothesis' steps."""
    records, t = [], MONO0
    for seq, (direction, name, run_id, step, odd) in enumerate(steps, 1):
        t += step * 1_000_000
        obj = {"type": name, "payload": {}} | ({"run_id": run_id} if run_id else {})
        record = frame_record(seq, direction, json.dumps(obj), t_wall_ns=WALL0, t_mono_ns=t)
        if odd == 0:
            del record["t_mono_ns"]
        records += [record, dict(record)] if odd == 1 else [record]
    return records


def split_labels(records: list[dict]) -> list[str | None]:
    """split_runs' run of each record, as assign_runs labels it."""
    labels: list[str | None] = [None] * len(records)
    for r in split_runs(records):
        for i in r.frames:
            labels[i] = r.label
    return labels


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_STEP, max_size=25), min_size=1, max_size=3), st.randoms())
def test_split_runs_and_assign_runs_agree(streams, rnd):
    tables = [
        Trace({"session": f"s{n}"}, _stream_records(steps)).to_frame().assign(trace=f"t{n}.jsonl")
        for n, steps in enumerate(streams)
    ]
    df = pd.concat(tables, ignore_index=True)
    df = df.iloc[rnd.sample(range(len(df)), len(df))].reset_index(drop=True)  # any row order
    assert strings(assign_runs(df)["run"]) == split_labels(df.to_dict("records"))


@settings(max_examples=100, deadline=None)
@given(st.lists(_STEP, max_size=30))
def test_split_runs_of_a_traces_records_are_assign_runs_of_its_table(steps):
    trace = Trace({"session": "s1"}, _stream_records(steps))
    # The records name no session (the header does): the runs are the same, only the
    # stream's name differs.
    expected = [
        None if v is None else v.replace("s1#", "?#")
        for v in strings(assign_runs(trace.to_frame())["run"])
    ]
    assert split_labels(trace.records) == expected


def test_split_runs_states_the_rule_on_three_runs():
    records = three_runs().writer.records  # positions are seq - 1
    runs = split_runs(records)
    assert [(r.label, r.trigger) for r in runs] == [("?#1", 1), ("?#2", 9), ("?#3", 10)]
    # The welcome is in no run; the heartbeat (6) is in the run it came in.
    assert [r.frames for r in runs] == [tuple(range(1, 9)), (9,), (10, 11, 12)]
    # Records of other kinds (marks, open, close) are skipped.
    marked = [{"kind": "open", "t_mono_ns": 0}, *records]
    assert [r.frames[0] for r in split_runs(marked)] == [2, 10, 11]


# --- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "func",
    [assign_runs, event_gaps, run_stats, phase_durations, find_stalls, summarize_runs],
)
def test_missing_column_is_named(df, func):
    with pytest.raises(ValueError, match="'t_mono_ns'"):
        func(df.drop(columns=["t_mono_ns"]))


def test_phase_durations_needs_tool_name(df):
    with pytest.raises(ValueError, match="'tool_name'"):
        phase_durations(df.drop(columns=["tool_name"]))


def test_clock_offsets_needs_server_ts(df):
    with pytest.raises(ValueError, match="'server_ts'"):
        clock_offsets(df.drop(columns=["server_ts"]))


def test_not_a_dataframe_is_a_type_error(df):
    with pytest.raises(TypeError, match="frame table"):
        run_stats(df.to_dict("records"))


def test_bad_threshold(df):
    with pytest.raises(ValueError, match="threshold_s"):
        find_stalls(df, threshold_s=-1)
    with pytest.raises(TypeError, match="threshold_s"):
        find_stalls(df, threshold_s="2")


# --- per-run numbers ------------------------------------------------------------------------


def test_run_stats_by_hand(df):
    stats = run_stats(df)
    assert strings(stats["run"]) == ["s1#1", "s1#2", "s1#3"]
    assert strings(stats["run_id"]) == ["run-1", None, "run-3"]
    assert strings(stats["trigger"]) == ["user_message"] * 3
    assert stats["trigger_seq"].tolist() == [2, 10, 11]
    assert stats["n_events"].tolist() == [6, 0, 2]
    assert floats(stats["t_start_s"]) == approx([0.1, 5.0, 6.0])
    assert floats(stats["time_to_first_event_s"]) == approx([0.25, math.nan, 0.1])
    assert floats(stats["duration_s"]) == approx([2.5, math.nan, math.nan])
    assert floats(stats["span_s"]) == approx([2.5, math.nan, 0.3])
    assert strings(stats["first_event"]) == ["agent_started", None, "agent_started"]
    assert strings(stats["last_event"]) == ["agent_completed", None, "agent_thinking"]
    assert strings(stats["end_event"]) == ["agent_completed", None, None]
    assert strings(stats["outcome"]) == ["completed", "no_reply", "incomplete"]


def test_send_but_no_reply_keeps_the_run():
    s = Script().status(0, "connection_established").send(100)
    df = s.frame()
    stats = run_stats(df)
    assert len(stats) == 1
    assert stats["outcome"].iloc[0] == "no_reply"
    assert math.isnan(stats["time_to_first_event_s"].iloc[0])
    assert event_gaps(df).empty and find_stalls(df, 0).empty and phase_durations(df).empty
    ttfe = summarize_runs(df).iloc[0]
    assert (ttfe["metric"], ttfe["count"], ttfe["missing"]) == ("time_to_first_event", 0, 1)
    assert math.isnan(ttfe["p50"])


def test_run_with_only_housekeeping_has_no_events_unless_asked():
    s = Script().send(100).status(400, "heartbeat").status(500, "pong")
    stats = run_stats(s.frame())
    assert stats["n_events"].tolist() == [0]
    assert stats["outcome"].iloc[0] == "no_reply"
    with_hk = run_stats(s.frame(), include_housekeeping=True)
    assert with_hk["n_events"].tolist() == [2]
    assert with_hk["time_to_first_event_s"].iloc[0] == pytest.approx(0.3)
    assert event_gaps(s.frame()).empty
    assert floats(event_gaps(s.frame(), include_housekeeping=True)["gap_s"]) == approx(
        [math.nan, 0.1]
    )


def test_error_outcome_and_error_frames_count_as_events():
    s = Script().send(0).event(100, "agent_started").event(400, "agent_error")
    assert run_stats(s.frame())["outcome"].tolist() == ["error"]
    assert run_stats(s.frame())["duration_s"].tolist() == approx([0.4])
    s = Script().send(0)
    s._write(
        "receive", 50, {"type": "error_message", "error_code": "AGENT_REQUEST_ERROR", "details": {}}
    )
    stats = run_stats(s.frame())
    assert stats["first_event"].tolist() == ["error_message"]
    assert stats["outcome"].tolist() == ["incomplete"]


def test_a_trace_with_no_frames_gives_empty_tables_with_columns():
    df = Trace({}, []).to_frame()
    assert assign_runs(df).columns[-1] == "run"
    for func, first in [
        (run_stats, "session"),
        (event_gaps, "session"),
        (phase_durations, "session"),
        (find_stalls, "session"),
        (clock_offsets, "session"),
    ]:
        out = func(df)
        assert out.empty and out.columns[0] == first, func.__name__
    summary = summarize_runs(df)
    assert summary["metric"].tolist() == ["time_to_first_event", "duration", "gap"]
    assert summary["count"].tolist() == [0, 0, 0]


# --- gaps -----------------------------------------------------------------------------------


def test_event_gaps_by_hand(df):
    gaps = event_gaps(df)
    assert list(gaps.columns) == [
        "session",
        "run",
        "run_id",
        "seq",
        "event",
        "tool_name",
        "t_s",
        "since_trigger_s",
        "gap_s",
        "prev_event",
        "prev_seq",
    ]
    assert strings(gaps["run"]) == ["s1#1"] * 6 + ["s1#3"] * 2
    assert strings(gaps["event"]) == [
        "agent_started",
        "agent_thinking",
        "agent_thinking",
        "tool_executing",
        "tool_completed",  # the heartbeat at 1600 ms is not an agent event
        "agent_completed",
        "agent_started",
        "agent_thinking",
    ]
    assert floats(gaps["gap_s"]) == approx([math.nan, 0.15, 0.3, 0.1, 1.5, 0.2, math.nan, 0.2])
    assert floats(gaps["since_trigger_s"]) == approx([0.25, 0.4, 0.7, 0.8, 2.3, 2.5, 0.1, 0.3])
    assert strings(gaps["prev_event"])[:3] == [None, "agent_started", "agent_thinking"]
    assert gaps["prev_seq"].tolist()[:3] == [pd.NA, 3, 4]
    assert strings(gaps["tool_name"])[3:5] == ["cost_analyzer", "cost_analyzer"]


def test_event_gaps_with_housekeeping_split_the_tool_gap(df):
    gaps = event_gaps(df, include_housekeeping=True)
    assert "heartbeat" in gaps["event"].tolist()
    assert floats(gaps["gap_s"])[4:6] == approx([0.7, 0.8])


def test_duplicated_rows_count_once(df):
    doubled = pd.concat([df, df], ignore_index=True)
    # The repeated trigger rows must not start runs of their own.
    assert strings(assign_runs(doubled)["run"]) == strings(assign_runs(df)["run"]) * 2
    pd.testing.assert_frame_equal(event_gaps(doubled), event_gaps(df))
    pd.testing.assert_frame_equal(run_stats(doubled), run_stats(df))
    pd.testing.assert_frame_equal(phase_durations(doubled), phase_durations(df))
    pd.testing.assert_frame_equal(summarize_runs(doubled), summarize_runs(df))


def test_reordered_rows_give_the_same_answers(df):
    shuffled = df.sample(frac=1, random_state=3)
    pd.testing.assert_frame_equal(event_gaps(shuffled), event_gaps(df))
    pd.testing.assert_frame_equal(run_stats(shuffled), run_stats(df))
    pd.testing.assert_frame_equal(phase_durations(shuffled), phase_durations(df))
    pd.testing.assert_frame_equal(find_stalls(shuffled, 0.2), find_stalls(df, 0.2))


# --- the prepared table kept between calls -------------------------------------------------


@pytest.fixture
def preparations(monkeypatch) -> list[int]:
    """Counts how often the table is really prepared (not served from the last call)."""
    calls: list[int] = []
    prepare = analysis._prepare_frames

    def counting(df: pd.DataFrame) -> Any:
        calls.append(len(df))
        return prepare(df)

    monkeypatch.setattr(analysis, "_prepare_frames", counting)
    monkeypatch.setattr(analysis, "_last_prepared", None)
    return calls


def test_questions_of_one_table_prepare_it_once(df, preparations):
    expected = [event_gaps(df.copy()), run_stats(df.copy()), summarize_runs(df.copy())]
    assert len(preparations) == 3
    preparations.clear()
    answers = [event_gaps(df), run_stats(df), summarize_runs(df)]
    assert len(preparations) == 1
    for got, want in zip(answers, expected, strict=True):
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize(
    "edit",
    [
        lambda df: df.__setitem__("t_mono_ns", (df["t_mono_ns"] - MONO0) * 2 + MONO0),
        lambda df: df.loc.__setitem__((df.index[4], "t_mono_ns"), MONO0 + 3_000_000_000),
        lambda df: df.loc.__setitem__((df.index[4], "event"), "agent_completed"),
        lambda df: df.loc.__setitem__((df.index[4], "t_s"), 99.0),
        lambda df: df.loc.__setitem__((df.index[2], "run_id"), "run-9"),
        lambda df: df.__setitem__("run", "mine"),
    ],
    ids=["column", "time", "event", "t_s", "run_id", "run-column"],
)
def test_an_edited_table_is_prepared_again(df, preparations, edit):
    event_gaps(df)
    edit(df)
    # What a fresh table with the same contents gives: the answer must not be the old one.
    pd.testing.assert_frame_equal(event_gaps(df), event_gaps(df.copy(deep=True)))
    pd.testing.assert_frame_equal(summarize_runs(df), summarize_runs(df.copy(deep=True)))


def test_the_kept_preparation_does_not_keep_the_table_alive(preparations):
    import gc
    import weakref

    table = three_runs().frame()
    event_gaps(table)
    ref = weakref.ref(table)
    del table
    gc.collect()
    assert ref() is None


def test_an_event_the_server_sent_twice_counts_twice():
    s = Script().send(0).event(100, "agent_started").event(300, "agent_completed")
    s.event(300.5, "agent_completed")  # a second frame, a retry
    gaps = event_gaps(s.frame())
    assert floats(gaps["gap_s"]) == approx([math.nan, 0.2, 0.0005])
    stats = run_stats(s.frame())
    assert stats["duration_s"].tolist() == approx([0.3])  # to the first end event
    assert stats["n_events"].tolist() == [3]


def test_events_out_of_protocol_order_are_timed_as_received():
    s = Script().send(0).event(100, "agent_completed").event(250, "agent_started")
    gaps = event_gaps(s.frame())
    assert strings(gaps["event"]) == ["agent_completed", "agent_started"]
    assert floats(gaps["gap_s"]) == approx([math.nan, 0.15])
    assert run_stats(s.frame())["duration_s"].tolist() == approx([0.1])


# --- phases ---------------------------------------------------------------------------------


def test_phase_durations_by_hand(df):
    phases = phase_durations(df)
    assert strings(phases["run"]) == ["s1#1", "s1#1", "s1#3"]
    assert strings(phases["kind"]) == ["thinking", "tool", "thinking"]
    assert strings(phases["phase"]) == ["thinking", "tool:cost_analyzer", "thinking"]
    assert strings(phases["tool_name"]) == [None, "cost_analyzer", None]
    assert floats(phases["duration_s"]) == approx([0.4, 1.5, math.nan])
    assert phases["matched"].tolist() == [True, True, False]
    assert strings(phases["end_event"]) == ["tool_executing", "tool_completed", None]
    assert phases["start_seq"].tolist() == [4, 6, 13]
    assert floats(phases["t_start_s"]) == approx([0.5, 0.9, 6.3])
    assert floats(phases["t_end_s"]) == approx([0.9, 2.4, math.nan])


def test_unmatched_tool_executing_is_kept():
    s = Script().send(0)
    s.event(100, "tool_executing", tool="search")
    s.event(200, "tool_executing", tool="calc")
    s.event(450, "tool_completed", tool="calc")
    s.event(500, "agent_completed")
    phases = phase_durations(s.frame())
    assert strings(phases["phase"]) == ["tool:search", "tool:calc"]
    assert phases["matched"].tolist() == [False, True]
    assert floats(phases["duration_s"]) == approx([math.nan, 0.25])
    assert strings(phases["end_event"]) == [None, "tool_completed"]


def test_parallel_calls_of_one_tool_pair_first_in_first_out():
    s = Script().send(0)
    s.event(100, "tool_executing", tool="t").event(200, "tool_executing", tool="t")
    s.event(500, "tool_completed", tool="t").event(900, "tool_completed", tool="t")
    phases = phase_durations(s.frame())
    assert floats(phases["duration_s"]) == approx([0.4, 0.7])


def test_completion_before_its_start_is_never_a_negative_duration():
    """Reordered: tool_completed arrives before tool_executing."""
    s = Script().send(0)
    s.event(100, "tool_completed", tool="t").event(200, "tool_executing", tool="t")
    phases = phase_durations(s.frame())
    assert phases["matched"].tolist() == [False, False]
    assert strings(phases["start_event"]) == [None, "tool_executing"]
    assert strings(phases["end_event"]) == ["tool_completed", None]
    assert phases["duration_s"].isna().all()


def test_duplicated_tool_completed_is_an_orphan():
    s = Script().send(0)
    s.event(100, "tool_executing", tool="t").event(400, "tool_completed", tool="t")
    s.event(401, "tool_completed", tool="t")
    phases = phase_durations(s.frame())
    assert phases["matched"].tolist() == [True, False]
    assert floats(phases["duration_s"]) == approx([0.3, math.nan])
    assert phases["end_seq"].tolist() == [3, 4]


def test_thinking_between_tools_makes_two_blocks():
    s = Script().send(0)
    s.event(100, "agent_thinking").event(150, "agent_thinking")
    s.event(300, "tool_executing", tool="a").event(400, "tool_completed", tool="a")
    s.event(450, "agent_thinking").event(700, "agent_completed")
    phases = phase_durations(s.frame())
    assert strings(phases["phase"]) == ["thinking", "tool:a", "thinking"]
    assert floats(phases["duration_s"]) == approx([0.2, 0.1, 0.25])


def test_tool_events_without_tool_name_still_pair():
    s = Script().send(0).event(100, "tool_executing").event(300, "tool_completed")
    phases = phase_durations(s.frame())
    assert strings(phases["phase"]) == ["tool:?"]
    assert floats(phases["duration_s"]) == approx([0.2])


# --- stalls ---------------------------------------------------------------------------------


def test_find_stalls_by_hand(df):
    stalls = find_stalls(df, threshold_s=0.2)
    # > 0.2 s, strictly: the 0.2 s gaps (completed, run 3's thinking) are not stalls.
    assert floats(stalls["gap_s"]) == approx([0.25, 0.3, 1.5])
    assert strings(stalls["before_event"]) == ["user_message", "agent_thinking", "tool_executing"]
    assert strings(stalls["before_dir"]) == ["send", "receive", "receive"]
    assert strings(stalls["after_event"]) == ["agent_started", "agent_thinking", "tool_completed"]
    assert stalls["before_seq"].tolist() == [2, 4, 6]
    assert stalls["after_seq"].tolist() == [3, 5, 8]
    assert floats(stalls["before_t_s"]) == approx([0.1, 0.5, 0.9])
    assert floats(stalls["after_t_s"]) == approx([0.35, 0.8, 2.4])
    assert strings(stalls["run"]) == ["s1#1"] * 3


def test_find_stalls_options(df):
    assert floats(find_stalls(df, 0.2, include_first=False)["gap_s"]) == approx([0.3, 1.5])
    # The heartbeat at 1600 ms does not hide the 1.5 s stall, unless asked to.
    assert floats(find_stalls(df, 1.0)["gap_s"]) == approx([1.5])
    assert find_stalls(df, 1.0, include_housekeeping=True).empty


# --- clocks ---------------------------------------------------------------------------------


def test_clock_offset_is_the_minimum_delay_per_session():
    s = Script(server_lag_ms=2000)  # the server clock is 2 s behind
    s.status(0, "connection_established", latency_ms=10)
    s.send(50, timestamp=WALL0 / 1e9 + 0.05)  # the client's own timestamp: not a server's
    s.event(100, "agent_started", latency_ms=3)
    s.event(200, "agent_completed", latency_ms=50)
    other = Script("s2").status(0, "connection_established", latency_ms=7)
    df = pd.concat([s.frame(), other.frame()], ignore_index=True)
    offsets = clock_offsets(df)
    assert strings(offsets["session"]) == ["s1", "s2"]
    assert offsets["n"].tolist() == [3, 1]
    assert offsets["offset_s"].tolist() == pytest.approx([2.003, 0.007], abs=2e-6)
    assert offsets["delay_p50_s"].tolist() == pytest.approx([2.010, 0.007], abs=2e-6)
    assert offsets["delay_max_s"].tolist() == pytest.approx([2.050, 0.007], abs=2e-6)
    assert offsets["at_seq"].tolist() == [3, 1]
    assert strings(offsets["at_event"]) == ["agent_started", "connection_established"]


# --- summaries ------------------------------------------------------------------------------


def test_summarize_percentiles_by_hand():
    table = pd.DataFrame(
        {"group": ["a", "a", "a", "a", "a", "b"], "v": [4.0, 1.0, 3.0, 2.0, np.nan, 10.0]}
    )
    out = summarize(table, "v", by="group")
    assert list(out.columns) == ["group", "count", "missing", "p50", "p90", "p99", "max"]
    a, b = out.iloc[0], out.iloc[1]
    # 1, 2, 3, 4: p50 halfway between 2 and 3; p90 at 0.9 * 3 = 2.7 -> 3 + 0.7; p99 3.97.
    assert (a["count"], a["missing"]) == (4, 1)
    assert [a["p50"], a["p90"], a["p99"], a["max"]] == approx([2.5, 3.7, 3.97, 4.0])
    assert [b["count"], b["p50"], b["max"]] == approx([1, 10.0, 10.0])
    overall = summarize(table, "v")
    assert overall.iloc[0]["count"] == 5 and overall.iloc[0]["p50"] == pytest.approx(3.0)


def test_summarize_checks_its_arguments():
    table = pd.DataFrame({"v": ["x"], "g": [1]})
    with pytest.raises(ValueError, match="'nope'"):
        summarize(table, "nope")
    with pytest.raises(ValueError, match="'missing_group'"):
        summarize(table, "g", by="missing_group")
    with pytest.raises(ValueError, match="not numeric"):
        summarize(table, "v")


def test_summarize_runs_by_hand(df):
    summary = summarize_runs(df)
    assert list(summary.columns) == [
        "metric",
        "name",
        "count",
        "missing",
        "p50",
        "p90",
        "p99",
        "max",
    ]
    rows = {(r.metric, r.name): r for r in summary.itertuples()}
    assert list(rows) == [
        ("time_to_first_event", "all"),
        ("duration", "all"),
        ("gap", "agent_thinking"),
        ("gap", "tool_executing"),
        ("gap", "tool_completed"),
        ("gap", "agent_completed"),
        ("gap", "all"),
        ("phase", "thinking"),
        ("phase", "tool:cost_analyzer"),
    ]
    ttfe = rows["time_to_first_event", "all"]
    # 0.25 and 0.1 (run 2 never answered): p90 = 0.1 + 0.9 * 0.15.
    assert (ttfe.count, ttfe.missing) == (2, 1)
    assert [ttfe.p50, ttfe.p90, ttfe.max] == approx([0.175, 0.235, 0.25])
    duration = rows["duration", "all"]
    assert (duration.count, duration.missing, duration.p50) == (1, 2, pytest.approx(2.5))
    gap = rows["gap", "all"]
    # 0.1, 0.15, 0.2, 0.2, 0.3, 1.5: p90 at 4.5 -> 0.3 + 0.5 * 1.2; p99 at 4.95.
    assert gap.count == 6
    assert [gap.p50, gap.p90, gap.p99, gap.max] == approx([0.2, 0.9, 1.44, 1.5])
    thinking_gap = rows["gap", "agent_thinking"]
    assert (thinking_gap.count, thinking_gap.p50) == (3, pytest.approx(0.2))  # .15 .3 .2
    thinking = rows["phase", "thinking"]
    assert (thinking.count, thinking.missing, thinking.p50) == (1, 1, pytest.approx(0.4))


def random_trace(seed: int, session: str, runs: int = 25) -> pd.DataFrame:
    """Runs with random timings, some without reply, some overlapping, some broken."""
    rng = np.random.default_rng(seed)
    s = Script(session)
    s.status(0, "connection_established")
    at = 10.0
    for k in range(runs):
        run_id = f"{session}-r{k}"
        s.send(at)
        if rng.random() < 0.1:  # no reply
            at += 500
            continue
        plan = ["agent_started", *["agent_thinking"] * int(rng.integers(0, 3))]
        for _ in range(int(rng.integers(0, 3))):
            tool = str(rng.choice(["a", "b"]))
            plan += [("tool_executing", tool)]
            if rng.random() > 0.2:
                plan += [("tool_completed", tool)]
        if rng.random() > 0.1:
            plan.append("agent_completed")
        if rng.random() < 0.2 and len(plan) > 1:
            plan.insert(int(rng.integers(1, len(plan))), plan[-1])  # a repeat
        for step in plan:
            at += float(rng.exponential(80)) + 0.5
            name, tool = step if isinstance(step, tuple) else (step, None)
            if rng.random() < 0.05:
                s.status(at, "heartbeat")
                at += 1
            s.event(at, name, run_id, tool=tool)
        at += 5.0 if rng.random() < 0.2 else 200.0  # sometimes the next trigger comes early
    return s.frame()


def test_summarize_runs_agrees_with_summarize_over_the_tables():
    df = pd.concat([random_trace(1, "s1"), random_trace(2, "s2")], ignore_index=True)
    summary = summarize_runs(df).set_index(["metric", "name"])
    runs = run_stats(df)
    gaps = event_gaps(df).dropna(subset=["gap_s"])
    phases = phase_durations(df)
    assert runs["run"].str.startswith(("s1#", "s2#")).all()
    expected = {
        ("time_to_first_event", "all"): summarize(runs, "time_to_first_event_s").iloc[0],
        ("duration", "all"): summarize(runs, "duration_s").iloc[0],
        ("gap", "all"): summarize(gaps, "gap_s").iloc[0],
    }
    for row in summarize(gaps, "gap_s", by="event").itertuples(index=False):
        expected["gap", row.event] = pd.Series(row._asdict())
    for row in summarize(phases, "duration_s", by="phase").itertuples(index=False):
        expected["phase", row.phase] = pd.Series(row._asdict())
    assert set(summary.index) == set(expected)
    for key, want in expected.items():
        got = summary.loc[key]
        assert (got["count"], got["missing"]) == (want["count"], want["missing"]), key
        assert [got[s] for s in ("p50", "p90", "p99", "max")] == approx(
            [want[s] for s in ("p50", "p90", "p99", "max")]
        ), key
    # The tables agree with each other too.
    assert runs["n_events"].sum() == len(event_gaps(df))
    assert (phases["duration_s"].dropna() >= 0).all()
    assert (gaps["gap_s"] >= 0).all()


# --- comparisons ----------------------------------------------------------------------------


def test_compare_runs_directions():
    a = one_run(200, 400, {"search": 1000, "legacy": 50}, "a").frame()
    b = one_run(204, 200, {"search": 2000, "vector": 30}, "b").frame()
    cmp = compare_runs(a, b, stats=["p50"])
    assert list(cmp.columns) == [
        "metric",
        "name",
        "stat",
        "a",
        "b",
        "delta",
        "rel_change",
        "change",
        "count_a",
        "count_b",
        "missing_a",
        "missing_b",
    ]
    by = {(r.metric, r.name): r for r in cmp.itertuples()}
    ttfe = by["time_to_first_event", "all"]
    assert (ttfe.a, ttfe.b, ttfe.delta) == approx((0.2, 0.204, 0.004))
    assert ttfe.change == "same"  # 4 ms: within the 5 ms absolute tolerance
    assert by["phase", "thinking"].change == "better"
    assert by["phase", "thinking"].rel_change == pytest.approx(-0.5)
    search = by["phase", "tool:search"]
    assert (search.delta, search.rel_change, search.change) == (
        pytest.approx(1.0),
        pytest.approx(1.0),
        "worse",
    )
    assert by["phase", "tool:legacy"].change == "only_a"
    assert by["phase", "tool:vector"].change == "only_b"
    assert math.isnan(by["phase", "tool:vector"].a)
    # Order: METRICS order; within phases, a's names (sorted), then the names only b has.
    phases = cmp[cmp.metric == "phase"]["name"].tolist()
    assert phases == ["thinking", "tool:legacy", "tool:search", "tool:vector"]


def test_compare_runs_tolerances_and_missing_counts():
    a = pd.concat(
        [one_run(100, 100, {}, "a1").frame(), one_run(300, 100, {}, "a2").frame()],
        ignore_index=True,
    )
    no_reply = Script("b2").send(0).frame()
    b = pd.concat([one_run(110, 100, {}, "b1").frame(), no_reply], ignore_index=True)
    cmp = compare_runs(a, b, stats=("p50", "max"), rel_tol=0.5, abs_tol_s=0.0)
    ttfe = cmp[cmp.metric == "time_to_first_event"]
    assert ttfe["stat"].tolist() == ["p50", "max"]
    assert ttfe["a"].tolist() == approx([0.2, 0.3])
    assert ttfe["b"].tolist() == approx([0.11, 0.11])
    # p50 -45 % is within the 50 % tolerance; max -63 % is better.
    assert ttfe["change"].tolist() == ["same", "better"]
    assert ttfe["count_b"].tolist() == [1, 1] and ttfe["missing_b"].tolist() == [1, 1]
    strict = compare_runs(a, b, stats=["p50"], rel_tol=0.0, abs_tol_s=0.0)
    assert strict[strict.metric == "time_to_first_event"]["change"].tolist() == ["better"]


def test_compare_runs_no_data_on_either_side():
    a = Script("a").send(0).frame()
    b = Script("b").send(0).frame()
    cmp = compare_runs(a, b, stats=["p90"])
    assert cmp["change"].tolist() == ["no_data", "no_data", "no_data"]


def test_compare_runs_checks_its_arguments(df):
    with pytest.raises(ValueError, match="stats"):
        compare_runs(df, df, stats=["p75"])
    with pytest.raises(ValueError, match="tolerances"):
        compare_runs(df, df, rel_tol=-1)
    with pytest.raises(ValueError, match=r"\(b\).*'event'"):
        compare_runs(df, df.drop(columns=["event"]))
    with pytest.raises(TypeError, match="b must be"):
        compare_runs(df, None)


def test_public_names():
    assert set(analysis.__all__) >= {
        "assign_runs",
        "run_stats",
        "event_gaps",
        "phase_durations",
        "find_stalls",
        "clock_offsets",
        "summarize",
        "summarize_runs",
        "compare_runs",
        "split_runs",
        "Run",
    }
    for name in analysis.__all__:
        assert getattr(analysis, name).__doc__ or name.isupper(), name


# --- end to end -----------------------------------------------------------------------------


def test_embedded_server_runs_analysed(server, tmp_path):
    """Two user_message runs against the reference server (bridge dialect, fast scenario)."""
    from netra_ws import connect, read_trace

    path = tmp_path / "e2e.jsonl"

    async def scenario():
        async with connect(server.url, trace=path) as session:
            await session.next(timeout=t(5))
            for _ in range(2):
                await session.send_user_message("What did we spend last month?")
                got = await session.collect(until="agent_completed", timeout=t(10))
                assert got.reason == "matched"

    run(scenario())
    df = read_trace(path).to_frame()
    stats = run_stats(df)
    assert stats["outcome"].tolist() == ["completed", "completed"]
    assert (stats["time_to_first_event_s"] > 0).all()
    assert (stats["duration_s"] > stats["time_to_first_event_s"]).all()
    assert stats["run_id"].str.startswith("run_").all()
    gaps = event_gaps(df)
    assert len(gaps) == 12 and gaps["gap_s"].isna().sum() == 2
    assert (gaps["gap_s"].dropna() > 0).all()
    phases = phase_durations(df)
    assert phases["phase"].tolist() == ["thinking", "tool:cost_analyzer"] * 2
    assert phases["matched"].all()
    offsets = clock_offsets(df)
    # Same machine, same clock: the minimum delay is a small positive latency.
    assert 0 <= offsets["offset_s"].iloc[0] < t(1)
