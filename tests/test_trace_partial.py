"""Reading part of a trace (issue 22): columns, rows, chunks, and the truncated-frame fields.

Every partial read must give exactly the values the whole read gives for the same rows, on
clean traces, on traces a burst wrote without normalized fields, and on the damaged corpus;
and a trace of huge frames read without ``data`` must stay far below the file's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pandas as pd
import pytest

from netra_ws import iter_trace, load_traces, read_parquet, read_trace
from netra_ws.errors import TraceFormatError
from netra_ws.trace import FRAME_COLUMNS, TraceWarning, TraceWriter, frame_record

CORPUS = Path(__file__).parent / "bad_inputs" / "traces"
NO_DATA = [name for name in FRAME_COLUMNS if name != "data"]


def line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def truncated_record(seq: int, full: str, *, keep: int = 16) -> dict:
    """A frame above the recording limit, as the writer records it (first bytes, digest)."""
    raw = full.encode()
    return {
        "kind": "frame", "seq": seq, "dir": "receive", "t_wall_ns": 10**18 + seq,
        "t_mono_ns": 5_000 + seq, "opcode": "text", "size": len(raw),
        "parse_error": f"frame of {len(raw)} bytes above the recording limit, not parsed",
        "truncated": True, "sha256": hashlib.sha256(raw).hexdigest(), "data": full[:keep],
    }  # fmt: skip


def write_mixed(path: Path, frames: int = 60) -> Path:
    """A trace with every kind of line a reader meets: normalized frames, burst frames
    without fields, binary, non-JSON, truncated ones, marks, a garbage line, a frame with
    its keys in another order, wrongly typed fields, and a last line cut short."""
    with TraceWriter(path, target="ws://x/ws", session="s-mixed") as tw:
        tw.record("open", t_wall_ns=10**18, t_mono_ns=1_000, status=101)
    with path.open("a", encoding="utf-8") as f:
        for seq in range(1, frames + 1):
            text = json.dumps({"type": "agent_thinking", "run_id": f"r{seq // 10}", "n": seq})
            clocks = {"t_wall_ns": 10**18 + seq, "t_mono_ns": 1_000 + seq * 1_000_000}
            record = frame_record(seq, "receive", text, **clocks)
            if seq % 7 == 0:  # written during a burst: no normalized fields
                record = {k: v for k, v in record.items() if k not in FRAME_COLUMNS or k in (
                    "seq", "dir", "t_wall_ns", "t_mono_ns", "opcode", "size", "data")}  # fmt: skip
            if seq % 11 == 0:
                record = frame_record(seq, "send", b"\x00\x01bin", **clocks)
            if seq % 13 == 0:
                record = frame_record(seq, "receive", "not json {", **clocks)
            if seq % 17 == 0:
                record = truncated_record(seq, "x" * 5000)
            if seq == 30:
                record = dict(reversed(list(record.items())))  # another tool's key order
            if seq == 40:
                record["size"] = "big"  # a wrongly typed field: NA, the rest kept
            f.write(line(record))
            if seq % 9 == 0:
                f.write(line({"kind": "mark", "label": f"m{seq}", "t_mono_ns": 2_000 + seq}))
            if seq == 25:
                f.write("this line is not JSON\n")
        f.write('{"kind":"frame","seq":999,"dir":"rece')  # the writer was killed here
    return path


def whole(path: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return read_trace(path).to_frame()


def quietly(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        return call(*args, **kwargs)


def chunked(path: Path, chunk_bytes: int, columns=None) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        frames = [t.to_frame() for t in iter_trace(path, chunk_bytes=chunk_bytes, columns=columns)]
    return pd.concat(frames, ignore_index=True)


# --- the same values as the whole read ------------------------------------------------------


@pytest.mark.parametrize(
    "columns",
    [
        NO_DATA,
        ["seq", "event", "t_s"],
        ["event", "run_id", "envelope"],  # normalized fields only: burst frames get them too
        ["t_wall", "size", "truncated", "sha256"],
        ["data"],
        ["session"],
    ],
)
def test_columns_give_the_whole_reads_values(tmp_path: Path, columns: list[str]):
    path = write_mixed(tmp_path / "t.jsonl")
    expected = whole(path)[columns]

    got = quietly(read_trace, path, columns=columns).to_frame()

    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize(
    "rows", [range(0, 5), range(10, 45, 3), slice(50, None), slice(None, 7), range(200, 300)]
)
def test_rows_give_the_whole_reads_rows(tmp_path: Path, rows: range | slice):
    path = write_mixed(tmp_path / "t.jsonl")
    full = whole(path)
    as_slice = slice(rows.start, rows.stop, rows.step) if isinstance(rows, range) else rows
    positions = range(len(full))[as_slice]

    got = quietly(read_trace, path, rows=rows).to_frame()
    only = quietly(read_trace, path, columns=["seq", "event", "t_s"], rows=rows).to_frame()

    expected = full.iloc[list(positions)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    pd.testing.assert_frame_equal(only, expected[["seq", "event", "t_s"]])


@pytest.mark.parametrize("chunk_bytes", [1, 200, 2_000, 64 << 20])
def test_chunks_put_together_are_the_whole_read(tmp_path: Path, chunk_bytes: int):
    path = write_mixed(tmp_path / "t.jsonl")
    full = whole(path)

    pd.testing.assert_frame_equal(chunked(path, chunk_bytes), full)
    pd.testing.assert_frame_equal(chunked(path, chunk_bytes, NO_DATA), full[NO_DATA])


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.jsonl")))
def test_every_damaged_trace_reads_the_same_in_part(name: str):
    path = CORPUS / name
    try:
        full = whole(path)
    except TraceFormatError:  # not a trace: the partial readers refuse it the same way
        with pytest.raises(TraceFormatError):
            quietly(read_trace, path, columns=["seq"])
        with pytest.raises(TraceFormatError):
            quietly(list, iter_trace(path, chunk_bytes=64))
        return

    no_data = quietly(read_trace, path, columns=NO_DATA).to_frame()
    pd.testing.assert_frame_equal(no_data, full[NO_DATA])
    tail = quietly(read_trace, path, rows=slice(1, None)).to_frame()
    pd.testing.assert_frame_equal(tail, full.iloc[1:].reset_index(drop=True))
    pd.testing.assert_frame_equal(chunked(path, 64), full)


def test_marks_and_skipped_lines_of_the_chunks_add_up_to_the_whole(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")
    full = quietly(read_trace, path)

    chunks = quietly(list, iter_trace(path, chunk_bytes=500))

    assert len(chunks) > 10
    assert sum(t.skipped_lines for t in chunks) == full.skipped_lines == 2
    assert [m for t in chunks for m in t.marks] == full.marks
    marks = pd.concat([t.marks_frame() for t in chunks], ignore_index=True)
    pd.testing.assert_frame_equal(marks, full.marks_frame())
    assert all(t.meta == full.meta for t in chunks)


# --- what a partial trace says about itself -------------------------------------------------


def test_a_partial_trace_says_so_and_has_no_records(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")

    part = quietly(read_trace, path, columns=["seq", "event"], rows=range(3))

    assert "partial: columns=['seq', 'event'], rows=range(0, 3)" in repr(part)
    assert part.partial == "columns=['seq', 'event'], rows=range(0, 3)"
    assert list(part.to_frame().columns) == ["seq", "event"]
    for what in ("records", "frames"):
        with pytest.raises(ValueError, match="without columns and rows"):
            getattr(part, what)
    with pytest.raises(ValueError, match="holds only part of"):
        part.filter(event="agent_thinking")
    assert "partial" in part._repr_html_()
    assert [m["label"] for m in part.marks][:2] == ["m9", "m18"]  # marks are read whole
    assert quietly(read_trace, path).partial is None


def test_a_chunk_says_which_lines_and_frames_it_holds(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")

    first, second = quietly(list, iter_trace(path, chunk_bytes=1_000, columns=["seq"]))[:2]

    assert first.partial is not None
    assert first.partial.startswith("columns=['seq'], chunk 1, lines 1-")
    assert second.partial is not None and "chunk 2" in second.partial
    with pytest.raises(ValueError, match="read_trace"):
        _ = first.records


def test_bad_columns_and_rows_are_refused_with_the_fix(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")

    with pytest.raises(ValueError, match="unknown frame column"):
        read_trace(path, columns=["seq", "evnet"])
    with pytest.raises(ValueError, match="twice"):
        read_trace(path, columns=["seq", "seq"])
    with pytest.raises(ValueError, match="positions from the start"):
        read_trace(path, rows=slice(-10, None))
    with pytest.raises(ValueError, match="positive step"):
        read_trace(path, rows=range(10, 0, -1))
    with pytest.raises(TypeError, match="range or a slice"):
        read_trace(path, rows=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_bytes"):
        list(iter_trace(path, chunk_bytes=0))


def test_a_chunked_read_warns_chunk_by_chunk(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(iter_trace(path, chunk_bytes=500))

    messages = [str(w.message) for w in caught if w.category is TraceWarning]
    assert len(messages) == 2
    assert "skipped 1 unreadable line(s) in chunk " in messages[0]
    assert "not JSON" in messages[0]
    assert "truncated last line" in messages[1]
    assert all(w.filename == __file__ for w in caught)


def test_a_chunked_read_of_a_file_without_header_warns_once(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    records = [frame_record(i, "send", "{}", t_wall_ns=i, t_mono_ns=i) for i in range(1, 40)]
    path.write_text("".join(map(line, records)))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chunks = list(iter_trace(path, chunk_bytes=300))

    assert len(chunks) > 3
    assert [str(w.message).count("no 'meta' header") for w in caught] == [1]


def test_a_line_longer_than_the_chunk_is_read_whole(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    with TraceWriter(path, session="s") as tw:
        tw.frame("receive", "a" * 10_000, t_wall_ns=1, t_mono_ns=1)
        tw.frame("receive", "b", t_wall_ns=2, t_mono_ns=2)

    sizes = [t.to_frame()["size"].tolist() for t in iter_trace(path, chunk_bytes=100)]

    assert [10_000] in sizes and [1] in sizes


# --- truncated frames -----------------------------------------------------------------------


def test_truncated_and_sha256_are_read_by_every_path(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")
    digest = hashlib.sha256(b"x" * 5000).hexdigest()

    df = whole(path)

    assert df["truncated"].dtype == "boolean" and df["sha256"].dtype == "string"
    cut = df[df["truncated"]]
    assert cut["seq"].tolist() == [17, 34, 51]
    assert (cut["sha256"] == digest).all() and (cut["size"] == 5000).all()
    assert cut["data"].str.len().tolist() == [16, 16, 16]
    assert not df.loc[~df["truncated"], "truncated"].isna().any()  # False, never NA
    assert df.loc[~df["truncated"], "sha256"].isna().all()
    loaded = quietly(load_traces, path)
    pd.testing.assert_frame_equal(loaded.drop(columns="trace"), df)
    written = quietly(read_trace, path).to_parquet(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(read_parquet(written), df)
    # Records read back (a whole read's records, and a trace built in memory) agree.
    records = quietly(read_trace, path).frames
    assert [r.get("truncated", False) for r in records].count(True) == 3


def test_a_truncated_field_that_is_not_a_boolean_reads_as_na(tmp_path: Path):
    path = tmp_path / "t.jsonl"
    with TraceWriter(path, session="s"):
        pass
    with path.open("a") as f:
        for seq, flag in enumerate([True, False, "yes", 1, None], start=1):
            f.write(line({"kind": "frame", "seq": seq, "truncated": flag, "sha256": 5}))

    df = read_trace(path).to_frame()

    assert df["truncated"].tolist() == [True, False, False, False, False]
    assert df["sha256"].tolist() == ["5"] * 5


# --- memory ---------------------------------------------------------------------------------

# The child's peak resident memory: VmHWM, which starts afresh with the new program, where
# ru_maxrss would start from the peak of this (forked) pytest process.
_MEASURE = textwrap.dedent(
    """
    import json, sys
    from netra_ws.trace import FRAME_COLUMNS, read_trace

    def peak():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    read_trace(sys.argv[2]).to_frame()  # imports, thread pools: not what is measured
    before = peak()
    columns = [c for c in FRAME_COLUMNS if c != "data"]
    df = read_trace(sys.argv[1], columns=columns).to_frame()
    print(json.dumps({"growth": peak() - before, "sizes": df["size"].tolist(),
                      "events": df["event"].tolist()}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_huge_frames_read_without_data_take_far_less_than_the_file(tmp_path: Path):
    # 11 frames of 24 MiB, each a JSON text frame as the writer records it (fields, data).
    path = tmp_path / "huge.jsonl"
    with TraceWriter(path, session="s"):
        pass
    text = '{"type":"agent_thinking","payload":{"reasoning":"' + "A" * (24 << 20) + '"}}'
    record = frame_record(1, "receive", text, t_wall_ns=1, t_mono_ns=1)
    with path.open("a", encoding="utf-8") as f:
        for seq in range(1, 12):
            f.write(line({**record, "seq": seq}))
    del text, record
    small = tmp_path / "small.jsonl"
    with TraceWriter(small, session="s") as tw:
        tw.frame("receive", "{}", t_wall_ns=1, t_mono_ns=1)
    size = path.stat().st_size

    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(small)],
        capture_output=True, text=True, check=True, timeout=60, env=os.environ.copy(),
    )  # fmt: skip
    measured = json.loads(result.stdout)
    path.unlink()

    assert measured["sizes"] == [(24 << 20) + 52] * 11
    assert measured["events"] == ["agent_thinking"] * 11
    growth_mib, size_mib = measured["growth"] / 2**20, size / 2**20
    assert growth_mib < 0.5 * size_mib, f"{growth_mib:.0f} MiB for a {size_mib:.0f} MiB file"


def test_every_column_in_order_is_a_whole_read(tmp_path: Path):
    path = write_mixed(tmp_path / "t.jsonl")

    trace = quietly(read_trace, path, columns=list(FRAME_COLUMNS))

    assert trace.partial is None
    assert len(trace.records) == len(quietly(read_trace, path).records)
