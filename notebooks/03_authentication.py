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
# # 03 — Authentication
#
# **Issue #937, step 3.** On staging the #937 run connected *without any token* and was
# accepted: the backend's `DEMO_MODE` makes every connection `demo-user-001`, and no agent
# events came back after `user_message`. The #937 report guessed that authentication was
# missing. This notebook checks what the server does with each kind of credential, and
# then tests the guess: the backend of the #937 commit, enforcing authentication, given a
# valid token (the last sections):
#
# - **the auth matrix** — no token, a valid token as a header, as a `jwt.<base64url>`
#   subprotocol (the browser's form), as a header with a bare `jwt-auth` subprotocol (the
#   backend's test helpers), an expired token, a token with a bad signature. A valid token
#   must get agent events; everything else must be refused;
# - **the token** — what it claims (never the token itself);
# - **header and subprotocol**, connection by connection;
# - **no token** — refused with `AUTH_FAILED` and close 1008 by a strict server; silently
#   accepted as the demo user by a demo-mode one, which is how #937 got in.
#
# The embedded server runs in `strict` mode by default (`SERVER_AUTH`), like production.
# Against a real target the valid token comes from the environment variable `TOKEN_ENV`,
# and the expired-token row needs the signing secret in `SECRET_ENV` (otherwise that row is
# inconclusive). Tokens never appear in this notebook, its outputs or the traces.

# %% tags=["parameters"]
TARGET_URL = None  # None: the embedded reference server; else e.g. "wss://…/api/v1/websocket"
TOKEN_ENV = "NETRA_WS_TOKEN"  # name of the environment variable holding a JWT for TARGET_URL
SECRET_ENV = "NETRA_WS_JWT_SECRET"  # name of the env var with the signing secret (real target)
DIALECT = "bridge"  # the embedded server's protocol dialect (netra_ws.server.DIALECTS)
SERVER_AUTH = "strict"  # the embedded server's auth mode: strict, reject, relaxed or demo
AUTH = "header"  # how the token is sent by default: "header", "subprotocol" or "both"
TIMEOUT = 5.0  # seconds to wait for a frame, and for a run to end
QUIET_WINDOW = 1.0  # seconds of listening that count as "nothing came back"
DATA_DIR = "../data"  # traces go to DATA_DIR/03_authentication/<time>/ (cwd is notebooks/)

# %%
import os

import pandas as pd

from netra_ws import TERMINAL_EVENTS, AuthenticationFailed, HandshakeRejected, read_trace
from netra_ws.notebooks import output_dir, setup_notebook, show_waits
from netra_ws.probes import probe_auth
from netra_ws.tables import readable
from netra_ws.target import open_target

OUT = output_dir(DATA_DIR, "03_authentication")
setup_notebook(OUT)  # Kernel → Interrupt: one line naming the traces kept
target = open_target(
    TARGET_URL, auth=AUTH, token_env=TOKEN_ENV, dialect=DIALECT, server_auth=SERVER_AUTH
)
print(f"traces: {OUT}")
target

# %% [markdown]
# ## The auth matrix
#
# One connection per credential, one trace each. For each: the HTTP status of the
# handshake, the subprotocol the server chose, the first frame, the user the server says we
# are, the close code, and whether agent events flowed after a `user_message`. A row passes
# when a valid credential gets agent events, or an invalid one is refused (HTTP 401/403 at
# the handshake, or `AUTH_FAILED` then close 1008). The verdict line comes first, then
# one row per credential: its status (✔ passed, ✘ failed, ? inconclusive) next to the
# explanation.

# %%
matrix = await probe_auth(
    target.where,
    token=target.token,
    secret=os.environ.get(SECRET_ENV) if TARGET_URL else None,
    out=OUT,
    timeout=TIMEOUT,
)
matrix

# %% [markdown]
# ## The token
#
# The embedded server accepts HS256 tokens signed with its secret, carrying the claims the
# backend's auth service mints and checks (`sub`, `iat`, `exp`, `token_type` and `type`
# both `access`, `iss: netra-auth-service`, `aud: netra-platform`, `jti`, `env`, `svc_id`),
# so a token minted here with the backend's secret is one the real backend accepts, and the
# other way round. Here are the claims, read without the signature; the encoded token is
# never displayed.

# %%
print(f"token: {target.token_source}")
target.token_claims()

# %% [markdown]
# ## By header, and by subprotocol
#
# The same valid token, sent two ways. With the header (`Authorization: Bearer …`) no
# subprotocol is offered. With the browser's form the client offers `jwt-auth` plus
# `jwt.<base64url(token)>` and the server echoes the token-bearing entry, which is why it
# shows up (redacted) as the chosen subprotocol. Either way the server must know us by the
# token's `sub` and run the agent.

