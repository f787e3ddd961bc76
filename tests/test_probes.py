"""The probes against real reference servers: each passes where it should and fails, with
the right explanation, on the dialect or auth mode that must break it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import run, t

from netra_ws import read_trace
from netra_ws.expect import FAILED, INCONCLUSIVE, PASSED
from netra_ws.probes import (
    PROBES,
    ProbeReport,
    probe_auth,
    probe_connection,
    probe_negative,
    probe_workflow,
    run_probes,
)
from netra_ws.server import EmbeddedServer

# Two names keep the negative probe quick; the default sends all six.
NAMES = ("agent_started", "tool_executing")


# --- connection ------------------------------------------------------------------------------


def test_connection_probe_reports_the_welcome_and_the_handshake(make_server, tmp_path):
    srv = make_server(auth="strict")
    result = run(probe_connection(srv, out=tmp_path, timeout=t(5)))
    assert result.status == PASSED, result.explanation
    assert result.facts["first_frame"] == "connection_established"
    assert result.facts["http_status"] == 101
    assert result.facts["user_id"] == "netra-ws..."  # the minted token's user, cut by the server
    assert result.facts["established_ms"] > 0
    assert result.evidence == (1,)
    row = result.to_frame().iloc[0]
    assert row["status"] == PASSED and row["first_frame"] == "connection_established"
    (trace,) = result.traces
    assert trace.parent == tmp_path and read_trace(trace).frames[0]["event"] == (
        "connection_established"
    )


def test_connection_probe_fails_on_auth_failed_without_a_token(make_server):
    srv = make_server(auth="strict")
    result = run(probe_connection(srv.url, out=None, timeout=t(5)))  # a URL: nothing is minted
    assert result.status == FAILED
    assert result.explanation.startswith(
        "the server refused the connection: error_message #1 AUTH_FAILED, then the server "
        "closed the connection with 1008"
    )
    assert result.facts["first_frame"] == "error_message"
    assert result.facts["ended"] == "refused"


def test_connection_probe_fails_on_a_refused_handshake(make_server):
    srv = make_server(auth="reject")
    result = run(probe_connection(srv.url, out=None, timeout=t(5)))
    assert result.status == FAILED
    assert result.explanation.startswith("the server refused the handshake with HTTP 401.")


# --- negative --------------------------------------------------------------------------------


def test_negative_probe_gets_no_reply_and_shows_the_trap(server, tmp_path):
    result = run(probe_negative(server, names=NAMES, quiet=t(0.3), out=tmp_path))
    assert result.status == PASSED, result.explanation
    assert result.facts["single_read_after_connect"].startswith("connection_established")
    assert "The trap" in result.explanation and "took it for a reply" in result.explanation
    assert [c.name for c in result.checks] == [f"no reply: {n}" for n in NAMES]
    frames = read_trace(result.traces[0]).frames
    assert [f["event"] for f in frames if f["dir"] == "receive"] == ["connection_established"]


@pytest.mark.parametrize(
    ("names", "reply"), [(("frobnicate",), "ack #"), (("ping",), "pong #")], ids=["ack", "pong"]
)
def test_negative_probe_fails_when_something_comes_back(server, names, reply):
    """No dialect answers output names, so inputs that do get an answer stand in for one."""
    result = run(probe_negative(server, names=names, quiet=t(0.3), out=None))
    assert result.status == FAILED
    assert f"{names[0]} sent as input (#1) got a reply: {reply}" in result.explanation
    assert result.evidence[0] == 1


def test_negative_probe_is_inconclusive_when_refused(make_server):
    srv = make_server(auth="strict")
    result = run(probe_negative(srv.url, names=NAMES, quiet=t(0.3), out=None))
    assert result.status == INCONCLUSIVE
    assert result.explanation.startswith(
        "the probe could not judge any input: the server refused the connection: error_message #"
    )
    assert "Nothing was learnt about inputs." in result.explanation
    assert "got a reply" not in result.explanation  # the refusal is no reply to an input


# --- workflow --------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["bridge", "manager", "wrapped"])
def test_workflow_probe_passes_netra_bridge_on_every_envelope(make_server, tmp_path, dialect):
    srv = make_server(dialect=dialect, auth="strict")
    result = run(probe_workflow(srv, out=tmp_path, timeout=t(5)))
    assert result.status == PASSED, result.checks.explain()
    assert "after user_message #2 (flat form), user_message #9 (payload form)" in (
        result.explanation
    )
    assert result.facts["agent_events"] == 12
    assert len(result.traces) == 1


def test_workflow_probe_fails_on_staging_937_and_says_why(make_server, tmp_path):
    srv = make_server(dialect="staging-937")
    result = run(probe_workflow(srv, out=tmp_path, timeout=t(0.5)))
    assert result.status == FAILED
    text = result.explanation
    assert "No agent events arrived after user_message #2 (flat form), user_message #3" in text
    assert "the connection is the demo user" in text
    assert "connection_established #1 says user_id 'demo-use...'" in text
    assert result.facts["agent_events"] == 0
    # The frames that did come parse; no check about agent events may pass.
    assert not any(c.status == PASSED for c in result.checks if c.name != "frames parse")


def test_workflow_probe_fails_netra_bridge_on_the_suite_contract_dialect(make_server):
    srv = make_server(dialect="suite-contract")
    result = run(probe_workflow(srv, out=None, timeout=t(5)))
    assert result.status == FAILED
    failed = {c.name: c for c in result.checks.failures}
    assert set(failed) == {"fields: tool_completed", "fields: agent_completed"}
    assert failed["fields: tool_completed"].missing == ("result", "execution_time_ms")
    assert "result missing (the top level has results instead)" in result.explanation


def test_workflow_probe_with_netra_suite_lists_each_mismatch_of_the_bridge(server):
    result = run(probe_workflow(server, profile="netra-suite", out=None, timeout=t(5)))
    assert result.status == FAILED
    missing = {c.event: c.missing for c in result.checks.failures}
    assert missing["tool_completed"] == ("results", "duration", "timestamp")
    assert missing["agent_completed"] == ("final_response", "timestamp")
    assert "thread_id" in missing["agent_started"]
    for phrase in (
        "results missing (payload has result instead)",
        "duration missing (payload has execution_time_ms instead)",
        "final_response missing",
        "thread_id missing",
    ):
        assert phrase in result.explanation


def test_workflow_probe_passes_netra_suite_on_the_suite_contract_dialect(make_server):
    srv = make_server(dialect="suite-contract")
    result = run(
        probe_workflow(srv, profile="netra-suite", forms=("flat",), out=None, timeout=t(5))
    )
    assert result.status == PASSED, result.checks.explain()


def test_workflow_probe_fails_a_tight_gap_budget(server):
    # The fast scenario leaves 5 ms between events: a 1 ms budget must break.
    result = run(
        probe_workflow(
            server, forms=("flat",), budgets={"max_gap_s": 0.001}, out=None, timeout=t(5)
        )
    )
    assert result.status == FAILED
    assert [c.name for c in result.checks.failures] == ["largest gap"]
    assert "(budget 0.001 s)" in result.explanation


def test_workflow_probe_is_inconclusive_when_the_connection_is_refused(make_server):
    """Refused at connect, nothing was validated and nothing was learnt about user_message."""
    srv = make_server(auth="strict")
    result = run(probe_workflow(srv.url, out=None, timeout=t(2)))
    assert result.status == INCONCLUSIVE
    assert result.explanation.startswith(
        "no user_message could be judged: the server refused the connection: error_message #1 "
        "AUTH_FAILED"
    )


# --- auth matrix -----------------------------------------------------------------------------


def _rows(result):
    return {row["credential"]: row for row in result.rows}


def test_auth_probe_passes_when_authentication_is_enforced(make_server, tmp_path):
    srv = make_server(auth="strict")
    result = run(probe_auth(srv, out=tmp_path, timeout=t(5)))
    assert result.status == PASSED, result.explanation
    rows = _rows(result)
    assert rows["no token"]["first_frame"] == "error_message AUTH_FAILED"
    assert rows["no token"]["close_code"] == 1008
    assert rows["expired token"]["close_code"] == 1008
    assert rows["bad signature"]["close_code"] == 1008
    assert rows["jwt.<base64url> subprotocol"]["subprotocol"] == "jwt.[REDACTED]"
    assert rows["bare jwt-auth + header"]["subprotocol"] == "jwt-auth"
    assert all(rows[k]["agent_events"] for k in ("header", "bare jwt-auth + header"))
    assert len(result.traces) == 6
    df = result.to_frame()
    assert df["http_status"].dtype == "Int64" and df["agent_events"].dtype == "boolean"


def test_auth_probe_reports_http_statuses_of_reject_mode(make_server):
    srv = make_server(auth="reject")
    result = run(probe_auth(srv, out=None, timeout=t(5)))
    assert result.status == PASSED, result.explanation
    rows = _rows(result)
    assert rows["no token"]["http_status"] == 401
    assert rows["expired token"]["http_status"] == 403
    assert rows["bad signature"]["explanation"] == "refused (HTTP 403)."


@pytest.mark.parametrize("mode", ["demo", "relaxed"])
def test_auth_probe_fails_when_anyone_gets_in(make_server, mode):
    srv = make_server(auth=mode)
    result = run(probe_auth(srv, out=None, timeout=t(5)))
    assert result.status == FAILED
    rows = _rows(result)
    user = "demo-use..." if mode == "demo" else "relaxed_..."
    for credential in ("no token", "expired token", "bad signature"):
        assert rows[credential]["status"] == FAILED
        assert f"accepted as user '{user}'" in rows[credential]["explanation"]
        assert "authentication is not enforced" in rows[credential]["explanation"]
    assert rows["header"]["status"] == PASSED


def test_auth_probe_on_staging_937_sees_the_demo_user_and_no_events(make_server):
    srv = make_server(dialect="staging-937", auth="demo")  # DEMO_MODE, as #937 met staging
    result = run(probe_auth(srv, out=None, timeout=t(0.3)))
    assert result.status == FAILED
    header = _rows(result)["header"]
    assert header["agent_events"] is False
    assert "the demo user: the server ignored the token" in header["explanation"]
    assert "no agent events flowed" in header["explanation"]


def test_auth_probe_on_staging_937_strict_tells_a_crash_from_a_refusal(make_server):
    """PROTOCOL.md §8: bad credentials crash the route (CONNECTION_ERROR, close 1011); a valid
    token is accepted as its own user and still gets nothing."""
    srv = make_server(dialect="staging-937", auth="strict")
    rows = _rows(run(probe_auth(srv, out=None, timeout=t(0.3))))
    for credential in ("no token", "expired token", "bad signature"):
        row = rows[credential]
        assert row["status"] == FAILED and row["ended"] == "failed", row
        assert row["first_frame"] == "error_message CONNECTION_ERROR" and row["close_code"] == 1011
        assert row["explanation"].startswith("the server failed instead of answering")
    header = rows["header"]
    assert header["status"] == FAILED and header["user_id"] == "netra-ws..."
    assert "demo user" not in header["explanation"]
    assert "no agent events flowed" in header["explanation"]


def test_a_crash_at_every_handshake_is_no_refusal(make_server):
    """/ws/factory answers HTTP 500 at every handshake: no row passes as "refused"."""
    srv = make_server(dialect="staging-937", auth="strict")
    url = srv.url.replace("/api/v1/websocket", "/ws/factory")
    rows = _rows(run(probe_auth(url, token=srv.token("f"), out=None, timeout=t(2))))
    assert {row["status"] for row in rows.values()} - {INCONCLUSIVE} == {FAILED}
    assert rows["no token"]["explanation"].startswith("the server failed instead of answering")
    assert "check the token" not in rows["header"]["explanation"]


def test_connect_time_refusal_is_never_a_reply_in_20_runs(make_server):
    """The CONNECTION_ERROR frame races the negative probe's first send; it must never be
    read as the reply to it (the false finding of issue #20)."""
    srv = make_server(dialect="staging-937", auth="strict")
    for _ in range(20):
        result = run(probe_negative(srv.url, names=NAMES[:2], quiet=t(0.05), out=None))
        assert result.status == INCONCLUSIVE, result.explanation
        assert "got a reply" not in result.explanation
        assert "the server failed at connect" in result.explanation


def test_staging_937_strict_with_a_valid_token_is_a_server_defect_not_auth(make_server):
    srv = make_server(dialect="staging-937", auth="strict")
    report = run(run_probes(srv, out=None, quiet=t(0.05), timeout=t(0.3)))
    diagnosis = report.diagnosis
    assert diagnosis.cause == "swallowed" and diagnosis.server_defect
    assert "accepted the connection as 'netra-ws...'" in diagnosis.summary
    assert "not an authentication problem" in diagnosis.summary
    assert any("made the server fail instead of refusing" in also for also in diagnosis.also)
    assert report.to_dict()["diagnosis"]["cause"] == "swallowed"


def test_auth_probe_on_a_url_needs_a_token_and_a_secret(make_server):
    srv = make_server(auth="strict")
    without = _rows(run(probe_auth(srv.url, out=None, timeout=t(5))))
    assert without["no token"]["status"] == PASSED
    for credential in ("header", "expired token", "bad signature"):
        assert without[credential]["status"] == INCONCLUSIVE
        assert without[credential]["explanation"].startswith("not tried")

    token = srv.token("carol-probe")
    with_token = _rows(run(probe_auth(srv.url, token=token, out=None, timeout=t(5))))
    assert with_token["header"]["status"] == PASSED
    assert with_token["bad signature"]["status"] == PASSED  # made from the token, no secret
    assert with_token["expired token"]["status"] == INCONCLUSIVE
    assert "signing secret" in with_token["expired token"]["explanation"]

    from netra_ws.tokens import resolve_secret

    with_secret = run(
        probe_auth(srv.url, token=token, secret=resolve_secret(), out=None, timeout=t(5))
    )
    assert with_secret.status == PASSED, with_secret.explanation


def test_tokens_never_reach_traces_or_results(make_server, tmp_path):
    srv = make_server(auth="strict")
    token = srv.token("dave-secret-user")
    report = run(run_probes(srv.url, token=token, out=tmp_path, timeout=t(5), quiet=t(0.2)))
    assert report.status == INCONCLUSIVE  # the expired-token row needs the secret
    signature = token.split(".")[2]
    texts = [report.to_text(), repr(report), report.to_frame().to_string()]
    texts += [r.to_frame().to_string() for r in report] + [str(r.facts) for r in report]
    texts += [p.read_text() for p in tmp_path.rglob("*.jsonl")]
    assert len(texts) > 10
    for text in texts:
        assert token not in text and signature not in text


# --- all probes ------------------------------------------------------------------------------


def test_run_probes_on_the_default_embedded_server(tmp_path):
    report = run(run_probes(out=tmp_path, timeout=t(5), quiet=t(0.2)))
    assert isinstance(report, ProbeReport)
    assert report.status == PASSED, report.to_text()
    assert [r.probe for r in report] == list(PROBES)
    assert report["auth"].status == PASSED
    assert report.out_dir.parent == tmp_path and report.out_dir.name.startswith("probes-")
    assert len(list(report.out_dir.glob("*.jsonl"))) == 3 + 6
    df = report.to_frame()
    assert list(df.columns) == ["probe", "status", "explanation", "evidence", "traces"]
    assert "verdict: passed" in report.to_text()
    with pytest.raises(KeyError, match="no probe 'nope'"):
        report["nope"]


def test_run_probes_selects_probes_and_refuses_unknown_ones(server):
    report = run(run_probes(server, probes=("workflow",), out=None, timeout=t(5)))
    assert [r.probe for r in report] == ["workflow"] and report.out_dir is None
    with pytest.raises(ValueError, match="unknown probes"):
        run(run_probes(server, probes=("nope",), out=None))


# --- the CLI ---------------------------------------------------------------------------------

TOKEN_ENV = "PROBE_TOKEN_FOR_TEST"


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """``python -m netra_ws probe`` in three configurations at once (they mostly wait)."""
    out = tmp_path_factory.mktemp("cli")
    quick = ["--quiet", "0.1"]
    with EmbeddedServer(auth="strict") as srv:
        token = srv.token("erin-cli")
        configs = {
            "embedded": [*quick, "--timeout", "5"],
            "staging-937": [*quick, "--timeout", "0.3", "--dialect", "staging-937"],
            "staging-937-json": [*quick, "--timeout", "0.3", "--dialect", "staging-937", "--json"],
            "url-token": [srv.url, "--token-env", TOKEN_ENV, "--auth", "subprotocol", *quick],
            "missing-env": [srv.url, "--token-env", "NO_SUCH_VARIABLE_FOR_TEST"],
        }
        procs = {
            name: subprocess.Popen(
                [sys.executable, "-m", "netra_ws", "probe", "--out", str(out / name), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, TOKEN_ENV: token},
            )
            for name, args in configs.items()
        }
        results = {}
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=120)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return results, out, token


