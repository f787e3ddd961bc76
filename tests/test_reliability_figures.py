"""The figures table of docs/RELIABILITY.md says what the reliability suites really test."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.auth_cases import case_ids
from helpers.corpus import corpus_size
from helpers.load import USERS
from helpers.reliability import FAULTS

DOC = Path(__file__).parent.parent / "docs" / "RELIABILITY.md"


def figures() -> dict[str, int]:
    """``| what | **N** | … |`` rows of the table, by ``what``."""
    rows = re.findall(r"^\| ([a-z ]+) \| \*\*(\d+)\*\* \|", DOC.read_text(encoding="utf-8"), re.M)
    return {what: int(n) for what, n in rows}


def test_the_figures_table_matches_the_suites():
    assert figures() == {
        "faults survived": len(FAULTS) + 1,  # + the capture killed mid-stream
        "bad inputs tried": sum(corpus_size().values()),
        "auth cases rejected": len(case_ids()),
        "concurrent users isolated": USERS,
        "frames lost": 0,
    }
