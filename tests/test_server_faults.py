"""Every fault SPEC through a real connection: the client's trace shows exactly what the
server's log announced."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re

import pytest
from conftest import RUN, run, t

from netra_ws import TERMINAL_EVENTS, Limits, connect, read_trace
from netra_ws.server import Scenario, parse_fault
from netra_ws.server import faults as faults_module
from netra_ws.server.faults import BINARY_FRAME, FAULT_GRAMMAR, MALFORMED_FRAME

FAULT_LINE = re.compile(r"^FAULT (?P<what>.+) run=(?P<run>\S+) conn=(?P<conn>\S+)$")


@pytest.fixture
def fault_log(caplog):
    """The server's FAULT lines, as (what, run_id, connection_id), in order."""
    caplog.set_level(logging.INFO, logger="netra_ws.server")

    def lines() -> list[tuple[str, str, str]]:
        found = [FAULT_LINE.match(r.getMessage()) for r in caplog.records]
        return [(m["what"], m["run"], m["conn"]) for m in found if m]

    return lines


def _runs(url, path, texts=("analyze",)):
    """One connection, one run per text in turn; the trace is written to ``path``, every
    frame whole (the oversize fault's frame is over the default recording limit)."""

    async def scenario():
        async with connect(url, trace=path, limits=Limits(record_limit=None)) as session:
            await session.expect("connection_established", timeout=t(5))
            for text in texts:
                await session.send_user_message(text)
                result = await session.collect(until=TERMINAL_EVENTS, timeout=t(10))
                if result.reason == "closed":
                    break

    run(scenario())
    return read_trace(path)


def _received(trace):
    return [f for f in trace.frames if f["dir"] == "receive"]


def _names(trace):
    """Event names after connection_established; None for frames that did not parse."""
    return [f.get("event") for f in _received(trace)][1:]


def _ids(trace):
    """(run ids in order of appearance, the connection id of connection_established)."""
    frames = _received(trace)
    run_ids = list(dict.fromkeys(f["run_id"] for f in frames if f.get("run_id")))
    return run_ids, json.loads(frames[0]["data"])["data"]["connection_id"]


def _close(trace):
    return next(r for r in trace.records if r["kind"] == "close")


def test_drop_removes_exactly_that_event(make_server, tmp_path, fault_log):
    srv = make_server(faults=["drop:tool_completed"])
    trace = _runs(srv.url, tmp_path / "drop.jsonl")
    assert _names(trace) == [n for n in RUN if n != "tool_completed"]
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("drop tool_completed#1", run_id, conn)]


def test_duplicate_sends_the_same_bytes_twice(make_server, tmp_path, fault_log):
    srv = make_server(faults=["duplicate:agent_thinking#2"])
    trace = _runs(srv.url, tmp_path / "dup.jsonl")
    assert _names(trace) == [*RUN[:3], "agent_thinking", *RUN[3:]]
    second, copy = _received(trace)[3:5]
    assert (
        second["data"] == copy["data"] and json.loads(copy["data"])["payload"]["step_number"] == 2
    )
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("duplicate agent_thinking#2", run_id, conn)]


def test_reorder_swaps_two_events(make_server, tmp_path, fault_log):
    srv = make_server(faults=["reorder:tool_executing,tool_completed"])
    trace = _runs(srv.url, tmp_path / "reorder.jsonl")
    assert _names(trace) == [*RUN[:3], "tool_completed", "tool_executing", "agent_completed"]
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("reorder tool_executing#1,tool_completed#1", run_id, conn)]


def test_stall_delays_the_event(make_server, tmp_path, fault_log):
    srv = make_server(faults=["stall:agent_thinking#2:0.4"])
    trace = _runs(srv.url, tmp_path / "stall.jsonl")
    assert _names(trace) == RUN
    frames = _received(trace)
    gaps = [(b["t_mono_ns"] - a["t_mono_ns"]) / 1e9 for a, b in itertools.pairwise(frames[1:])]
    # The stalled gap (before the second thinking) is 0.4 s on top of a 5 ms step.
    assert 0.4 <= gaps[1] < 0.4 + t(0.2)
    assert max(gaps[:1] + gaps[2:]) < t(0.2)
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("stall agent_thinking#2 0.4s", run_id, conn)]


