"""The report's Markdown: rendering only, from verdicts, findings and timing. Pure.

Every value here was decided by an earlier stage (:mod:`netra_ws.verdicts`,
:mod:`~netra_ws.report.findings`, :mod:`~netra_ws.report.timing`); this module lays them out
as a GitHub issue comment.
"""

from __future__ import annotations

import os
import platform
import re
import shlex
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
from ..untrusted import escape_pipes, for_markdown, for_prose, plain_words, strip_controls
from ..verdicts import PROBES, ContractResult, ProbeReport, ProbeResult, of_kind, trace_target
from .sources import INVESTIGATION_NOTEBOOKS, Source
from .timing import STALL_THRESHOLD_S, Representative, Timing
from .words import duration, first_sentence, form_of, shown_path

__all__ = ["CHARTS", "GITHUB_LIMIT", "STEM", "environment", "fit", "render", "reproduce_commands"]


_ICONS = {
    PASSED: "✅ passed",
    FAILED: "❌ failed",
    INCONCLUSIVE: "⚠️ inconclusive",
    "skipped": "⏭️ skipped",
    "not run": "➖ not run",
}


CHARTS = "<!-- charts -->"  # where the images go in the rendered body
STEM = "<!-- stem -->"  # the report file's stem, in the chart file names it mentions

# GitHub refuses a comment body longer than this many characters.
GITHUB_LIMIT = 65_536

_SEQUENCE_ROWS = 20  # longer runs are cut, with a line saying how many frames were left out
_DIAGRAM_FRAMES = 40  # the same for the Mermaid diagram
_TABLE_ROWS = 30  # any other table: the rest is in the traces


def _cell(value: Any) -> str:
    """A table cell from Markdown the report made (values already neutralised) or a number."""
    if value is None or (not isinstance(value, (list, tuple)) and pd.isna(value)):
        return "–"
    return escape_pipes(" ".join(str(value).split()))


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    limit: int = _TABLE_ROWS,
    where: str = "the traces",
) -> str:
    """A GFM table of at most ``limit`` rows; a line after it says how many were left out
    and where they are."""
    rows = list(rows)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows[:limit]]
    if len(rows) > limit:
        lines += ["", f"… {len(rows) - limit} more rows left out here; they are in {where}."]
    return "\n".join(lines)


