"""The embedded Netra reference server (PROTOCOL.md), so every check runs offline.

In a notebook or script: ``with EmbeddedServer() as server: …server.url…``, shaped by a
:class:`Scenario` (what runs do), fault SPECs (what goes wrong, see :mod:`.faults`) or a
recorded trace to replay (:mod:`.replay`). From the shell:
``python -m netra_ws serve --scenario runs.json --fault drop:tool_completed --seed 7``.

Two kinds of server, one switch (``dialect``): ``bridge``, ``manager``, ``wrapped`` and
``suite-contract`` are the backend *as intended* (a ``user_message`` starts an agent run; a
strict refusal is AUTH_FAILED + close 1008); ``staging-937`` is the backend *as it ran* at
the Issue #937 commit, reproducing PROTOCOL.md §8 row by row (every input swallowed, a
strict refusal is CONNECTION_ERROR + close 1011, /ws/factory HTTP 500, /ws/isolated
crashing). Both combine with every auth mode (``demo``, ``relaxed``, ``strict``, ``reject``)
and either refusal style (``auth_failure``). Every dialect refuses an unknown path with
HTTP 403 and an empty body, as the real backend did, so a client with a wrong path fails
offline too. Tokens are the auth service's (:mod:`netra_ws.tokens`).
"""

from .app import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PATHS,
    HEARTBEAT_INTERVALS,
    LEGACY_PATHS,
    ReferenceServer,
    ServerConfig,
)
from .auth import AUTH_FAILURES, AUTH_MODES, DEMO_USER
from .dialects import DIALECTS, Dialect
from .embedded import EmbeddedServer
from .faults import FAULT_KINDS, Fault, parse_fault
from .replay import Replay, load_replay
from .scenario import Scenario, Thought, ToolCall, load_scenario

__all__ = [
    "AUTH_FAILURES",
    "AUTH_MODES",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_PATHS",
    "DEMO_USER",
    "DIALECTS",
    "FAULT_KINDS",
    "HEARTBEAT_INTERVALS",
    "LEGACY_PATHS",
    "Dialect",
    "EmbeddedServer",
    "Fault",
    "ReferenceServer",
    "Replay",
    "Scenario",
    "ServerConfig",
    "Thought",
    "ToolCall",
    "load_replay",
    "load_scenario",
    "parse_fault",
]
