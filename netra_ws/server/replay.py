"""Replay: serve the frames a trace received back to a new client, with their timing. Pure.

A recorded session (the kit's JSON Lines trace, or a HAR capture imported into one) becomes a
local, repeatable fixture: ``serve --replay data/staging.jsonl --speed 1``. The replay has
two phases, both timed as recorded and divided by ``speed``:

- the *greeting*: frames the recording received before its first send (such as
  ``connection_established``), played from the moment the client connects;
- the *response*: every later received frame, played from the moment the new client sends
  its first message (never before the greeting is over, so the order is always the
  recorded one).

Frame data is sent exactly as recorded: text as text, binary (base64 in the trace) as
bytes, malformed JSON as it was. When the recording ended with the server closing (a close
code, or a TCP drop recorded as 1006), the replay ends the same way; when the client closed
it, the replay waits for the new client to close. The client's own messages get no reply.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..trace import Trace

__all__ = ["Replay", "ReplayClose", "ReplayFrame", "ReplayPhase", "load_replay"]


@dataclass(frozen=True)
class ReplayFrame:
    """One recorded frame: ``delay`` seconds after the previous one (or the phase start)."""

    event: str | None
    delay: float
    data: str | bytes
    seq: int | None = None


@dataclass(frozen=True)
class ReplayClose:
    """How the server ended the recording: a close ``code`` (1006: TCP dropped, no frame)."""

    code: int
    reason: str
    delay: float


@dataclass(frozen=True)
class ReplayPhase:
    """Frames played in a row, then possibly the recorded close."""

    frames: tuple[ReplayFrame, ...] = ()
    close: ReplayClose | None = None

    def scaled(self, speed: float) -> ReplayPhase:
        """The same phase with every delay divided by ``speed``."""
        return ReplayPhase(
            tuple(replace(f, delay=f.delay / speed) for f in self.frames),
            replace(self.close, delay=self.close.delay / speed) if self.close else None,
        )


@dataclass(frozen=True)
class Replay:
    """A trace turned into what the server plays. Build it with :func:`load_replay`.

    Pass it (or just the trace's path) to ``ServerConfig(replay=…, replay_speed=…)``.
    """

    greeting: ReplayPhase
    response: ReplayPhase
    source: str = ""

    def scaled(self, speed: float) -> Replay:
        """The same replay ``speed`` times faster (2.0: every gap halved)."""
        if not speed > 0:
            raise ValueError(f"replay speed must be > 0, not {speed}")
        return replace(
            self, greeting=self.greeting.scaled(speed), response=self.response.scaled(speed)
        )

    @property
    def frame_count(self) -> int:
        return len(self.greeting.frames) + len(self.response.frames)


def load_replay(source: str | os.PathLike[str] | Trace) -> Replay:
    """Build a :class:`Replay` from a trace file (or a loaded :class:`Trace`).

    Raises ``ValueError`` when the trace received nothing to replay or a frame lacks its
    data or time (a damaged import): fix or re-capture the trace.
    """
    from ..trace import Trace, read_trace  # here: pandas loads only when a replay is asked for

    trace = source if isinstance(source, Trace) else read_trace(source)
    name = str(trace.path or trace.session or "trace")
    frames = trace.frames
    received = [f for f in frames if f.get("dir") == "receive"]
    if not received:
        raise ValueError(f"{name}: the trace received no frames, so there is nothing to replay")
    # One clock for the whole trace: monotonic when every record has it (our own traces),
    # else wall time (an import may only know wall time).
    timed = [*frames, *(r for r in trace.records if r.get("kind") in ("open", "close"))]
    clock = "t_mono_ns" if all(type(r.get("t_mono_ns")) is int for r in timed) else "t_wall_ns"
    for record in received:
        if type(record.get(clock)) is not int or not isinstance(record.get("data"), str):
            raise ValueError(f"{name}: frame seq={record.get('seq')} has no {clock} or no data")

    sends = [f[clock] for f in frames if f.get("dir") == "send" and type(f.get(clock)) is int]
    first_send = min(sends) if sends else None
    opened = next((r for r in trace.records if r.get("kind") == "open"), None)
    connect_at = opened[clock] if opened and type(opened.get(clock)) is int else None
    greeting = [f for f in received if first_send is None or f[clock] < first_send]
    response = [f for f in received if first_send is not None and f[clock] >= first_send]
    close = _server_close(trace)
    close_at = close[clock] if close is not None and type(close.get(clock)) is int else None
    # The close goes with the phase it happened in.
    close_in_greeting = first_send is None or (close_at is not None and close_at < first_send)

    greeting_start = connect_at if connect_at is not None else received[0][clock]
    return Replay(
        greeting=_phase(greeting, greeting_start, clock, close if close_in_greeting else None),
        response=_phase(response, first_send or 0, clock, None if close_in_greeting else close),
        source=name,
    )


def _server_close(trace: Trace) -> dict[str, Any] | None:
    # The first close record tells who closed first; a HAR import may also hold the echo.
    close = next((r for r in trace.records if r.get("kind") == "close"), None)
    if close is None or close.get("initiated_by") == "client":
        return None  # the recording's client hung up: the new client decides when to
    return close


def _phase(
    records: list[dict[str, Any]], start: int, clock: str, close: dict[str, Any] | None
) -> ReplayPhase:
    frames: list[ReplayFrame] = []
    previous = start
    for record in records:
        # max(): an import's clock can step back a little; a frame is never due early.
        frames.append(
            ReplayFrame(
                event=record.get("event"),
                delay=max(record[clock] - previous, 0) / 1e9,
                data=_raw(record),
                seq=record.get("seq"),
            )
        )
        previous = max(previous, record[clock])
    ending = None
    if close is not None:
        dropped = close.get("received_close_frame") is False or close.get("code") == 1006
        ending = ReplayClose(
            code=1006 if dropped else int(close.get("code") or 1000),
            reason="" if dropped else str(close.get("reason") or ""),
            delay=max(close[clock] - previous, 0) / 1e9 if type(close.get(clock)) is int else 0.0,
        )
    return ReplayPhase(tuple(frames), ending)


def _raw(record: dict[str, Any]) -> str | bytes:
    if record.get("opcode") == "binary":
        return base64.b64decode(record["data"])
    return record["data"]
