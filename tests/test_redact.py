"""Redaction: every secret form goes, and nothing else changes."""

from __future__ import annotations

import base64
import io
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from netra_ws.errors import RedactionError
from netra_ws.redact import (
    REDACT_ENV,
    REDACTED,
    RedactingFilter,
    Redactor,
    redact_file,
    redact_headers,
    redact_json,
    redact_notebook,
    redact_subprotocol,
    redact_text,
    redact_url,
    register_secret,
    unregister_secret,
)
from netra_ws.tokens import SECRET_ENV, encode_subprotocol_token, mint_token
from netra_ws.trace import TraceWriter, read_trace

SIGNING_KEY = "k3y-for-signing-netra-tokens-0123456789"
HAR_DIR = Path(__file__).parent / "data" / "har"


@pytest.fixture
def token() -> str:
    return mint_token("alice", secret=SIGNING_KEY)


@pytest.fixture
def b64_token(token: str) -> str:
    """The browser's form: base64url of the JWT, as carried by ``jwt.<t>``."""
    return encode_subprotocol_token(token)[len("jwt.") :]


@pytest.fixture
def signing_key():
    register_secret(SIGNING_KEY)
    yield SIGNING_KEY
    unregister_secret(SIGNING_KEY)


def secrets_of(token: str, b64_token: str) -> list[str]:
    return [token, b64_token, SIGNING_KEY, "s3ss10n-cookie-value", "opaque-api-key-9f8e7d"]


# Non-secret content that must come out byte for byte: what traces and reports are made of.
INNOCENT = [
    "agent_started agent_thinking tool_executing tool_completed agent_completed",
    "run_8c1d2e3f4a5b thread_42a7 req_77 main_a1b2c3 demo-user-001 relaxed_0042",
    "1757505600.123456 42 -3.5e-07 1e100 0x1f 100ms 8 KiB",
    "2025-09-10T12:00:00.123456+00:00 2025-09-10T12:00:00Z 2025-09-10 12:00:00,123",
    # base64 of JSON starts with eyJ, and of binary data may contain it: no dots, no match.
    base64.b64encode(b'{"type":"heartbeat","data":{}}').decode(),
    base64.b64encode(b"\x00\x01eyJ.\xff\xfe" * 20).decode(),
    base64.urlsafe_b64encode(b'{"type":"x"}' * 5).decode(),
    # The server's own AUTH_FAILED help text (PROTOCOL.md §2) and other prose.
    "Supported forms: jwt.TOKEN, jwt-auth.TOKEN, bearer.TOKEN",
    "offered subprotocols ['jwt-auth'] and got jwt-auth; see https://jwt.io",
    "basic checks passed; the bearer tokens were accepted; Basic auth off; Bearer",
    "wss://netra-backend-staging.example.run.app/api/v1/websocket",
    '{"type":"tool_completed","run_id":"run_1","payload":{"result":{"ok":true},"n":3}}',
    "Traceback (most recent call last):\n  File \"x.py\", line 3, in <module>\nKeyError: 'a'",
    "550e8400-e29b-41d4-a716-446655440000 sha256:9f86d081884c7d659a2feaa0c55ad015",
    "",
]


@pytest.mark.parametrize("text", INNOCENT)
def test_non_secret_content_is_left_exactly_as_it_was(text: str):
    assert redact_text(text) == text


def test_every_secret_form_is_replaced(token: str, b64_token: str, signing_key: str):
    cases = {
        f"Authorization: Bearer {token}": f"Authorization: Bearer {REDACTED}",
        f"Sec-WebSocket-Protocol: jwt-auth, jwt.{b64_token}": (
            f"Sec-WebSocket-Protocol: jwt-auth, jwt.{REDACTED}"
        ),
        f"offered ['jwt-auth', 'jwt.{b64_token}']": f"offered ['jwt-auth', 'jwt.{REDACTED}']",
        f"jwt-auth.{token} bearer.{b64_token}": f"jwt-auth.{REDACTED} bearer.{REDACTED}",
        f"raw token {token} in a log line": f"raw token {REDACTED} in a log line",
        f"decoded {b64_token}!": f"decoded {REDACTED}!",
        f"secret={signing_key}; user=alice": f"secret={REDACTED}; user=alice",
        "Basic dXNlcjpwYXNzd29yZA==": f"Basic {REDACTED}",
    }
    for text, expected in cases.items():
        assert redact_text(text) == expected