# %%
rows = []
for form in ("header", "subprotocol"):
    async with target.connect(auth=form, trace=OUT / f"{form}.jsonl", open_timeout=TIMEOUT) as s:
        welcome = await s.expect("connection_established", timeout=TIMEOUT)
        await s.send_user_message("Analyze my costs for the last 30 days")
        run = await s.collect(until=TERMINAL_EVENTS, timeout=TIMEOUT)
    rows.append(
        {
            "auth": form,
            "http_status": s.handshake.status,
            "offered": s.handshake.offered_subprotocols,
            "chosen": s.handshake.subprotocol,
            "user_id": welcome.event.payload.get("user_id"),
            "collection": run.reason,
            "events": " → ".join(run.names),
        }
    )
readable(pd.DataFrame(rows))

# %% [markdown]
# ## Without a token
#
# A strict server accepts the WebSocket, sends one error frame (`AUTH_FAILED`, listing the
# token forms it supports) and closes with **1008** (policy violation); the client raises
# `AuthenticationFailed`. A `reject` server refuses the handshake itself (HTTP 401). A demo
# or relaxed server lets us in as someone else — the next section.

# %%
try:
    async with target.connect(
        auth="none", trace=OUT / "no-token.jsonl", open_timeout=TIMEOUT
    ) as session:
        first = await session.next(timeout=TIMEOUT)
        user = first.event.payload.get("user_id")
        print(f"accepted without a token: {first.name}, user {user!r}")
        await session.quiet(QUIET_WINDOW)
except (AuthenticationFailed, HandshakeRejected) as exc:
    print(f"refused: {type(exc).__name__}: {exc}")

# %%
no_token = read_trace(OUT / "no-token.jsonl")
readable(
    pd.DataFrame(no_token.records).reindex(
        columns=["kind", "seq", "dir", "event", "error_code", "http_status", "code", "reason"]
    )
)

# %% [markdown]
# ## The same matrix in demo mode: how #937 got in
#
# With `DEMO_MODE` (on by default outside production) the backend accepts every connection
# and makes it `demo-user-001`, whatever the token says — valid, expired, forged or absent.
# The matrix now fails: authentication is not enforced, and each row says as whom we were
# accepted. The valid-token rows read **⚠ token ignored (demo user)**: agent events
# flowed, but for the demo user, whatever token we sent — nothing was learnt about the
# token. (Embedded server only: a real server's mode is whatever it is.)

# %%
demo = None
if TARGET_URL is None:
    demo = await probe_auth(None, dialect=DIALECT, server_auth="demo", out=OUT / "demo-mode")
demo

# %% [markdown]
# ## The guess, tested: the #937 backend with a valid token
#
# Was authentication the cause? The embedded `staging-937` dialect reproduces what the
# backend's own code of the #937 commit did when it was run and driven frame by frame
# (PROTOCOL.md §8). Here it enforces authentication (`strict`, the production setting), and
# the probes bring a valid token. If the missing token were the cause, agent events would
# now arrive. They do not: the server accepts the connection **as the token's own user**
# and swallows every `user_message` — a server-side defect, not authentication. On the way,
# the bad credentials show a second defect: instead of refusing them (`AUTH_FAILED`, 1008)
# the route crashes (`CONNECTION_ERROR`, close 1011). The diagnosis names the cause and the
# frames it rests on. (Embedded server only.)

# %%
from netra_ws.probes import run_probes

as_it_was = None
if TARGET_URL is None:
    # the workflow's collections wait TIMEOUT each for events that never come
    with show_waits():
        as_it_was = await run_probes(
            None,
            dialect="staging-937",
            server_auth="strict",
            probes=("connection", "workflow", "auth"),
            timeout=TIMEOUT,
            out=OUT / "staging-937-strict",
        )
    print(as_it_was.diagnosis)
as_it_was

# %% [markdown]
# The same probes and the same kind of token against the backend as intended (`bridge`,
# strict): the full run arrives. The token was never the difference.

# %%
as_intended = None
if TARGET_URL is None:
    as_intended = await run_probes(
        None,
        dialect="bridge",
        server_auth="strict",
        probes=("connection", "workflow"),
        timeout=TIMEOUT,
        out=OUT / "bridge-strict",
    )
    print(as_intended.diagnosis)
as_intended

# %% [markdown]
# **What we learnt.** With strict authentication a valid JWT — by header or by
# `jwt.<base64url>` subprotocol — is required. A demo-mode server accepts everything as the
# demo user, which is how #937 got in without a token. But the token was not why the events
# did not arrive: the backend of the #937 commit, authenticated as the token's own user,
# still answers no input at all (a routing defect in the server), and it crashes (1011)
# where it should refuse a bad credential. So #937 was a test flaw (output events sent as
# input, the queued `connection_established` read as a reply) **and** a server defect.
# Next (`04_timing_analysis`): how fast the events come when they do.

# %%
target.stop()
