"""The key findings of a report, in plain sentences: what was sent, what came back, and
what that means. Pure.

The verdicts themselves are :mod:`netra_ws.verdicts`'; this module tells the story of each
one from its sources (each read once, see :mod:`netra_ws.report.sources`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..events import AGENT_EVENTS, RUN_TRIGGER_TYPES, is_demo_user, squeeze
from ..expect import FAILED, INCONCLUSIVE, PASSED
from ..untrusted import for_markdown, for_prose
from ..verdicts import (
    COLLECTED_MARK,
    QUIET_MARK,
    SENT_MARK,
    ProbeReport,
    ProbeResult,
    connection_end,
    connection_problem,
    frame_ref,
    marks_of,
    of_kind,
    received,
    refusal_words,
    sent,
)
from .sources import Source
from .timing import STALL_THRESHOLD_S, Timing
from .words import capital, duration, form_of, join_and, sentence

__all__ = ["finding", "injected_finding", "reference_section", "timing_finding"]


def _said(title: str, text: str) -> str:
    """A finding as Markdown: the kit's bold title, then its sentences, which quote server
    values, made safe by :func:`netra_ws.untrusted.for_prose` (repeated sentences merged)."""
    return f"**{title}.** {for_prose(_merge_repeats(text))}"


_SENTENCES = re.compile(r"(?<=[.;])\s+")


def _merge_repeats(text: str) -> str:
    """``text`` with each sentence said once (a repeated one is dropped where it recurs)."""
    seen: set[str] = set()
    kept = []
    for part in _SENTENCES.split(text.strip()):
        if part in seen:
            continue
        seen.add(part)
        kept.append(part)
    return " ".join(kept)


_PROBE_TITLES = {
    "connection": "Connecting",
    "negative": "Output events sent as input",
    "workflow": "user_message",
    "auth": "Authentication",
}


_AUTH_FORMS = {
    "header": "with the token in the Authorization header",
    "subprotocol": "with the token as a jwt.<base64url> subprotocol",
    "both": "with the token as a header and as a subprotocol",
    "none": "without a token",
}


def finding(result: ProbeResult, sources: Sequence[Source]) -> str:
    """The key finding of one probe in plain sentences: what was sent, what came back, and
    what that means. ``sources`` are the probe's traces (the latest one tells the story)."""
    title = _PROBE_TITLES.get(result.probe, result.probe)
    source = max(sources, key=lambda s: s.started) if sources else None
    text = None
    if source is not None:
        if result.probe == "connection":
            text = _connection_sentences(result, source.records)
        elif result.probe == "negative":
            text = _negative_sentences(result, source.records)
        elif result.probe == "workflow":
            text = _workflow_sentences(result, source)
    if result.probe == "auth":
        text = _auth_sentences(result)
    return _said(title, text or sentence(result.explanation))


def _auth_words(records: Sequence[Mapping[str, Any]]) -> str:
    opened = next(iter(of_kind(records, "open")), None)
    if opened is not None and opened.get("auth"):
        return _AUTH_FORMS.get(str(opened["auth"]), f"with auth {opened['auth']}")
    error = next(iter(of_kind(records, "error")), None)
    if error is not None:
        header = "Authorization" in (error.get("request_header_names") or [])
        offered = any(
            str(s).startswith(("jwt.", "jwt-auth.", "bearer."))
            for s in error.get("offered_subprotocols") or []
        )
        if header:
            return _AUTH_FORMS["both" if offered else "header"]
        return _AUTH_FORMS["subprotocol" if offered else "none"]
    return "with the auth form the trace does not record"


def _demo_user_note(user_id: Any) -> str:
    if is_demo_user(user_id):
        return (
            " That is the demo user: the server did not use the token (none sent, or its"
            " DEMO_MODE)."
        )
    return ""


