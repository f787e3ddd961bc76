"""netra_ws.expect on hand-built frame lists: every check passes when it should and fails,
with the right explanation and evidence, when it must. Pure: no server, no socket."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest

from netra_ws import events
from netra_ws.analysis import assign_runs
from netra_ws.events import AGENT_EVENTS, RUN_TRIGGER_TYPES
from netra_ws.expect import (
    FAILED,
    INCONCLUSIVE,
    PASSED,
    CheckResult,
    Checks,
    Profile,
    available_profiles,
    check_connection,
    check_no_reply,
    check_run,
    load_profile,
    overall_status,
)
from netra_ws.trace import Trace, frame_record

# Canonical bridge payloads (PROTOCOL.md §4), complete for the netra-bridge profile.
PAYLOADS = {
    "agent_started": {"status": "started", "context": {}, "message": "started"},
    "agent_thinking": {"reasoning": "thinking", "step_number": 1, "status": "thinking"},
    "tool_executing": {"tool_name": "cost_analyzer", "parameters": {}, "status": "executing"},
    "tool_completed": {
        "tool_name": "cost_analyzer",
        "result": {"total": 1},
        "execution_time_ms": 20,
        "status": "completed",
    },
    "agent_completed": {"status": "completed", "result": {"summary": "done"}},
    "agent_error": {"status": "error", "error_message": "boom", "error_context": {}},
}
RUN = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]


def bridge(event: str, run_id: str = "run_1", **payload) -> dict:
    """A bridge-envelope agent event as the server sends it."""
    return {
        "type": event,
        "run_id": run_id,
        "user_id": "alice",
        "agent_name": "supervisor_agent",
        "timestamp": "2025-09-01T12:00:00+00:00",
        "payload": {**PAYLOADS.get(event, {}), **payload},
    }


def welcome(user_id: str = "alice...") -> dict:
    return {
        "type": "connection_established",
        "data": {"mode": "main", "user_id": user_id, "connection_id": "main_1"},
        "timestamp": 1756728000.0,
    }


def user_message(form: str = "flat") -> dict:
    if form == "payload":
        return {"type": "user_message", "payload": {"content": "hi"}}
    return {"type": "user_message", "message": "hi"}


def frames(*items, step: float = 0.01) -> list[dict]:
    """Trace records from (direction, object) pairs or bare received objects, ``step`` s apart.

    A (direction, object, t_seconds) triple sets the time explicitly.
    """
    records, t = [], 0.0
    for seq, item in enumerate(items, 1):
        if isinstance(item, dict):
            item = ("receive", item)
        direction, obj, *when = item
        t = when[0] if when else t + step
        data = obj if isinstance(obj, str) else json.dumps(obj)
        ns = int(t * 1e9)
        records.append(frame_record(seq, direction, data, t_wall_ns=ns, t_mono_ns=ns))
    return records


def good_run(run_id: str = "run_1", form: str = "flat") -> list:
    return [("send", user_message(form))] + [bridge(e, run_id) for e in RUN]


# --- a complete run passes -------------------------------------------------------------------


def test_a_complete_bridge_run_passes_every_check():
    checks = check_run(frames(welcome(), *good_run()))
    assert checks.status == PASSED, checks.explain()
    assert checks.names == [
        "agent events",
        "frames parse",
        "required events",
        "order",
        "tool pairing",
        *(f"fields: {e}" for e in RUN),
        "time to first event",
        "largest gap",
    ]
    assert "agent_started → agent_thinking → tool_executing" in checks["order"].explanation


def test_two_runs_on_one_connection_are_checked_separately():
    records = frames(welcome(), *good_run("run_a"), *good_run("run_b", form="payload"))
    checks = check_run(records)
    assert checks.status == PASSED, checks.explain()
    assert "(flat form)" in checks["agent events"].explanation
    assert "(payload form)" in checks["agent events"].explanation


def test_interleaved_runs_are_told_apart_by_run_id():
    a = [bridge(e, "run_a") for e in RUN]
    b = [bridge(e, "run_b") for e in RUN]
    interleaved = [x for pair in zip(a, b, strict=True) for x in pair]
    checks = check_run(frames(("send", user_message()), ("send", user_message()), *interleaved))
    assert checks["order"].status == PASSED, checks["order"].explanation
    assert checks["tool pairing"].status == PASSED


# --- frames parse: a malformed frame fails, even when the run around it is complete ---------


def test_a_malformed_frame_in_a_complete_run_fails_frames_parse():
    events = good_run()
    bad_text, array = ("receive", "{not json"), ("receive", "[1, 2]")
    records = frames(welcome(), *events[:3], bad_text, *events[3:], array)
    binary = frame_record(len(records) + 1, "receive", b"\x00\x01", t_wall_ns=9, t_mono_ns=9)
    checks = check_run([*records, binary])
    parsed = checks["frames parse"]
    assert parsed.status == FAILED
    assert parsed.evidence == (5, 9, 10)
    assert "3 of 9 received frames" in parsed.explanation
    assert "#5: not JSON" in parsed.explanation
    assert "#9: JSON array, not an object" in parsed.explanation
    assert "#10: binary frame (2 bytes)" in parsed.explanation
    # The run itself is fine: only this check says what is wrong, and the verdict fails.
    assert [c.name for c in checks.failures] == ["frames parse"]
    assert checks.status == FAILED


def test_frames_parse_counts_only_what_the_server_sent():
    records = frames(welcome(), ("send", "{typo"), *good_run())
    assert check_run(records)["frames parse"].status == PASSED
    no_reply = check_run(frames(("send", user_message())))
    assert no_reply["frames parse"].status == INCONCLUSIVE


# --- agent events: none is a failure, never a pass -------------------------------------------


def test_no_agent_events_after_user_message_fails_with_likely_causes():
    checks = check_run(frames(welcome("demo-use..."), ("send", user_message())))
    arrived = checks["agent events"]
    assert arrived.status == FAILED
    assert arrived.evidence == (2,)
    text = arrived.explanation
    assert "No agent events arrived after user_message #2 (flat form)" in text
    assert "nothing at all came back" in text
    assert "says nothing about a real user" in text
    assert "demo user" in text and "connection_established #1 says user_id 'demo-use...'" in text
    assert "not a pass" in text
    # The welcome frame parses; everything else had nothing to judge: inconclusive.
    assert checks["frames parse"].status == PASSED
    assert {c.status for c in checks[2:]} == {INCONCLUSIVE}
    assert checks.status == FAILED


def test_no_agent_events_for_the_tokens_own_user_is_not_blamed_on_authentication():
    """Accepted as a real user and still nothing: the check says the input was swallowed and
    that authentication is not the cause (PROTOCOL.md §8), never "connect with a token"."""
    checks = check_run(frames(welcome("alice-12..."), ("send", user_message())))
    text = checks["agent events"].explanation
    assert "the server swallowed the input" in text
    assert "accepted the connection as 'alice-12...'" in text
    assert "authentication is not the cause" in text
    assert "connect with a token" not in text and "demo user" not in text


def test_events_the_client_sent_are_never_validated():
    """The #937 mistake: the client sends output events; a checker must not judge those."""
    sent = [("send", bridge(e)) for e in RUN]
    checks = check_run(frames(welcome(), *sent))
    assert checks["agent events"].status == FAILED
    assert "no user_message was sent" in checks["agent events"].explanation
    assert checks["fields: agent_started"].status == INCONCLUSIVE
    # Only the welcome frame was received, and it parses; nothing else may pass.
    assert "All 1 received frames" in checks["frames parse"].explanation
    assert not any(c.passed for c in checks if c.name != "frames parse")


