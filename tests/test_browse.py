"""Browsing a trace: Trace.filter, the listing of `show` and the console, `netra-ws show`.

Pure: the traces are written here with a TraceWriter, no server needed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netra_ws.browse import _safe, format_record, html_listing, listing, select_frames, summary
from netra_ws.trace import Trace, TraceWriter, read_trace

ESC = "\x1b"
# A hostile server: its event name and its payload try to clear the screen and recolour it.
HOSTILE = json.dumps({"type": f"agent_thinking{ESC}[2J", "thought": f"hi{ESC}[31m\x07\x9b"})


def _write(path: Path) -> Trace:
    frames = [
        (0, "receive", {"type": "connection_established", "data": {"user_id": "alice..."}}),
        (10, "send", {"type": "user_message", "message": "first"}),
        (20, "receive", {"type": "agent_started", "run_id": "r1", "payload": {}}),
        (30, "receive", {"type": "agent_thinking", "run_id": "r1", "payload": {"x": "tool"}}),
        (40, "receive", {"type": "agent_completed", "run_id": "r1", "payload": {}}),
        (50, "send", {"type": "user_message", "message": "second"}),
        (60, "receive", {"type": "agent_started", "run_id": "r2", "payload": {}}),
        (70, "receive", {"type": "agent_completed", "run_id": "r2", "payload": {}}),
    ]
    with TraceWriter(path, target="ws://x") as w:
        w.record("open", t_wall_ns=0, t_mono_ns=0, http_status=101, auth="header")
        for ms, way, obj in frames:
            ns = (ms + 5) * 10**6
            w.frame(way, json.dumps(obj), t_wall_ns=ns, t_mono_ns=ns)
        w.frame("receive", HOSTILE, t_wall_ns=90 * 10**6, t_mono_ns=90 * 10**6)
        w.mark("done", t_wall_ns=95 * 10**6, t_mono_ns=95 * 10**6)
    return read_trace(path)


@pytest.fixture
def trace(tmp_path: Path) -> Trace:
    return _write(tmp_path / "t.jsonl")


def _events(t: Trace) -> list[str | None]:
    return [f.get("event") for f in t.frames]


def test_filter_by_event_direction_text_and_run(trace):
    assert _events(trace.filter(event="agent_started")) == ["agent_started"] * 2
    assert _events(trace.filter(event=["agent_started", "user_message"], dir="send")) == [
        "user_message",
        "user_message",
    ]
    assert [f["seq"] for f in trace.filter(text=r'"x": "tool"').frames] == [4]
    second = trace.filter(run=2)
    # The hostile frame has no run_id: it belongs to the segment of the last user_message.
    assert _events(second) == [
        "user_message",
        "agent_started",
        "agent_completed",
        f"agent_thinking{ESC}[2J",
    ]
    assert trace.filter(run="t#2").frames == second.frames  # a label is its number
    # The open record stays, so times keep the whole trace's origin.
    assert second.to_frame()["t_s"].tolist() == [0.055, 0.065, 0.075, 0.09]
    assert [r["kind"] for r in second.records] == ["open", "frame", "frame", "frame", "frame"]


def test_filter_refuses_what_it_cannot_select(trace):
    with pytest.raises(ValueError, match="direction must be one of"):
        trace.filter(dir="up")
    with pytest.raises(ValueError, match=r"its runs: 1 .*, 2 "):
        trace.filter(run=3)
    with pytest.raises(ValueError, match="bad regular expression"):
        trace.filter(text="(")


def test_no_server_text_reaches_the_terminal_raw(trace):
    lines = list(listing(trace.records, color=False))
    text = "\n".join(lines)
    assert ESC not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b[2J" in text and "\\x1b[31m\\x07\\x9b" in text  # escaped, still readable
    # With colour, the only ESC sequences are ours (SGR colours), never the server's.
    coloured = "\n".join(listing(trace.records, color=True))
    assert coloured.replace("\x1b[0m", "").count(ESC) == coloured.count("\x1b[0m")
    assert "\x1b[2J" not in coloured


def test_safe_cuts_long_values_with_their_length():
    assert _safe("a" * 500) == "a" * 60 + "… (500 chars)"
    assert _safe("ok\r\n") == "ok\\r\\n"


def test_listing_lines(trace):
    lines = list(listing(trace.records))
    assert lines[0].split() == [
        "0.000s",
        "⇄",
        "open",
        "HTTP",
        "101",
        "auth=header",
        "subprotocol=None",
    ]
    assert lines[1].split()[:4] == ["0.005s", "←", "#1", "connection_established"]
    assert "user_id=alice..." in lines[1]
    assert lines[2].split()[:5] == ["0.015s", "→", "#2", "user_message", "message=first"]
    assert lines[-1].split()[:4] == ["0.095s", "●", "mark", "done"]
    assert format_record({"kind": "close", "code": 1011, "reason": "boom"}, None).split() == [
        "✕",
        "close",
        "1011",
        "'boom'",
        "by",
        "?",
    ]


def test_summary_of_a_frame_that_is_not_json():
    record = {"kind": "frame", "opcode": "text", "data": "not json", "parse_error": "bad JSON"}
    assert summary(record) == "(bad JSON) not json"


def test_select_frames_returns_the_records_themselves(trace):
    chosen = select_frames(trace.records, event="agent_completed")
    assert all(any(c is r for r in trace.records) for c in chosen)


def test_html_listing_escapes_and_collapses(trace):
    page = trace._repr_html_()
    assert "<details><summary>" in page and "<pre>" in page
    assert ESC not in page and "<table" in page
    assert "agent_completed" in page
    assert "first 2 of" in html_listing(trace.records, limit=2)


def _show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netra_ws", "show", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_show_lists_filters_and_prints_json_lines(trace):
    path = str(trace.path)
    plain = _show(path)
    assert plain.returncode == 0, plain.stderr
    assert ESC not in plain.stdout  # not a TTY: no colour, and server text escaped
    assert len(plain.stdout.splitlines()) == len(trace.records)
    sent = _show(path, "--dir", "send", "--grep", "second")
    assert [line.split()[2] for line in sent.stdout.splitlines()[1:]] == ["#6"]
    lines = _show(path, "--event", "agent_started", "--json").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [3, 7]
    bad = _show(path, "--run", "9")
    assert bad.returncode == 2 and "no run '9'" in bad.stderr