def _details(summary: str, body: Sequence[str]) -> list[str]:
    """A collapsed section: ``summary`` is the kit's words, ``body`` Markdown lines. The
    blank lines let GitHub read the Markdown inside the HTML block."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _short(result: ProbeResult) -> str:
    """What the probe saw, in one short line for the verdict table."""
    facts = result.facts
    if result.probe == "connection":
        if result.status != PASSED:
            return for_prose(first_sentence(result.explanation))
        first = for_markdown(facts.get("first_frame") or "nothing", 80)
        user = f"; user_id {for_markdown(facts['user_id'], 80)}" if facts.get("user_id") else ""
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
    return for_prose(first_sentence(result.explanation))


def _kept_out(result: ProbeResult) -> str:
    """The short line of a probe that could not judge because the connection never started."""
    ended = result.facts.get("ended")
    if ended in ("refused", "failed"):
        return f"the connection was {ended} at connect: nothing could be judged"
    return for_prose(first_sentence(result.explanation))


def _verdict_line(probes: ProbeReport, contract: list[ContractResult]) -> str:
    if not len(probes):
        return "**Verdict: ⚠️ inconclusive** — no probe traces were found."
    tally = Counter(c.status for c in contract)
    contract_text = ", ".join(f"{n} {status}" for status, n in tally.items())
    parts = ", ".join(f"{r.probe} {r.status}" for r in probes)
    diagnosis = probes.diagnosis
    return (
        f"**Verdict: {_ICONS[probes.status]}** — {parts}. Contract tests: {contract_text}."
        f"\n\n**Diagnosis ({for_prose(diagnosis.cause)}).** {for_prose(diagnosis)}"
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
    charts: Sequence[str],
    references: Sequence[tuple[str, str]],
    environment: list[tuple[str, str]],
    commands: list[str],
) -> str:
    """The report's Markdown, laid out for an issue comment: the verdict and key findings
    first, the diagram of a representative run, then the secondary tables collapsed.
    ``findings``, ``notes`` and ``references`` are Markdown already made safe; ``charts``
    are the charts' names (the images go at :data:`CHARTS`, their files are
    ``<STEM>-<name>.png``)."""
    # The title is the caller's (not a server's): kept as written, one line.
    out = [f"## {strip_controls(title)}", "", _verdict_line(probes, contract), ""]

    rows = []
    for name in PROBES:
        result = probes.get(name)
        if result is None:
            rows.append((name, _ICONS["not run"], "no trace of this probe"))
        else:
            rows.append((name, _ICONS[result.status], _short(result)))
    out += [_table(("probe", "verdict", "what we saw"), rows), ""]

    out += ["### Key findings", ""]
    out += [f"{i}. {text}" for i, text in enumerate(findings, 1)] or ["No probe traces."]
    for note in notes:  # one quote each: consecutive "> " lines would merge
        out += ["", f"> {note}"]
    out.append("")

    out += ["### A representative run", ""]
    out += _sequence(representative)

    out += ["### Timing", ""]
    out += _timing(timing)
    if charts:
        names = ", ".join(f"`{STEM}-{name}.png`" for name in charts)
        out += [
            f"The charts are PNG files beside this report ({names}): attach them to the comment "
            "(drag them in) for the images below to show; their alt text says what each one "
            "shows. `python -m netra_ws report … --bundle` puts them, the report and its "
            "traces in one zip to attach.",
            "",
            CHARTS,
            "",
        ]

    auth = probes.get("auth")
    if auth is not None and auth.rows:
        out += _details(
            f"Authentication matrix ({len(auth.rows)} credentials)",
            [_auth_table(auth.rows)],
        )
    out += _details("Contract tests (the seven #937 tests)", [_contract_table(contract)])
    if references:
        body = []
        for _, text in references:
            body += [text, ""]
        out += _details(
            f"Reference runs ({len(references)}): other embedded servers, for comparison",
            body,
        )
    out += _details(
        "Environment", [_table(("setting", "value"), ((k, for_prose(v)) for k, v in environment))]
    )
    fence = _fence(commands)
    out += ["### Reproduce", "", f"{fence}sh", *commands, fence, ""]
    return "\n".join(out)


def _auth_table(rows: Sequence[Any]) -> str:
    return _table(
        ("credential", "expected", "HTTP", "first frame", "user_id", "close", "verdict"),
        (
            (
                for_markdown(r["credential"], 60),
                r["expected"],
                _number(r["http_status"]),
                for_markdown(r["first_frame"], 80),
                for_markdown(r["user_id"], 60),
                _number(r["close_code"]),
                _ICONS[r["status"]],
            )
            for r in rows
        ),
        where="the auth-*.jsonl traces",
    )


def _number(value: Any) -> str | None:
    """A number from a trace as it is; anything else neutralised."""
    if value is None or isinstance(value, (int, float)):
        return None if value is None else str(value)
    return for_markdown(value, 40)


def _contract_table(contract: list[ContractResult]) -> str:
    reasons = [for_prose(first_sentence(c.message), 600) for c in contract]
    # The five structure tests often fail for one reason: say it once.
    reasons = [
        "same as above" if i and reason == reasons[i - 1] and c.status == FAILED else reason
        for i, (c, reason) in enumerate(zip(contract, reasons, strict=True))
    ]
    return _table(
        ("contract test", "verdict", "reason"),
        ((c.test, _ICONS[c.status], reason) for c, reason in zip(contract, reasons, strict=True)),
    )


def _fence(lines: Sequence[str]) -> str:
    """A code fence longer than any backtick run in ``lines`` (at least three)."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _origin(rep: Representative) -> Any:
    """Time zero of the shown run: its trigger, else its first frame."""
    frame = rep.frame
    if rep.run is not None:
        trigger = frame[frame["seq"] == rep.run["trigger_seq"]]
        if not trigger.empty:
            return trigger["t_s"].iloc[0]
    return frame["t_s"].min() if len(frame) else None


