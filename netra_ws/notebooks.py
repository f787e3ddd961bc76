"""The walk-through notebooks: run them headless, and where each one writes its evidence.

The notebooks live in the checkout's ``notebooks/`` folder, committed without outputs and
paired with ``.py`` files (jupytext, percent format). Executed copies, with outputs, go to
``data/notebooks/``; their outputs are redacted before they are kept.

Each execution of a notebook writes its traces, tables and charts into a folder of its own,
``<DATA_DIR>/<notebook>/<time>/`` (:func:`output_dir`), so running it again never mixes or
overwrites evidence; :func:`latest_output` finds the newest one (for a later notebook or a
report).

For a person in JupyterLab: :func:`setup_notebook` turns Kernel → Interrupt into one line
naming the traces kept, :func:`show_waits` shows what a cell is waiting for and how long is
left, :func:`netra_ws.tables.readable` styles a table, and :func:`install_lab_settings`
(``make setup``) makes the paired ``.py`` files open as notebooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import os
import sys
import time
from collections.abc import Awaitable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from .errors import NetraWsError

__all__ = [
    "LAB_SETTINGS",
    "NOTEBOOKS",
    "execute_notebook",
    "git_after_save",
    "install_lab_settings",
    "latest_output",
    "notebook_dir",
    "output_dir",
    "setup_notebook",
    "show_waits",
    "stale_pairs",
]

T = TypeVar("T")

log = logging.getLogger("netra_ws.notebooks")

# In walk-through order; later ones read the traces earlier ones wrote.
NOTEBOOKS = (
    "01_connect",
    "02_broken_vs_correct",
    "03_authentication",
    "04_timing_analysis",
    "05_share_findings",
)


def notebook_dir() -> Path:
    """The checkout's ``notebooks/`` folder; raises when netra_ws is not run from a checkout."""
    folder = Path(__file__).resolve().parent.parent / "notebooks"
    if not folder.is_dir():
        raise NetraWsError(
            f"no notebooks/ folder next to the netra_ws package ({folder}): run from a git"
            " checkout installed with 'pip install -e .'"
        )
    return folder


def execute_notebook(
    name: str,
    out_dir: str | Path,
    *,
    parameters: Mapping[str, Any] | None = None,
    timeout: float = 600,
    redact: bool = True,
) -> Path:
    """Execute ``notebooks/<name>.ipynb`` with papermill; return the executed copy's path.

    ``parameters`` override the notebook's ``parameters`` cell (``TARGET_URL``,
    ``DATA_DIR``…). The kernel's working directory is ``notebooks/``, as in JupyterLab, so
    relative paths mean the same in both. A failing cell raises papermill's
    ``PapermillExecutionError``; the executed copy is still written, showing where it
    stopped. The copy is redacted (:func:`netra_ws.redact.redact_notebook`) unless
    ``redact=False``, which tests use to prove a notebook never prints a secret itself.
    """
    import papermill

    from .redact import redact_notebook

    source = notebook_dir() / f"{name}.ipynb"
    if not source.is_file():
        raise NetraWsError(f"no notebook {source}; known: {', '.join(NOTEBOOKS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / source.name
    log.info("executing %s", source.name)
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=dict(parameters or {}),
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=False,
            execution_timeout=timeout,
        )
    finally:
        if redact and target.exists():
            redact_notebook(target)  # outputs may quote handshake evidence
    return target


def output_dir(data_dir: str | os.PathLike[str], notebook: str) -> Path:
    """Create and return a new folder for one execution: ``<data_dir>/<notebook>/<time>/``.

    ``<time>`` is the local time as ``YYYYmmddTHHMMSS``, with ``-2``, ``-3``… when the
    notebook ran twice in one second, so names sort in execution order.
    """
    parent = Path(data_dir) / notebook
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1, 1000):
        folder = parent / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise NetraWsError(f"{parent}: too many executions in one second")


def latest_output(data_dir: str | os.PathLike[str], notebook: str) -> Path:
    """The newest folder :func:`output_dir` made for ``notebook``; raises when there is none.

    Run the notebook first (``execute_notebook(notebook, …)`` or in JupyterLab).
    """
    parent = Path(data_dir) / notebook
    folders = [p for p in parent.glob("*") if p.is_dir()] if parent.is_dir() else []
    if not folders:
        raise NetraWsError(f"no output of {notebook} under {parent}: run that notebook first")

    def order(path: Path) -> tuple[str, int]:
        stamp, _, n = path.name.partition("-")
        return stamp, int(n) if n.isdigit() else 1

    return max(folders, key=order)