def test_credential_headers_lose_their_values_and_keep_their_names(token: str, b64_token: str):
    headers = [
        ("Authorization", f"Bearer {token}"),
        ("Cookie", "netra_session=s3ss10n-cookie-value"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("X-API-Key", "opaque-api-key-9f8e7d"),
        ("Sec-WebSocket-Protocol", f"jwt-auth, jwt.{b64_token}"),
        ("User-Agent", "netra_ws/0.1"),
    ]
    assert redact_headers(headers) == {
        "Authorization": REDACTED,
        "Cookie": REDACTED,
        "Set-Cookie": f"{REDACTED}, {REDACTED}",
        "X-API-Key": REDACTED,
        "Sec-WebSocket-Protocol": f"jwt-auth, jwt.{REDACTED}",
        "User-Agent": "netra_ws/0.1",
    }
    # In a header even a short token goes: there is nothing else it could be.
    assert redact_subprotocol("jwt.abc") == f"jwt.{REDACTED}"
    assert redact_subprotocol("jwt-auth") == "jwt-auth"


def test_urls_lose_query_string_fragment_and_credentials(token: str):
    assert (
        redact_url(f"wss://me:pw@host:8443/api/v1/websocket?token={token}#x")
        == "wss://host:8443/api/v1/websocket"
    )
    assert redact_url("wss://jwt.example.com/ws") == "wss://jwt.example.com/ws"


def test_the_signing_secret_from_the_environment_is_replaced(monkeypatch):
    monkeypatch.setenv(SECRET_ENV, "env-signing-secret-4567")
    assert redact_text("key env-signing-secret-4567 used") == f"key {REDACTED} used"
    monkeypatch.setenv(SECRET_ENV, "short")
    with pytest.warns(RuntimeWarning, match="shorter than 8"):
        assert redact_text("a short story") == "a short story"


def test_registered_secrets_reach_the_trace_writer(tmp_path: Path, signing_key: str):
    with TraceWriter(tmp_path / "run.jsonl", labels={"note": f"key={signing_key}"}) as tw:
        tw.record("error", message=f"bad signature with {signing_key}")
    assert signing_key not in tw.path.read_text(encoding="utf-8")
    unregister_secret(signing_key)
    assert redact_text(signing_key) == signing_key


def test_user_patterns_from_the_constructor_and_the_environment(monkeypatch):
    redactor = Redactor(
        patterns=[r"sk-[A-Za-z0-9]{20,}", r"(?<=api_key=)\w+"], secrets=["hunter2-hunter2"]
    )
    text = "sk-abcdefghijklmnopqrstuv api_key=xyz123 pw=hunter2-hunter2 run_1"
    assert redactor.redact_text(text) == f"{REDACTED} api_key={REDACTED} pw={REDACTED} run_1"
    assert redact_text(text) == text  # the default redactor does not know them

    monkeypatch.setenv(REDACT_ENV, "ACME-[0-9]{6}\n\n(?i)internal-host-[a-z]+")
    assert redact_text("ACME-123456 on INTERNAL-HOST-db") == f"{REDACTED} on {REDACTED}"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Redactor(patterns=["(unclosed"]), "not a valid regular expression"),
        (lambda: Redactor(patterns=["x*"]), "matches the empty string"),
        (lambda: Redactor(patterns="abc"), "wrap a single one"),
        (lambda: Redactor(secrets=["short"]), "at least 8 characters"),
        (lambda: register_secret("abc"), "at least 8 characters"),
    ],
)
def test_unusable_configuration_is_refused_up_front(make, message):
    with pytest.raises(RedactionError, match=message):
        make()


