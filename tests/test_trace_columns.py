"""The fast trace reader gives exactly what the line-by-line reader gives, damage included.

read_trace() parses frame lines with pyarrow and everything else with json (see
netra_ws/_trace_columns.py). These tests compare it with a plain json.loads-per-line
reader (the reference below, the reader netra_ws had before), on files mixing every kind
of line a real or damaged trace holds, with chunks small enough that chunk boundaries and
the bisection of refused ranges are exercised.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netra_ws import _trace_columns
from netra_ws.errors import TraceFormatError
from netra_ws.trace import (
    FORMAT,
    Trace,
    TraceWarning,
    TraceWriter,
    complete_frame_record,
    frame_record,
    load_traces,
    read_trace,
)

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode

AGENT_THINKING = json.dumps(
    {
        "type": "agent_thinking",
        "run_id": "run_1",
        "user_id": "u",
        "agent_name": "a",
        "timestamp": "2025-09-12T10:15:31.250000+00:00",
        "payload": {"reasoning": "why", "step_number": 1},
    }
)


def _frame(seq: int, data: str | bytes = AGENT_THINKING) -> dict[str, Any]:
    return frame_record(seq, "receive", data, t_wall_ns=10**18 + seq, t_mono_ns=10**9 + seq)


# Every kind of line: what the writer writes, what other tools write, and damage.
LINES: dict[str, bytes] = {
    "frame": _dumps(_frame(1)).encode(),
    "frame-binary": _dumps(_frame(2, b"\x00\xff")).encode(),
    "frame-not-json": _dumps(_frame(3, "{nope")).encode(),
    "frame-unicode": _dumps(_frame(4, '{"type":"agent_thinking","x":"é😀"}')).encode(),
    "frame-surrogate": _dumps(_frame(5, "\ud800x")).encode("utf-8", "backslashreplace"),
    "frame-keys-reordered": json.dumps(dict(reversed(list(_frame(6).items())))).encode(),
    "frame-spaced": json.dumps(_frame(7)).encode(),
    "frame-minimal": b'{"kind":"frame","seq":8}',
    "frame-seq-text": b'{"kind":"frame","seq":"9","dir":"send","data":"x"}',
    "frame-size-float": b'{"kind":"frame","seq":10,"size":1.5,"t_mono_ns":true}',
    "frame-int-run-id": b'{"kind":"frame","seq":11,"run_id":42,"server_ts":"1757672130"}',
    "frame-huge-int": b'{"kind":"frame","seq":1180591620717411303424,"server_ts":7}',
    "frame-data-object": b'{"kind":"frame","seq":12,"data":{"a":1},"event":null}',
    "frame-nan": b'{"kind":"frame","seq":13,"server_ts":NaN,"t_mono_ns":5}',
    "frame-no-mono": b'{"kind":"frame","seq":14,"t_wall_ns":3}',
    "frame-extra-fields": b'{"kind":"frame","seq":15,"x":{"y":[1,{"z":2}]},"data":"d"}',
    "frame-kind-twice": b'{"kind":"frame","seq":16,"kind":"mark","label":"dup"}',
    "frame-crlf": _dumps(_frame(17)).encode() + b"\r",
    # Written during a burst, without the normalized fields (TraceWriter, flush=False).
    "frame-burst": b'{"kind":"frame","seq":25,"dir":"receive","t_wall_ns":9,"t_mono_ns":9,'
    + b'"opcode":"text","size":2,"data":"{\\"type\\":\\"agent_started\\",\\"run_id\\":7}"}',
    "frame-burst-not-json": b'{"kind":"frame","seq":26,"opcode":"text","data":"nope"}',
    "frame-null-envelope": b'{"kind":"frame","seq":27,"opcode":"text","envelope":null,"data":"{}"}',
    "open": b'{"kind":"open","t_wall_ns":1,"t_mono_ns":1000,"http_status":101}',
    "mark": b'{"kind":"mark","label":"m","t_wall_ns":2,"t_mono_ns":2000,"size":"x"}',
    "mark-spaced": b'{"label": "m2", "kind": "mark", "t_mono_ns": 2500}',
    "close": b'{"kind":"close","t_wall_ns":3,"t_mono_ns":3000,"code":1000}',
    "unknown-kind": b'{"kind":"span","y":2}',
    "late-meta": b'{"kind":"meta","format":"whatever"}',
    "blank": b"",
    "spaces": b"   ",
    "formfeed": b"\x0c",
    "not-json": b"this is not json",
    "array": b"[1, 2, 3]",
    "no-kind": b'{"no_kind": true}',
    "kind-not-str": b'{"kind": 5}',
    "not-utf8": b'{"kind": "fr\xffme"}',
    "not-utf8-frame": b'{"kind":"frame","seq":18,"data":"a\xffb"}',
    "not-utf8-ignored-field": b'{"kind":"frame","seq":23,"x":"\xed\xa0\x80"}',
    "utf8-bom": b'\xef\xbb\xbf{"kind":"frame","seq":24}',
    "two-objects": _dumps(_frame(19)).encode() + _dumps(_frame(20)).encode(),
    "cut-frame": b'{"kind":"frame","seq":21,"dir":"rece',
    "raw-tab-in-string": b'{"kind":"frame","seq":22,"data":"a\tb"}',
}
HEADER = _dumps({"kind": "meta", "format": FORMAT, "session": "s-1", "target": "ws://h/ws"})


def reference_read(path: Path) -> tuple[Trace, list[str]]:
    """The reader before the fast path: json.loads per line. Returns the trace and warnings."""
    records: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    line_count = 0
    with path.open("rb") as f:
        for line_count, raw in enumerate(f, 1):
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):
                if not raw.strip():
                    continue
                problems.append(
                    (line_count, "truncated last line" if not raw.endswith(b"\n") else "not JSON")
                )
                continue
            if type(record) is not dict:
                problems.append((line_count, "not a JSON object"))
            elif type(record.get("kind")) is not str:
                problems.append((line_count, "no string 'kind'"))
            else:
                records.append(record)
    if not records:
        raise TraceFormatError("no records")
    for record in records:  # frames a burst wrote without them get their fields
        if record["kind"] == "frame":
            complete_frame_record(record)
    meta: dict[str, Any] = {}
    if records[0]["kind"] == "meta":
        if records[0].get("format") != FORMAT:
            raise TraceFormatError("unknown format")
        meta, records = records[0], records[1:]
    elif not any(r["kind"] in ("meta", "frame", "mark", "open", "close", "error") for r in records):
        raise TraceFormatError("no known kind")
    messages = []
    if problems:
        listed = "; ".join(f"line {n}: {reason}" for n, reason in problems[:3])
        if len(problems) > 3:
            listed += f"; and {len(problems) - 3} more"
        messages.append(f"{path}: skipped {len(problems)} unreadable line(s) ({listed})")
    if not meta:
        messages.append(
            f"{path}: no 'meta' header (the first record is {records[0]['kind']!r}); "
            "loaded without session, target and labels"
        )
    return Trace(meta, records, path=path, skipped_lines=len(problems)), messages


@contextmanager
def small_chunks(chunk_bytes: int, leaf_lines: int = 2) -> Iterator[None]:
    with (
        mock.patch.object(_trace_columns, "CHUNK_BYTES", chunk_bytes),
        mock.patch.object(_trace_columns, "_LEAF_LINES", leaf_lines),
    ):
        yield


def fast_read(path: Path) -> tuple[Trace, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trace = read_trace(path)
    return trace, [str(w.message) for w in caught]


def assert_same(path: Path) -> None:
    """read_trace(path) must equal the reference reader in every observable way."""
    try:
        expected, expected_warnings = reference_read(path)
    except TraceFormatError:
        with pytest.raises(TraceFormatError):
            fast_read(path)
        return
    trace, messages = fast_read(path)
    assert messages == expected_warnings
    assert trace.meta == expected.meta
    assert trace.skipped_lines == expected.skipped_lines
    # The columns first: they must not need the records.
    pd.testing.assert_frame_equal(trace.to_frame(), expected.to_frame())
    pd.testing.assert_frame_equal(trace.marks_frame(), expected.marks_frame())
    assert trace.marks == expected.marks
    assert repr(trace) == repr(expected).replace("in memory", path.name)
    assert trace.records == expected.records
    pd.testing.assert_frame_equal(trace.to_frame(), expected.to_frame())


def write_lines(path: Path, names: list[str], *, header: bool, newline_at_end: bool) -> Path:
    lines = ([HEADER.encode()] if header else []) + [LINES[name] for name in names]
    path.write_bytes(b"\n".join(lines) + (b"\n" if newline_at_end else b""))
    return path


@pytest.mark.parametrize("name", sorted(LINES))
@pytest.mark.parametrize("chunk_bytes", [64 << 20, 300])
def test_each_kind_of_line_among_good_frames(tmp_path: Path, name: str, chunk_bytes: int):
    names = ["open", "frame", "frame", name, "frame", "mark", "frame", "close"]
    with small_chunks(chunk_bytes):
        assert_same(write_lines(tmp_path / "t.jsonl", names, header=True, newline_at_end=True))


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(st.sampled_from(sorted(LINES)), max_size=40),
    header=st.booleans(),
    newline_at_end=st.booleans(),
    chunk_bytes=st.sampled_from([64, 500, 4096, 64 << 20]),
    leaf_lines=st.sampled_from([1, 3, 16]),
)
def test_any_mix_of_lines_reads_like_the_reference(
    tmp_path: Path,
    names: list[str],
    header: bool,
    newline_at_end: bool,
    chunk_bytes: int,
    leaf_lines: int,
):
    path = tmp_path / "mix.jsonl"
    path.unlink(missing_ok=True)
    write_lines(path, names, header=header, newline_at_end=newline_at_end)
    with small_chunks(chunk_bytes, leaf_lines):
        assert_same(path)


def test_many_frames_across_chunks_keep_their_order_and_lines(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl", session="many") as tw:
        tw.record("open", t_wall_ns=1, t_mono_ns=7)
        for seq in range(1, 2001):
            tw.frame("receive", AGENT_THINKING, t_wall_ns=seq, t_mono_ns=10 + seq)
            if seq % 300 == 0:
                tw.mark(f"at {seq}")
    with tw.path.open("a", encoding="utf-8") as f:
        f.write('{"kind":"frame","seq":2001,"dir":"rece')  # a crash cut the last line
    with small_chunks(10_000, 4), pytest.warns(TraceWarning):
        assert_same(tw.path)
        df = read_trace(tw.path).to_frame()
    assert df["seq"].tolist() == list(range(1, 2001))
    assert df["t_s"].iloc[0] == pytest.approx(4e-9)


def test_records_are_read_from_the_file_when_first_asked_for(tmp_path: Path):
    with TraceWriter(tmp_path / "run.jsonl") as tw:
        tw.frame("receive", AGENT_THINKING, t_wall_ns=1, t_mono_ns=2)
    trace = read_trace(tw.path)
    with tw.path.open("a", encoding="utf-8") as f:  # appended after reading: not part of it
        f.write(_dumps(_frame(2)) + "\n")
    assert [r["seq"] for r in trace.frames] == [1]
    trace.records[0]["event"] = "edited"  # to_frame follows edits once records are read
    assert trace.to_frame()["event"].tolist() == ["edited"]

    shrunk = read_trace(tw.path)
    tw.path.write_text("", encoding="utf-8")
    with pytest.raises(TraceFormatError, match="shorter than when it was read"):
        shrunk.records  # noqa: B018


def test_load_traces_of_many_files_has_one_origin_per_trace(tmp_path: Path):
    for name, t0 in (("a.jsonl", 100), ("b.jsonl", 5_000)):
        with TraceWriter(tmp_path / name, session=name[0]) as tw:
            for seq in range(3):
                tw.frame("send", AGENT_THINKING, t_wall_ns=seq, t_mono_ns=t0 + seq * 10**9)
    df = load_traces(tmp_path)
    assert df["trace"].tolist() == ["a.jsonl"] * 3 + ["b.jsonl"] * 3
    assert df["t_s"].tolist() == [0.0, 1.0, 2.0] * 2
    assert df["session"].tolist() == ["a"] * 3 + ["b"] * 3


def test_read_parquet_of_another_tools_file_gets_the_declared_dtypes(tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from netra_ws.trace import read_parquet

    table = pa.table(
        {
            "seq": pa.array([1, None], pa.int32()),
            "event": pa.array(["agent_started", None], pa.string()),
            "t_wall": pa.array([1_000, None], pa.timestamp("us", tz="UTC")),
            "server_ts": pa.array([1, 2], pa.int64()),
        }
    )
    pq.write_table(table, tmp_path / "other.parquet")
    df = read_parquet(tmp_path / "other.parquet")
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        "seq": "Int64",
        "event": "string",
        "t_wall": "datetime64[ns, UTC]",
        "server_ts": "float64",
    }
    assert df["t_wall"].iloc[0] == pd.Timestamp(1_000_000, unit="ns", tz="UTC")
    assert df["seq"].isna().tolist() == [False, True]

    pq.write_table(table.append_column("note", pa.array(["x", "y"])), tmp_path / "extra.parquet")
    extra = read_parquet(tmp_path / "extra.parquet")
    assert str(extra["seq"].dtype) == "Int64" and extra["note"].tolist() == ["x", "y"]


def _parses(path: Path) -> list[str]:
    """What pyarrow was asked to parse while reading ``path``: "file" or "bytes", in order."""
    calls: list[str] = []
    real = _trace_columns.pa_json.read_json

    def counting(source: Any, **kwargs: Any) -> Any:
        calls.append("file" if isinstance(source, str) else "bytes")
        return real(source, **kwargs)

    with mock.patch.object(_trace_columns.pa_json, "read_json", counting):
        assert_same(path)
    return calls


def test_an_undamaged_file_is_parsed_whole_once(tmp_path: Path):
    names = ["open", "frame", "frame-unicode", "blank", "frame-burst", "close"] * 50
    path = write_lines(tmp_path / "ok.jsonl", names, header=True, newline_at_end=True)
    with small_chunks(500):  # many chunks for Python; pyarrow still reads the file at once
        assert _parses(path) == ["file"]


@pytest.mark.parametrize("damage", ["frame-seq-text", "frame-kind-twice", "frame-huge-int", "mark"])
def test_a_file_pyarrow_reads_otherwise_than_python_is_read_again_carefully(
    tmp_path: Path, damage: str
):
    names = ["frame", "frame", damage, "frame", "close"]
    path = write_lines(tmp_path / "odd.jsonl", names, header=True, newline_at_end=True)
    calls = _parses(path)  # assert_same: the answer is the reference reader's all the same
    assert calls[0] == "file" and "bytes" in calls[1:], calls


def test_a_file_that_grows_while_read_gives_one_consistent_reading(tmp_path: Path):
    path = write_lines(tmp_path / "live.jsonl", ["frame"] * 20, header=True, newline_at_end=True)
    real = _trace_columns.pa_json.read_json

    def appended_first(source: Any, **kwargs: Any) -> Any:
        if isinstance(source, str):  # a session appends a frame just before pyarrow reads
            with open(source, "ab") as f:
                f.write(LINES["frame"] + b"\n")
        return real(source, **kwargs)

    with mock.patch.object(_trace_columns.pa_json, "read_json", appended_first):
        trace = read_trace(path)
        df = trace.to_frame()
    # Python may have read the file before or after the append; either way the rows are
    # those of the lines it read (the records are read again from the same bytes).
    assert len(df) in (20, 21)
    assert len(df) == len(trace.frames)
