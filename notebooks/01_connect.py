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
# # 01 — Connect, and see the first frame
#
# **Issue #937, step 1.** The failing tests sent the server's own output events
# (`agent_started`, `tool_executing`, `tool_completed`) as input, read **one** frame, and
# expected it to be the reply. What they read was `connection_established`, the frame the
# server queues the moment a connection is accepted, before the client has said anything.
#
# Before blaming the server we check the plain facts, directly: does the handshake succeed,
# what is the first frame, which user does the server think we are, and how long does it
# take? Everything below is recorded in a trace under `DATA_DIR/01_connect/<time>/`, so the
# evidence can be attached to the issue.
#
# By default the target is the embedded reference server (strict authentication, like
# production), with a token minted for it. Set `TARGET_URL` (and put a JWT in the
# environment variable named by `TOKEN_ENV`) to run the same cells against staging.

# %% tags=["parameters"]
TARGET_URL = None  # None: the embedded reference server; else e.g. "wss://…/api/v1/websocket"
TOKEN_ENV = "NETRA_WS_TOKEN"  # name of the environment variable holding a JWT for TARGET_URL
DIALECT = "bridge"  # the embedded server's protocol dialect (netra_ws.server.DIALECTS)
AUTH = "header"  # how the token is sent: "header", "subprotocol", "both" or "none"
TIMEOUT = 5.0  # seconds to wait for the handshake and for a frame
QUIET_WINDOW = 1.0  # seconds of listening that count as "nothing came back"
DATA_DIR = "../data"  # traces go to DATA_DIR/01_connect/<time>/ (cwd is notebooks/)

# %%
import dataclasses

import pandas as pd

from netra_ws import read_trace
from netra_ws.notebooks import output_dir, setup_notebook
from netra_ws.plots import plot_timeline
from netra_ws.probes import probe_connection
from netra_ws.tables import readable
from netra_ws.target import open_target

OUT = output_dir(DATA_DIR, "01_connect")
setup_notebook(OUT)  # Kernel → Interrupt: one line naming the traces kept
target = open_target(TARGET_URL, auth=AUTH, token_env=TOKEN_ENV, dialect=DIALECT)
print(f"traces: {OUT}")
target

# %% [markdown]
# ## Connect and read one frame
#
# `target.connect()` opens a recorded session: every frame, in both directions, goes to the
# trace file with wall-clock and monotonic timestamps taken the moment it arrives. We send
# nothing and read a single frame: whatever it is, the server sent it on its own.

# %%
async with target.connect(trace=OUT / "connect.jsonl", open_timeout=TIMEOUT) as session:
    first = await session.next(timeout=TIMEOUT)
    await session.quiet(QUIET_WINDOW)  # anything else the server volunteers on its own?

first

# %% [markdown]
# ### The handshake
#
# HTTP 101 means the WebSocket upgrade succeeded. `subprotocol` is the one the server chose
# (none when we authenticate by header); `auth` is how the token was sent. Credentials in
# headers and subprotocols are redacted before they are recorded.

# %%
handshake = dataclasses.asdict(session.handshake)
readable(pd.DataFrame({"field": list(handshake), "value": list(handshake.values())}))

# %% [markdown]
# ### The first frame: `connection_established`
#
# This is the frame the #937 tests mistook for a reply. Its `data` says which connection and
# which user the server attached us to. The backend cuts the user id to its first 8
# characters plus `...`: with a real token it is the token's `sub`; `demo-use...` means the
# server treated us as the demo user (no token, or `DEMO_MODE`), and the demo user gets no
# agent events on staging — keep an eye on it.

# %%
print(f"first frame: {first.name} (#{first.seq}), envelope {first.event.envelope!r}")
print(f"user id: {first.event.payload.get('user_id')!r}")
payload = first.event.payload
readable(pd.DataFrame({"field": list(payload), "value": list(payload.values())}))

# %% [markdown]
# ### How long it took
#
# Two numbers: the opening handshake (TCP + HTTP upgrade), and the wait from the end of the
# handshake to `connection_established` (the `t_s` of the frame: seconds since the trace's
# first record, the `open`).

# %%
frames = session.to_frame()
handshake_ms = session.handshake.connect_ms
welcome_ms = 1000 * frames.loc[frames["seq"] == first.seq, "t_s"].iloc[0]
print(f"handshake: {handshake_ms:.1f} ms; connection_established {welcome_ms:.1f} ms later; "
      f"{handshake_ms + welcome_ms:.1f} ms from the start of connecting")

# %% [markdown]
# ## The trace, as saved
#
# The trace file is the evidence: JSON Lines, one record per line, written as frames
# arrive (format: `data/README.md`). Reading it back gives one row per frame (`t` in ms
# since the trace began; click a `data` cell to unfold its JSON); the other records (`open`
# with the handshake, `close`, the `mark`s of the quiet window) are in `records`.

# %%
trace = read_trace(session.trace_path)
readable(trace.to_frame()[["seq", "dir", "t_s", "event", "envelope", "user_id", "size", "data"]])

# %%
columns = ["kind", "seq", "dir", "event", "label", "received", "http_status", "code", "reason"]
readable(pd.DataFrame(trace.records).reindex(columns=columns))

# %% [markdown]
# ## The connection probe's verdict
#
# `probe_connection` does the same check on a fresh connection and judges it: it passes
# when the first frame received is `connection_established`, and otherwise says why (a
# refused handshake, `AUTH_FAILED`, another first frame). Its trace lands next to ours.
# The verdict comes first (green ✔ passed, red ✘ failed), then what the probe saw.

# %%
connection = await probe_connection(
    target.where, token=target.token, auth=AUTH, out=OUT, timeout=TIMEOUT
)
connection

# %% [markdown]
# ## Watching a session live
#
# `session.live()` shows the frames as they arrive, under the cell: a small timeline (sent
# above, received below) and the table of frames, each payload opening onto its full JSON.
# It updates in place until the connection closes, so the saved notebook keeps its final
# state. Here a preview of step 3: a `user_message`, and the agent events that answer it
# (trace `live.jsonl`; `python -m netra_ws connect` does the same in a terminal).

# %%
async with target.connect(trace=OUT / "live.jsonl", open_timeout=TIMEOUT) as session:
    view = session.live()
    await session.next(timeout=TIMEOUT)
    await session.send_user_message("What did we spend last month?")
    run = await session.collect(until=("agent_completed", "agent_error"), timeout=30)
run

# %% [markdown]
# The same run as a chart: one lane per event type, time across (sends are orange
# triangles, receives blue dots).

# %%
plot_timeline(session.to_frame(), title="user_message, and the agent events that answer it");

# %% [markdown]
# **What we learnt.** The connection works and authenticates; the first frame is
# `connection_established`, sent before any input, so a test that sends something and reads
# one frame will always read this one. Next (`02_broken_vs_correct`): what comes back when
# we send an output event as input, and what the right input is.

# %%
target.stop()
