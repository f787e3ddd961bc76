"""The async session: connect, authenticate, send, record every frame, collect events.

A thin network shell. Every frame is recorded by a background reader the moment
``websockets`` hands it over (wall and monotonic clocks read before any parsing), whether
or not the caller is reading, so the trace shows what the server really sent and when.
Parsing, the trace format and redaction live in the pure modules.

Typical use in a notebook cell (top-level ``await``)::

    async with connect(url, token=token, trace="data/run.jsonl") as session:
        first = await session.next(timeout=5)
        await session.send_user_message("What did we spend last month?")
        result = await session.collect(until="agent_completed", timeout=30)
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import websockets
import websockets.asyncio.client
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Subprotocol

from .errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectRefused,
    FrameParseError,
    HandshakeRejected,
    SessionClosed,
    TraceBudgetReached,
    WaitTimeout,
)
from .events import Event, may_be_named, may_hold_string, normalize
from .limits import DEFAULT_LIMITS, Limits
from .redact import (
    RedactingFilter,
    redact_headers,
    redact_subprotocol,
    redact_text,
    redact_url,
)
from .tokens import encode_subprotocol_token
from .trace import Trace, TraceWriter, complete_frame_record

__all__ = ["AUTH_FORMS", "Collected", "Handshake", "Received", "Session", "connect"]

AuthForm = Literal["header", "subprotocol", "both", "none"]
AUTH_FORMS: tuple[str, ...] = ("header", "subprotocol", "both", "none")
Until = str | Iterable[str] | Callable[["Received"], bool] | None

# How long to wait for the close that follows an AUTH_FAILED frame, to report its code.
_AUTH_CLOSE_GRACE = 1.0
# websockets logs every handshake header at DEBUG (the Authorization value, the jwt.<token>
# subprotocol): its log goes through this logger, which redacts, so that
# logging.basicConfig(level=logging.DEBUG) in a notebook never prints a token.
_WS_LOG = logging.getLogger("netra_ws.client")
_WS_LOG.addFilter(RedactingFilter())
# The reader writes the frames of a burst to the trace with one flush, as soon as the stream
# pauses; during a burst that does not pause, it flushes at least this often. Issue 7 allows
# a frame 50 ms unwritten; the rest is margin for a busy machine (and a flush of a burst's
# frames takes time too).
_FLUSH_DEADLINE_NS = 5_000_000
# The reader lets the event loop run at least this often while frames keep coming: a
# caller's timeout is then honoured within this plus the time of one frame.
_YIELD_EVERY_NS = 20_000_000
# Frames websockets holds, decompressed, before it stops reading the socket (its default is
# 16): frames of up to Limits.frame_limit each, so this bounds the memory a compressed
# flood takes. A burst of small frames is read no slower: one read of the socket holds
# hundreds of them, more than any such mark, so reading pauses after each read either way.
_MAX_QUEUE = 1
# Unread frames (received, recorded, not yet handed out) kept in memory up to this many bytes
# of data; beyond it they are read back from the trace file when handed out, a batch at a time.
_SPILL_AT = 16 << 20
# Bytes read from the socket at a time (asyncio's default is 256 KiB): see _bound_reads().
_READ_SIZE = 64 << 10
# How long a close waits for the server's answer (websockets waits 10 s): a server that
# never answers the client's close (a protocol violation, the end of the trace budget)
# ends the session that much sooner.
_CLOSE_TIMEOUT = 2.0
_UNSPILL_BATCH = 64


class Received:
    """One received frame: its trace ``record`` and, lazily, its normalized :class:`Event`."""

    # No __dict__: one of these exists per frame read, so a burst of them stays small.
    __slots__ = ("_event", "_event_made", "_record")

    def __init__(self, record: dict[str, Any]):
        self._record = record
        self._event: Event | None = None
        self._event_made = False

    @property
    def record(self) -> dict[str, Any]:
        """The frame's trace record, with the normalized fields (``event``, ``run_id``…)."""
        # The reader records a burst without normalizing (the trace writer does that when
        # it flushes, all at once); a frame looked at before that is normalized now.
        return complete_frame_record(self._record)

    @property
    def name(self) -> str | None:
        """The real event name (``agent_started``, ``connection_established``, …) or None."""
        return self.record.get("event")

    @property
    def data(self) -> str:
        """The frame as received (base64 for binary frames)."""
        return self._record["data"]  # raw fields need no normalizing

    @property
    def seq(self) -> int:
        return self._record["seq"]

    @property
    def size(self) -> int:
        """The frame's size in bytes, as received (also when only its start was recorded)."""
        return self._record["size"]

    @property
    def truncated(self) -> bool:
        """True when the frame was over the recording limit: ``data`` holds its first bytes;
        ``record["sha256"]`` identifies the whole (see :class:`~netra_ws.limits.Limits`)."""
        return bool(self._record.get("truncated"))

    @property
    def t_mono_ns(self) -> int:
        return self._record["t_mono_ns"]

    @property
    def parse_error(self) -> str | None:
        return self.record.get("parse_error")

    @property
    def event(self) -> Event | None:
        """The normalized event with its payload; None when the frame did not parse."""
        if not self._event_made:
            if self.parse_error is None:
                with contextlib.suppress(FrameParseError):
                    self._event = normalize(self.data)
            self._event_made = True
        return self._event

    def json(self) -> Any:
        """The decoded JSON value; raises ``ValueError`` for frames that are not JSON."""
        return json.loads(self.data)

    def _may_be(self, name: str) -> bool:
        """False only when this frame's event name surely is not ``name``, without a parse."""
        # Reading a burst must not cost a parse per frame (the trace writer and read_trace
        # normalize the frames anyway): a name that cannot match is ruled out on the text.
        record = self._record
        if "envelope" in record or "parse_error" in record:
            return True  # normalized already, or not JSON text: the name is at hand
        return may_be_named(record["data"], name)

    def _is_auth_failure(self) -> bool:
        """True for the server's ``error_message`` frame with ``error_code`` ``AUTH_FAILED``."""
        record = self._record
        # Every frame is checked: most are ruled out on their text, without a parse.
        if (
            "envelope" not in record
            and "parse_error" not in record
            and not may_hold_string(record["data"], "AUTH_FAILED")
        ):
            return False
        return self.name == "error_message" and self.record.get("error_code") == "AUTH_FAILED"

    def __repr__(self) -> str:
        what = self.name or self.parse_error or self.record.get("type")
        return f"<Received #{self.seq} {what!r} {self.record.get('size')} B>"

    def _repr_html_(self) -> str:
        from .browse import html_listing  # the notebook view; pandas-free

        return html_listing([self.record], title=repr(self))


