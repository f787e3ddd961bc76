"""The bad-input corpus (tests/bad_inputs/): each file one bad input, ``expected.json``
beside it saying what must happen to it. docs/RELIABILITY.md quotes its size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).parent.parent / "bad_inputs"


def expectations(kind: str) -> dict[str, dict[str, Any]]:
    return json.loads((CORPUS / kind / "expected.json").read_text(encoding="utf-8"))


FRAMES = expectations("frames")
TRACES = expectations("traces")
HARS = expectations("har")


def corpus_size() -> dict[str, int]:
    """How many bad inputs each door is tried with (docs/RELIABILITY.md quotes the total)."""
    return {"frames": len(FRAMES), "traces": len(TRACES), "har": len(HARS)}