def test_an_ack_or_an_error_reply_is_named_in_the_explanation():
    ack = {"type": "ack", "received_type": "user_message", "status": "acknowledged"}
    checks = check_run(frames(welcome(), ("send", user_message()), ack))
    assert "ack #3" in checks["agent events"].explanation
    assert "unknown input type" in checks["agent events"].explanation

    error = {
        "type": "error_message",
        "error_code": "AGENT_REQUEST_ERROR",
        "error_message": "user_message needs non-empty text",
    }
    checks = check_run(frames(welcome(), ("send", user_message()), error))
    text = checks["agent events"].explanation
    assert "error_message #3 AGENT_REQUEST_ERROR: user_message needs non-empty text" in text


def test_a_second_user_message_without_a_run_fails_even_if_the_first_had_one():
    records = frames(welcome(), *good_run(), ("send", user_message("payload")))
    arrived = check_run(records)["agent events"]
    assert arrived.status == FAILED
    assert arrived.evidence == (8,)
    assert "user_message #8 (payload form)" in arrived.explanation
    assert "user_message #2 (flat form) did get agent events" in arrived.explanation


def test_relaxed_user_is_named_as_a_cause():
    checks = check_run(frames(welcome("relaxed_..."), ("send", user_message())))
    assert "relaxed auth level" in checks["agent events"].explanation


