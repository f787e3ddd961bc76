"""The Issue #937 workflow as Locust users: ``locust -f <this file> --host ws://…``.

Find this file's path with ``python -m netra_ws.load`` (it prints it), then::

    locust -f "$LOCUSTFILE" --host ws://127.0.0.1:8765/api/v1/websocket \\
        --headless -u 2000 -r 200 -t 60s --csv data/load
    # distributed: one master, one worker per core (the same lines on other machines,
    # with --master-host=<the master's address>)
    locust -f "$LOCUSTFILE" --host ws://… --master --expect-workers 2 \\
        --headless -u 2000 -r 200 -t 60s
    locust -f "$LOCUSTFILE" --worker          # twice

Each user, in a loop: mints a token (the development secret, or ``$NETRA_WS_JWT_SECRET``,
for a reference server; ``--token-file`` for a real one: one token per line, user k takes
line k), connects, expects ``connection_established``, sends ``user_message`` with its own
``run_id``, collects until the terminal event, and has :func:`netra_ws.load.judge_session`
check it (the ``--expect-profile``, and that no event of another user's run arrived). Locust's
stats get a row per phase (``connect``, ``first event``, ``gap → <event>``, ``run``) and
each failed session one failure on ``run``, named by :data:`netra_ws.load.FAILURES`.

One session in ``--trace-every`` N (and every failed one, up to 100 per worker) is written
as a kit trace to ``data/load-<time>/<worker>/<worker>-NNNNNN.jsonl``: read them with
``load_traces`` or ``python -m netra_ws report data/load-<time>``.

Locust runs each user as a gevent greenlet and monkey-patches sockets and threads, so the
session is websockets' threading client (:mod:`websockets.sync.client`): its reader thread
becomes a greenlet and every wait yields to the hub. No asyncio loop is started here.
Import this module only in a Locust process: importing Locust patches the interpreter.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt
from locust import User, constant, events, task
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.proxy import get_proxy
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

# Absolute imports: Locust loads a locustfile by its path, outside its package.
from netra_ws.events import AGENT_EVENTS, TERMINAL_EVENTS
from netra_ws.expect import DEFAULT_PROFILE, Profile, load_profile
from netra_ws.load import CONNECT, RUN, judge_session, trace_path
from netra_ws.server.app import DEFAULT_PATHS
from netra_ws.tokens import DEFAULT_ENVIRONMENT, mint_token
from netra_ws.trace import TraceWriter, write_trace

__all__ = ["NetraUser"]

# Failed sessions outside the sample still leave a trace, up to this many per worker: the
# evidence of what went wrong, without filling the disk when everything fails.
_FAILED_TRACES_KEPT = 100


@events.init_command_line_parser.add_listener
def _options(parser: LocustArgumentParser) -> None:
    group = parser.add_argument_group("netra-ws", "the Issue #937 workflow per user")
    group.add_argument(
        "--token-file",
        default="",
        help="one JWT per line (user k takes line k mod n); default: mint one per user with"
        " $NETRA_WS_JWT_SECRET, else the reference server's development secret",
    )
    group.add_argument(
        "--token-env",
        default=DEFAULT_ENVIRONMENT,
        help="the env claim of minted tokens (the server's serve --env)",
    )
    group.add_argument(
        "--trace-every",
        type=int,
        default=100,
        help="record one session in N as a kit trace (0: none; failed sessions are kept too)",
    )
    group.add_argument(
        "--trace-dir",
        default="",
        help="where traces go (default data/load-<time>, one folder per worker)",
    )
    group.add_argument(
        "--expect-profile",
        default=DEFAULT_PROFILE,
        help="the expectation profile each run is checked with (Locust owns --profile)",
    )
    group.add_argument(
        "--run-timeout", type=float, default=30.0, help="seconds for connect and for the run"
    )
    group.add_argument(
        "--message", default="Analyze my costs for the last 30 days", help="the user_message"
    )


@events.init.add_listener
def _name_the_run(environment: Environment, **_: Any) -> None:
    # The master (or a local run) names the trace folder; Locust sends its options to the
    # workers with every spawn, so all of them write under the same data/load-<time>.
    options = environment.parsed_options
    if options is not None and not isinstance(environment.runner, WorkerRunner):
        if not options.trace_dir:
            options.trace_dir = time.strftime("data/load-%Y%m%dT%H%M%S")
        print(f"netra-ws: sampled traces go to {options.trace_dir}", flush=True)
        if options.csv_prefix:
            environment.events.quit.add_listener(_final_csv)


def _final_csv(**_: Any) -> None:
    # Locust's --csv files are a snapshot taken every CSV_STATS_INTERVAL_SEC by a greenlet
    # that still runs when `quit` fires, just before the files are closed: the last
    # snapshot can miss the last second of a run. Waiting one interval (a gevent yield)
    # lets it write the final figures, so the CSV agrees with the summary printed above.
    time.sleep(CSV_STATS_INTERVAL_SEC + 0.2)


class NetraUser(User):
    """One simulated user running the Issue #937 workflow again and again.

    ``wait_time`` is zero: a user is always in a session, so ``-u N`` means N concurrent
    workflows (subclass and set ``wait_time`` for think time). ``--host`` is the WebSocket
    URL; a URL without a path gets ``/api/v1/websocket``.
    """

    wait_time = constant(0)
    _numbers = itertools.count(1)  # users of this process
    _sessions = itertools.count(1)  # sessions of this process: the sampling counter
    _failed_traces = itertools.count(1)
    _tokens: list[str] | None = None

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        assert options is not None, "run me with the locust command"
        self.options = options
        self.url = _with_path(self.host or "")
        # The proxy from the environment, looked up once: websockets would scan os.environ
        # at every connect (7 % of a worker's CPU at 250 sessions/s).
        self.proxy = get_proxy(parse_uri(self.url))
        # Loaded once: reading the profile's JSON per session doubled the judge's cost.
        self.profile = _profile(options.expect_profile)
        runner = environment.runner
        index = runner.worker_index if isinstance(runner, WorkerRunner) else None
        self.worker = f"worker-{index}" if index is not None else "local"
        number = next(self._numbers)
        self.user_id = f"load-{self.worker}-{number:06d}"
        if options.token_file:
            tokens = _read_tokens(options.token_file)
            self.token = tokens[(number - 1) % len(tokens)]
            self.user_id = str(jwt.decode(self.token, options={"verify_signature": False})["sub"])
        else:
            self.token = mint_token(self.user_id, env=options.token_env, expires_in=24 * 3600)

    @task
    def workflow(self) -> None:
        """One session: connect, converse, judge, report to Locust."""
        session = next(self._sessions)
        every = self.options.trace_every
        sampled = every > 0 and (session - 1) % every == 0
        path = trace_path(self.options.trace_dir, self.worker, session) if sampled else None
        # An unsampled session is written only if it fails: then that is why it was kept.
        labels = {"load": "sampled" if sampled else "failed", "worker": self.worker}
        writer = TraceWriter(path, target=self.url, labels={**labels, "user": self.user_id})
        started = time.perf_counter()
        try:
            failure, detail = self._converse(writer)
        finally:
            writer.close()
        records = writer.records
        result = judge_session(records, failure=failure, detail=detail, profile=self.profile)
        fire = self.environment.events.request.fire
        for name, ms in result.timings:
            if name != RUN:
                fire(request_type="WS", name=name, response_time=ms, response_length=0)
        elapsed_ms = result.run_ms or (time.perf_counter() - started) * 1000
        fire(
            request_type="WS",
            name=RUN,
            response_time=elapsed_ms,
            response_length=len(records),
            exception=result.failure,  # Locust's failures table: the failure's name
            context={"detail": result.detail, "user": self.user_id},
        )
        if result.failure is not None and path is None:
            kept = next(self._failed_traces)
            if kept <= _FAILED_TRACES_KEPT:
                failed_path = trace_path(self.options.trace_dir, self.worker, session)
                write_trace(writer.to_trace(), failed_path)

    def _converse(self, writer: TraceWriter) -> tuple[str | None, str]:
        """Run the workflow into ``writer``; return (the shell's failure or None, detail)."""
        timeout = self.options.run_timeout
        writer.mark(f"load: {CONNECT}", user=self.user_id)
        try:
            ws = connect(
                self.url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                open_timeout=timeout,
                proxy=self.proxy,
                max_size=None,  # a load test measures; an oversize frame is the server's news
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            writer.record("error", stage="connect", status=status, message=str(exc))
            refused = "auth refused" if status in (401, 403) else "connect failed"
            return refused, f"HTTP {status} at the handshake"
        except TimeoutError:
            writer.record("error", stage="connect", message="handshake timed out")
            return "timeout", f"no handshake within {timeout:g} s"
        except (OSError, WebSocketException) as exc:
            writer.record("error", stage="connect", exception=type(exc).__name__, message=str(exc))
            return "connect failed", f"{type(exc).__name__}: {exc}"
        writer.record("open", status=101, subprotocol=ws.subprotocol)
        with ws:
            return self._session(ws, writer, timeout)

    def _session(
        self, ws: ClientConnection, writer: TraceWriter, timeout: float
    ) -> tuple[str | None, str]:
        run_id = f"run_{uuid.uuid4().hex[:16]}"
        deadline = time.monotonic() + timeout
        try:
            first = self._receive(ws, writer, deadline)
            if first is None:
                return "timeout", f"no connection_established within {timeout:g} s"
            if first.get("error_code") == "AUTH_FAILED":  # refused after the handshake
                return "auth refused", f"first frame {first.get('event')!r}: AUTH_FAILED"
            if first.get("event") != "connection_established":
                return None, f"first frame {first.get('event')!r}"  # the checks say more
            message = {
                "type": "user_message",
                "message": self.options.message,
                "timestamp": time.time(),
                "run_id": run_id,
                "thread_id": f"thread_{uuid.uuid4().hex[:16]}",
            }
            text = json.dumps(message)
            now_ns = time.time_ns(), time.perf_counter_ns()
            writer.frame("send", text, t_wall_ns=now_ns[0], t_mono_ns=now_ns[1], flush=False)
            ws.send(text)
            deadline = time.monotonic() + timeout
            # The run's terminal event carries the run_id sent, or, from a server that
            # assigns its own, the run_id of the first agent event (netra_ws.load's rule).
            own: set[str | None] = {run_id}
            while True:
                record = self._receive(ws, writer, deadline)
                if record is None:
                    return "timeout", f"no terminal event within {timeout:g} s"
                event = record.get("event")
                if event in AGENT_EVENTS and len(own) == 1:
                    own.add(record.get("run_id"))
                if event in TERMINAL_EVENTS and record.get("run_id") in own:
                    return None, ""
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else 1006
            reason = exc.rcvd.reason if exc.rcvd is not None else ""
            writer.record("close", code=code, reason=reason)
            if code == 1008:
                return "auth refused", f"closed 1008 {reason!r}"
            return "closed", f"closed {code} {reason!r} before the terminal event"

    @staticmethod
    def _receive(
        ws: ClientConnection, writer: TraceWriter, deadline: float
    ) -> dict[str, Any] | None:
        """The next frame, recorded (normalized fields included), or None at the deadline."""
        try:
            data = ws.recv(timeout=max(deadline - time.monotonic(), 0))
        except TimeoutError:
            return None
        record = writer.frame(
            "receive", data, t_wall_ns=time.time_ns(), t_mono_ns=time.perf_counter_ns()
        )
        # Locust's monkey-patched sleep: a yield to the gevent hub, so a burst of frames
        # already buffered never starves the other users' greenlets.
        time.sleep(0)
        return record


def _with_path(url: str) -> str:
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        parts = parts._replace(path=DEFAULT_PATHS[0])
    return urlunsplit(parts)


@functools.cache
def _profile(name: str) -> Profile:
    return load_profile(name)


def _read_tokens(path: str) -> list[str]:
    if NetraUser._tokens is None:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        tokens = [line.strip() for line in lines if line.strip()]
        if not tokens:
            raise ValueError(f"--token-file {path}: no tokens (one JWT per line)")
        NetraUser._tokens = tokens
    return NetraUser._tokens