def stale_pairs() -> list[str]:
    """Notebooks whose ``.ipynb`` and ``.py`` differ, or that lack a twin; empty when in sync.

    Fix a stale pair with ``jupytext --sync notebooks/<name>.py``.
    """
    import jupytext

    problems = []
    folder = notebook_dir()
    stems = {p.stem for p in folder.glob("*.ipynb")} | {p.stem for p in folder.glob("*.py")}
    for stem in sorted(stems):
        ipynb, py = folder / f"{stem}.ipynb", folder / f"{stem}.py"
        if not (ipynb.exists() and py.exists()):
            problems.append(f"{stem}: missing {'.py' if ipynb.exists() else '.ipynb'} twin")
            continue
        cells_nb = [(c.cell_type, c.source.strip()) for c in jupytext.read(ipynb).cells]
        cells_py = [(c.cell_type, c.source.strip()) for c in jupytext.read(py).cells]
        if cells_nb != cells_py:
            problems.append(f"{stem}: .ipynb and .py cells differ")
    return problems


# --- in JupyterLab --------------------------------------------------------------------------

# JupyterLab settings overrides (``<prefix>/share/jupyter/lab/settings/overrides.json``):
# double-clicking a paired ``.py`` opens it as a notebook (jupytext's viewer, not the text
# editor), a notebook starts its kernel (python3) without asking, and no news or update
# checks pop up over the notebooks.
LAB_SETTINGS: dict[str, Any] = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"python": "Jupytext Notebook"}},
    "@jupyterlab/notebook-extension:tracker": {"autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False, "fetchNews": "false"},
}


def install_lab_settings(prefix: str | os.PathLike[str] | None = None) -> Path:
    """Merge :data:`LAB_SETTINGS` into JupyterLab's ``overrides.json`` under ``prefix`` (the
    running environment's ``sys.prefix`` by default); return the file's path.

    ``make setup`` runs it for ``.venv``. Other settings already in the file are kept.
    """
    path = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    settings: dict[str, Any] = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    for plugin, values in LAB_SETTINGS.items():
        settings[plugin] = {**settings.get(plugin, {}), **values}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n", "utf-8")
    return path