# --- required events and order ---------------------------------------------------------------


def test_missing_required_events_are_named():
    records = frames(("send", user_message()), bridge("agent_started"), bridge("agent_completed"))
    required = check_run(records)["required events"]
    assert required.status == FAILED
    assert "agent_thinking, tool_executing, tool_completed missing from the run" in (
        required.explanation
    )
    assert required.evidence == (3,)


def test_a_run_ending_in_agent_error_fails_required_events_but_not_order():
    records = frames(
        ("send", user_message()),
        bridge("agent_started"),
        bridge("agent_thinking"),
        bridge("agent_error", error_message="LLM quota exceeded"),
    )
    checks = check_run(records)
    assert checks["order"].status == PASSED
    assert "the run ended with agent_error #4: LLM quota exceeded" in (
        checks["required events"].explanation
    )
    assert checks["fields: agent_error"].status == PASSED


@pytest.mark.parametrize(
    ("events", "message", "evidence"),
    [
        (
            ["agent_thinking", *RUN],
            "the run begins with agent_thinking #2, not agent_started",
            (2,),
        ),
        (
            [
                "agent_started",
                "tool_executing",
                "tool_completed",
                "agent_thinking",
                "agent_completed",
            ],
            "agent_thinking #5 after the tool calls began",
            (5,),
        ),
        (
            RUN[:-1],
            "the run did not end: no agent_completed or agent_error after tool_completed #5",
            (5,),
        ),
        (
            [*RUN, "agent_thinking"],
            "agent_thinking #7 after the run ended with agent_completed #6",
            (6, 7),
        ),
        (["agent_started", *RUN], "a second agent_started, agent_started #3, inside the run", (3,)),
        (
            ["agent_started", "tool_completed", "agent_completed"],
            "tool_completed #3 answers no tool_executing",
            (3,),
        ),
        (
            ["agent_started", "tool_executing", "agent_completed"],
            "agent_completed #4 while tool_executing #3 had no tool_completed yet",
            (3, 4),
        ),
    ],
    ids=["no-start", "thinking-after-tools", "no-end", "after-end", "two-starts", "orphan", "open"],
)
def test_order_violations_name_the_event_and_frame(events, message, evidence):
    records = frames(("send", user_message()), *(bridge(e) for e in events))
    order = check_run(records)["order"]
    assert order.status == FAILED
    assert message in order.explanation
    assert order.evidence == evidence


