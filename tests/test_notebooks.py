"""The walk-through notebooks: committed clean and paired, and each one runs headless.

Each notebook is executed with papermill against the embedded reference server, the way
``make demo`` runs them, into a temporary ``DATA_DIR``; the test then checks the evidence it
saved there (traces, tables), not just that no cell raised. They are executed WITHOUT the
final redaction step, so "no JWT in the executed notebook" proves the notebook itself never
prints one. Also here: the helpers the notebooks share (``netra_ws.target``,
``output_dir``/``latest_output``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import FAST, run

from netra_ws import read_trace
from netra_ws.events import CRITICAL_EVENTS
from netra_ws.notebooks import (
    NOTEBOOKS,
    execute_notebook,
    git_after_save,
    latest_output,
    notebook_dir,
    output_dir,
    stale_pairs,
)
from netra_ws.redact import redact_text
from netra_ws.target import open_target
from netra_ws.verdicts import judge_traces

WALKTHROUGH = ("01_connect", "02_broken_vs_correct", "03_authentication", "04_timing_analysis")
# A JWT, and a JWT in the browser's base64url subprotocol form (base64 of 'eyJ' is 'ZXlK').
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
B64_JWT = re.compile(r"ZXlK[A-Za-z0-9_-]{20,}")
# Every notebook takes these parameters, so one set of overrides fits all of them.
PARAMETERS = {
    "TARGET_URL": None,
    "TOKEN_ENV": "NETRA_WS_TOKEN",
    "DIALECT": "bridge",
    "AUTH": "header",
    "DATA_DIR": "../data",
}


def execute(name: str, tmp_path: Path) -> tuple[Path, Path]:
    """Run one notebook headless; return the executed copy and the folder it wrote to."""
    data = tmp_path / "data"
    executed = execute_notebook(
        name, tmp_path / "executed", parameters={"DATA_DIR": str(data)}, redact=False
    )
    return executed, latest_output(data, name)


def assert_no_secrets(*paths: Path) -> None:
    """No JWT, raw or base64url, in these files or in any text file under these folders."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    for file in files:
        if not file.is_file() or file.suffix == ".png":
            continue
        text = file.read_text(encoding="utf-8")
        for pattern in (JWT, B64_JWT):
            found = pattern.search(text)
            assert found is None, f"{file}: token-shaped string {found.group()[:12]}…"


def frames(path: Path, direction: str) -> list[str | None]:
    return [f.get("event") for f in read_trace(path).frames if f["dir"] == direction]


def records(path: Path, kind: str) -> list[dict]:
    return [r for r in read_trace(path).records if r.get("kind") == kind]


# --- the committed notebooks ----------------------------------------------------------------


