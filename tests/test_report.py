"""The report: real probes against embedded servers write traces; the report is built from
those traces alone, and its tables and sentences are checked word for word.

Three investigations: a passing one (dialect bridge, strict auth, minted tokens), the
failing ``staging-937`` one, and a strict server probed by URL without a token (refused).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import FAST, t

from netra_ws.contract import CONTRACT_TESTS, evaluate_contract
from netra_ws.expect import FAILED, INCONCLUSIVE, PASSED
from netra_ws.probes import PROBES, ProbeReport, run_probes
from netra_ws.redact import REDACTED, Redactor
from netra_ws.report import Report, build_report, investigation_sources, judge_traces
from netra_ws.server import EmbeddedServer
from netra_ws.trace import TraceWriter, read_trace

QUIET = t(0.2)  # the negative windows: the embedded server answers in milliseconds
TIMEOUT = t(1)  # staging-937 swallows user_message, so its collections run this long
STRUCTURE = [test for test in CONTRACT_TESTS if test.endswith("_structure")]


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> dict[str, ProbeReport]:
    """The four investigations, probed at once (they mostly wait on sockets): the backend as
    intended, staging as #937 met it (DEMO_MODE), the #937 backend enforcing auth, and a strict
    server probed without a token."""
    root = tmp_path_factory.mktemp("investigations")
    servers = {
        "bridge": EmbeddedServer(auth="strict", scenario=FAST),
        "staging": EmbeddedServer(dialect="staging-937", auth="demo", scenario=FAST),
        "staging-strict": EmbeddedServer(dialect="staging-937", auth="strict", scenario=FAST),
        "strict": EmbeddedServer(auth="strict", scenario=FAST),
    }
    for server in servers.values():
        server.start()

    async def probe_all() -> list[ProbeReport]:
        options = {"quiet": QUIET, "timeout": TIMEOUT}
        return await asyncio.gather(
            run_probes(servers["bridge"], out=root / "bridge", **options),
            run_probes(servers["staging"], out=root / "staging", **options),
            run_probes(servers["staging-strict"], out=root / "staging-strict", **options),
            # A URL: nothing is minted, so the strict server refuses every connection.
            run_probes(servers["strict"].url, out=root / "strict", **options),
        )

    try:
        reports = asyncio.run(probe_all())
    finally:
        for server in servers.values():
            server.stop()
    return dict(zip(servers, reports, strict=True))


@pytest.fixture(scope="module")
def reports(live) -> dict[str, Report]:
    """Each investigation's report, built from its folder of traces alone."""
    return {name: build_report(probes.out_dir) for name, probes in live.items()}


def plain(markdown: str) -> str:
    """The report with its code spans unwrapped (server values are shown in them, see
    tests/test_report_github.py): what these tests read is the words."""
    return re.sub(r"(`+) ?(.+?) ?\1(?!`)", r"\2", markdown)


def rows(markdown: str) -> set[str]:
    return {line for line in plain(markdown).splitlines() if line.startswith("| ")}


# --- verdicts from traces --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bridge", "staging", "staging-strict", "strict"])
def test_verdicts_recomputed_from_the_traces_match_the_live_probes(live, name):
    probes = live[name]
    judged = judge_traces([read_trace(p) for p in sorted(probes.out_dir.glob("*.jsonl"))])
    assert [(r.probe, r.status) for r in judged] == [(r.probe, r.status) for r in probes]
    # One judge for both: the same sentences, facts and rows, not just the same status.
    for live_result, trace_result in zip(probes, judged, strict=True):
        assert trace_result.explanation == live_result.explanation
        assert trace_result.evidence == live_result.evidence
        assert trace_result.facts == live_result.facts
    assert judged.target == probes.target
    assert judged["auth"].rows == probes["auth"].rows


def test_a_probe_report_is_reported_with_its_own_verdicts(live):
    report = build_report(live["staging"])
    assert [r.explanation for r in report.probes] == [r.explanation for r in live["staging"]]
    assert report.verdict == FAILED


def test_contract_verdicts_come_from_the_function_the_suite_uses(live, reports):
    for name in ("bridge", "staging", "strict"):
        expected = [(c.test, c.status) for c in evaluate_contract(live[name])]
        assert [(c.test, c.status) for c in reports[name].contract] == expected
    assert [c.status for c in reports["staging"].contract] == [PASSED] * 2 + [FAILED] * 5