def test_a_bad_environment_pattern_fails_loudly_not_silently(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(REDACT_ENV, "ok-[0-9]+\n[bad")
    with pytest.raises(RedactionError, match=rf"\${REDACT_ENV} line 2"):
        redact_text("anything")
    with pytest.raises(RedactionError):
        TraceWriter(tmp_path / "never.jsonl", target="wss://h/ws")  # before any frame


def test_redaction_is_idempotent(token: str, b64_token: str):
    text = f"Bearer {token} jwt.{b64_token} {b64_token} Cookie: a=b"
    once = redact_text(text)
    assert redact_text(once) == once


def test_documented_limits_are_what_the_docstring_says():
    # Replaced although not secret: a long dotted name after "jwt." and a capitalised word.
    assert redact_text("except jwt.ExpiredSignatureError:") == f"except jwt.{REDACTED}:"
    assert redact_text("Basic Authentication") == f"Basic {REDACTED}"
    # Not found: an opaque token with no prefix, no header and no registration.
    assert redact_text("token is 7f3a9c2b1d0e") == "token is 7f3a9c2b1d0e"


# --- JSON, files, notebooks ----------------------------------------------------------------------


def test_json_values_are_redacted_by_their_keys_and_the_structure_is_kept(token: str):
    data = {
        "type": "connect",
        "token": "opaque-value",
        "Password": "pw-123456",
        "url": f"wss://h/ws?token={token}",
        "response_headers": {"Set-Cookie": "a=1", "Server": "uvicorn"},
        "headers": [
            {"name": "Authorization", "value": f"Bearer {token}"},
            {"name": "X", "value": "1"},
        ],
        "cookies": [{"name": "sid", "value": "abc", "httpOnly": True}],
        "queryString": [{"name": "token", "value": token}],
        "n": 3,
        "ok": True,
        "nested": [{"note": f"saw {token}"}, None],
    }
    assert redact_json(data) == {
        "type": "connect",
        "token": REDACTED,
        "Password": REDACTED,
        "url": "wss://h/ws",
        "response_headers": {"Set-Cookie": REDACTED, "Server": "uvicorn"},
        "headers": [{"name": "Authorization", "value": REDACTED}, {"name": "X", "value": "1"}],
        "cookies": [{"name": "sid", "httpOnly": True, "value": REDACTED}],
        "queryString": [{"name": "token", "value": REDACTED}],
        "n": 3,
        "ok": True,
        "nested": [{"note": f"saw {REDACTED}"}, None],
    }


def test_json_credential_keys_lose_any_value_and_python_values_become_json():
    when = datetime(2025, 9, 10, tzinfo=UTC)
    data = {
        "API_KEY": 918273645546,
        "Secret": {"value": "hunter2-very-secret", "n": [1.5, "x"], "set": False},
        "jwt": None,
        "request_headers": [("Cookie", "a=1"), ("Cookie", "b=2"), ("Accept", "*/*")],
        "headers": [],
        "when": when,
        "error": ValueError("no"),
        7: ("a", "b"),
    }
    assert redact_json(data) == {
        "API_KEY": REDACTED,
        "Secret": {"value": REDACTED, "n": [REDACTED, REDACTED], "set": False},
        "jwt": None,
        "request_headers": {"Cookie": f"{REDACTED}, {REDACTED}", "Accept": "*/*"},
        "headers": [],  # HAR's empty list of headers stays a list
        "when": str(when),
        "error": "no",
        "7": ["a", "b"],
    }


def test_redact_file_makes_a_shareable_trace_copy_and_leaves_the_evidence(
    tmp_path: Path, token: str
):
    path = tmp_path / "run.jsonl"
    binary = b"\x00eyJ.binary\xff"
    with TraceWriter(path, target="wss://h/ws") as tw:
        tw.frame("send", json.dumps({"type": "auth", "token": token}), t_wall_ns=1, t_mono_ns=1)
        tw.frame("receive", '{"type":"agent_started","run_id":"run_1"}', t_wall_ns=2, t_mono_ns=2)
        tw.frame("receive", binary, t_wall_ns=3, t_mono_ns=3)
    original = path.read_bytes()
    assert token.encode() in original  # the writer keeps frame data as evidence

    copy = redact_file(path, out=tmp_path / "share" / "run.jsonl")
    assert path.read_bytes() == original
    text = copy.read_text(encoding="utf-8")
    assert token not in text
    shared = read_trace(copy)
    first, second, third = shared.frames
    assert first["redacted"] is True and REDACTED in first["data"]
    assert first["event"] == "auth" and list(first)[-1] == "redacted"
    assert "redacted" not in second and "redacted" not in third
    assert base64.b64decode(third["data"]) == binary
    # Lines with nothing to redact are byte for byte the original lines.
    assert original.splitlines()[2:] == copy.read_bytes().splitlines()[2:]
    assert original.splitlines()[0] == copy.read_bytes().splitlines()[0]


def test_redact_file_on_a_report_a_log_and_a_har(tmp_path: Path, token: str):
    report = tmp_path / "report.md"
    report.write_text(f"# Verdict\n\nThe run `run_1` used `Bearer {token}`.\n", encoding="utf-8")
    redact_file(report)
    assert report.read_text(encoding="utf-8") == (
        f"# Verdict\n\nThe run `run_1` used `Bearer {REDACTED}`.\n"
    )

    log = tmp_path / "server.log"
    log.write_text("12:00 connected run_1\r\n12:01 ok\r\n", encoding="utf-8")
    before = log.stat().st_mtime_ns
    redact_file(log)
    assert log.stat().st_mtime_ns == before  # nothing to redact: not rewritten
    assert log.read_bytes() == b"12:00 connected run_1\r\n12:01 ok\r\n"

    har = redact_file(HAR_DIR / "chrome.har", out=tmp_path / "chrome.har")
    text = har.read_text(encoding="utf-8")
    assert "secretcookievalue" not in text and "eyJhbGciOiJIUzI1NiIs" not in text
    document = json.loads(text)
    messages = document["log"]["entries"][1]["_webSocketMessages"]
    original = json.loads((HAR_DIR / "chrome.har").read_text(encoding="utf-8"))
    assert messages == original["log"]["entries"][1]["_webSocketMessages"]  # no secrets there


def test_redact_file_refuses_binary_files(tmp_path: Path):
    parquet = tmp_path / "frames.parquet"
    parquet.write_bytes(b"PAR1\x00\xff\xfe")
    with pytest.raises(RedactionError, match="not UTF-8"):
        redact_file(parquet)


def _notebook(token: str, png: str) -> dict:
    import nbformat  # here: importing it takes seconds, and only two tests need it

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"parameters": {"token": "opaque-param-token-1", "url": "ws://h/ws"}}
    nb.cells = [
        nbformat.v4.new_code_cell(
            source=f'token = "{token}"\nsession = await connect(url, token=token)',
            outputs=[
                nbformat.v4.new_output(
                    "stream", name="stdout", text=f"Authorization: Bearer {token}\n"
                ),
                nbformat.v4.new_output(
                    "execute_result",
                    data={"text/plain": f"Handshake(subprotocol='jwt.{token}')"},
                    execution_count=1,
                ),
                nbformat.v4.new_output(
                    "display_data", data={"image/png": png, "text/plain": "<Figure>"}
                ),
                nbformat.v4.new_output(
                    "error",
                    ename="HandshakeRejected",
                    evalue=f"bad {token}",
                    traceback=[f"x {token}"],
                ),
            ],
            execution_count=1,
        ),
        nbformat.v4.new_markdown_cell(
            "Events: agent_started → agent_completed in run_8c1d, 1.5 s."
        ),
    ]
    return nb


