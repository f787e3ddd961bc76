"""Faults during a capture: the trace keeps every frame received before the fault, a close
or error record says how it ended, and the workflow probe's verdict names the fault.

Each test runs :func:`netra_ws.probes.probe_workflow` against a strict server (a token is
needed, so the secret scan at the end of each test has something to find) that drops the
TCP connection, closes with 1011, is killed with SIGKILL (in a subprocess), stalls past the
probe's timeout, or trickles its bytes through a proxy. What the server sent comes from its
own log (FAULT lines, or websockets' frame-by-frame debug lines for the killed one).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading

import pytest
from conftest import FAST, RUN, run, t
from helpers.reliability import ServerProcess, TrickleProxy, scan_for_secrets, secret_forms

from netra_ws.probes import probe_workflow
from netra_ws.tokens import mint_token
from netra_ws.trace import read_trace

SECRET = "reliability-faults-secret-6b1f0e7d2c"
FAULT_LINE = re.compile(r"^FAULT (?P<what>.+) run=(?P<run>\S+) conn=(?P<conn>\S+)$")


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.INFO, logger="netra_ws.server")
    return caplog


def _received(trace):
    return [f for f in trace.frames if f["dir"] == "receive"]


def _ending(trace):
    """The close or error record that says how the connection ended."""
    return next(r for r in trace.records if r["kind"] in ("close", "error"))


def _no_secrets(tmp_path, token, logs: str) -> None:
    forms = secret_forms(token, SECRET)
    scanned, leaks = scan_for_secrets([tmp_path], {"server log": logs}, forms, any_jwt=True)
    assert scanned >= 2 and leaks == []


def _faulted_probe(make_server, tmp_path, spec, **options):
    srv = make_server(auth="strict", secret=SECRET, faults=[spec])
    token = srv.token("fault-user")
    result = run(probe_workflow(srv.url, token=token, out=tmp_path / "out", **options))
    (path,) = result.traces
    return result, read_trace(path), token


def test_a_tcp_drop_mid_run(make_server, tmp_path, server_log):
    result, trace, token = _faulted_probe(
        make_server, tmp_path, "tcp-close:after=agent_thinking#2", timeout=t(10)
    )
    names = [f["event"] for f in _received(trace)]
    assert names == ["connection_established", *RUN[:3]]  # all sent before the drop
    close = _ending(trace)
    assert close["kind"] == "close" and close["code"] == 1006
    assert close["received_close_frame"] is False
    (fault,) = [m for m in map(FAULT_LINE.match, server_log.messages) if m]
    assert fault["what"] == "tcp-close after=agent_thinking#2"
    assert fault["run"] == _received(trace)[-1]["run_id"]

    assert result.status == "failed"
    assert re.search(
        r"after agent_thinking #\d+; then the connection closed with 1006", result.explanation
    ), result.explanation
    _no_secrets(tmp_path, token, server_log.text)


def test_a_close_1011_mid_run(make_server, tmp_path, server_log):
    result, trace, token = _faulted_probe(
        make_server, tmp_path, "close-1011:after=tool_executing", timeout=t(10)
    )
    assert [f["event"] for f in _received(trace)] == ["connection_established", *RUN[:4]]
    close = _ending(trace)
    assert (close["code"], close["reason"], close["initiated_by"]) == (
        1011,
        "Internal error (injected fault)",
        "server",
    )
    assert result.status == "failed"
    assert re.search(
        r"after tool_executing #\d+; then the connection closed with 1011 Internal error",
        result.explanation,
    ), result.explanation
    # The second user_message could not be sent: the probe says why, not just "failed".
    assert (
        "the server closed the connection with 1011 Internal error (injected fault) (a server "
        "failure)" in result.explanation
    )
    _no_secrets(tmp_path, token, server_log.text)


def test_a_stall_past_the_probes_timeout(make_server, tmp_path, server_log):
    timeout = t(0.5)
    result, trace, token = _faulted_probe(
        make_server, tmp_path, f"stall:agent_thinking#2:{t(5)}", timeout=timeout, forms=("flat",)
    )
    assert [f["event"] for f in _received(trace)] == ["connection_established", *RUN[:2]]
    close = _ending(trace)  # the probe gave up and closed: the close record says so
    assert (close["code"], close["initiated_by"]) == (1000, "client")
    ended = [m for m in trace.marks if m["label"] == "workflow probe: collection ended"]
    assert [m["reason"] for m in ended] == ["timeout"]
    last_seq = _received(trace)[-1]["seq"]
    assert result.status == "failed"
    assert result.explanation.startswith(
        f"no agent_completed within the {timeout:g} s timeout (flat user_message); "
        f"last event agent_thinking #{last_seq}"
    ), result.explanation
    _no_secrets(tmp_path, token, server_log.text)


def test_a_server_trickling_its_bytes(make_server, tmp_path, server_log, caplog):
    caplog.set_level(logging.DEBUG, logger="netra_ws.server")  # websockets logs each frame
    srv = make_server(auth="strict", secret=SECRET, scenario=FAST)
    token = srv.token("trickle-user")
    port = int(srv.url.split(":")[2].split("/")[0])
    with TrickleProxy(("127.0.0.1", port), chunk=3, interval=0.0005) as proxy:
        result = run(
            probe_workflow(
                proxy.url(),
                token=token,
                out=tmp_path / "out",
                timeout=t(20),
                budgets={"max_gap_s": 0.005},
            )
        )
    trace = read_trace(result.traces[0])
    received = _received(trace)
    sent = [m for m in caplog.messages if m.startswith("> TEXT")]
    # Every frame arrived whole, in order, with the size the server sent, in many pieces.
    assert len(received) == len(sent) == 1 + 2 * len(RUN)
    assert [f["size"] for f in received] == [
        int(re.search(r"\[(\d+) bytes\]$", m)[1]) for m in sent
    ]
    assert all("parse_error" not in f for f in received)
    assert proxy.pieces >= 5 * len(received)  # (compressed: fewer bytes than the sizes)
    assert _ending(trace)["code"] == 1000
    # Complete runs, so only the timing budget fails, and the verdict says where.
    assert [c.name for c in result.checks if c.status == "failed"] == ["largest gap"]
    assert result.status == "failed" and "largest gap" in result.explanation
    _no_secrets(tmp_path, token, "\n".join(caplog.messages))


def test_a_server_killed_with_sigkill_mid_run(tmp_path):
    scenario = tmp_path / "slow.json"
    thoughts = [f"thought {i}" for i in range(1, 21)]
    scenario.write_text(
        json.dumps({"first_delay": 0.02, "step_delay": 0.05, "thinking": thoughts}),
        encoding="utf-8",
    )
    token = mint_token("killed-server-user", secret=SECRET)
    args = ("--auth", "strict", "--secret", SECRET, "--scenario", str(scenario))
    with ServerProcess(tmp_path / "server.log", *args) as server:
        outcome = {}

        def probe() -> None:
            outcome["result"] = asyncio.run(
                probe_workflow(server.url, token=token, out=tmp_path / "out", timeout=t(20))
            )

        prober = threading.Thread(target=probe)
        prober.start()
        try:
            # Mid-run: after the server has written its fourth agent_thinking.
            server.wait_for_sent(
                lambda sent: sum("agent_thinking" in r for _, _, r in sent) >= 4, timeout=t(20)
            )
            server.kill()
        finally:
            prober.join(timeout=t(30))
        sent = server.sent()
        log = server.log()
    assert not prober.is_alive()
    result = outcome["result"]
    trace = read_trace(result.traces[0])
    received = _received(trace)

    # Every frame the server wrote before dying is in the trace, whole and in order. Its
    # log line comes just before the write, so the very last logged frame may be missing.
    assert len(received) in (len(sent), len(sent) - 1), (len(received), len(sent))
    assert [(f["opcode"], f["size"]) for f in received] == [(o, s) for o, s, _ in sent][
        : len(received)
    ]
    assert [f["event"] for f in received][:3] == ["connection_established", *RUN[:2]]
    close = _ending(trace)
    assert close["kind"] == "close" and close["code"] == 1006
    assert close["received_close_frame"] is False

    assert result.status == "failed"
    assert re.search(
        r"after agent_thinking #\d+; then the connection closed with 1006", result.explanation
    ), result.explanation
    # The server's debug log holds the handshake headers: the token must not be in it.
    assert "< Authorization: Bearer [REDACTED]" in log
    _no_secrets(tmp_path, token, log)
