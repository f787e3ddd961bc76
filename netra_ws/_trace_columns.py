"""Trace records to Arrow columns and DataFrames: the reading half of :mod:`netra_ws.trace`.

Private; :func:`netra_ws.trace.read_trace`, :func:`netra_ws.trace.iter_trace`,
:meth:`~netra_ws.trace.Trace.to_frame` and :func:`netra_ws.trace.load_traces` are the
public entry points.

Why it is shaped this way: a trace is JSON Lines in which nearly every line is a frame
record that :class:`~netra_ws.trace.TraceWriter` wrote, starting ``{"kind":"frame",``.
Decoding a million of those one by one with :func:`json.loads` and then building columns
from dicts takes tens of seconds, so :func:`scan` has pyarrow's multithreaded JSON reader
parse the whole file with an explicit schema (the frame columns), while Python splits the
file into lines (in chunks, with numpy) to tell the frame lines from the others and read
the few other lines (the header, open/close/error records, marks) with :mod:`json`. When
the two readings do not agree row for row, or a line is damaged, the file is read again
the careful way: chunk by chunk, each chunk parsed by pyarrow, a chunk pyarrow refuses
split in halves until the refused lines are few, and those read one by one with exactly
the tolerant rules of :func:`parse_line`. So a damaged file costs time only where it is
damaged, and the result never depends on which path read a line; the tests compare both.

A frame written with its keys in another order (another tool) is first read by Python to
learn that it is a frame, then parsed by pyarrow with the others: correct, only slower.

A partial read (some columns, some rows) and :func:`iter_scan` always go the careful way,
chunk by chunk, so that what was not asked for is dropped a chunk at a time: pyarrow is
given only the asked-for columns (a frame's text left out is never built), rows outside
the range are dropped as each chunk is parsed, and the memory is a few chunks (or the
longest line, always read whole) plus the result, whatever the file's size.
"""

from __future__ import annotations

import io
import json
import mmap
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

__all__ = [
    "ARROW_TYPES",
    "Scan",
    "arrow_table",
    "iter_scan",
    "parse_line",
    "scan",
    "to_pandas",
]

# The Arrow type of each DataFrame dtype. large_string because that is what pandas'
# pyarrow-backed "string" dtype holds: no cast (and no copy of the text) on conversion.
ARROW_TYPES: Mapping[str, pa.DataType] = {
    "string": pa.large_string(),
    "Int64": pa.int64(),
    "float64": pa.float64(),
    "boolean": pa.bool_(),
    "datetime64[ns, UTC]": pa.int64(),  # nanoseconds; converted to datetimes by to_pandas
}

# How TraceWriter starts a frame line (and the same with json.dumps' default separators).
_FRAME_PREFIXES = (b'{"kind":"frame",', b'{"kind": "frame", ')
# The file is read and parsed this much at a time: large enough that pyarrow keeps every
# core busy, small enough that a chunk and its copies stay a small part of the memory.
CHUNK_BYTES = 64 << 20
# A partial read (scan() with rows or complete) keeps little of each chunk, so smaller
# chunks lower its peak (about twice a chunk, or twice the longest line) at no cost in speed.
PARTIAL_CHUNK_BYTES = 16 << 20
# pyarrow parses a chunk in blocks of this size, one block per thread at a time.
_BLOCK_BYTES = 4 << 20
# Newlines are looked for this much of a chunk at a time (a byte of scratch per byte).
_SPLIT_BYTES = 4 << 20
# A range of lines pyarrow refuses is halved until it is this short; then Python reads it.
_LEAF_LINES = 16
# Rows are dropped by slicing (no copy) rather than filtering when at most this many go.
_FEW_PIECES = 64
# What pyarrow raises on a line it cannot read: ArrowInvalid (a ValueError) for bad JSON or
# a type that does not fit the schema, UnicodeDecodeError for bytes that are not UTF-8.
_ARROW_ERRORS = (pa.ArrowException, ValueError)

_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_NAT_NS = _INT64_MIN  # the int64 value numpy reads as NaT


# --- one line, the tolerant way ------------------------------------------------------------


