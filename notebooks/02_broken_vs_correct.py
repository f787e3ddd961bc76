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
# # 02 — The broken test, and the correct one
#
# **Issue #937, step 2.** The failing tests did this: connect, send `agent_started` (an event
# the *server* emits) as if it were input, read one frame, and expect the matching event
# back. They got `connection_established` and failed, and the failure was read as "the
# WebSocket agent events are broken".
#
# This notebook reproduces that test against the same server, shows why it can never pass
# (the trap), and then does it the right way:
#
# 1. **the trap** — the one frame read after sending is `connection_established`, queued at
#    connect time; it is not a reply to anything;
# 2. **the negative check** — an output event sent as input gets *no* reply at all: we wait
#    a quiet window and nothing arrives;
# 3. **the right input** — `user_message` starts an agent run; we collect with a timeout
#    until `agent_completed` (or `agent_error`) and validate what arrived;
# 4. **the honest failure** — against a server that behaves like staging did in #937
#    (dialect `staging-937` in `demo` auth: every connection the demo user, every input
#    swallowed), the same workflow check must *fail*, and say why. A check that cannot fail
#    proves nothing.

# %% tags=["parameters"]
TARGET_URL = None  # None: the embedded reference server; else e.g. "wss://…/api/v1/websocket"
TOKEN_ENV = "NETRA_WS_TOKEN"  # name of the environment variable holding a JWT for TARGET_URL
DIALECT = "bridge"  # the embedded server's protocol dialect (netra_ws.server.DIALECTS)
COMPARE_DIALECT = "staging-937"  # the embedded dialect that shows the honest failure
AUTH = "header"  # how the token is sent: "header", "subprotocol", "both" or "none"
TIMEOUT = 5.0  # seconds to wait for a frame, and for a run to end
QUIET_WINDOW = 1.0  # seconds of listening that count as "nothing came back"
DATA_DIR = "../data"  # traces go to DATA_DIR/02_broken_vs_correct/<time>/ (cwd is notebooks/)

# %%
import time

import pandas as pd

from netra_ws import AGENT_EVENTS, TERMINAL_EVENTS, read_trace
from netra_ws.notebooks import output_dir, setup_notebook, show_waits
from netra_ws.probes import probe_negative, probe_workflow
from netra_ws.tables import readable
from netra_ws.target import open_target

COLUMNS = ["seq", "dir", "t_s", "event", "user_id", "run_id", "data"]
OUT = output_dir(DATA_DIR, "02_broken_vs_correct")
setup_notebook(OUT)  # Kernel → Interrupt: one line naming the traces kept
target = open_target(TARGET_URL, auth=AUTH, token_env=TOKEN_ENV, dialect=DIALECT)
print(f"traces: {OUT}")
target

# %% [markdown]
# ## 1. The broken test, reproduced
#
# Exactly what the flawed test did: send the output event `agent_started` as input, read
# one frame. Then, unlike the test, we keep listening for a quiet window to see whether
# anything at all answers it.

# %%
async with target.connect(trace=OUT / "broken-test.jsonl", open_timeout=TIMEOUT) as session:
    session.mark("flawed test: output event sent as input, then one read")
    await session.send(
        {"type": "agent_started", "payload": {"agent_name": "test"}, "timestamp": time.time()}
    )
    reply = await session.next(timeout=TIMEOUT)
    later = await session.quiet(QUIET_WINDOW)

print(f"the flawed test read {reply.name!r} (#{reply.seq}) and expected 'agent_started'")
print(f"frames in the {QUIET_WINDOW:g} s after it: {len(later)}")

# %% [markdown]
# **The trap.** The frame the test read is `connection_established`. The server stamped it
# (`server_ts`) when it accepted the connection — *before* the client sent `agent_started`
# (`t_wall` of the send). It was waiting in the socket; the single read picked it up. (On a
# real target the two clocks may differ by a few milliseconds.) After it, the quiet window
# stayed empty: nothing answered `agent_started`.

# %%
broken = session.to_frame()
readable(
    broken.assign(server_time=pd.to_datetime(broken["server_ts"], unit="s", utc=True))[
        ["seq", "dir", "event", "server_time", "t_wall", "t_s", "data"]
    ]
)

