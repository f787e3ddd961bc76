"""The trace: one JSON Lines format for every capture, its writer, its reader, its DataFrame.

A trace file holds one JSON object per line, each with a ``kind``; the first is the header::

    {"kind":"meta","format":"netra-ws-trace/1","session":…,"target":<URL, secrets removed>,
     "started_at":<ISO 8601 UTC>,"labels":{…},"writer":"netra_ws <version>"}
    {"kind":"open"|"close"|"error","t_wall_ns":…,"t_mono_ns":…,…}   handshake, close, exception
    {"kind":"frame","seq":1,"dir":"send"|"receive","t_wall_ns":…,"t_mono_ns":…,
     "opcode":"text"|"binary","size":<bytes>,<normalized fields or parse_error>,"data":…}
    {"kind":"mark","label":…,"t_wall_ns":…,"t_mono_ns":…,…}        what a probe was doing

A received frame over the recording limit (:class:`~netra_ws.limits.Limits`) keeps its first
bytes in ``data`` with ``"truncated":true`` and ``"sha256"``; the writer's budget marks say
where recording stopped (``data/README.md`` has every field).

``t_wall_ns`` is :func:`time.time_ns` (for humans and for joining with server logs);
``t_mono_ns`` is :func:`time.perf_counter_ns` (for gaps and durations). A frame's ``data`` is
the text exactly as received (base64 for binary frames): a normalizer bug never loses evidence.

The normalized fields are derived from ``data``. A recorder keeping up with a burst (more
than 64 frames buffered at once, see :meth:`TraceWriter.frame`) writes frames without them,
because normalizing costs about as much as receiving; :func:`read_trace`,
:func:`load_traces` and :attr:`TraceWriter.records` add them back, identical to what
:func:`frame_record` would have written. Other readers of the JSON Lines may see a text
frame with neither the fields nor ``parse_error``: normalize its ``data`` themselves.

Typical use::

    with TraceWriter("data/run.jsonl", target=url) as tw:     # the client does this
        tw.frame("receive", text, t_wall_ns=wall, t_mono_ns=mono)
    trace = read_trace("data/run.jsonl")                       # tolerant of a crashed writer
    df = trace.to_frame()                                      # one row per frame
    df = load_traces("data/")                                  # every trace of a directory

The module is pure: it reads and writes files, never the network.
"""

from __future__ import annotations

import array
import base64
import functools
import hashlib
import html
import io
import itertools
import json
import os
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import MappingProxyType
from typing import Any, TextIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _trace_columns as _columns
from .errors import FrameParseError, TraceBudgetReached, TraceFormatError

# The fields of events.normalize(), without building the Event (three times faster); the
# name stays ``normalize`` so that tests can swap in a broken normalizer.
from .events import RUN_TRIGGER_TYPES, Event
from .events import normalize_fields as normalize
from .limits import DEFAULT_LIMITS, Limits
from .redact import redact_json