def _connection_sentences(result: ProbeResult, records: Sequence[Mapping[str, Any]]) -> str:
    how = _auth_words(records)
    facts = result.facts
    frames = received(records)
    if result.status == PASSED and frames:
        first = frames[0]
        ms = facts.get("established_ms")
        when = f", {ms:.1f} ms after connecting began" if isinstance(ms, (int, float)) else ""
        return (
            f"We connected {how} and, without sending anything, read one frame: "
            f"{frame_ref(first)}{when}. The server queues it at connect time, so it is never the "
            f"reply to anything a client sends. It names user_id {facts.get('user_id')!r}."
            + _demo_user_note(facts.get("user_id"))
        )
    return f"We connected {how}: {result.explanation}"


def _negative_sentences(
    result: ProbeResult, records: Sequence[Mapping[str, Any]]
) -> str | None:
    names = [str(f.get("event") or "frame") for f in sent(records)]
    if not names:
        return None
    windows = [m.get("window_s") for m in marks_of(records, QUIET_MARK)]
    quiet = f"{windows[0]:g} s" if windows and isinstance(windows[0], (int, float)) else "a while"
    if result.status == PASSED:
        text = f"We sent {names[0]} as input and waited {quiet}: nothing came back."
        if len(names) > 1:
            text += f" The same for {join_and(names[1:])} ({quiet} each)."
        trap = result.facts.get("single_read_after_connect") or ""
        text += " The server ignores its own output names; the flawed test read "
        if str(trap).startswith("connection_established"):
            text += (
                f"connection_established instead: one read right after sending {names[0]} "
                f"returned {trap}, the frame queued at connect time."
            )
        else:
            text += "the frame that was already waiting instead."
        return text
    end = connection_end(records)
    if end.kept_out:
        return (
            f"We tried to send {names[0]} as input, but {end.words} Nothing was learnt about "
            "inputs: the frame that answered the connection is no reply to an input."
        )
    if result.status == INCONCLUSIVE:
        return f"We tried to send {names[0]} as input: {result.explanation}"
    replies = " ".join(c.explanation for c in result.checks.failures)
    return (
        f"We sent {join_and(names)} as input and waited {quiet} after each, expecting silence "
        f"(the Netra backend ignores output names sent as input): {replies}"
    )


def _workflow_sentences(result: ProbeResult, source: Source) -> str:
    records = source.records
    triggers = [f for f in sent(records) if f.get("event") in RUN_TRIGGER_TYPES]
    end = connection_end(records)
    if end.kept_out:
        return (
            f"We connected {_auth_words(records)} to send user_message, but {end.words} No "
            "agent run could start, so no event was validated."
        )
    if not triggers:
        problem = connection_problem(records)
        if problem is None:
            return f"No user_message was sent: {result.explanation}"
        return (
            f"We connected {_auth_words(records)} to send user_message, but {problem} No agent "
            "run could start, so no event was validated."
        )
    runs = source.run_stats
    if not (runs["n_events"] > 0).any():
        window = _collection_window(records)
        waited = f" and collected for {window} each" if window else ""
        what = join_and([f"user_message ({form_of(f)})" for f in triggers])
        text = f"We sent {what}{waited}: no agent events came back."
        arrived = result.checks["agent events"].explanation if result.checks else ""
        # The check's own words from its causes on, ending "This is a failure, not a pass".
        causes = re.search(r"Likely causes: .*", arrived)
        text += f" {causes.group(0)}" if causes else _demo_user_note(result.facts.get("user_id"))
        return text + " (The proposed #937 fix would have validated a hand-made event here.)"
    # Runs that got the same events are told once, their forms and times side by side.
    told: dict[tuple[str, bool], list[tuple[str, Any]]] = {}
    for trigger, (_, run) in zip(triggers, runs.iterrows(), strict=False):
        events = squeeze(_run_events(source.runs, run["run"])) or "no agent event"
        told.setdefault((events, bool(pd.notna(run["duration_s"]))), []).append(
            (form_of(trigger), run)
        )
    sentences = []
    for (events, ended), group in told.items():
        forms = join_and([form for form, _ in group])
        each = " each time" if len(group) > 1 else ""
        if ended:
            took = (
                f" in {join_and([duration(r['duration_s']) for _, r in group])}, the first "
                f"after {join_and([duration(r['time_to_first_event_s']) for _, r in group])}"
            )
        else:
            took = f"; it never ended (last: {join_and([str(r['last_event']) for _, r in group])})"
        sentences.append(f"We sent user_message ({forms}) and{each} received {events}{took}.")
    profile = result.facts.get("profile") or "netra-bridge"
    checks = result.checks
    if result.status == PASSED:
        sentences.append(
            f"All {len(checks)} checks of profile {profile} passed: every frame parsed, every "
            "critical event arrived, in order, tool calls were paired, and each event carries "
            "its required fields."
        )
    else:
        failed = checks.failures or [c for c in checks if c.status != PASSED]
        sentences.append(
            f"{len(failed)} of {len(checks)} checks of profile {profile} did not pass: "
            + "; ".join(f"{c.name}: {c.explanation}" for c in failed)
        )
    return " ".join(sentences)


