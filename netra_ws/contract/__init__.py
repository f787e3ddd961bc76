"""The WebSocket agent event contract suite, done right: a pytest module users run.

Run it against the embedded reference server (the default) or any target::

    python -m pytest --pyargs netra_ws.contract
    export NETRA_WS_URL=wss://…/api/v1/websocket NETRA_WS_TOKEN=…
    python -m pytest --pyargs netra_ws.contract

Settings, all from the environment (see :data:`SETTINGS`): ``NETRA_WS_URL`` (a real
target; unset starts an embedded server), ``NETRA_WS_TOKEN``, ``NETRA_WS_AUTH_FORM``
(header, subprotocol, both or none), ``NETRA_WS_PROFILE`` (netra-bridge by default, netra-suite,
or a JSON file), ``NETRA_WS_DIALECT`` and ``NETRA_WS_AUTH`` (the embedded server's dialect
and auth mode), ``NETRA_WS_TIMEOUT`` (seconds to collect a run), ``NETRA_WS_QUIET``
(seconds of the negative window) and ``NETRA_WS_OUT`` (a directory for the traces).
The target is resolved as everywhere in the kit (:func:`netra_ws.target.resolve_target`):
the token is registered as a secret, so no output of the suite shows it.

The seven tests mirror the backend suite's: ``connection_established`` on connect; an
output event sent as input gets no reply; and the structures of ``agent_started``,
``agent_thinking``, ``tool_executing``, ``tool_completed`` and ``agent_completed``, each
taken from events the server generated after a ``user_message`` — never from a hand-made
event, so a server that sends nothing fails, with the likely causes in the message.

The verdicts themselves come from :func:`netra_ws.verdicts.evaluate_contract` (probe results
in, one :class:`ContractResult` per test out), which :mod:`netra_ws.report` uses too.
"""

from __future__ import annotations

from ..verdicts import CONTRACT_TESTS, ContractResult, ContractStatus, evaluate_contract

__all__ = ["CONTRACT_TESTS", "SETTINGS", "ContractResult", "ContractStatus", "evaluate_contract"]

# Environment variable -> (default, meaning). The test module reads them at run time.
SETTINGS: dict[str, tuple[str | None, str]] = {
    "NETRA_WS_URL": (None, "target URL; unset starts an embedded reference server"),
    "NETRA_WS_TOKEN": (None, "JWT to send; unset, the embedded server mints one"),
    "NETRA_WS_AUTH_FORM": (None, "header (default), subprotocol, both or none"),
    "NETRA_WS_PROFILE": ("netra-bridge", "expectation profile: a built-in name or a JSON file"),
    "NETRA_WS_DIALECT": ("bridge", "embedded server dialect"),
    "NETRA_WS_AUTH": ("strict", "embedded server auth mode"),
    "NETRA_WS_TIMEOUT": ("30", "seconds to collect one agent run"),
    "NETRA_WS_QUIET": ("2", "seconds to wait for a reply that must not come"),
    "NETRA_WS_OUT": (None, "directory for the traces; unset keeps them in memory"),
}