@dataclass(frozen=True)
class Handshake:
    """Evidence from the opening handshake. Headers and subprotocol are redacted."""

    status: int
    subprotocol: str | None
    response_headers: dict[str, str]
    offered_subprotocols: list[str]
    auth: str
    connect_ms: float


@dataclass
class Collected:
    """What :meth:`Session.collect` gathered.

    ``reason`` is ``"matched"`` (``matched`` holds the frame that satisfied ``until``),
    ``"timeout"`` or ``"closed"``. Check ``reason`` before trusting ``frames``: a timeout
    with no agent events is the #937 symptom, not a pass.
    """

    frames: list[Received] = field(default_factory=list)
    matched: Received | None = None
    reason: str = "timeout"
    elapsed_s: float = 0.0

    @property
    def names(self) -> list[str | None]:
        """The event names in arrival order."""
        return [r.name for r in self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self):
        return iter(self.frames)

    def __repr__(self) -> str:
        from .events import squeeze

        names = squeeze(str(n or "?") for n in self.names) or "nothing"
        return (
            f"<Collected {self.reason}: {len(self.frames)} frames in {self.elapsed_s:.3f} s: "
            f"{names}>"
        )

    def _repr_html_(self) -> str:
        from .browse import html_listing

        return html_listing([r.record for r in self.frames], title=repr(self))