def test_tcp_close_drops_the_connection_without_a_close_frame(make_server, tmp_path, fault_log):
    srv = make_server(faults=["tcp-close:after=tool_executing"])
    trace = _runs(srv.url, tmp_path / "tcp.jsonl")
    assert _names(trace) == RUN[:4]
    close = _close(trace)
    assert close["code"] == 1006 and close["received_close_frame"] is False
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("tcp-close after=tool_executing#1", run_id, conn)]


def test_close_1011_mid_run(make_server, tmp_path, fault_log):
    srv = make_server(faults=["close-1011:after=agent_thinking"])
    trace = _runs(srv.url, tmp_path / "1011.jsonl")
    assert _names(trace) == RUN[:2]
    close = _close(trace)
    assert close["code"] == 1011 and close["received_close_frame"] is True
    assert close["initiated_by"] == "server"
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("close-1011 after=agent_thinking#1", run_id, conn)]


def test_malformed_frame_is_recorded_raw_with_parse_error(make_server, tmp_path, fault_log):
    srv = make_server(faults=["malformed:after=agent_started"])
    trace = _runs(srv.url, tmp_path / "malformed.jsonl")
    assert _names(trace) == [*RUN[:1], None, *RUN[1:]]
    bad = _received(trace)[2]
    assert bad["opcode"] == "text" and bad["data"] == MALFORMED_FRAME
    assert bad["parse_error"].startswith("not JSON")
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("malformed after=agent_started#1", run_id, conn)]


def test_binary_frame_is_recorded_base64(make_server, tmp_path, fault_log):
    srv = make_server(faults=["binary:after=tool_completed"])
    trace = _runs(srv.url, tmp_path / "binary.jsonl")
    assert _names(trace) == [*RUN[:5], None, *RUN[5:]]
    frame = _received(trace)[6]
    assert frame["opcode"] == "binary" and frame["size"] == len(BINARY_FRAME)
    assert base64.b64decode(frame["data"]) == BINARY_FRAME
    assert "binary frame" in frame["parse_error"]
    (run_id,), conn = _ids(trace)
    assert fault_log() == [("binary after=tool_completed#1", run_id, conn)]


@pytest.mark.parametrize(("spec", "size"), [("", 1024 * 1024 + 1), (":bytes=2000000", 2000000)])
def test_oversize_frame_exceeds_the_advertised_limit(make_server, tmp_path, fault_log, spec, size):
    srv = make_server(faults=[f"oversize:after=agent_thinking#2{spec}"])
    trace = _runs(srv.url, tmp_path / "oversize.jsonl")
    assert _names(trace) == [*RUN[:3], "oversize_frame", *RUN[3:]]
    frame = _received(trace)[4]
    assert frame["size"] == size and frame["opcode"] == "text"
    (run_id,), conn = _ids(trace)
    assert fault_log() == [(f"oversize after=agent_thinking#2 bytes={size}", run_id, conn)]


def test_faults_compose_in_one_run(make_server, tmp_path, fault_log):
    srv = make_server(faults=["drop:agent_thinking#1", "duplicate:tool_completed"])
    trace = _runs(srv.url, tmp_path / "both.jsonl")
    assert _names(trace) == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "tool_completed",
        "agent_completed",
    ]
    assert json.loads(_received(trace)[2]["data"])["payload"]["step_number"] == 2
    assert [what for what, _, _ in fault_log()] == [
        "drop agent_thinking#1",
        "duplicate tool_completed#1",
    ]


def test_run_scope_hits_only_that_run(make_server, tmp_path, fault_log):
    srv = make_server(faults=["drop:agent_thinking@run=2"])
    trace = _runs(srv.url, tmp_path / "run2.jsonl", texts=("first", "second", "third"))
    first, second, third = _ids(trace)[0]
    names_by_run = {
        run_id: [f["event"] for f in _received(trace) if f.get("run_id") == run_id]
        for run_id in (first, second, third)
    }
    assert names_by_run[first] == RUN and names_by_run[third] == RUN
    assert names_by_run[second] == [n for i, n in enumerate(RUN) if i != 1]
    assert [(what, run_id) for what, run_id, _ in fault_log()] == [
        ("drop agent_thinking#1", second)
    ]