def parse_line(raw: bytes, *, terminated: bool) -> dict[str, Any] | str | None:
    """Read one line (without its newline): the record, why it is unreadable, or None if blank.

    ``terminated`` says whether a newline followed it: an unreadable line without one is the
    last line of a file whose writer stopped mid-line.
    """
    try:
        # Bytes, not text: json.loads decodes UTF-8 itself, and a corrupt byte then spoils
        # one line instead of the whole read.
        record = json.loads(raw)
    except (ValueError, RecursionError):  # also UnicodeDecodeError, a ValueError
        if not raw.strip():
            return None  # a blank line holds nothing to lose
        return "not JSON" if terminated else "truncated last line"
    if type(record) is not dict:
        return "not a JSON object"
    if type(record.get("kind")) is not str:
        return "no string 'kind'"
    return record


# --- records to columns (records built in memory, and the lines pyarrow refused) ------------


def arrow_table(records: list[dict[str, Any]], columns: Mapping[str, str]) -> pa.Table:
    """Columns ``columns`` (name -> DataFrame dtype) of ``records``, tolerant of odd values.

    Values of the wrong type become null instead of making anyone guess: an integer column
    takes only ints within int64, a float column ints and floats, and a string column
    writes any other value as its text (an int ``run_id`` of an imported trace).
    """
    arrays = {}
    for name, dtype in columns.items():
        values = [record.get(name) for record in records]
        if dtype == "string":
            arrays[name] = _strings(values)
        elif dtype in ("Int64", "datetime64[ns, UTC]"):
            arrays[name] = _ints(values)
        elif dtype == "float64":
            arrays[name] = _floats(values)
        elif dtype == "boolean":
            # Only JSON true and false: a "yes" or a 1 is not a flag anyone wrote.
            arrays[name] = pa.array([v if type(v) is bool else None for v in values], pa.bool_())
        else:
            raise ValueError(f"no Arrow column for dtype {dtype!r}")
    return pa.table(arrays, schema=_schema(columns))