def test_repeated_thinking_and_tool_calls_are_in_order():
    events = [
        "agent_started",
        "agent_thinking",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    order = check_run(frames(("send", user_message()), *(bridge(e) for e in events)))["order"]
    assert order.status == PASSED
    assert "agent_thinking ×2" in order.explanation


# --- tool pairing ----------------------------------------------------------------------------


def test_a_tool_completed_of_another_tool_fails_pairing():
    records = frames(
        ("send", user_message()),
        bridge("agent_started"),
        bridge("tool_executing", tool_name="search"),
        bridge("tool_completed", tool_name="cost_analyzer"),
        bridge("agent_completed"),
    )
    pairing = check_run(records)["tool pairing"]
    assert pairing.status == FAILED
    assert "tool_completed 'cost_analyzer' #4 answers no tool_executing of 'cost_analyzer'" in (
        pairing.explanation
    )
    assert "still open: 'search' tool_executing #3" in pairing.explanation
    assert "tool_executing 'search' #3 was never answered" in pairing.explanation
    assert set(pairing.evidence) == {3, 4}


def test_a_tool_event_without_tool_name_cannot_be_paired():
    executing = bridge("tool_executing")
    del executing["payload"]["tool_name"]
    records = frames(("send", user_message()), bridge("agent_started"), executing)
    pairing = check_run(records)["tool pairing"]
    assert pairing.status == FAILED
    assert "tool_executing #3 has no tool_name" in pairing.explanation


def test_pairing_passes_for_parallel_calls_of_the_same_tool():
    records = frames(
        ("send", user_message()),
        bridge("agent_started"),
        bridge("tool_executing"),
        bridge("tool_completed"),
        bridge("tool_executing", tool_name="search"),
        bridge("tool_completed", tool_name="search"),
        bridge("agent_completed"),
    )
    pairing = check_run(records)["tool pairing"]
    assert pairing.status == PASSED and "2 tool_executing" in pairing.explanation


# --- required fields by profile --------------------------------------------------------------


def test_netra_bridge_names_the_missing_field_and_the_frame():
    thinking = bridge("agent_thinking")
    del thinking["payload"]["reasoning"]
    records = frames(
        ("send", user_message()), *[thinking if e == "agent_thinking" else bridge(e) for e in RUN]
    )
    fields = check_run(records)["fields: agent_thinking"]
    assert fields.status == FAILED
    assert fields.missing == ("reasoning",)
    assert fields.evidence == (3,)
    assert "agent_thinking #3: reasoning missing" in fields.explanation


def test_netra_suite_lists_every_mismatch_with_the_bridge():
    checks = check_run(frames(("send", user_message()), *(bridge(e) for e in RUN)), "netra-suite")
    started = checks["fields: agent_started"]
    assert started.status == FAILED
    assert started.missing == ("user_id", "thread_id", "timestamp")
    assert "user_id not in payload but at the top level" in started.explanation
    assert "thread_id missing" in started.explanation
    completed_tool = checks["fields: tool_completed"].explanation
    assert "results missing (payload has result instead)" in completed_tool
    assert "duration missing (payload has execution_time_ms instead)" in completed_tool
    assert "final_response missing (payload has result instead)" in (
        checks["fields: agent_completed"].explanation
    )
    assert "never from data" in completed_tool
    assert checks["fields: agent_completed"].evidence == (6,)


def suite_event(event: str) -> dict:
    """The flat shape the backend suite demanded (the suite-contract dialect)."""
    renamed = {"result": "results", "execution_time_ms": "duration"}
    fields = {renamed.get(k, k): v for k, v in PAYLOADS[event].items()}
    if event == "agent_completed":
        fields["final_response"] = "done"
    return {
        "type": event,
        "run_id": "run_1",
        "thread_id": "t_1",
        "user_id": "alice",
        "timestamp": "2025-09-01T12:00:00+00:00",
        **fields,
    }


def test_suite_shaped_events_pass_netra_suite_and_fail_netra_bridge():
    records = frames(("send", user_message()), *(suite_event(e) for e in RUN))
    assert check_run(records, "netra-suite").status == PASSED
    bridge_checks = check_run(records, "netra-bridge")
    tool = bridge_checks["fields: tool_completed"]
    assert tool.status == FAILED and tool.missing == ("result", "execution_time_ms")
    assert "result missing (the top level has results instead)" in tool.explanation
    assert "execution_time_ms missing (the top level has duration instead)" in tool.explanation


def manager(event: str) -> dict:
    data = {"run_id": "run_1", "thread_id": "t_1", "user_id": "alice", **PAYLOADS[event]}
    return {
        "type": event,
        "data": data,
        "timestamp": "2025-09-01T12:00:00+00:00",
        "critical": True,
        "attempt": None,
    }


def wrapped(event: str) -> dict:
    outer = {"agent_started": "system_message", "agent_completed": "agent_response_complete"}
    data = {
        "type": event,
        "event": event,
        "run_id": "run_1",
        "user_id": "alice",
        "payload": PAYLOADS[event],
    }
    return {
        "type": outer.get(event, "agent_progress"),
        "data": data,
        "timestamp": "2025-09-01T12:00:00+00:00",
    }


@pytest.mark.parametrize("shape", [manager, wrapped], ids=["manager", "wrapped"])
def test_netra_bridge_reads_fields_wherever_the_envelope_put_them(shape):
    records = frames(("send", user_message()), *(shape(e) for e in RUN))
    assert check_run(records, "netra-bridge").status == PASSED
    # The suite's literal rule never reads data: the same frames fail it, saying where.
    suite = check_run(records, "netra-suite")
    assert "reasoning not at the top level but in data" in (
        suite["fields: agent_thinking"].explanation
    )


def test_a_required_event_that_never_came_leaves_its_fields_inconclusive():
    records = frames(("send", user_message()), bridge("agent_started"), bridge("agent_completed"))
    checks = check_run(records)
    assert checks["fields: tool_completed"].status == INCONCLUSIVE
    assert "nothing was validated in its place" in checks["fields: tool_completed"].explanation
    assert "fields: agent_error" not in checks.names  # optional and absent: not listed


# --- timing budgets --------------------------------------------------------------------------


def test_a_slow_first_event_breaks_the_budget():
    records = frames(
        ("send", user_message(), 0.0),
        ("receive", bridge("agent_started"), 31.5),
        *(("receive", bridge(e), 31.6 + i / 10) for i, e in enumerate(RUN[1:])),
    )
    first = check_run(records)["time to first event"]
    assert first.status == FAILED
    assert "agent_started #2 31.500 s after user_message #1" in first.explanation
    assert "(budget 30 s)" in first.explanation
    assert first.evidence == (1, 2)


def test_the_largest_gap_is_named_with_both_frames():
    records = frames(
        ("send", user_message(), 0.0),
        ("receive", bridge("agent_started"), 0.1),
        ("receive", bridge("agent_thinking"), 0.2),
        ("receive", bridge("tool_executing"), 2.7),
        ("receive", bridge("tool_completed"), 2.8),
        ("receive", bridge("agent_completed"), 2.9),
    )
    gap = check_run(records, budgets={"max_gap_s": 0.1})["largest gap"]
    assert gap.status == FAILED
    assert "largest gap 2.500 s, between agent_thinking #3 and tool_executing #4" in (
        gap.explanation
    )
    assert gap.evidence == (3, 4)
    assert check_run(records, budgets={"max_gap_s": 3})["largest gap"].status == PASSED


def test_total_time_budget_and_unended_runs():
    records = frames(
        ("send", user_message(), 0.0), *(("receive", bridge(e), 1.0 + i) for i, e in enumerate(RUN))
    )
    total = check_run(records, "netra-suite", budgets={"total_s": 2})["total time"]
    assert total.status == FAILED
    assert "5.000 s from user_message #1 to agent_completed #6" in total.explanation
    unended = records[:-1]
    assert check_run(unended, budgets={"total_s": 10})["total time"].status == INCONCLUSIVE
    over = check_run(unended, budgets={"total_s": 2})["total time"]
    assert over.status == FAILED and "unended" in over.explanation


def test_time_to_first_event_needs_the_trigger():
    records = frames(*(bridge(e) for e in RUN))
    first = check_run(records)["time to first event"]
    assert first.status == INCONCLUSIVE
    assert "no run trigger was sent" in first.explanation


def test_budget_overrides_and_removal():
    records = frames(("send", user_message()), *(bridge(e) for e in RUN))
    names = check_run(records, budgets={"first_event_s": None, "total_s": 5}).names
    assert "time to first event" not in names and "total time" in names
    with pytest.raises(ValueError, match="unknown budget 'gap'"):
        check_run(records, budgets={"gap": 1})


# --- profiles are data -----------------------------------------------------------------------


def test_builtin_profiles_load_by_name():
    assert {"netra-bridge", "netra-suite"} <= set(available_profiles())
    suite = load_profile("netra-suite")
    assert suite.source == "payload-or-top"
    assert suite.fields["tool_completed"] == (
        "type",
        "tool_name",
        "results",
        "duration",
        "timestamp",
    )
    assert load_profile(suite) is suite
    assert Profile.from_dict(suite.to_dict()) == suite


def test_a_new_profile_needs_no_code(tmp_path):
    custom = {
        "name": "needs-cost",
        "fields": {"tool_completed": ["cost_usd"]},
        "budgets": {"max_gap_s": 60},
    }
    path = tmp_path / "needs-cost.json"
    path.write_text(json.dumps(custom))
    records = frames(("send", user_message()), *(bridge(e) for e in RUN))
    for profile in (custom, str(path), path):
        checks = check_run(records, profile)
        assert checks["fields: tool_completed"].status == FAILED
        assert "cost_usd missing" in checks["fields: tool_completed"].explanation
        assert "required events" not in checks.names  # the profile requires none


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "source": "data"}, "source must be one of"),
        ({"name": "x", "fields": {"agent_started": "type"}}, "must be a list of names"),
        ({"name": "x", "budgets": {"first": 1}}, "unknown budget 'first'"),
        ({"name": "x", "budgets": {"total_s": -1}}, "seconds ≥ 0"),
        ({"name": "x", "colour": "red"}, "unknown profile keys"),
        ({"fields": {}}, "non-empty string 'name'"),
    ],
)
def test_bad_profiles_are_refused_with_the_reason(data, message):
    with pytest.raises(ValueError, match=message):
        load_profile(data)