__all__ = [
    "BUDGET_MARK",
    "FORMAT",
    "FRAME_COLUMNS",
    "MARK_COLUMNS",
    "Trace",
    "TraceWarning",
    "TraceWriter",
    "complete_frame_record",
    "frame_record",
    "iter_trace",
    "load_traces",
    "read_parquet",
    "read_trace",
    "scripted",
    "write_trace",
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
        "truncated": "boolean",
        "sha256": "string",
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

# How Trace.to_parquet() writes, for a fast read_parquet() (a million frames in about half a
# second on two cores, 40 % faster than pyarrow's defaults): row groups of 128 Ki rows, which
# are decoded on every core; LZ4, the cheapest codec to decompress; and dictionaries only for
# the columns with few distinct values (for the frame text and the ids they are just work).
_PARQUET_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {
        "row_group_size": 1 << 17,
        "compression": "lz4",
        "use_dictionary": [
            "session",
            "dir",
            "opcode",
            "event",
            "type",
            "envelope",
            "user_id",
            "agent_name",
            "tool_name",
            "error_code",
            "parse_error",
        ],
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


# The mark a writer leaves when its trace budget is reached; nothing is recorded after it.
BUDGET_MARK = "recording stopped: trace budget reached"
# The writer's last mark when frames came after the budget: how many were not recorded.
_UNRECORDED_MARK = "frames not recorded after the trace budget"
# What a recorded frame costs the budget beyond its data: the other fields of its line.
_RECORD_OVERHEAD = 300


def frame_record(
    seq: int,
    direction: str,
    data: str | bytes,
    *,
    t_wall_ns: int,
    t_mono_ns: int,
    record_limit: int | None = None,
) -> dict[str, Any]:
    """Build the trace record of one WebSocket frame (pure: nothing is written).

    ``data`` is the frame as the client handed it over: ``str`` for a text frame, ``bytes``
    for a binary one. The raw data is kept (base64 for binary). A text frame that is a
    JSON object also gets every field of :meth:`netra_ws.events.Event.fields`; any other
    frame gets ``parse_error`` saying why it was not parsed. Above ``record_limit`` bytes
    only the first ``record_limit`` bytes are kept, with ``truncated`` and ``sha256`` (see
    :class:`~netra_ws.limits.Limits`). Normally you call :meth:`TraceWriter.frame`, which
    numbers and writes the record for you.

    >>> r = frame_record(1, "receive", '{"type":"x","pad":"' + "a" * 90 + '"}',
    ...                  t_wall_ns=1, t_mono_ns=2, record_limit=16)
    >>> r["size"], r["truncated"], r["data"], r["sha256"][:12]
    (111, True, '{"type":"x","pad', '13c4302ee37a')
    """
    return complete_frame_record(
        _raw_frame_record(
            seq, direction, data, t_wall_ns=t_wall_ns, t_mono_ns=t_mono_ns, limit=record_limit
        )
    )


def complete_frame_record(record: dict[str, Any]) -> dict[str, Any]:
    """Add the normalized fields to a text frame record that lacks them; return the record.

    A :class:`TraceWriter` buffering frames (``frame(..., flush=False)``) normalizes them
    when it writes them, in one go; whoever needs the fields sooner (the
    :class:`~netra_ws.client.Received` of a frame) calls this. Changes the record in place
    (key order as :func:`frame_record` makes it) and does nothing the second time.
    """
    if (
        record.get("envelope") is None
        and record.get("parse_error") is None
        and record.get("opcode") == "text"
        and isinstance(record.get("data"), str)
    ):
        data = record.pop("data")
        record.update(_parse_text(data))
        record["data"] = data  # last, as frame_record writes it
    return record


def _raw_frame_record(
    seq: int,
    direction: str,
    data: str | bytes,
    *,
    t_wall_ns: int,
    t_mono_ns: int,
    limit: int | None = None,
) -> dict[str, Any]:
    """A frame record without the normalized fields of a text frame (the cheap part)."""
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
        size = len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
        record["size"] = size
        if limit is not None and size > limit:
            head, digest = _head_and_digest(data, limit)
            # A character cut in two at the limit is left out: the kept text stays valid.
            _truncated(record, size, digest, limit, head.decode("utf-8", "ignore"), "text")
        else:
            record["data"] = data
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        record["opcode"] = "binary"
        record["size"] = len(raw)
        if limit is not None and len(raw) > limit:
            kept = base64.b64encode(raw[:limit]).decode("ascii")
            _truncated(record, len(raw), hashlib.sha256(raw).hexdigest(), limit, kept, "binary")
        else:
            record["parse_error"] = f"binary frame ({len(raw)} bytes), not parsed"
            record["data"] = base64.b64encode(raw).decode("ascii")
    else:
        raise TypeError(f"frame data must be str (text) or bytes (binary), not {type(data)}")
    return record


def _head_and_digest(text: str, limit: int) -> tuple[bytes, str]:
    """The first ``limit`` bytes of ``text`` in UTF-8 and the SHA-256 of all of it, encoded
    a piece at a time: a frame of tens of megabytes is never copied whole once more."""
    digest = hashlib.sha256()
    head = b""
    for start in range(0, len(text), _PIECE):
        piece = text[start : start + _PIECE].encode("utf-8", "surrogatepass")
        digest.update(piece)
        if len(head) < limit:
            head += piece[: limit - len(head)]
    return head, digest.hexdigest()


_PIECE = 1 << 20  # characters encoded at a time by _head_and_digest


def _truncated(
    record: dict[str, Any], size: int, digest: str, limit: int, kept: str, what: str
) -> None:
    """Fill in a frame over the recording limit: its first bytes, the SHA-256 of the whole."""
    record["truncated"] = True
    record["sha256"] = digest
    record["parse_error"] = (
        f"{what} frame of {size:,} bytes, over the recording limit of {limit:,}: "
        f"not parsed; its first {limit:,} bytes and the SHA-256 of the whole are kept"
    )
    record["data"] = kept


def _parse_text(data: str) -> dict[str, Any]:
    try:
        return normalize(data)
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

    Every line is flushed as it is written, so a crash loses at most the line being written;
    a reader of bursts may pass ``flush=False`` to :meth:`frame` and call :meth:`flush` once
    per burst instead (the :class:`~netra_ws.Session` does, within 5 ms).
    :attr:`meta`, :attr:`records` and :meth:`to_trace` give what was written; with
    ``path=None`` nothing is written to disk at all and the records are kept in memory (a
    throwaway session), with a file they are not (:attr:`records` reads them back). Safe to share
    between threads (a notebook thread marking while the event-loop thread records frames):
    lines never interleave and ``seq`` never repeats.

    This is where secrets stop: the header (``target``, labels) and every ``open``/``close``/
    ``error``/``mark`` record go through :func:`netra_ws.redact.redact_json`, nested values
    included: a key of :data:`~netra_ws.redact.SECRET_KEYS` (any case) loses its value
    whatever it looks like, headers under ``headers``/``*_headers`` lose their credential
    values, URLs under ``url``/``*_url``/``target`` their query string, and JWT-like text goes
    anywhere. Frame records never do: their data is evidence, written exactly as received.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        target: str = "",
        session: str | None = None,
        labels: Mapping[str, Any] | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self._path = Path(path) if path is not None else None
        self._limits = limits
        self._recorded = 0  # what the frames cost the trace budget so far
        self._over_budget = False
        self._unrecorded = 0  # frames refused after the budget was reached
        self._file = _create(self._path) if self._path is not None else None
        self._session = session or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        # Records kept in memory: every one without a file; with a file none (the file has
        # them: a long session must not grow in memory), and those read back from it by
        # ``records`` (up to ``_read_upto`` bytes of the file).
        self._records: list[dict[str, Any]] = []
        self._read_upto = 0
        self._written = 0  # bytes written to the file
        self._frame_offsets = array.array("q")  # where the line of frame seq N starts: [N-1]
        # Records written but not yet on disk (frame(flush=False)): encoded, and their text
        # frames normalized, when they are flushed.
        self._pending: list[dict[str, Any]] = []
        self._complete_upto = 0  # records before this index have their normalized fields
        self._meta = redact_json(
            {
                "kind": "meta",
                "format": FORMAT,
                "session": self._session,
                "target": target,
                "started_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "labels": dict(labels or {}),
                "writer": f"netra_ws {_version()}",
            }
        )
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
    def limits(self) -> Limits:
        """The limits this writer applies (:class:`~netra_ws.limits.Limits`)."""
        return self._limits

    @property
    def over_budget(self) -> bool:
        """True once the trace budget is reached: :meth:`frame` records nothing more."""
        return self._over_budget

    @property
    def meta(self) -> dict[str, Any]:
        """A copy of the ``meta`` header record, as written."""
        return dict(self._meta)

    @property
    def records(self) -> list[dict[str, Any]]:
        """A copy of every record written so far after the header, in order.

        A writer with a file keeps none in memory: they are read back from the file, and
        only the lines written since the last call are parsed (a list of those records is
        then kept, as the caller asked for them).
        """
        return self.records_since(0)

    def records_since(self, start: int) -> list[dict[str, Any]]:
        """The records after the first ``start`` (meta excluded), in order: a reader that
        follows the trace passes how many it has, and gets only the new ones."""
        with self._lock:
            if self._path is not None:
                self._read_back()
            else:
                # Frames buffered, or written during a burst, get their fields now.
                for record in itertools.islice(self._records, self._complete_upto, None):
                    if record["kind"] == "frame":
                        complete_frame_record(record)
                self._complete_upto = len(self._records)
            return self._records[start:]

    def frame_at(self, seq: int) -> dict[str, Any]:
        """The record of frame ``seq`` as written, read back from the file (a writer with a
        file keeps none in memory). Raises ``KeyError`` for a frame it did not record, and
        ``ValueError`` for a writer without a file."""
        with self._lock:
            if self._path is None:
                raise ValueError("frame_at() reads a trace file: this writer has none")
            if self._pending and not self._closed:
                self._write_pending()
            if not 0 < seq <= len(self._frame_offsets):
                raise KeyError(f"frame {seq} was not recorded (frames 1 to {self._seq})")
            offset = self._frame_offsets[seq - 1]
        with self._path.open("rb") as f:
            f.seek(offset)
            record = _columns.parse_line(f.readline().rstrip(b"\n"), terminated=True)
        if not isinstance(record, dict) or record.get("seq") != seq:
            raise TraceFormatError(f"{self._path}: frame {seq} is not where it was written")
        return complete_frame_record(record)

    def _read_back(self) -> None:
        # Called with the lock held: the lines written since the last call, parsed.
        assert self._path is not None
        if self._pending and not self._closed:
            self._write_pending()
        with self._path.open("rb") as f:
            f.seek(self._read_upto)
            data = f.read()
        end = data.rfind(b"\n") + 1  # whole lines only: a line being written is not read
        for raw in data[:end].splitlines():
            at_start = self._read_upto == 0
            self._read_upto += len(raw) + 1
            record = _columns.parse_line(raw, terminated=True)
            if isinstance(record, dict) and not (at_start and record["kind"] == "meta"):
                if record["kind"] == "frame":
                    complete_frame_record(record)
                self._records.append(record)

    def to_trace(self) -> Trace:
        """The records so far as a :class:`Trace` (read back from the file, if any)."""
        return Trace(self._meta, self.records, path=self._path)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called; nothing more can be written."""
        return self._closed

    def frame(
        self,
        direction: str,
        data: str | bytes,
        *,
        t_wall_ns: int,
        t_mono_ns: int,
        flush: bool = True,
    ) -> dict[str, Any]:
        """Write one frame (``direction`` "send" or "receive") and return its record.

        The writer's :class:`~netra_ws.limits.Limits` apply: a frame over the recording
        limit is recorded truncated; the frame that reaches the trace budget is the last one
        recorded (a :data:`BUDGET_MARK` follows it) and later calls raise
        :class:`~netra_ws.errors.TraceBudgetReached` (they are counted in a last mark).

        Take ``t_wall_ns = time.time_ns()`` and ``t_mono_ns = time.perf_counter_ns()`` when
        the frame is handed over, before any parsing. ``seq`` starts at 1 and counts both
        directions together, so it gives the order in which the client saw the frames.

        ``flush=False`` keeps the record in memory until :meth:`flush`, the next flushed
        record or :meth:`close`: one write for a burst of frames instead of one per frame.
        The returned record lacks the normalized fields until then (pass it to
        :func:`complete_frame_record` if you need them sooner), and when more than 64
        frames are flushed together they are written without them, as received: keeping
        up with a burst matters more, and :func:`read_trace` and :attr:`records` add them.
        Call :meth:`flush` soon (the :class:`~netra_ws.Session` does as soon as the stream
        pauses, and at the latest 5 ms after the oldest buffered frame): until then a
        crash loses the buffered frames.
        """
        with self._lock:
            if self._closed:
                self._check_open()  # raises
            if self._over_budget:
                self._unrecorded += 1
                raise TraceBudgetReached(
                    f"the trace budget ({self._limits.describe()}) is used up: this frame and "
                    "the ones after it are not recorded; start a new session with a larger "
                    "Limits(trace_budget=…) to record more",
                    budget=self._limits.trace_budget or 0,
                    recorded=self._recorded,
                )
            record = _raw_frame_record(
                self._seq + 1,
                direction,
                data,
                t_wall_ns=t_wall_ns,
                t_mono_ns=t_mono_ns,
                # What the client sends is the user's own: recorded whole.
                limit=self._limits.record_limit if direction == "receive" else None,
            )
            if flush:
                self._append(complete_frame_record(record))
            else:  # _append's work, inline: this runs for every frame of a burst
                self._pending.append(record)
                if self._path is None:
                    self._records.append(record)
            self._seq += 1
            budget = self._limits.trace_budget
            if budget is not None:
                self._recorded += len(record["data"]) + _RECORD_OVERHEAD
                if self._recorded >= budget:
                    self._over_budget = True
                    self._append(self._budget_mark(BUDGET_MARK, frames=self._seq))
        return record

    def _budget_mark(self, label: str, **fields: Any) -> dict[str, Any]:
        mark: dict[str, Any] = redact_json(
            {
                "kind": "mark",
                "label": label,
                **_timestamps(None, None),
                "trace_budget": self._limits.trace_budget,
                "recorded_bytes": self._recorded,
                **fields,
            }
        )
        return mark

    def flush(self) -> None:
        """Write the lines :meth:`frame` buffered (``flush=False``) and flush the file.

        Cheap when nothing is buffered; does nothing after :meth:`close`.
        """
        with self._lock:
            if self._pending and not self._closed:
                self._write_pending()

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
        record = {"kind": kind, **_timestamps(t_wall_ns, t_mono_ns), **fields}
        return self._write(redact_json(record))

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
        record = {"kind": "mark", "label": label, **_timestamps(t_wall_ns, t_mono_ns), **fields}
        return self._write(redact_json(record))

    def close(self) -> None:
        """Write what is buffered and close the file. Calling it again does nothing."""
        with self._lock:
            if not self._closed:
                if self._unrecorded:
                    self._append(
                        self._budget_mark(_UNRECORDED_MARK, frames=self._unrecorded), flush=False
                    )
                if self._pending:
                    self._write_pending()
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

    def _append(self, record: dict[str, Any], *, flush: bool = True) -> None:
        # Called with the lock held. Lines are written in order, whole, then flushed: a crash
        # can only cut the last line, which the reader skips.
        self._pending.append(record)
        if flush:
            self._write_pending()
        if record["kind"] != "meta" and self._path is None:
            self._records.append(record)

    def _write_pending(self) -> None:
        # Called with the lock held: one write call for all buffered records.
        pending, self._pending = self._pending, []
        # A burst: more frames arrived than normalizing them would keep up with (it costs
        # about as much as receiving them). They are written as received, and their fields
        # are added in memory when someone looks (records, Received) and by read_trace.
        burst = len(pending) > _NORMALIZE_AT_MOST
        if self._file is None:
            if not burst:
                for record in pending:
                    if record["kind"] == "frame":
                        complete_frame_record(record)
            return
        lines = [
            (_encode_raw_frame(record) if burst else _encode_frame(complete_frame_record(record)))
            if record["kind"] == "frame"
            else _encode_record(record)
            for record in pending
        ]
        # Where each frame's line starts (bytes, as the file encodes it): frame_at() reads
        # one back without scanning.
        offset, offsets = self._written, self._frame_offsets
        for record, line in zip(pending, lines, strict=True):
            if record["kind"] == "frame":
                offsets.append(offset)
            offset += 1 + (
                len(line) if line.isascii() else len(line.encode("utf-8", "backslashreplace"))
            )
        self._written = offset
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()


# A flush of more frames than this is a burst: they are written without normalized fields.
# 64 frames normalize in well under a millisecond.
_NORMALIZE_AT_MOST = 64

# Every record is one line of json.dumps(record, ensure_ascii=False, separators=(",", ":"),
# default=str); frame records, a few microseconds each for every frame of a burst, use the
# same C encoder made once instead of once per call (the output is identical).
_encode_record = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


def _frame_encoder() -> Callable[[dict[str, Any]], str]:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # another Python implementation: the portable encoder
        return _encode_record
    try:
        # No circular-reference check (markers=None): frame records are flat.
        chunks = make(None, str, json.encoder.encode_basestring, None, ":", ",", False, False, True)
        sample = frame_record(1, "send", '{"type":"x","timestamp":1.5}', t_wall_ns=1, t_mono_ns=2)
        if "".join(chunks(sample, 0)) != _encode_record(sample):
            return _encode_record
    except Exception:  # a changed private signature: stay correct, if slower
        return _encode_record
    return lambda record: "".join(chunks(record, 0))


_encode_frame = _frame_encoder()

# A text frame as a burst writes it (_raw_frame_record, not normalized): formatted directly,
# 1.5 times as fast as the C encoder, when it still has exactly that shape. It runs once
# for every frame of a burst: in a profile of a session read at full speed it was the
# largest cost of the kit's own (the escaping of the text, which no form avoids, a third).
_RAW_TEXT_KEYS = ("kind", "seq", "dir", "t_wall_ns", "t_mono_ns", "opcode", "size", "data")
_escape = json.encoder.encode_basestring


def _encode_raw_frame(record: dict[str, Any]) -> str:
    if (
        len(record) == 8
        and tuple(record) == _RAW_TEXT_KEYS
        and record["opcode"] == "text"
        and type(record["t_wall_ns"]) is int  # the caller's clocks: anything else is
        and type(record["t_mono_ns"]) is int  # left to the encoder (bools, floats…)
    ):
        # seq, size and dir ("send" or "receive": nothing to escape) are the writer's own.
        return (
            f'{{"kind":"frame","seq":{record["seq"]},"dir":"{record["dir"]}",'
            f'"t_wall_ns":{record["t_wall_ns"]},"t_mono_ns":{record["t_mono_ns"]},'
            f'"opcode":"text","size":{record["size"]},"data":{_escape(record["data"])}}}'
        )
    return _encode_frame(record)


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


@functools.cache  # the metadata lookup scans every installed distribution: once is enough
def _version() -> str:
    try:
        return metadata.version("netra-ws")
    except metadata.PackageNotFoundError:
        return "dev"  # running from a checkout that was never installed


def scripted(
    frames: Iterable[tuple[float, str | Mapping[str, Any]]],
    *,
    session: str = "s1",
    scale: float = 1.0,
) -> Trace:
    """A trace made in memory from ``(ms, frame)`` pairs: for examples, tests and trying the
    analysis without a server. A frame is an event type (``"agent_started"``) or a JSON object;
    run triggers (``user_message``…) count as sent, the rest as received. ``scale`` stretches
    the times (3 = the same run, three times slower). Next: ``.to_frame()``.

    >>> df = scripted([(0, "user_message"), (200, "agent_started")]).to_frame()
    >>> df[["seq", "dir", "event", "t_s"]]
       seq      dir          event  t_s
    0    1     send   user_message  0.0
    1    2  receive  agent_started  0.2
    """
    writer = TraceWriter(None, session=session)
    for ms, frame in frames:
        obj = {"type": frame} if isinstance(frame, str) else dict(frame)
        way = "send" if obj.get("type") in RUN_TRIGGER_TYPES else "receive"
        ns = round(ms * scale * 1_000_000)
        writer.frame(way, json.dumps(obj), t_wall_ns=ns, t_mono_ns=ns)
    return writer.to_trace()


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write a trace built in memory (an import, a filtered copy) to a new trace file.

    The header is ``trace.meta`` with ``kind``, ``format`` and ``writer`` set by this version,
    then every record in order, timestamps as given. Like :class:`TraceWriter`, it never
    overwrites a file (FileExistsError) and redacts the header and every record except frame
    data. Load the file back with :func:`read_trace`.
    """
    out = Path(path)
    rest = {k: v for k, v in trace.meta.items() if k not in ("kind", "format", "writer")}
    header = redact_json({"kind": "meta", "format": FORMAT, **rest})
    header["writer"] = f"netra_ws {_version()}"
    # Frames are evidence, kept as they were; everything else is redacted.
    records = [r if r.get("kind") == "frame" else redact_json(r) for r in trace.records]
    with _create(out) as f:
        for record in (header, *records):
            # The line format of TraceWriter._append.
            f.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str))
            f.write("\n")
    return out


