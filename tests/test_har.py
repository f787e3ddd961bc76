"""HAR import and export: the shapes DevTools, mitmproxy and HTTP Toolkit really write.

The fixtures in tests/data/har/ are hand-built in those tools' shapes (see its README); the
bad-file and odd-message cases are built inline, next to what they check.
"""

from __future__ import annotations

import base64
import json
import shutil
import warnings
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import run, t

from netra_ws import connect, read_trace
from netra_ws.cli import main
from netra_ws.errors import HarFormatError
from netra_ws.har import (
    HAR_LABELS,
    HarWarning,
    export_har,
    har_to_traces,
    import_har,
    load_har,
    trace_to_har,
)
from netra_ws.redact import REDACTED
from netra_ws.tokens import encode_subprotocol_token, mint_token
from netra_ws.trace import Trace, TraceWriter, frame_record

HAR_DIR = Path(__file__).parent / "data" / "har"
# The token inside the fixtures (signed with the public dev secret; see the README there).
FIXTURE_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTdmM2E5YyIsImVtYWlsIjoidXNlci03ZjNhOWN"
    "AZXhhbXBsZS5jb20iLCJwZXJtaXNzaW9ucyI6WyJyZWFkIiwid3JpdGUiXSwiaWF0IjoxNzU3NTA1MDAwLCJleHAiOjE3"
    "NTc1MDg2MDAsInR5cGUiOiJhY2Nlc3MiLCJpc3MiOiJuZXRyYS1hdXRoLXNlcnZpY2UiLCJqdGkiOiI1YjFlMGM3ZDlhMm"
    "Y0ZTZiOGMzZDFmMGE5ZThiN2M2ZCJ9.oOAxg99H5tzfnBr3EXfTbdgC4qLdQw2q5ul999WdUpI"
)
FIXTURE_SECRETS = [
    FIXTURE_TOKEN,
    encode_subprotocol_token(FIXTURE_TOKEN)[len("jwt.") :],
    "secretcookievalue",
    "cli-secret-cookie-0042",
    "ff-secret-cookie-7777",
]


def fixture(name: str) -> dict[str, Any]:
    return json.loads((HAR_DIR / name).read_text(encoding="utf-8"))


def single(har: dict[str, Any]) -> Trace:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fixtures of real shapes import without warnings
        traces = har_to_traces(har)
    assert len(traces) == 1
    return traces[0]


def us(t_ns: int) -> int:
    return round(t_ns / 1000)


def har_with(messages: list[Any], **entry: Any) -> dict[str, Any]:
    """A minimal Chrome-shaped HAR with one WebSocket entry."""
    base = {
        "startedDateTime": "2025-09-10T12:00:00.000Z",
        "time": 1,
        "request": {"method": "GET", "url": "wss://h/ws", "headers": []},
        "response": {"status": 101, "statusText": "Switching Protocols", "headers": []},
        "_resourceType": "websocket",
        "_webSocketMessages": messages,
    }
    base.update(entry)
    return {"log": {"version": "1.2", "creator": {"name": "t", "version": "1"}, "entries": [base]}}


# --- import: the tools' shapes -----------------------------------------------------------------