def test_unknown_profile_names_the_builtins():
    with pytest.raises(ValueError, match="netra-bridge, netra-suite"):
        load_profile("netra-bridgee")


def test_profiles_ship_as_package_data():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    data = tomllib.loads((root / "pyproject.toml").read_text())
    assert "profiles/*.json" in data["tool"]["setuptools"]["package-data"]["netra_ws"]


# --- connection and silence ------------------------------------------------------------------


def test_check_connection_passes_on_the_welcome_frame():
    check = check_connection(frames(welcome()))
    assert check.status == PASSED and check.evidence == (1,)
    assert "user_id 'alice...'" in check.explanation


def test_check_connection_names_the_first_frame_and_the_close():
    """The check says what came first; why (refused, failed) is verdicts.connection_end's."""
    auth_failed = {"type": "error_message", "error_code": "AUTH_FAILED", "error_message": "no"}
    records = [*frames(auth_failed), {"kind": "close", "code": 1008, "initiated_by": "server"}]
    check = check_connection(records)
    assert check.status == FAILED
    assert check.explanation == (
        "the first frame received is error_message #1, not connection_established; then the "
        "connection closed with 1008."
    )

    other = check_connection(frames({"type": "heartbeat", "data": {}}))
    assert other.status == FAILED
    assert "the first frame received is heartbeat #1, not connection_established" in (
        other.explanation
    )
    assert check_connection([]).status == FAILED


