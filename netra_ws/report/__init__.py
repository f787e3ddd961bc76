"""Traces and verdicts in, a Markdown issue comment and its PNG charts out. Pure: no network.

Build a report from the traces of an investigation (files, folders, or loaded traces) or
from a :class:`~netra_ws.verdicts.ProbeReport`, then write it or paste it::

    report = build_report("data/probes-20260101T120000/")   # a folder of traces
    report = build_report("data/")                          # the notebooks' latest outputs
    report = build_report(await run_probes(out="data"))      # verdicts straight from the probes
    report.verdict                                          # "passed" / "failed" / "inconclusive"
    path = report.write("data/report.md")                   # + data/report-timeline.png, …
    print(report.summary())                                 # one line, for a terminal

From the command line: ``python -m netra_ws report data/ --out data/report.md``.

The verdicts are recomputed from the traces by :mod:`netra_ws.verdicts` (the functions the
live probes call), so a folder saved months ago gives the same verdicts as the run that wrote
it. The probes label their traces (``probe``, ``dialect``, ``server_auth``, ``profile``,
``credential``), which is how each trace finds its part of the report.

The Markdown reads as a GitHub comment: the verdict, a table per probe and per contract
test, the key findings in plain sentences, the event sequence of a representative run,
timing statistics, charts (PNG files next to the report, referenced by relative path, with
alt text that says what they show), the environment, and the commands that reproduce it.
Its Markdown, summary, findings, notes and alt texts go through :mod:`netra_ws.redact` (and
again at every rendering), so a token that slipped into a trace never reaches the issue.

The stages, one module each, in pipeline order: :mod:`.sources`, :mod:`.findings`,
:mod:`.timing`, :mod:`.charts`, :mod:`.markdown`; :mod:`.build` runs them.
"""

from ..verdicts import judge_traces
from .build import Report, build_report
from .charts import Chart
from .sources import investigation_sources
from .timing import STALL_THRESHOLD_S

__all__ = [
    "STALL_THRESHOLD_S",
    "Chart",
    "Report",
    "build_report",
    "investigation_sources",
    "judge_traces",
]
