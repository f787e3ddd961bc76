"""The embedded Netra reference server (PROTOCOL.md), so every check runs offline.

In a notebook or script: ``with EmbeddedServer() as server: …server.url…``, shaped by a
:class:`Scenario` (what runs do), fault SPECs (what goes wrong, see :mod:`.faults`) or a
recorded trace to replay (:mod:`.replay`). From the shell:
``python -m netra_ws serve --scenario runs.json --fault drop:tool_completed --seed 7``.
"""

from .app import (
    DEFAULT_HEARTBEAT_INTERVAL,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PATHS,
    ReferenceServer,
    ServerConfig,
)
from .auth import AUTH_MODES, DEMO_USER
from .dialects import DIALECTS, Dialect
from .embedded import EmbeddedServer
from .faults import FAULT_KINDS, Fault, parse_fault
from .replay import Replay, load_replay
from .scenario import Scenario, Thought, ToolCall, load_scenario

__all__ = [
    "AUTH_MODES",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_PATHS",
    "DEMO_USER",
    "DIALECTS",
    "FAULT_KINDS",
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