def _auth_sentences(result: ProbeResult) -> str:
    rows = result.rows
    if not rows:
        return sentence(result.explanation)
    refused = [r for r in rows if r["expected"] == "refused" and r["status"] == PASSED]
    accepted = [r for r in rows if r["expected"] == "refused" and r["status"] == FAILED]
    worked = [r for r in rows if r["expected"] != "refused" and r["status"] == PASSED]
    starved = [r for r in rows if r["expected"] != "refused" and r["status"] == FAILED]
    untried = [r for r in rows if r["status"] == INCONCLUSIVE]
    text = []
    if result.status == PASSED:
        text.append("Authentication is enforced.")
    if refused:
        how = "; ".join(sorted({refusal_words(r) for r in refused}))
        text.append(f"{capital(_credentials(refused, 'refused'))} ({how}).")
    if accepted:
        users = join_and(sorted({repr(str(r["user_id"])) for r in accepted}))
        text.append(
            f"Authentication is not enforced: {_credentials(accepted, 'accepted')} as {users}."
        )
    if worked:
        forms = join_and([r["credential"] for r in worked])
        text.append(f"A valid token got agent events ({forms}).")
    if starved:
        demo = any(is_demo_user(r["user_id"]) for r in starved)
        outcome = (
            "no agent events flowed after user_message"
            if all(r["first_frame"] == "connection_established" for r in starved)
            else "the connection was refused"
        )
        text.append(
            f"With a valid token ({join_and([r['credential'] for r in starved])}) {outcome}"
            + (" — the server saw the demo user, so it ignored the token." if demo else ".")
        )
    if untried:
        names = [str(r["credential"]) for r in untried]
        if names == ["expired token"]:
            need = "it needs the signing secret"
        elif "expired token" in names:
            need = "they need a valid token, and the expired one the signing secret"
        else:
            need = "they need a valid token"
        text.append(f"Not tried: {join_and(names)} — {need}.")
    return " ".join(text) or sentence(result.explanation)


def _credentials(rows: Sequence[Mapping[str, Any]], verb: str) -> str:
    names = [str(r["credential"]) for r in rows]
    return f"{join_and(names)} {'was' if len(names) == 1 else 'were'} {verb}"


def reference_section(
    server: tuple[str, str], report: ProbeReport, sources: Sequence[Source]
) -> tuple[str, str]:
    """A reference run on another embedded server, as (summary line, Markdown body): not
    part of the verdict, led by what its diagnosis says, then what each probe saw there."""
    dialect, auth = server
    diagnosis = report.diagnosis
    summary = f"Reference: an embedded {dialect} server, auth {auth}"
    lead = (
        f"Diagnosis of this reference ({diagnosis.cause}): {diagnosis}"
        if diagnosis.cause != "undetermined"
        else "These runs show how that server answers; they have no diagnosis of their own."
    )
    lines = [
        f"**{for_prose(summary)}** — for comparison, not part of the verdict above. "
        + for_prose(lead),
        "",
    ]
    lines += [
        f"- What the {r.probe} probe saw there: {for_prose(r.explanation)}"
        for r in report
    ]
    names = sorted(s.name for s in sources)
    shown = ", ".join(for_markdown(n, 300) for n in names[:5])
    more = f" and {len(names) - 5} more" if len(names) > 5 else ""
    lines += ["", f"Traces: {shown}{more}."]
    return for_prose(summary, 200), "\n".join(lines)