def test_chrome_devtools_capture_becomes_one_trace_with_the_clients_normalized_fields():
    har = fixture("chrome.har")
    trace = single(har)
    messages = har["log"]["entries"][1]["_webSocketMessages"]

    assert trace.meta["labels"] == {
        **HAR_LABELS,
        "har_entry": 1,  # entry 0 is the page itself, not a WebSocket
        "har_creator": "WebInspector 537.36",
    }
    assert trace.meta["started_at"] == "2025-09-10T12:00:00.120000+00:00"
    assert trace.target == "wss://netra-backend-staging-abc123-uc.a.run.app/api/v1/websocket"

    df = trace.to_frame()
    assert list(df["event"].fillna("-")) == [
        "connection_established",
        "user_message",
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
        "-",
    ]
    assert list(df["dir"]) == [m["type"] for m in messages]
    assert list(df["seq"]) == list(range(1, 9))
    assert df.loc[4, "tool_name"] == "cost_analyzer"
    assert df.loc[2, "run_id"] == "run_8c1d2e3f4a5b"
    # The same record the client writes for the same text.
    frame = trace.frames[2]
    expected = frame_record(
        3,
        "receive",
        messages[2]["data"],
        t_wall_ns=frame["t_wall_ns"],
        t_mono_ns=frame["t_mono_ns"],
    )
    assert frame == expected
    # Clocks: wall time from "time", to the microsecond; the monotonic one derived from it.
    for record, message in zip(trace.frames, messages, strict=True):
        assert record["t_wall_ns"] == round(message["time"] * 1e6) * 1000
        assert record["t_mono_ns"] == record["t_wall_ns"]
    assert df.loc[0, "t_s"] == pytest.approx(0.037812, abs=1e-9)  # since the open record
    # Binary: DevTools writes base64; the trace keeps base64 of the same bytes.
    binary = trace.frames[7]
    assert binary["opcode"] == "binary"
    assert base64.b64decode(binary["data"]) == b'\x00\x01eyJ.\xff\xfe{"x":1}'
    assert binary["size"] == 15


