"""netra_ws: find out, fast and reproducibly, why "the agent events don't arrive".

Connect with :func:`connect` (async; ``netra_ws.sync.connect`` blocks), record every frame
to a trace (:mod:`netra_ws.trace`), check what arrived, and load traces into pandas.
:class:`EmbeddedServer` is a reference Netra server so all of it runs offline.

Each name below is imported from its module the first time it is used, so that
``python -m netra_ws serve`` starts in 0.4 s instead of 2.5 s (pandas and matplotlib are
loaded only by what needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Where each public name lives: module -> names.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "analysis": (
        "assign_runs",
        "compare_runs",
        "event_gaps",
        "find_stalls",
        "phase_durations",
        "run_stats",
        "summarize_runs",
    ),
    "capture": ("capture_runs",),
    "client": ("Collected", "Handshake", "Received", "Session", "connect"),
    "diff": ("TraceDiff", "diff_traces"),
    "errors": (
        "AuthenticationFailed",
        "ConnectFailed",
        "ConnectRefused",
        "FrameParseError",
        "HandshakeRejected",
        "HarFormatError",
        "InvalidToken",
        "NetraWsError",
        "RedactionError",
        "SessionClosed",
        "TraceBudgetReached",
        "TraceFormatError",
        "WaitTimeout",
    ),
    "events": ("AGENT_EVENTS", "CRITICAL_EVENTS", "TERMINAL_EVENTS", "Event", "normalize"),
    "expect": ("CheckResult", "Checks", "Profile", "check_run", "load_profile"),
    "har": ("export_har", "import_har"),
    "probes": (
        "probe_auth",
        "probe_connection",
        "probe_negative",
        "probe_workflow",
        "run_probes",
    ),
    "redact": ("Redactor", "register_secret"),
    "report": ("Report", "build_report"),
    "server": ("EmbeddedServer", "ReferenceServer", "Scenario", "ServerConfig", "ToolCall"),
    "tokens": ("mint_token",),
    "verdicts": ("ProbeReport", "ProbeResult"),
    "limits": ("Limits",),
    "trace": (
        "Trace",
        "TraceWarning",
        "TraceWriter",
        "iter_trace",
        "load_traces",
        "read_parquet",
        "read_trace",
    ),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'netra_ws' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
