"""Scenario options through real connections: steps, tools, timing, jitter, errors, several
runs, heartbeats and the message size limit, from Python and from a JSON file."""

from __future__ import annotations

import itertools
import json
import urllib.request

import pytest
from conftest import RUN, run, t

from netra_ws import TERMINAL_EVENTS, connect, read_trace
from netra_ws.server import Scenario, load_scenario
from netra_ws.server.scenario import run_rng, run_steps


def _write(tmp_path, data, name="scenario.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


async def _session_runs(url, path, texts, *, concurrent=False):
    async with connect(url, trace=path) as session:
        await session.expect("connection_established", timeout=t(5))
        if concurrent:
            for text in texts:
                await session.send_user_message(text)
            done = 0
            while done < len(texts):
                await session.expect(lambda r: r.name in TERMINAL_EVENTS, timeout=t(10))
                done += 1
        else:
            for text in texts:
                await session.send_user_message(text)
                await session.collect(until=TERMINAL_EVENTS, timeout=t(10))


def _record(url, path, *texts, concurrent=False):
    run(_session_runs(url, path, texts or ("analyze",), concurrent=concurrent))
    return read_trace(path)


def _agent_frames(trace):
    return [f for f in trace.frames if f["dir"] == "receive" and f.get("run_id")]


def _payloads(trace):
    return [json.loads(f["data"])["payload"] for f in _agent_frames(trace)]


def _gaps(trace):
    """Seconds from the first user_message to the first agent event, then between events."""
    sent = next(f for f in trace.frames if f["dir"] == "send")
    times = [sent["t_mono_ns"]] + [f["t_mono_ns"] for f in _agent_frames(trace)]
    return [(b - a) / 1e9 for a, b in itertools.pairwise(times)]


def test_thinking_and_tools_from_a_file(make_server, tmp_path):
    path = _write(
        tmp_path,
        {
            "agent_name": "cost_agent",
            "thinking": ["Look at the bill"],
            "tools": [
                {"name": "billing_query", "parameters": {"month": "2025-08"}, "result": [1, 2]},
                {"name": "forecast", "result": {"next_month": 99.5}},
            ],
            "final_result": {"summary": "Spend is flat"},
            "first_delay": 0.005,
            "step_delay": 0.005,
        },
    )
    srv = make_server(scenario=load_scenario(path))
    trace = _record(srv.url, tmp_path / "run.jsonl")
    frames, payloads = _agent_frames(trace), _payloads(trace)
    assert [f["event"] for f in frames] == [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "tool_executing",
        "tool_completed",
        "agent_completed",
    ]
    assert {f["agent_name"] for f in frames} == {"cost_agent"}
    assert payloads[1]["reasoning"] == "Look at the bill"
    assert [f["tool_name"] for f in frames[2:6]] == ["billing_query"] * 2 + ["forecast"] * 2
    assert payloads[2]["parameters"] == {"month": "2025-08"} and payloads[3]["result"] == [1, 2]
    assert payloads[4]["parameters"] == {} and payloads[5]["result"] == {"next_month": 99.5}
    assert payloads[6]["result"] == {"summary": "Spend is flat"}


def test_fixed_per_step_latency(make_server, tmp_path):
    scenario = Scenario.from_dict(
        {
            "first_delay": 0.05,
            "step_delay": 0.02,
            "thinking": ["quick", {"reasoning": "slow", "delay": 0.3}],
            "tools": [{"name": "slow_tool", "duration": 0.25}],
        }
    )
    srv = make_server(scenario=scenario)
    trace = _record(srv.url, tmp_path / "run.jsonl")
    expected = [0.05, 0.02, 0.3, 0.02, 0.25, 0.02]
    gaps = _gaps(trace)
    assert len(gaps) == len(expected)
    # Events are due on a schedule, so one late event makes the next gap a little shorter.
    assert all(abs(got - want) < t(0.02) for got, want in zip(gaps, expected, strict=True)), gaps
    assert _payloads(trace)[4]["execution_time_ms"] == 250


JITTERY = Scenario(first_delay=0.05, step_delay=0.05, jitter=0.9)


def _planned(seed, connection):
    return [s.delay for s in run_steps(JITTERY, "analyze", run_rng(seed, connection, 1))]


def _close_to(gaps, planned):
    return all(abs(got - want) < t(0.015) for got, want in zip(gaps, planned, strict=True))


def test_jitter_follows_the_seed_per_connection(make_server, tmp_path):
    first = make_server(scenario=JITTERY, seed=7)
    a1 = _gaps(_record(first.url, tmp_path / "a1.jsonl"))
    a2 = _gaps(_record(first.url, tmp_path / "a2.jsonl"))  # the server's second connection
    again = make_server(scenario=JITTERY, seed=7)
    b1 = _gaps(_record(again.url, tmp_path / "b1.jsonl"))
    other = make_server(scenario=JITTERY, seed=8)
    c1 = _gaps(_record(other.url, tmp_path / "c1.jsonl"))

    assert _close_to(a1, _planned(7, 1)) and _close_to(a2, _planned(7, 2)), (a1, a2)
    assert _close_to(b1, a1), (a1, b1)  # same seed, same connection index: same timing
    assert not _close_to(a2, a1)  # another connection draws other delays
    assert _close_to(c1, _planned(8, 1)) and not _close_to(c1, a1)
    spread = [d / 0.05 for d in a1 + a2]
    assert min(spread) < 0.7 and max(spread) > 1.3  # jitter 0.9 really spreads them


def test_error_marker_ends_the_run_with_agent_error(make_server, tmp_path):
    srv = make_server()
    trace = _record(srv.url, tmp_path / "fail.jsonl", "please [fail] now")
    frames = _agent_frames(trace)
    assert [f["event"] for f in frames] == ["agent_started", "agent_thinking", "agent_error"]
    error = json.loads(frames[-1]["data"])
    assert "user_id" not in error  # the bridge's error path has no top-level user_id
    payload = error["payload"]
    assert payload["status"] == "error" and payload["error_message"]
    assert payload["error_context"]["failed_after"] == "agent_thinking"
    assert payload["error_context"]["request"] == "please [fail] now"
    assert payload["message"].startswith("supervisor_agent failed")


def test_an_empty_marker_fails_every_run_after_n_events(make_server, tmp_path):
    path = _write(
        tmp_path,
        {
            "error_marker": "",
            "error_after": 4,
            "error_message": "quota exceeded",
            "first_delay": 0.005,
            "step_delay": 0.005,
        },
    )
    srv = make_server(scenario=load_scenario(path))
    trace = _record(srv.url, tmp_path / "fail.jsonl", "innocent request")
    assert [f["event"] for f in _agent_frames(trace)] == [*RUN[:4], "agent_error"]
    assert _payloads(trace)[-1]["error_message"] == "quota exceeded"


def test_several_runs_on_one_connection_follow_the_runs_list(make_server, tmp_path):
    path = _write(
        tmp_path,
        {
            "first_delay": 0.005,
            "step_delay": 0.005,
            "runs": [{}, {"error_marker": ""}, {"thinking": ["only one"], "tools": []}],
        },
    )
    srv = make_server(scenario=load_scenario(path))
    trace = _record(srv.url, tmp_path / "runs.jsonl", "one", "two", "three", "four")
    by_run: dict[str, list[str]] = {}
    for frame in _agent_frames(trace):
        by_run.setdefault(frame["run_id"], []).append(frame["event"])
    assert list(by_run.values()) == [
        RUN,
        ["agent_started", "agent_thinking", "agent_error"],
        ["agent_started", "agent_thinking", "agent_completed"],
        RUN,  # the list starts over
    ]


def test_concurrent_runs_on_one_connection_stay_apart(make_server, tmp_path):
    srv = make_server(scenario=Scenario(first_delay=0.01, step_delay=0.01, jitter=0.8))
    trace = _record(srv.url, tmp_path / "many.jsonl", "a", "b", "c", concurrent=True)
    by_run: dict[str, list[str]] = {}
    for frame in _agent_frames(trace):
        by_run.setdefault(frame["run_id"], []).append(frame["event"])
    assert len(by_run) == 3 and all(events == RUN for events in by_run.values())


def test_heartbeat_interval_from_the_scenario_file(make_server, tmp_path):
    srv = make_server(scenario=load_scenario(_write(tmp_path, {"heartbeat_interval": 0.2})))

    async def scenario():
        async with connect(srv.url, trace=tmp_path / "hb.jsonl") as session:
            await session.next(timeout=t(5))
            return await session.quiet(0.7)

    frames = run(scenario())
    assert 2 <= len(frames) <= 4 and {f.name for f in frames} == {"heartbeat"}
    # An explicit ServerConfig value wins over the scenario's.
    explicit = make_server(
        scenario=Scenario(heartbeat_interval=0.2, first_delay=0.005, step_delay=0.005),
        heartbeat_interval=30,
    )

    async def quiet():
        async with connect(explicit.url) as session:
            await session.next(timeout=t(5))
            return await session.quiet(0.5)

    assert run(quiet()) == []


def test_max_message_size_from_the_file_closes_1009(make_server, tmp_path):
    srv = make_server(scenario=load_scenario(_write(tmp_path, {"max_message_size": 4096})))
    config_url = srv.base_url.replace("ws://", "http://") + "/ws/config"
    with urllib.request.urlopen(config_url) as response:
        assert json.load(response)["websocket_config"]["max_message_size"] == 4096
    path = tmp_path / "big.jsonl"

    async def scenario():
        async with connect(srv.url, trace=path) as session:
            await session.next(timeout=t(5))
            await session.send({"type": "ping", "pad": "x" * 3900})  # under the limit
            pong = await session.next(timeout=t(5))
            await session.send({"type": "ping", "pad": "x" * 5000})
            closed = await session.collect(timeout=t(5))
            return pong, closed

    pong, closed = run(scenario())
    assert pong.name == "pong" and closed.reason == "closed"
    close = next(r for r in read_trace(path).records if r["kind"] == "close")
    assert close["code"] == 1009 and close["initiated_by"] == "server"
    sent = [f for f in read_trace(path).frames if f["dir"] == "send"]
    assert sent[-1]["size"] > 4096


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"thinkng": []}, "unknown scenario key 'thinkng'"),
        ({"tools": [{"name": "x", "parameters": []}]}, "'tools[0].parameters' must be an object"),
        ({"tools": [{"parameters": {}}]}, "'tools[0]' needs 'name'"),
        ({"thinking": [{"reasoning": "x", "wait": 1}]}, "unknown scenario key 'thinking[0].wait'"),
        ({"step_delay": -1}, "'step_delay' must be a number of seconds >= 0"),
        ({"jitter": 2}, "'jitter' must be a fraction between 0 and 1"),
        ({"error_after": 0}, "'error_after' must be a whole number >= 1"),
        ({"heartbeat_interval": 0}, "'heartbeat_interval' must be a number of seconds > 0"),
        ({"runs": [{"seed": 3}]}, "'runs[0].seed' belongs at the top level"),
        ({"runs": [{"step_dely": 3}]}, "unknown scenario key 'runs[0].step_dely'"),
    ],
)
def test_bad_scenario_keys_are_named(tmp_path, data, complaint):
    path = _write(tmp_path, data)
    with pytest.raises(ValueError, match=r"scenario\.json: .*" + complaint.replace("[", r"\[")):
        load_scenario(path)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "thinking": ["a",]\n}')
    with pytest.raises(ValueError, match=r"broken\.json: not valid JSON \(line 2"):
        load_scenario(path)