# --- reading -------------------------------------------------------------------------------

# The frame columns a frame record stores; "session", "t_wall" and "t_s" are derived.
_DERIVED = ("session", "t_wall", "t_s")
_STORED_FRAME_COLUMNS = {k: v for k, v in FRAME_COLUMNS.items() if k not in _DERIVED}
_STORED_MARK_COLUMNS = {k: v for k, v in MARK_COLUMNS.items() if k not in _DERIVED}


class Trace:
    """A loaded trace: the ``meta`` header and every other record, in file order.

    Get one from :func:`read_trace`. ``records`` holds every record after the header
    (frames, open/close/error, marks, and kinds this version does not know); ``frames`` and
    ``marks`` filter it. For analysis call :meth:`to_frame` (one row per frame, dtypes of
    :data:`FRAME_COLUMNS`) or :meth:`marks_frame`; :meth:`to_parquet` saves the frame table.
    ``skipped_lines`` counts the lines the reader could not use (a :class:`TraceWarning`
    said which).

    A trace from :func:`read_trace` keeps its frames as columns and reads ``records`` (and
    ``frames``) from the file only when you first ask for them, because a million frame
    dicts cost seconds and gigabytes that :meth:`to_frame` does not need; the file must
    then still be there, unchanged. Edit ``records`` freely: :meth:`to_frame` and
    :meth:`marks_frame` follow the records once they have been read.

    A *partial* trace (``read_trace(path, columns=…, rows=…)``, or one chunk of
    :func:`iter_trace`) holds only those frame columns and rows, and says so in its repr
    (``partial`` tells what it holds). Its :meth:`to_frame` has just those columns and
    rows; its ``marks`` and :meth:`marks_frame` work (marks are read whole); its
    ``records``, ``frames`` and :meth:`filter` raise ValueError instead of pretending to
    be the whole trace: call :func:`read_trace` without ``columns`` and ``rows`` for them.
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
        self._records: list[dict[str, Any]] | None = list(records)
        self._scan: _Scanned | None = None
        self.skipped_lines: int = skipped_lines
        # What a partial trace holds ("columns=[…], rows=range(…)"), None for a whole one.
        self.partial: str | None = None
        self._columns: Mapping[str, str] = FRAME_COLUMNS  # what to_frame() returns

    @classmethod
    def _scanned(
        cls,
        meta: dict[str, Any],
        scanned: _Scanned,
        *,
        path: Path,
        columns: Mapping[str, str] = FRAME_COLUMNS,
        partial: str | None = None,
        skipped_lines: int | None = None,
    ) -> Trace:
        skipped = len(scanned.scan.problems) if skipped_lines is None else skipped_lines
        trace = cls(meta, [], path=path, skipped_lines=skipped)
        trace._records = None
        trace._scan = scanned
        trace._columns = columns
        trace.partial = partial
        return trace

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record after the header, in file order (read from the file on first use).

        Raises ValueError for a partial trace, which holds only some frames or columns.
        """
        if self._records is None:
            assert self._scan is not None and self.path is not None
            if self.partial is not None:
                raise ValueError(
                    f"this Trace holds only part of {self.path} ({self.partial}), so it has "
                    f"no records: call read_trace({str(self.path)!r}) without columns and "
                    "rows to read them, or use to_frame() and marks of this one"
                )
            self._records = self._scan.read_records(self.path)
        return self._records

    @records.setter
    def records(self, records: Iterable[dict[str, Any]]) -> None:
        self._records = list(records)
        self.partial, self._columns = None, FRAME_COLUMNS  # the records are the trace now

    @property
    def frames(self) -> list[dict[str, Any]]:
        """The frame records, in file (= ``seq``) order."""
        return [r for r in self.records if r.get("kind") == "frame"]

    @property
    def marks(self) -> list[dict[str, Any]]:
        """The mark records, in file order."""
        return [r for r in self._records_or_others() if r.get("kind") == "mark"]

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
        Fields a record lacks (a trace imported from elsewhere) are NA; ``truncated`` is
        False for a frame recorded whole. A partial trace has only the columns it was read
        with. Pass the result to the :mod:`netra_ws.analysis` functions, or filter it with
        ordinary pandas.
        """
        return _columns.to_pandas(self._frame_columns(), self._columns)

    def marks_frame(self) -> pd.DataFrame:
        """One row per mark, with the columns and dtypes of :data:`MARK_COLUMNS`.

        ``t_s`` uses the same origin as :meth:`to_frame`, so marks and frames share one axis.
        """
        stored = _columns.arrow_table(self.marks, _STORED_MARK_COLUMNS)
        table = _with_derived(stored, MARK_COLUMNS, session=self.session, t0_ns=self._t0_ns())
        return _columns.to_pandas(table, MARK_COLUMNS)

    def to_parquet(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_frame` to a Parquet file (replacing it) and return its path.

        Read it back with :func:`read_parquet`, which restores the exact dtypes.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.to_frame().to_parquet(out, engine="pyarrow", index=False, **_PARQUET_OPTIONS)
        return out

    def filter(
        self,
        event: str | Iterable[str] | None = None,
        dir: str | None = None,
        text: str | None = None,
        run: int | str | None = None,
    ) -> Trace:
        """A new trace holding the frames that match every criterion given, in order.

        ``event``: a name or several (``agent_thinking``, whatever the envelope); ``dir``:
        ``"send"`` or ``"receive"``; ``text``: a regular expression searched in the raw
        frame text; ``run``: a run's number (1, 2, …) or label (``"connect#2"``), as
        :func:`netra_ws.analysis.split_runs` cuts runs. The header is kept, and so are the
        ``open`` records (the handshake, and the origin of ``t_s``, so times stay those of
        the whole trace); other records (marks, close) are left out. Raises ``ValueError``
        for a bad direction, expression or run. Show it, list it
        (``netra-ws show``), or diff it (:func:`netra_ws.diff.diff_traces`).
        """
        from .browse import select_frames  # browse imports this module

        frames = select_frames(self.records, event=event, direction=dir, text=text, run=run)
        kept = {id(f) for f in frames}
        chosen = [r for r in self.records if id(r) in kept or r.get("kind") == "open"]
        return Trace(self.meta, chosen, path=self.path)

    def _repr_html_(self) -> str:
        if self._records is None and self.partial is not None:
            # No records to list: the repr says what it holds and to_frame() shows it.
            return f"<pre>{html.escape(repr(self))}</pre>"
        from .browse import html_listing

        return html_listing(self.records, title=repr(self))

    def __repr__(self) -> str:
        where = self.path.name if self.path is not None else "in memory"
        if self._records is None:
            assert self._scan is not None
            frames = self._scan.frames.num_rows
            records = frames + len(self._scan.others)
        else:
            frames, records = len(self.frames), len(self._records)
        partial = f" partial: {self.partial}" if self.partial is not None else ""
        return (
            f"<Trace {where} session={self.session!r} frames={frames} "
            f"records={records} skipped_lines={self.skipped_lines}{partial}>"
        )

    def _frame_columns(self) -> pa.Table:
        """The frame table in Arrow, in the order of the columns asked for, derived included."""
        if self._records is None:
            assert self._scan is not None
            stored = self._scan.frames
        else:
            stored = _normalize_missing(_columns.arrow_table(self.frames, _STORED_FRAME_COLUMNS))
        return _with_derived(stored, self._columns, session=self.session, t0_ns=self._t0_ns())

    def _records_or_others(self) -> list[dict[str, Any]]:
        # Marks are never frames: the scan's other records hold them all.
        if self._records is None:
            assert self._scan is not None
            return self._scan.others
        return self._records

    def _t0_ns(self) -> int | None:
        if self._records is None:
            assert self._scan is not None
            t0 = self._scan.scan.t0
            return t0[1] if t0 is not None else None
        for record in self._records:
            t_mono_ns = record.get("t_mono_ns")
            if type(t_mono_ns) is int:
                return t_mono_ns
        return None


@dataclass(frozen=True)
class _Scanned:
    """A trace file read by the column reader: the frames as columns, the rest as dicts."""

    scan: _columns.Scan
    frames: pa.Table  # scan.frames with the normalized fields a burst left out added
    others: list[dict[str, Any]]  # every record after the header that is not a frame
    other_lines: list[int]
    header_line: int | None  # the line of the meta header, when there is one

    def read_records(self, path: Path) -> list[dict[str, Any]]:
        """Every record after the header as dicts, from the bytes that were scanned."""
        with path.open("rb") as f:
            data = f.read(self.scan.size)
        if len(data) < self.scan.size:
            raise TraceFormatError(
                f"{path}: the file is shorter than when it was read: call read_trace() again"
            )
        records = []
        for lineno, raw in enumerate(io.BytesIO(data), 1):
            result = _columns.parse_line(raw.rstrip(b"\n"), terminated=raw.endswith(b"\n"))
            if isinstance(result, dict) and lineno != self.header_line:
                if result["kind"] == "frame":
                    complete_frame_record(result)  # written during a burst, without fields
                records.append(result)
        return records


def read_trace(
    path: str | os.PathLike[str],
    *,
    columns: Iterable[str] | None = None,
    rows: range | slice | None = None,
) -> Trace:
    """Load one trace file, tolerating what a crash or a careless edit leaves behind.

    Lines that are not JSON objects with a string ``kind`` (including a last line cut short
    by a crash) are skipped; one :class:`TraceWarning` says how many and which. A file
    without its ``meta`` header loads with ``meta == {}`` (and a warning). Raises
    :class:`~netra_ws.errors.TraceFormatError` when the file is empty, holds no readable
    record, or is not a netra-ws trace (an unknown ``format``, another tool's JSON Lines).
    Continue with :meth:`Trace.to_frame`; a million frames load in a few seconds.

    A whole read holds about twice the file in memory. For a big trace, ask for less:
    ``columns`` names the :data:`FRAME_COLUMNS` to load (leave out ``"data"``, the frame
    text, and it is never built: a trace of 60 MiB frames then loads in a few MiB beyond
    its longest line), ``rows`` a ``range`` or ``slice`` of frame positions (0-based, in
    file order; start and stop not negative) to keep. The file is then read 64 MiB at a
    time and what was not asked for dropped as it goes, so the memory is what you asked
    for plus about three times a chunk (or the longest line, which is always read whole).
    The result is a *partial* :class:`Trace`: its :meth:`~Trace.to_frame` has those
    columns and rows with the values a whole read gives them (``t_s`` counts from the
    same origin), its ``records`` raise ValueError. To walk every frame in bounded
    memory, use :func:`iter_trace`.

    A frame above the recorder's size limit has ``truncated`` True, ``sha256`` the digest
    of the whole frame, ``size`` its full size and ``data`` only its first bytes.
    """
    return _read_trace(Path(path), stacklevel=3, columns=columns, rows=rows)


def _read_trace(
    path: Path,
    *,
    stacklevel: int,
    columns: Iterable[str] | None = None,
    rows: range | slice | None = None,
) -> Trace:
    chosen = _chosen_columns(columns)
    chosen_rows = _chosen_rows(rows)
    if chosen is FRAME_COLUMNS and chosen_rows is None:
        scan = _columns.scan(path, _STORED_FRAME_COLUMNS)
    else:
        scan = _columns.scan(
            path, _scan_columns(chosen), rows=chosen_rows, complete=_normalize_missing
        )
    header = _Header.of(path, scan)
    header.warn(path, scan.problems, stacklevel=stacklevel + 1)
    if chosen is FRAME_COLUMNS and chosen_rows is None:
        frames = _normalize_missing(scan.frames)
        partial = None
    else:
        frames = scan.frames  # completed chunk by chunk
        what = [f"columns={list(chosen)}"] if chosen is not FRAME_COLUMNS else []
        what += [f"rows={chosen_rows}"] if chosen_rows is not None else []
        partial = ", ".join(what)
    scanned = header.scanned(scan, frames)
    return Trace._scanned(header.meta, scanned, path=path, columns=chosen, partial=partial)


def iter_trace(
    path: str | os.PathLike[str],
    *,
    chunk_bytes: int = _columns.CHUNK_BYTES,
    columns: Iterable[str] | None = None,
) -> Iterator[Trace]:
    """Walk a trace of any size a chunk at a time: one partial :class:`Trace` per chunk.

    The file is read ``chunk_bytes`` of whole lines at a time (a line longer than that is
    read whole, as a chunk of its own), and each chunk is yielded as a :class:`Trace` with
    the same ``meta``, the chunk's frames (consecutive, in file order) and the marks and
    other records of its lines; ``columns`` is as for :func:`read_trace`. Only one chunk is
    held at a time, so memory stays about three times ``chunk_bytes`` (or the longest
    line) whatever the file's size: keep what you need of each chunk, for example
    ``pd.concat(t.to_frame() for t in iter_trace(p, columns=["seq", "event", "size"]))``.
    ``t_s`` counts from the first record with a clock, as in a whole read.

    Tolerant like :func:`read_trace`, with the same errors for a file that is not a trace
    (raised on the first step). Unreadable lines are reported chunk by chunk: one
    :class:`TraceWarning` per chunk that has some, giving that chunk's count and lines, and
    each chunk's ``skipped_lines`` is its own count (add them up for the file's total).
    A missing header is reported once, with the first chunk.
    """
    source = Path(path)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be at least 1, not {chunk_bytes}")
    chosen = _chosen_columns(columns)
    what = f"columns={list(chosen)}, " if chosen is not FRAME_COLUMNS else ""
    scans = _columns.iter_scan(
        source, _scan_columns(chosen), chunk_bytes=chunk_bytes, complete=_normalize_missing
    )
    return _iter_chunks(source, scans, chosen, what)


def _iter_chunks(
    path: Path, scans: Iterator[_columns.Scan], chosen: Mapping[str, str], what: str
) -> Iterator[Trace]:
    header: _Header | None = None
    unread: list[tuple[int, str]] = []  # problems of the chunks before the first record
    number = 0
    line = 1
    for scan in scans:
        number += 1
        first_line, line = line, scan.line_count + 1
        if header is None:
            if not scan.others and scan.first_frame_line is None:
                unread += scan.problems  # nothing readable yet: the header may come later
                continue
            scan.problems[:0] = unread
            header = _Header.of(path, scan)
            header.warn(path, scan.problems, stacklevel=3, chunk=number)
        elif scan.problems:
            _warn_skipped(path, scan.problems, stacklevel=3, chunk=number)
        first = scan.frame_count - scan.frames.num_rows
        partial = (
            f"{what}chunk {number}, lines {first_line}-{scan.line_count}, "
            f"frames {first}-{scan.frame_count - 1}"
        )
        chunk = Trace._scanned(
            header.meta, header.scanned(scan, scan.frames), path=path, columns=chosen,
            partial=partial,
        )  # fmt: skip
        del scan  # held only by the chunk, which the caller may drop before the next one
        yield chunk
        del chunk
    if header is None:  # no readable record in the whole file: the errors of read_trace
        empty = _columns.Scan(
            pa.table({}), np.zeros(0, np.int64), [], unread, line - 1, 0, 0, None, None
        )
        _Header.of(path, empty)


def _chosen_columns(columns: Iterable[str] | None) -> Mapping[str, str]:
    """The FRAME_COLUMNS asked for, in the order asked (FRAME_COLUMNS itself for None)."""
    if columns is None:
        return FRAME_COLUMNS
    names = [columns] if isinstance(columns, str) else list(columns)
    unknown = [name for name in names if name not in FRAME_COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown frame column(s) {unknown}: choose among FRAME_COLUMNS ({list(FRAME_COLUMNS)})"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"columns lists a name twice: {names}")
    if names == list(FRAME_COLUMNS):
        return FRAME_COLUMNS  # every column, in order: a whole read
    return MappingProxyType({name: FRAME_COLUMNS[name] for name in names})


def _chosen_rows(rows: range | slice | None) -> range | None:
    """``rows`` as a range of positions from 0 (stop sys.maxsize for an open end), or None."""
    if rows is None:
        return None
    if isinstance(rows, slice):
        rows = range(
            0 if rows.start is None else rows.start,
            sys.maxsize if rows.stop is None else rows.stop,
            1 if rows.step is None else rows.step,
        )
    if not isinstance(rows, range):
        raise TypeError(f"rows must be a range or a slice of frame positions, not {type(rows)}")
    if rows.start < 0 or rows.stop < 0 or rows.step < 1:
        raise ValueError(
            f"rows={rows}: give positions from the start of the trace (0 is the first frame) "
            "and a positive step; the number of frames is known only once the file is read"
        )
    return rows


def _scan_columns(chosen: Mapping[str, str]) -> dict[str, str]:
    """The stored columns to parse for the frame columns ``chosen`` of a partial read.

    Derived columns need their source (t_wall: t_wall_ns, t_s: t_mono_ns); the origin of
    t_s needs t_mono_ns anyway; a normalized field (or data) needs what tells a frame
    written without its fields (opcode, envelope, parse_error), so that they are added.
    """
    needed = {"t_mono_ns"}
    needed |= {name for name in chosen if name in _STORED_FRAME_COLUMNS}
    if "t_wall" in chosen:
        needed.add("t_wall_ns")
    if needed & (_NORMALIZED_COLUMNS.keys() | {"data"}):
        needed |= {"opcode", "envelope", "parse_error"}
    return {name: dtype for name, dtype in _STORED_FRAME_COLUMNS.items() if name in needed}


@dataclass(frozen=True)
class _Header:
    """The ``meta`` header of a scanned file (``{}`` without one) and where it was."""

    meta: dict[str, Any]
    line: int | None
    first_kind: str

    @classmethod
    def of(cls, path: Path, scan: _columns.Scan) -> _Header:
        """The header of the file whose (first) scan is ``scan``; raises TraceFormatError
        when the scan holds no readable record or the file is not a netra-ws trace."""
        others = scan.others
        first_frame_line = scan.first_frame_line
        if not others and first_frame_line is None:
            if scan.line_count == 0:
                raise TraceFormatError(f"{path}: not a netra-ws trace: the file is empty")
            raise TraceFormatError(
                f"{path}: not a netra-ws trace: none of its {scan.line_count} line(s) is a "
                f"JSON object with a string 'kind' ({_describe(scan.problems)})"
            )
        # The header counts only as the very first readable record.
        first_is_other = bool(others) and (
            first_frame_line is None or others[0][0] < first_frame_line
        )
        first_kind = others[0][1]["kind"] if first_is_other else "frame"
        if first_kind == "meta":
            line, meta = others[0]
            fmt = meta.get("format")
            if fmt not in _KNOWN_FORMATS:
                raise TraceFormatError(
                    f"{path}: unknown trace format {fmt!r}; this version of netra_ws reads "
                    f"{FORMAT!r} (upgrade netra_ws, or check that this is a netra-ws trace)"
                )
            return cls(meta, line, first_kind)
        if first_frame_line is None and not any(r["kind"] in _KNOWN_KINDS for _, r in others):
            kinds = sorted({record["kind"] for _, record in others})[:5]
            raise TraceFormatError(
                f"{path}: not a netra-ws trace: no 'meta' header and no known record kind "
                f"(saw kinds {kinds})"
            )
        return cls({}, None, first_kind)

    def warn(
        self,
        path: Path,
        problems: list[tuple[int, str]],
        *,
        stacklevel: int,
        chunk: int | None = None,
    ) -> None:
        """The warnings of the scan that found the header: skipped lines, no header."""
        if problems:
            _warn_skipped(path, problems, stacklevel=stacklevel + 1, chunk=chunk)
        if not self.meta:
            warnings.warn(
                TraceWarning(
                    f"{path}: no 'meta' header (the first record is {self.first_kind!r}); "
                    "loaded without session, target and labels"
                ),
                stacklevel=stacklevel,
            )

    def scanned(self, scan: _columns.Scan, frames: pa.Table) -> _Scanned:
        """``scan`` with ``frames`` (completed) and its other records, header left out."""
        pairs = [(line, record) for line, record in scan.others if line != self.line]
        others = [record for _, record in pairs]
        other_lines = [line for line, _ in pairs]
        return _Scanned(scan, frames, others, other_lines, self.line)


def _warn_skipped(
    path: Path, problems: list[tuple[int, str]], *, stacklevel: int, chunk: int | None = None
) -> None:
    where = f" in chunk {chunk}" if chunk is not None else ""
    warnings.warn(
        TraceWarning(
            f"{path}: skipped {len(problems)} unreadable line(s){where} ({_describe(problems)})"
        ),
        stacklevel=stacklevel,
    )


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

    columns = {_TRACE_COLUMN: "string", **FRAME_COLUMNS}
    tables = []
    for file in files:
        table = _read_trace(file, stacklevel=3)._frame_columns()
        name = pa.repeat(pa.scalar(file.name, pa.large_string()), table.num_rows)
        tables.append(table.add_column(0, _TRACE_COLUMN, name))
    if not tables:
        empty = Trace({}, [])._frame_columns()
        tables.append(empty.add_column(0, _TRACE_COLUMN, pa.array([], pa.large_string())))
    # One conversion for all the files: Arrow concatenates without copying.
    return _columns.to_pandas(pa.concat_tables(tables), columns)


def read_parquet(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a table written by :meth:`Trace.to_parquet` (or a saved :func:`load_traces` result).

    The known columns get exactly the dtypes of :data:`FRAME_COLUMNS`, so the result equals
    the DataFrame that was written.
    """
    table = pq.read_table(path)
    declared = {_TRACE_COLUMN: "string", **FRAME_COLUMNS}
    # Parquet keeps pandas' dtypes in its metadata, but a file written by another tool (or an
    # older pandas) may not: cast to the declared types rather than trust the file.
    known = {name: declared[name] for name in table.column_names if name in declared}
    if len(known) == len(table.column_names):
        try:
            return _columns.to_pandas(_cast_columns(table, known), known)
        except (pa.ArrowException, TypeError, ValueError):
            pass  # a column pandas can convert but Arrow cannot cast: let pandas do it
    frame: pd.DataFrame = table.to_pandas()
    return frame.astype(known)