def committed(path: Path) -> str:
    """The file as git would commit it now: the working copy through the clean filter of
    .gitattributes (nbstripout, once ``make setup`` defined it). Outside a git checkout,
    the working copy."""
    folder = path.parent
    inside = subprocess.run(
        ["git", "rev-parse", "--is-inside-work-tree"], cwd=folder, capture_output=True, text=True
    )
    if inside.stdout.strip() != "true":
        return path.read_text(encoding="utf-8")
    blob = subprocess.run(
        ["git", "hash-object", "-w", f"--path={path.name}", path.name],
        cwd=folder, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return subprocess.run(
        ["git", "cat-file", "blob", blob], cwd=folder, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("name", WALKTHROUGH)
def test_committed_notebook_is_clean_paired_and_parameterized(name):
    nb = nbformat.reads(committed(notebook_dir() / f"{name}.ipynb"), as_version=4)
    assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # What JupyterLab writes on save (ipykernel's own name): committing anything else
    # makes every save change the notebook and its .py header.
    assert nb.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.outputs == [], f"{name}: committed with outputs: {cell.source[:60]!r}"
        assert cell.execution_count is None, f"{name}: execution count in {cell.source[:60]!r}"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: needs exactly one cell tagged 'parameters'"
    values: dict = {}
    exec(tagged[0].source, values)  # plain assignments, nothing else
    for key, expected in PARAMETERS.items():
        assert values[key] == expected, f"{name}: {key} = {values.get(key)!r}"
    assert isinstance(values["TIMEOUT"], float) and isinstance(values["QUIET_WINDOW"], float)
    assert (notebook_dir() / f"{name}.py").is_file()


def test_every_notebook_pair_is_in_sync():
    assert stale_pairs() == []


def makefile_git_filter() -> list[list[str]]:
    """The `git config` commands `make setup` runs (Makefile, NOTEBOOK_TOOLS), for this
    interpreter instead of .venv's."""
    makefile = (notebook_dir().parent / "Makefile").read_text(encoding="utf-8")
    found = re.findall(r"git config (\S+) ('[^']*'|\S+)", makefile)
    assert len(found) == 5, found
    return [
        ["git", "config", key, value.strip("'").replace("$(abspath $(PY))", sys.executable)]
        for key, value in found
    ]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_saved_notebook_leaves_git_clean(tmp_path, name):
    """What a JupyterLab save does (outputs, counts, language_info), through the filter
    `make setup` installs and `make lab`'s post-save hook: git stores and compares the
    notebook as committed, and a real edit still shows."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(notebook_dir().parent / ".gitattributes", repo)
    source = notebook_dir() / f"{name}.ipynb"
    clean = committed(source)  # this checkout's copy may hold its user's outputs
    (repo / "notebooks" / f"{name}.ipynb").write_text(clean, encoding="utf-8")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    for command in makefile_git_filter():
        subprocess.run(command, cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "clean"], cwd=repo, check=True)

    saved = nbformat.reads(clean, as_version=4)
    saved.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    for n, cell in enumerate(c for c in saved.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a frame\n")]
        cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    written = repo / "notebooks" / f"{name}.ipynb"
    nbformat.write(saved, written)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert status.stdout, "git sees the size change; JupyterLab's post-save hook clears it"
    assert git_after_save(os_path=str(written)) == [written]

    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == "", status.stdout
    assert "a frame" in written.read_text()  # the user's copy
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    stored = subprocess.run(
        ["git", "show", f":notebooks/{name}.ipynb"], cwd=repo, capture_output=True, text=True
    ).stdout
    assert stored == clean  # byte for byte, ids kept

    saved.cells[0].source += "\nAn edit."
    nbformat.write(saved, written)
    assert git_after_save(os_path=str(written)) == []
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True)
    assert status.stdout.strip() == f"M notebooks/{name}.ipynb".encode()


# --- executed headless against the embedded server -----------------------------------------


def test_01_connect_records_the_welcome_frame(tmp_path):
    executed, out = execute("01_connect", tmp_path)
    connect = out / "connect.jsonl"
    assert frames(connect, "receive")[0] == "connection_established"
    assert frames(connect, "send") == []  # the welcome frame came unasked
    assert records(connect, "open")[0]["http_status"] == 101
    probe = next(out.glob("connection-*.jsonl"))
    assert frames(probe, "receive")[0] == "connection_established"
    # The live view's output holds its final state: closed, every agent event shown.
    pages = [
        o["data"]["text/html"]
        for cell in nbformat.read(executed, as_version=4).cells
        for o in cell.get("outputs", [])
        if "frame timeline" in o.get("data", {}).get("text/html", "")
    ]
    assert len(pages) == 1 and "closed (1000)" in pages[0]
    assert all(event in pages[0] for event in CRITICAL_EVENTS)
    assert_no_secrets(executed, out)


@pytest.mark.slow
def test_02_reproduces_the_trap_then_the_correct_run(tmp_path):
    executed, out = execute("02_broken_vs_correct", tmp_path)

    broken = out / "broken-test.jsonl"
    assert frames(broken, "send") == ["agent_started"]
    # The single read returned the welcome frame; the quiet window brought nothing.
    assert frames(broken, "receive") == ["connection_established"]
    quiet_end = [m for m in records(broken, "mark") if m["label"] == "quiet window ends"]
    assert quiet_end and quiet_end[0]["received"] == 0

    correct = out / "correct.jsonl"
    assert frames(correct, "send") == ["user_message"]
    received = frames(correct, "receive")
    assert set(CRITICAL_EVENTS) <= set(received) and received[-1] == "agent_completed"

    # The honest failure: the staging-937 connection was the demo user and got no events.
    workflows = {p: frames(p, "receive") for p in out.glob("workflow-*.jsonl")}
    silent = [p for p, got in workflows.items() if got == ["connection_established"]]
    complete = [p for p, got in workflows.items() if set(CRITICAL_EVENTS) <= set(got)]
    assert len(silent) == 1 and len(complete) == 1, workflows
    welcome = next(f for f in read_trace(silent[0]).frames if f["dir"] == "receive")
    assert welcome["user_id"] == "demo-use..."
    assert frames(silent[0], "send") == ["user_message", "user_message"]
    # The waits said what they waited for, and ended with their total.
    text = executed.read_text(encoding="utf-8")
    assert "✔ waited" in text and ": 6 quiet windows" in text and ": 2 collections" in text
    assert_no_secrets(executed, out)


def test_03_refuses_without_a_token_and_never_leaks_one(tmp_path):
    executed, out = execute("03_authentication", tmp_path)

    for pattern in ("auth-none-*.jsonl", "auth-expired-*.jsonl", "auth-bad-signature-*.jsonl"):
        trace = next(out.glob(pattern))
        assert [r["code"] for r in records(trace, "close")] == [1008], trace.name
        refused = [f for f in read_trace(trace).frames if f["dir"] == "receive"]
        assert refused[0].get("error_code") == "AUTH_FAILED", trace.name
    assert [r["code"] for r in records(out / "no-token.jsonl", "close")] == [1008]

    for form in ("header", "subprotocol"):
        assert frames(out / f"{form}.jsonl", "receive")[-1] == "agent_completed", form
    opened = records(out / "subprotocol.jsonl", "open")[0]
    assert opened["subprotocol"] == "jwt.[REDACTED]"
    # In demo mode the same credentials all get in, as the demo user.
    demo = next((out / "demo-mode").glob("auth-none-*.jsonl"))
    assert frames(demo, "receive")[0] == "connection_established"

    # The guess, tested: the #937 backend enforcing auth, with a valid token, swallows the
    # input of the token's own user (a server defect), while the backend as intended answers.
    as_it_was = judge_traces(read_trace(p) for p in (out / "staging-937-strict").rglob("*.jsonl"))
    assert as_it_was.diagnosis.cause == "swallowed", as_it_was.diagnosis
    as_intended = judge_traces(read_trace(p) for p in (out / "bridge-strict").rglob("*.jsonl"))
    assert as_intended["workflow"].status == "passed"
    text = executed.read_text(encoding="utf-8")
    assert "not an authentication problem: a server-side defect" in text
    assert_no_secrets(executed, out)


@pytest.mark.slow
def test_04_finds_the_injected_stall(tmp_path):
    executed, out = execute("04_timing_analysis", tmp_path)

    assert len(list((out / "runs").glob("run-*.jsonl"))) == 50
    stalls = json.loads((out / "stalls.json").read_text())
    injected = json.loads((out / "faults.json").read_text())
    assert len(stalls) == 1 and len(injected) == 1
    (stall,) = stalls
    assert stall["run_id"] == injected[0]["run_id"]  # the run the server stalled
    assert (stall["before_event"], stall["after_event"]) == ("agent_thinking", "agent_thinking")
    assert stall["gap_s"] > 2.0
    stalled = read_trace(out / "runs" / stall["trace"])
    assert {f.get("run_id") for f in stalled.frames if f["dir"] == "receive"} >= {stall["run_id"]}
    for chart in ("swimlanes", "slowest-run", "gaps", "gap-distribution", "comparison"):
        assert (out / f"{chart}.png").stat().st_size > 10_000, chart
    assert (out / "gap-overlay.png").is_file() and (out / "comparison.csv").is_file()
    shown = [
        o.get("data", {}).get("text/plain", "")
        for cell in nbformat.read(executed, as_version=4).cells
        for o in cell.get("outputs", [])
    ]
    assert not [t for t in shown if "PosixPath(" in t], "a cell echoes a saved file's path"
    assert_no_secrets(executed, out)


# --- the helpers the notebooks share --------------------------------------------------------


def test_output_dir_makes_a_new_folder_per_execution_and_latest_output_finds_the_last(tmp_path):
    first = output_dir(tmp_path, "01_connect")
    second = output_dir(tmp_path, "01_connect")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == second.parent == tmp_path / "01_connect"
    assert latest_output(tmp_path, "01_connect") == second
    with pytest.raises(Exception, match="run that notebook first"):
        latest_output(tmp_path, "02_broken_vs_correct")


def test_embedded_target_connects_with_a_minted_token_it_never_shows():
    with open_target(None, scenario=FAST, faults=["stall:agent_thinking:0.01"]) as target:
        assert target.embedded and target.where is target.server
        assert target.server.config.auth == "strict"
        token = target.token
        assert token and token not in repr(target) and token not in target.label

        async def one_run():
            async with target.connect() as session:
                welcome = await session.next(timeout=5)
                await session.send_user_message("hello")
                result = await session.collect(until="agent_completed", timeout=5)
            return welcome, result

        welcome, result = run(one_run())
        assert welcome.event.payload["user_id"] == "notebook..."
        assert result.reason == "matched"
        claims = target.token_claims().set_index("claim")["value"].to_dict()
        assert claims["sub"] == "notebook-user" and claims["alg (header)"] == "HS256"
        assert not any(token.split(".")[2] in value for value in claims.values())
        faults = target.faults()
        assert faults["kind"].tolist() == ["stall"]
        assert faults["run_id"].tolist() == [result.matched.record["run_id"]]


def test_url_target_reads_its_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("MY_TOKEN", "opaque-staging-credential")
    target = open_target("wss://staging.example/api/v1/websocket?x=1", token_env="MY_TOKEN")
    assert not target.embedded and target.where == target.url
    assert _credentials(target) == ("opaque-staging-credential", "header")
    assert "$MY_TOKEN" in repr(target) and "opaque" not in repr(target)
    assert "x=1" not in target.label
    # Registered as a secret: even a token of no known shape is redacted everywhere.
    assert "opaque-staging-credential" not in redact_text("token opaque-staging-credential")

    monkeypatch.delenv("MY_TOKEN")
    bare = open_target("ws://127.0.0.1:1/ws", token_env="MY_TOKEN", auth="subprotocol")
    assert bare.token is None and _credentials(bare) == (None, "none")
    assert "not set" in repr(bare)
    assert bare.token_claims().empty and bare.faults().empty
    with pytest.raises(ValueError, match="auth must be one of"):
        open_target("ws://127.0.0.1:1/ws", auth="cookie")


# --- how tables and waits look in JupyterLab ------------------------------------------------


def test_verdict_and_auth_tables_render_for_a_person():
    """The auth matrix in demo mode: statuses coloured with a symbol, the token-ignored rows
    named as such, text left-aligned and wrapped, no <NA> and no cut explanation, JSON
    folded, times in ms, and the credential's <base64url> escaped, not swallowed."""
    from netra_ws.tables import readable
    from netra_ws.verdicts import AUTH_MATRIX, ProbeResult, judge_auth

    ignored = (
        "accepted as user 'demo-use...' — the demo user: the server ignored the token; "
        "agent events flowed."
    )
    rows = []
    for credential in AUTH_MATRIX:
        works = credential.should_work
        rows.append({
            "credential": credential.label, "expected": "agent events" if works else "refused",
            "http_status": 101, "subprotocol": None, "first_frame": "connection_established",
            "user_id": "demo-use...", "close_code": None, "ended": "accepted",
            "agent_events": True, "status": "passed" if works else "failed",
            "explanation": ignored if works else "accepted as user 'demo-use...' (agent "
            "events flowed): authentication is not enforced — the server runs in a demo or "
            "relaxed auth mode.",
            "trace": f"auth-{credential.slug}-1.jsonl",
        })  # fmt: skip
    page = judge_auth(rows)._repr_html_()
    assert page.count("⚠ token ignored (demo user)") == 3  # the three valid-token rows
    assert page.count("✘ failed") == 4  # three rows and the verdict line
    assert "#fce8e6" in page and "#fff4ce" in page  # red and amber backgrounds
    assert "text-align: left" in page and "white-space: normal" in page
    assert "<NA>" not in page and "&lt;NA&gt;" not in page and "None" not in page
    assert "…</td>" not in page and "relaxed auth mode." in page
    assert "jwt.&lt;base64url&gt; subprotocol" in page

    facts = ProbeResult(
        "connection", "passed", "the first frame is connection_established",
        facts={"handshake_ms": 4.837, "headers": {"server": "x", "date": "y"}},
    )  # fmt: skip
    page = facts._repr_html_()
    assert "✔ passed" in page and "4.8 ms" in page
    assert "<details><summary><code>{server, date}</code></summary>" in page
    trace = readable(
        pd.DataFrame({"t_s": [0.0123, None], "data": [{"a": 1}, None], "code": [None, 1008.0]})
    ).to_html()
    assert ">t_ms</th>" in trace and "12.3 ms" in trace and "<NA>" not in trace
    assert ">1008</td>" in trace and "nan" not in trace


def _credentials(target):
    """What ``connect_options`` says about credentials (it also carries the trust settings)."""
    options = target.connect_options()
    return options["token"], options["auth"]
