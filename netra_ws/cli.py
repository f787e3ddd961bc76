"""``python -m netra_ws`` / ``netra-ws``: demo, probe, report, serve, token, import-har…

Exit codes (:data:`EXIT_CODES`): 0 passed, 1 a probe failed, 2 a usage or target error
(bad arguments, an unreachable or wrong URL, a port in use), 3 inconclusive (nothing
failed, but not everything could be judged).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from .limits import DEFAULT_LIMITS, Limits, parse_size, size_words
from .server import (
    AUTH_FAILURES,
    AUTH_MODES,
    DIALECTS,
    ReferenceServer,
    ServerConfig,
    load_replay,
    load_scenario,
    parse_fault,
)
from .server.embedded import ServerWorkers
from .server.faults import FAULT_GRAMMAR
from .tokens import DEFAULT_ENVIRONMENT, ENVIRONMENTS, SECRET_ENV, mint_token
from .untrusted import for_terminal

__all__ = ["EXIT_CODES", "main"]

# The one exit code scheme of probe, report and demo (the contract suite is pytest: its own).
EXIT_PASSED, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_CODES = {"passed": EXIT_PASSED, "failed": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}

_DESCRIPTION = """\
The Issue #937 investigation kit for Netra WebSocket agent events: probe a server (or the
embedded reference server), run the walk-through demo, serve the reference server, mint test
tokens, and turn traces into a Markdown report. Run as `python -m netra_ws COMMAND` or
`netra-ws COMMAND`; `COMMAND --help` explains each."""

_EXIT_EPILOG = """\
exit codes (probe, report, demo):
  0  passed: every probe passed
  1  failed: a probe failed (the server, or a notebook of the demo)
  2  usage or target error: bad arguments, an unreachable or non-WebSocket URL, a wrong
     path, a port in use; nothing was judged
  3  inconclusive: nothing failed, but some probe could not judge (say, no token to try)
The contract suite (python -m pytest --pyargs netra_ws.contract) is pytest: its exit codes
are pytest's (0 passed, 1 a test failed, 2 interrupted, 4 usage error, 5 no tests ran), and
a test the probes cannot judge is a skip, which exits 0: read the summary (-rs says why)."""


_DIALECT_LINES = "\n".join(
    textwrap.fill(
        d.description, width=92, initial_indent=f"  {d.name:<16}", subsequent_indent=" " * 18
    )
    for d in DIALECTS.values()
)

_SERVE_EPILOG = f"""\
clients authenticate with a JWT (get one: `netra-ws token --user alice`) sent as the header
`Authorization: Bearer <token>`, or as the WebSocket subprotocol `jwt.<base64url(token)>`
(what browsers do); the server answers with the subprotocol it accepted.

dialects (--dialect; every one combines with every --auth mode):
{_DIALECT_LINES}