def test_redact_notebook_cleans_sources_outputs_and_parameters_and_keeps_it_valid(
    tmp_path: Path, token: str
):
    import nbformat

    # A PNG whose base64 contains "eyJ" and would be ruined by a careless regex.
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b'{"a":1}.' * 50).decode()
    path = tmp_path / "01-connect.ipynb"
    nbformat.write(nbformat.from_dict(_notebook(token, png)), path)

    assert redact_notebook(path) == path
    text = path.read_text(encoding="utf-8")
    assert token not in text and "opaque-param-token-1" not in text
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code, markdown = nb.cells
    assert code.source == f'token = "{REDACTED}"\nsession = await connect(url, token=token)'
    stream, result, display, error = code.outputs
    assert stream.text == f"Authorization: Bearer {REDACTED}\n"
    assert result.data["text/plain"] == f"Handshake(subprotocol='jwt.{REDACTED}')"
    assert display.data["image/png"] == png
    assert error.evalue == f"bad {REDACTED}" and error.traceback == [f"x {REDACTED}"]
    assert nb.metadata["papermill"]["parameters"] == {"token": REDACTED, "url": "ws://h/ws"}
    assert markdown.source == "Events: agent_started → agent_completed in run_8c1d, 1.5 s."


def test_redact_notebook_refuses_what_is_not_a_notebook(tmp_path: Path):
    path = tmp_path / "x.ipynb"
    path.write_text('{"log": {}}', encoding="utf-8")
    with pytest.raises(RedactionError, match="no 'cells'"):
        redact_notebook(path)
    path.write_text("print('hi')", encoding="utf-8")
    with pytest.raises(RedactionError, match="not JSON"):
        redact_file(path)
    assert path.read_text(encoding="utf-8") == "print('hi')"


# --- logging -------------------------------------------------------------------------------------


def test_the_logging_filter_redacts_messages_arguments_and_tracebacks(token: str, signing_key: str):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("netra_ws.test_redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s and key %s", f"Bearer {token}", signing_key)
        try:
            raise ValueError(f"token {token} rejected")
        except ValueError:
            logger.exception("handshake failed for run_%d", 7)
        logger.warning("%d args for %s", "not-a-number")  # a broken call is kept, not raised
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert token not in output and signing_key not in output
    assert f"connecting with Bearer {REDACTED} and key {REDACTED}" in output
    assert "handshake failed for run_7" in output
    assert f"ValueError: token {REDACTED} rejected" in output
    assert "not-a-number" in output
