"""The bad-input corpus (tests/bad_inputs/) through every door of the kit.

Each corpus file is one bad input; ``expected.json`` beside it says what must happen to it.
Frames go through the normalizer, the trace writer and reader, the real server (over a real
connection, both directions: sent to it, and replayed by it to the client); corrupted trace
files through the trace loader; broken HARs through the HAR importer. Nothing may crash:
every case ends in a clear error naming the problem, or in a recorded flag with the raw
input kept.
"""

from __future__ import annotations

import asyncio
import base64
import json
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import RUN, run, t
from helpers.corpus import CORPUS, FRAMES, HARS, TRACES, corpus_size, expectations
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed

from netra_ws import TERMINAL_EVENTS, Limits, connect, read_trace
from netra_ws.errors import FrameParseError, HarFormatError, TraceFormatError
from netra_ws.events import AGENT_EVENTS, normalize
from netra_ws.har import HarWarning, import_har
from netra_ws.trace import FRAME_COLUMNS, Trace, TraceWriter, frame_record, load_traces


def frame_input(name: str) -> tuple[str, bytes]:
    """(``"text"`` or ``"binary"``, the frame's bytes) of a frames/ corpus file.

    ``*.txt`` is a text frame (its bytes exactly, which need not be UTF-8), ``*.bin`` a binary
    frame, ``*.gen`` a JSON recipe for a frame too big or too deep to keep as a file: the
    concatenation of ``text * times`` for each ``[text, times]`` of ``parts``.
    """
    path = CORPUS / "frames" / name
    if path.suffix == ".gen":
        recipe = json.loads(path.read_text(encoding="utf-8"))
        return "text", "".join(text * times for text, times in recipe["parts"]).encode()
    return ("binary" if path.suffix == ".bin" else "text"), path.read_bytes()