def _sequence(rep: Representative | None) -> list[str]:
    if rep is None:
        return ["No trace holds a run or a connection.", ""]
    frame = rep.frame
    origin = _origin(rep)
    what = "its trigger" if rep.run is not None else "the first frame"
    lines = [
        f"From {rep.note}; times in ms from {what} (negative: before it).",
        "",
        *_mermaid(rep, origin),
    ]
    rows = []
    for _, f in frame.head(_SEQUENCE_ROWS).iterrows():
        rows.append(
            (
                _number(f["seq"]),
                _ms(f["t_s"] - origin) if pd.notna(f["t_s"]) and origin is not None else None,
                "→ sent" if f["dir"] == "send" else "← received",
                for_markdown(f["event"], 60) if pd.notna(f["event"]) else None,
                _frame_details(f),
            )
        )
    table = [_table(("#", "t (ms)", "dir", "event", "details"), rows, limit=_SEQUENCE_ROWS)]
    if len(frame) > _SEQUENCE_ROWS:
        table.append(f"\n… and {len(frame) - _SEQUENCE_ROWS} more frames in the trace.")
    lines += _details(f"The {min(len(frame), _SEQUENCE_ROWS)} frames as a table", table)
    if rep.run is not None and rep.run["n_events"] == 0:
        lines.append(
            f"Nothing came back after {for_markdown(rep.run['trigger'], 60)} "
            f"#{_number(rep.run['trigger_seq'])}: the run got no reply."
        )
        lines.append("")
    return lines


def _mermaid(rep: Representative, origin: Any) -> list[str]:
    """The run as a Mermaid sequence diagram, which GitHub draws in a comment with no
    attachment: client and server lanes, each frame with its offset, the trigger, and a
    note on every gap above the stall threshold. Labels are plain words (Mermaid reads
    ``;``, ``#`` and HTML in them)."""
    frame = rep.frame
    lines = ["```mermaid", "sequenceDiagram"]
    lines += ["    participant C as client", "    participant S as server"]
    trigger_seq = rep.run["trigger_seq"] if rep.run is not None else pd.NA
    previous = None
    for _, f in frame.head(_DIAGRAM_FRAMES).iterrows():
        t = f["t_s"]
        at = f" at {_ms(t - origin)} ms" if pd.notna(t) and origin is not None else ""
        if previous is not None and pd.notna(t) and f["dir"] == "receive":
            gap = float(t - previous)
            if gap > STALL_THRESHOLD_S:
                lines.append(
                    f"    Note over C,S: gap of {duration(gap)}, above the "
                    f"{STALL_THRESHOLD_S:g} s stall threshold"
                )
        name = plain_words(f["event"] if pd.notna(f["event"]) else "frame", 60) or "frame"
        arrow = "C->>S" if f["dir"] == "send" else "S->>C"
        is_trigger = pd.notna(trigger_seq) and bool(f["seq"] == trigger_seq)
        mark = " (trigger)" if is_trigger else ""
        lines.append(f"    {arrow}: {name}{at}{mark}")
        if (pd.notna(t) and f["dir"] == "receive") or (pd.notna(t) and mark):
            previous = t
    if len(frame) > _DIAGRAM_FRAMES:
        lines.append(f"    Note over C,S: {len(frame) - _DIAGRAM_FRAMES} more frames in the trace")
    return [*lines, "```", ""]


