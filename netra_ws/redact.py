"""Secret redaction: nothing that authenticates a user may reach a trace, a report, a notebook
or a log.

Apply it at the boundary where data is written (the trace writer, the report, the logger, a
notebook before it is shared), never rely on the caller having done it. Everything below is
replaced with ``[REDACTED]``:

=========================  ===================================================================
JWTs                       ``eyJ….….…`` anywhere in text, and ``base64url(JWT)`` (``ZXlK…``, the
                           browser's subprotocol form) when it really decodes to a JWT
token subprotocols         ``jwt.<t>``, ``jwt-auth.<t>``, ``bearer.<t>``: the prefix stays as
                           evidence (``jwt.[REDACTED]``); bare ``jwt-auth`` stays
``Bearer`` / ``Basic``     ``Bearer abc…`` → ``Bearer [REDACTED]``
credential headers         the whole value of Authorization, Proxy-Authorization, Cookie,
                           Set-Cookie, X-API-Key (names stay, as evidence)
credential keys            in JSON and trace records, the whole value under ``token``,
                           ``password``, ``api_key`` … (:data:`SECRET_KEYS`, any case, nested)
URLs                       query string, fragment and ``user:password@``
exact secrets              :func:`register_secret` (process-wide), ``Redactor(secrets=[…])``,
                           and the signing key in ``$NETRA_WS_JWT_SECRET``
your patterns              ``Redactor(patterns=[…])`` or ``$NETRA_WS_REDACT`` (one regex per line)
=========================  ===================================================================

Typical use::

    register_secret(signing_key)                    # replaced everywhere from now on
    redact_notebook("out/01-connect.ipynb")         # before attaching it to an issue
    redact_file("data/run.jsonl", out="share/run.jsonl")   # a shareable copy of a trace
    handler.addFilter(RedactingFilter())            # logs

Limits, on purpose (so nobody relies on more):

- Free text is matched by shape. A credential that is not JWT-shaped, has no ``Bearer`` /
  ``jwt.`` prefix, no credential header or JSON key around it, and was not registered, is not
  found: register it (:func:`register_secret`) or add a pattern.
- To keep evidence readable, a token subprotocol in free text needs at least 10 token
  characters after the prefix (the backend ignores shorter ones, PROTOCOL.md §2), so the
  server's own ``jwt.TOKEN, jwt-auth.TOKEN`` help text and ``jwt.io`` survive; header values
  are always redacted whatever their length. Still replaced by mistake: ``jwt.<10+ token
  characters>`` in prose or code (``jwt.ExpiredSignatureError``), and ``Bearer``/``Basic``
  followed by a capitalised word of 8+ letters (``Basic Authentication``).
- ``Bearer``/``Basic`` values shorter than 8 characters, or made of lower-case letters only
  (an English word: ``basic checks``, ``bearer tokens``), are kept.
- Binary data is never decoded nor altered: base64 binary frames in traces, images in
  notebooks. A secret inside them is not found. Base64 text contains no ``.``, so the JWT
  rule cannot fire on it even where it happens to contain ``eyJ``.
- Event names, ids (``run_…``, ``thread_…``), numbers, ISO timestamps and JSON structure are
  untouched; JSON files keep their keys, only string values change (and any value under a
  credential key: a number, a list, a mapping).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import RedactionError
from .tokens import SECRET_ENV
from .untrusted import for_terminal

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "REDACT_ENV",
    "SECRET_HEADERS",
    "SECRET_KEYS",
    "RedactingFilter",
    "Redactor",
    "redact_file",
    "redact_headers",
    "redact_json",
    "redact_notebook",
    "redact_subprotocol",
    "redact_text",
    "redact_url",
    "register_secret",
    "unregister_secret",
]

# A log line is cut at this length (what it quotes is in the trace).
_LOGGED = 2_000

REDACTED = "[REDACTED]"

# Regexes (one per line) that every Redactor also applies, for secrets of your own.
REDACT_ENV = "NETRA_WS_REDACT"

# Exact secrets shorter than this would replace ordinary words everywhere.
MIN_SECRET_LENGTH = 8

# Header names whose whole value is a credential.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)

# JSON keys (any case) whose value is a credential, whatever it looks like: papermill
# records notebook parameters such as ``token`` in the notebook's metadata.
SECRET_KEYS = SECRET_HEADERS | frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "client_secret",
        "id_token",
        "jwt",
        "jwt_secret",
        "jwt_secret_key",
        "passwd",
        "password",
        "refresh_token",
        "secret",
        "signing_key",
        "token",
    }
)

# Three base64url segments, the first starting like a JSON object header ('{"' -> 'eyJ').
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# base64url of a JWT starts with 'ZXlK' (base64 of 'eyJ'); checked by decoding, see _b64_jwt.
_B64_JWT = re.compile(r"ZXlK[A-Za-z0-9_-]{20,}={0,2}")
# In a header value: jwt.<t>, jwt-auth.<t>, bearer.<t>, whatever <t> is.
_TOKEN_SUBPROTOCOL = re.compile(r"\b(jwt-auth|jwt|bearer)\.[^\s,;\"']+", re.IGNORECASE)
# In free text: <t> must be 10+ HTTP token characters (RFC 9110 tchar, plus '/' and '=' of
# standard base64), which is what a subprotocol value can be, so "jwt.TOKEN," stays.
_TOKEN_SUBPROTOCOL_TEXT = re.compile(
    r"\b(jwt-auth|jwt|bearer)\.[A-Za-z0-9!#$%&*+./=^_`|~-]{10,}", re.IGNORECASE
)
_BEARER = re.compile(r"\b(Bearer|Basic)(\s+)([A-Za-z0-9._~+/=-]+)", re.IGNORECASE)
_MIN_BEARER_LENGTH = 8

# Notebook output and attachment keys holding base64 of binary data: never decoded, never
# altered (a regex can only corrupt them).
_BINARY_MIME = frozenset({"application/pdf", "application/octet-stream"})


# --- process-wide configuration ------------------------------------------------------------

_lock = threading.Lock()
_registered: set[str] = set()
_generation = 0  # bumped on every register/unregister, so cached rules are rebuilt
_global_cache: tuple[tuple[str, str, int], _Rules] | None = None
_warned_short_env_secret = False


def register_secret(secret: str) -> None:
    """Replace this exact string everywhere from now on: every :class:`Redactor`, the module
    functions, and therefore the trace writer, reports and log filters of this process.

    Use it for a signing key or a token that has no recognisable shape. Raises
    :class:`~netra_ws.errors.RedactionError` for strings shorter than
    :data:`MIN_SECRET_LENGTH` (they would replace ordinary words). Undo with
    :func:`unregister_secret`.
    """
    _check_secret(secret)
    global _generation
    with _lock:
        _registered.add(secret)
        _generation += 1


def unregister_secret(secret: str) -> None:
    """Stop replacing a string given to :func:`register_secret` (unknown strings are ignored)."""
    global _generation
    with _lock:
        _registered.discard(secret)
        _generation += 1


def _check_secret(secret: Any) -> None:
    if not isinstance(secret, str):
        raise RedactionError(f"a secret to redact must be a str, not {type(secret).__name__}")
    if len(secret) < MIN_SECRET_LENGTH:
        raise RedactionError(
            f"a secret to redact must have at least {MIN_SECRET_LENGTH} characters "
            f"(got {len(secret)}): a shorter one would replace ordinary words"
        )


def _compile_pattern(pattern: str | re.Pattern[str], where: str) -> re.Pattern[str]:
    try:
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise RedactionError(
            f"{where}: {pattern!r} is not a valid regular expression: {exc}"
        ) from None
    if compiled.fullmatch(""):
        raise RedactionError(
            f"{where}: {compiled.pattern!r} matches the empty string, so it would put "
            f"{REDACTED} between every character; make it match at least one character"
        )
    return compiled


class _Rules:
    """Extra rules beyond the built-in shapes: exact secrets and user patterns, compiled."""

    def __init__(self, secrets: Iterable[str], patterns: Iterable[re.Pattern[str]]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        ordered = sorted(set(secrets), key=len, reverse=True)
        self.secrets = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.patterns = tuple(patterns)

    def apply(self, text: str) -> str:
        if self.secrets is not None:
            text = self.secrets.sub(REDACTED, text)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text


def _global_rules() -> _Rules:
    """Registered secrets, the signing key and $NETRA_WS_REDACT, rebuilt when they change."""
    global _global_cache, _warned_short_env_secret
    env_patterns = os.environ.get(REDACT_ENV, "")
    env_secret = os.environ.get(SECRET_ENV, "")
    with _lock:
        key = (env_patterns, env_secret, _generation)
        if _global_cache is not None and _global_cache[0] == key:
            return _global_cache[1]
        secrets = set(_registered)
    patterns = [
        _compile_pattern(line, f"${REDACT_ENV} line {lineno}")
        for lineno, line in enumerate(env_patterns.splitlines(), 1)
        if line.strip()
    ]
    if len(env_secret) >= MIN_SECRET_LENGTH:
        secrets.add(env_secret)
    elif env_secret and not _warned_short_env_secret:
        _warned_short_env_secret = True
        warnings.warn(
            f"${SECRET_ENV} is shorter than {MIN_SECRET_LENGTH} characters, so it is not "
            "redacted as an exact string (it would replace ordinary words); use a longer secret",
            RuntimeWarning,
            stacklevel=3,
        )
    rules = _Rules(secrets, patterns)
    with _lock:
        _global_cache = (key, rules)
    return rules


# --- the redactor ----------------------------------------------------------------------------


class Redactor:
    """Replace secrets in text, headers, URLs, JSON and files.

    ``Redactor()`` applies the built-in rules (see the module docstring) plus the process-wide
    ones (:func:`register_secret`, ``$NETRA_WS_JWT_SECRET``, ``$NETRA_WS_REDACT``, read at
    each call). Add your own: ``Redactor(patterns=[r"sk-[A-Za-z0-9]{20,}"], secrets=[key])``;
    every match of a pattern is replaced whole (use a look-behind such as
    ``(?<=api_key=)\\w+`` to keep a prefix). Bad patterns and too-short secrets raise
    :class:`~netra_ws.errors.RedactionError` here, not later.

    The module functions (:func:`redact_text`, :func:`redact_file`, …) use a default
    ``Redactor()``; make your own only for extra patterns or secrets.
    """

    def __init__(
        self,
        *,
        patterns: Iterable[str | re.Pattern[str]] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        if isinstance(patterns, (str, re.Pattern)) or isinstance(secrets, str):
            raise RedactionError("patterns and secrets are lists: wrap a single one in [ ]")
        compiled = [_compile_pattern(p, f"Redactor pattern {i}") for i, p in enumerate(patterns, 1)]
        secrets = list(secrets)
        for secret in secrets:
            _check_secret(secret)
        self._own = _Rules(secrets, compiled)
        self._has_own = bool(secrets or compiled)

    def __repr__(self) -> str:
        patterns = len(self._own.patterns)
        secrets = 0 if self._own.secrets is None else self._own.secrets.pattern.count("|") + 1
        return f"Redactor(patterns={patterns}, secrets={secrets})"

    # -- text ----------------------------------------------------------------------------

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret form of the module docstring replaced."""
        # Exact strings first: a registered key must go whole, before a shape rule cuts it.
        text = self._extras(text)
        text = _TOKEN_SUBPROTOCOL_TEXT.sub(lambda m: f"{m.group(1)}.{REDACTED}", text)
        text = _BEARER.sub(_bearer, text)
        text = _JWT.sub(REDACTED, text)
        return _B64_JWT.sub(_b64_jwt, text)

    def redact_subprotocol(self, value: str) -> str:
        """``jwt.<token>`` becomes ``jwt.[REDACTED]``; bare names such as ``jwt-auth`` are kept.

        Every token-bearing entry is redacted whatever its length: in a
        ``Sec-WebSocket-Protocol`` value there is nothing else it could be.
        """
        redacted = ", ".join(
            _TOKEN_SUBPROTOCOL.sub(lambda m: f"{m.group(1)}.{REDACTED}", part.strip())
            for part in value.split(",")
        )
        return self._extras(redacted)

    def redact_headers(
        self, headers: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> dict[str, str]:
        """Return the headers with credential values replaced; names are kept as evidence.

        Repeated headers are joined with ", " (as HTTP allows), so the result is a plain dict
        that serialises to JSON.
        """
        items = headers.items() if isinstance(headers, Mapping) else headers
        out: dict[str, str] = {}
        for name, value in items:
            value = self._header_value(name, value)
            out[name] = f"{out[name]}, {value}" if name in out else value
        return out

    def redact_url(self, url: str) -> str:
        """Drop the query string, the fragment and any ``user:password@`` from a URL.

        The protocol forbids tokens in the query string, but users paste such URLs anyway.
        Exact secrets and your patterns are applied to what remains; the shape rules are not
        (a host such as ``jwt.example.com`` must survive).
        """
        if not url:
            return url
        try:
            parts = urlsplit(url)
        except ValueError:
            return self.redact_text(url)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return self._extras(urlunsplit((parts.scheme, netloc, parts.path, "", "")))

    # -- JSON ----------------------------------------------------------------------------

    def redact_json(self, value: Any) -> Any:
        """Return a redacted copy of JSON-like data, ready for ``json.dumps``.

        Keys and structure are kept; values are redacted by what their key says (any case):

        - a credential key (:data:`SECRET_KEYS`) loses its whole value whatever it looks like,
          nested values included; only ``None``, booleans and empty strings stay (absence is
          evidence, and none of them can hold a secret);
        - ``url``/``*_url``/``target`` values are URLs (:meth:`redact_url`);
        - ``headers``/``*_headers`` are headers: a mapping, websockets' ``Headers`` (every
          repeated ``Set-Cookie`` kept, via ``raw_items()``) or ``(name, value)`` pairs become
          a dict (:meth:`redact_headers`); HAR's ``[{"name", "value"}]`` stays a list;
        - HAR ``cookies`` and ``queryString`` lose every value;
        - binary MIME bundles (``image/png`` …) are left alone;
        - every other string goes through :meth:`redact_text`.

        Python values that JSON has no form for are accepted too, so a writer can pass what it
        was given: tuples and sets become lists, keys become ``str``, and any other object
        (an exception, a datetime, a path) becomes its redacted ``str()``. The trace writers
        (:class:`~netra_ws.trace.TraceWriter`, :func:`~netra_ws.trace.write_trace`) call this
        for every record except frames.
        """
        return self._json(value, "", secret=False)

    def _json(self, value: Any, key: str, *, secret: bool) -> Any:
        # ``secret``: an enclosing key names a credential, so every value below it is one.
        lower = key.lower()
        if _is_binary_mime(lower):
            return value
        secret = secret or lower in SECRET_KEYS
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return REDACTED if secret else value
        if isinstance(value, str):
            if secret:
                return REDACTED if value else value
            if _is_url_key(lower):
                return self.redact_url(value)
            return self.redact_text(value)
        if not secret and _is_headers_key(lower):
            pairs = _header_pairs(value)
            if pairs is not None:
                return self.redact_headers(pairs)
        if isinstance(value, Mapping):
            return {str(k): self._json(v, str(k), secret=secret) for k, v in value.items()}
        if isinstance(value, (list, tuple, set, frozenset)):
            if not secret and lower in ("cookies", "querystring"):
                return [self._name_value(item, secret=True) for item in value]
            if not secret and _is_headers_key(lower):
                return [self._name_value(item, secret=False) for item in value]
            return [self._json(item, key, secret=secret) for item in value]
        # Exceptions, datetimes, paths…: their text is the evidence, and it may hold a token.
        return REDACTED if secret else self.redact_text(str(value))

    def _name_value(self, item: Any, *, secret: bool) -> Any:
        """One HAR ``{"name", "value", …}`` item of headers, cookies or queryString."""
        if not (isinstance(item, Mapping) and isinstance(item.get("value"), str)):
            return self._json(item, "", secret=False)
        out = {str(k): self._json(v, "", secret=False) for k, v in item.items() if k != "value"}
        name = str(item.get("name", ""))
        out["value"] = REDACTED if secret else self._header_value(name, item["value"])
        return out

    def _header_value(self, name: str, value: str) -> str:
        lower = name.lower()
        if lower in SECRET_HEADERS:
            return REDACTED
        if lower == "sec-websocket-protocol":
            return self.redact_subprotocol(value)
        return self.redact_text(value)

    # -- files ---------------------------------------------------------------------------

    def redact_file(
        self, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
    ) -> Path:
        """Redact a file in place (or into ``out``) and return the path written.

        By suffix: ``.ipynb`` → :meth:`redact_notebook`; ``.jsonl`` (traces, logs) → each line
        as JSON (:meth:`redact_json`), frame records whose ``data`` changed get
        ``"redacted": true`` and binary frames are left alone; ``.json``/``.har`` → the whole
        document as JSON; anything else (Markdown reports, ``.log``, ``.txt``, ``.csv``…) →
        :meth:`redact_text`. Lines or documents that do not parse are redacted as text, never
        dropped. A file with nothing to redact is not rewritten.

        Traces are raw evidence: pass ``out=`` to keep the original and share the copy.
        Raises :class:`~netra_ws.errors.RedactionError` for a file that is not UTF-8 text
        (Parquet, images): regenerate those from a redacted trace instead.
        """
        src = Path(path)
        if src.suffix.lower() == ".ipynb":
            return self.redact_notebook(src, out)
        text = _read_text(src)
        suffix = src.suffix.lower()
        if suffix == ".jsonl":
            new = self._jsonl(text)
        elif suffix in (".json", ".har"):
            new = self._json_document(text, indent=2, sort_keys=False)
        else:
            new = self.redact_text(text)
        return _write_if_changed(src, Path(out) if out is not None else src, text, new)

    def redact_notebook(
        self, path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
    ) -> Path:
        """Redact a Jupyter notebook (``.ipynb``) in place (or into ``out``); return the path.

        JSON-aware: cell sources, outputs (stream text, tracebacks, display data such as
        ``text/plain``, ``text/html``, ``application/json``), and metadata (papermill's
        recorded ``parameters``) are redacted; images and other binary outputs are kept
        byte for byte; the notebook stays valid. Run it on an executed notebook before
        attaching it anywhere. Raises :class:`~netra_ws.errors.RedactionError` when the file
        is not a notebook (not JSON, or no ``cells``).
        """
        src = Path(path)
        text = _read_text(src)
        try:
            notebook = json.loads(text)
        except ValueError as exc:
            raise RedactionError(f"{src}: not a notebook: not JSON ({exc})") from None
        if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
            raise RedactionError(f"{src}: not a notebook: no 'cells' list at the top level")
        redacted = self.redact_json(notebook)
        if redacted == notebook:
            new = text
        else:
            # nbformat's own layout, so a redacted notebook diffs cleanly against the original.
            new = json.dumps(redacted, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        return _write_if_changed(src, Path(out) if out is not None else src, text, new)

    def _jsonl(self, text: str) -> str:
        lines = text.splitlines(keepends=True)
        out = []
        for line in lines:
            body = line.rstrip("\r\n")
            ending = line[len(body) :]
            try:
                record = json.loads(body)
            except ValueError:
                out.append(self.redact_text(body) + ending)  # a cut or foreign line: as text
                continue
            redacted = self._record(record)
            if redacted == record:
                out.append(line)  # byte for byte: nothing to redact here
            else:
                dumped = json.dumps(redacted, ensure_ascii=False, separators=(",", ":"))
                out.append(dumped + ending)
        return "".join(out)

    def _record(self, record: Any) -> Any:
        """One JSON Lines record; frames keep binary data and say when their data changed."""
        if not (isinstance(record, dict) and record.get("kind") == "frame"):
            return self.redact_json(record)
        data = record.get("data")
        rest = self.redact_json({k: v for k, v in record.items() if k != "data"})
        if "data" not in record:
            return rest
        if record.get("opcode") == "binary" or not isinstance(data, str):
            rest["data"] = data
        else:
            rest["data"] = self.redact_text(data)
            if rest["data"] != data:
                rest["redacted"] = True
        # Keep the writer's field order (data last) so the copy reads like the original.
        return {k: rest[k] for k in (*record.keys(), *rest.keys()) if k in rest}

    def _json_document(self, text: str, *, indent: int, sort_keys: bool) -> str:
        try:
            document = json.loads(text)
        except ValueError:
            return self.redact_text(text)
        redacted = self.redact_json(document)
        if redacted == document:
            return text
        return json.dumps(redacted, indent=indent, sort_keys=sort_keys, ensure_ascii=False) + "\n"

    def _extras(self, text: str) -> str:
        text = _global_rules().apply(text)
        return self._own.apply(text) if self._has_own else text


def _bearer(match: re.Match[str]) -> str:
    scheme, space, value = match.groups()
    if len(value) < _MIN_BEARER_LENGTH or (value.isalpha() and value.islower()):
        return match.group(0)  # "Basic checks", "bearer tokens": words, not credentials
    return f"{scheme}{space}{REDACTED}"


def _b64_jwt(match: re.Match[str]) -> str:
    candidate = match.group(0)
    try:
        decoded = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return candidate
    # Only a real JWT inside: base64 of anything else is left as it is.
    return REDACTED if _JWT.fullmatch(decoded) else candidate


def _is_binary_mime(key: str) -> bool:
    return (key.startswith("image/") and key != "image/svg+xml") or key in _BINARY_MIME


def _is_headers_key(key: str) -> bool:
    """``key`` (lower case) holds HTTP headers: ``headers``, ``request_headers``…"""
    return key == "headers" or key.endswith("_headers")


def _header_pairs(value: Any) -> list[tuple[str, str]] | None:
    """Headers as (name, value) pairs, or None when ``value`` is not headers of strings.

    A mapping, websockets' ``Headers`` or a non-empty list of ``(name, value)`` pairs. An
    empty list stays a list (HAR's empty ``headers``); a mapping with values other than
    strings is walked key by key instead (every credential header name is in SECRET_KEYS).
    """
    # websockets' Headers is a Mapping whose items() fails on a repeated name (Set-Cookie);
    # its raw_items() gives every pair.
    raw_items = getattr(value, "raw_items", None)
    if callable(raw_items):
        return [(str(name), str(val)) for name, val in raw_items()]
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)) and value:
        items = list(value)
    else:
        return None
    if not all(
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], str)
        and isinstance(item[1], str)
        for item in items
    ):
        return None
    return [(str(name), val) for name, val in items]


