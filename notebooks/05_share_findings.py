# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 — Share the findings
#
# **Issue #937, step 5.** The investigation is only useful once the people arguing about
# "the WebSocket agent events are broken" can read it. This notebook turns the traces the
# earlier notebooks saved into one Markdown comment for the issue:
#
# - the verdict of each probe and of the seven contract tests, **recomputed from the
#   traces** (nothing is copied from the notebooks' outputs, so the report cannot disagree
#   with the evidence);
# - the key findings in plain sentences: what was sent, what came back, what it means;
# - a representative run as a Mermaid sequence diagram (GitHub draws it in the comment, no
#   attachment needed), timing statistics and two charts;
# - the secondary tables (auth matrix, contract tests, percentiles, reference runs,
#   environment) collapsed, and the commands that reproduce it all from a fresh clone.
#
# It reads the newest output folder of each of notebooks 01–04 under `DATA_DIR`. A notebook
# that has not run there is not an error: the report says its part is missing. Every text
# in the report goes through the redactor, so no token reaches the issue, and every value a
# server sent is shown as code (`netra_ws.untrusted`), so no frame can ping people, load an
# image or break the comment. Runs with an injected fault (notebook 04's stall) are named as
# such and kept out of every finding about the server.

# %% tags=["parameters"]
DATA_DIR = "../data"  # where notebooks 01–04 saved their traces (cwd is notebooks/)
REPORT_PATH = "../data/report.md"  # the report; its charts go next to it as report-*.png
TITLE = "Issue #937 — WebSocket agent events: findings"  # the report's heading
EXTRA_SOURCES = []  # more trace files or folders to include, e.g. ["../data/probes-…"]
NOTES = []  # sentences to add under the findings (the demo lists notebooks that failed)

# %%
from pathlib import Path

import pandas as pd
from IPython.display import Markdown

from netra_ws.notebooks import NOTEBOOKS
from netra_ws.report import build_report, investigation_sources

sources, missing = investigation_sources(DATA_DIR)
found = {folder.parent.name: folder for folder in sources}
pd.DataFrame(
    [
        {
            "notebook": name,
            "latest output": found[name].name if name in found else "— not run",
            "traces": len(list(found[name].rglob("*.jsonl"))) if name in found else 0,
        }
        for name in NOTEBOOKS[:-1]
    ]
)

# %% [markdown]
# ## Build the report
#
# `build_report` reads the traces, recomputes each probe's verdict with `netra_ws.expect`
# (the probes labelled their traces, so each one finds its part) and judges the seven
# contract tests with the function the pytest suite uses. Traces of a server deliberately
# set up differently — notebook 02's `staging-937` comparison, notebook 03's demo-mode and
# strict `staging-937` runs — are reference runs, each led by its diagnosis, in their own
# collapsed section: never part of the verdict.

# %%
report = build_report([*sources, *EXTRA_SOURCES], title=TITLE, notes=[*missing, *NOTES])
print(report.summary())
report.probes

# %% [markdown]
# ## Write it
#
# The Markdown file and its charts (PNG, next to it, referenced by relative path), and one
# zip beside them holding the report, the charts and the redacted traces it used. Paste the
# Markdown into the issue and drag the PNGs in (or attach the zip); without them the alt
# text still says what each chart shows, and the diagram needs no attachment.

# %%
path = report.write(REPORT_PATH)
bundle = report.bundle(Path(path).with_suffix(".zip"))
print(f"report: {Path(path).resolve()}  ({len(report.markdown):,} of 65,536 characters)")
print(f"attach: {', '.join(chart.name for chart in report.attachments(path))}")
print(f"bundle: {bundle.resolve()}")

# %% [markdown]
# ## The report, as the issue will show it

# %%
Markdown(report.to_markdown(embed_images=True))

# %% [markdown]
# ## What differs: the backend as intended, and as it was
#
# Notebook 03 ran the same workflow probe, with the same kind of valid token, against the
# backend as intended (`bridge`) and as it was at the #937 commit (`staging-937`), both
# enforcing authentication. `diff_traces` says what changed between the two traces: the
# agent events that are missing, the user each server saw, timing. The typical use beyond
# #937 is "local passes, staging fails: what is different?" (`netra-ws diff A B`).

# %%
from netra_ws import read_trace
from netra_ws.diff import diff_traces


def workflow_trace(dialect: str, server_auth: str) -> Path | None:
    """The newest workflow probe trace of that embedded server among the sources."""
    for folder in sources:
        for trace in sorted(folder.rglob("workflow-*.jsonl"), reverse=True):
            labels = read_trace(trace).meta.get("labels") or {}
            if (labels.get("dialect"), labels.get("server_auth")) == (dialect, server_auth):
                return trace
    return None


intended, as_it_was = workflow_trace("bridge", "strict"), workflow_trace("staging-937", "strict")
if intended is not None and as_it_was is not None:
    print(diff_traces(intended, as_it_was))
else:
    print("notebook 03 has not run under DATA_DIR: it records both traces")

# %% [markdown]
# **Next.** Read the report once as a stranger would: does every claim point at a trace? Then
# post it. To rebuild it later from the same evidence, without the notebooks:
# `python -m netra_ws report data/ --out data/report.md`.