def test_contract_tests_without_their_probe_are_not_run_and_a_bare_profile_skips(live):
    only = {"connection": live["bridge"]["connection"]}
    verdicts = evaluate_contract(only)
    assert [v.status for v in verdicts] == [PASSED] + ["not run"] * 6
    assert verdicts[1].message == "the negative probe was not run: no verdict."
    judged = judge_traces(
        [read_trace(p) for p in live["bridge"]["workflow"].traces],
        profile={"name": "bare"},
    )
    assert {v.status for v in evaluate_contract(judged) if v.test in STRUCTURE} == {"skipped"}


# --- the passing investigation ---------------------------------------------------------------


def test_passing_report_tables(reports):
    report = reports["bridge"]
    assert report.verdict == PASSED
    table = rows(report.markdown)
    for row in (
        "| connection | ✅ passed | first frame connection_established; user_id netra-ws... |",
        f"| negative | ✅ passed | 6 output names sent as input, no reply within {QUIET:g} s "
        "each |",
        "| workflow | ✅ passed | 12 agent events; 12 of 12 checks passed |",
        "| auth | ✅ passed | 6 of 6 credentials behaved as expected |",
        "| no token | refused | 101 | error_message AUTH_FAILED | – | 1008 | ✅ passed |",
        "| header | agent events | 101 | connection_established | netra-ws... | – | ✅ passed |",
        "| bad signature | refused | 101 | error_message AUTH_FAILED | – | 1008 | ✅ passed |",
        "| test_agent_started_structure | ✅ passed | 2 agent_started event(s) (#3, #10) have "
        "type, run_id, user_id, timestamp, status. |",
        "| test_tool_completed_structure | ✅ passed | 2 tool_completed event(s) (#7, #14) have "
        "type, run_id, timestamp, tool_name, result, execution_time_ms. |",
        "| 2 | 0 | → sent | user_message | flat form |",
        "| dialect | bridge |",
        "| server auth mode | strict |",
        "| client auth form | header |",
    ):
        assert row in table, row
    assert sum(1 for row in table if "| ✅ passed |" in row and row.startswith("| test_")) == 7
    assert re.search(
        r"^\| 6 \| \+\d+ \| ← received \| tool_executing \| tool_name \w+ \|$",
        plain(report.markdown),
        re.MULTILINE,
    )


def test_passing_report_sentences(reports):
    text = plain(reports["bridge"].markdown)
    for sentence in (
        "**Verdict: ✅ passed** — connection passed, negative passed, workflow passed, auth "
        "passed. Contract tests: 7 passed.",
        "**Diagnosis (trap).** The server works: user_message starts agent runs",
        f"We sent agent_started as input and waited {QUIET:g} s: nothing came back. The same "
        f"for agent_thinking, tool_executing, tool_completed, agent_completed and agent_error "
        f"({QUIET:g} s each). The server ignores its own output names; the flawed test read "
        "connection_established instead: one read right after sending agent_started returned "
        "connection_established #2, the frame queued at connect time.",
        "We connected with the token in the Authorization header and, without sending "
        "anything, read one frame: connection_established #1,",
        # The two forms got the same events: one sentence says so (it used to be said twice).
        "We sent user_message (flat form and payload form) and each time received "
        "agent_started → agent_thinking ×2 → tool_executing → tool_completed → agent_completed "
        "in ",
        "All 12 checks of profile netra-bridge passed: every frame parsed, every critical event "
        "arrived, in order, tool calls were paired, and each event carries its required fields.",
        "Authentication is enforced. No token, expired token and bad signature were refused "
        "(error_message AUTH_FAILED, then close 1008). A valid token got agent events (header, "
        "jwt.<base64url> subprotocol and bare jwt-auth + header).",
        "no gap between consecutive events exceeded 2 s",
        "python -m netra_ws probe --dialect bridge --server-auth strict",
        "NETRA_WS_DIALECT=bridge NETRA_WS_AUTH=strict python -m pytest --pyargs netra_ws.contract",
    ):
        assert sentence in text, sentence


