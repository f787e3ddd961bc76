"""Notebook 01 as a person runs it: JupyterLab in a real (headless) browser, Run All.

JupyterLab starts on a free port of 127.0.0.1 with a random token, serving a temporary
folder with a copy of ``notebooks/01_connect.ipynb`` (so the checkout's notebooks and
``data/`` are never touched); Debian's ``chromium``, driven by Playwright, opens the
notebook, runs all cells and the test reads the page: no error output, the probe's
verdict table rendered, the chart inline. A broken notebook run the same way shows that
the error check can fail.

Needs ``/usr/bin/chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) and
``playwright`` (requirements-dev.txt): skipped without them, except in CI (``CI=true``),
where it fails instead. JupyterLab, its kernels and Chromium are stopped in ``finally``,
whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from netra_ws.notebooks import install_lab_settings, notebook_dir

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and nothing that reaches the network or the machine's profile on its own.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The notebook on show (other open notebooks stay in the page, hidden).
CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"
RUN_ALL_TIMEOUT_S = int(os.environ.get("LAB_RUN_ALL_TIMEOUT", "120"))


def unavailable(reason: str) -> None:
    """Skip, with the reason; in CI a missing browser is a broken setup: fail."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the browser smoke test must run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_kernels(runtime_dir: Path) -> None:
    """Kill any kernel still running from this test's runtime folder (by pid)."""
    marker = str(runtime_dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if marker in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)


@contextlib.contextmanager
def jupyterlab(root: Path) -> Iterator[str]:
    """JupyterLab serving ``root/lab`` on 127.0.0.1, with the settings ``make setup``
    installs; yields the base URL with its token. Stopped, with its kernels, on exit."""
    port, token = free_port(), secrets.token_hex(16)
    settings = install_lab_settings(root).parent
    runtime = root / "runtime"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
    }
    log = (root / "jupyterlab.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root / 'lab'}",
            f"--LabApp.app_settings_dir={settings}",
        ],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "JupyterLab did not start:\n"
                        + (root / "jupyterlab.log").read_text(errors="replace")[-3000:]
                    ) from None
                time.sleep(0.3)
        yield f"{base}?token={token}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        kill_kernels(runtime)
        log.close()


def wait_for_kernel(url: str, name: str) -> None:
    """Until the notebook's kernel is idle and the page is connected to it: a Run All
    before that is lost (the cells stay ``[ ]``)."""
    base, _, query = url.partition("?")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/sessions?{query}", timeout=5) as answer:
            sessions = json.load(answer)
        kernels = [s["kernel"] for s in sessions if s.get("path") == name and s.get("kernel")]
        if kernels and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"]:
            time.sleep(1)  # the page's kernel-info exchange follows the connection
            return
        time.sleep(0.3)
    raise AssertionError(f"{name}: no kernel connected within 60 s")


def run_all(page, url: str, name: str) -> dict:
    """Open notebook ``name`` in JupyterLab, Run All Cells, wait until every code cell has
    run; return what the page shows (errors, verdict tables, images, stderr) and how long
    Run All took (``run_all_s``)."""
    base, _, query = url.partition("?")
    page.goto(f"{base}/lab/tree/{name}?{query}")
    page.wait_for_selector(f"{CURRENT} .jp-Cell", timeout=60_000)
    wait_for_kernel(url, name)
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
    started = time.monotonic()
    deadline = started + RUN_ALL_TIMEOUT_S
    while True:
        prompts = page.eval_on_selector_all(
            f"{CURRENT} .jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())"
        )
        if prompts and all(p[1:-2].isdigit() for p in prompts):
            break
        if page.query_selector(f"{CURRENT} [data-mime-type*='error']") is not None:
            break  # Run All stops at the first error: nothing more will run
        assert time.monotonic() < deadline, f"{name}: Run All did not finish: {prompts}"
        time.sleep(0.5)
    ran_s = time.monotonic() - started
    return {"run_all_s": round(ran_s, 1)} | page.evaluate(
        """(current) => {
            const all = (css) => [...document.querySelectorAll(current + " " + css)];
            return {
                errors: all(".jp-OutputArea-output[data-mime-type*='error'],"
                    + current + " .jp-OutputArea-output[data-mime-type*='stderr']")
                    .map(e => e.textContent.slice(0, 300)),
                verdicts: all(".netra-verdict").map(e => e.textContent),
                tables: all("table.netra-table").length,
                images: all(".jp-RenderedImage img").filter(i => i.naturalWidth > 100).length,
            };
        }""",
        CURRENT,
    )


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright not installed: pip install -r requirements-dev.txt")
    root = tmp_path_factory.mktemp("lab")
    lab = root / "lab" / "notebooks"
    lab.mkdir(parents=True)
    shutil.copy(notebook_dir() / "01_connect.ipynb", lab)
    broken = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 / 0")])
    broken.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(broken, lab / "broken.ipynb")
    console: list[str] = []
    with jupyterlab(root) as url, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(root / "chromium-profile"),  # a fresh profile, removed with tmp_path
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
            yield page, url, console
        finally:
            context.close()


def test_notebook_01_runs_all_in_jupyterlab_in_a_browser(browser_page):
    page, url, console = browser_page
    shown = run_all(page, url, "notebooks/01_connect.ipynb")
    assert shown["errors"] == [], json.dumps(shown["errors"], indent=1)
    assert any(v.startswith("✔ passed") for v in shown["verdicts"]), shown["verdicts"]
    assert shown["tables"] >= 3, shown  # handshake, trace, verdict…
    assert shown["images"] >= 1, "no inline chart"
    assert console == [], console
    print(f"01_connect: Run All took {shown['run_all_s']} s")


def test_the_error_check_sees_an_error(browser_page):
    """The check above can fail: a cell that raises shows up as an error output."""
    page, url, _ = browser_page
    shown = run_all(page, url, "notebooks/broken.ipynb")
    assert any("ZeroDivisionError" in e for e in shown["errors"]), shown