class _GcPause:
    """Keeps the cyclic garbage collector out of the time between a frame's receipt and its write.

    With pandas loaded, a full collection pauses the process for 40 ms or more (hundreds on
    a busy machine): long enough, if it struck while frames wait for their flush, to break
    the promise that a received frame is on disk within tens of milliseconds. So while any
    session holds unwritten frames, automatic collection is off; it is back on the moment
    they are written, and the collector then catches up at once (it runs on allocation
    counts, which keep counting). Never holds it off for more than ``_GC_HOLD_MAX_NS``
    in a row (many sessions could otherwise keep it off for good), and leaves alone a
    collector someone else turned off.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # sessions may run on several event loops
        self._holders = 0
        self._disabled_by_us = False
        self._since_ns = 0

    def hold(self, now_ns: int) -> None:
        with self._lock:
            if self._holders == 0:
                self._since_ns = now_ns
                if gc.isenabled():
                    gc.disable()
                    self._disabled_by_us = True
            elif self._disabled_by_us and now_ns - self._since_ns > _GC_HOLD_MAX_NS:
                gc.enable()  # held long enough: let it run (it stays on until all release)
                self._disabled_by_us = False
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._disabled_by_us:
                gc.enable()
                self._disabled_by_us = False


_GC_HOLD_MAX_NS = 50_000_000
_GC_PAUSE = _GcPause()


class Session:
    """One recorded WebSocket connection. Create it with :func:`connect`."""

    def __init__(
        self, ws: ClientConnection, writer: TraceWriter, handshake: Handshake, url: str
    ) -> None:
        self._ws = ws
        self._writer = writer
        self.handshake = handshake
        self.url = url  # redacted
        # Frames received and not yet handed out. The reader queues records (dicts of plain
        # values, which the garbage collector does not track); Received objects are made
        # when someone reads. A Received per frame made at once would give the collector
        # hundreds of thousands of objects to walk during a long burst: pauses of 100+ ms,
        # long enough to break the flush deadline. A frame handed out is the caller's: the
        # session keeps no reference to it (the trace has it), so a long session read with
        # collect() holds only what the caller holds.
        # A record, or the seq of a frame spilled to the trace file: unread frames beyond
        # _SPILL_AT bytes are read back from the trace when handed out, not kept here.
        self._pending: collections.deque[dict[str, Any] | int] = collections.deque()
        self._pending_bytes = 0  # the data of the records in _pending
        self._spilled = 0  # seqs in _pending
        self._ready_items: collections.deque[Received] = collections.deque()
        self._frames_received = 0
        self._received_view: list[Received] = []  # what `received` returned, kept once asked
        self._received_scanned = 0  # trace records looked at for it
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._arrived = asyncio.Event()  # set when frames or the close arrive
        self._closed = asyncio.Event()
        self._flush_handle: asyncio.Handle | None = None  # a flush is scheduled
        self._stopping: asyncio.Task[None] | None = None  # the close after the trace budget
        self._unflushed_since_ns = 0  # receipt time of the oldest frame not yet flushed
        self._reader = asyncio.create_task(self._read_forever(), name="netra-ws-reader")
        # Called at the end of close(): a live view draws its final state before the
        # notebook cell that closed the session ends (a refresh later could be lost).
        self._on_close: list[Callable[[], None]] = []

    # -- recording ---------------------------------------------------------------------

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        writer, pending, arrived = self._writer, self._pending, self._arrived
        yielded_ns = time.perf_counter_ns()
        try:
            while True:
                # recv() returns without yielding to the loop while websockets holds frames
                # already read from the socket, so a burst is recorded in one go.
                data = await self._ws.recv()
                # Clocks first: parsing and writing must not shift the timestamps.
                t_wall_ns, t_mono_ns = time.time_ns(), time.perf_counter_ns()
                # One write and flush per burst instead of per frame (a flush costs as much
                # as receiving a frame): the line waits until the reader waits for the next
                # frame (the flush is the next thing the loop runs), or at most the deadline.
                try:
                    record = writer.frame(
                        "receive", data, t_wall_ns=t_wall_ns, t_mono_ns=t_mono_ns, flush=False
                    )
                except TraceBudgetReached:
                    self._stop_recording(loop)  # drained and counted until the close
                    continue
                finally:
                    # A frame of tens of megabytes must not stay alive while the next one
                    # is inflated: only the record (truncated above the limit) is kept.
                    del data
                self._flush_soon(loop, t_mono_ns)
                pending.append(record)
                self._pending_bytes += len(record["data"])
                self._frames_received += 1
                arrived.set()
                if writer.over_budget:
                    self._stop_recording(loop)
                if t_mono_ns - yielded_ns > _YIELD_EVERY_NS:
                    # Frames of tens of megabytes keep recv() busy for long: let the loop
                    # run (a caller's timeout, a flush) between them.
                    await asyncio.sleep(0)
                    yielded_ns = time.perf_counter_ns()
        except ConnectionClosed as exc:
            self._record_close(exc)
        except Exception as exc:  # a reader must never die silently: record, then stop
            self._writer.record(
                "error",
                stage="receive",
                exception=type(exc).__name__,
                message=redact_text(str(exc)),
            )
        finally:
            self._closed.set()
            self._arrived.set()

    @property
    def received(self) -> list[Received]:
        """Every frame received so far, in order (whether or not anyone read it), from the
        trace: a session recording to a file reads them back from it (see :meth:`records`).

        Asked often (a console follows it), it parses only what is new since the last call;
        once asked, the frames are kept for the next call.
        """
        new = self._writer.records_since(self._received_scanned)
        self._received_scanned += len(new)
        self._received_view.extend(
            Received(r) for r in new if r.get("kind") == "frame" and r.get("dir") == "receive"
        )
        return self._received_view

    @property
    def frames_received(self) -> int:
        """How many frames were received and recorded so far."""
        return self._frames_received

    def _flush_soon(self, loop: asyncio.AbstractEventLoop, t_mono_ns: int) -> None:
        """A frame was buffered at ``t_mono_ns``: make sure it is flushed within the deadline."""
        if self._flush_handle is None:
            _GC_PAUSE.hold(t_mono_ns)
            self._unflushed_since_ns = t_mono_ns
            self._flush_handle = loop.call_soon(self._flush)
        elif t_mono_ns - self._unflushed_since_ns > _FLUSH_DEADLINE_NS:
            self._writer.flush()  # a burst that does not pause: flush on the way
            self._unflushed_since_ns = t_mono_ns
            self._spill_unread()

    def _flush(self) -> None:
        self._flush_handle = None
        try:
            self._writer.flush()
        finally:
            _GC_PAUSE.release()
        self._spill_unread()

    def _spill_unread(self) -> None:
        """Frames nobody has read yet, beyond _SPILL_AT bytes, leave memory: they are in the
        trace file (just flushed), and are read back from it when handed out."""
        if self._pending_bytes <= _SPILL_AT or self._writer.path is None:
            return
        seqs = [r if isinstance(r, int) else r["seq"] for r in self._pending]
        self._pending.clear()
        self._pending.extend(seqs)
        self._pending_bytes, self._spilled = 0, len(seqs)

    def _stop_recording(self, loop: asyncio.AbstractEventLoop) -> None:
        """The trace budget is reached: close the connection (once); the reader drains
        what still arrives, unrecorded, until the close completes."""
        if self._stopping is None:
            reason = "netra-ws: trace budget reached, recording stopped"
            self._stopping = loop.create_task(self._ws.close(1001, reason))

    def _record_close(self, exc: ConnectionClosed) -> None:
        rcvd, sent = exc.rcvd, exc.sent
        self.close_code = rcvd.code if rcvd is not None else 1006
        self.close_reason = rcvd.reason if rcvd is not None else ""
        # What the client's own close frame said: when websockets fails the connection
        # (1007: a text frame that is not UTF-8; 1009: a frame over the frame limit) the offending
        # frame is never handed over, so this is the only evidence of it.
        sent_fields: dict[str, Any] = (
            {"sent_code": sent.code, "sent_reason": sent.reason} if sent else {}
        )
        stopped: dict[str, Any] = (
            {"stopped_by": "trace budget"} if self._stopping is not None else {}
        )
        self._writer.record(
            "close",
            **stopped,
            code=self.close_code,
            reason=self.close_reason,
            # No close frame received means the TCP connection just went away (1006).
            received_close_frame=rcvd is not None,
            sent_close_frame=sent is not None,
            **sent_fields,
            initiated_by="server" if exc.rcvd_then_sent else ("client" if sent else "network"),
        )

    def mark(self, label: str, **fields: Any) -> dict[str, Any]:
        """Write a mark into the trace ("negative probe: quiet window 5 s begins")."""
        return self._writer.mark(label, **fields)

    @property
    def trace_path(self) -> Path | None:
        """Where the trace is written, or None for an in-memory session."""
        return self._writer.path

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def records(self) -> list[dict[str, Any]]:
        """Every trace record so far (meta excluded), in order.

        A session recording to a file keeps no copy of them: they are read back from the
        trace (only the lines written since the last call are parsed), so ask only when
        you need them (a live view, the end of a probe).
        """
        return self._writer.records

    def to_trace(self) -> Trace:
        """The session as a :class:`~netra_ws.trace.Trace` (for ``to_frame()`` and charts)."""
        return Trace(path=self._writer.path, meta=self._writer.meta, records=self.records())

    def to_frame(self):
        """One row per frame so far, as ``Trace.to_frame()`` gives it."""
        return self.to_trace().to_frame()

    def live(self, *, every: float = 0.25, limit: int = 50) -> Any:
        """Show the frames in the notebook as they arrive: a table and a small timeline,
        updated in place (an IPython display handle) until the connection closes.

        Returns the :class:`~netra_ws.live.LiveView` (``stop()`` it to end it early).
        Call it inside a running event loop (a notebook cell's top-level ``await`` code).
        """
        from .live import LiveView

        return LiveView(self, every=every, limit=limit)

    def __repr__(self) -> str:
        state = f"closed {self.close_code}" if self.closed else "open"
        return (
            f"<Session {self.url} {state}: {self._frames_received} frames received; "
            f"trace {self.trace_path or 'in memory'}>"
        )

    def _repr_html_(self) -> str:
        from .browse import html_listing

        return html_listing(self.records(), title=repr(self))

    # -- sending -----------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """Send a JSON object (dict), a text frame (str) or a binary frame (bytes).

        Returns the trace record of the sent frame. Raises :class:`SessionClosed` when the
        connection is already closed.
        """
        data = json.dumps(message) if isinstance(message, Mapping) else message
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"send() takes a dict, str or bytes, not {type(message).__name__}")
        if self.closed:
            raise self._closed_error("send()", [])
        t_wall_ns, t_mono_ns = time.time_ns(), time.perf_counter_ns()
        # Buffered like received frames (many sessions sending at once share no flush):
        # on disk when the loop next runs, but normalized now for the caller.
        record = self._writer.frame(
            "send", data, t_wall_ns=t_wall_ns, t_mono_ns=t_mono_ns, flush=False
        )
        complete_frame_record(record)
        self._flush_soon(asyncio.get_running_loop(), t_mono_ns)
        try:
            await self._ws.send(data)
        except ConnectionClosed:
            await self._closed.wait()
            raise self._closed_error("send()", []) from None
        return record

    async def send_user_message(
        self, text: str, *, form: Literal["flat", "payload"] = "flat", **fields: Any
    ) -> dict[str, Any]:
        """Send ``user_message``, the input that starts an agent run.

        ``form="flat"`` is the #937 script's ``{type, message, timestamp, …}``;
        ``form="payload"`` the CLI client's ``{type, payload:{content, timestamp, …}}``.
        Extra ``fields`` (``thread_id``, ``run_id``, ``user_id``…) go where the form puts them.
        """
        now = time.time()
        if form == "flat":
            message = {"type": "user_message", "message": text, "timestamp": now, **fields}
        elif form == "payload":
            message = {
                "type": "user_message",
                "payload": {"content": text, "timestamp": now, **fields},
            }
        else:
            raise ValueError(f"form must be 'flat' or 'payload', not {form!r}")
        return await self.send(message)

    # -- receiving ---------------------------------------------------------------------

    def _ready(self) -> Iterator[Received]:
        """The frames received and not yet handed out, each handed out once, in order.

        The readers below drain it in one synchronous sweep (no await, no task switch per
        frame): during a burst, handing a frame over costs a wrapper and a popleft. A
        caller may stop at any frame (the rest stay ready) and readers may interleave
        (next() inside async for): they share the one queue.
        """
        items, pending = self._ready_items, self._pending
        while True:
            if not items:
                if not pending:
                    return  # nothing left; the caller waits with _wait() or stops at the close
                if self._spilled:
                    self._unspill(_UNSPILL_BATCH)
                else:
                    # A burst's wrappers all at once, with the collector held off: it looks
                    # at them once afterwards instead of every 700 of them (with a full
                    # collection each time their number grew by a quarter: 15 % of the CPU
                    # of reading a 100,000-frame burst).
                    _GC_PAUSE.hold(time.perf_counter_ns())
                    try:
                        # Nothing spilled: every entry is a record.
                        items.extend(map(Received, pending))  # type: ignore[arg-type]
                        pending.clear()
                        self._pending_bytes = 0
                    finally:
                        _GC_PAUSE.release()
            yield items.popleft()

    def _unspill(self, count: int) -> None:
        """Wrap the next ``count`` unread frames, reading spilled ones back from the trace."""
        for _ in range(min(count, len(self._pending))):
            entry = self._pending.popleft()
            if isinstance(entry, int):
                self._spilled -= 1
                record = self._writer.frame_at(entry)
            else:
                record = entry
                self._pending_bytes -= len(record["data"])
            self._ready_items.append(Received(record))

    async def _wait(self, deadline: float | None) -> bool:
        """Wait for new frames or the close; False when ``deadline`` (loop time) passed first."""
        # The deadline first: frames that keep coming must not keep a caller past it.
        remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
        if remaining is not None and remaining <= 0:
            return False
        if self._ready_items or self._pending or self._closed.is_set():
            return True
        self._arrived.clear()
        if remaining is None:
            await self._arrived.wait()
            return True
        try:
            async with asyncio.timeout(remaining):
                await self._arrived.wait()
        except TimeoutError:
            return False
        return True

    async def _gather(
        self, frames: list[Received], match: Callable[[Received], bool] | None, deadline: float
    ) -> str:
        """Hand frames out into ``frames`` until one ``match``es (it is the last one).

        Returns ``"matched"``, ``"closed"`` (every frame before the close handed out) or
        ``"timeout"``. Raises :class:`AuthenticationFailed` at an ``AUTH_FAILED`` frame.
        """
        while True:
            for item in self._ready():
                if item._is_auth_failure():
                    await self._refused(item)
                frames.append(item)
                if match is not None and match(item):
                    return "matched"
            if self._closed.is_set():
                return "closed"
            if not await self._wait(deadline):
                return "timeout"

    async def _refused(self, item: Received) -> None:
        """Raise :class:`AuthenticationFailed` for an AUTH_FAILED frame, with the close code."""
        try:
            async with asyncio.timeout(_AUTH_CLOSE_GRACE):
                await self._closed.wait()
        except TimeoutError:
            pass
        raise AuthenticationFailed(
            "the server refused the credentials (AUTH_FAILED"
            + (f", close {self.close_code})" if self.close_code else ")")
            + ": pass a valid token=…, or check the auth form the server expects",
            frame=item,
            close_code=self.close_code,
            close_reason=self.close_reason,
        )

    def _closed_error(self, waiting: str, seen: list[Received]) -> Exception:
        if self.close_code == 1008:
            return AuthenticationFailed(
                f"connection closed with 1008 ({self.close_reason or 'policy violation'}) while"
                f" waiting in {waiting}: the server refused the credentials",
                close_code=self.close_code,
                close_reason=self.close_reason,
            )
        return SessionClosed(
            f"connection closed (code {self.close_code}, reason {self.close_reason!r}) while"
            f" waiting in {waiting}",
            close_code=self.close_code,
            close_reason=self.close_reason,
            received=seen,
        )

    def _deadline(self, timeout: float) -> float:
        return asyncio.get_running_loop().time() + timeout

    async def next(self, timeout: float = 5.0) -> Received:
        """The next received frame, whatever it is.

        Beware the #937 trap: right after connecting this is ``connection_established``,
        not the reply to what you just sent. Raises :class:`WaitTimeout`,
        :class:`SessionClosed` or :class:`AuthenticationFailed`.
        """
        frames: list[Received] = []
        reason = await self._gather(frames, _any_frame, self._deadline(timeout))
        if reason == "timeout":
            raise WaitTimeout(
                f"no frame within {timeout} s", waited_for="any frame", timeout=timeout
            )
        if reason == "closed":
            raise self._closed_error("next()", [])
        return frames[0]

    async def expect(
        self, event: str | Callable[[Received], bool], timeout: float = 10.0
    ) -> Received:
        """Skip frames until ``event`` (a name or a predicate) arrives; return that frame.

        The skipped frames stay in ``session.received`` and in the trace, and are attached
        to the :class:`WaitTimeout` raised when nothing matches in time.
        """
        seen: list[Received] = []
        reason = await self._gather(seen, _matcher(event), self._deadline(timeout))
        if reason == "matched":
            return seen.pop()
        if reason == "closed":
            raise self._closed_error(f"expect({_describe(event)})", seen)
        raise WaitTimeout(
            f"no {_describe(event)} within {timeout} s; received instead: "
            f"{[r.name or r.parse_error for r in seen] or 'nothing'}",
            waited_for=_describe(event),
            timeout=timeout,
            received=seen,
        )

    async def collect(self, until: Until = None, timeout: float = 30.0) -> Collected:
        """Gather frames until ``until`` matches (inclusive), the timeout, or the close.

        ``until`` is an event name, several names (any of them), a predicate on
        :class:`Received`, or None to gather for the whole ``timeout``. Never raises on
        timeout or close: read ``reason``. Raises :class:`AuthenticationFailed` when the
        server refuses the credentials, because nothing else can arrive after that.
        """
        match = _matcher(until) if until is not None else None
        result = Collected()
        loop = asyncio.get_running_loop()
        started = loop.time()
        result.reason = await self._gather(result.frames, match, started + timeout)
        if result.reason == "closed" and self.close_code == 1008:
            raise self._closed_error("collect()", result.frames)
        if result.reason == "matched":
            result.matched = result.frames[-1]
        result.elapsed_s = loop.time() - started
        return result

    def __aiter__(self) -> AsyncIterator[Received]:
        """``async for frame in session``: every frame not yet handed out, until the close.

        Shares its place with :meth:`next`, :meth:`expect` and :meth:`collect` (each frame
        is handed out once). Ends at the close; raises :class:`AuthenticationFailed` when
        the server refuses the credentials. It never times out by itself: wrap the loop in
        ``async with asyncio.timeout(…)``, or use :meth:`collect`, to bound it.
        """
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Received]:
        while True:
            for item in self._ready():
                if item._is_auth_failure():
                    await self._refused(item)
                yield item
            if self._closed.is_set():
                if self.close_code == 1008:
                    raise self._closed_error("async for", [])
                return
            await self._wait(None)

    async def quiet(self, window: float = 2.0) -> list[Received]:
        """Everything that arrives within ``window`` seconds (the negative-probe primitive).

        An empty list means the server stayed silent. Marks the window in the trace.
        """
        self.mark("quiet window begins", window_s=window)
        result = await self.collect(None, timeout=window)
        self.mark("quiet window ends", received=len(result.frames), reason=result.reason)
        return result.frames

    # -- closing -----------------------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection, wait for the reader to record it, close the trace file."""
        try:
            await self._ws.close(code, reason)
            async with asyncio.timeout(5):
                await self._closed.wait()
        except TimeoutError:
            pass
        finally:
            self._reader.cancel()
            self._writer.close()
            for hook in self._on_close:
                hook()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _any_frame(_item: Received) -> bool:
    return True


def _matcher(until: str | Iterable[str] | Callable[[Received], bool]) -> Callable[[Received], bool]:
    if callable(until):
        return until
    # _may_be rules most frames out on their text: a burst is read without a parse each.
    if isinstance(until, str):
        return lambda r: r._may_be(until) and r.name == until
    names = frozenset(until)
    return lambda r: any(r._may_be(n) for n in names) and r.name in names


def _describe(until: Any) -> str:
    if isinstance(until, str):
        return repr(until)
    if callable(until):
        return getattr(until, "__name__", "matching frame")
    return " or ".join(repr(n) for n in until)


def _auth_arguments(
    token: str | None,
    auth: str | None,
    headers: Mapping[str, str] | None,
    subprotocols: Iterable[str] | None,
) -> tuple[str, dict[str, str], list[str]]:
    form = auth or ("header" if token else "none")
    if form not in AUTH_FORMS:
        raise ValueError(f"auth must be one of {AUTH_FORMS}, not {auth!r}")
    if form != "none" and not token:
        raise ValueError(f"auth={form!r} needs a token=…; use auth='none' to connect without one")
    out_headers = dict(headers or {})
    offered = list(subprotocols or [])
    if form in ("header", "both"):
        out_headers["Authorization"] = f"Bearer {token}"
    if form in ("subprotocol", "both"):
        assert token  # checked above: every form but "none" has one
        # The browser frontend's form: a bare name plus the base64url-encoded token.
        offered = [
            *([] if "jwt-auth" in offered else ["jwt-auth"]),
            *offered,
            encode_subprotocol_token(token),
        ]
    return form, out_headers, offered


class connect:
    """Open a recorded session: ``async with connect(url, …) as session:`` or ``await connect(…)``.

    ``token`` with ``auth``: ``"header"`` (``Authorization: Bearer``, the default when a
    token is given), ``"subprotocol"`` (``jwt-auth`` + ``jwt.<base64url>``, as the browser
    does), ``"both"``, or ``"none"``. ``trace`` is a file path (``.jsonl``, must not exist),
    an existing directory (a file name is made up), a :class:`TraceWriter`, or None to
    keep the records in memory only. ``labels`` go into the trace's meta record.

    A redirect (HTTP 3xx) is not followed: it is a :class:`HandshakeRejected` whose trace
    record holds the status and ``Location``. With ``follow_redirects`` it is followed to the
    same origin (scheme, host and port), never with credentials to another one; each hop is
    recorded in the ``open`` record's ``redirects``, and its ``url`` is where the frames came
    from.

    ``limits`` (:class:`~netra_ws.limits.Limits`; the defaults when None) bound what a server
    can make the session take: the largest frame (16 MiB: a bigger one closes the
    connection with 1009), the bytes of a frame recorded (1 MiB: the rest is kept as its
    size and SHA-256) and the bytes of the whole trace (256 MiB: then recording stops with a
    mark and the session closes the connection with 1001). To set them for a
    :class:`TraceWriter` you pass, give them to the writer.

    Raises :class:`ConnectRefused`, :class:`HandshakeRejected` (HTTP 401/403…),
    :class:`WaitTimeout` (``open_timeout``) or :class:`ConnectFailed`, each also recorded
    in the trace as an ``error`` record.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        auth: AuthForm | None = None,
        headers: Mapping[str, str] | None = None,
        subprotocols: Iterable[str] | None = None,
        trace: str | Path | TraceWriter | None = None,
        labels: Mapping[str, Any] | None = None,
        open_timeout: float = 10.0,
        follow_redirects: bool = False,
        limits: Limits | None = None,
    ):
        self._url = url
        self._follow_redirects = follow_redirects
        self._form, self._headers, self._offered = _auth_arguments(
            token, auth, headers, subprotocols
        )
        self._trace = trace
        self._labels = {**(labels or {}), "auth": self._form}
        self._open_timeout = open_timeout
        if isinstance(trace, TraceWriter) and limits is not None and limits != trace.limits:
            raise ValueError(
                "limits= applies to the trace writer connect() makes: pass them to the "
                "TraceWriter you give instead (TraceWriter(…, limits=…))"
            )
        # One set of limits for the connection and its trace: a writer given brings its own.
        self._limits = trace.limits if isinstance(trace, TraceWriter) else limits or DEFAULT_LIMITS
        self._session: Session | None = None

    def _writer(self) -> TraceWriter:
        if isinstance(self._trace, TraceWriter):
            return self._trace
        path = Path(self._trace) if self._trace is not None else None
        if path is not None and path.is_dir():
            path = path / time.strftime(f"session-%Y%m%dT%H%M%S-{time.time_ns() % 10**6:06d}.jsonl")
        return TraceWriter(path, target=self._url, labels=self._labels, limits=self._limits)

    async def _open(self) -> Session:
        writer = self._writer()
        url = redact_url(self._url)
        offered_redacted = [redact_subprotocol(s) for s in self._offered]
        started = time.perf_counter()
        opening: _Opening | None = None
        try:
            opening = _Opening(
                self._url,
                follow=self._follow_redirects,
                additional_headers=self._headers or None,
                subprotocols=[Subprotocol(s) for s in self._offered] or None,
                open_timeout=self._open_timeout,
                max_size=self._limits.frame_limit,
                max_queue=_MAX_QUEUE,
                close_timeout=_CLOSE_TIMEOUT,
                create_connection=_Connection,
                logger=_WS_LOG,
            )
            ws = await opening
        except BaseException as exc:
            error = _connect_error(exc, url, self._open_timeout)
            hops = opening.redirects if opening is not None else []
            details: dict[str, Any] = {"redirects": hops} if hops else {}
            if isinstance(error, HandshakeRejected):
                details.update(
                    http_status=error.status,
                    response_headers=error.headers,
                    body=error.body,
                )
            writer.record(
                "error",
                stage="connect",
                exception=type(error).__name__,
                message=str(error),
                offered_subprotocols=offered_redacted,
                request_header_names=sorted(self._headers),
                **details,
            )
            writer.close()
            if error is exc:
                raise
            raise error from exc
        assert ws.response is not None
        _bound_reads(ws)
        handshake = Handshake(
            status=ws.response.status_code,
            subprotocol=redact_subprotocol(ws.subprotocol) if ws.subprotocol else None,
            response_headers=redact_headers(ws.response.headers.raw_items()),
            offered_subprotocols=offered_redacted,
            auth=self._form,
            connect_ms=round((time.perf_counter() - started) * 1000, 3),
        )
        assert opening is not None
        followed: dict[str, Any] = {"redirects": opening.redirects} if opening.redirects else {}
        writer.record(
            "open",
            url=redact_url(opening.uri),  # where the frames come from, after any redirect
            **followed,
            http_status=handshake.status,
            subprotocol=handshake.subprotocol,
            offered_subprotocols=offered_redacted,
            request_header_names=sorted(self._headers),
            response_headers=handshake.response_headers,
            auth=self._form,
            connect_ms=handshake.connect_ms,
        )
        return Session(ws, writer, handshake, url)

    def __await__(self):
        return self._open().__await__()

    async def __aenter__(self) -> Session:
        self._session = await self._open()
        return self._session

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._session is not None
        await self._session.close()


class _Connection(ClientConnection):
    """websockets' connection, with its close timeout kept when the server breaks a rule.

    When a frame breaks the protocol or the frame limit (1002, 1007, 1009), websockets sends
    its close frame and then waits for the server to close the TCP connection; it enforces
    its close timeout only while someone is closing or sending. A server that never closes
    would keep the session open and its reader waiting for good. Here the connection is
    aborted at that deadline, and the session records the close the client sent.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._abort_at: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.close_deadline is not None and self._abort_at is None:
            self._abort_at = self.loop.call_at(self.close_deadline, self.transport.abort)


class _Opening(websockets.asyncio.client.connect):
    """websockets' opening handshake, with the kit's rule for redirects.

    websockets follows a redirect on its own and sends the same headers (the token) to the
    new address, whichever origin it is: evidence of the wrong server, and a credential
    handed to it. Here a redirect is followed only when asked, only to the same origin,
    and each hop is kept (``redirects``) for the trace.
    """

    def __init__(self, uri: str, *, follow: bool, **kwargs: Any):
        super().__init__(uri, **kwargs)
        self._follow = follow
        self._origin = _origin(uri)
        self.redirects: list[dict[str, Any]] = []

    def process_redirect(self, exc: Exception) -> Exception | str:
        target = super().process_redirect(exc)
        if not isinstance(target, str):
            return target  # not a redirect websockets would follow: the error as it is
        assert isinstance(exc, InvalidStatus)
        hop = {"status": exc.response.status_code, "location": redact_url(target)}
        if not self._follow:
            return exc  # reported as the 3xx it is, with its Location
        if _origin(target) != self._origin:
            self.redirects.append({**hop, "followed": False})
            return InvalidHandshake(
                f"not following the redirect to another origin ({redact_url(target)}): "
                "the credentials would go with it"
            )
        self.redirects.append({**hop, "followed": True})
        return target


def _bound_reads(ws: ClientConnection) -> None:
    """Make the connection read the socket in pieces of at most _READ_SIZE bytes.

    websockets inflates every frame one read holds before it can stop reading: at deflate's
    ratio of about 1,000 to 1, asyncio's read of 256 KiB can be 260 MiB of frames at once,
    whatever the frame limit (a compressed flood). Smaller reads bound that; a burst of
    small frames pays one more system call per 64 KiB, nothing measurable. asyncio's
    transports name their read size ``max_size`` (plain sockets directly, TLS in the
    transport's SSL protocol); a transport without it is left as it is.
    """
    transport = ws.transport
    for reader in (transport, getattr(transport, "_ssl_protocol", None)):
        if isinstance(getattr(reader, "max_size", None), int):
            reader.max_size = _READ_SIZE  # type: ignore[union-attr]


def _excerpt(body: str, limit: int = 200) -> str:
    """The start of an HTTP body for a message (an HTML page runs to kilobytes); the trace's
    ``body`` field keeps the first 2,000 characters."""
    text = " ".join(body.split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} chars)"