def test_report_is_written_with_its_charts_and_reads_without_them(reports, tmp_path):
    report = reports["bridge"]
    path = report.write(tmp_path / "findings.md")
    text = path.read_text(encoding="utf-8")
    charts = [tmp_path / "findings-timeline.png", tmp_path / "findings-gaps.png"]
    assert report.chart_paths(path) == charts
    for chart in charts:
        assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    images = re.findall(r"!\[([^\]]+)\]\(([^)]+)\)", text)
    assert [src for _, src in images] == ["findings-timeline.png", "findings-gaps.png"]
    timeline, gaps = (alt for alt, _ in images)
    # The alt text says what each chart shows, numbers included.
    assert timeline.startswith("Timeline of ") and "Sent (orange triangles): user_message ×2." in (
        timeline
    )
    # It says which files to attach for the images to show.
    assert "(`findings-timeline.png`, `findings-gaps.png`): attach them" in text
    assert re.search(
        r"Bar chart of the \d+ gaps between consecutive agent events in \d+ runs", gaps
    )
    # Alt text is plain words: no "#", no Markdown.
    assert re.search(r"median \d+ ms, largest \d+ ms \(before \w+ \d+", gaps)
    assert not re.search(r"[#`*<>\[\]|]", timeline + gaps)
    # The key numbers are in the text too.
    assert re.search(
        r"\| probes and sessions \| \d+ \| \d+ \| \d+ completed \| \d+ ms / \d+ ms \|", text
    )
    inline = report.to_markdown(embed_images=True)
    assert inline.count("](data:image/png;base64,iVBOR") == 2


# --- the failing staging-937 investigation ---------------------------------------------------


def test_staging_937_report_tables(reports):
    report = reports["staging"]
    assert report.verdict == FAILED
    table = rows(report.markdown)
    for row in (
        "| connection | ✅ passed | first frame connection_established; user_id demo-use... |",
        "| workflow | ❌ failed | no agent events after user_message |",
        "| auth | ❌ failed | 0 of 6 credentials behaved as expected |",
        "| no token | refused | 101 | connection_established | demo-use... | – | ❌ failed |",
        "| header | agent events | 101 | connection_established | demo-use... | – | ❌ failed |",
        "| test_connection_established_on_connect | ✅ passed | the first frame is "
        "connection_established #1,",
        "| test_agent_started_structure | ❌ failed | No agent events arrived after user_message "
        "#2 (flat form), user_message #3 (payload form); nothing at all came back. (more under "
        "Key findings) |",
        "| test_agent_thinking_structure | ❌ failed | same as above |",
        "| test_agent_completed_structure | ❌ failed | same as above |",
        "| 2 | 0 | → sent | user_message | flat form |",
        "| dialect | staging-937 |",
    ):
        assert any(line.startswith(row) for line in table), row
    # It arrived before the trigger: a negative offset, never 0.
    welcome = (
        r"^\| 1 \| -[\d.]+ \| ← received \| connection_established \| user_id demo-use\.\.\. \|$"
    )
    assert re.search(welcome, plain(report.markdown), re.MULTILINE)


def test_staging_937_report_sentences(reports):
    text = plain(reports["staging"].markdown)
    for sentence in (
        "**Verdict: ❌ failed** — connection passed, negative passed, workflow failed, auth "
        "failed. Contract tests: 2 passed, 5 failed.",
        "**Diagnosis (demo user).** No agent events: the server accepted the connection as the "
        "demo user ('demo-use...'), so it did not use the token",
        "It names user_id 'demo-use...'. That is the demo user: the server did not use the "
        "token (none sent, or its DEMO_MODE).",
        "We sent user_message (flat form) and user_message (payload form) and collected for ",
        "each: no agent events came back. Likely causes: (1) the connection is the demo user",
        "This is a failure, not a pass: no event was validated. (The proposed #937 fix would "
        "have validated a hand-made event here.)",
        "Authentication is not enforced: no token, expired token and bad signature were "
        "accepted as 'demo-use...'. With a valid token (header, jwt.<base64url> subprotocol and "
        "bare jwt-auth + header) no agent events flowed after user_message — the server saw the "
        "demo user, so it ignored the token.",
        "Nothing came back after user_message #2: the run got no reply.",
        "**Timing.** None of the 8 run(s) got an agent event, so there is nothing to time.",
    ):
        assert sentence in text, sentence
    assert "](report-gaps.png)" not in text  # no gaps, no gap chart
    assert "](report-timeline.png)" in text


# --- strict authentication, no token ---------------------------------------------------------