def _cast_columns(table: pa.Table, columns: Mapping[str, str]) -> pa.Table:
    arrays = []
    for name, dtype in columns.items():
        column = table.column(name)
        if dtype == "datetime64[ns, UTC]":
            column = column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        else:
            column = column.cast(_columns.ARROW_TYPES[dtype])
        arrays.append(column)
    return pa.Table.from_arrays(arrays, names=list(columns))


# --- derived columns -----------------------------------------------------------------------

# What normalization adds to a frame record (frame_record), as columns.
_NORMALIZED_COLUMNS = {name: FRAME_COLUMNS[name] for name in (*Event().fields(), "parse_error")}


def _normalize_missing(stored: pa.Table, data_of: _columns.DataOf | None = None) -> pa.Table:
    """``stored`` with the normalized fields of text frames that were written without them.

    A recorder keeping up with a burst writes frames as received (see TraceWriter.frame);
    their fields are derived from ``data`` here, exactly as frame_record() would have. A
    table without the ``data`` column (a partial read) gets the text of just those frames
    from ``data_of``; only the normalized columns the table has are filled.
    """
    names = set(stored.column_names)
    if not {"opcode", "envelope", "parse_error"} <= names or ("data" not in names and not data_of):
        return stored  # no normalized field asked for: nothing to add
    # The condition of complete_frame_record(), in columns.
    missing = pc.and_(
        pc.equal(stored.column("opcode"), "text"),
        pc.and_(pc.is_null(stored.column("envelope")), pc.is_null(stored.column("parse_error"))),
    )
    if "data" in names:
        missing = pc.and_(missing, pc.is_valid(stored.column("data")))
    mask = pc.fill_null(missing, False).combine_chunks().to_numpy(zero_copy_only=False)
    if not mask.any():
        return stored
    if "data" in names:
        texts = stored.column("data").filter(pa.array(mask)).to_pylist()
    else:
        assert data_of is not None
        texts = data_of(mask).to_pylist()
        if None in texts:  # a text frame without data has no fields to derive
            rows = np.flatnonzero(mask)
            mask[rows[[text is None for text in texts]]] = False
            texts = [text for text in texts if text is not None]
    filled_columns = {name: dtype for name, dtype in _NORMALIZED_COLUMNS.items() if name in names}
    filled = _columns.arrow_table([_parse_text(text) for text in texts], filled_columns)
    where = pa.array(mask)
    for name in filled_columns:
        column = pc.replace_with_mask(
            stored.column(name).combine_chunks(), where, filled.column(name).combine_chunks()
        )
        stored = stored.set_column(stored.schema.get_field_index(name), name, column)
    return stored


