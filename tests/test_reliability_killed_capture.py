"""A capture killed with SIGKILL mid-stream loses nothing it had received.

The server (a subprocess) sends a numbered stream at a known rate (a run of 300
``agent_thinking`` events 10 ms apart) and logs every frame it writes. The capture (another
subprocess: ``netra_ws.connect`` with a trace file) prints the ``seq`` of each frame as it
gets it; the test kills it with SIGKILL mid-stream. Every frame the capture had received
more than 50 ms before the kill must be in the trace on disk, the trace must be exactly a
prefix of what the server wrote, and it must load (with a warning naming the cut line when
the kill cut one).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

from conftest import t
from helpers.reliability import ServerProcess

from netra_ws.trace import TraceWarning, read_trace

STREAM = 300  # agent_thinking events in the run
KILL_AFTER = 60  # frames the capture has reported before the kill
FLUSH_DEADLINE_S = 0.050  # what the writer promises: a received frame is on disk by then

CAPTURE = """\
import asyncio, sys
from netra_ws import connect

async def main(url, path):
    async with connect(url, trace=path) as session:
        await session.next(timeout=30)
        await session.send_user_message("a numbered stream, please")
        while True:
            frame = await session.next(timeout=30)
            print(frame.seq, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_a_capture_killed_mid_stream_keeps_every_frame_it_had(tmp_path):
    scenario = tmp_path / "stream.json"
    thoughts = [f"frame {i:04d}" for i in range(1, STREAM + 1)]
    scenario.write_text(
        json.dumps({"first_delay": 0.01, "step_delay": 0.01, "thinking": thoughts}),
        encoding="utf-8",
    )
    trace_path = tmp_path / "capture.jsonl"
    with ServerProcess(tmp_path / "server.log", "--scenario", str(scenario)) as server:
        capture = subprocess.Popen(
            [sys.executable, "-c", CAPTURE, server.url, str(trace_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        reported: list[tuple[int, float]] = []  # (seq, when the test read it)
        enough = threading.Event()

        def read_reports() -> None:
            assert capture.stdout is not None
            for line in capture.stdout:
                reported.append((int(line), time.monotonic()))
                if len(reported) >= KILL_AFTER:
                    enough.set()
            enough.set()  # the capture ended: stop waiting

        reader = threading.Thread(target=read_reports, daemon=True)
        reader.start()
        assert enough.wait(t(30)), "the capture reported nothing"
        assert capture.poll() is None, capture.stderr.read() if capture.stderr else ""
        time.sleep(0.2)  # the stream flows on: the kill hits a capture in full swing
        killed_at = time.monotonic()
        os.kill(capture.pid, signal.SIGKILL)
        capture.wait(timeout=t(10))
        reader.join(timeout=t(10))
        time.sleep(0.1)  # the server notices the dead connection and logs no more frames
        sent = server.sent()
    assert capture.returncode == -signal.SIGKILL

    raw = trace_path.read_bytes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace = read_trace(trace_path)
    on_disk = {f["seq"] for f in trace.frames}
    received = [f for f in trace.frames if f["dir"] == "receive"]

    # Nothing the capture had for more than the flush deadline is lost.
    settled = [seq for seq, when in reported if when < killed_at - FLUSH_DEADLINE_S]
    assert len(settled) >= KILL_AFTER  # the stream had really been flowing
    assert [seq for seq in settled if seq not in on_disk] == []
    # Killed mid-stream (the server stopped when the connection died), and the trace is
    # exactly what the server wrote, in order, frame for frame, up to the kill.
    assert 0 < len(received) <= len(sent) < STREAM, (len(received), len(sent))
    assert [(f["opcode"], f["size"]) for f in received] == [(o, s) for o, s, _ in sent][
        : len(received)
    ]
    assert [f["seq"] for f in trace.frames] == list(range(1, len(trace.frames) + 1))
    thinking = [json.loads(f["data"]) for f in received if f["event"] == "agent_thinking"]
    assert [e["payload"]["reasoning"] for e in thinking] == thoughts[: len(thinking)]

    # The file loads; a cut last line is skipped with a warning that says so.
    messages = [str(w.message) for w in caught if issubclass(w.category, TraceWarning)]
    if raw.endswith(b"\n"):
        assert messages == [] and trace.skipped_lines == 0
    else:
        cut_line = raw.count(b"\n") + 1
        assert trace.skipped_lines == 1
        assert messages == [
            f"{trace_path}: skipped 1 unreadable line(s) (line {cut_line}: truncated last line)"
        ]