def test_check_connection_reports_a_refused_handshake():
    error = {"kind": "error", "stage": "connect", "http_status": 401, "message": "rejected"}
    check = check_connection([error])
    assert check.status == FAILED and "could not connect (HTTP 401): rejected" in check.explanation


def test_check_no_reply_passes_on_silence_and_ignores_the_welcome():
    # The #937 trap: the welcome arrives after the send; it is not a reply.
    records = [
        *frames(("send", bridge("agent_started")), welcome(), {"type": "heartbeat", "data": {}}),
        {"kind": "close", "code": 1000, "initiated_by": "client", "t_mono_ns": 10**10},
    ]
    checks = check_no_reply(records)
    assert [c.status for c in checks] == [PASSED]
    assert checks[0].name == "no reply: agent_started"


def test_check_no_reply_fails_on_an_ack_an_event_or_a_server_close():
    ack = {"type": "ack", "received_type": "agent_started", "status": "acknowledged"}
    records = frames(
        ("send", bridge("agent_started")),
        ack,
        ("send", bridge("tool_executing")),
        bridge("agent_started"),
        ("send", bridge("tool_completed")),
    )
    records.append(
        {
            "kind": "close",
            "code": 1003,
            "reason": "bad",
            "initiated_by": "server",
            "t_mono_ns": records[-1]["t_mono_ns"] + 1,
        }
    )
    checks = check_no_reply(records)
    assert [c.status for c in checks] == [FAILED] * 3
    assert "agent_started sent as input (#1) got a reply: ack #2" in checks[0].explanation
    assert "handled as an unknown input type" in checks[0].explanation
    assert checks[0].evidence == (1, 2)
    assert "got a reply: agent_started #4" in checks[1].explanation
    assert "the connection closed with 1003 bad" in checks[2].explanation


