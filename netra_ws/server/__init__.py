"""The embedded Netra reference server (PROTOCOL.md), so every check runs offline.

In a notebook or script: ``with EmbeddedServer() as server: …server.url…``.
From the shell: ``python -m netra_ws serve --auth strict``.
"""

from .app import DEFAULT_PATHS, ReferenceServer, ServerConfig
from .auth import AUTH_MODES, DEMO_USER
from .dialects import DIALECTS, Dialect
from .embedded import EmbeddedServer
from .scenario import Scenario, ToolCall

__all__ = [
    "AUTH_MODES",
    "DEFAULT_PATHS",
    "DEMO_USER",
    "DIALECTS",
    "Dialect",
    "EmbeddedServer",
    "ReferenceServer",
    "Scenario",
    "ServerConfig",
    "ToolCall",
]
