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
# # 04 — Timing: find the stall among 50 runs
#
# **Issue #937, step 4.** Events that arrive, in the right order, can still arrive too late.
# The backend's own tests read with a 2–3 s timeout per frame: a run whose events pause for
# longer than that looks, to those tests, exactly like "the events don't arrive". One slow
# run in fifty disappears in an average, so we time every gap of every run.
#
# Against the embedded server this notebook captures `N_RUNS` workflows (`CONCURRENCY` at a
# time, one trace per run) with seeded jitter, and injects **one** stall: the second
# `agent_thinking` of the `STALL_CONN`-th connection comes `STALL_SECONDS` late (fault
# `stall:agent_thinking#2:<s>@conn=<n>`, see `netra_ws.server.faults`). The analysis must
# find that stall — the run and the gap — with nothing but the traces; the server's own
# fault log says where it really was, and a headless run fails if they disagree. Then we
# compare two scenarios (`STEP_DELAY` against `COMPARE_STEP_DELAY` between events). Charts
# are saved as PNGs next to the traces, ready for the issue comment.
#
# With `TARGET_URL` set, the same capture and analysis run against the real target (no
# fault can be injected there), and the comparison sets the target against the embedded
# reference server.

# %% tags=["parameters"]
TARGET_URL = None  # None: the embedded reference server; else e.g. "wss://…/api/v1/websocket"
TOKEN_ENV = "NETRA_WS_TOKEN"  # name of the environment variable holding a JWT for TARGET_URL
DIALECT = "bridge"  # the embedded server's protocol dialect (netra_ws.server.DIALECTS)
AUTH = "header"  # how the token is sent: "header", "subprotocol", "both" or "none"
TIMEOUT = 10.0  # seconds a run may take to end (must exceed STALL_SECONDS)
QUIET_WINDOW = 1.0  # not used here; every notebook takes the same parameters
N_RUNS = 50  # workflows to capture
CONCURRENCY = 10  # of them at once
STEP_DELAY = 0.02  # seconds between events in the embedded scenario
COMPARE_STEP_DELAY = 0.04  # the scenario compared with it
N_COMPARE = 20  # runs per scenario in the comparison
JITTER = 0.3  # each delay times a seeded uniform factor in 1 ± JITTER
SEED = 7  # same seed, same timings
STALL_SECONDS = 2.5  # the injected stall: longer than the tests' 2 s receive timeout
STALL_CONN = 17  # the server's STALL_CONN-th connection (one run) gets it
STALL_THRESHOLD = 2.0  # a wait longer than this is a stall (the tests' receive timeout)
DATA_DIR = "../data"  # traces and charts go to DATA_DIR/04_timing_analysis/<time>/

# %%
import matplotlib.pyplot as plt

from netra_ws.analysis import compare_runs, event_gaps, find_stalls, run_stats, summarize_runs
from netra_ws.capture import capture_runs
from netra_ws.notebooks import output_dir, setup_notebook
from netra_ws.plots import (
    plot_comparison,
    plot_gap_histogram,
    plot_gaps,
    plot_overlay,
    plot_timeline,
    save_figure,
)
from netra_ws.server import Scenario
from netra_ws.target import open_target

OUT = output_dir(DATA_DIR, "04_timing_analysis")
setup_notebook(OUT)  # Kernel → Interrupt: one line naming the traces kept
CAPTURE = {"concurrency": CONCURRENCY, "out_dir": OUT, "timeout": TIMEOUT}  # with a progress bar
SCENARIO = Scenario(first_delay=STEP_DELAY, step_delay=STEP_DELAY, jitter=JITTER)
STALL = f"stall:agent_thinking#2:{STALL_SECONDS:g}@conn={STALL_CONN}"
target = open_target(
    TARGET_URL,
    auth=AUTH,
    token_env=TOKEN_ENV,
    dialect=DIALECT,
    scenario=SCENARIO,
    faults=[STALL],
    seed=SEED,
)
print(f"output: {OUT}")
print(f"injected fault: {STALL if target.embedded else 'none (real target)'}")
target

# %% [markdown]
# ## Capture
#
# `capture_runs` opens one connection per run, sends `user_message`, collects until the
# terminal event or `TIMEOUT`, and writes one trace per run (`runs/run-0001.jsonl` …). It
# returns every frame of every run in one DataFrame, with a `trace` column. A run that fails
# is recorded, not fatal: `attrs["failures"]` lists them — check it before trusting any
# summary. A progress bar counts the runs as they end (the stalled one takes seconds).

# %%
runs = capture_runs(target.url, N_RUNS, name="runs", **CAPTURE, **target.connect_options())
print(f"{runs['trace'].nunique()} traces, {len(runs)} frames; failures: {runs.attrs['failures']}")
stats = run_stats(runs)
stats["outcome"].value_counts()

# %% [markdown]
# ## Summary: percentiles per metric
#
# Time to first event (from `user_message`), run duration, the gap before each event type,
# and the phases (thinking, each tool). The stall hides here: p50 and p90 do not move; only
# the maximum of the `agent_thinking` gap (and the p99 of the durations) gives it away.

