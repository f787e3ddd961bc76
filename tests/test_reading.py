"""The read path: ``async for``, ``next``/``expect``/``collect`` sharing one place, and the
checks every read frame goes through (AUTH_FAILED, ``until`` names) without a parse each.

A tiny scripted ``websockets`` server on 127.0.0.1 sends exactly the given texts, then
closes with the given code: what the reader must do with them is all that is tested here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import run, t
from websockets.asyncio.server import ServerConnection, serve

from netra_ws import AuthenticationFailed, connect
from netra_ws.client import Received, Session, _matcher
from netra_ws.trace import _raw_frame_record

THINKING = json.dumps({"type": "agent_thinking", "run_id": "r1", "payload": {"step_number": 1}})
COMPLETED = json.dumps({"type": "agent_completed", "run_id": "r1", "payload": {}})
# AUTH_FAILED with its "_" escaped: the same JSON string, but not the same text.
AUTH_ESCAPED = '{"type":"error_message","error_code":"AUTH\\u005fFAILED"}'


@asynccontextmanager
async def scripted(texts: list[str], close_code: int = 1000) -> AsyncIterator[str]:
    async def handler(ws: ServerConnection) -> None:
        for text in texts:
            await ws.send(text)
        await ws.close(close_code, "scripted")

    async with serve(handler, "127.0.0.1", 0, ping_interval=None) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def read(texts: list[str], reader: Callable[[Session], Awaitable[Any]], code: int = 1000) -> Any:
    async def scenario() -> Any:
        async with scripted(texts, code) as url, connect(url) as session:
            return await reader(session)

    return run(scenario())


def test_async_for_hands_out_what_next_left_until_the_close():
    texts = [
        json.dumps({"type": "agent_thinking", "payload": {"step_number": i}}) for i in range(5)
    ]

    async def reader(session: Session) -> tuple[Received, list[Received], Received | None]:
        first = await session.next(timeout=t(5))
        rest = [frame async for frame in session]
        after = [frame async for frame in session]  # closed: ends at once, nothing again
        return first, rest, after[0] if after else None

    first, rest, again = read(texts, reader)
    assert first.data == texts[0]
    assert [r.data for r in rest] == texts[1:]
    assert [r.seq for r in rest] == [2, 3, 4, 5]
    assert again is None


def test_async_for_interleaved_with_next_hands_each_frame_out_once():
    texts = [THINKING] * 6

    async def reader(session: Session) -> list[int]:
        seqs = []
        async for frame in session:
            seqs.append(frame.seq)
            if frame.seq == 2:
                seqs.append((await session.next(timeout=t(5))).seq)  # takes frame 3
        return seqs

    assert read(texts, reader) == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("how", ["async for", "collect", "next", "expect"])
def test_an_escaped_auth_failed_is_still_an_authentication_failure(how: str):
    async def reader(session: Session) -> Any:
        if how == "async for":
            return [frame async for frame in session]
        if how == "collect":
            return await session.collect(None, timeout=t(5))
        if how == "next":
            await session.next(timeout=t(5))
            return await session.next(timeout=t(5))
        return await session.expect("agent_completed", timeout=t(5))

    with pytest.raises(AuthenticationFailed) as info:
        read([THINKING, AUTH_ESCAPED, COMPLETED], reader, code=1008)
    assert info.value.frame.seq == 2
    assert info.value.close_code == 1008


def test_until_names_match_frames_whose_text_does_not_spell_them():
    # "error" is normalized to error_message; \/ and \u escapes spell a name differently.
    texts = [
        THINKING,
        json.dumps({"type": "error", "data": {"error_code": "X"}}),
        '{"type":"a\\/b"}',
        '{"type":"agent_\\u0063ompleted","payload":{}}',
    ]

    async def reader(session: Session) -> tuple[Any, ...]:
        error = await session.collect("error_message", timeout=t(5))
        slash = await session.expect("a/b", timeout=t(5))
        done = await session.collect(["agent_completed", "never"], timeout=t(5))
        return error, slash, done

    error, slash, done = read(texts, reader)
    assert error.reason == "matched" and error.names == ["agent_thinking", "error_message"]
    assert slash.name == "a/b"
    assert done.reason == "matched" and done.matched is not None and done.matched.seq == 4


def test_checks_on_each_read_frame_rule_most_frames_out_without_a_parse(monkeypatch):
    import netra_ws.trace as trace_module

    parsed: list[str] = []
    parse = trace_module._parse_text
    monkeypatch.setattr(
        trace_module, "_parse_text", lambda data: parsed.append(data) or parse(data)
    )
    received = Received(_raw_frame_record(1, "receive", THINKING, t_wall_ns=1, t_mono_ns=2))
    assert not received._is_auth_failure()
    assert not _matcher("agent_completed")(received)
    assert not _matcher(["agent_completed", "error_message"])(received)
    assert parsed == []  # a burst read with collect(until=…) costs no parse per frame
    assert _matcher("agent_thinking")(received)
    assert parsed == [THINKING]
    assert received.record["event"] == "agent_thinking"


def raw(text: str) -> Received:
    """A received frame as a burst leaves it: not normalized yet."""
    return Received(_raw_frame_record(1, "receive", text, t_wall_ns=1, t_mono_ns=2))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        (json.dumps({"type": "error", "data": {"error_code": "X"}}), "error_message"),
        ('{"type":"a\\/b"}', "a/b"),
        ('{"type":"agent_\\u0063ompleted","payload":{}}', "agent_completed"),
        ('{"type":"system_message","data":{"event":"agent_completed"}}', "agent_completed"),
    ],
)
def test_the_text_check_never_rules_out_a_frame_that_matches(text: str, name: str):
    # End to end the writer usually normalizes a few frames before anyone reads them; a
    # burst of more than 64 is read raw, as here.
    assert _matcher(name)(raw(text))
    assert _matcher([name, "other"])(raw(text))


def test_an_escaped_auth_failed_read_raw_is_an_auth_failure():
    assert raw(AUTH_ESCAPED)._is_auth_failure()
    assert raw('{"type":"error_message","error_code":"AUTH_FAILED"}')._is_auth_failure()
    assert not raw('{"type":"error_message","error_code":"AUTH_FAILED_NOT"}')._is_auth_failure()