def test_the_handshake_evidence_is_kept_and_its_secrets_are_not():
    trace = single(fixture("chrome.har"))
    opened = trace.records[0]
    assert opened["kind"] == "open"
    assert opened["http_status"] == 101
    assert opened["subprotocol"] == f"jwt.{REDACTED}"
    assert opened["offered_subprotocols"] == ["jwt-auth", f"jwt.{REDACTED}"]
    assert opened["request_headers"]["Cookie"] == REDACTED
    assert opened["request_headers"]["Origin"] == "https://app.staging.netra.example"
    assert opened["response_headers"]["Sec-WebSocket-Accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert "Cookie" in opened["request_header_names"]
    text = json.dumps([trace.meta, *trace.records])
    for secret in FIXTURE_SECRETS:
        assert secret not in text


def test_mitmproxy_capture_with_binary_frames_query_token_and_authorization_header():
    trace = single(fixture("mitmproxy.har"))
    opened = trace.records[0]
    # mitmproxy writes the upgrade request's own scheme and keeps the query string.
    assert opened["url"] == trace.target == "https://netra-backend.example.com/ws"
    assert opened["request_headers"]["Authorization"] == REDACTED
    assert opened["subprotocol"] == "jwt-auth"
    df = trace.to_frame()
    assert list(df["envelope"].fillna("-")) == [
        "status",
        "bridge",
        "manager",
        "-",
        "manager",
        "status",
    ]
    sent_binary = trace.frames[3]
    assert (sent_binary["dir"], sent_binary["opcode"]) == ("send", "binary")
    assert base64.b64decode(sent_binary["data"]) == bytes(range(0, 256, 7))
    # "+00:00" with microseconds, and message times with microseconds.
    assert trace.meta["started_at"] == "2025-09-10T12:05:00.250113+00:00"
    assert trace.frames[1]["t_wall_ns"] == 1757505900_750434_000
    text = json.dumps([trace.meta, *trace.records])
    for secret in FIXTURE_SECRETS:
        assert secret not in text


def test_mitmproxy_zhar_is_read_like_the_har(tmp_path: Path):
    zhar = tmp_path / "dump.zhar"
    zhar.write_bytes(zlib.compress((HAR_DIR / "mitmproxy.har").read_bytes(), 9))
    assert load_har(zhar) == fixture("mitmproxy.har")


def test_firefox_capture_has_no_messages_so_the_handshake_is_imported_with_a_warning():
    with pytest.warns(HarWarning, match="Firefox exports no WebSocket messages"):
        (trace,) = har_to_traces(fixture("firefox.har"))
    assert trace.frames == []
    assert [r["kind"] for r in trace.records] == ["open"]
    assert trace.meta["labels"]["har_messages"] == "missing"
    assert trace.meta["labels"]["har_creator"] == "Firefox 128.0"
    # Firefox writes local time with an offset; traces are UTC.
    assert trace.meta["started_at"] == "2025-09-10T12:10:02.345000+00:00"
    assert trace.records[0]["offered_subprotocols"] == ["jwt-auth", f"jwt.{REDACTED}"]


def test_http_toolkit_close_becomes_a_close_record():
    trace = single(fixture("httptoolkit.har"))
    assert [r["kind"] for r in trace.records] == ["open", "frame", "frame", "frame", "close"]
    close = trace.records[-1]
    assert (close["code"], close["reason"]) == (1000, "client done")
    assert close["t_wall_ns"] == 1757506801_100000_000
    assert trace.records[0]["request_headers"]["authorization"] == REDACTED


def test_a_websocket_is_recognised_by_its_upgrade_header_alone():
    har = har_with([], _resourceType="other")
    entry = har["log"]["entries"][0]
    del entry["_resourceType"], entry["_webSocketMessages"]
    entry["request"] = {
        "url": "https://h/ws",
        "headers": [{"name": "Upgrade", "value": "WebSocket"}],
    }
    with pytest.warns(HarWarning):
        assert len(har_to_traces(har)) == 1


# --- import: files -----------------------------------------------------------------------------


def test_import_har_writes_one_trace_file_per_connection_and_never_overwrites(tmp_path: Path):
    har = fixture("chrome.har")
    second = json.loads(json.dumps(har["log"]["entries"][1]))
    second["request"]["url"] = "wss://other.example/ws"
    har["log"]["entries"].append(second)
    src = tmp_path / "capture.har"
    src.write_text(json.dumps(har), encoding="utf-8")

    paths = import_har(src, tmp_path / "traces")
    assert [p.name for p in paths] == ["capture-ws01.jsonl", "capture-ws02.jsonl"]
    in_memory = har_to_traces(har, source="capture.har")
    for path, expected in zip(paths, in_memory, strict=True):
        loaded = read_trace(path)
        assert loaded.records == expected.records
        assert loaded.meta["labels"]["har_file"] == "capture.har"
        assert loaded.meta["session"] == expected.meta["session"]  # deterministic
        text = path.read_text(encoding="utf-8")
        for secret in FIXTURE_SECRETS:
            assert secret not in text
    assert read_trace(paths[1]).target == "wss://other.example/ws"

    before = paths[0].read_bytes()
    with pytest.raises(FileExistsError, match="never overwritten"):
        import_har(src, tmp_path / "traces")
    assert paths[0].read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"<!DOCTYPE html><html>login</html>", "HTML or XML"),
        (b'{"log": ', "not JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"[1, 2]", "JSON array, not an object"),
        (b'{"har": {}}', "no 'log' object"),
        (b'{"log": {"version": "1.2"}}', "no 'entries' list"),
        (b'{"kind":"meta","format":"netra-ws-trace/1"}\n{"kind":"frame"}\n', "read_trace"),
    ],
)
def test_a_file_that_is_not_a_har_gets_a_clear_error(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.har"
    path.write_bytes(content)
    with pytest.raises(HarFormatError, match=message) as info:
        import_har(path, tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()


def test_a_har_without_websocket_entries_says_how_many_entries_it_had(tmp_path: Path):
    har = fixture("chrome.har")
    har["log"]["entries"] = [har["log"]["entries"][0]] * 3
    path = tmp_path / "pages.har"
    path.write_text(json.dumps(har), encoding="utf-8")
    with pytest.raises(HarFormatError, match="among its 3 entries") as info:
        import_har(path, tmp_path)
    assert info.value.entry_count == 3
    assert "filter the Network panel by 'WS'" in str(info.value)


# --- import: odd messages are kept and flagged ----------------------------------------------


def test_messages_with_missing_or_odd_fields_are_kept_in_order_and_flagged():
    t0 = 1757505600.0
    messages: list[Any] = [
        {"type": "receive", "time": t0 + 1, "opcode": 1, "data": '{"type":"a"}'},
        {"type": "send", "opcode": 1, "data": '{"type":"no_time"}'},  # time missing
        {"type": "receive", "time": t0 + 2, "data": '{"type":"no_opcode"}'},  # opcode missing
        {"type": "receive", "time": t0 + 1.5, "opcode": 1, "data": '{"type":"early"}'},
        {"type": "incoming", "time": t0 + 3, "opcode": 1, "data": "who knows"},  # unknown type
        {"type": "error", "time": t0 + 4, "opcode": -1, "data": "net::ERR_CONNECTION_RESET"},
        {"type": "receive", "time": t0 + 5, "opcode": 9, "data": ""},  # ping
        {"type": "receive", "time": t0 + 6, "opcode": 2, "data": "not base64!"},
        {"type": "receive", "time": t0 + 7, "opcode": 1},  # data missing
        "not an object",
        {"type": "receive", "time": "1757505608.5", "opcode": 1, "data": "x"},
        {"type": "receive", "time": t0 + 9, "opcode": 8, "data": base64.b64encode(
            (1008).to_bytes(2, "big") + b"Authentication failed").decode()},
    ]  # fmt: skip
    with pytest.warns(HarWarning, match=r"record\(s\) carry 'flags'"):
        (trace,) = har_to_traces(har_with(messages))

    records = trace.records[1:]  # after the open record
    assert len(records) == len(messages)  # nothing dropped
    assert [r["kind"] for r in records] == [
        "frame", "frame", "frame", "frame", "mark", "error", "mark",
        "frame", "frame", "mark", "frame", "close",
    ]  # fmt: skip
    no_time, no_opcode, early = records[1], records[2], records[3]
    assert no_time["t_wall_ns"] == records[0]["t_wall_ns"]
    assert no_time["flags"] == ["time missing: placed at the previous message's time"]
    assert no_time["har_index"] == 1
    assert (no_opcode["opcode"], no_opcode["event"]) == ("text", "no_opcode")
    assert no_opcode["flags"] == ["opcode missing: assumed text (1)"]
    assert early["flags"] == ["time earlier than the previous message: kept in HAR order"]
    assert [r["seq"] for r in records if r["kind"] == "frame"] == [1, 2, 3, 4, 5, 6, 7]

    unknown = records[4]
    assert unknown["flags"] == ["unknown message type 'incoming': not imported as a frame"]
    assert unknown["har_message"]["data"] == "who knows"
    assert records[5]["message"] == "net::ERR_CONNECTION_RESET"
    assert records[6]["label"] == "HAR: receive ping (opcode 9)"
    assert records[7]["opcode"] == "text" and records[7]["data"] == "not base64!"
    assert records[7]["flags"] == [
        "opcode 2 (binary) but data is not base64: recorded as a text frame"
    ]
    assert records[8]["data"] == "" and records[8]["flags"]
    assert records[9]["har_message"] == "not an object"
    assert records[10]["flags"] == ["time was a string"]
    assert records[10]["t_wall_ns"] == 1757505608_500000_000
    close = records[11]
    assert (close["code"], close["reason"], close["initiated_by"]) == (
        1008,
        "Authentication failed",
        "server",
    )
    # The DataFrame still loads: frames only, flags live in the records.
    assert len(trace.to_frame()) == 7


@pytest.mark.parametrize(
    ("response", "exception", "message"),
    [
        ({"status": 403, "statusText": "Forbidden"}, "HandshakeRejected", "HTTP 403 Forbidden"),
        ({"status": 0, "_error": "net::ERR_CONNECTION_REFUSED"}, "ConnectFailed", "REFUSED"),
    ],
)
def test_a_refused_upgrade_is_an_error_record_like_the_clients(response, exception, message):
    (trace,) = har_to_traces(har_with([], response={**response, "headers": []}))
    (record,) = trace.records
    assert (record["kind"], record["stage"], record["exception"]) == ("error", "connect", exception)
    assert message in record["message"]
    assert record["http_status"] == response["status"]


# --- export --------------------------------------------------------------------------------------


def _devtools_would_import(har: dict[str, Any]) -> None:
    """The checks of DevTools' HARFormat.ts / Importer.ts that throw or skip a message."""

    def number(value: Any) -> None:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), value

    log = har["log"]
    assert isinstance(log["creator"]["name"], str) and isinstance(log["creator"]["version"], str)
    assert isinstance(log["entries"], list) and isinstance(log.get("pages", []), list)
    for entry in log["entries"]:
        from datetime import datetime

        datetime.fromisoformat(entry["startedDateTime"])
        number(entry["time"])
        for part in ("request", "response"):
            number(entry[part]["headersSize"])
            number(entry[part]["bodySize"])
            assert all({"name", "value"} <= set(h) for h in entry[part]["headers"])
        request, response = entry["request"], entry["response"]
        assert request["method"] == "GET" and request["httpVersion"]
        assert request["queryString"] == [] and request["cookies"] == []
        number(response["status"])
        number(response["content"]["size"])
        assert isinstance(response["content"]["mimeType"], str)
        for key in ("send", "wait", "receive"):
            number(entry["timings"][key])
        assert entry["_resourceType"] == "websocket"
        for message in entry["_webSocketMessages"]:
            assert message["type"] in ("send", "receive", "error")
            number(message["time"])
            number(message["opcode"])
            assert isinstance(message["data"], str)


def _sample_trace() -> Trace:
    writer = TraceWriter(None, target="wss://h/api/v1/websocket?token=secret", session="s1")
    base = 1757505600_123456_789
    writer.record(
        "open",
        t_wall_ns=base,
        t_mono_ns=5,
        url="wss://h/api/v1/websocket",
        http_status=101,
        subprotocol="jwt-auth",
        offered_subprotocols=["jwt-auth"],
        request_header_names=["Authorization", "X-Trace"],
        response_headers={"Upgrade": "websocket", "Sec-WebSocket-Protocol": "jwt-auth"},
        connect_ms=12.5,
    )
    frames: list[tuple[str, str | bytes]] = [
        ("receive", '{"type":"connection_established","data":{"mode":"main"}}'),
        ("send", '{"type":"user_message","payload":{"text":"héllo ✓ \\u00e9","thread_id":"t1"}}'),
        ("receive", b"\x00\xffeyJ\x01binary"),
        ("receive", "not json at all\n\twith whitespace  "),
        ("receive", ""),
    ]
    for i, (direction, data) in enumerate(frames):
        writer.frame(direction, data, t_wall_ns=base + (i + 1) * 1_234_567_891, t_mono_ns=i)
    writer.mark("quiet window begins", t_wall_ns=base + 9_000_000_000, t_mono_ns=9)
    writer.record("error", stage="receive", message="boom", t_wall_ns=base + 9_500_000_000)
    writer.record("close", code=1000, reason="bye", t_wall_ns=base + 10_000_000_000)
    return writer.to_trace()


def test_export_is_a_har_devtools_imports_and_it_round_trips_through_import(tmp_path: Path):
    original = _sample_trace()
    path = export_har(original, tmp_path / "run.har")
    har = json.loads(path.read_text(encoding="utf-8"))
    _devtools_would_import(har)
    (entry,) = har["log"]["entries"]
    assert har["log"]["version"] == "1.2"
    assert entry["response"]["status"] == 101
    assert entry["response"]["statusText"] == "Switching Protocols"
    assert entry["request"]["url"] == "wss://h/api/v1/websocket"
    assert {"name": "Authorization", "value": REDACTED} in entry["request"]["headers"]
    assert entry["comment"].startswith("1 mark(s)")

    (back,) = har_to_traces(load_har(path))
    before, after = original.frames, back.frames
    assert [(f["dir"], f["opcode"], f["data"], f["size"]) for f in after] == [
        (f["dir"], f["opcode"], f["data"], f["size"]) for f in before
    ]
    assert [us(f["t_wall_ns"]) for f in after] == [us(f["t_wall_ns"]) for f in before]
    assert [f.get("event") for f in after] == [f.get("event") for f in before]
    assert [r["kind"] for r in back.records] == ["open", *["frame"] * 5, "error", "close"]
    error, close = back.records[-2:]
    assert error["message"] == "boom"
    assert (close["code"], close["reason"]) == (1000, "bye")
    assert us(close["t_wall_ns"]) == us(original.records[-1]["t_wall_ns"])
    assert us(back.records[0]["t_wall_ns"]) == us(original.records[0]["t_wall_ns"])


@pytest.mark.parametrize("name", ["chrome.har", "mitmproxy.har", "httptoolkit.har"])
def test_an_imported_capture_exports_and_imports_back_unchanged(tmp_path: Path, name: str):
    first = single(fixture(name))
    again = single(json.loads(export_har(first, tmp_path / "x.har").read_text(encoding="utf-8")))
    assert again.frames == first.frames  # every field: data, clocks, normalized fields
    assert again.records[0]["subprotocol"] == first.records[0]["subprotocol"]


def test_export_reads_a_trace_file_and_keeps_an_existing_har(tmp_path: Path):
    (trace_path,) = import_har(HAR_DIR / "httptoolkit.har", tmp_path)
    out = export_har(trace_path, tmp_path / "share" / "run.har")
    first = out.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_har(trace_path, out)
    assert out.read_bytes() == first
    export_har(trace_path, out, overwrite=True)


def test_export_redacts_secret_text_in_frames_and_marks_the_message():
    token = mint_token("eve")
    writer = TraceWriter(None)
    writer.frame("send", json.dumps({"type": "auth", "token": token}), t_wall_ns=1, t_mono_ns=1)
    (message,) = trace_to_har(writer.to_trace())["log"]["entries"][0]["_webSocketMessages"]
    assert token not in message["data"] and REDACTED in message["data"]
    assert message["_redacted"] is True
    with pytest.warns(HarWarning, match="redacted data"):
        (back,) = har_to_traces(trace_to_har(writer.to_trace()))
    assert back.frames[0]["flags"] == ["data redacted before this HAR was written"]


def test_a_real_session_exports_without_its_token_and_imports_back(server, tmp_path: Path):
    token = mint_token("frank")

    async def scenario() -> Trace:
        async with connect(server.url, token=token, auth="both", trace=tmp_path) as session:
            await session.next(timeout=t(5))
            await session.send_user_message("hi")
            await session.collect(until="agent_completed", timeout=t(10))
        return read_trace(next(tmp_path.glob("*.jsonl")))

    trace = run(scenario())
    out = export_har(trace, tmp_path / "session.har")
    text = out.read_text(encoding="utf-8")
    assert token not in text
    assert encode_subprotocol_token(token)[len("jwt.") :] not in text
    _devtools_would_import(json.loads(text))
    (back,) = har_to_traces(load_har(out))
    assert [f["event"] for f in back.frames] == [f["event"] for f in trace.frames]
    assert [f["data"] for f in back.frames] == [f["data"] for f in trace.frames]


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_import_har_and_export_har(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    src = tmp_path / "cap.har"
    shutil.copy(HAR_DIR / "mitmproxy.har", src)
    assert main(["import-har", str(src), "--out", str(tmp_path / "traces")]) == 0
    out = capsys.readouterr().out
    trace_path = tmp_path / "traces" / "cap-ws01.jsonl"
    assert str(trace_path) in out and "6 frames" in out

    har_path = tmp_path / "back.har"
    assert main(["export-har", str(trace_path), "--out", str(har_path)]) == 0
    assert str(har_path) in capsys.readouterr().out
    assert len(load_har(har_path)["log"]["entries"][0]["_webSocketMessages"]) == 6


def test_cli_import_har_reports_a_bad_file_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    bad = tmp_path / "bad.har"
    bad.write_text("<html></html>", encoding="utf-8")
    assert main(["import-har", str(bad), "--out", str(tmp_path)]) == 2
    assert "not a HAR file" in capsys.readouterr().err