def test_connection_scope_hits_only_that_connection(make_server, tmp_path, fault_log):
    srv = make_server(faults=["close-1011:after=agent_started@conn=2"])
    clean = _runs(srv.url, tmp_path / "conn1.jsonl")
    cut = _runs(srv.url, tmp_path / "conn2.jsonl")
    assert _names(clean) == RUN and _close(clean)["code"] == 1000
    assert _names(cut) == RUN[:1] and _close(cut)["code"] == 1011
    assert [(what, conn) for what, _, conn in fault_log()] == [
        ("close-1011 after=agent_started#1", _ids(cut)[1])
    ]


def _probability_pattern(make_server, path, seed):
    srv = make_server(faults=["drop:tool_completed@p=0.5"], seed=seed)
    trace = _runs(srv.url, path, texts=[f"run {i}" for i in range(8)])
    run_ids = _ids(trace)[0]
    received = _received(trace)
    return run_ids, [
        not any(f.get("run_id") == run_id and f["event"] == "tool_completed" for f in received)
        for run_id in run_ids
    ]


def test_probability_is_seeded_and_logged_run_by_run(make_server, tmp_path, fault_log):
    run_ids, dropped = _probability_pattern(make_server, tmp_path / "p1.jsonl", seed=11)
    assert len(run_ids) == 8 and 0 < sum(dropped) < 8
    logged = {run_id for what, run_id, _ in fault_log() if what == "drop tool_completed#1"}
    assert logged == {run_id for run_id, gone in zip(run_ids, dropped, strict=True) if gone}
    _, again = _probability_pattern(make_server, tmp_path / "p2.jsonl", seed=11)
    _, other = _probability_pattern(make_server, tmp_path / "p3.jsonl", seed=12)
    assert again == dropped and other != dropped


def test_a_fault_on_an_event_the_run_lacks_changes_nothing(make_server, tmp_path, fault_log):
    srv = make_server(
        faults=["drop:agent_thinking#3", "tcp-close:after=agent_error"],
        scenario=Scenario(first_delay=0.005, step_delay=0.005),
    )
    trace = _runs(srv.url, tmp_path / "none.jsonl")
    assert _names(trace) == RUN and fault_log() == []


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("explode:agent_started", "unknown kind 'explode'"),
        ("drop:agent_thinkng", "unknown event 'agent_thinkng'"),
        ("drop:agent_thinking#0", "whole number >= 1"),
        ("drop", "needs exactly one event"),
        ("reorder:tool_executing", "reorder needs two events"),
        ("stall:agent_thinking", "stall needs an event and seconds"),
        ("stall:agent_thinking:soon", "seconds= must be a number"),
        ("tcp-close:tool_executing", "needs after=EVENT"),
        ("binary:after=agent_started:bytes=10", "binary takes no bytes="),
        ("drop:tool_completed@p=1.5", "p= must be between 0 and 1"),
        ("drop:tool_completed@run=2,run=3", "run= given twice"),
        ("drop:tool_completed@2", "scope '2' is not run=N, conn=N or p=P"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)) as info:
        parse_fault(spec)
    assert spec in str(info.value) and "KIND:TARGET" in str(info.value)


def test_spec_forms_parse_to_the_same_fault():
    assert parse_fault("stall:agent_thinking:2.5") == parse_fault(
        "stall:agent_thinking#1:seconds=2.5"
    )
    scoped = parse_fault("oversize:after=agent_started:bytes=2000000@conn=3,p=0.5")
    assert (scoped.size, scoped.connection, scoped.probability) == (2000000, 3, 0.5)
    assert parse_fault("drop:tool_completed@run=2@p=0.25").run == 2


def test_the_docstring_and_serve_help_show_the_same_grammar():
    squash = " ".join
    assert squash(FAULT_GRAMMAR.split()) in squash(faults_module.__doc__.split())