def _origin(uri: str) -> tuple[str, str, int]:
    parsed = urlsplit(uri)
    default = 443 if parsed.scheme == "wss" else 80
    return (parsed.scheme, (parsed.hostname or "").lower(), parsed.port or default)


def _connect_error(exc: BaseException, url: str, timeout: float) -> BaseException:
    """Translate what websockets and the OS raise into the netra_ws exception tree."""
    if isinstance(exc, InvalidStatus):
        response = exc.response
        body = response.body.decode("utf-8", "replace") if response.body else ""
        return HandshakeRejected(
            f"handshake rejected with HTTP {response.status_code} {response.reason_phrase}"
            f" by {url}: {_excerpt(body) or 'no body'}",
            url=url,
            status=response.status_code,
            headers=redact_headers(response.headers.raw_items()),
            body=redact_text(body[:2000]),
        )
    if isinstance(exc, TimeoutError):
        return WaitTimeout(
            f"opening handshake with {url} took longer than {timeout} s",
            waited_for="opening handshake",
            timeout=timeout,
        )
    if isinstance(exc, ConnectionRefusedError):
        return ConnectRefused(
            f"connection refused by {url}: is the server running?", url=url, cause=exc
        )
    if isinstance(exc, OSError):
        return ConnectRefused(f"cannot reach {url}: {exc}", url=url, cause=exc)
    if isinstance(exc, (InvalidHandshake, InvalidURI)):
        return ConnectFailed(
            f"handshake with {url} failed: {redact_text(str(exc))}", url=url, cause=exc
        )
    return exc  # cancellation and programming errors pass through untouched
