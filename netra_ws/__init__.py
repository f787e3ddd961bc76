"""netra_ws: find out, fast and reproducibly, why "the agent events don't arrive".

Connect with :func:`connect` (async; ``netra_ws.sync.connect`` blocks), record every frame
to a trace (:mod:`netra_ws.trace`), check what arrived, and load traces into pandas.
:class:`EmbeddedServer` is a reference Netra server so all of it runs offline.
"""

from .client import Collected, Handshake, Received, Session, connect
from .errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectRefused,
    FrameParseError,
    HandshakeRejected,
    NetraWsError,
    SessionClosed,
    TraceFormatError,
    WaitTimeout,
)
from .events import AGENT_EVENTS, CRITICAL_EVENTS, TERMINAL_EVENTS, Event, normalize
from .server import EmbeddedServer, ReferenceServer, Scenario, ServerConfig, ToolCall
from .tokens import mint_token
from .trace import Trace, TraceWarning, TraceWriter, load_traces, read_parquet, read_trace

__version__ = "0.1.0"

__all__ = [
    "AGENT_EVENTS",
    "CRITICAL_EVENTS",
    "TERMINAL_EVENTS",
    "AuthenticationFailed",
    "Collected",
    "ConnectFailed",
    "ConnectRefused",
    "EmbeddedServer",
    "Event",
    "FrameParseError",
    "Handshake",
    "HandshakeRejected",
    "NetraWsError",
    "Received",
    "ReferenceServer",
    "Scenario",
    "ServerConfig",
    "Session",
    "SessionClosed",
    "ToolCall",
    "Trace",
    "TraceFormatError",
    "TraceWarning",
    "TraceWriter",
    "WaitTimeout",
    "connect",
    "load_traces",
    "mint_token",
    "normalize",
    "read_parquet",
    "read_trace",
]