auth modes (--auth):
  demo      everyone is demo-user-001, token or not (the backend's dev default, DEMO_MODE)
  relaxed   a valid token is its sub; no or a bad token becomes a made-up relaxed_NNNN user
  strict    production: no or a bad token is refused after the handshake (--auth-failure)
  reject    HTTP 401 without a token, 403 with a bad one (what the staging e2e tests expected)

refusal styles in strict mode (--auth-failure; default: the dialect's):
  auth-failed       flat AUTH_FAILED error naming the failed claim, close 1008 (as written)
  connection-error  CONNECTION_ERROR status frame, close 1011 "main mode error" (as it ran
                    at 538297d; staging-937's default)
A token is valid when signed with --secret (HS256), unexpired, token_type "access", issuer
netra-auth-service, audience netra-platform and env equal to --env: what `netra-ws token`
and the backend's auth service mint. Each refusal is logged with the claim that failed.

endpoints: /api/v1/websocket and /ws (main mode), /websocket and /ws/test (legacy mode),
/ws/factory and /ws/isolated (staging-937: crash as they did; others: main mode),
GET /ws/health and /ws/config; any other path: HTTP 403 with an empty body.

fault SPEC grammar (--fault, repeatable):

{FAULT_GRAMMAR}
examples: drop:tool_completed  stall:agent_thinking#2:2.5@run=2
          oversize:after=agent_started:bytes=2000000@conn=3,p=0.5
Every fault is logged as: FAULT <kind> <event> run=<run_id> conn=<connection_id>
"""


def _error(message: str) -> None:
    """One error line on stderr. It may quote a server or a file (a close reason, a body, an
    event name): those pass through the one terminal neutraliser, so no byte of theirs can
    move the cursor or repaint a verdict."""
    print(f"error: {for_terminal(message, 1000)}", file=sys.stderr)


T = TypeVar("T")


def _fill(text: str) -> str:
    """A description paragraph wrapped for the help (raw descriptions are not re-wrapped)."""
    return textwrap.fill(text, width=92)


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown after each option's help, descriptions and epilogs kept as written.

    An option whose default is None, False or empty says what happens in its own help
    (a "(default: None)" would tell the reader nothing).
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def _argument(load: Callable[[str], T]) -> Callable[[str], T]:
    """Wrap a loader for argparse ``type=`` so its ValueError text reaches the user."""

    def convert(text: str) -> T:
        try:
            return load(text)
        except (ValueError, OSError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = load.__name__
    return convert


def _add_trust_options(parser: argparse.ArgumentParser) -> None:
    """How far the kit trusts a server the user does not control (Issue #22)."""
    parser.add_argument(
        "--follow-redirects",
        action="store_true",
        help="follow an HTTP redirect at the handshake when it stays on the same origin "
        "(never with the token to another one); by default a redirect is recorded and reported",
    )
    for flag, default, what in (
        (
            "--frame-limit",
            DEFAULT_LIMITS.frame_limit,
            "the largest frame taken (bigger: the "
            "client closes with 1009); memory at the peak is about seven times it",
        ),
        (
            "--record-limit",
            DEFAULT_LIMITS.record_limit,
            "bytes of one frame recorded (above: the first bytes, the size and the SHA-256)",
        ),
        (
            "--trace-budget",
            DEFAULT_LIMITS.trace_budget,
            "bytes one connection records; then "
            "recording stops with a mark and the connection is closed (1001)",
        ),
    ):
        parser.add_argument(
            flag,
            type=_argument(parse_size),
            default=default,
            metavar="SIZE",
            help=f"{what} (default {size_words(default)}; 'none' for no limit)",
        )


def _trust(args: argparse.Namespace) -> dict[str, Any]:
    """The ``follow_redirects`` and ``limits`` of :func:`~netra_ws.target.resolve_target`."""
    return {
        "follow_redirects": args.follow_redirects,
        "limits": Limits(
            frame_limit=args.frame_limit,
            record_limit=args.record_limit,
            trace_budget=args.trace_budget,
        ),
    }


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be a number > 0, not {text}")
    return value


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.verbose:
        logging.getLogger("netra_ws.server.connections").setLevel(logging.DEBUG)
    options = {"scenario": args.scenario} if args.scenario is not None else {}
    config = ServerConfig(
        host=args.host,
        port=args.port,
        auth=args.auth,
        dialect=args.dialect,
        auth_failure=args.auth_failure,
        environment=args.env,
        secret=args.secret,
        heartbeat_interval=args.heartbeat_interval,
        max_message_size=args.max_message_size,
        seed=args.seed,
        faults=args.fault,
        replay=args.replay,
        replay_speed=args.speed,
        **options,
    )

    if args.workers < 1:
        _error(f"--workers must be at least 1, not {args.workers}")
        return EXIT_USAGE
    if args.workers > 1:
        return _serve_workers(args, config)

    async def run() -> None:
        server = ReferenceServer(config)
        await server.start()
        # The URL on stdout, alone on its line, so scripts can read it; the hint on stderr.
        print(server.url, flush=True)
        print(_probe_hint(server.url, args), file=sys.stderr, flush=True)
        try:
            await asyncio.Future()
        finally:
            await server.stop()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except OSError as exc:  # the port is in use, or the host is not this machine's
        if exc.errno == errno.EADDRINUSE:
            print(
                f"error: port {args.port} on {args.host} is already in use (another serve?): "
                "stop that server, or pass --port 0 for a free port (the URL is printed)",
                file=sys.stderr,
            )
        else:
            _error(f"cannot listen on {args.host}:{args.port}: {exc}")
        return EXIT_USAGE
    return 0


def _serve_workers(args: argparse.Namespace, config: ServerConfig) -> int:
    """``serve --workers N``: N server processes on one port until Ctrl-C or one dies."""
    servers = ServerWorkers(args.workers, config, verbose=args.verbose)
    try:
        servers.start()
    except (OSError, RuntimeError) as exc:
        _error(f"cannot serve {args.workers} workers on {args.host}:{args.port}: {exc}")
        return EXIT_USAGE
    # SIGTERM (a supervisor, `kill`) stops the workers as Ctrl-C does, through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(servers.url, flush=True)
        print(f"{args.workers} workers, pids {servers.pids}", file=sys.stderr, flush=True)
        print(_probe_hint(servers.url, args), file=sys.stderr, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            ended = servers.wait()
            if ended is not None:
                _error(f"server worker {ended.name} exited with code {ended.exitcode}")
                return 1
    finally:
        servers.stop()
    return 0


def _probe_hint(url: str, args: argparse.Namespace) -> str:
    """What to type next to probe this server and see it pass, or why it cannot pass."""
    if args.auth in ("demo", "relaxed"):
        return (
            f"auth {args.auth}: connections need no valid token, so `netra-ws probe` fails the "
            "auth row by design; for a server that can pass every probe: serve --auth strict"
        )
    export_secret = ""
    if args.secret:
        why = "this server signs tokens with the --secret you passed"
        export_secret = f"  export {SECRET_ENV}=…the same secret…\n"
        secret = f"--secret-env {SECRET_ENV}"
    elif os.environ.get(SECRET_ENV):
        why, secret = f"this server signs tokens with ${SECRET_ENV}", f"--secret-env {SECRET_ENV}"
    else:
        why, secret = "this server signs tokens with the public development secret", "--dev-secret"
    env = f" --env {args.env}" if args.env != DEFAULT_ENVIRONMENT else ""
    return (
        f"probe it from another shell ({why}):\n{export_secret}"
        f"  export NETRA_WS_TOKEN=$(python -m netra_ws token --user alice{env})\n"
        f"  python -m netra_ws probe {url} --token-env NETRA_WS_TOKEN {secret}"
    )


def _claim(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` for ``token --claim``: VALUE as JSON when it parses, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _token(args: argparse.Namespace) -> int:
    token = mint_token(
        args.user,
        secret=args.secret,
        expires_in=args.expires_in,
        env=args.env,
        extra_claims=dict(args.claim),
    )
    print(token)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.url is not None and (problem := _url_problem(args.url)):
        _error(f"{problem}")
        return EXIT_USAGE
    where = args.url or "the embedded reference server"
    print(f"Issue #937 investigation against {where}: notebooks 01–05, headless", flush=True)
    result = run_demo(args.out, url=args.url, progress=lambda line: print(line, flush=True))
    print(f"report: {result.report}")
    print(result.summary)
    print(f"took {result.seconds:.1f} s")
    if any(run.status == "failed" for run in result.notebooks):
        return EXIT_FAILED
    return EXIT_CODES[result.verdict]


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    try:
        report = build_report(
            args.sources, title=args.title, profile=args.profile, dialect=args.dialect
        )
    except ValueError as exc:  # a --profile file that is no profile
        _error(f"--profile: {exc}")
        return EXIT_USAGE
    if not report.traces:
        _error(f"no trace could be read from {' '.join(args.sources)}")
        for note in report.notes:
            print(f"  {note}", file=sys.stderr)
        return EXIT_USAGE
    path = report.write(args.out)
    print(f"report: {path}")
    for chart in report.chart_paths(path):
        print(f"chart:  {chart}")
    if report.charts:
        names = ", ".join(chart.name for chart in report.attachments(path))
        print(f"attach: {names} — drag them into the comment for its images to show")
    if args.bundle:
        bundle = report.bundle(path.with_suffix(".zip"))
        print(f"bundle: {bundle} — the report, its charts and traces: attach it as it is")
    print(report.summary())
    return EXIT_CODES[report.verdict]  # the verdict probe would give for the same traces


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a WebSocket target, in words that say what to type, or None."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        ws = "wss" if scheme.lower() == "https" else "ws"
        return f"{url} is an HTTP URL; a WebSocket URL starts with ws:// or wss://: {ws}://{rest}"
    if not sep or scheme.lower() not in ("ws", "wss"):
        return f"{url!r} is not a WebSocket URL: give ws://HOST:PORT/PATH or wss://…"
    return None


def _probe(args: argparse.Namespace) -> int:
    from .probes import PROBE_USER, _not_a_jwt, probe_connection, run_probes
    from .target import DEFAULT_TOKEN_ENV, resolve_target
    from .tokens import DEV_SECRET
    from .verdicts import ProbeReport

    if args.url is not None and (problem := _url_problem(args.url)):
        _error(f"{problem}")
        return EXIT_USAGE
    # Credentials come by environment variable name, never on the command line (shell
    # history, process lists). A variable named explicitly must hold something.
    for flag, name in (("--token-env", args.token_env), ("--secret-env", args.secret_env)):
        if name and not os.environ.get(name):
            _error(f"{flag} {name}: ${name} is not set or empty")
            return EXIT_USAGE
    secret = DEV_SECRET if args.dev_secret else None
    secret = os.environ[args.secret_env] if args.secret_env else secret
    with resolve_target(
        args.url,
        token_env=args.token_env or DEFAULT_TOKEN_ENV,
        auth=args.auth,
        user_id=PROBE_USER,
        dialect=args.dialect,
        server_auth=args.server_auth,
        **_trust(args),
    ) as target:
        if target.token is not None and (malformed := _not_a_jwt(target.token)):
            # A finding, not a stop: the server should refuse it, and the probes say so.
            print(f"warning: the token is {malformed}; probing on", file=sys.stderr)
        if not target.embedded:
            # One connection first: a target that cannot be reached (or is no WebSocket
            # endpoint) is said once, instead of by every probe, and nothing is written.
            first = asyncio.run(probe_connection(target, out=None, timeout=min(args.timeout, 10)))
            diagnosis = ProbeReport([first], target=target.label).diagnosis
            if diagnosis.cause in ("unreachable", "wrong path"):
                said = diagnosis.summary
                _error(f"{said[:1].lower()}{said[1:]}")
                return EXIT_USAGE
        report = asyncio.run(
            run_probes(
                target,
                profile=args.profile,
                secret=secret,
                out=args.out,
                timeout=args.timeout,
                quiet=args.quiet,
            )
        )
    if args.json:
        from .redact import redact_json

        print(json.dumps(redact_json(report.to_dict()), indent=2, default=str))
    else:
        print(report.to_text())
    return EXIT_CODES[report.status]


def _profile(text: str) -> str:
    """``--profile``: a built-in profile name or a JSON file, checked before anything runs."""
    from pathlib import Path

    from .expect import available_profiles, load_profile

    if text not in available_profiles() and not Path(text).is_file():
        raise ValueError(
            f"unknown profile {text!r}: give a built-in name "
            f"({', '.join(available_profiles())}) or a JSON profile file"
        )
    load_profile(text)  # a file that is no profile fails here, with the reason
    return text


def _import_har(args: argparse.Namespace) -> int:
    from .errors import NetraWsError
    from .har import import_har
    from .trace import read_trace

    try:
        paths = import_har(args.file, args.out)
    except (NetraWsError, OSError) as exc:
        _error(f"{exc}")
        return EXIT_USAGE
    for path in paths:
        trace = read_trace(path)
        flagged = sum(1 for r in trace.records if r.get("flags"))
        note = f", {flagged} flagged record(s)" if flagged else ""
        print(f"{path}  ({len(trace.frames)} frames{note})")
    return 0


def _export_har(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import NetraWsError
    from .har import export_har

    out = args.out or str(Path(args.trace).with_suffix(".har"))
    try:
        print(export_har(args.trace, out, overwrite=args.overwrite))
    except FileExistsError:
        _error(f"{out} already exists: pass --overwrite, or another --out")
        return EXIT_USAGE
    except (NetraWsError, OSError) as exc:
        _error(f"{exc}")
        return EXIT_USAGE
    return 0


# --- connect, show, diff: the interactive investigation (issue 15) -------------------------


def _color(args: argparse.Namespace, stream: object) -> bool:
    """Colour only for a terminal, and never with --no-color or $NO_COLOR (no-color.org)."""
    import os

    isatty = getattr(stream, "isatty", None)
    return not args.no_color and not os.environ.get("NO_COLOR") and bool(isatty and isatty())


def _connect(args: argparse.Namespace) -> int:
    import os

    from .console import run_console
    from .target import DEFAULT_TOKEN_ENV, resolve_target

    if args.token_env and not os.environ.get(args.token_env):
        _error(f"${args.token_env} is not set or empty")
        return 2
    with resolve_target(
        args.url,
        token_env=args.token_env or DEFAULT_TOKEN_ENV,
        auth=args.auth,
        dialect=args.dialect,
        server_auth=args.server_auth,
        **_trust(args),
    ) as target:
        return run_console(target, out=args.out, color=_color(args, sys.stdout))


def _show(args: argparse.Namespace) -> int:
    from .browse import frame_json, listing
    from .trace import read_trace

    try:
        trace = read_trace(args.trace)
        chosen = trace.filter(event=args.event, dir=args.dir, text=args.grep, run=args.run)
    except (OSError, ValueError) as exc:
        _error(f"{exc}")
        return 2
    if args.json:
        # One frame per line, as recorded: for jq. json.dumps escapes control characters.
        for record in chosen.frames:
            print(json.dumps(record, separators=(",", ":")))
        return 0
    filtered = any(v is not None for v in (args.event, args.dir, args.grep, args.run))
    records = chosen.records if filtered else trace.records
    origin = next((r["t_mono_ns"] for r in trace.records if "t_mono_ns" in r), None)
    for line in listing(records, t0_ns=origin, color=_color(args, sys.stdout)):
        print(line)
    if args.full:
        for record in chosen.frames:
            print(frame_json(record))
    return 0


def _diff(args: argparse.Namespace) -> int:
    from .diff import diff_traces

    try:
        result = diff_traces(args.a, args.b)
    except (OSError, ValueError) as exc:
        _error(f"{exc}")
        return 2
    if args.csv:
        print(result.to_frame().to_csv(index=False), end="")
    else:
        print(result.to_text())
    return 0 if result.same else 1


def _add_investigation_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    connect = commands.add_parser(
        "connect",
        help="an interactive, recording console (like wscat, with the Netra protocol)",
        description="Connect (the embedded server when no URL), print every frame as it "
        "arrives, send what you type (a JSON object as is, a plain line as user_message), "
        "and record everything to OUT/console-<time>/. Type /help inside for the commands.",
    )
    connect.add_argument("url", nargs="?", default=None, help="omit for the embedded server")
    connect.add_argument(
        "--token-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the JWT (default: NETRA_WS_TOKEN when set)",
    )
    connect.add_argument(
        "--auth",
        choices=("header", "subprotocol", "both", "none"),
        default=None,
        help="how to send the token (default: header)",
    )
    connect.add_argument(
        "--dialect", choices=sorted(DIALECTS), default="bridge", help="embedded server dialect"
    )
    connect.add_argument(
        "--server-auth", choices=AUTH_MODES, default="strict", help="embedded server auth mode"
    )
    connect.add_argument("--out", default="data", help="directory for the trace")
    connect.add_argument("--no-color", action="store_true", help="plain output (also $NO_COLOR)")
    _add_trust_options(connect)
    connect.set_defaults(func=_connect)

    show = commands.add_parser(
        "show",
        help="list a trace readably (or as JSON Lines for jq), filtered",
        description="List a trace one record a line (time, direction, event, payload "
        "summary), as the console prints it; filters keep the matching frames.",
    )
    show.add_argument("trace", help="a trace file (.jsonl)")
    show.add_argument("--event", action="append", default=None, help="this event (repeatable)")
    show.add_argument("--dir", choices=("send", "receive"), default=None, help="one direction")
    show.add_argument("--grep", default=None, metavar="RE", help="frames whose text matches RE")
    show.add_argument("--run", default=None, metavar="N", help="the frames of run N (1, 2, …)")
    show.add_argument("--json", action="store_true", help="the frame records as JSON Lines")
    show.add_argument("--full", action="store_true", help="then each frame's full JSON")
    show.add_argument("--no-color", action="store_true", help="plain output (also $NO_COLOR)")
    show.set_defaults(func=_show)

    diff = commands.add_parser(
        "diff",
        help="what changed between two traces or runs (A works, B does not)",
        description="Compare trace A with trace B: events missing, extra or reordered, the "
        "user each server attached, fields that differ per event type, timing per phase. "
        "PATH#N stands for run N of a trace. Exit 0 when only timing differs, else 1.",
    )
    diff.add_argument("a", help="the trace that works (PATH or PATH#RUN)")
    diff.add_argument("b", help="the trace to explain (PATH or PATH#RUN)")
    diff.add_argument("--csv", action="store_true", help="the differences as CSV, one per row")
    diff.set_defaults(func=_diff)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netra-ws",
        description=_DESCRIPTION,
        epilog=_EXIT_EPILOG,
        formatter_class=_HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the reference server until Ctrl-C",
        description=_fill(
            "Run the Netra reference server until Ctrl-C. Its URL is printed alone on "
            "stdout (for scripts); stderr says how to probe it, then logs refusals and faults."
        ),
        epilog=_SERVE_EPILOG,
        formatter_class=_HelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    serve.add_argument(
        "--port", type=int, default=8765, help="the port to listen on; 0 picks a free one"
    )
    serve.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="demo",
        help="who may connect (see auth modes below); strict is what a passing probe needs",
    )
    serve.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default="bridge",
        help="the backend as intended (bridge, manager, wrapped, suite-contract) or as it ran"
        " at the #937 commit (staging-937); see dialects below",
    )
    serve.add_argument(
        "--auth-failure",
        choices=AUTH_FAILURES,
        default=None,
        help="how --auth strict refuses (see below; default: connection-error for staging-937,"
        " else auth-failed)",
    )
    serve.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=DEFAULT_ENVIRONMENT,
        help="the server's environment: tokens must carry it in their env claim (token --env);"
        " it sets the default heartbeat (10 s development, 15 test/staging, 30 production)",
    )
    serve.add_argument(
        "--scenario",
        type=_argument(load_scenario),
        metavar="FILE.json",
        help="what agent runs do: thinking, tools, timing, jitter, errors, several runs"
        " (format: netra_ws.server.scenario)",
    )
    serve.add_argument(
        "--fault",
        type=_argument(parse_fault),
        action="append",
        default=[],
        metavar="SPEC",
        help="inject a fault into runs; repeat for several (grammar below)",
    )
    serve.add_argument(
        "--replay",
        type=_argument(load_replay),
        metavar="TRACE",
        help="serve the frames a recorded trace received, with their timing, instead of runs",
    )
    serve.add_argument(
        "--speed",
        type=_argument(_positive_float),
        default=1.0,
        help="replay speed (2 = twice as fast)",
    )
    serve.add_argument(
        "--seed", type=int, default=None, help="seed for jitter and p= faults (default: 0)"
    )
    serve.add_argument(
        "--heartbeat-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="client silence before a heartbeat frame (default: the scenario's, else the"
        " environment's: 10 in development)",
    )
    serve.add_argument(
        "--max-message-size",
        type=int,
        default=None,
        metavar="BYTES",
        help="bigger client frames get close 1009 (default: the scenario's, else 1048576;"
        " 16777216, uvicorn's limit, for staging-937)",
    )
    serve.add_argument(
        "--secret",
        default=None,
        help=f"JWT signing secret (default: ${SECRET_ENV}, else the public development secret);"
        " prefer the variable: a command line shows in process lists and shell history",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes on one port (Linux SO_REUSEPORT: the kernel spreads"
        " connections), so the server is not what saturates in a load test; each worker"
        " has the same auth, dialect and faults (conn=N and seed count per worker)",
    )
    serve.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every connection and run too (off by default: thousands of lines under load)",
    )
    serve.set_defaults(func=_serve)

    token = commands.add_parser(
        "token",
        help="print a token as the backend's auth service mints it",
        description=_fill(
            "Print a JWT with the auth service's claims (sub, iat, exp, token_type and"
            " type 'access', iss netra-auth-service, aud netra-platform, jti, env, svc_id), signed"
            f" with ${SECRET_ENV} or, when that is unset, the public development secret that"
            " `netra-ws serve` uses by default. The reference server and a real backend with the"
            " same secret and environment accept it. Typical use:"
            " export NETRA_WS_TOKEN=$(python -m netra_ws token --user alice)"
        ),
        formatter_class=_HelpFormatter,
    )
    token.add_argument("--user", default="test-user", help="the sub claim: who the token is")
    token.add_argument(
        "--expires-in",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="lifetime; a negative value mints an already expired token (to test refusal)",
    )
    token.add_argument(
        "--env",
        default=DEFAULT_ENVIRONMENT,
        choices=ENVIRONMENTS,
        help="the env claim: the environment of the server that reads it (serve --env)",
    )
    token.add_argument(
        "--claim",
        type=_argument(_claim),
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help='add or override a claim; VALUE is JSON when it parses (permissions=["read"]),'
        " else a string; repeatable",
    )
    token.add_argument(
        "--secret",
        default=None,
        help=f"JWT signing secret (default: ${SECRET_ENV}, else the public development secret)",
    )
    token.set_defaults(func=_token)

    demo = commands.add_parser(
        "demo",
        help="the whole #937 investigation (notebooks 01–05, headless), then the report",
        description=_fill(
            "Execute the walk-through notebooks against the embedded server, write "
            "OUT/report.md with its charts, and print the verdict."
        ),
        epilog=_EXIT_EPILOG,
        formatter_class=_HelpFormatter,
    )
    demo.add_argument("--out", default="data", help="directory for traces, notebooks, report")
    demo.add_argument(
        "--url",
        default=None,
        help="a real server (ws:// or wss://) instead of the embedded one; its token comes "
        "from $NETRA_WS_TOKEN",
    )
    demo.set_defaults(func=_demo)

    report = commands.add_parser(
        "report",
        help="turn saved traces into a Markdown issue comment with charts",
        description=_fill(
            "Recompute the verdicts from traces and write a Markdown report (charts "
            "as PNG files next to it). A folder like data/ stands for the latest output of "
            "each notebook; any other folder for every *.jsonl under it."
        ),
        epilog=_EXIT_EPILOG,
        formatter_class=_HelpFormatter,
    )
    report.add_argument("sources", nargs="+", help="trace files or folders")
    report.add_argument("--out", default="report.md", help="the Markdown file to write")
    report.add_argument(
        "--title", default="Issue #937 — WebSocket agent events: findings", help="its heading"
    )
    report.add_argument(
        "--profile",
        type=_argument(_profile),
        default=None,
        help="judge the workflow with this profile (netra-bridge, netra-suite or a JSON file)"
        " instead of the one the traces recorded",
    )
    report.add_argument(
        "--dialect", default=None, help="the embedded dialect under test (default: most common)"
    )
    report.add_argument(
        "--bundle",
        action="store_true",
        help="also write OUT with .zip: the report, its charts and the redacted traces it used",
    )
    report.set_defaults(func=_report)

    probe = commands.add_parser(
        "probe",
        help="the Issue #937 probes (connection, negative, workflow, auth) with verdicts",
        description=_fill(
            "Probe a server (or the embedded one) and print a verdict per probe and a "
            "diagnosis. Traces go to OUT/probes-<time>/. A target that cannot be reached, or that "
            "is no WebSocket endpoint, is said in one line (exit 2) and nothing is written. "
            "Against `netra-ws serve --auth strict`: export NETRA_WS_TOKEN=$(python -m netra_ws "
            "token --user alice), then probe URL --token-env NETRA_WS_TOKEN --dev-secret."
        ),
        epilog=_EXIT_EPILOG,
        formatter_class=_HelpFormatter,
    )
    probe.add_argument(
        "url",
        nargs="?",
        default=None,
        help="ws:// or wss:// URL of the target; omit it for an embedded server",
    )
    probe.add_argument(
        "--token-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the JWT (default: NETRA_WS_TOKEN when set; "
        "without a token a URL is probed without one)",
    )
    secrets = probe.add_mutually_exclusive_group()
    secrets.add_argument(
        "--secret-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the server's signing secret: the expired-token row"
        " needs it (without it, or --dev-secret, that row is inconclusive)",
    )
    secrets.add_argument(
        "--dev-secret",
        action="store_true",
        help="sign the expired-token row with the public development secret, as a"
        f" `netra-ws serve` without --secret or ${SECRET_ENV} does (never a real backend's)",
    )
    probe.add_argument(
        "--auth",
        choices=("header", "subprotocol", "both"),
        default=None,
        help="how to send the token: Authorization header, jwt.<token> subprotocol, or both"
        " (default: header)",
    )
    probe.add_argument(
        "--profile",
        type=_argument(_profile),
        default="netra-bridge",
        help="the event contract to check runs against: netra-bridge, netra-suite, or a JSON"
        " profile file",
    )
    probe.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default="bridge",
        help="the embedded server's dialect (without URL)",
    )
    probe.add_argument(
        "--server-auth",
        choices=AUTH_MODES,
        default="strict",
        help="the embedded server's auth mode (without URL)",
    )
    probe.add_argument("--out", default="data", help="directory for the traces")
    probe.add_argument(
        "--timeout",
        type=_argument(_positive_float),
        default=30.0,
        metavar="SECONDS",
        help="how long to collect one agent run (connecting waits at most 10 s of it)",
    )
    probe.add_argument(
        "--quiet",
        type=_argument(_positive_float),
        default=2.0,
        metavar="SECONDS",
        help="how long to wait for a reply that must not come",
    )
    probe.add_argument(
        "--json",
        action="store_true",
        help="print the verdicts, the diagnosis and the evidence (trace files, frame numbers) "
        "as JSON, for scripts and CI, instead of the table",
    )
    _add_trust_options(probe)
    probe.set_defaults(func=_probe)
    import_har = commands.add_parser(
        "import-har",
        help="turn a browser/mitmproxy HAR capture into traces (one per WebSocket)",
        description=_fill(
            "Turn a HAR capture (browser DevTools, mitmproxy) into one trace per "
            "WebSocket connection; credentials are left out."
        ),
        formatter_class=_HelpFormatter,
    )
    import_har.add_argument("file", help="the .har (or mitmproxy .zhar) file")
    import_har.add_argument("--out", default="data", help="directory for the traces")
    import_har.set_defaults(func=_import_har)

    export_har = commands.add_parser(
        "export-har",
        help="write a trace as a HAR file that browser DevTools can import",
        description=_fill(
            "Write a trace as a HAR file (Chrome or Edge DevTools: Network ▸ Import "
            "HAR). An existing file is kept unless --overwrite."
        ),
        formatter_class=_HelpFormatter,
    )
    export_har.add_argument("trace", help="a trace file (.jsonl)")
    export_har.add_argument("--out", default=None, help="the .har file (default: beside the trace)")
    export_har.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export_har.set_defaults(func=_export_har)
    _add_investigation_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