def test_cli_probe_passes_on_the_embedded_bridge_and_writes_traces(cli_runs):
    results, out, _ = cli_runs
    result = results["embedded"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 4  # the four probes
    lines = [line.strip() for line in result.stdout.splitlines()]
    for credential in ("no token", "header", "bare jwt-auth", "expired token", "bad signature"):
        row = next(line for line in lines if line.startswith(credential))  # the auth matrix
        assert row.endswith(" passed"), row
    assert "verdict: passed" in result.stdout
    (run_dir,) = (out / "embedded").iterdir()
    assert len(list(run_dir.glob("*.jsonl"))) == 9


def test_cli_probe_fails_on_staging_937_with_the_reason(cli_runs):
    result = cli_runs[0]["staging-937"]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED       workflow" in result.stdout
    assert "No agent events arrived after user_message" in result.stdout
    assert "verdict: failed" in result.stdout


def test_cli_probe_json_names_the_cause_with_its_evidence(cli_runs):
    """staging-937 with strict auth and a valid token: authenticated, and still nothing."""
    results, out, _ = cli_runs
    result = results["staging-937-json"]
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert data["verdict"] == "failed"
    assert [p["probe"] for p in data["probes"]] == list(PROBES)
    diagnosis = data["diagnosis"]
    assert diagnosis["cause"] == "swallowed" and diagnosis["server_defect"] is True
    assert "accepted the connection as 'netra-ws...'" in diagnosis["summary"]
    assert "not an authentication problem" in diagnosis["summary"]
    (evidence,) = [e for e in diagnosis["evidence"] if e["probe"] == "workflow"]
    (run_dir,) = (out / "staging-937-json").iterdir()
    assert (run_dir / evidence["trace"]).is_file() and evidence["seqs"] == [2, 3]


def test_cli_probe_reads_the_token_from_the_named_variable(cli_runs):
    results, _, token = cli_runs
    result = results["url-token"]
    # Expired-token row: no secret for a URL target, so inconclusive, so exit 3.
    assert result.returncode == 3, result.stdout + result.stderr
    assert "PASSED       workflow" in result.stdout and "INCONCLUSIVE auth" in result.stdout
    assert "jwt.[REDACTED]" in result.stdout  # the subprotocol form was used
    assert token not in result.stdout + result.stderr
    missing = results["missing-env"]
    assert missing.returncode == 2 and "NO_SUCH_VARIABLE_FOR_TEST" in missing.stderr


def test_public_names_exist_and_are_unique():
    import importlib

    for name in ("netra_ws.expect", "netra_ws.probes", "netra_ws.contract"):
        module = importlib.import_module(name)
        assert len(set(module.__all__)) == len(module.__all__)
        for attr in module.__all__:
            assert hasattr(module, attr), f"{name}.__all__ lists missing {attr}"
