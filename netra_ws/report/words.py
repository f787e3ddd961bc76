"""Small words of the report: sentences, lists, durations. Pure.

>>> duration(0.25), duration(2.5)
('250 ms', '2.50 s')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
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
    "shown_path",
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


_NOTEBOOK_FOLDER = re.compile(r"\d\d_[a-z0-9_]+")


def shown_path(path: str | Path) -> str:
    """A path as a colleague can use it after a fresh clone, never this machine's layout:
    relative to the repository (the folder above the working directory holding
    ``pyproject.toml`` or ``.git``) when inside it; else ``data/…`` as the kit writes it
    (from the notebook's output folder down), else ``data/<folder>/<file>``.

    >>> shown_path("/somewhere/else/04_timing_analysis/20260101T000000/faults.json")
    'data/04_timing_analysis/20260101T000000/faults.json'
    """
    given = Path(path)
    resolved = given.resolve()
    root = _repository()
    if root is not None and resolved.is_relative_to(root):
        return resolved.relative_to(root).as_posix() or "."
    parts = resolved.parts
    for i in range(len(parts) - 1, 0, -1):
        if _NOTEBOOK_FOLDER.fullmatch(parts[i]):
            return "/".join(("data", *parts[i:]))
    if resolved.is_file() or resolved.suffix:  # a file: its folder and name
        return "/".join(("data", *parts[-2:]))
    if resolved.is_dir() and any(_NOTEBOOK_FOLDER.fullmatch(c.name) for c in resolved.iterdir()):
        return "data"  # a data folder, holding the notebooks' output folders
    return f"data/{resolved.name}" if parts[1:] else "data"


def _repository() -> Path | None:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() or (folder / ".git").exists():
            return folder
    return None