def _collection_window(records: Sequence[Mapping[str, Any]]) -> str | None:
    began = marks_of(records, SENT_MARK)
    ended = marks_of(records, COLLECTED_MARK)
    spans = [
        (e["t_mono_ns"] - s["t_mono_ns"]) / 1e9
        for s, e in zip(began, ended, strict=False)
        if isinstance(s.get("t_mono_ns"), int) and isinstance(e.get("t_mono_ns"), int)
    ]
    return f"{max(spans):.1f} s" if spans else None


def _run_events(runs: pd.DataFrame, run: Any) -> list[str]:
    mine = runs[(runs["run"] == run).fillna(False) & (runs["dir"] == "receive")]
    return [str(e) for e in mine["event"].dropna() if e in AGENT_EVENTS]


def timing_finding(timing: Timing) -> str:
    """What the timing says, in sentences: stalls first, since they look like lost events."""
    runs = sum(len(g.runs) for g in timing.groups)
    stalled = [g for g in timing.groups if len(g.stalls)]
    answered = [g for g in timing.groups if g.runs["n_events"].gt(0).any()]
    if not answered:
        return _said(
            "Timing",
            f"None of the {runs} run(s) got an agent event, so there is nothing to time.",
        )
    if not stalled:
        gaps = [float(w["gap_s"]) for g in answered if (w := g.worst) is not None]
        slowest = f", the largest {duration(max(gaps))}" if gaps else ""
        return _said(
            "Timing",
            f"In {runs} run(s), no gap between consecutive events exceeded "
            f"{STALL_THRESHOLD_S:g} s{slowest}: a test reading with a 2–3 s timeout per frame "
            "would see every event.",
        )
    parts = [_stalls_words(group) for group in stalled]
    return _said(
        "Timing",
        f"Events can arrive late: {'; '.join(parts)}. A gap above "
        f"{STALL_THRESHOLD_S:g} s is longer than the 2–3 s per-frame timeout of the backend's "
        'tests, which would report such a run as "no events" although every event came.',
    )


def _stalls_words(group: Any) -> str:
    found = "; ".join(
        f"{duration(g['gap_s'])} before {g['event']} #{g['seq']} in {g['trace']}"
        for _, g in group.stalls.head(3).iterrows()
    )
    runs_hit = group.stalls["trace"].nunique()
    return f"in {group.name}, {runs_hit} of {len(group.runs)} run(s) stalled ({found})"


def injected_finding(sources: Sequence[Source], timing: Timing | None) -> str:
    """The runs with a fault injected on purpose: which fault, and whether the analysis
    found it from the traces alone. They are left out of every finding about the server."""
    faults = sorted({f for s in sources for f in s.injected})
    logs = sorted({name for s in sources for name in s.fault_logs})
    where = f" (its log: {join_and(logs)})" if logs else ""
    names = join_and(sorted(s.name for s in sources)[:5])
    kinds = join_and(sorted({f.split(" ")[0] for f in faults}))
    text = (
        f"{capital(kinds)} injected on purpose ({'; '.join(faults)}) by the embedded "
        f"server's fault plan{where}, into {len(sources)} run(s): {names}."
    )
    stalled = [g for g in timing.groups if len(g.stalls)] if timing is not None else []
    if stalled:
        text += f" Detected from the traces alone: {'; '.join(_stalls_words(g) for g in stalled)}."
    elif any(f.startswith("stall") for f in faults):
        text += (
            f" No gap above {STALL_THRESHOLD_S:g} s was found in them: the stall was not "
            "detected."
        )
    text += (
        " These runs show the fault, not the server: they are left out of the timing and of "
        "every finding above."
    )
    return _said("Injected fault", text)