# --- inputs and tables -----------------------------------------------------------------------


def test_accepts_a_trace_its_dataframe_and_records():
    records = frames(welcome(), *good_run())
    trace = Trace({"kind": "meta"}, records)
    for source in (records, trace, trace.to_frame()):
        assert check_run(source).status == PASSED
    with pytest.raises(TypeError, match="expected a Trace"):
        check_run("not frames")


def test_checks_table_and_lookup():
    checks = check_run(frames(("send", user_message()), *(bridge(e) for e in RUN)), "netra-suite")
    df = checks.to_frame()
    assert list(df.columns) == ["check", "status", "event", "missing", "evidence", "explanation"]
    assert df["status"].dtype == "string"
    row = df[df["check"] == "fields: tool_completed"].iloc[0]
    assert row["missing"] == "results, duration, timestamp" and row["evidence"] == [5]
    assert isinstance(checks["order"], CheckResult) and isinstance(checks[0], CheckResult)
    with pytest.raises(KeyError, match="no check named 'nope'"):
        checks["nope"]
    assert checks.explain().startswith("FAILED")
    assert "<table" in checks._repr_html_()
    assert isinstance(pd.DataFrame(checks.to_frame()), pd.DataFrame)


def test_overall_status():
    assert overall_status([]) == INCONCLUSIVE
    assert overall_status([PASSED, INCONCLUSIVE]) == INCONCLUSIVE
    assert overall_status([PASSED, FAILED, INCONCLUSIVE]) == FAILED
    assert overall_status([PASSED, PASSED]) == PASSED
    assert Checks().status == INCONCLUSIVE


def test_a_run_cut_by_a_server_close_says_so():
    records = frames(("send", user_message()), *(bridge(e) for e in RUN[:3]))
    records.append(
        {"kind": "close", "code": 1011, "reason": "internal error", "initiated_by": "server"}
    )
    order = check_run(records)["order"]
    assert order.status == FAILED
    assert (
        "no agent_completed or agent_error after tool_executing #4; then the connection "
        "closed with 1011 internal error"
    ) in order.explanation
    # The client's own close at the end of a session is not news.
    records[-1] = {"kind": "close", "code": 1000, "initiated_by": "client"}
    assert "closed" not in check_run(records)["order"].explanation


# --- runs: the checks use analysis's definition (issue #13) ----------------------------------
# Each case is a place where expect and analysis.assign_runs once disagreed on what a run is.
# ``runs`` is the one answer: per run, the trigger's seq (None: a run without one) and the
# seqs of its received agent events in receipt order. ``verdicts`` are what check_run says.


def run_message(run_id: str | None = None) -> dict:
    return {**user_message(), "run_id": run_id} if run_id else user_message()


def analysis_runs(table: pd.DataFrame) -> list[tuple[int | None, list[int]]]:
    """The runs of assign_runs, in the shape of ``RUN_CASES``' expectations."""
    labelled = assign_runs(table).sort_values(["t_mono_ns", "seq"], kind="stable")
    out = []
    for _, run in labelled.dropna(subset=["run"]).groupby("run", sort=False):
        trigger = run[(run["dir"] == "send") & run["event"].isin(RUN_TRIGGER_TYPES)]
        events = run[(run["dir"] == "receive") & run["event"].isin(AGENT_EVENTS)]
        out.append((int(trigger["seq"].iloc[0]) if len(trigger) else None, events["seq"].tolist()))
    return sorted(out, key=lambda r: r[1][0] if r[1] else r[0])


def two_traces() -> pd.DataFrame:
    """Two traces (one run each, same run_id, same seqs) in one table, as load_traces makes."""
    tables = [
        Trace({"kind": "meta", "session": name}, frames(*good_run())).to_frame()
        for name in ("a", "b")
    ]
    return pd.concat(
        [t.assign(trace=f"{n}.jsonl") for n, t in zip("ab", tables, strict=True)],
        ignore_index=True,
    )