def _strings(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        pass
    # A lone surrogate (a str with no UTF-8 form, which the writer stores as its \uXXXX
    # escape) is shown as that escape: Arrow strings must be valid UTF-8.
    values = [_utf8_safe(v) if isinstance(v, str) else v for v in values]
    try:
        return pa.array(values, type=pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        # Not only str and None: pandas writes each other value as its text.
        return pa.array(pd.array(values, dtype="string"), type=pa.large_string())


def _utf8_safe(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _ints(values: list[Any]) -> pa.Array:
    # type() is int: bools and floats are not counts of nanoseconds or bytes, and Arrow would
    # silently truncate 1.5 to 1. Out-of-range integers would overflow int64.
    clean = [v if type(v) is int and _INT64_MIN <= v <= _INT64_MAX else None for v in values]
    return pa.array(clean, type=pa.int64())


def _floats(values: list[Any]) -> pa.Array:
    return pa.array(
        np.array(
            [float(v) if type(v) is float or type(v) is int else np.nan for v in values],
            dtype="float64",
        )
    )


def _schema(columns: Mapping[str, str]) -> pa.Schema:
    return pa.schema([(name, ARROW_TYPES[dtype]) for name, dtype in columns.items()])


# --- columns to a DataFrame -----------------------------------------------------------------


def to_pandas(table: pa.Table, columns: Mapping[str, str]) -> pd.DataFrame:
    """The DataFrame of ``table`` with exactly the dtypes of ``columns``, in that order.

    Strings stay in Arrow memory when pandas' "string" dtype is pyarrow-backed (the
    default), so a million frames of text are not copied again.
    """
    data: dict[str, Any] = {}
    for name, dtype in columns.items():
        column = table.column(name)
        if dtype == "string":
            # pandas-stubs does not declare ExtensionDtype.__from_arrow__ (pandas does).
            data[name] = pd.StringDtype().__from_arrow__(column)  # type: ignore[attr-defined]
        elif dtype == "Int64":
            data[name] = pd.Int64Dtype().__from_arrow__(column)  # type: ignore[attr-defined]
        elif dtype == "float64":
            data[name] = column.to_numpy().astype("float64", copy=False)
        elif dtype == "boolean":
            data[name] = pd.BooleanDtype().__from_arrow__(column)  # type: ignore[attr-defined]
        elif dtype == "datetime64[ns, UTC]":
            ns = pc.fill_null(column, _NAT_NS).to_numpy()
            data[name] = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").array
        else:
            raise ValueError(f"no conversion to dtype {dtype!r}")
    return pd.DataFrame(data, copy=False)


# --- a whole file, fast ----------------------------------------------------------------------

# The per-chunk hook of a partial read (netra_ws.trace._normalize_missing): it gets the
# chunk's frame table and, when the table has no "data" column, a function that returns the
# data of the rows a mask selects, read from the chunk's bytes.
DataOf = Callable[[np.ndarray], pa.Array]
Complete = Callable[[pa.Table, DataOf | None], pa.Table]

# What a frame line costs when its row is not wanted: whether it is a frame, and its clock
# (for the origin of t_s, which is the first t_mono_ns of the whole file).
_MINIMAL_COLUMNS: Mapping[str, str] = {"t_mono_ns": "Int64"}


@dataclass
class Scan:
    """What :func:`scan` (or one step of :func:`iter_scan`) read from a trace file.

    ``frames`` holds the frame columns, one row per readable (and, with ``rows``, chosen)
    frame record in file order, and ``frame_lines`` the (1-based) line number of each row;
    ``others`` every other readable record with its line number; ``problems`` every
    unreadable line with the reason. All three lists are in line order. ``size`` is the
    number of bytes read: the records can be read again, as dicts, from that much of the
    file. ``frame_count`` counts every readable frame line read (chosen or not),
    ``first_frame_line`` is the line of the first one, and ``t0`` is ``(line, t_mono_ns)``
    of the first record (header excepted) with an integer ``t_mono_ns``.
    """

    frames: pa.Table
    frame_lines: np.ndarray
    others: list[tuple[int, dict[str, Any]]]
    problems: list[tuple[int, str]]
    line_count: int
    size: int
    frame_count: int
    first_frame_line: int | None
    t0: tuple[int, int] | None


def scan(
    path: Path,
    columns: Mapping[str, str],
    *,
    rows: range | None = None,
    complete: Complete | None = None,
) -> Scan:
    """Read ``path``: frame records as columns ``columns`` (name -> dtype), the rest as dicts.

    ``rows`` (a range with start >= 0 and step >= 1) keeps only the frames at those
    positions (0-based, in file order); ``complete`` is applied to each chunk's frame
    table. Either makes the read chunk by chunk, so that what is not asked for is dropped
    a chunk at a time; ``columns`` must then include ``t_mono_ns``. Raises only what
    opening and reading the file raises; deciding whether the result is a trace is the
    caller's job.
    """
    if rows is not None or complete is not None:
        reader = _Reader(columns, rows=rows, complete=complete)
        with path.open("rb") as f:
            for chunk in _chunks(f, PARTIAL_CHUNK_BYTES):
                reader.add(chunk)
                del chunk  # a huge line's buffer goes before the next one is read
        return reader.take()
    # The fast way, for a file without damage: pyarrow reads and parses the whole file on
    # every core (its reads overlap its parsing: 2.3 to 3.4 s for a million frames, against
    # 3.0 to 3.7 s when it is handed one chunk after another), while Python splits the same
    # file into lines to learn which lines are frames, read the other records, and check
    # that nothing is damaged. Any doubt (a damaged line, rows that do not match the lines,
    # a file that grew in between) and the file is read again chunk by chunk.
    lines = _Reader(columns, parse=False)
    with ThreadPoolExecutor(max_workers=1) as pool:
        parsed = pool.submit(_read_json, path, lines.schema_with_kind, 0)
        with path.open("rb") as f:
            for chunk in _chunks(f, CHUNK_BYTES):
                lines.add(chunk)
        try:
            table: pa.Table | None = parsed.result()
        except _ARROW_ERRORS:
            table = None
    result = lines.result_of(table) if table is not None else None
    if result is not None:
        return result
    del table  # not kept while the file is read again: it would double the peak memory
    reader = _Reader(columns)
    with path.open("rb") as f:
        for chunk in _chunks(f, CHUNK_BYTES):
            reader.add(chunk)
            del chunk
    return reader.take()


def iter_scan(
    path: Path,
    columns: Mapping[str, str],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    complete: Complete | None = None,
) -> Iterator[Scan]:
    """Read ``path`` a chunk at a time: one :class:`Scan` per chunk of about ``chunk_bytes``
    of whole lines (a longer line is one chunk of its own), holding that chunk's frames,
    other records and problems. ``line_count``, ``size``, ``frame_count`` and ``t0`` count
    from the start of the file. ``columns`` must include ``t_mono_ns``.
    """
    reader = _Reader(columns, complete=complete)
    with path.open("rb") as f:
        for chunk in _chunks(f, chunk_bytes):
            reader.add(chunk)
            del chunk
            yield reader.take()


def _chunks(f: io.BufferedIOBase, size: int) -> Iterator[memoryview]:
    """Consecutive pieces of the file, each ending with a newline (the last one may not).

    A piece holds at most ``size`` bytes, or one line when a line is longer. Each piece is
    valid until the next one is asked for: the buffer is reused, because fresh 64 MiB
    buffers cost more page faults than the split of the lines. Nothing built from a piece
    keeps pointing into it (pyarrow copies what it parses).

    The buffers are anonymous memory maps, not bytearrays: a map goes back to the system
    the moment it is dropped, where malloc, after a few buffers of tens of MiB, keeps the
    freed ones in its heap (RSS grew by a line's size for every huge line read).
    """
    size = max(min(size, os.fstat(f.fileno()).st_size + 1), 1)  # never bigger than the file
    buf: mmap.mmap | None = None
    filled = 0  # bytes at the start of buf that belong to the next piece
    while True:
        if buf is None:
            buf = mmap.mmap(-1, size)
        view = memoryview(buf)
        read = f.readinto(view[filled:])
        end = filled + read
        if read == 0:
            if end:
                yield view[:end]
            return
        cut = buf.rfind(b"\n", 0, end) + 1
        if cut == 0 and end == len(buf):
            # One line longer than the buffer: read it whole, into a buffer of exactly its
            # size (growing the buffer by doubling would hold up to four times the line).
            start = f.tell() - end
            length = end + _rest_of_line(f)
            del view
            buf = None  # the line is read again from its start: the buffer is not needed
            f.seek(start)
            line = mmap.mmap(-1, length)
            f.readinto(memoryview(line))
            yield memoryview(line)
            del line
            filled = 0
            continue
        if cut == 0:  # no newline yet (a short read): the line goes on in the next read
            filled = end
            continue
        yield view[:cut]
        buf.move(0, cut, end - cut)  # the start of the next piece moves to the front
        filled = end - cut


def _rest_of_line(f: io.BufferedIOBase) -> int:
    """How many bytes from the current position to the next newline (included) or the end."""
    count = 0
    while piece := f.read(1 << 20):
        newline = piece.find(b"\n")
        if newline >= 0:
            return count + newline + 1
        count += len(piece)
    return count


@dataclass
class _Reader:
    """Reads a file chunk by chunk: the careful way, or (``parse=False``) only its lines.

    Without ``parse`` it parses no frame: it notes which lines are frames (``expected``, one
    entry per line pyarrow would make a row of) so that :meth:`result_of` can take the frame
    rows of a table pyarrow parsed from the whole file, and it stops looking once a line is
    damaged (``clean`` false: the careful way must read the file). With ``rows`` it keeps
    only the frames at those positions, and parses only their clock in a chunk that holds
    none of them; ``complete`` is applied to the frames it keeps, a chunk at a time.
    """

    columns: Mapping[str, str]
    parse: bool = True
    rows: range | None = None
    complete: Complete | None = None
    clean: bool = True
    expected: list[np.ndarray] = field(default_factory=list)
    tables: list[pa.Table] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)
    others: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    line_count: int = 0
    size: int = 0
    frame_count: int = 0
    first_frame_line: int | None = None
    t0: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.schema = _schema(self.columns)
        # "kind" too, so that a chunk read whole tells frames from the other records.
        self.schema_with_kind = pa.schema([("kind", pa.large_string()), *self.schema])

    def take(self) -> Scan:
        """What was read since the last call (everything, the first time), as a Scan."""
        frames = pa.concat_tables(self.tables) if self.tables else self.schema.empty_table()
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, dtype=np.int64)
        # Ranges refused by pyarrow are read later than the chunk's other lines.
        self.others.sort(key=lambda item: item[0])
        self.problems.sort()
        result = Scan(
            frames,
            lines,
            self.others,
            self.problems,
            self.line_count,
            self.size,
            self.frame_count,
            self.first_frame_line,
            self.t0,
        )
        self.tables, self.lines, self.others, self.problems = [], [], [], []
        return result

    def result_of(self, table: pa.Table) -> Scan | None:
        """The scan, with the frame rows of ``table`` (the whole file parsed by pyarrow), or
        None when the table is not row for row what the lines say."""
        if not self.clean:
            return None
        expected = np.concatenate(self.expected) if self.expected else np.zeros(0, dtype=bool)
        frames = _frame_rows(table, expected)
        if frames is None:
            return None
        self.tables = [frames] if len(expected) else []
        lines = np.concatenate(self.lines) if self.lines else np.zeros(0, dtype=np.int64)
        self.frame_count = len(lines)
        self.first_frame_line = int(lines[0]) if len(lines) else None
        self.t0 = _first_time(frames.column("t_mono_ns"), lines, self.others)
        return self.take()

    def add(self, chunk: memoryview) -> None:
        """Read one chunk of whole lines (the file's last chunk may end without a newline)."""
        if not self.clean and not self.parse:
            return  # the careful way will read the file again: nothing more to learn
        first_line = self.line_count + 1
        self.size += len(chunk)
        chunk_lines = _Lines.split(chunk, first_line)
        self.line_count += chunk_lines.count
        n = chunk_lines.count
        others_before = len(self.others)

        fast = chunk_lines.starts_with(_FRAME_PREFIXES)
        if not chunk_lines.terminated:
            fast[-1] = False  # the line a crash cut short: Python says how it is damaged
        is_frame = fast.copy()
        is_blank = np.zeros(n, dtype=bool)
        clean = True
        for i, raw in chunk_lines.take(np.flatnonzero(~fast)):
            result = parse_line(raw, terminated=chunk_lines.terminated or i < n - 1)
            if result is None:
                is_blank[i] = True
            elif isinstance(result, str):
                self.problems.append((first_line + i, result))
                clean = False
            elif result["kind"] == "frame":
                is_frame[i] = True
            else:
                self.others.append((first_line + i, result))

        frame_index = np.flatnonzero(is_frame)
        if not self.parse:
            self.clean = clean and _is_utf8(pa.py_buffer(chunk))
            self.expected.append(is_frame[~is_blank])
            self.lines.append(frame_index + first_line)
            return
        # A chunk none of whose frames can be a chosen row: only their clocks are read.
        wanted = self.rows is None or _overlaps(self.rows, self.frame_count, len(frame_index))
        columns = self.columns if wanted else _MINIMAL_COLUMNS
        table = None
        if clean:
            table = _read_whole(chunk, chunk_lines, columns, is_frame, is_blank)
        if table is None:  # the careful path: parse only the frame lines
            table, frame_index = _read_frames(
                chunk, chunk_lines, frame_index, columns, self.problems, self.others
            )
        self._keep(table, frame_index, self.others[others_before:], wanted, chunk_lines)
        # What parsing the chunk took goes back to the system now, not when the allocator
        # decides: otherwise a chunk's scratch memory stays resident beside the next one's.
        pa.default_memory_pool().release_unused()

    def _keep(
        self,
        table: pa.Table,
        index: np.ndarray,
        new_others: list[tuple[int, dict[str, Any]]],
        wanted: bool,
        chunk_lines: _Lines,
    ) -> None:
        """Count the chunk's frames, note the clock origin, keep the chosen rows."""
        lines = index.astype(np.int64) + chunk_lines.first_line
        if self.first_frame_line is None and len(lines):
            self.first_frame_line = int(lines[0])
        if self.t0 is None:
            self.t0 = _first_time(table.column("t_mono_ns"), lines, new_others)
        positions = np.arange(self.frame_count, self.frame_count + table.num_rows)
        self.frame_count += table.num_rows
        if not wanted:
            return
        if self.rows is not None:
            keep = _in_range(positions, self.rows)
            table, index, lines = _rows(table, keep), index[keep], lines[keep]
        if self.complete is not None and table.num_rows:

            def data_of(mask: np.ndarray) -> pa.Array:
                return _data_of(chunk_lines, index[mask])

            table = self.complete(table, None if "data" in self.columns else data_of)
        if table.num_rows:
            self.tables.append(table)
            self.lines.append(lines)


def _overlaps(rows: range, first: int, count: int) -> bool:
    """Whether ``rows`` holds a position in ``[first, first + count)``."""
    if count == 0 or first >= rows.stop:
        return False
    if first <= rows.start:
        return rows.start < first + count
    nxt = rows.start + -(-(first - rows.start) // rows.step) * rows.step
    return nxt < min(rows.stop, first + count)


def _in_range(positions: np.ndarray, rows: range) -> np.ndarray:
    """Which of ``positions`` are in ``rows``."""
    inside: np.ndarray = (positions >= rows.start) & (positions < rows.stop)
    inside &= (positions - rows.start) % rows.step == 0
    return inside


def _first_time(
    t_mono_ns: pa.ChunkedArray | pa.Array,
    frame_lines: np.ndarray,
    others: list[tuple[int, dict[str, Any]]],
) -> tuple[int, int] | None:
    """``(line, t_mono_ns)`` of the first record with an integer t_mono_ns, or None.

    ``others`` need not be in line order; the header (kind "meta") does not count.
    """
    best: tuple[int, int] | None = None
    for line, record in others:
        value = record.get("t_mono_ns")
        if type(value) is int and record["kind"] != "meta" and (best is None or line < best[0]):
            best = (line, value)
    if t_mono_ns.null_count < len(t_mono_ns):
        row = int(np.argmax(t_mono_ns.is_valid().to_numpy(zero_copy_only=False)))
        line = int(frame_lines[row])
        if best is None or line < best[0]:
            best = (line, t_mono_ns[row].as_py())
    return best


def _read_whole(
    chunk: memoryview,
    chunk_lines: _Lines,
    columns: Mapping[str, str],
    is_frame: np.ndarray,
    is_blank: np.ndarray,
) -> pa.Table | None:
    """The fast path: every line is readable, so pyarrow parses the chunk as it is.

    The frame rows, or None when pyarrow refuses the chunk or its rows are not the lines.
    """
    try:
        table = _read_json(chunk, _schema_with_kind(columns), chunk_lines.longest)
    except _ARROW_ERRORS:
        return None
    return _frame_rows(table, is_frame[~is_blank])


def _read_frames(
    chunk: memoryview,
    chunk_lines: _Lines,
    index: np.ndarray,
    columns: Mapping[str, str],
    problems: list[tuple[int, str]],
    others: list[tuple[int, dict[str, Any]]],
) -> tuple[pa.Table, np.ndarray]:
    """The careful path: parse only the frame lines at ``index``, halving ranges pyarrow
    refuses; the lines Python then finds unreadable, or not frames, go to ``problems`` and
    ``others`` (line numbers within the chunk, plus one). Returns the frame rows and the
    index of the lines they come from."""
    tables: list[pa.Table] = []
    kept: list[np.ndarray] = []
    _parse_frames(chunk, chunk_lines, index, columns, tables, kept, problems, others)
    if not tables:
        return _schema(columns).empty_table(), np.zeros(0, dtype=np.int64)
    return pa.concat_tables(tables), np.concatenate(kept)


def _parse_frames(
    chunk: memoryview,
    chunk_lines: _Lines,
    index: np.ndarray,
    columns: Mapping[str, str],
    tables: list[pa.Table],
    kept: list[np.ndarray],
    problems: list[tuple[int, str]],
    others: list[tuple[int, dict[str, Any]]],
) -> None:
    if len(index) == 0:
        return
    schema = _schema_with_kind(columns)
    try:
        table = _read_json(chunk_lines.gather(chunk, index), schema, chunk_lines.longest)
    except _ARROW_ERRORS:
        table = None
    if table is not None and table.num_rows == len(index):
        kinds = table.column("kind")
        if pc.all(pc.fill_null(pc.equal(kinds, "frame"), False)).as_py():
            tables.append(table.drop_columns(["kind"]))
            kept.append(index)
            return
    if len(index) > _LEAF_LINES:
        middle = len(index) // 2
        for half in (index[:middle], index[middle:]):
            _parse_frames(chunk, chunk_lines, half, columns, tables, kept, problems, others)
        return
    # A few lines pyarrow refuses: Python reads them with the tolerant rules.
    first_line = chunk_lines.first_line
    records: list[dict[str, Any]] = []
    frames: list[int] = []
    for i, raw in chunk_lines.take(index):
        result = parse_line(raw, terminated=chunk_lines.terminated or i < chunk_lines.count - 1)
        if isinstance(result, str):
            problems.append((first_line + i, result))
        elif result is None:
            continue
        elif result["kind"] == "frame":
            records.append(result)
            frames.append(i)
        else:  # a repeated "kind" key: the last one wins, as in json.loads
            others.append((first_line + i, result))
    if records:
        tables.append(arrow_table(records, columns))
        kept.append(np.array(frames, dtype=np.int64))


def _data_of(chunk_lines: _Lines, index: np.ndarray) -> pa.Array:
    """The ``data`` of the frame lines at ``index`` of a chunk (already read once as frames)."""
    table, kept = _read_frames(chunk_lines.chunk, chunk_lines, index, {"data": "string"}, [], [])
    if not np.array_equal(kept, index):  # the same bytes were read as frames a moment ago
        raise AssertionError("a frame line was not a frame when read again")
    return table.column("data").combine_chunks()


def _schema_with_kind(columns: Mapping[str, str]) -> pa.Schema:
    return pa.schema([("kind", pa.large_string()), *_schema(columns)])


def _frame_rows(table: pa.Table, expected: np.ndarray) -> pa.Table | None:
    """The frame rows of ``table`` (parsed with a "kind" column), or None when its rows are
    not the lines Python saw: ``expected`` says, per non-blank line, whether it is a frame.

    pyarrow skips blank lines; every other line must be exactly one row of the same kind.
    (pyarrow refuses the lines that would break this, such as two objects on one line or a
    repeated "kind"; checking costs nothing.)
    """
    if table.num_rows != len(expected):
        return None
    seen = pc.fill_null(pc.equal(table.column("kind"), "frame"), False).to_numpy(
        zero_copy_only=False
    )
    if not np.array_equal(seen, expected):
        return None
    return _rows(table.drop_columns(["kind"]), expected)


def _rows(table: pa.Table, keep: np.ndarray) -> pa.Table:
    """The rows of ``table`` where ``keep`` is true, without copying when few are dropped."""
    if keep.all():
        return table
    dropped = np.flatnonzero(~keep)
    if len(dropped) * 100 > len(keep) and len(dropped) > _FEW_PIECES:
        return table.filter(pa.array(keep))
    # A few header, mark and close rows among many frames (or beside a few huge ones):
    # slices share the parsed columns, where filter() would copy them all.
    pieces = []
    start = 0
    for row in dropped.tolist():
        if row > start:
            pieces.append(table.slice(start, row - start))
        start = row + 1
    if start < len(keep):
        pieces.append(table.slice(start))
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


def _read_json(
    data: Path | memoryview | bytes | pa.Buffer, schema: pa.Schema, longest: int
) -> pa.Table:
    """Parse JSON Lines with pyarrow; raises one of _ARROW_ERRORS for anything it refuses.

    pyarrow does not check that text is UTF-8 (and never looks at the fields it ignores),
    where json.loads refuses the whole line: bytes in memory are checked here, a file's
    bytes by whoever reads its lines (see :func:`scan`).
    """
    # A block must hold the longest line (pyarrow refuses an object across two blocks).
    block = max(_BLOCK_BYTES, 2 * longest + 2)
    if isinstance(data, Path):
        source: Any = str(data)
        threads = True
    else:
        buffer = data if isinstance(data, pa.Buffer) else pa.py_buffer(data)
        if not _is_utf8(buffer):
            raise ValueError("not UTF-8")
        source = pa.BufferReader(buffer)
        # One block (huge lines) is parsed by one thread anyway; parsed in the pool's
        # threads, each huge line left its parser's scratch in another malloc arena, and
        # the resident memory grew by a line's size for each of the first few.
        threads = buffer.size > block
    return pa_json.read_json(
        source,
        read_options=pa_json.ReadOptions(block_size=block, use_threads=threads),
        parse_options=pa_json.ParseOptions(
            explicit_schema=schema, unexpected_field_behavior="ignore"
        ),
    )


def _is_utf8(buffer: pa.Buffer) -> bool:
    try:
        _one_value(buffer).cast(pa.large_string())  # the cast validates
    except _ARROW_ERRORS:
        return False
    return True


def _one_value(buffer: pa.Buffer) -> pa.LargeBinaryArray:
    """``buffer`` as an Arrow array of one binary value, without copying it."""
    offsets = pa.py_buffer(np.array([0, buffer.size], dtype=np.int64))
    return pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])


