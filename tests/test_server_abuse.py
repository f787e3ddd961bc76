"""Bad input never stops the server nor disturbs another connection."""

from __future__ import annotations

import asyncio
import json

from conftest import RUN, run, t

from netra_ws import connect, read_trace

JUNK: list[str | bytes] = [
    "{not json",
    "",
    "null",
    "[]",
    "42",
    '"just a string"',
    "[" * 100_000,  # deeper than the JSON parser's stack
    '{"type": 5}',
    '{"type": null, "payload": []}',
    '{"type": "user_message"}',  # no text: AGENT_REQUEST_ERROR
    '{"type": "user_message", "payload": "not an object"}',
    '{"type": "start_agent", "user_request": ["not", "text"]}',
    '{"type": "agent_completed", "payload": {}}',
    '{"type": "frobnicate"}',
    b"\x00\xff\xfe binary junk",
    b'{"type": "ping", "timestamp": 1}',
    "\ud7ff" * 1000,
]


def _flood(count: int) -> list[str | bytes]:
    kinds = [
        lambda i: json.dumps({"type": "ping", "timestamp": i}),
        lambda i: json.dumps({"type": f"unknown_{i}"}),
        lambda i: "{broken " + str(i),
        lambda i: json.dumps({"type": "tool_executing", "payload": {"n": i}}),
        lambda i: bytes([i % 256]) * 10,
    ]
    frames = [kinds[i % len(kinds)](i) for i in range(count)]
    for i in range(0, count, 50):  # a run every 50 frames: 100 runs on the abusive connection
        frames[i] = json.dumps({"type": "message", "message": f"flood run {i}"})
    return frames


async def _bystander_run(session, text):
    await session.send_user_message(text)
    return await session.collect(until="agent_completed", timeout=t(20))


def test_abuse_never_disturbs_another_connection(server, tmp_path):
    bystander_path, abuser_path = tmp_path / "bystander.jsonl", tmp_path / "abuser.jsonl"

    async def scenario():
        async with (
            connect(server.url, trace=bystander_path) as bystander,
            connect(server.url, trace=abuser_path) as abuser,
        ):
            await bystander.expect("connection_established", timeout=t(5))
            await abuser.expect("connection_established", timeout=t(5))
            results = [await _bystander_run(bystander, "before")]

            for frame in JUNK:
                await abuser.send(frame)
            await abuser.send({"type": "ping", "timestamp": 4242})
            pong = await abuser.expect(
                lambda r: r.name == "pong" and r.event.payload["original_timestamp"] == 4242,
                timeout=t(10),
            )

            async def flood():
                for frame in _flood(5000):
                    await abuser.send(frame)

            async def meanwhile():
                return [await _bystander_run(bystander, f"during {i}") for i in range(3)]

            _, during = await asyncio.gather(flood(), meanwhile())
            results += during
            await abuser.send({"type": "ping", "pad": "x" * (2 * 1024 * 1024)})
            await abuser.collect(timeout=t(10))  # until the server closes it
            results.append(await _bystander_run(bystander, "after"))

            async with connect(server.url) as newcomer:
                await newcomer.expect("connection_established", timeout=t(5))
                fresh = await _bystander_run(newcomer, "new connection")
            return pong, results, fresh, abuser.close_code

    pong, results, fresh, abuser_code = run(scenario())
    assert pong.name == "pong"
    assert abuser_code == 1009  # only the abuser is cut, for its frame above max size
    assert [r.reason for r in results] == ["matched"] * 5 and fresh.names == RUN
    assert all(r.names == RUN for r in results)

    # The bystander's trace holds its own frames only: its runs, nothing of the abuse.
    bystander = read_trace(bystander_path)
    received = [f for f in bystander.frames if f["dir"] == "receive"]
    assert [f["event"] for f in received] == ["connection_established"] + RUN * 5
    assert len({f["run_id"] for f in received[1:]}) == 5
    assert not any(f.get("parse_error") or f["event"] in ("ack", "pong") for f in received)

    abuser = read_trace(abuser_path)
    errors = [f for f in abuser.frames if f.get("error_code") == "JSON_PARSE_ERROR"]
    assert len(errors) >= 8  # every non-JSON frame of the junk got its error frame
    runs = {f["run_id"] for f in abuser.frames if f["dir"] == "receive" and f.get("run_id")}
    assert len(runs) >= 50  # the flood's runs really started
    close = next(r for r in abuser.records if r["kind"] == "close")
    assert close["code"] == 1009