def utf8(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def sendable(name: str) -> str | bytes:
    """What a WebSocket client can send: text frames must be UTF-8 (else see close 1007)."""
    opcode, raw = frame_input(name)
    text = utf8(raw) if opcode == "text" else None
    return text if text is not None else raw


# --- the corpus itself -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["frames", "traces", "har"])
def test_every_corpus_file_has_an_expectation_and_every_expectation_a_file(kind):
    files = {p.name for p in (CORPUS / kind).iterdir() if p.name != "expected.json"}
    assert files == set(expectations(kind))
    assert all(case["why"] for case in expectations(kind).values())


def test_the_corpus_holds_at_least_fifty_cases():
    assert sum(corpus_size().values()) >= 50
    assert min(corpus_size().values()) >= 20


# --- frames: the normalizer and the trace writer ----------------------------------------------


def _outcome(frame: Any) -> dict[str, Any]:
    try:
        event = normalize(frame)
    except FrameParseError as exc:
        return {"error": exc.reason}
    return {"envelope": event.envelope, "event": event.event}


def _matches(outcome: dict[str, Any], expected: dict[str, Any]) -> bool:
    if "error" in expected:
        return "error" in outcome and outcome["error"].startswith(expected["error"])
    return all(outcome.get(key) == value for key, value in expected.items())


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_frame_through_the_normalizer(name):
    expected = FRAMES[name]["normalize"]
    _, raw = frame_input(name)
    outcome = _outcome(raw)
    assert _matches(outcome, expected), (name, outcome, expected)
    text = utf8(raw)
    if text is not None:  # the same verdict whether the client hands over str or bytes
        assert _outcome(text) == outcome
    if "error" not in outcome:
        assert set(normalize(raw).fields()) >= {"event", "envelope", "run_id", "server_ts"}


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_frame_record_keeps_the_raw_frame_and_flags_what_does_not_parse(name):
    _, raw = frame_input(name)
    data = sendable(name)
    record = frame_record(1, "receive", data, t_wall_ns=1, t_mono_ns=2)
    if isinstance(data, str):
        assert (record["opcode"], record["data"], record["size"]) == ("text", data, len(raw))
        expected = FRAMES[name]["normalize"]
        if "error" in expected:
            assert record["parse_error"].startswith(expected["error"])
            assert record.get("event") is None
        else:
            assert "parse_error" not in record
            assert _matches(record, expected)
    else:
        # Binary (or text that is not UTF-8, which only a binary frame can carry): base64.
        assert record["opcode"] == "binary" and base64.b64decode(record["data"]) == raw
        assert record["parse_error"] == f"binary frame ({len(raw)} bytes), not parsed"


def test_the_whole_corpus_round_trips_through_one_trace_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    with TraceWriter(path, target="ws://127.0.0.1/corpus") as writer:
        for i, name in enumerate(sorted(FRAMES)):
            writer.frame("receive", sendable(name), t_wall_ns=i, t_mono_ns=i)
        written = writer.records
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing to warn about
        trace = read_trace(path)
    assert trace.records == written
    df = trace.to_frame()
    assert len(df) == len(FRAMES) and dict(df.dtypes.astype(str)) == dict(FRAME_COLUMNS)
    assert df["parse_error"].notna().sum() == sum(1 for r in written if "parse_error" in r)


# --- frames: the real server, sent to it ------------------------------------------------------

_MARKER = 424242  # the ping timestamp that ends the server's reply to one case


async def _server_reply(url: str, name: str, path: Path) -> tuple[list[Any], int | None]:
    """Send one corpus frame on a fresh connection, then a marker ping.

    Returns the frames the server sent back in between (the reply to the case; for a run,
    up to its terminal event) and the close code if the server closed the connection.
    """
    data = sendable(name)
    wants_run = FRAMES[name]["server"] == "run"
    async with connect(url, trace=path) as session:
        await session.expect("connection_established", timeout=t(5))
        await session.send(data)
        await session.send({"type": "ping", "timestamp": _MARKER})
        seen_marker, ended = False, not wants_run

        def done(received) -> bool:
            nonlocal seen_marker, ended
            seen_marker = seen_marker or _is_marker(received)
            ended = ended or received.name in TERMINAL_EVENTS
            return seen_marker and ended

        result = await session.collect(until=done, timeout=t(20))
        assert result.reason in ("matched", "closed"), (name, result.reason, result.names)
        # The marker's pong may overtake a run's first events: it is never part of the reply.
        return [r for r in result.frames if not _is_marker(r)], session.close_code


def _is_marker(received: Any) -> bool:
    return received.name == "pong" and received.event.payload.get("original_timestamp") == _MARKER


async def _not_utf8_text_reply(url: str, raw: bytes) -> int | None:
    """A text frame that is not UTF-8 cannot be sent through Session (it takes str); send
    the bytes as a text frame with websockets itself and report the server's close code."""
    async with ws_connect(url) as ws:
        await ws.recv()  # connection_established
        await ws.send(raw, text=True)
        try:
            async with asyncio.timeout(t(5)):
                while True:
                    await ws.recv()
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd is not None else 1006


def _check_reply(name: str, replies: list[Any], close_code: int | None) -> None:
    expected = FRAMES[name]["server"]
    names = [r.name for r in replies]
    if expected.startswith("close "):
        assert (names, close_code) == ([], int(expected.split()[1])), name
        return
    assert close_code is None, (name, close_code, names)
    if expected == "silence":
        assert names == [], name
    elif expected == "run":
        assert names == RUN, (name, names)
        assert len({r.event.run_id for r in replies}) == 1
    elif expected in ("JSON_PARSE_ERROR", "AGENT_REQUEST_ERROR"):
        assert names == ["error_message"], (name, names)
        assert replies[0].event.error_code == expected
    elif expected == "ack":
        assert names == ["ack"], (name, names)
        sent = utf8(frame_input(name)[1]) or ""
        try:
            sent_type = json.loads(sent).get("type")
        except (ValueError, AttributeError, RecursionError):
            sent_type = None
        received_type = replies[0].event.payload["received_type"]
        wanted = sent_type if isinstance(sent_type, str) and sent_type else "unknown"
        assert received_type == wanted, name
    else:
        assert names == [expected], (name, names)


def test_the_server_answers_every_bad_frame_and_keeps_serving(make_server, tmp_path):
    srv = make_server()

    async def scenario():
        async with connect(srv.url) as bystander:
            await bystander.expect("connection_established", timeout=t(5))
            outcomes = {}
            for i, name in enumerate(sorted(FRAMES)):
                opcode, raw = frame_input(name)
                if opcode == "text" and utf8(raw) is None:
                    outcomes[name] = ([], await _not_utf8_text_reply(srv.url, raw))
                else:
                    outcomes[name] = await _server_reply(srv.url, name, tmp_path / f"{i:02d}.jsonl")
            # The connection opened before the corpus, and a new one, both complete a run.
            await bystander.send_user_message("after the corpus")
            before = await bystander.collect(until=TERMINAL_EVENTS, timeout=t(10))
            async with connect(srv.url) as newcomer:
                await newcomer.expect("connection_established", timeout=t(5))
                await newcomer.send_user_message("a new connection")
                after = await newcomer.collect(until=TERMINAL_EVENTS, timeout=t(10))
            return outcomes, before, after

    outcomes, before, after = run(scenario())
    for name, (replies, close_code) in outcomes.items():
        _check_reply(name, replies, close_code)
    assert before.names == RUN and after.names == RUN

    # Each sent frame is in its connection's trace exactly as sent, flagged when it is bad.
    for i, name in enumerate(sorted(FRAMES)):
        path = tmp_path / f"{i:02d}.jsonl"
        if not path.exists():
            continue  # sent with websockets itself (not UTF-8)
        sent = next(f for f in read_trace(path).frames if f["dir"] == "send")
        data = sendable(name)
        if isinstance(data, bytes):
            assert base64.b64decode(sent["data"]) == data
        else:
            assert sent["data"] == data
            assert ("parse_error" in sent) == ("error" in FRAMES[name]["normalize"]), name


# --- frames: the real server, replayed to the client ------------------------------------------


def test_the_client_records_every_bad_frame_a_server_sends(make_server, tmp_path):
    names = [n for n in sorted(FRAMES) if isinstance(sendable(n), str) or n.endswith(".bin")]
    records = [
        frame_record(i, "receive", sendable(n), t_wall_ns=i * 10**6, t_mono_ns=i * 10**6)
        for i, n in enumerate(names, 1)
    ]
    end = (len(names) + 1) * 10**6
    close = {"kind": "close", "t_wall_ns": end, "t_mono_ns": end, "code": 1000, "reason": "done"}
    recording = Trace({"session": "corpus"}, [*records, {**close, "initiated_by": "server"}])
    player = make_server(replay=recording, replay_speed=10.0)
    path = tmp_path / "client.jsonl"

    async def scenario():
        # Every frame whole: the corpus holds frames over the default recording limit.
        async with connect(player.url, trace=path, limits=Limits(record_limit=None)) as session:
            # Not collect(): the forged AUTH_FAILED among the frames would make it raise.
            # The reader records every frame whatever the caller does.
            async with asyncio.timeout(t(20)):
                while not session.closed:
                    await asyncio.sleep(0.01)

    run(scenario())
    received = [f for f in read_trace(path).frames if f["dir"] == "receive"]
    assert [(f["opcode"], f["data"]) for f in received] == [
        (r["opcode"], r["data"]) for r in records
    ]
    for name, frame in zip(names, received, strict=True):
        if frame["opcode"] == "text":
            expected = FRAMES[name]["normalize"]
            assert ("parse_error" in frame) == ("error" in expected), name
        else:
            assert frame["parse_error"].startswith("binary frame")
    close_record = next(r for r in read_trace(path).records if r["kind"] == "close")
    assert (close_record["code"], close_record["reason"]) == (1000, "done")


@pytest.mark.parametrize(
    "name", [n for n in sorted(FRAMES) if n.endswith(".txt") and isinstance(sendable(n), bytes)]
)
def test_a_server_text_frame_that_is_not_utf8_is_named_in_the_close_record(name, tmp_path):
    # websockets refuses such a frame (close 1007) and never hands it over, so the trace
    # cannot hold it: the close record must say what the client refused, and why.
    _, raw = frame_input(name)
    path = tmp_path / "client.jsonl"

    async def handler(ws):
        await ws.send(json.dumps({"type": "connection_established", "data": {}}))
        await ws.send(raw, text=True)
        await ws.wait_closed()

    async def scenario():
        async with ws_serve(handler, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            async with connect(f"ws://127.0.0.1:{port}/", trace=path) as session:
                return await session.collect(timeout=t(5))

    result = run(scenario())
    assert (result.reason, result.names) == ("closed", ["connection_established"])
    close = next(r for r in read_trace(path).records if r["kind"] == "close")
    assert (close["sent_code"], close["initiated_by"]) == (1007, "client")
    assert "invalid" in close["sent_reason"] or "unexpected" in close["sent_reason"]


# --- corrupted trace files --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TRACES))
def test_corrupted_trace_file(name):
    case = TRACES[name]
    path = CORPUS / "traces" / name
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "error" in case:
            with pytest.raises(TraceFormatError) as info:
                read_trace(path)
            assert str(path) in str(info.value) and case["error"] in str(info.value)
            return
        trace = read_trace(path)
        df = trace.to_frame()
    messages = [str(w.message) for w in caught]
    expected = [m for m in (case["warning"],) if m]
    assert len(messages) == bool(case["skipped"]) + (not case["header"]), messages
    assert all(any(e in m and str(path) in m for m in messages) for e in expected), messages
    assert trace.skipped_lines == case["skipped"] and bool(trace.meta) == case["header"]
    assert len(df) == case["frames"] == len(trace.frames)
    assert dict(df.dtypes.astype(str)) == dict(FRAME_COLUMNS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.testing.assert_frame_equal(load_traces(path).drop(columns="trace"), df, check_dtype=True)


# --- broken HARs ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HARS))
def test_broken_har(name, tmp_path):
    case = HARS[name]
    path = CORPUS / "har" / name
    out = tmp_path / "out"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "error" in case:
            with pytest.raises(HarFormatError) as info:
                import_har(path, out)
            assert path.name in str(info.value) and case["error"] in str(info.value)
            assert not out.exists()  # nothing half-written
            return
        (written,) = import_har(path, out)
        trace = read_trace(written)
    har_warnings = [str(w.message) for w in caught if issubclass(w.category, HarWarning)]
    if case["warning"]:
        assert len(har_warnings) == 1 and case["warning"] in har_warnings[0], har_warnings
    else:
        assert har_warnings == []
    assert [str(w.message) for w in caught if not issubclass(w.category, HarWarning)] == []
    assert len(trace.frames) == case["frames"] == len(trace.to_frame())
    assert sum(1 for r in trace.records if r.get("flags")) == case["flagged"]
    assert trace.records[0]["kind"] in ("open", "error")  # the handshake is always there
    for frame in trace.frames:  # frames that do not parse say so, and keep their text
        assert isinstance(frame["data"], str)
        if frame["opcode"] == "text" and frame.get("event") is None:
            assert frame.get("parse_error") or frame.get("envelope") == "unknown"


def test_agent_events_in_the_corpus_are_not_mistaken_for_server_output():
    # Frames the #937 tests sent as input normalize to agent events: only the trace's ``dir``
    # tells them apart, so the corpus must keep both kinds and the server must stay silent.
    silent = [n for n, case in FRAMES.items() if case["server"] == "silence"]
    assert any(normalize(sendable(n)).event in AGENT_EVENTS for n in silent)