@dataclass
class _Lines:
    """The lines of one chunk, found by numpy (no copy of the chunk, no object per line)."""

    chunk: memoryview
    starts: np.ndarray  # where each line starts in the chunk
    ends: np.ndarray  # where it ends (its newline, or the end of the chunk)
    terminated: bool  # whether the chunk's last line has its newline
    first_line: int  # the line number (1-based, in the file) of the chunk's first line

    @classmethod
    def split(cls, chunk: memoryview, first_line: int = 1) -> _Lines:
        raw = np.frombuffer(chunk, dtype=np.uint8)
        # In pieces: a comparison of the whole chunk at once would take a byte per byte.
        newlines = [
            np.flatnonzero(raw[at : at + _SPLIT_BYTES] == 0x0A) + at
            for at in range(0, len(raw), _SPLIT_BYTES)
        ]
        ends = np.concatenate([*newlines, np.array([len(raw)], dtype=np.int64)])
        starts = np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1] + 1])
        terminated = len(raw) > 0 and raw[-1] == 0x0A
        if terminated:  # no line after the last newline
            starts, ends = starts[:-1], ends[:-1]
        return cls(chunk, starts, ends, terminated, first_line)

    @property
    def count(self) -> int:
        return len(self.starts)

    @property
    def longest(self) -> int:
        return int((self.ends - self.starts).max()) if self.count else 0

    def starts_with(self, prefixes: tuple[bytes, ...]) -> np.ndarray:
        """A boolean array: which lines start with one of ``prefixes``."""
        # The lines as an Arrow array over the chunk itself (each value runs to the next
        # line's start, its newline included, which no prefix holds): no copy.
        offsets = np.append(self.starts, self.ends[-1] if self.count else 0)
        values = pa.Array.from_buffers(
            pa.large_binary(),
            self.count,
            [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(self.chunk)],
        )
        hits = np.zeros(self.count, dtype=bool)
        for prefix in prefixes:
            hits |= pc.starts_with(values, pattern=prefix).to_numpy(zero_copy_only=False)
        return hits

    def take(self, index: np.ndarray) -> Iterator[tuple[int, bytes]]:
        """(index, text) of the lines at ``index``."""
        chunk = self.chunk
        return (
            (i, bytes(chunk[start:end]))
            for i, start, end in zip(
                index.tolist(), self.starts[index].tolist(), self.ends[index].tolist(), strict=True
            )
        )

    def gather(self, chunk: memoryview, index: np.ndarray) -> pa.Buffer | bytes:
        """The bytes of the lines at ``index`` (sorted), newlines included, as one buffer."""
        # Consecutive lines are one slice of the chunk; a single run is not even copied.
        breaks = np.flatnonzero(np.diff(index) != 1) + 1
        runs = np.split(index, breaks)
        slices = []
        for run in runs:
            start = int(self.starts[run[0]])
            end = min(int(self.ends[run[-1]]) + 1, len(chunk))  # with the newline, if any
            slices.append(chunk[start:end])
        if len(slices) == 1:
            return pa.py_buffer(slices[0])
        return b"".join(slices)
