"""The trace: one JSON Lines format for every capture, its writer, its reader, its DataFrame.

A trace file holds one JSON object per line, each with a ``kind``; the first is the header::

    {"kind":"meta","format":"netra-ws-trace/1","session":…,"target":<URL, secrets removed>,
     "started_at":<ISO 8601 UTC>,"labels":{…},"writer":"netra_ws <version>"}
    {"kind":"open"|"close"|"error","t_wall_ns":…,"t_mono_ns":…,…}   handshake, close, exception
    {"kind":"frame","seq":1,"dir":"send"|"receive","t_wall_ns":…,"t_mono_ns":…,
     "opcode":"text"|"binary","size":<bytes>,<normalized fields or parse_error>,"data":…}
    {"kind":"mark","label":…,"t_wall_ns":…,"t_mono_ns":…,…}        what a probe was doing

``t_wall_ns`` is :func:`time.time_ns` (for humans and for joining with server logs);
``t_mono_ns`` is :func:`time.perf_counter_ns` (for gaps and durations). A frame's ``data`` is
the text exactly as received (base64 for binary frames): a normalizer bug never loses evidence.

Typical use::

    with TraceWriter("data/run.jsonl", target=url) as tw:     # the client does this
        tw.frame("receive", text, t_wall_ns=wall, t_mono_ns=mono)
    trace = read_trace("data/run.jsonl")                       # tolerant of a crashed writer
    df = trace.to_frame()                                      # one row per frame
    df = load_traces("data/")                                  # every trace of a directory

The module is pure: it reads and writes files, never the network.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import FrameParseError, TraceFormatError
from .events import normalize
from .redact import redact_headers, redact_text, redact_url

__all__ = [
    "FORMAT",
    "FRAME_COLUMNS",
    "MARK_COLUMNS",
    "Trace",
    "TraceWarning",
    "TraceWriter",
    "frame_record",
    "load_traces",
    "read_parquet",
    "read_trace",
]

FORMAT = "netra-ws-trace/1"
# Formats this reader understands; a future "/2" must be added here deliberately.
_KNOWN_FORMATS = frozenset({FORMAT})

_DIRECTIONS = ("send", "receive")
# Kinds written through TraceWriter.record(); frames and marks have their own methods.
_EVENT_KINDS = ("open", "close", "error")
_KNOWN_KINDS = frozenset({"meta", "frame", "mark", *_EVENT_KINDS})

# The DataFrame view of a trace: column -> dtype, in column order. Strings are pandas'
# nullable "string" (NA, never NaN or None); integers are nullable "Int64" so a missing value
# does not turn nanoseconds into lossy floats.
FRAME_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "session": "string",
        "seq": "Int64",
        "dir": "string",
        "t_wall_ns": "Int64",
        "t_mono_ns": "Int64",
        "t_wall": "datetime64[ns, UTC]",
        "t_s": "float64",
        "opcode": "string",
        "size": "Int64",
        "event": "string",
        "type": "string",
        "envelope": "string",
        "run_id": "string",
        "thread_id": "string",
        "user_id": "string",
        "agent_name": "string",
        "tool_name": "string",
        "error_code": "string",
        "server_ts": "float64",
        "parse_error": "string",
        "data": "string",
    }
)

# The DataFrame view of a trace's marks (Trace.marks_frame()).
MARK_COLUMNS: Mapping[str, str] = MappingProxyType(
    {
        "session": "string",
        "label": "string",
        "t_wall_ns": "Int64",
        "t_mono_ns": "Int64",
        "t_s": "float64",
    }
)

# The extra leading column of load_traces(): the file each row came from.
_TRACE_COLUMN = "trace"


class TraceWarning(UserWarning):
    """A trace was read, but not all of it: lines were skipped or the header is missing.

    The message says which file and which lines. The data that could be read is returned;
    decide whether it is enough, or re-capture.
    """


# --- writing -------------------------------------------------------------------------------


def frame_record(
    seq: int,
    direction: str,
    data: str | bytes,
    *,
    t_wall_ns: int,
    t_mono_ns: int,
) -> dict[str, Any]:
    """Build the trace record of one WebSocket frame (pure: nothing is written).

    ``data`` is the frame as the client handed it over: ``str`` for a text frame, ``bytes``
    for a binary one. The raw data is always kept (base64 for binary). A text frame that is a
    JSON object also gets every field of :meth:`netra_ws.events.Event.fields`; any other
    frame gets ``parse_error`` saying why it was not parsed. Normally you call
    :meth:`TraceWriter.frame`, which numbers and writes the record for you.
    """
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction must be 'send' or 'receive', not {direction!r}")
    record: dict[str, Any] = {
        "kind": "frame",
        "seq": seq,
        "dir": direction,
        "t_wall_ns": t_wall_ns,
        "t_mono_ns": t_mono_ns,
    }
    if isinstance(data, str):
        record["opcode"] = "text"
        # surrogatepass: a str with a lone surrogate has no UTF-8 form, but recording it must
        # not crash; count the bytes it would take.
        record["size"] = len(data.encode("utf-8", "surrogatepass"))
        record.update(_parse_text(data))
        record["data"] = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        record["opcode"] = "binary"
        record["size"] = len(raw)
        record["parse_error"] = f"binary frame ({len(raw)} bytes), not parsed"
        record["data"] = base64.b64encode(raw).decode("ascii")
    else:
        raise TypeError(f"frame data must be str (text) or bytes (binary), not {type(data)}")
    return record


def _parse_text(data: str) -> dict[str, Any]:
    try:
        return dict(normalize(data).fields())
    except FrameParseError as exc:
        return {"parse_error": exc.reason}
    except Exception as exc:
        # A bug in the normalizer must not stop the recording nor lose the frame: keep the raw
        # text and say what went wrong, so the bug is visible in the trace itself.
        return {"parse_error": f"normalizer failed: {type(exc).__name__}: {exc}"}


class TraceWriter:
    """Append a trace to a new JSON Lines file, one flushed line per record.

    ``TraceWriter(path, target=url, session=…, labels={…})`` creates the parent directories
    and the file (never overwriting one: FileExistsError), and writes the ``meta`` header.
    Then call :meth:`frame` for every frame in both directions, :meth:`record` for the
    ``open``/``close``/``error`` evidence and :meth:`mark` for what a probe is doing; close
    it (or use ``with``) and load the file with :func:`read_trace`.

    Every line is flushed as it is written, so a crash loses at most the line being written.
    The records are also kept in memory (:attr:`meta`, :attr:`records`, :meth:`to_trace`);
    with ``path=None`` nothing is written to disk at all (a throwaway session). Safe to share
    between threads (a notebook thread marking while the event-loop thread records frames):
    lines never interleave and ``seq`` never repeats.

    This is where secrets stop: ``target`` loses its query string and credentials, and the
    fields of ``open``/``close``/``error``/``mark`` records (and the labels) are redacted with
    :mod:`netra_ws.redact` (header mappings under a ``headers`` or ``*_headers`` key, URLs
    under ``url``/``*_url``, JWT-like text anywhere). Frame data is never altered.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        target: str = "",
        session: str | None = None,
        labels: Mapping[str, Any] | None = None,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._file = _create(self._path) if self._path is not None else None
        self._session = session or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._records: list[dict[str, Any]] = []
        self._meta = {
            "kind": "meta",
            "format": FORMAT,
            "session": self._session,
            "target": redact_url(target),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "labels": _scrub("labels", dict(labels or {})),
            "writer": f"netra_ws {_version()}",
        }
        with self._lock:
            self._append(self._meta)

    @property
    def path(self) -> Path | None:
        """The trace file (None when recording in memory only); load it with :func:`read_trace`."""
        return self._path

    @property
    def session(self) -> str:
        """The session id written in the header (the one given, or a generated short hex)."""
        return self._session

    @property
    def meta(self) -> dict[str, Any]:
        """A copy of the ``meta`` header record, as written."""
        return dict(self._meta)

    @property
    def records(self) -> list[dict[str, Any]]:
        """A copy of every record written so far after the header, in order."""
        with self._lock:
            return list(self._records)

    def to_trace(self) -> Trace:
        """The records so far as a :class:`Trace`, without reading the file back."""
        return Trace(self._meta, self.records, path=self._path)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called; nothing more can be written."""
        return self._closed

    def frame(
        self, direction: str, data: str | bytes, *, t_wall_ns: int, t_mono_ns: int
    ) -> dict[str, Any]:
        """Write one frame (``direction`` "send" or "receive") and return its record.

        Take ``t_wall_ns = time.time_ns()`` and ``t_mono_ns = time.perf_counter_ns()`` when
        the frame is handed over, before any parsing. ``seq`` starts at 1 and counts both
        directions together, so it gives the order in which the client saw the frames.
        """
        with self._lock:
            self._check_open()
            record = frame_record(
                self._seq + 1, direction, data, t_wall_ns=t_wall_ns, t_mono_ns=t_mono_ns
            )
            self._append(record)
            self._seq += 1
        return record

    def record(
        self,
        kind: str,
        *,
        t_wall_ns: int | None = None,
        t_mono_ns: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Write an ``open``, ``close`` or ``error`` record with any evidence fields.

        For example ``record("open", status=101, subprotocol="jwt-auth", headers={…})``,
        ``record("close", code=1008, reason="Authentication failed")`` or
        ``record("error", error=repr(exc))``. Timestamps default to now. Fields are redacted
        (see the class docstring); values JSON cannot hold are written as ``str(value)``.
        """
        if kind not in _EVENT_KINDS:
            raise ValueError(
                f"record() writes 'open', 'close' or 'error' records, not {kind!r}; "
                "use frame() for frames and mark() for marks"
            )
        record = {"kind": kind, **_timestamps(t_wall_ns, t_mono_ns), **_scrub_fields(fields)}
        return self._write(record)

    def mark(
        self,
        label: str,
        *,
        t_wall_ns: int | None = None,
        t_mono_ns: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Write a mark: what the probe is doing now, e.g. ``mark("quiet window begins", s=5)``.

        Marks show up on timelines (:meth:`Trace.marks_frame`). Timestamps default to now.
        """
        if "kind" in fields:
            raise ValueError("a mark cannot carry a field named 'kind'; rename it")
        record = {
            "kind": "mark",
            "label": _scrub("label", label),
            **_timestamps(t_wall_ns, t_mono_ns),
            **_scrub_fields(fields),
        }
        return self._write(record)

    def close(self) -> None:
        """Close the file. Calling it again does nothing."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._file is not None:
                    self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        where = str(self._path) if self._path is not None else None
        return f"TraceWriter({where!r}, session={self._session!r}, frames={self._seq}{state})"

    def _write(self, record: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._check_open()
            self._append(record)
        return record

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(
                f"the TraceWriter for {self._path or 'memory'} is closed; "
                "start a new TraceWriter with a new file name to record more"
            )

    def _append(self, record: dict[str, Any]) -> None:
        # Called with the lock held. One write call per line, then flush: a crash can only
        # cut the last line, which the reader skips.
        if self._file is not None:
            line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
            self._file.write(line + "\n")
            self._file.flush()
        if record["kind"] != "meta":
            self._records.append(record)


def _create(path: Path) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # "x": a trace is raw evidence; an earlier capture must never be overwritten.
        # backslashreplace: a lone surrogate (no UTF-8 form) becomes a \uXXXX escape, which
        # is still valid JSON, instead of an exception in the middle of a capture.
        return open(path, "x", encoding="utf-8", errors="backslashreplace", newline="\n")
    except FileExistsError:
        raise FileExistsError(
            f"{path} already exists and a trace is never overwritten: "
            "pick a new file name (for example with a timestamp in it)"
        ) from None


def _timestamps(t_wall_ns: int | None, t_mono_ns: int | None) -> dict[str, int]:
    return {
        "t_wall_ns": time.time_ns() if t_wall_ns is None else t_wall_ns,
        "t_mono_ns": time.perf_counter_ns() if t_mono_ns is None else t_mono_ns,
    }


def _version() -> str:
    try:
        return metadata.version("netra-ws")
    except metadata.PackageNotFoundError:
        return "dev"  # running from a checkout that was never installed


def _scrub_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _scrub(key, value) for key, value in fields.items()}


def _scrub(key: str, value: Any) -> Any:
    """Return ``value`` ready for JSON and with credentials removed; ``key`` names it."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return redact_url(value) if _is_url_key(key) else redact_text(value)
    if _is_headers_key(key):
        pairs = _header_pairs(value)
        if pairs is not None:
            return redact_headers(pairs)
    if isinstance(value, Mapping):
        return {str(k): _scrub(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_scrub(key, item) for item in value]
    # Exceptions, datetimes, Paths…: their text is the evidence, and it may hold a token.
    return redact_text(str(value))


def _header_pairs(value: Any) -> list[tuple[str, str]] | None:
    """Return headers as (name, value) pairs, or None when ``value`` is not headers."""
    # websockets' Headers is a Mapping whose items() fails on a repeated name (Set-Cookie);
    # its raw_items() gives every pair.
    raw_items = getattr(value, "raw_items", None)
    if callable(raw_items):
        items = list(raw_items())
    elif isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        return None
    if not all(isinstance(item, (list, tuple)) and len(item) == 2 for item in items):
        return None
    return [(str(name), str(val)) for name, val in items]


def _is_headers_key(key: str) -> bool:
    return key == "headers" or key.endswith("_headers")


def _is_url_key(key: str) -> bool:
    return key in ("url", "target") or key.endswith("_url")


# --- reading -------------------------------------------------------------------------------


class Trace:
    """A loaded trace: the ``meta`` header and every other record, in file order.

    Get one from :func:`read_trace`. ``records`` holds every record after the header
    (frames, open/close/error, marks, and kinds this version does not know); ``frames`` and
    ``marks`` filter it. For analysis call :meth:`to_frame` (one row per frame, dtypes of
    :data:`FRAME_COLUMNS`) or :meth:`marks_frame`; :meth:`to_parquet` saves the frame table.
    ``skipped_lines`` counts the lines the reader could not use (a :class:`TraceWarning`
    said which).
    """

    def __init__(
        self,
        meta: Mapping[str, Any],
        records: Iterable[dict[str, Any]],
        *,
        path: str | os.PathLike[str] | None = None,
        skipped_lines: int = 0,
    ) -> None:
        self.path: Path | None = Path(path) if path is not None else None
        self.meta: dict[str, Any] = dict(meta)
        self.records: list[dict[str, Any]] = list(records)
        self.skipped_lines: int = skipped_lines

    @property
    def frames(self) -> list[dict[str, Any]]:
        """The frame records, in file (= ``seq``) order."""
        return [r for r in self.records if r.get("kind") == "frame"]

    @property
    def marks(self) -> list[dict[str, Any]]:
        """The mark records, in file order."""
        return [r for r in self.records if r.get("kind") == "mark"]

    @property
    def session(self) -> str | None:
        """The session id of the header, or None for a trace without one."""
        return self.meta.get("session")

    @property
    def target(self) -> str | None:
        """The URL the session connected to (secrets removed), or None."""
        return self.meta.get("target")

    def to_frame(self) -> pd.DataFrame:
        """One row per frame, with the columns and dtypes of :data:`FRAME_COLUMNS`.

        ``t_wall`` is ``t_wall_ns`` as a UTC datetime; ``t_s`` is seconds since the first
        record of the trace that has a ``t_mono_ns`` (so the open record, or the first frame).
        Fields a record lacks (a trace imported from elsewhere) are NA. Pass the result to
        the :mod:`netra_ws.analysis` functions, or filter it with ordinary pandas.
        """
        return _table(self.frames, FRAME_COLUMNS, session=self.session, t0_ns=self._t0_ns())

    def marks_frame(self) -> pd.DataFrame:
        """One row per mark, with the columns and dtypes of :data:`MARK_COLUMNS`.

        ``t_s`` uses the same origin as :meth:`to_frame`, so marks and frames share one axis.
        """
        return _table(self.marks, MARK_COLUMNS, session=self.session, t0_ns=self._t0_ns())

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_frame` to a Parquet file (replacing it) and return its path.

        Read it back with :func:`read_parquet`, which restores the exact dtypes.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(out, engine="pyarrow", index=False)
        return out

    def __repr__(self) -> str:
        where = self.path.name if self.path is not None else "in memory"
        return (
            f"<Trace {where} session={self.session!r} frames={len(self.frames)} "
            f"records={len(self.records)} skipped_lines={self.skipped_lines}>"
        )

    def _t0_ns(self) -> int | None:
        for record in self.records:
            t_mono_ns = record.get("t_mono_ns")
            if type(t_mono_ns) is int:
                return t_mono_ns
        return None


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """Load one trace file, tolerating what a crash or a careless edit leaves behind.

    Lines that are not JSON objects with a string ``kind`` (including a last line cut short
    by a crash) are skipped; one :class:`TraceWarning` says how many and which. A file
    without its ``meta`` header loads with ``meta == {}`` (and a warning). Raises
    :class:`~netra_ws.errors.TraceFormatError` when the file is empty, holds no readable
    record, or is not a netra-ws trace (an unknown ``format``, another tool's JSON Lines).
    Continue with :meth:`Trace.to_frame`.
    """
    return _read_trace(Path(path), stacklevel=3)


def _read_trace(path: Path, *, stacklevel: int) -> Trace:
    records: list[dict[str, Any]] = []
    problems: list[tuple[int, str]] = []
    line_count = 0
    loads = json.loads
    # Binary mode: json.loads decodes UTF-8 itself, and a corrupt byte then spoils one line
    # instead of raising from the file iterator.
    with path.open("rb") as f:
        for line_count, raw in enumerate(f, 1):
            try:
                record = loads(raw)
            except (ValueError, RecursionError):  # also UnicodeDecodeError, a ValueError
                if not raw.strip():
                    continue  # a blank line holds nothing to lose
                reason = "truncated last line" if not raw.endswith(b"\n") else "not JSON"
                problems.append((line_count, reason))
                continue
            if type(record) is not dict:
                problems.append((line_count, "not a JSON object"))
            elif type(record.get("kind")) is not str:
                problems.append((line_count, "no string 'kind'"))
            else:
                records.append(record)

    if not records:
        if line_count == 0:
            raise TraceFormatError(f"{path}: not a netra-ws trace: the file is empty")
        raise TraceFormatError(
            f"{path}: not a netra-ws trace: none of its {line_count} line(s) is a JSON object "
            f"with a string 'kind' ({_describe(problems)})"
        )

    meta: dict[str, Any] = {}
    if records[0]["kind"] == "meta":
        fmt = records[0].get("format")
        if fmt not in _KNOWN_FORMATS:
            raise TraceFormatError(
                f"{path}: unknown trace format {fmt!r}; this version of netra_ws reads "
                f"{FORMAT!r} (upgrade netra_ws, or check that this is a netra-ws trace)"
            )
        meta, records = records[0], records[1:]
    elif not any(record["kind"] in _KNOWN_KINDS for record in records):
        kinds = sorted({record["kind"] for record in records})[:5]
        raise TraceFormatError(
            f"{path}: not a netra-ws trace: no 'meta' header and no known record kind "
            f"(saw kinds {kinds})"
        )

    if problems:
        warnings.warn(
            TraceWarning(
                f"{path}: skipped {len(problems)} unreadable line(s) ({_describe(problems)})"
            ),
            stacklevel=stacklevel,
        )
    if not meta:
        warnings.warn(
            TraceWarning(
                f"{path}: no 'meta' header (the first record is {records[0]['kind']!r}); "
                "loaded without session, target and labels"
            ),
            stacklevel=stacklevel,
        )
    return Trace(meta, records, path=path, skipped_lines=len(problems))


def _describe(problems: list[tuple[int, str]], limit: int = 3) -> str:
    text = "; ".join(f"line {lineno}: {reason}" for lineno, reason in problems[:limit])
    if len(problems) > limit:
        text += f"; and {len(problems) - limit} more"
    return text


def load_traces(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> pd.DataFrame:
    """Load many traces into one frame table, with a leading ``trace`` column (the file name).

    ``paths`` is a file, a directory (every ``*.jsonl`` in it, sorted by name) or a list of
    either. Columns are ``trace`` then :data:`FRAME_COLUMNS`, with the same dtypes. Each file
    is read with :func:`read_trace` (same warnings and errors); a directory without any
    ``*.jsonl`` raises FileNotFoundError. Group by ``trace`` or ``session`` to compare runs.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files: list[Path] = []
    for item in map(Path, paths):
        if item.is_dir():
            found = sorted(item.glob("*.jsonl"))
            if not found:
                raise FileNotFoundError(
                    f"{item}: no *.jsonl trace in this directory; "
                    "record one first or check the path"
                )
            files.extend(found)
        else:
            files.append(item)

    tables = []
    for file in files:
        table = _read_trace(file, stacklevel=3).to_frame()
        table.insert(0, _TRACE_COLUMN, _strings([file.name] * len(table)))
        tables.append(table)
    if not tables:
        empty = Trace({}, []).to_frame()
        empty.insert(0, _TRACE_COLUMN, _strings([]))
        return empty
    return pd.concat(tables, ignore_index=True)


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :meth:`Trace.to_parquet` (or a saved :func:`load_traces` result).

    The known columns get exactly the dtypes of :data:`FRAME_COLUMNS`, so the result equals
    the DataFrame that was written.
    """
    table = pd.read_parquet(path, engine="pyarrow")
    # Parquet keeps pandas' dtypes in its metadata, but a file written by another tool (or an
    # older pandas) may not: cast to the declared dtypes rather than trust the file.
    declared = {_TRACE_COLUMN: "string", **FRAME_COLUMNS}
    return table.astype({name: declared[name] for name in table.columns if name in declared})


# --- building columns ----------------------------------------------------------------------
# One list per column, one array per list, one DataFrame at the end: fast enough for a
# million frames. Values of the wrong type become NA instead of making pandas guess.


_INT64_MIN, _INT64_MAX = int(np.iinfo(np.int64).min), int(np.iinfo(np.int64).max)
_NAT_NS = _INT64_MIN  # the int64 value numpy reads as NaT


def _table(
    records: list[dict[str, Any]],
    columns: Mapping[str, str],
    *,
    session: str | None,
    t0_ns: int | None,
) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, dtype in columns.items():
        if name == "session":
            data[name] = _strings([session] * len(records))
        elif name == "t_wall":
            data[name] = _utc_times(data["t_wall_ns"])  # t_wall_ns comes first in the columns
        elif name == "t_s":
            data[name] = _seconds_since(data["t_mono_ns"], t0_ns)
        else:
            data[name] = _BUILDERS[dtype]([record.get(name) for record in records])
    return pd.DataFrame(data)


def _strings(values: list[Any]) -> pd.api.extensions.ExtensionArray:
    try:
        arrow = pa.array(values, type=pa.string())
    except (pa.ArrowException, TypeError, ValueError):
        # Not only str and None (an int run_id in an imported trace): pandas writes each
        # other value as its text.
        return pd.array(values, dtype="string")
    # Through Arrow because it is ten times faster than pandas for a million strings;
    # StringDtype() still decides the storage, as pandas' own "string" would.
    return pd.StringDtype().__from_arrow__(arrow)


def _ints(values: list[Any]) -> pd.api.extensions.ExtensionArray:
    # type() is int: bools and floats are not counts of nanoseconds or bytes, and Arrow would
    # silently truncate 1.5 to 1. Out-of-range integers would overflow int64.
    clean = [v if type(v) is int and _INT64_MIN <= v <= _INT64_MAX else None for v in values]
    return pd.Int64Dtype().__from_arrow__(pa.array(clean, type=pa.int64()))


def _floats(values: list[Any]) -> np.ndarray:
    return np.array(
        [float(v) if type(v) is float or type(v) is int else np.nan for v in values],
        dtype="float64",
    )


_BUILDERS: dict[str, Callable[[list[Any]], Any]] = {
    "string": _strings,
    "Int64": _ints,
    "float64": _floats,
}


def _utc_times(t_wall_ns: pd.api.extensions.ExtensionArray) -> pd.api.extensions.ExtensionArray:
    ns = t_wall_ns.to_numpy(dtype="int64", na_value=_NAT_NS)
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC").array


def _seconds_since(t_mono_ns: pd.api.extensions.ExtensionArray, t0_ns: int | None) -> np.ndarray:
    if t0_ns is None:
        return np.full(len(t_mono_ns), np.nan, dtype="float64")
    # Subtract as integers first: perf_counter_ns values beyond 2**53 (about 104 days of
    # uptime) would lose nanoseconds if converted to float before the subtraction.
    return (t_mono_ns - t0_ns).to_numpy(dtype="float64", na_value=np.nan) / 1e9