# %%
summarize_runs(runs)

# %% [markdown]
# ## Find the stall
#
# `find_stalls` lists every wait longer than `STALL_THRESHOLD` (the tests' receive timeout)
# between consecutive events of a run, or between `user_message` and the first event, with
# the events on both sides. Below it, the server's own record of the fault it injected.

# %%
stalls = find_stalls(runs, threshold_s=STALL_THRESHOLD)
stalls[["trace", "run_id", "gap_s", "before_event", "before_seq", "after_event", "after_seq"]]

# %%
injected = target.faults()
injected

# %% [markdown]
# The finding, in words — and, against the embedded server, checked: exactly one stall,
# in the run the server stalled, before the second `agent_thinking`.

# %%
for stall in stalls.itertuples():
    print(
        f"stall in {stall.trace} (run_id {stall.run_id}): {stall.gap_s:.2f} s between "
        f"{stall.before_event} #{stall.before_seq} and {stall.after_event} #{stall.after_seq}"
    )
if target.embedded:
    assert len(stalls) == 1, f"expected exactly one stall, found {len(stalls)}"
    assert stalls["run_id"].tolist() == injected["run_id"].tolist(), "not the injected run"
    assert stalls["after_event"].tolist() == ["agent_thinking"], "not the injected gap"
stalls.to_json(OUT / "stalls.json", orient="records", indent=2)
injected.to_json(OUT / "faults.json", orient="records", date_format="iso", indent=2)

# %% [markdown]
# ## Charts
#
# **Swimlanes**, one lane per run, time since each run's connection opened: every run is a
# tight cluster of events except one, whose second half sits seconds to the right.

# %%
fig, ax = plt.subplots(figsize=(8, 10))
plot_timeline(runs, lanes="run", include_housekeeping=False, ax=ax)
save_figure(ax, "swimlanes", OUT);

# %% [markdown]
# The run with the longest gap (the stalled one, when there is a stall) alone, one lane
# per event type: the hole between the two `agent_thinking` events is the stall.

# %%
gaps = event_gaps(runs)
slowest = gaps.loc[gaps["gap_s"].idxmax(), "trace"]
ax = plot_timeline(runs[runs["trace"] == slowest], title=f"The run with the longest gap: {slowest}")
save_figure(ax, "slowest-run", OUT);

# %% [markdown]
# **Gaps**, run after run: one bar per gap between consecutive events; bars above the
# threshold (dashed) are stalls, in red.

# %%
ax = plot_gaps(gaps, threshold_s=STALL_THRESHOLD)
save_figure(ax, "gaps", OUT);

# %% [markdown]
# **The distribution** of gaps per event type, on a log scale: the jittered step delays
# form one hump; the stall is the lone outlier on the right.

# %%
ax = plot_gap_histogram(gaps, by="event", log=True)
save_figure(ax, "gap-distribution", OUT);

# %% [markdown]
# ## Compare two scenarios
#
# Two fresh captures without faults, `N_COMPARE` runs each, differing only in the delay
# between events (against a real target: the embedded reference server against the target).
# `compare_runs` summarizes both and compares each metric; every metric is a time, so lower
# is better, and differences within 10 % or 5 ms count as "same".

# %%
if target.embedded:
    a = capture_runs(
        None, N_COMPARE, name="compare-a", **CAPTURE,
        server_options={"dialect": DIALECT, "seed": SEED, "scenario": SCENARIO},
    )
    slower = Scenario(first_delay=COMPARE_STEP_DELAY, step_delay=COMPARE_STEP_DELAY, jitter=JITTER)
    b = capture_runs(
        None, N_COMPARE, name="compare-b", **CAPTURE,
        server_options={"dialect": DIALECT, "seed": SEED, "scenario": slower},
    )
    labels = (f"step {STEP_DELAY:g} s", f"step {COMPARE_STEP_DELAY:g} s")
else:
    a = capture_runs(
        None, N_COMPARE, name="compare-reference", **CAPTURE,
        server_options={"dialect": DIALECT, "seed": SEED, "scenario": SCENARIO},
    )
    b, labels = runs, ("embedded reference", "target")
comparison = compare_runs(a, b)
comparison.to_csv(OUT / "comparison.csv", index=False)
comparison[["metric", "name", "stat", "a", "b", "delta", "change"]]

# %%
ax = plot_comparison(comparison, stat="p50", labels=labels)
save_figure(ax, "comparison", OUT);

# %%
ax = plot_overlay(event_gaps(a), event_gaps(b), labels=labels)
save_figure(ax, "gap-overlay", OUT);

# %% [markdown]
# **What we learnt.** Per-run gaps find what averages hide: one run in fifty stalled for
# seconds before its second `agent_thinking`, long enough for a test reading with a 2 s
# timeout to give up and report "no events". The analysis named the run and the gap from
# the traces alone, and the server's fault log confirms it. The comparison shows how the
# same tables put two setups (scenarios here; staging against the reference in practice)
# side by side. Charts and tables are in the output folder for the issue comment.

# %%
target.stop()
print(sorted(p.name for p in OUT.glob("*.png")))