def _with_derived(
    stored: pa.Table, columns: Mapping[str, str], *, session: str | None, t0_ns: int | None
) -> pa.Table:
    """``stored`` plus the derived columns, in the order of ``columns``.

    ``session`` repeats the header's session id; ``t_wall`` is ``t_wall_ns`` (made a
    datetime by the conversion to pandas); ``t_s`` counts seconds from ``t0_ns``;
    ``truncated`` is False where a record does not say.
    """
    n = stored.num_rows
    arrays = []
    for name in columns:
        if name == "session":
            arrays.append(pa.repeat(pa.scalar(session, pa.large_string()), n))
        elif name == "t_wall":
            arrays.append(stored.column("t_wall_ns"))
        elif name == "t_s":
            arrays.append(_seconds_since(stored.column("t_mono_ns"), t0_ns))
        elif name == "truncated":
            arrays.append(pc.fill_null(stored.column(name), False))
        else:
            arrays.append(stored.column(name))
    return pa.Table.from_arrays(arrays, names=list(columns))


def _seconds_since(t_mono_ns: pa.ChunkedArray, t0_ns: int | None) -> pa.ChunkedArray | pa.Array:
    if t0_ns is None:
        return pa.array(np.full(len(t_mono_ns), np.nan, dtype="float64"))
    # Subtract as integers first: perf_counter_ns values beyond 2**53 (about 104 days of
    # uptime) would lose nanoseconds if converted to float before the subtraction.
    delta = pc.subtract(t_mono_ns, pa.scalar(t0_ns, pa.int64()))
    # safe=False: a delta beyond 2**53 ns (an import's wall-derived clock starting at a bogus
    # early time) rounds to the nearest float instead of raising ArrowInvalid.
    seconds = pc.divide(pc.cast(delta, pa.float64(), safe=False), pa.scalar(1e9))
    return pc.fill_null(seconds, np.nan)
