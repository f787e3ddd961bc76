"""The trace writers redact with netra_ws.redact, and only with it (issue #13, point 2).

Every key of :data:`netra_ws.redact.SECRET_KEYS`, in any case and wherever it sits in a
non-frame record, loses its value in the file, whatever the value looks like; frame data is
evidence and stays exactly as received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.datastructures import Headers

from netra_ws.redact import REDACTED, SECRET_KEYS
from netra_ws.trace import Trace, TraceWriter, read_trace, write_trace

# Nothing about these looks like a credential: only the key says it is one.
SECRET = "hunter2-very-secret"
SECRET_NUMBER = 918273645546


def casings(key: str) -> list[str]:
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(key))
    return [key, key.upper(), mixed]


class Secrets:
    """Hands out a distinct non-JWT secret per place, so a failure names the place."""

    def __init__(self) -> None:
        self.given: dict[str, str] = {}

    def __call__(self, where: str) -> str:
        value = f"{SECRET}-{len(self.given):03d}"
        self.given[value] = where
        return value

    def leaked(self, text: str) -> list[str]:
        return [where for value, where in self.given.items() if value in text]


def placements(secrets: Secrets) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, fields) for every secret key, casing and nesting a record can hold."""
    for name in sorted(SECRET_KEYS):
        for key in casings(name):
            yield "field", {key: secrets(f"field {key}")}
            yield "nested", {"details": {"outer": {key: secrets(f"nested {key}")}}}
            yield "list", {"items": [{"ok": 1}, {key: secrets(f"list of dicts {key}")}]}
    # Whatever the value looks like: a number, a list, a mapping under a credential key.
    yield (
        "shapes",
        {
            "api_key": SECRET_NUMBER,
            "token": [secrets("token as a list")],
            "secret": {"value": secrets("secret as a mapping")},
        },
    )


def test_the_writer_redacts_every_secret_key_in_every_place(tmp_path: Path):
    secrets = Secrets()
    labels = {key: secrets(f"label {key}") for name in SECRET_KEYS for key in casings(name)}
    labels["deep"] = [{"Password": secrets("label list of dicts Password")}]
    frame = json.dumps({"type": "auth", "token": secrets("frame data")})
    with TraceWriter(tmp_path / "run.jsonl", labels=labels) as tw:
        for kind in ("open", "close", "error"):
            for _, fields in placements(secrets):
                tw.record(kind, **fields)
        for where, fields in placements(secrets):
            tw.mark(f"mark {where}", **fields)
        tw.frame("send", frame, t_wall_ns=1, t_mono_ns=1)

    text = tw.path.read_text(encoding="utf-8")
    assert secrets.leaked(text) == ["frame data"]  # frame data is evidence: never redacted
    assert str(SECRET_NUMBER) not in text
    assert read_trace(tw.path).frames[0]["data"] == frame
    assert tw.meta["labels"]["API_KEY"] == REDACTED
    assert tw.records[0][min(SECRET_KEYS)] == REDACTED


def test_write_trace_redacts_every_secret_key_in_every_place(tmp_path: Path):
    secrets = Secrets()
    labels = {key: secrets(f"label {key}") for name in SECRET_KEYS for key in casings(name)}
    meta = {"kind": "meta", "session": "s1", "labels": labels, "Token": secrets("meta Token")}
    records: list[dict[str, Any]] = []
    for i, (where, fields) in enumerate(placements(secrets)):
        kind = ("open", "close", "error", "mark")[i % 4]
        records.append({"kind": kind, "t_wall_ns": i, "t_mono_ns": i, "label": where, **fields})
    frame = json.dumps({"type": "auth", "password": secrets("frame data")})
    records.append({"kind": "frame", "seq": 1, "dir": "send", "opcode": "text", "data": frame})

    out = write_trace(Trace(meta, records), tmp_path / "copy.jsonl")

    text = out.read_text(encoding="utf-8")
    assert secrets.leaked(text) == ["frame data"]
    assert str(SECRET_NUMBER) not in text
    assert read_trace(out).frames[0]["data"] == frame


def test_repeated_headers_of_websockets_keep_every_value_and_lose_the_secret_ones(
    tmp_path: Path,
):
    headers = Headers()
    headers["Set-Cookie"] = f"sid={SECRET}-1"
    headers["Set-Cookie"] = f"theme={SECRET}-2"
    headers["Server"] = "uvicorn"
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        opened = tw.record("open", response_headers=headers)
    assert opened["response_headers"] == {
        "Set-Cookie": f"{REDACTED}, {REDACTED}",
        "Server": "uvicorn",
    }
    assert SECRET not in tw.path.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        # Absence is evidence too: nothing secret in a null, a boolean or an empty string.
        ({"token": None, "jwt": False, "password": ""},) * 2,
        ({"URL": "wss://h/ws?token=x#f"}, {"URL": "wss://h/ws"}),
        ({"Request_Headers": {"Cookie": "a=1"}}, {"Request_Headers": {"Cookie": REDACTED}}),
    ],
)
def test_keys_are_matched_in_any_case_and_absence_is_kept(
    tmp_path: Path, fields: dict[str, Any], expected: dict[str, Any]
):
    with TraceWriter(None) as tw:
        record = tw.record("error", **fields)
    assert {k: record[k] for k in expected} == expected