def _is_url_key(key: str) -> bool:
    """``key`` (lower case) holds a URL: ``url``, ``target``, ``*_url``."""
    return key in ("url", "target") or key.endswith("_url")


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        # newline="" semantics: keep \r\n as it is, so an unchanged file stays byte for byte.
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RedactionError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "redact_file reads text, JSON, JSON Lines and notebooks. Regenerate binary files "
            "(Parquet, images) from a redacted trace instead"
        ) from None


def _write_if_changed(src: Path, dst: Path, old: str, new: str) -> Path:
    if new == old and dst.resolve() == src.resolve():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Write a temporary file beside the target, then rename: a crash never leaves half a file,
    # and an in-place redaction never leaves the secret-bearing original behind a failed write.
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(new)
        shutil.copymode(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


# --- logging -----------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """A :class:`logging.Filter` that redacts every record's message, exception and stack text.

    Add it to the handlers (a filter on a logger does not see records from its children)::

        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())

    The message is formatted first (``msg % args``) and then redacted, so secrets passed as
    arguments are caught too. It never drops a record and never raises: a record whose
    arguments do not fit its format string is kept as ``msg`` plus the arguments' repr.
    """

    def __init__(self, redactor: Redactor | None = None, name: str = "") -> None:
        super().__init__(name)
        self._redactor = redactor if redactor is not None else _DEFAULT

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self._redactor.redact_text
        try:
            message = record.getMessage()
        except Exception:
            message = f"{record.msg!s} {record.args!r}"
        # One line, and nothing in it (a client's event name, a close reason) can drive the
        # terminal or forge another log line: controls are shown escaped.
        record.msg = for_terminal(redact(message), _LOGGED)
        record.args = None
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text when it is set, so the traceback it prints is ours.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# --- module functions: the default redactor ---------------------------------------------------

_DEFAULT = Redactor()


def redact_text(text: str) -> str:
    """Replace JWTs, token subprotocols, ``Bearer …`` values and configured secrets in text."""
    return _DEFAULT.redact_text(text)


def redact_subprotocol(value: str) -> str:
    """``jwt.<token>`` becomes ``jwt.[REDACTED]``; bare names such as ``jwt-auth`` are kept."""
    return _DEFAULT.redact_subprotocol(value)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return the headers with credential values replaced; names are kept as evidence.

    Repeated headers are joined with ", " (as HTTP allows), so the result is a plain dict
    that serialises to JSON.
    """
    return _DEFAULT.redact_headers(headers)


def redact_url(url: str) -> str:
    """Drop the query string, the fragment and any ``user:password@`` from a URL.

    The protocol forbids tokens in the query string, but users paste such URLs anyway.
    """
    return _DEFAULT.redact_url(url)


def redact_json(value: Any) -> Any:
    """Return a redacted copy of JSON-like data (or of Python values about to be written as
    JSON: a trace record, a report's data), ready for ``json.dumps``; see
    :meth:`Redactor.redact_json` for what each key gets."""
    return _DEFAULT.redact_json(value)


def redact_file(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Redact a trace, report, log or notebook in place (or into ``out``); return the path.

    See :meth:`Redactor.redact_file`. Pass ``out=`` for traces: the original is evidence.
    """
    return _DEFAULT.redact_file(path, out)


def redact_notebook(
    path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Redact an executed notebook in place (or into ``out``); return the path written.

    See :meth:`Redactor.redact_notebook`. Run it before attaching a notebook anywhere:
    outputs, sources and papermill parameters.
    """
    return _DEFAULT.redact_notebook(path, out)
