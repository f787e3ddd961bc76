"""The main job end to end: ``python -m netra_ws demo --out DIR`` in a subprocess, as
``make demo`` runs it: notebooks 01–05 against the embedded server, then the report.

The demo runs once per test session (:func:`helpers.demo.demo_run`, about 40 s) with a known signing
secret and a minted token in its environment; ``tests/test_cli.py`` reads the same run.
"""

from __future__ import annotations

import re
import zipfile

from helpers.demo import SECRET, demo_run

from netra_ws import demo
from netra_ws.notebooks import NOTEBOOKS
from netra_ws.tokens import encode_subprotocol_token

JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def test_demo_executes_the_notebooks_and_writes_the_report():
    run = demo_run()
    stdout = run.result.stdout
    assert run.result.returncode == 0, stdout + run.result.stderr
    for name in NOTEBOOKS:
        assert re.search(rf"^  ok +{name} +[\d.]+ s  ", stdout, re.MULTILINE), name
        assert (run.out / "notebooks" / f"{name}.ipynb").is_file()
    # In walk-through order, whichever finished first.
    said = re.findall(r"^  \w+ +(\d\d_\w+) ", stdout, re.MULTILINE)
    assert said == list(NOTEBOOKS), said
    # A kernel log is kept only when it says something beyond the loopback TCP warning.
    for log in (run.out / "notebooks").glob("*.log"):
        assert "Kernel is running over TCP" not in log.read_text(), log
    report = run.out / "report.md"
    assert f"report: {report}" in stdout
    assert (
        "verdict: passed — connection passed, negative passed, workflow passed, auth passed; "
        "contract tests: 7 passed" in stdout
    )
    assert re.search(r"^took \d+\.\d s$", stdout, re.MULTILINE)
    text = report.read_text(encoding="utf-8")
    assert text.startswith("## Issue #937 — WebSocket agent events: findings\n")
    assert "**Verdict: ✅ passed**" in text
    assert "No output of notebook" not in text  # every notebook's traces were found
    words = re.sub(r"(`+) ?(.+?) ?\1(?!`)", r"\2", text)  # code spans unwrapped
    # Each notebook's part: the probes of 01–03, notebook 04's stall, the comparisons.
    assert "| connection | ✅ passed | first frame connection_established; user_id " in words
    assert "We sent agent_started as input and waited 1 s: nothing came back." in words
    # The stall notebook 04 injects is named as injected, and no finding calls the server
    # slow because of it.
    assert re.search(
        r"\*\*Injected fault\.\*\* Stall injected on purpose \(stall agent_thinking#2 2\.5s\) "
        r"by the embedded server's fault plan .*Detected from the traces alone: in capture "
        r"runs, 1 of 1 run\(s\) stalled",
        words,
    )
    assert "Events can arrive late" not in words
    assert "no gap between consecutive events exceeded 2 s" in words
    # A diagram GitHub draws with no attachment, and the secondary tables collapsed.
    assert "```mermaid\nsequenceDiagram\n" in text
    for summary in ("Authentication matrix", "Contract tests", "Reference runs (3)", "Environment"):
        assert f"<summary>{summary}" in text, summary
    # Both sides of #937, as references: staging as it was met (DEMO_MODE), and the same
    # backend enforcing auth, where a valid token is accepted and the input still swallowed.
    references = text.split("<summary>Reference runs", 1)[1].split("</details>", 1)[0]
    assert "**Reference: an embedded staging-937 server, auth demo**" in references
    assert "**Reference: an embedded staging-937 server, auth strict**" in references
    assert "Diagnosis of this reference (swallowed): No agent events: the server " in references
    assert "**Reference: an embedded bridge server, auth demo**" in references
    assert "For comparison" not in text.split("<summary>Reference runs", 1)[0]
    # No path of this machine, and within GitHub's comment limit.
    assert str(run.out) not in text and not re.search(r"(^|[\s'\"(`])/(tmp|home|root|work)/", text)
    assert len(text) < 65_536
    for chart in ("report-timeline.png", "report-gaps.png"):
        assert f"]({chart})" in text
        assert (run.out / chart).read_bytes().startswith(b"\x89PNG")


def test_demo_outputs_hold_no_token_and_no_secret():
    run = demo_run()
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    needles = [run.token, SECRET, encode_subprotocol_token(run.token), run.token.split(".")[2]]
    files = [p for p in run.out.rglob("*") if p.is_file()]
    assert len(files) > 20
    bundles = [p for p in files if p.suffix == ".zip"]
    assert [p.name for p in bundles] == ["report.zip"]  # notebook 05 bundles the report
    with zipfile.ZipFile(bundles[0]) as bundle:
        inside = [bundle.read(name) for name in bundle.namelist()]
    contents = [(p, p.read_bytes()) for p in files if p.suffix != ".zip"]
    contents += [(bundles[0], data) for data in inside]
    for path, data in contents:
        for needle in needles:
            assert needle.encode() not in data, f"{path} holds a secret"
        if not data.startswith(b"\x89PNG"):
            found = JWT.search(data.decode("utf-8"))
            assert found is None, f"{path}: a JWT {found.group()[:16]}…"
    for stream in (run.result.stdout, run.result.stderr):
        assert not any(needle in stream for needle in needles)


def test_demo_falls_back_to_the_probes_without_notebooks(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_notebooks_runnable", lambda: False)
    lines: list[str] = []
    result = demo.run_demo(tmp_path, progress=lines.append)
    assert result.mode == "probes" and result.notebooks == ()
    assert lines == ["no notebooks/ folder or no Jupyter kernel here: running the probes instead"]
    assert result.ok and result.verdict == "passed", result.summary
    assert result.report == tmp_path / "report.md"
    text = result.report.read_text(encoding="utf-8")
    assert "| workflow | ✅ passed | 12 agent events; 12 of 12 checks passed |" in text
    assert len(list(tmp_path.glob("probes-*/*.jsonl"))) == 9


def test_demo_writes_the_report_itself_when_notebook_05_does_not(tmp_path, monkeypatch):
    failed = demo.NotebookRun("05_share_findings", "failed", 1.0, None, "NameError: boom")
    monkeypatch.setattr(demo, "_notebooks_runnable", lambda: True)
    monkeypatch.setattr(
        demo, "_run_notebooks", lambda *a, **k: ([failed], ("inconclusive", "not used"))
    )
    lines: list[str] = []
    result = demo.run_demo(tmp_path, progress=lines.append)
    assert lines == ["05_share_findings wrote no report: building it from the same traces"]
    assert not result.ok and result.verdict == "inconclusive"
    text = result.report.read_text(encoding="utf-8")
    assert "> Notebook 05_share_findings failed during the demo (NameError: boom);" in text
    assert "> No output of notebook 01_connect under data/" in text
    assert str(tmp_path) not in text


def test_a_kernel_log_is_kept_only_when_it_holds_something(tmp_path):
    noise = "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All …\n"
    quiet, telling = tmp_path / "01.log", tmp_path / "02.log"
    quiet.write_text(noise + "\n")
    telling.write_text(noise + "Traceback (most recent call last): boom\n")
    demo._keep_if_telling(quiet)
    demo._keep_if_telling(telling)
    assert not quiet.exists()
    assert telling.read_text() == "Traceback (most recent call last): boom\n"
