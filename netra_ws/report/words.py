"""Small words of the report: sentences, lists, durations. Pure.

>>> duration(0.25), duration(2.5)
('250 ms', '2.50 s')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..plots import duration_words
from ..verdicts import join_and
from ..verdicts import sentence_of as sentence

__all__ = [
    "capital",
    "duration",
    "first_sentence",
    "form_of",
    "join_and",
    "sentence",
]


def capital(text: str) -> str:
    """``text`` stripped, its first letter upper case."""
    text = text.strip()
    return text[:1].upper() + text[1:]


def duration(seconds: Any) -> str:
    """Seconds as the report writes them: "250 ms", "2.50 s", "–" for none."""
    if seconds is None or pd.isna(seconds):
        return "–"
    return duration_words(float(seconds))


def form_of(frame: Mapping[str, Any]) -> str:
    """Which shape a sent user_message had: "payload form" or "flat form"."""
    return "payload form" if '"payload"' in str(frame.get("data") or "") else "flat form"


_SENTENCE_END = re.compile(r"(?<=[.;])\s+(?=[A-Z(])")


def first_sentence(text: str) -> str:
    """The first sentence of ``text``, pointing to the findings when there is more."""
    head = _SENTENCE_END.split(text.strip(), maxsplit=1)[0]
    return head if head == text.strip() else head + " (more under Key findings)"
