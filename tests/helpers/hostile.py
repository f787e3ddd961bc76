"""Hostile servers for the tests: raw sockets on 127.0.0.1, port 0, that break the rules.

A well-behaved WebSocket library cannot send an invalid UTF-8 text frame, a masked server
frame or a redirect to another server, so these servers write the bytes themselves: a
minimal HTTP/1.1 upgrade (RFC 6455 §4.2.2), then whatever the test asks for.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
import zlib
from collections.abc import Callable

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(
    opcode: int, payload: bytes, *, masked: bool = False, fin: bool = True, rsv1: bool = False
) -> bytes:
    """One WebSocket frame as a server would write it (or, ``masked``, as it must not)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", size)
    if masked:
        key = b"\x01\x02\x03\x04"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        head += key
    return head + payload


def upgrade_response(request: bytes) -> bytes:
    """The 101 answer to a client's upgrade request."""
    key = next(
        line.split(b":", 1)[1].strip()
        for line in request.split(b"\r\n")
        if line.lower().startswith(b"sec-websocket-key:")
    )
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


class HostileServer:
    """Accepts connections; for each, ``behave(sock, request)`` writes what it likes.

    Use as a context manager; ``url`` is ``ws://127.0.0.1:<port>/api/v1/websocket``.
    """

    def __init__(self, behave: Callable[[socket.socket, bytes], None]):
        self._behave = behave
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/api/v1/websocket"
        self.requests: list[bytes] = []
        self._stopping = threading.Event()
        self._listener.settimeout(0.05)  # closing a socket does not wake a blocked accept()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            sock.settimeout(None)
            with sock:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                self.requests.append(request)
                with contextlib.suppress(OSError):  # the client hung up first: fine
                    self._behave(sock, request)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()


def welcome_then(*frames: bytes, linger: float = 0.2) -> Callable[[socket.socket, bytes], None]:
    """Upgrade, send a proper connection_established, then these raw frames, then wait."""
    welcome = b'{"type":"connection_established","data":{"user_id":"alice-12..."}}'

    def behave(sock: socket.socket, request: bytes) -> None:
        sock.sendall(upgrade_response(request) + frame(0x1, welcome) + b"".join(frames))
        sock.settimeout(linger)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass

    return behave


def http_answer(status: str, headers: dict[str, str], body: bytes = b"") -> Callable[..., None]:
    """Answer the upgrade request with a plain HTTP response (a page, a redirect, …)."""
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {len(body)}")
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def behave(sock: socket.socket, request: bytes) -> None:
        sock.sendall(raw)

    return behave


def deflated(text: bytes) -> bytes:
    """``text`` compressed as one permessage-deflate message without context takeover."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(text) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return data[:-4] if data.endswith(b"\x00\x00\xff\xff") else data


def deflate_flood(count: int, size: int, *, linger: float = 30.0) -> Callable[..., None]:
    """Upgrade with permessage-deflate, welcome, then ``count`` text frames of ``size``
    bytes each, compressed about a thousand to one (the flood of Issue #22: 24 frames of
    60 MiB are 1.5 MB on the wire), then hold the connection open for ``linger`` seconds."""
    head = b'{"type":"agent_thinking","data":{"thought":"'
    body = head + b"a" * (size - len(head) - 3) + b'"}}'
    # RSV1 set: a compressed message (RFC 7692 §6).
    flood = frame(0x1, deflated(body), rsv1=True)
    welcome = frame(0x1, deflated(b'{"type":"connection_established","data":{}}'), rsv1=True)

    def behave(sock: socket.socket, request: bytes) -> None:
        if b"permessage-deflate" not in request.lower():
            raise AssertionError("the client did not offer permessage-deflate")
        answer = upgrade_response(request).replace(
            b"\r\n\r\n",
            b"\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover"
            b"; client_no_context_takeover\r\n\r\n",
        )
        sock.sendall(answer + welcome)
        for _ in range(count):
            sock.sendall(flood)
        sock.settimeout(linger)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass

    return behave
