"""The walk-through notebooks: run them headless, and where each one writes its evidence.

The notebooks live in the checkout's ``notebooks/`` folder, committed without outputs and
paired with ``.py`` files (jupytext, percent format). Executed copies, with outputs, go to
``data/notebooks/``; their outputs are redacted before they are kept.

Each execution of a notebook writes its traces, tables and charts into a folder of its own,
``<DATA_DIR>/<notebook>/<time>/`` (:func:`output_dir`), so running it again never mixes or
overwrites evidence; :func:`latest_output` finds the newest one (for a later notebook or a
report).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import NetraWsError

__all__ = [
    "NOTEBOOKS",
    "execute_notebook",
    "latest_output",
    "notebook_dir",
    "output_dir",
    "stale_pairs",
]

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