def git_after_save(model: Any = None, os_path: str = "", **_: Any) -> list[Path]:
    """After JupyterLab saved a notebook: tell git that nothing it would commit changed.

    A save writes outputs into the ``.ipynb``; the nbstripout filter (``make setup``)
    strips them from what git stores, but git still lists the file as modified because
    its size changed (git compares sizes before it runs a filter). For the saved file and
    its jupytext twin, when the filtered content is exactly what the index holds, this
    refreshes the index entry (``git add`` of identical content: nothing new is staged);
    a real change stays unstaged as usual. Returns the files refreshed.

    ``make lab`` runs it as the contents manager's ``post_save_hook``; call it with
    ``os_path=…`` after writing a notebook some other way.
    """
    import subprocess

    saved = Path(os_path)
    refreshed = []
    for path in (saved.with_suffix(".ipynb"), saved.with_suffix(".py")):
        if not path.is_file():
            continue
        git = ["git", "-C", str(path.parent)]
        staged = subprocess.run(
            [*git, "ls-files", "-s", "--", path.name], capture_output=True, text=True
        ).stdout.split()
        filtered = subprocess.run(
            [*git, "hash-object", f"--path={path.name}", "--", path.name],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if len(staged) >= 2 and staged[1] == filtered:
            subprocess.run([*git, "add", "--", path.name], capture_output=True)
            refreshed.append(path)
    return refreshed


def _shell() -> Any:
    """The running IPython shell, or None outside IPython (a script, the CLI)."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def interrupted_words(out: Path, since: float) -> str:
    """One line for an interrupted cell: how many frames went to which traces under ``out``
    (written since the ``since`` timestamp), the traces being kept."""
    from .trace import read_trace

    traces = sorted(
        (p for p in out.rglob("*.jsonl") if p.stat().st_mtime >= since),
        key=lambda p: p.stat().st_mtime,
    )
    if not traces:
        return f"interrupted; no trace was written by this cell (traces: {out})"
    frames = 0
    for path in traces:
        with contextlib.suppress(Exception):  # a trace cut mid-line still counts what it has
            frames += len(read_trace(path).frames)
    where = str(traces[0]) if len(traces) == 1 else f"{len(traces)} traces in {out}"
    return f"interrupted; {frames} frame{'' if frames == 1 else 's'} recorded to {where}"


def setup_notebook(out: str | os.PathLike[str]) -> None:
    """Make a notebook kind to a person in JupyterLab; call it once, after :func:`output_dir`.

    Kernel → Interrupt (or a cancelled cell) then prints one line, "interrupted; N frames
    recorded to …", instead of a ``CancelledError`` traceback; the traces stay as written.
    Outside IPython it does nothing.
    """
    shell = _shell()
    if shell is None:
        return
    folder = Path(out)
    started = [time.time()]

    def cell_starts(*_: Any) -> None:
        started[0] = time.time() - 1  # file times have a coarse resolution on some systems

    def interrupted(_shell: Any, *_exc: Any, **_kw: Any) -> None:
        # Printed: the kernel shows no traceback list a custom handler returns for these.
        print(interrupted_words(folder, started[0]), file=sys.stderr)

    with contextlib.suppress(ValueError):  # registered by an earlier call in this kernel
        shell.events.unregister("pre_run_cell", _CALLBACKS.get("pre_run_cell"))
    _CALLBACKS["pre_run_cell"] = cell_starts
    shell.events.register("pre_run_cell", cell_starts)
    shell.set_custom_exc((KeyboardInterrupt, asyncio.CancelledError), interrupted)


_CALLBACKS: dict[str, Any] = {}

# Set while a shown wait runs, so a quiet window's own collect() is not shown twice.
_WAITING: ContextVar[bool] = ContextVar("netra_ws_waiting", default=False)


class _Waits:
    """The one progress line of :func:`show_waits`, updated in place."""

    def __init__(self, total_s: float | None, every: float) -> None:
        from IPython.display import HTML, display

        self._html = HTML
        self.total_s = total_s
        self.every = every
        self.count: dict[str, int] = {"quiet window": 0, "collection": 0}
        self.waited = 0.0
        self.handle = display(HTML(self.render("starting…", 0.0, 1.0)), display_id=True)

    def render(self, what: str, elapsed: float, limit: float) -> str:
        overall = ""
        if self.total_s:
            done = self.waited + elapsed
            overall = f" · about {max(self.total_s - done, 0):.0f} s left of ~{self.total_s:.0f} s"
        return (
            f'<div class="netra-progress"><progress value="{min(elapsed, limit):.2f}" '
            f'max="{limit:.2f}" style="width: 12em; vertical-align: middle"></progress> '
            f"{html.escape(what)}: {elapsed:.1f} of {limit:.1f} s{overall}</div>"
        )

    def finish(self) -> None:
        parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in self.count.items() if n]
        done = ", ".join(parts) or "nothing"
        self.handle.update(
            self._html(f'<div class="netra-progress">✔ waited {self.waited:.1f} s: {done}</div>')
        )

    async def follow(self, what: str, limit: float, kind: str, work: Awaitable[T]) -> T:
        self.count[kind] += 1
        label = f"{kind} {self.count[kind]} — {what}"
        token = _WAITING.set(True)
        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.ensure_future(work)
        try:
            while not task.done():
                self.handle.update(self._html(self.render(label, loop.time() - started, limit)))
                await asyncio.wait([task], timeout=self.every)
            return task.result()
        finally:
            if not task.done():
                task.cancel()  # the cell was interrupted: stop the wait with it
            _WAITING.reset(token)
            self.waited += loop.time() - started


def _last_sent(session: Any) -> str:
    sent = [r for r in session.records() if r.get("kind") == "frame" and r.get("dir") == "send"]
    return f"after sending {sent[-1].get('event')}" if sent else "before sending anything"


@contextlib.contextmanager
def show_waits(*, total_s: float | None = None, every: float = 0.25) -> Iterator[None]:
    """Show, under the cell, what every quiet window and collection inside the block waits
    for and how long is left (``total_s``: the expected total, for an "about N s left").

    Wrap a call whose waits are long and silent, e.g. the negative probe::

        with show_waits(total_s=len(AGENT_EVENTS) * QUIET_WINDOW):
            negative = await probe_negative(…)

    It wraps :meth:`Session.quiet` and :meth:`Session.collect` for the duration of the
    block (sessions the probes open included) and restores them after. Outside IPython it
    shows nothing.
    """
    if _shell() is None:
        yield
        return
    from .client import Session

    waits = _Waits(total_s, every)
    quiet, collect = Session.quiet, Session.collect

    async def shown_quiet(self: Session, window: float = 2.0) -> Any:
        if _WAITING.get():
            return await quiet(self, window)
        what = f"listening for anything the server sends {_last_sent(self)}"
        return await waits.follow(what, window, "quiet window", quiet(self, window))

    async def shown_collect(self: Session, until: Any = None, timeout: float = 30.0) -> Any:
        if _WAITING.get():
            return await collect(self, until, timeout)
        goal = f"until {_until_words(until)}" if until is not None else "everything"
        what = f"collecting {goal} {_last_sent(self)}"
        return await waits.follow(what, timeout, "collection", collect(self, until, timeout))

    setattr(Session, "quiet", shown_quiet)  # noqa: B010 (mypy: no assignment to a method)
    setattr(Session, "collect", shown_collect)  # noqa: B010
    try:
        yield
    finally:
        setattr(Session, "quiet", quiet)  # noqa: B010
        setattr(Session, "collect", collect)  # noqa: B010
        waits.finish()


def _until_words(until: Any) -> str:
    if isinstance(until, str):
        return until
    if isinstance(until, (tuple, list, set, frozenset)):
        return " or ".join(sorted(str(u) for u in until))
    return "a matching frame"