def _ms(seconds: float) -> str:
    """An offset in ms: signed, one decimal below 10 ms so an early frame is not shown as 0."""
    ms = seconds * 1000
    if ms == 0:
        return "0"
    return f"{ms:+.1f}" if abs(ms) < 10 else f"{ms:+.0f}"


def _frame_details(frame: pd.Series) -> str | None:
    for key in ("tool_name", "error_code"):
        if pd.notna(frame.get(key)):
            return f"{key} {for_markdown(frame[key], 60)}"
    if frame.get("event") == "connection_established" and pd.notna(frame.get("user_id")):
        return f"user_id {for_markdown(frame['user_id'], 60)}"
    if frame.get("event") in RUN_TRIGGER_TYPES:
        return form_of({"data": frame.get("data")})
    if frame.get("event") == "agent_started" and pd.notna(frame.get("run_id")):
        return f"run_id {for_markdown(frame['run_id'], 60)}"
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
                for_prose(group.name, 100),
                group.traces,
                len(runs),
                for_prose(_tally(runs)),
                f"{duration(ttfe.median())} / {duration(ttfe.max())}" if len(ttfe) else None,
                f"{duration(done.median())} / {duration(done.max())}" if len(done) else None,
                f"{duration(worst['gap_s'])} before {for_markdown(worst['event'], 60)}"
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
        lines += _details(
            # Inside <summary> GitHub reads no Markdown: plain words only.
            f"Percentiles for {plain_words(main.name, 100)} ({len(main.runs)} runs)",
            [
                _table(
                    ("metric", "event / phase", "n", "p50", "p90", "max"),
                    (
                        (
                            s["metric"].replace("_", " "),
                            for_markdown(s["name"], 60),
                            s["count"],
                            duration(s["p50"]),
                            duration(s["p90"]),
                            duration(s["max"]),
                        )
                        for _, s in summary.iterrows()
                    ),
                )
            ],
        )
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
            shown_path(t.path.parent.parent.parent)
            for t in traces
            if t.path is not None and t.path.parent.parent.name in INVESTIGATION_NOTEBOOKS
        }
    )
    # The target the probes met (a notebook's capture may add an embedded reference server).
    url = trace_target([s.trace for s in sources if s.probe is not None] or traces) or "<url>"
    # One word, no controls: it came from a trace, and goes on a shell line.
    url = strip_controls(url).replace(" ", "%20").replace("`", "%60")
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
        places = [shown_path(Path(given))]
    elif data_dirs:
        places = data_dirs[:1]
    else:
        places = sorted({shown_path(t.path.parent) for t in traces if t.path is not None})[:4]
    # Quoted for the shell: a folder's name came from a file system, not from the kit.
    where = " ".join(shlex.quote(strip_controls(p)) for p in places) or "<traces>"
    return [*lines, "# this report, from the traces", f"python -m netra_ws report {where}"]


def fit(markdown: str, limit: int = GITHUB_LIMIT) -> str:
    """``markdown`` within ``limit`` characters (GitHub's comment limit): when longer, cut at
    a line, with every open code fence and ``<details>`` closed and a line saying so."""
    if len(markdown) <= limit:
        return markdown
    note = (
        "\n\n> This report was cut to fit a GitHub comment ({:,} of {:,} characters); "
        "the full report is the Markdown file it was written to."
    )
    lines = markdown.split("\n")
    kept: list[str] = []
    size = 0
    budget = limit - len(note) - 200  # room for the closing lines
    for line in lines:
        if size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    fence = None
    depth = 0
    for line in kept:
        if fence is None and (m := re.match(r"^(`{3,})", line)):
            fence = m[1]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None:
            depth += line.count("<details>") - line.count("</details>")
    closing = ([fence] if fence else []) + ["", "</details>"] * max(depth, 0)
    text = "\n".join([*kept, *closing])
    return text + note.format(len(text), len(markdown))