RUN_CASES = {
    # Agent events without run_id and no trigger (a Collected holds only received frames):
    # analysis put them in no run; they are one run without a trigger.
    "no-trigger-no-run-id": (
        frames(*(bridge(e, None) for e in RUN)),
        [(None, [1, 2, 3, 4, 5])],
        {"agent events": PASSED, "order": PASSED},
    ),
    # The client sends its run_id with each user_message (the server echoes it): expect
    # merged the two runs into one and failed its order.
    "client-reuses-its-run-id": (
        frames(
            ("send", run_message("mine")),
            *(bridge(e, "mine") for e in RUN),
            ("send", run_message("mine")),
            *(bridge(e, "mine") for e in RUN),
        ),
        [(1, [2, 3, 4, 5, 6]), (7, [8, 9, 10, 11, 12])],
        {"agent events": PASSED, "order": PASSED},
    ),
    # The first event carries no run_id, the others do: expect made two runs of it.
    "run-id-from-the-second-event": (
        frames(("send", user_message()), bridge("agent_started", None), *good_run()[2:]),
        [(1, [2, 3, 4, 5, 6])],
        {"agent events": PASSED, "order": PASSED},
    ),
    # A second run_id after one trigger is a run of its own, with no trigger to time it
    # from: expect timed both from the trigger the first run_id answered.
    "second-run-id-after-one-trigger": (
        frames(
            ("send", user_message()),
            bridge("agent_started", "A"),
            bridge("agent_started", "X"),
            bridge("agent_completed", "A"),
            bridge("agent_completed", "X"),
        ),
        [(1, [2, 4]), (None, [3, 5])],
        {"agent events": PASSED, "order": PASSED, "time to first event": INCONCLUSIVE},
    ),
    # Receipt order is t_mono_ns, then seq: expect went by seq alone.
    "receipt-order": (
        frames(
            ("send", user_message(), 0.0),
            ("receive", bridge("agent_thinking"), 0.3),
            ("receive", bridge("agent_started"), 0.2),
            ("receive", bridge("agent_completed"), 0.4),
        ),
        [(1, [3, 2, 4])],
        {"agent events": PASSED, "order": PASSED},
    ),
    # Two traces in one table: expect mixed their frames (same seqs, same run_id).
    "two-traces-in-one-table": (
        two_traces(),
        [(1, [2, 3, 4, 5, 6]), (1, [2, 3, 4, 5, 6])],
        {"agent events": PASSED, "order": PASSED},
    ),
}


@pytest.mark.parametrize(("source", "runs", "verdicts"), RUN_CASES.values(), ids=RUN_CASES)
def test_runs_are_those_of_analysis(source, runs, verdicts):
    table = source if isinstance(source, pd.DataFrame) else Trace({}, source).to_frame()
    assert analysis_runs(table) == runs
    checks = check_run(source, {"name": "runs", "budgets": {"first_event_s": 30}})
    assert {name: checks[name].status for name in verdicts} == verdicts, checks.explain()
    if verdicts.get("time to first event") == INCONCLUSIVE:
        assert "run #3: no run trigger was sent for this run before agent_started #3" in (
            checks["time to first event"].explanation
        )


# --- frames are read as the trace writer normalized them (issue #13) -------------------------


def test_recorded_fields_are_read_not_normalized_again(monkeypatch):
    """Every frame record holds its normalized fields: the checks never normalize again,
    and decode a frame's text only when they read the object, once."""
    records = frames(welcome(), *good_run())

    def no_normalizing(*_):
        raise AssertionError("normalized again")

    monkeypatch.setattr(events, "_scalar_fields", no_normalizing)
    decoded: Counter[str] = Counter()
    loads = json.loads
    monkeypatch.setattr(
        json, "loads", lambda text, **kw: decoded.update([text]) or loads(text, **kw)
    )
    assert check_run(records).status == PASSED
    assert max(decoded.values()) == 1
    assert records[0]["data"] not in decoded  # the welcome: no check reads its object


def test_hand_made_records_without_the_normalized_fields_are_completed():
    made = frames(("send", user_message()), *(bridge(e) for e in RUN))
    bare = [{key: r[key] for key in ("kind", "seq", "dir", "t_mono_ns", "data")} for r in made]
    assert check_run(bare).to_frame().equals(check_run(made).to_frame())
    assert "event" not in bare[0]  # the caller's records are left as they are
