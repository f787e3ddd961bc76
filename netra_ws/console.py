"""``netra-ws connect``: an interactive console that records everything (wscat, with a trace).

A thin network shell over :class:`~netra_ws.client.Session`: frames are printed as they
arrive by a watcher task (the session's reader records them whether or not anyone looks),
with the listing of :mod:`netra_ws.browse`, above the line being typed (prompt_toolkit's
``patch_stdout``), so typing is never broken and no frame is lost. What you type::

    {"type": "ping"}            a JSON object: sent as is
    What did we spend?          a plain line: sent as a user_message
    /user TEXT  /send EVENT [JSON]  /mark LABEL  /quiet SECONDS  /expect EVENT [TIMEOUT]
    /show N  /check  /save  /help  /quit

When stdin or stdout is not a terminal, lines are read plainly (one command a line) and
printed without colour, so the console can be scripted and piped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .analysis import split_runs
from .browse import _safe, format_record, frame_json, select_frames
from .client import Session
from .errors import NetraWsError
from .events import AGENT_EVENTS, RUN_TRIGGER_TYPES, STATUS_TYPES
from .expect import check_run
from .redact import redact_text
from .target import Target
from .verdicts import QUIET_MARK

__all__ = ["COMMANDS", "Console", "run_console"]

COMMANDS: dict[str, str] = {
    "/user": "/user TEXT            send TEXT as a user_message",
    "/send": '/send EVENT [JSON]    send {"type": EVENT, …JSON object fields}',
    "/mark": "/mark LABEL           write a mark into the trace",
    "/quiet": "/quiet SECONDS        listen; say what arrived (the negative probe's window)",
    "/expect": "/expect EVENT [TIMEOUT]  wait for EVENT (default 10 s)",
    "/show": "/show N               the full JSON of frame #N",
    "/check": "/check                the profile checks of the last run",
    "/save": "/save                 write everything to disk; print the trace path",
    "/help": "/help                 this list",
    "/quit": "/quit                 close the connection and leave (also Ctrl-D, Ctrl-C)",
}
_EVENT_NAMES = sorted({*AGENT_EVENTS, *RUN_TRIGGER_TYPES, *STATUS_TYPES, "ping", "error_message"})
# How often the watcher looks for new frames: short enough to feel immediate.
_WATCH_S = 0.02
_HISTORY_ENV = "NETRA_WS_HISTORY"


class Console:
    """The commands of the console over one session; ``say`` prints a line.

    ``handle(line)`` runs one typed line and returns False when the console should end.
    ``watch()`` prints frames as they arrive until the connection closes.
    """

    def __init__(self, session: Session, say: Callable[[str], None], *, color: bool) -> None:
        self.session = session
        self.say = say
        self.color = color
        self._t0: int | None = None
        self._shown = 0  # received frames printed so far
        self._changed = asyncio.Event()

    # -- output ------------------------------------------------------------------------

    def _origin(self) -> int | None:
        if self._t0 is None:
            self._t0 = next(
                (r["t_mono_ns"] for r in self.session.records() if "t_mono_ns" in r), None
            )
        return self._t0

    def show(self, record: dict[str, Any]) -> None:
        self.say(format_record(record, self._origin(), color=self.color))

    def print_new(self) -> None:
        """Print the frames received since the last call, in order."""
        received = self.session.received
        for item in received[self._shown :]:
            self.show(item.record)
        self._shown = len(received)

    async def watch(self) -> None:
        """Print frames as they arrive; on the close, print it and return."""
        while not self.session.closed:
            self.print_new()
            await asyncio.sleep(_WATCH_S)
        self.print_new()
        for record in self.session.records():
            if record.get("kind") in ("close", "error"):
                self.show(record)

    # -- input -------------------------------------------------------------------------

    async def handle(self, line: str) -> bool:
        """Run one typed line; False means: leave."""
        text = line.strip()
        if not text:
            return True
        try:
            if text.startswith("{"):
                return await self._send_json(text)
            if not text.startswith("/"):
                await self._send(self.session.send_user_message(text))
                return True
            command, _, rest = text.partition(" ")
            return await self._command(command, rest.strip())
        except NetraWsError as exc:
            self.say(f"error: {_safe(exc, 300)}")
            return not self.session.closed

    async def _send(self, sending: Awaitable[dict[str, Any]]) -> None:
        record = await sending
        self.print_new()  # what arrived before it, first
        self.show(record)

    async def _send_json(self, text: str, base: dict[str, Any] | None = None) -> bool:
        try:
            obj = json.loads(text) if text else {}
        except ValueError as exc:
            self.say(f"not sent: not JSON ({exc})")
            return True
        if not isinstance(obj, dict):
            self.say("not sent: give a JSON object ({…})")
            return True
        await self._send(self.session.send({**(base or {}), **obj}))
        return True

    async def _command(self, command: str, rest: str) -> bool:
        if command == "/quit":
            return False
        if command == "/help":
            self.say("\n".join(COMMANDS.values()))
        elif command == "/user":
            await self._send(self.session.send_user_message(rest))
        elif command == "/send":
            event, _, fields = rest.partition(" ")
            if not event:
                self.say(COMMANDS["/send"])
            else:
                await self._send_json(fields.strip(), {"type": event})
        elif command == "/mark":
            self.show(self.session.mark(rest or "console mark"))
        elif command == "/quiet":
            await self._quiet(_number(rest, 2.0))
        elif command == "/expect":
            event, _, timeout = rest.partition(" ")
            if not event:
                self.say(COMMANDS["/expect"])
            else:
                await self._expect(event, _number(timeout, 10.0))
        elif command == "/show":
            self._show_frame(rest)
        elif command == "/check":
            self._check()
        elif command == "/save":
            self.save()
        else:
            self.say(f"unknown command {_safe(command, 30)}: /help lists them")
        return True

    async def _quiet(self, window: float) -> None:
        start = len(self.session.received)
        # The labels of Session.quiet(), so the report's timelines show the window.
        self.session.mark(QUIET_MARK, window_s=window)
        await asyncio.sleep(window)
        arrived = self.session.received[start:]
        self.session.mark("quiet window ends", received=len(arrived), reason="timeout")
        if arrived:
            names = ", ".join(_safe(r.name or r.parse_error) for r in arrived)
            self.say(f"quiet window {window:g} s: {len(arrived)} frame(s) arrived: {names}")
        else:
            self.say(f"quiet window {window:g} s: nothing arrived")

    async def _expect(self, event: str, timeout: float) -> None:
        start = len(self.session.received)
        began = time.monotonic()
        while True:
            found = next((r for r in self.session.received[start:] if r.name == event), None)
            waited = time.monotonic() - began
            if found is not None:
                self.session.mark(f"console: expect {event} met", seq=found.seq)
                self.say(f"✓ {_safe(event)} arrived: #{found.seq} after {waited:.3f} s")
                return
            if waited >= timeout or self.session.closed:
                others = [r.name or r.parse_error for r in self.session.received[start:]]
                self.session.mark(f"console: expect {event} not met", timeout_s=timeout)
                ended = "the connection closed" if self.session.closed else f"{timeout:g} s"
                self.say(
                    f"✗ no {_safe(event)} ({ended}); received instead: "
                    + (", ".join(_safe(n) for n in others) or "nothing")
                )
                return
            await asyncio.sleep(_WATCH_S)

    def _show_frame(self, rest: str) -> None:
        seq = rest.lstrip("#")
        frame = next(
            (
                r
                for r in self.session.records()
                if r.get("kind") == "frame" and str(r["seq"]) == seq
            ),
            None,
        )
        if frame is None:
            self.say(f"no frame #{_safe(seq, 20)}: /show N takes a frame number from the listing")
        else:
            self.say(frame_json(frame))  # json.dumps escapes every control character

    def _check(self) -> None:
        records = self.session.records()
        runs = split_runs([r for r in records if r.get("kind") == "frame"])
        if not runs:
            self.say("no run yet: send a user_message first")
            return
        last = select_frames(records, run=len(runs))
        checks = check_run(last)
        self.say(f"run {len(runs)}: {checks.status}")
        for line in checks.explain().splitlines():
            self.say("  " + _safe(line, 300))

    def save(self) -> Path | None:
        """Flush the trace (marks are written at once, and write what is buffered)."""
        self.session.mark("console: saved")
        path = self.session.trace_path
        self.say(f"saved: {path}")
        return path

    def summary(self) -> str:
        records = self.session.records()
        frames = [r for r in records if r.get("kind") == "frame"]
        sent = sum(1 for f in frames if f.get("dir") == "send")
        agent = sum(
            1 for f in frames if f.get("dir") == "receive" and f.get("event") in AGENT_EVENTS
        )
        close = next((r for r in records if r.get("kind") == "close"), None)
        ended = (
            f"close {close.get('code')} by {close.get('initiated_by')}" if close else "not closed"
        )
        return (
            f"{len(frames)} frames ({sent} sent, {len(frames) - sent} received, {agent} agent "
            f"events), {ended}; trace: {self.session.trace_path}"
        )


def _number(text: str, default: float) -> float:
    try:
        return float(text) if text else default
    except ValueError:
        return default


# --- the terminal -------------------------------------------------------------------------


def _history_path() -> Path:
    return Path(os.environ.get(_HISTORY_ENV) or Path.home() / ".netra_ws_history")


def _prompt_session() -> Any:
    """A prompt_toolkit session: completion of commands and event names, history kept
    across sessions (redacted: a token typed into a JSON frame is not written to disk)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory

    class _RedactedHistory(FileHistory):
        def store_string(self, string: str) -> None:
            super().store_string(redact_text(string))

    path = _history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    words = [*COMMANDS, *_EVENT_NAMES]
    return PromptSession(
        history=_RedactedHistory(str(path)),
        completer=WordCompleter(words, sentence=True),
        complete_while_typing=False,
    )