def test_strict_rejection_report(reports):
    report = reports["strict"]
    assert report.verdict == FAILED
    text = plain(report.markdown)
    table = rows(text)
    for row in (
        "| connection | ❌ failed | the server refused the connection: error_message #1 "
        "AUTH_FAILED, then the server closed the connection with 1008 Authentication failed. "
        "(more under Key findings) |",
        "| negative | ⚠️ inconclusive | the connection was refused at connect: nothing could be "
        "judged |",
        "| workflow | ⚠️ inconclusive | the connection was refused at connect: nothing could be "
        "judged |",
        "| auth | ⚠️ inconclusive | 1 of 6 credentials behaved as expected |",
        "| no token | refused | 101 | error_message AUTH_FAILED | – | 1008 | ✅ passed |",
        "| header | agent events | – | – | – | – | ⚠️ inconclusive |",
        "| 1 | 0 | ← received | error_message | error_code AUTH_FAILED |",
        "| dialect | – (a URL target: not recorded) |",
        "| client auth form | none |",
    ):
        assert row in table, row
    for sentence in (
        "**Diagnosis (refused).** The server refused the connection: error_message #1 "
        "AUTH_FAILED, then the server closed the connection with 1008 Authentication failed.",
        "We connected without a token: the server refused the connection: error_message #1 "
        "AUTH_FAILED, then the server closed the connection with 1008 Authentication failed. "
        "Connect with a valid token (header or jwt.<token> subprotocol).",
        "We tried to send agent_started as input, but the server refused the connection: "
        "error_message #",
        "Nothing was learnt about inputs: the frame that answered the connection is no reply "
        "to an input.",
        "We connected without a token to send user_message, but the server refused the "
        "connection: error_message #1 AUTH_FAILED, then the server closed the connection with "
        "1008 Authentication failed. No agent run could start, so no event was validated.",
        "No token was refused (error_message AUTH_FAILED, then close 1008). Not tried: header, "
        "jwt.<base64url> subprotocol, bare jwt-auth + header, expired token and bad signature — "
        "they need a valid token, and the expired one the signing secret.",
        "No user_message (or other run trigger) was sent: there is nothing to time.",
        "NETRA_WS_TOKEN=<your token> python -m netra_ws probe ws://127.0.0.1:",
    ):
        assert sentence in text, sentence
    assert [c.status for c in report.contract] == [FAILED] * 7
    assert report.probes["negative"].status == INCONCLUSIVE


# --- sources, comparisons, missing parts -----------------------------------------------------


def _copy(traces: list[Path], folder: Path) -> None:
    folder.mkdir(parents=True)
    for trace in traces:
        (folder / trace.name).write_bytes(trace.read_bytes())


def test_a_data_folder_means_the_latest_notebook_outputs_and_says_what_is_missing(live, tmp_path):
    bridge, staging = live["bridge"], live["staging"]
    data = tmp_path / "data"
    _copy(list(bridge["connection"].traces), data / "01_connect" / "20260101T000000")
    _copy(list(staging["connection"].traces), data / "01_connect" / "20250101T000000")  # older
    notebook_02 = data / "02_broken_vs_correct" / "20260101T000001"
    _copy([*bridge["negative"].traces, *bridge["workflow"].traces], notebook_02)
    # A comparison against another dialect in the same folder, as notebook 02 makes one.
    _copy(list(staging["workflow"].traces), notebook_02 / "staging")
    _copy([Path(__file__)], data / "bench")  # not a notebook's: never read

    folders, missing = investigation_sources(data)
    assert [f.parent.name for f in folders] == ["01_connect", "02_broken_vs_correct"]
    assert folders[0].name == "20260101T000000"
    report = build_report(data)
    assert report.verdict == PASSED
    assert [r.probe for r in report.probes] == ["connection", "negative", "workflow"]
    assert len(missing) == 2 and all(note in report.notes for note in missing)
    text = plain(report.markdown)
    # Paths as a colleague's clone has them: data/, never this machine's folders.
    assert str(tmp_path) not in report.markdown
    assert "> No output of notebook 03_authentication under data: it has not run there" in text
    assert "| auth | ➖ not run | no trace of this probe |" in text
    # The comparison is a reference, in its own collapsed section, led by its diagnosis.
    assert "<summary>Reference runs (1): other embedded servers, for comparison</summary>" in text
    assert (
        "**Reference: an embedded staging-937 server, auth demo** — for comparison, not part "
        "of the verdict above. Diagnosis of this reference (demo user): No agent events: the "
        "server " in text
    )
    assert "For comparison" not in text.split("### A representative run")[0]
    # The same sentence as the live probe's: the collection's timeout first, then the checks.
    assert "What the workflow probe saw there: no agent_completed within the " in text
    assert "agent events: No agent events arrived" in text
    assert "From 02_broken_vs_correct/20260101T000001/workflow-" in text
    assert "python -m netra_ws demo\n" in text


