"""The main job: the whole Issue #937 investigation, headless, then the report.

``python -m netra_ws demo`` (``make demo``) does what an engineer does in JupyterLab:

1. executes the walk-through notebooks 01–04 against the embedded reference server, two
   at a time (they mostly wait on sockets); each saves its traces under
   ``<out>/<notebook>/<time>/`` and an executed, redacted copy under ``<out>/notebooks/``
   (with the kernel's log beside it when the kernel said anything worth reading);
2. executes ``05_share_findings``, which writes the report ``<out>/report.md`` and its
   charts (``<out>/report-*.png``) from those traces;
3. returns the report's path and its one-line verdict.

Without a ``notebooks/`` folder (netra_ws installed from a wheel) or a Jupyter kernel, it
runs the probes instead and writes the report from their traces (``<out>/probes-<time>/``).
A notebook that fails does not stop the others; the report says what is missing.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .errors import NetraWsError
from .expect import PASSED, Status
from .notebooks import NOTEBOOKS, notebook_dir

__all__ = ["DEMO_PARAMETERS", "DemoResult", "NotebookRun", "run_demo"]

# Parameters the demo sets per notebook, beside DATA_DIR, TARGET_URL, REPORT_PATH and NOTES
# (where a notebook has them). Notebook 02 waits TIMEOUT twice for the staging-937
# comparison that must get no reply; the embedded server answers in milliseconds, so 2 s
# loses nothing. Notebook 04's TIMEOUT must exceed its injected stall: it keeps its own.
DEMO_PARAMETERS: Mapping[str, Mapping[str, Any]] = {
    "02_broken_vs_correct": {"TIMEOUT": 2.0},
    "03_authentication": {"TIMEOUT": 2.0},
}
# How many notebooks run at once: on two cores, more only makes the kernels start slower.
_JOBS = 2
_REPORT = "report.md"
# 01–04 in the order they are started: the longest first, so the short ones fill the gaps.
_LONGEST_FIRST = ("04_timing_analysis", "02_broken_vs_correct", "01_connect", "03_authentication")


@dataclass(frozen=True)
class NotebookRun:
    """One notebook of the demo: ``status`` "ok", "failed" or "missing" (not in this
    checkout), how long it took, its executed copy, and what went wrong."""

    name: str
    status: Literal["ok", "failed", "missing"]
    seconds: float = 0.0
    path: Path | None = None
    error: str = ""


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the ``report`` it wrote, its ``verdict`` and one-line ``summary``,
    ``mode`` ("notebooks", or "probes" when notebooks could not run) and each notebook run.

    ``ok`` is True when the verdict passed and no notebook failed. Open the report next.
    """

    report: Path
    verdict: Status
    summary: str
    mode: Literal["notebooks", "probes"]
    notebooks: tuple[NotebookRun, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        return self.verdict == PASSED and all(n.status != "failed" for n in self.notebooks)


def run_demo(
    out_dir: str | os.PathLike[str] = "data",
    *,
    url: str | None = None,
    jobs: int = _JOBS,
    progress: Callable[[str], None] | None = None,
) -> DemoResult:
    """Run the investigation into ``out_dir`` and write ``<out_dir>/report.md``.

    ``url`` points the notebooks (their ``TARGET_URL``) at a real server; its token comes
    from ``$NETRA_WS_TOKEN``, never an argument. ``jobs`` notebooks run at once.
    ``progress`` gets one line per finished step (the CLI prints them). Blocking; safe to
    call from a script or a notebook cell. Then open ``result.report``.
    """
    started, started_wall = time.perf_counter(), time.time()
    say = progress or (lambda line: None)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    report = out / _REPORT
    runs: list[NotebookRun] = []
    if _notebooks_runnable():
        mode: Literal["notebooks", "probes"] = "notebooks"
        runs, (verdict, summary) = _run_notebooks(out, url=url, jobs=jobs, say=say, report=report)
        if not (report.is_file() and report.stat().st_mtime >= started_wall):
            say("05_share_findings wrote no report: building it from the same traces")
            verdict, summary = _write_report(out, report, runs)
    else:
        mode = "probes"
        say("no notebooks/ folder or no Jupyter kernel here: running the probes instead")
        verdict, summary = _run_probes(out, url=url, report=report)
    return DemoResult(
        report=report,
        verdict=verdict,
        summary=summary,
        mode=mode,
        notebooks=tuple(runs),
        seconds=time.perf_counter() - started,
    )


def _notebooks_runnable() -> bool:
    try:
        notebook_dir()
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        KernelSpecManager().get_kernel_spec("python3")
    except (NetraWsError, ImportError):
        return False
    except NoSuchKernel:
        return False
    return True


def _run_notebooks(
    out: Path, *, url: str | None, jobs: int, say: Callable[[str], None], report: Path
) -> tuple[list[NotebookRun], tuple[Status, str]]:
    """Execute 01–04 side by side, then 05 (which writes the report) beside the verdict."""
    folder = notebook_dir()
    copies = out / "notebooks"
    copies.mkdir(parents=True, exist_ok=True)
    runs: dict[str, NotebookRun] = {}
    said = 0

    def say_in_order() -> None:
        """One line per finished notebook, in walk-through order, not completion order."""
        nonlocal said
        while said < len(NOTEBOOKS) and NOTEBOOKS[said] in runs:
            say(_line(runs[NOTEBOOKS[said]]))
            said += 1

    def start(names: Sequence[str], notes: list[str]) -> dict[Future[tuple[float, str]], str]:
        pending = {}
        for name in names:
            if not (folder / f"{name}.ipynb").is_file():
                runs[name] = NotebookRun(name, "missing", error=f"no {folder / name}.ipynb")
                say_in_order()
                continue
            wanted = _parameters(name, out=out, url=url, report=report, notes=notes)
            pending[pool.submit(_execute, name, str(copies), wanted)] = name
        return pending

    def finish(pending: dict[Future[tuple[float, str]], str]) -> None:
        for future in as_completed(pending):
            name = pending[future]
            seconds, error = future.result()
            path = copies / f"{name}.ipynb"
            runs[name] = NotebookRun(name, "failed" if error else "ok", seconds, path, error)
            say_in_order()

    # spawn: a clean interpreter per worker, whatever threads this process runs.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(2, jobs), mp_context=context) as pool:
        finish(start(_LONGEST_FIRST, []))
        failed = [_failure_note(run) for run in runs.values() if run.status == "failed"]
        last = start(NOTEBOOKS[-1:], failed)
        # The verdict of the traces 05 reads, computed while 05 runs.
        verdict = pool.submit(_verdict, str(out))
        finish(last)
        return [runs[name] for name in NOTEBOOKS], verdict.result()


def _parameters(
    name: str, *, out: Path, url: str | None, report: Path, notes: list[str]
) -> dict[str, Any]:
    """What the demo sets; :func:`_execute` keeps what the notebook's parameters cell has."""
    wanted: dict[str, Any] = {
        **DEMO_PARAMETERS.get(name, {}),
        "DATA_DIR": str(out),
        "REPORT_PATH": str(report),
        "NOTES": notes,
    }
    if url is not None:
        wanted["TARGET_URL"] = url
    return wanted


def _failure_note(run: NotebookRun) -> str:
    return (
        f"Notebook {run.name} failed during the demo ({run.error}); its part of this report "
        "may be missing or partial. The executed copy shows where it stopped: "
        f"notebooks/{run.name}.ipynb in the output folder."
    )


def _execute(name: str, copies: str, wanted: dict[str, Any]) -> tuple[float, str]:
    """In a worker process: execute one notebook; (seconds, "" or what went wrong)."""
    import papermill

    from .notebooks import execute_notebook
    from .redact import redact_file, redact_text

    started = time.perf_counter()
    known = papermill.inspect_notebook(str(notebook_dir() / f"{name}.ipynb"))
    parameters = {key: value for key, value in wanted.items() if key in known}
    log = Path(copies) / f"{name}.log"
    with log.open("w", encoding="utf-8") as stream:
        # The kernel inherits this process's stderr: its chatter goes to the log.
        os.dup2(stream.fileno(), 2)
        try:
            execute_notebook(name, copies, parameters=parameters)
            error = ""
        except Exception as exc:
            # papermill's error names the cell's exception; other errors say it themselves.
            ename = getattr(exc, "ename", None) or type(exc).__name__
            evalue = getattr(exc, "evalue", None) or str(exc)
            error = redact_text(" ".join(f"{ename}: {evalue}".split())[:300])
    redact_file(log)
    _keep_if_telling(log)
    return time.perf_counter() - started, error


# Kernel log lines that say nothing about the run: the demo's kernels listen on loopback
# only, so ipykernel's warning about unencrypted TCP is true of every run and means nothing.
_KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


def _keep_if_telling(log: Path) -> None:
    """Drop the known noise from a kernel's log; delete the log when nothing else is left."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    kept = [line for line in lines if not any(noise in line for noise in _KERNEL_NOISE)]
    if not "".join(kept).strip():
        log.unlink()
    elif len(kept) < len(lines):
        log.write_text("".join(kept), encoding="utf-8")


def _verdict(out: str) -> tuple[Status, str]:
    """In a worker process: the verdict of the notebooks' latest traces under ``out``."""
    from .report import build_report, investigation_sources

    sources, notes = investigation_sources(out)
    report = build_report(sources, notes=notes, charts=False)
    return report.verdict, report.summary()


def _write_report(out: Path, report: Path, runs: list[NotebookRun]) -> tuple[Status, str]:
    """The report notebook 05 should have written, from the same traces."""
    from .report import build_report, investigation_sources

    sources, notes = investigation_sources(out)
    notes += [_failure_note(run) for run in runs if run.status == "failed"]
    built = build_report(sources, notes=notes)
    built.write(report)
    return built.verdict, built.summary()


def _line(run: NotebookRun) -> str:
    head = f"  {run.status:<8}{run.name:<24}"
    if run.status == "missing":
        return f"{head}skipped: {run.error}"
    where = f"{run.seconds:5.1f} s  {run.path}"
    return f"{head}{where}" + (f"\n{' ' * 10}{run.error}" if run.error else "")


def _run_probes(out: Path, *, url: str | None, report: Path) -> tuple[Status, str]:
    from ._loop import LoopThread
    from .probes import PROBE_USER, run_probes
    from .report import build_report
    from .target import DEFAULT_TOKEN_ENV, resolve_target

    # A URL's token comes from the environment; the embedded server mints its own.
    token_env = DEFAULT_TOKEN_ENV if url else None
    runner = LoopThread(name="netra-ws-demo")
    try:
        with resolve_target(url, token_env=token_env, user_id=PROBE_USER) as target:
            probes = runner.run(run_probes(target, out=out, quiet=1.0, timeout=5.0))
    finally:
        runner.stop()
    built = build_report(probes)
    built.write(report)
    return built.verdict, built.summary()
