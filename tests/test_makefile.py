"""The Makefile's pip noise (issue #16): setuptools' editable-install warning box is quieted
where the Makefile runs pip, and the filter it uses matches that warning and no other."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"
# The text setuptools' build backend warns with on every editable install (>= 68).
EDITABLE_WARNING = (
    "Editable installation.\n!!\n\n        Please be careful with folders in your working "
    "directory with the same\n        name as your package as they may take precedence "
    "during imports.\n!!"
)


def _quiet_env() -> dict[str, str]:
    text = MAKEFILE.read_text(encoding="utf-8")
    (value,) = re.findall(r'^EDITABLE_QUIET := PYTHONWARNINGS="([^"]+)"$', text, re.MULTILINE)
    return {**os.environ, "PYTHONWARNINGS": value}


def test_every_editable_install_runs_with_the_filter():
    lines = [line for line in MAKEFILE.read_text().splitlines() if re.search(r"-e \.", line)]
    assert lines and all(
        line.strip().startswith("$(EDITABLE_QUIET) $(PIP) install") for line in lines
    )


def _warns(message: str) -> str:
    code = f"import warnings; warnings.warn({message!r}, UserWarning)"
    return subprocess.run(
        [sys.executable, "-c", code], env=_quiet_env(), capture_output=True, text=True
    ).stderr


def test_the_filter_hides_the_editable_box_and_nothing_else():
    assert _warns(EDITABLE_WARNING) == ""
    assert "something else" in _warns("something else went wrong")
