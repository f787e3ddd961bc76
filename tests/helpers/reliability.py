"""Helpers of the reliability suites (tests/test_reliability_*.py).

- :func:`secret_forms` and :func:`scan_for_secrets`: every form a credential can leak in,
  and a scan of files and texts for them;
- :class:`ServerProcess`: ``python -m netra_ws serve`` in a subprocess, logging every frame
  it sends (websockets' debug lines), so a test can kill it and compare;
- :class:`TrickleProxy`: a TCP proxy that hands the server's bytes to the client a few at a
  time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from conftest import t

from netra_ws._loop import LoopThread
from netra_ws.tokens import encode_subprotocol_token

# --- secrets ---------------------------------------------------------------------------------


def secret_forms(token: str | None = None, secret: str | None = None) -> dict[str, str]:
    """Each way ``token`` and ``secret`` can appear in a file, by name.

    The token, its signature part alone (a leak of the signature is enough to forge
    nothing, but shows the token passed through), its ``jwt.<base64url>`` subprotocol form
    without the prefix, and the signing secret.
    """
    forms = {}
    if token:
        forms["token"] = token
        signature = token.rsplit(".", 1)[-1]
        if len(signature) >= 8:  # ("alg: none" tokens have none)
            forms["token signature"] = signature
        forms["token as base64url subprotocol"] = encode_subprotocol_token(token)[len("jwt.") :]
    if secret:
        forms["signing secret"] = secret
    return forms


# Any JWT, and any JWT in the browser's base64url subprotocol form (base64 of 'eyJ' is 'ZXlK'):
# tokens minted inside a run (a notebook's, a probe's) are not known to the test.
JWT_SHAPES = {
    "a JWT": re.compile(rb"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    "a base64url JWT": re.compile(rb"ZXlK[A-Za-z0-9_-]{20,}"),
}


def scan_for_secrets(
    places: Iterable[Path],
    texts: Mapping[str, str],
    secrets: Mapping[str, str],
    *,
    any_jwt: bool = False,
) -> tuple[int, list[str]]:
    """Look for every form of ``secrets`` in every file under ``places`` and in ``texts``;
    with ``any_jwt``, for anything shaped like a JWT too.

    Returns (the number of files and texts scanned, one line per leak found).
    """
    scanned, leaks = 0, []
    found: list[tuple[str, bytes]] = []
    for place in places:
        files = sorted(p for p in place.rglob("*") if p.is_file()) if place.is_dir() else [place]
        found += [(str(path), path.read_bytes()) for path in files]
    found += [(where, text.encode("utf-8", "surrogatepass")) for where, text in texts.items()]
    for where, data in found:
        scanned += 1
        leaks += [f"{name} in {where}" for name, value in secrets.items() if value.encode() in data]
        if any_jwt:
            leaks += [
                f"{name} in {where}: {match.group()[:40]!r}…"
                for name, shape in JWT_SHAPES.items()
                for match in shape.finditer(data)
                if name != "a base64url JWT" or _decodes_to_a_jwt(match.group())
            ]
    return scanned, leaks


def _decodes_to_a_jwt(text: bytes) -> bool:
    """True when base64url ``text`` is a JWT encoded: 'ZXlK' followed by twenty letters also
    turns up by chance in the base64 of a notebook's PNG charts (once in a few dozen demos)."""
    try:
        decoded = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except ValueError:
        return False
    return JWT_SHAPES["a JWT"].match(decoded) is not None


# --- a server in a subprocess ----------------------------------------------------------------

# The CLI's serve, with websockets' frame-by-frame debug lines on the server's logger.
_SERVE = """\
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(created).6f %(message)s")
logging.getLogger("netra_ws.server").setLevel(logging.DEBUG)
from netra_ws.cli import main
sys.exit(main(["serve", *sys.argv[1:]]))
"""
# "> TEXT '{"type": "agent_thinking", …}' [270 bytes]": a frame the server is writing.
_SENT = re.compile(
    r"^(?P<created>[\d.]+) > (?P<opcode>TEXT|BINARY) (?P<repr>.*)"
    r" \[(?:\w+, )?(?P<size>\d+) bytes?(?:, continued)?\]$"
)


class ServerProcess:
    """``netra_ws serve`` on 127.0.0.1 port 0 in its own process; its log in ``log_path``.

    Use as a context manager; ``url`` is the main endpoint. :meth:`sent` lists the frames
    the server's log says it wrote (websockets logs each frame just before writing it), so
    a killed server's last logged frame may not have reached the socket.
    """

    def __init__(self, log_path: Path, *args: str, env: Mapping[str, str] | None = None):
        self.log_path = log_path
        self._args = ["--port", "0", *args]
        self._env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> ServerProcess:
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, *self._args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=self._env,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("ws://127.0.0.1:"), self.log()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=t(30))
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: no close frame, no cleanup, no last log line."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=t(30))

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def sent(self) -> list[tuple[str, int, str]]:
        """(opcode, size in bytes, the log's elided repr) of each frame the server wrote."""
        found = (_SENT.match(line) for line in self.log().splitlines())
        return [(m["opcode"].lower(), int(m["size"]), m["repr"]) for m in found if m]

    def wait_for_sent(self, predicate, *, timeout: float) -> list[tuple[str, int, str]]:
        """Poll the log until ``predicate(sent())`` holds; raise TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = self.sent()
            if predicate(sent):
                return sent
            time.sleep(0.005)
        raise TimeoutError(f"the server log never showed it; it shows:\n{self.log()[-3000:]}")


# --- a proxy that trickles -------------------------------------------------------------------


class TrickleProxy:
    """A TCP proxy on 127.0.0.1 port 0 to ``upstream`` (host, port), on its own loop thread.

    The client's bytes go through at once; the server's are handed on ``chunk`` bytes at a
    time, ``interval`` seconds apart, so every frame arrives in many small TCP reads.
    ``url(path)`` is the proxied WebSocket URL. Stops with ``stop()`` or the ``with`` block.
    """

    def __init__(self, upstream: tuple[str, int], *, chunk: int = 7, interval: float = 0.001):
        self.upstream, self.chunk, self.interval = upstream, chunk, interval
        self.pieces = 0  # server-to-client writes made, to show it really trickled
        self._loop = LoopThread(name="trickle-proxy")
        self._server = self._loop.run(asyncio.start_server(self._pipe, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def url(self, path: str = "/api/v1/websocket") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        server_r, server_w = await asyncio.open_connection(*self.upstream)

        async def forward(reader, writer, trickle: bool) -> None:
            try:
                while data := await reader.read(65536):
                    pieces = [data[i : i + self.chunk] for i in range(0, len(data), self.chunk)]
                    for piece in pieces if trickle else [data]:
                        writer.write(piece)
                        await writer.drain()
                        if trickle:
                            self.pieces += 1
                            await asyncio.sleep(self.interval)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(
            forward(client_r, server_w, trickle=False), forward(server_r, client_w, trickle=True)
        )

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()

        self._loop.run(close(), timeout=t(10))
        self._loop.stop()

    def __enter__(self) -> TrickleProxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# The faults of tests/test_reliability_faults.py, by name: docs/RELIABILITY.md counts them.
FAULTS = ("tcp drop", "close 1011", "SIGKILL", "stall past the timeout", "trickle")
