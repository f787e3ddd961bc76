"""``python -m netra_ws`` / ``netra-ws``: demo, probe, report, serve, token, import-har…"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from typing import TypeVar

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
from .server.faults import FAULT_GRAMMAR
from .tokens import DEFAULT_ENVIRONMENT, ENVIRONMENTS, SECRET_ENV, mint_token

__all__ = ["main"]


_DIALECT_LINES = "\n".join(
    textwrap.fill(
        d.description, width=92, initial_indent=f"  {d.name:<16}", subsequent_indent=" " * 18
    )
    for d in DIALECTS.values()
)

_SERVE_EPILOG = f"""\
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

T = TypeVar("T")


def _argument(load: Callable[[str], T]) -> Callable[[str], T]:
    """Wrap a loader for argparse ``type=`` so its ValueError text reaches the user."""

    def convert(text: str) -> T:
        try:
            return load(text)
        except (ValueError, OSError) as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = load.__name__
    return convert


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

    async def run() -> None:
        server = ReferenceServer(config)
        await server.start()
        # The URL on stdout, alone on its line, so scripts can read it.
        print(server.url, flush=True)
        try:
            await asyncio.Future()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())
    return 0


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

    where = args.url or "the embedded reference server"
    print(f"Issue #937 investigation against {where}: notebooks 01–05, headless", flush=True)
    result = run_demo(args.out, url=args.url, progress=lambda line: print(line, flush=True))
    print(f"report: {result.report}")
    print(result.summary)
    print(f"took {result.seconds:.1f} s")
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    from .report import build_report

    try:
        report = build_report(
            args.sources, title=args.title, profile=args.profile, dialect=args.dialect
        )
    except ValueError as exc:  # an unknown --profile
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not report.traces:
        print(f"error: no trace could be read from {' '.join(args.sources)}", file=sys.stderr)
        for note in report.notes:
            print(f"  {note}", file=sys.stderr)
        return 2
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
    return 0


def _probe(args: argparse.Namespace) -> int:
    import os

    from .expect import load_profile
    from .probes import PROBE_USER, run_probes
    from .target import DEFAULT_TOKEN_ENV, resolve_target

    # Credentials come by environment variable name, never on the command line (shell
    # history, process lists). A variable named explicitly must hold something.
    for name in (args.token_env, args.secret_env):
        if name and not os.environ.get(name):
            print(f"error: ${name} is not set or empty", file=sys.stderr)
            return 2
    secret = os.environ[args.secret_env] if args.secret_env else None
    try:
        profile = load_profile(args.profile)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with resolve_target(
        args.url,
        token_env=args.token_env or DEFAULT_TOKEN_ENV,
        auth=args.auth,
        user_id=PROBE_USER,
        dialect=args.dialect,
        server_auth=args.server_auth,
    ) as target:
        report = asyncio.run(
            run_probes(
                target,
                profile=profile,
                secret=secret,
                out=args.out,
                timeout=args.timeout,
                quiet=args.quiet,
            )
        )
    if args.json:
        import json

        from .redact import redact_json

        print(json.dumps(redact_json(report.to_dict()), indent=2, default=str))
    else:
        print(report.to_text())
    return 0 if report.passed else 1