async def _read_lines_tty(console: Console, watcher: asyncio.Task[None]) -> None:
    from prompt_toolkit.patch_stdout import patch_stdout

    prompt = _prompt_session()

    # When the server closes, the prompt is ended so the console can leave.
    def leave(_: object) -> None:
        if prompt.app.is_running:
            prompt.app.exit(exception=EOFError)

    watcher.add_done_callback(leave)
    with patch_stdout(raw=True):  # raw: our colours pass; server text is escaped already
        while not console.session.closed:
            try:
                line = await prompt.prompt_async("netra-ws> ")
            except (EOFError, KeyboardInterrupt):
                return
            if not await console.handle(line):
                return


async def _read_lines_plain(console: Console, watcher: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:  # a daemon thread: a blocked read never holds up the exit
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read, name="netra-ws-console-stdin", daemon=True).start()
    while True:
        getting = asyncio.ensure_future(lines.get())
        await asyncio.wait([getting, watcher], return_when=asyncio.FIRST_COMPLETED)
        if not getting.done():  # the server closed the connection
            getting.cancel()
            return
        line = getting.result()
        if not line or not await console.handle(line):  # end of input, or /quit
            return


async def _console(target: Target, path: Path, color: bool, interactive: bool) -> int:
    def say(text: str) -> None:
        print(text, flush=True)

    say(f"connecting to {target.label}; token: {target.token_source}")
    try:
        session = await target.connect(trace=path, labels={**target.labels, "tool": "console"})
    except NetraWsError as exc:
        say(f"error: {_safe(exc, 500)}")
        say(f"trace: {path}")
        return 1
    say(f"recording to {path}  (/help for commands, Ctrl-D to leave)")
    console = Console(session, say, color=color)
    opened = next((r for r in session.records() if r.get("kind") == "open"), None)
    if opened is not None:
        console.show(opened)
    watcher = asyncio.create_task(console.watch())
    try:
        if interactive:
            await _read_lines_tty(console, watcher)
        else:
            await _read_lines_plain(console, watcher)
    except (KeyboardInterrupt, asyncio.CancelledError):
        pass
    finally:
        await session.close()
        await watcher
    say(console.summary())
    if interactive:
        # The last lines must reach the terminal before the process ends: a pseudo-terminal
        # (an IDE's, tmux's, pexpect's) can drop what is still queued when its writer exits.
        with contextlib.suppress(ImportError, OSError):  # no termios: Windows
            import termios

            with contextlib.suppress(termios.error):
                termios.tcdrain(sys.stdout.fileno())
    return 0


def run_console(target: Target, *, out: str | Path = "data", color: bool = False) -> int:
    """Run the console against ``target`` until the user leaves or the server closes.

    The trace goes to ``out/console-<time>/console.jsonl``; its path is printed at the start
    and in the closing summary. ``color`` adds ANSI colours (the CLI decides: a terminal,
    no ``--no-color``, no ``$NO_COLOR``). Returns the exit status (1: could not connect).
    """
    # Microseconds too: two consoles started in the same second get folders of their own.
    folder = Path(out) / time.strftime(
        f"console-%Y%m%dT%H%M%S-{time.time_ns() // 1000 % 10**6:06d}"
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "console.jsonl"
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        return asyncio.run(_console(target, path, color, interactive))
    except KeyboardInterrupt:
        return 130
