"""The report's Markdown: rendering only, from verdicts, findings and timing. Pure.

Every value here was decided by an earlier stage (:mod:`netra_ws.verdicts`,
:mod:`~netra_ws.report.findings`, :mod:`~netra_ws.report.timing`); this module lays them out
as a GitHub issue comment.
"""

from __future__ import annotations

import os
import platform
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from ..events import RUN_TRIGGER_TYPES
from ..expect import FAILED, INCONCLUSIVE, PASSED
from ..redact import redact_url
from ..verdicts import PROBES, ContractResult, ProbeReport, ProbeResult, of_kind, trace_target
from .sources import INVESTIGATION_NOTEBOOKS, Source
from .timing import STALL_THRESHOLD_S, Representative, Timing
from .words import duration, first_sentence, form_of

__all__ = ["CHARTS", "environment", "render", "reproduce_commands"]


_ICONS = {
    PASSED: "✅ passed",
    FAILED: "❌ failed",
    INCONCLUSIVE: "⚠️ inconclusive",
    "skipped": "⏭️ skipped",
    "not run": "➖ not run",
}


CHARTS = "<!-- charts -->"  # where the images go in the rendered body


_SEQUENCE_ROWS = 20  # longer runs are cut, with a line saying how many frames were left out


def _cell(value: Any) -> str:
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return "–"
    return " ".join(str(value).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _short(result: ProbeResult) -> str:
    """What the probe saw, in one short line for the verdict table."""
    facts = result.facts
    if result.probe == "connection":
        if result.status != PASSED:
            return first_sentence(result.explanation)
        first = facts.get("first_frame") or "nothing"
        user = f"; user_id {facts['user_id']!r}" if facts.get("user_id") else ""
        return f"first frame {first}{user}"
    if result.probe == "negative":
        sent = facts.get("sent") or []
        if result.status == INCONCLUSIVE:
            return _kept_out(result)
        quiet = facts.get("quiet_s")
        window = f" within {quiet:g} s each" if isinstance(quiet, (int, float)) else ""
        replied = len(result.checks.failures)
        return (
            f"{len(sent)} output names sent as input, no reply{window}"
            if replied == 0
            else f"{replied} of {len(sent)} output names sent as input got a reply"
        )
    if result.probe == "workflow":
        if result.status == INCONCLUSIVE:
            return _kept_out(result)
        checks = result.checks
        events = facts.get("agent_events")
        if (
            "agent events" in checks.names
            and checks["agent events"].status == FAILED
            and not events
        ):
            return "no agent events after user_message"
        passed = sum(1 for c in checks if c.status == PASSED)
        return f"{events} agent events; {passed} of {len(checks)} checks passed"
    if result.rows:
        ok = sum(1 for row in result.rows if row["status"] == PASSED)
        return f"{ok} of {len(result.rows)} credentials behaved as expected"
    return first_sentence(result.explanation)


def _kept_out(result: ProbeResult) -> str:
    """The short line of a probe that could not judge because the connection never started."""
    ended = result.facts.get("ended")
    if ended in ("refused", "failed"):
        return f"the connection was {ended} at connect: nothing could be judged"
    return first_sentence(result.explanation)


def _verdict_line(probes: ProbeReport, contract: list[ContractResult]) -> str:
    if not len(probes):
        return "**Verdict: ⚠️ inconclusive** — no probe traces were found."
    tally = Counter(c.status for c in contract)
    contract_text = ", ".join(f"{n} {status}" for status, n in tally.items())
    parts = ", ".join(f"{r.probe} {r.status}" for r in probes)
    diagnosis = probes.diagnosis
    return (
        f"**Verdict: {_ICONS[probes.status]}** — {parts}. Contract tests: {contract_text}."
        f"\n\n**Diagnosis ({diagnosis.cause}).** {diagnosis}"
    )


def render(
    *,
    title: str,
    probes: ProbeReport,
    contract: list[ContractResult],
    findings: list[str],
    notes: list[str],
    representative: Representative | None,
    timing: Timing | None,
    has_charts: bool,
    environment: list[tuple[str, str]],
    commands: list[str],
) -> str:
    out = [f"## {title}", "", _verdict_line(probes, contract), ""]

    out += ["### Verdicts", ""]
    rows = []
    for name in PROBES:
        result = probes.get(name)
        if result is None:
            rows.append((name, _ICONS["not run"], "no trace of this probe"))
        else:
            rows.append((name, _ICONS[result.status], _short(result)))
    out += [_table(("probe", "verdict", "what we saw"), rows), ""]
    auth = probes.get("auth")
    if auth is not None and auth.rows:
        out += [
            _table(
                ("credential", "expected", "HTTP", "first frame", "user_id", "close", "verdict"),
                (
                    (
                        r["credential"],
                        r["expected"],
                        r["http_status"],
                        r["first_frame"],
                        r["user_id"],
                        r["close_code"],
                        _ICONS[r["status"]],
                    )
                    for r in auth.rows
                ),
            ),
            "",
        ]
    reasons = [first_sentence(c.message) for c in contract]
    # The five structure tests often fail for one reason: say it once.
    reasons = [
        "same as above" if i and reason == reasons[i - 1] and c.status == FAILED else reason
        for i, (c, reason) in enumerate(zip(contract, reasons, strict=True))
    ]
    out += [
        _table(
            ("contract test", "verdict", "reason"),
            (
                (c.test, _ICONS[c.status], reason)
                for c, reason in zip(contract, reasons, strict=True)
            ),
        ),
        "",
    ]

    out += ["### Key findings", ""]
    out += [f"{i}. {text}" for i, text in enumerate(findings, 1)] or ["No probe traces."]
    for note in notes:  # one quote each: consecutive "> " lines would merge
        out += ["", f"> {note}"]
    out.append("")

    out += ["### Event sequence of a representative run", ""]
    out += _sequence(representative)

    out += ["### Timing", ""]
    out += _timing(timing)
    if has_charts:
        out += [CHARTS, ""]

    out += ["### Environment", "", _table(("setting", "value"), environment), ""]
    out += ["### Reproduce", "", "```sh", *commands, "```", ""]
    return "\n".join(out)


def _sequence(rep: Representative | None) -> list[str]:
    if rep is None:
        return ["No trace holds a run or a connection.", ""]
    frame = rep.frame
    origin = None
    if rep.run is not None:
        trigger = frame[frame["seq"] == rep.run["trigger_seq"]]
        origin = trigger["t_s"].iloc[0] if not trigger.empty else None
    origin = frame["t_s"].min() if origin is None and len(frame) else origin
    rows = []
    for _, f in frame.head(_SEQUENCE_ROWS).iterrows():
        rows.append(
            (
                f["seq"],
                _ms(f["t_s"] - origin) if pd.notna(f["t_s"]) else None,
                "→ sent" if f["dir"] == "send" else "← received",
                f["event"],
                _details(f),
            )
        )
    what = "its trigger" if rep.run is not None else "the first frame"
    lines = [
        f"From {rep.note}; times in ms from {what}:",
        "",
        _table(("#", "t (ms)", "dir", "event", "details"), rows),
    ]
    if len(frame) > _SEQUENCE_ROWS:
        lines.append(f"\n… and {len(frame) - _SEQUENCE_ROWS} more frames in the trace.")
    if rep.run is not None and rep.run["n_events"] == 0:
        lines.append(
            f"\nNothing came back after {rep.run['trigger']} #{rep.run['trigger_seq']}: "
            "the run got no reply."
        )
    return [*lines, ""]


def _ms(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms:+d}" if ms else "0"


def _details(frame: pd.Series) -> str | None:
    for key in ("tool_name", "error_code"):
        if pd.notna(frame.get(key)):
            return f"{key} {frame[key]}"
    if frame.get("event") == "connection_established" and pd.notna(frame.get("user_id")):
        return f"user_id {frame['user_id']}"
    if frame.get("event") in RUN_TRIGGER_TYPES:
        return form_of({"data": frame.get("data")})
    if frame.get("event") == "agent_started" and pd.notna(frame.get("run_id")):
        return f"run_id {frame['run_id']}"
    return None


def _timing(timing: Timing | None) -> list[str]:
    if timing is None:
        return ["No user_message (or other run trigger) was sent: there is nothing to time.", ""]
    rows = []
    for group in timing.groups:
        runs = group.runs
        ttfe, done = runs["time_to_first_event_s"].dropna(), runs["duration_s"].dropna()
        worst = group.worst
        rows.append(
            (
                group.name,
                group.traces,
                len(runs),
                _tally(runs),
                f"{duration(ttfe.median())} / {duration(ttfe.max())}" if len(ttfe) else None,
                f"{duration(done.median())} / {duration(done.max())}" if len(done) else None,
                f"{duration(worst['gap_s'])} before {worst['event']}"
                if worst is not None
                else None,
                len(group.stalls),
            )
        )
    header = (
        "runs of",
        "traces",
        "runs",
        "outcomes",
        "first event p50 / max",
        "duration p50 / max",
        "largest gap",
        f"gaps > {STALL_THRESHOLD_S:g} s",
    )
    lines = [_table(header, rows), ""]
    main = timing.main
    summary = main.summary[main.summary["count"] > 0]
    if len(summary):
        lines += [f"Percentiles for {main.name} ({len(main.runs)} runs):", ""]
        lines.append(
            _table(
                ("metric", "event / phase", "n", "p50", "p90", "max"),
                (
                    (
                        s["metric"].replace("_", " "),
                        s["name"],
                        s["count"],
                        duration(s["p50"]),
                        duration(s["p90"]),
                        duration(s["max"]),
                    )
                    for _, s in summary.iterrows()
                ),
            )
        )
        lines.append("")
    return lines


def _tally(runs: pd.DataFrame) -> str:
    counts = Counter(runs["outcome"])
    return ", ".join(f"{n} {outcome.replace('_', ' ')}" for outcome, n in counts.items())


def environment(
    sources: Sequence[Source], server: tuple[str, str] | None
) -> list[tuple[str, str]]:
    """The environment table: target, dialect, auth, when, which versions."""
    traces = [s.trace for s in sources]
    targets = sorted({redact_url(str(t.meta.get("target") or "")) for t in traces} - {""})
    kind = "embedded reference server" if server else "server"
    if len(targets) > 3:
        hosts = sorted({re.sub(r":\d+(?=/|$)", ":<port>", t) for t in targets})
        shown = ", ".join(hosts) + f" ({len(targets)} {kind}s, one per notebook or capture)"
    else:
        shown = ", ".join(targets) or "–"
        shown += f" ({kind})" if server and targets else ""
    opens = [r for s in sources if s.probe != "auth" for r in of_kind(s.records, "open")]
    forms = sorted({str(r.get("auth")) for r in opens if r.get("auth")})
    started = sorted(str(t.meta.get("started_at")) for t in traces if t.meta.get("started_at"))
    writers = sorted({str(t.meta.get("writer")) for t in traces if t.meta.get("writer")})
    captured = f"{_utc(started[0])} – {_utc(started[-1])}" if started else "–"
    return [
        ("target", shown),
        ("dialect", server[0] if server else "– (a URL target: not recorded)"),
        ("server auth mode", server[1] if server else "–"),
        ("client auth form", ", ".join(forms) or "–"),
        ("captured (UTC)", captured),
        ("traces", f"{len(traces)} file(s), written by {', '.join(writers) or 'unknown'}"),
        ("report built", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("netra_ws", _version("netra-ws")),
        ("python", f"{platform.python_version()} ({platform.system()})"),
        ("websockets", _version("websockets")),
    ]


def _utc(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def reproduce_commands(
    sources: Sequence[Source], server: tuple[str, str] | None, given: Any
) -> list[str]:
    """The commands that reproduce the investigation: the demo when the traces came from the
    notebooks, the probes and the contract suite against the same target, and this report
    (of ``given``, what build_report was given)."""
    traces = [s.trace for s in sources]
    data_dirs = sorted(
        {
            _shown(t.path.parent.parent.parent)
            for t in traces
            if t.path is not None and t.path.parent.parent.name in INVESTIGATION_NOTEBOOKS
        }
    )
    # The target the probes met (a notebook's capture may add an embedded reference server).
    url = trace_target([s.trace for s in sources if s.probe is not None] or traces) or "<url>"
    lines = []
    if data_dirs:
        out = "" if data_dirs[0] == "data" else f" --out {data_dirs[0]}"
        if server:
            lines += [
                "# notebooks 01–05, headless, against the embedded server; then this report",
                f"python -m netra_ws demo{out}",
            ]
        else:
            lines += [
                "# notebooks 01–05, headless, against the same target; then this report",
                f"NETRA_WS_TOKEN=<your token> python -m netra_ws demo --url {url}{out}",
            ]
    if server:
        dialect, auth = server
        lines += [
            "# the probes, with verdicts (traces go to data/probes-<time>/)",
            f"python -m netra_ws probe --dialect {dialect} --server-auth {auth}",
            "# the seven contract tests",
            f"NETRA_WS_DIALECT={dialect} NETRA_WS_AUTH={auth} "
            "python -m pytest --pyargs netra_ws.contract",
        ]
    else:
        lines += [
            "# the probes, with verdicts (the token comes from the environment, never the line)",
            f"NETRA_WS_TOKEN=<your token> python -m netra_ws probe {url}",
            "# the seven contract tests",
            f"NETRA_WS_URL={url} NETRA_WS_TOKEN=<your token> "
            "python -m pytest --pyargs netra_ws.contract",
        ]
    if isinstance(given, (str, os.PathLike)):
        where = _shown(Path(given))
    elif data_dirs:
        where = data_dirs[0]
    else:
        folders = sorted({_shown(t.path.parent) for t in traces if t.path is not None})
        where = " ".join(folders[:4]) or "<traces>"
    return [*lines, "# this report, from the traces", f"python -m netra_ws report {where}"]


def _shown(path: Path) -> str:
    """A path as a reader can use it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
