"""netra_ws: find out, fast and reproducibly, why "the agent events don't arrive".

Connect with :func:`connect` (async; ``netra_ws.sync.connect`` blocks), record every frame
to a trace (:mod:`netra_ws.trace`), check what arrived, and load traces into pandas.
:class:`EmbeddedServer` is a reference Netra server so all of it runs offline.
"""

from .analysis import (
    assign_runs,
    compare_runs,
    event_gaps,
    find_stalls,
    phase_durations,
    run_stats,
    summarize_runs,
)
from .capture import capture_runs
from .client import Collected, Handshake, Received, Session, connect
from .errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectRefused,
    FrameParseError,
    HandshakeRejected,
    HarFormatError,
    NetraWsError,
    RedactionError,
    SessionClosed,
    TraceFormatError,
    WaitTimeout,
)
from .events import AGENT_EVENTS, CRITICAL_EVENTS, TERMINAL_EVENTS, Event, normalize
from .expect import CheckResult, Checks, Profile, check_run, load_profile
from .har import export_har, import_har
from .probes import (
    ProbeReport,
    ProbeResult,
    probe_auth,
    probe_connection,
    probe_negative,
    probe_workflow,
    run_probes,
)
from .redact import Redactor, register_secret
from .report import Report, build_report
from .server import EmbeddedServer, ReferenceServer, Scenario, ServerConfig, ToolCall
from .tokens import mint_token
from .trace import Trace, TraceWarning, TraceWriter, load_traces, read_parquet, read_trace

__version__ = "0.1.0"

__all__ = [
    "AGENT_EVENTS",
    "CRITICAL_EVENTS",
    "TERMINAL_EVENTS",
    "AuthenticationFailed",
    "CheckResult",
    "Checks",
    "Collected",
    "ConnectFailed",
    "ConnectRefused",
    "EmbeddedServer",
    "Event",
    "FrameParseError",
    "Handshake",
    "HandshakeRejected",
    "HarFormatError",
    "NetraWsError",
    "ProbeReport",
    "ProbeResult",
    "Profile",
    "Received",
    "RedactionError",
    "Redactor",
    "ReferenceServer",
    "Report",
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
    "assign_runs",
    "build_report",
    "capture_runs",
    "check_run",
    "compare_runs",
    "connect",
    "event_gaps",
    "export_har",
    "find_stalls",
    "import_har",
    "load_profile",
    "load_traces",
    "mint_token",
    "normalize",
    "phase_durations",
    "probe_auth",
    "probe_connection",
    "probe_negative",
    "probe_workflow",
    "read_parquet",
    "read_trace",
    "register_secret",
    "run_probes",
    "run_stats",
    "summarize_runs",
]