def _import_har(args: argparse.Namespace) -> int:
    from .errors import NetraWsError
    from .har import import_har
    from .trace import read_trace

    try:
        paths = import_har(args.file, args.out)
    except (NetraWsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    except (NetraWsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="netra-ws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the reference server until Ctrl-C",
        description="Run the Netra reference server; its URL is printed alone on stdout.",
        epilog=_SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument(
        "--auth", choices=AUTH_MODES, default="demo", help="who may connect (below; default: demo)"
    )
    serve.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default="bridge",
        help="the backend as intended (bridge, manager, wrapped, suite-contract) or as it ran"
        " at the #937 commit (staging-937); default: bridge",
    )
    serve.add_argument(
        "--auth-failure",
        choices=AUTH_FAILURES,
        default=None,
        help="how --auth strict refuses (below; default: connection-error for staging-937,"
        " else auth-failed)",
    )
    serve.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=DEFAULT_ENVIRONMENT,
        help="the server's environment: tokens must carry it in their env claim; it sets the"
        " default heartbeat (10 s development, 15 test/staging, 30 production)",
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
        help=f"JWT signing secret (default: ${SECRET_ENV} or the dev secret)",
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
        description="Print a JWT with the auth service's claims (sub, iat, exp, token_type and"
        " type 'access', iss netra-auth-service, aud netra-platform, jti, env, svc_id). The"
        " reference server and a real backend with the same secret and environment accept it.",
    )
    token.add_argument("--user", default="test-user")
    token.add_argument("--expires-in", type=float, default=3600.0, metavar="SECONDS")
    token.add_argument(
        "--env",
        default=DEFAULT_ENVIRONMENT,
        help="the env claim: the environment of the server that reads it (default: development)",
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
        help=f"JWT signing secret (default: ${SECRET_ENV} or the dev secret)",
    )
    token.set_defaults(func=_token)

    demo = commands.add_parser(
        "demo",
        help="the whole #937 investigation (notebooks 01–05, headless), then the report",
        description="Execute the walk-through notebooks against the embedded server, write "
        "OUT/report.md with its charts, and print the verdict; exit 0 when it passed.",
    )
    demo.add_argument("--out", default="data", help="directory for traces, notebooks, report")
    demo.add_argument("--url", default=None, help="a real server instead (token: $NETRA_WS_TOKEN)")
    demo.set_defaults(func=_demo)

    report = commands.add_parser(
        "report",
        help="turn saved traces into a Markdown issue comment with charts",
        description="Recompute the verdicts from traces and write a Markdown report (charts "
        "as PNG files next to it). A folder like data/ stands for the latest output of "
        "each notebook; any other folder for every *.jsonl under it.",
    )
    report.add_argument("sources", nargs="+", help="trace files or folders")
    report.add_argument("--out", default="report.md", help="the Markdown file to write")
    report.add_argument(
        "--title", default="Issue #937 — WebSocket agent events: findings", help="its heading"
    )
    report.add_argument(
        "--profile", default=None, help="judge the workflow with this profile instead"
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
        description="Probe a server (or the embedded one) and print a verdict per probe; "
        "exit 0 only when every probe passed. Traces go to OUT/probes-<time>/.",
    )
    probe.add_argument("url", nargs="?", default=None, help="target; omit for the embedded server")
    probe.add_argument(
        "--token-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the JWT (default: NETRA_WS_TOKEN when set)",
    )
    probe.add_argument(
        "--secret-env",
        default=None,
        metavar="NAME",
        help="environment variable holding the signing secret, for the expired-token row",
    )
    probe.add_argument(
        "--auth",
        choices=("header", "subprotocol", "both"),
        default=None,
        help="how to send the token (default: header)",
    )
    probe.add_argument(
        "--profile",
        default="netra-bridge",
        help="netra-bridge (default), netra-suite, or a JSON profile file",
    )
    probe.add_argument(
        "--dialect",
        choices=sorted(DIALECTS),
        default="bridge",
        help="embedded server dialect (without URL)",
    )
    probe.add_argument(
        "--server-auth",
        choices=AUTH_MODES,
        default="strict",
        help="embedded server auth mode (without URL)",
    )
    probe.add_argument("--out", default="data", help="directory for the traces")
    probe.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to collect one agent run",
    )
    probe.add_argument(
        "--quiet",
        type=float,
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
    probe.set_defaults(func=_probe)
    import_har = commands.add_parser(
        "import-har", help="turn a browser/mitmproxy HAR capture into traces (one per WebSocket)"
    )
    import_har.add_argument("file", help="the .har (or mitmproxy .zhar) file")
    import_har.add_argument("--out", default="data", help="directory for the traces")
    import_har.set_defaults(func=_import_har)

    export_har = commands.add_parser(
        "export-har", help="write a trace as a HAR file that browser DevTools can import"
    )
    export_har.add_argument("trace", help="a trace file (.jsonl)")
    export_har.add_argument("--out", default=None, help="the .har file (default: beside the trace)")
    export_har.add_argument("--overwrite", action="store_true", help="replace an existing file")
    export_har.set_defaults(func=_export_har)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