# %% [markdown]
# ## 2. The negative probe
#
# The same question asked properly, for every output event name: each is sent as input and
# gets its own quiet window. The probe passes when nothing comes back — the server
# **ignores** output events sent as input, silently, as the backend does. It also records the
# trap (one read right after sending returns `connection_established`). The line under
# the cell shows which window is open and how long is left.

# %%
with show_waits(total_s=len(AGENT_EVENTS) * QUIET_WINDOW):
    negative = await probe_negative(
        target.where, token=target.token, auth=AUTH, quiet=QUIET_WINDOW, out=OUT, timeout=TIMEOUT
    )
negative

# %% [markdown]
# ## 3. The correct way: `user_message`, collected with a timeout
#
# `user_message` is the input that starts an agent run. Instead of reading one frame, we
# collect frames until the run's terminal event (`agent_completed` or `agent_error`) *or*
# the timeout. `run.reason` says which: `"matched"` means the run ended, `"timeout"` that it
# did not — that is a finding, never a pass.

# %%
async with target.connect(trace=OUT / "correct.jsonl", open_timeout=TIMEOUT) as session:
    welcome = await session.expect("connection_established", timeout=TIMEOUT)
    await session.send_user_message("Analyze my costs for the last 30 days")
    run = await session.collect(until=TERMINAL_EVENTS, timeout=TIMEOUT)

print(f"collection ended: {run.reason} after {run.elapsed_s:.3f} s")
print("events:", " → ".join(run.names))
readable(session.to_frame()[COLUMNS])

# %% [markdown]
# ### The workflow probe's verdict
#
# Arriving is not enough: `probe_workflow` sends `user_message` in both shapes real clients
# use (the #937 script's flat form and the CLI's `payload` form), collects each run, and
# checks it against the `netra-bridge` profile — every critical event present, in order,
# tools paired, the fields each event must carry, and timing budgets. One row per check.

# %%
workflow = await probe_workflow(
    target.where, token=target.token, auth=AUTH, out=OUT, timeout=TIMEOUT
)
workflow

# %% [markdown]
# ## 4. The honest failure: what staging did in #937
#
# On staging, the #937 run connected *without a token* and was accepted anyway (DEMO_MODE:
# everyone is `demo-user-001`), and `user_message` produced no agent events at all. The
# embedded server's `staging-937` dialect reproduces the backend of that commit, here in its
# `demo` auth mode (what staging ran). The same workflow probe must now **fail**, with an
# explanation that says what it saw — not fall back to validating a hand-made event, as the
# proposed #937 fix did. Both collections wait the full `TIMEOUT` for events that never
# come (the line under the cell counts down).
#
# Against a real target (`TARGET_URL` set) there is nothing to switch: the verdict above is
# the one that counts.

# %%
if TARGET_URL is None:
    with show_waits(total_s=2 * TIMEOUT):
        staging = await probe_workflow(
            None, dialect=COMPARE_DIALECT, server_auth="demo", out=OUT, timeout=TIMEOUT
        )
    # A headless run must stop here if the check could not fail.
    assert staging.status == "failed", f"{COMPARE_DIALECT}: expected a failure, got {staging}"
else:
    staging = workflow
staging

# %% [markdown]
# What that connection saw. On the `staging-937` server: the welcome frame says
# `demo-use...`, both `user_message`s went out, and nothing came back in the collection
# windows. (Against a real target: the workflow probe's own connection.)

# %%
readable(read_trace(staging.traces[0]).to_frame()[COLUMNS])

# %% [markdown]
# Side by side, check by check (embedded target only):

# %%
if TARGET_URL is None:
    side_by_side = pd.DataFrame(
        {
            DIALECT: workflow.checks.to_frame().set_index("check")["status"],
            COMPARE_DIALECT: staging.checks.to_frame().set_index("check")["status"],
        }
    )
else:
    side_by_side = workflow.checks.to_frame().set_index("check")[["status"]]
readable(side_by_side.reset_index(), statuses=list(side_by_side.columns))

# %% [markdown]
# **What we learnt.** The server was not broken: output events sent as input are ignored
# (no reply, by design), and the one frame the tests read was the welcome frame. The right
# input is `user_message`, read with timeout-based collection and validated event by event.
# And when no agent events arrive — as on staging in #937 — the check fails and says what it
# saw: there, the connection was the demo user, so the run says nothing about a real user.
# Next (`03_authentication`): a real token — and whether it changes anything.

# %%
target.stop()