def test_nothing_to_read_is_said_not_raised(tmp_path):
    report = build_report(tmp_path / "nowhere")
    assert report.verdict == INCONCLUSIVE and report.traces == []
    assert "does not exist: nothing was read from it." in report.markdown
    assert "**Verdict: ⚠️ inconclusive** — no probe traces were found." in report.markdown
    assert [r for r in report.markdown.splitlines() if r.startswith("| ") and "not run" in r]


def test_unreadable_files_are_skipped_with_a_note(live, tmp_path):
    (tmp_path / "notes.jsonl").write_text('{"kind": "x", "format": "other"}\n')
    _copy(list(live["bridge"]["connection"].traces), tmp_path / "probes")
    report = build_report(tmp_path)
    assert report.probes["connection"].status == PASSED
    assert any(note.startswith("Skipped notes.jsonl: ") for note in report.notes)


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_in_traces_never_reach_the_report(tmp_path, monkeypatch):
    """Frame data is raw evidence and is never redacted in a trace; the report is."""
    signing_key = "report-test-signing-key-0123456789"
    monkeypatch.setenv("NETRA_WS_JWT_SECRET", signing_key)
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
    path = tmp_path / "probes" / "connection.jsonl"
    with TraceWriter(path, target="ws://127.0.0.1:1/ws", labels={"probe": "connection"}) as tw:
        tw.record("open", http_status=101, auth="header", connect_ms=1.0)
        welcome = (
            '{"type": "connection_established", "data": {"mode": "main", "user_id": "'
            + jwt
            + '", "connection_id": "main_'
            + signing_key
            + '"}}'
        )
        tw.frame("receive", welcome, t_wall_ns=1, t_mono_ns=2_000_000)
        tw.frame("send", '{"type": "user_message", "message": "hi"}', t_wall_ns=2, t_mono_ns=3)
        tw.frame(
            "receive",
            '{"type": "agent_started", "run_id": "r1", "user_id": "' + jwt + '", "payload": {}}',
            t_wall_ns=3,
            t_mono_ns=4_000_000,
        )
    assert jwt in path.read_text() and signing_key in path.read_text()  # the raw evidence
    report = build_report(tmp_path, redactor=Redactor(secrets=["connection-secret-abc"]))
    out = report.write(tmp_path / "report.md")
    for text in (
        out.read_text(),
        report.markdown,
        report.to_markdown(embed_images=True),
        report.summary(),
        *(c.alt for c in report.charts),
    ):
        assert jwt not in text and signing_key not in text
    assert REDACTED in report.markdown


# --- the CLI ---------------------------------------------------------------------------------


def test_report_command_writes_the_report_and_its_charts(live, tmp_path):
    out = tmp_path / "out" / "issue.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netra_ws",
            "report",
            str(live["bridge"].out_dir),
            "--out",
            str(out),
            "--bundle",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"report: {out}" in result.stdout
    # Which files to attach for the images to show, and the one zip that holds it all.
    assert "attach: issue-timeline.png, issue-gaps.png — drag them into the comment" in (
        result.stdout
    )
    bundle = out.with_suffix(".zip")
    assert f"bundle: {bundle}" in result.stdout
    names = set(zipfile.ZipFile(bundle).namelist())
    text = out.read_text(encoding="utf-8")
    referred = set(re.findall(r"[\w./-]+\.(?:png|jsonl)", text.replace("`", " ")))
    # Timing names a trace by its file name alone, where the capture is said: in the bundle
    # it is under its folder.
    members = names | {n.rsplit("/", 1)[-1] for n in names}
    assert referred and referred <= members, referred - members
    assert {"issue.md", "issue-timeline.png", "issue-gaps.png"} <= names
    traces = list(live["bridge"].out_dir.glob("*.jsonl"))
    assert len([n for n in names if n.endswith(".jsonl")]) == len(traces)
    assert "verdict: passed — connection passed, negative passed, workflow passed, auth " in (
        result.stdout
    )
    assert out.is_file() and (out.parent / "issue-timeline.png").is_file()
    assert "](issue-timeline.png)" in out.read_text(encoding="utf-8")


def test_report_command_without_traces_exits_2(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "netra_ws",
            "report",
            str(tmp_path),
            "--out",
            str(tmp_path / "r.md"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no trace could be read" in result.stderr
    assert not (tmp_path / "r.md").exists()


def test_every_probe_has_a_row(reports):
    for report in reports.values():
        names = [line.split(" | ")[0].lstrip("| ") for line in rows(report.markdown)]
        assert all(name in names for name in PROBES)
