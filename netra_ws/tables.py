"""Tables a person reads in a notebook: pandas ``Styler`` views of the kit's DataFrames.

Pure: no network, nothing decided here. :func:`readable` turns any DataFrame into a
left-aligned, wrapping table with empty cells instead of ``<NA>``, JSON payloads folded
into a one-line summary that opens onto the full JSON, times in milliseconds (a ``…_s``
column is shown as ``…_ms``), and statuses with a symbol and a colour. The verdicts'
HTML (:meth:`netra_ws.verdicts.ProbeResult._repr_html_`) is :func:`verdict_html`.

The DataFrame itself is never changed: code keeps reading ``t_s`` in seconds; only what
the notebook shows differs::

    readable(session.to_frame())        # the last expression of a cell: shown styled
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler
from pandas.io.formats.style_render import CSSDict

__all__ = ["DEMO_IGNORED", "TOKEN_IGNORED", "readable", "status_label", "verdict_html"]

# The words an auth row's explanation uses when a valid token's connection was taken for
# the demo user (netra_ws.verdicts._whose); such a row is shown as TOKEN_IGNORED.
DEMO_IGNORED = "the demo user: the server ignored the token"
TOKEN_IGNORED = "token ignored (demo user)"

# status → (symbol, text colour, background)
_LOOKS: dict[str, tuple[str, str, str]] = {
    "passed": ("✔", "#1b5e20", "#e6f4ea"),
    "failed": ("✘", "#b3261e", "#fce8e6"),
    "inconclusive": ("?", "#7a5900", "#fff4ce"),
    TOKEN_IGNORED: ("⚠", "#7a5900", "#fff4ce"),
    "skipped": ("–", "#555555", "#f1f3f4"),
    "not run": ("–", "#555555", "#f1f3f4"),
}
# Wide enough for a sentence, narrow enough that a table fits the page.
_CSS: list[CSSDict] = [
    {
        "selector": "td, th",
        "props": "text-align: left; vertical-align: top; white-space: normal;"
        " overflow-wrap: break-word; max-width: 36em; padding: 0.25em 0.6em;",
    },
    {"selector": "th", "props": "font-weight: 600; border-bottom: 1px solid #bbb;"},
    # a status and a column name read as one word; an explanation needs room for a clause
    {"selector": "th, td.status", "props": "white-space: nowrap;"},
    {"selector": "td.explanation", "props": "min-width: 20em;"},
    {"selector": "details pre", "props": "white-space: pre-wrap; margin: 0; font-size: 90%;"},
]


def status_label(status: Any, explanation: Any = None) -> str:
    """The status as shown: ``"token ignored (demo user)"`` for a row that passed only
    because the server took the token's connection for the demo user, else the status.

    >>> status_label("passed", "accepted as user 'demo-use...' — the demo user: the server "
    ...              "ignored the token; agent events flowed.")
    'token ignored (demo user)'
    >>> status_label("failed", "refused")
    'failed'
    """
    if status == "passed" and isinstance(explanation, str) and DEMO_IGNORED in explanation:
        return TOKEN_IGNORED
    return str(status)


def _status_html(label: str) -> str:
    symbol, colour, _ = _LOOKS.get(label, ("", "inherit", ""))
    return f'<span style="color:{colour};font-weight:600">{symbol} {html.escape(label)}</span>'


def _status_css(label: Any) -> str:
    look = _LOOKS.get(str(label))
    return f"background-color: {look[2]};" if look else ""


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _json_html(value: Any) -> str:
    """A dict or list folded to a summary line that opens onto its JSON."""
    if isinstance(value, Mapping):
        keys = list(value)
        summary = "{" + ", ".join(str(k) for k in keys[:4]) + (", …" if len(keys) > 4 else "") + "}"
    else:
        summary = f"[{len(value)} item{'s' if len(value) != 1 else ''}]"
    if not value:
        return html.escape(json.dumps(value))
    full = json.dumps(value, indent=1, ensure_ascii=False, default=str)
    return (
        f"<details><summary><code>{html.escape(summary)}</code></summary>"
        f"<pre>{html.escape(full)}</pre></details>"
    )


def _cell_html(value: Any, column: str) -> str:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, str)) for v in value):
        # evidence seqs, trace names: a short list reads best as plain text
        return html.escape(", ".join(str(v) for v in value))
    if isinstance(value, (Mapping, list, tuple)):
        return _json_html(value)
    if _is_missing(value):
        return ""
    if isinstance(value, str) and value[:1] in "{[" and len(value) > 40:
        try:
            return _json_html(json.loads(value))
        except ValueError:
            pass
    if isinstance(value, bool):
        return "yes" if value else "no"
    return html.escape(str(_timed(value, column)))


def _timed(value: Any, column: str) -> Any:
    """A time in ms, as the report writes it, when the column's name says it is a time;
    any other value as it is."""
    if isinstance(value, float) and not math.isnan(value) and column.endswith("_s"):
        return f"{value * 1000:.1f} ms"
    if isinstance(value, float) and not math.isnan(value) and column.endswith("_ms"):
        return f"{value:.1f} ms"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # a code or a seq that a missing value in its column made a float
    return value


def readable(
    frame: pd.DataFrame, *, statuses: Sequence[str] = ("status",), caption: str | None = None
) -> Styler:
    """``frame`` as a table a person can read in JupyterLab (see the module docstring).

    The ``statuses`` columns are shown with a symbol and a colour; where an
    ``explanation`` says the server ignored the token (the demo user), the status reads
    :data:`TOKEN_IGNORED`. A cell is empty where the value is missing. Display the
    result (last expression of a cell) or call ``.to_html()``.
    """
    if "status" in frame and len(frame.columns) > 2:
        # the verdict next to what it is about, then why, then the details
        first = [frame.columns[0], "status", "explanation"]
        order = [c for c in first if c in frame] + [c for c in frame if c not in first]
        frame = frame[order]
    explanations = frame.get("explanation")
    shown = pd.DataFrame(index=frame.index)
    labels: dict[str, list[str]] = {}
    for column in frame.columns:
        name = str(column)
        values = frame[column].tolist()
        if name in statuses:
            whys = explanations.tolist() if explanations is not None else [None] * len(values)
            labels[name] = [status_label(s, why) for s, why in zip(values, whys, strict=True)]
            shown[name] = [_status_html(label) for label in labels[name]]
        else:
            title = name[:-2] + "_ms" if name.endswith("_s") else name
            shown[title] = [_cell_html(v, name) for v in values]
    styler = shown.style.hide(axis="index").set_table_styles(_CSS)
    kinds = ["status" if c in labels else c if c == "explanation" else "" for c in shown]
    styler = styler.set_td_classes(
        pd.DataFrame([kinds] * len(shown), index=shown.index, columns=shown.columns)
    )
    styler = styler.set_table_attributes('class="netra-table"')
    for name, column_labels in labels.items():
        css = [_status_css(label) for label in column_labels]
        styler = styler.apply(lambda _, css=css: css, subset=[name])
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return styler


def verdict_html(
    probe: str, status: str, explanation: str, frame: pd.DataFrame, *, sideways: bool
) -> str:
    """A verdict as HTML: a coloured headline (status, probe, explanation) over its table.

    ``sideways`` shows a one-row table as field/value pairs, so it fits the page.
    """
    headline = (
        f'<p class="netra-verdict" style="{_status_css(status)} padding: 0.3em 0.6em;">'
        f"{_status_html(status)} <b>{html.escape(probe)}</b> — {html.escape(explanation)}</p>"
    )
    if frame.empty:
        return headline
    if sideways and len(frame) == 1:
        fields = [str(c) for c in frame.columns]
        values = [_timed(v, f) for v, f in zip(frame.iloc[0], fields, strict=True)]
        frame = pd.DataFrame({"field": fields, "value": values})
        frame = frame[frame["field"] != "status"]  # the headline says it
    return headline + readable(frame).to_html()
