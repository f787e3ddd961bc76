"""Text that came from a server, a trace, a label or a file name, made safe to show. Pure.

Any such value may hold Markdown, HTML, mentions, escape sequences or a megabyte of text.
Two sinks, one function each, sharing the cleaning and cutting:

- :func:`for_markdown` — a GitHub comment: the value as an inline code span (inside one,
  GitHub neither mentions, links nor renders HTML), one line, cut with its length said;
  ``table=True`` also escapes ``|`` for a GFM table cell.
- :func:`for_terminal` — a terminal line: C0/C1 controls and ESC shown escaped (``\\x1b``),
  so no escape sequence reaches the terminal, cut with its length said.

:func:`for_prose` is for the kit's own sentences that quote such values (verdict
explanations): plain words stay words, every other token goes through :func:`for_markdown`.
:func:`plain_words` is for alt text and Mermaid labels: letters, digits and a few safe marks.

>>> for_markdown("@someone <img src=x>")
'`@someone <img src=x>`'
>>> for_markdown("a ``b`` c")
'```a ``b`` c```'
>>> for_markdown("x | y", table=True)
'`x \\\\| y`'
>>> for_terminal("red \\x1b[31mtext\\x1b[0m")
'red \\\\x1b[31mtext\\\\x1b[0m'
>>> cut("x" * 12345, 10)
'xxxxxxxxxx… (12,345 chars)'
"""

from __future__ import annotations

import re

__all__ = [
    "cut",
    "escape_pipes",
    "for_markdown",
    "for_prose",
    "for_terminal",
    "plain_words",
    "strip_controls",
]

# The default length of one value: long enough for an error message, short enough for a cell.
DEFAULT_LIMIT = 200

# ANSI escape sequences (CSI and OSC, then any other ESC pair), removed whole so their
# parameters ("[31m") do not linger as noise.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# C0 and C1 controls and DEL, plus the bidirectional overrides that reorder what a reader
# sees (the "Trojan Source" characters).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_BACKTICKS = re.compile(r"`+")


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, followed by its full length when it was cut."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} chars)"


def strip_controls(value: object) -> str:
    """``value`` as one line of text: ANSI sequences and control characters removed, every
    run of whitespace (newlines included) folded to one space."""
    text = _ANSI.sub("", str(value))
    text = "".join(" " if c.isspace() else c for c in text)  # \t \n \r \v \f, U+2028…
    return " ".join(_CONTROL.sub("", text).split())


def for_markdown(value: object, limit: int = DEFAULT_LIMIT, *, table: bool = False) -> str:
    """``value`` as an inline code span that GitHub shows literally: one line, no controls,
    cut to ``limit`` characters with its length said; "–" for None, "(empty)" for "".

    The fence is one backtick longer than the longest run inside. With ``table=True`` every
    ``|`` is escaped (and a backslash before it doubled), which a GFM table needs even
    inside a code span. Use it for every value the kit did not write itself.
    """
    if value is None:
        return "–"
    text = cut(strip_controls(value), limit)
    if not text:
        return "(empty)"
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    # A span that starts or ends with a backtick needs a space between it and the fence;
    # CommonMark strips one space from each side again.
    if text.startswith("`") or text.endswith("`"):
        text = f" {text} "
    span = f"{fence}{text}{fence}"
    return escape_pipes(span) if table else span


def escape_pipes(markdown: str) -> str:
    """``markdown`` ready for a GFM table cell: every ``|`` escaped, code spans included
    (the table splits cells before it reads code spans), a backslash before it doubled so
    the escape is not itself escaped."""
    return re.sub(r"(\\*)\|", lambda m: m[1] * 2 + "\\|", markdown)


# A word of the kit's prose that GitHub shows as it is: letters, digits and marks that start
# no Markdown, HTML, entity, mention, reference or link. "_" only inside a word (no emphasis).
_SAFE_WORD = re.compile(r"[\w.,;:()'\"/=%+?!–—…→←×-]+")
# Still live in GitHub though made of safe characters: URLs and www. autolinks, GH-12
# references, commit hashes, and a "_" at a word's edge.
_LIVE_WORD = re.compile(
    r"://|(?i:www\.)|(?i:\bgh-\d)|\b[0-9a-f]{7,40}\b|(?:^|\W)_|_(?:\W|$)"
)
_AROUND = re.compile(r"([(\"']*)(.*?)([)\"'.,;:!?]*)")
# What would start a block (list, heading, quote) at the start of a line.
_BLOCK_START = re.compile(r"[-+=]+|\d+[.)]")


def for_prose(text: object, limit: int = 2000) -> str:
    """One of the kit's sentences that quotes untrusted values (a verdict's explanation),
    as Markdown: words that are plainly words stay as they are; any other word becomes an
    inline code span (:func:`for_markdown`), so a quoted ``@name``, ``#12``, link or tag is
    shown, never live. One line, cut to ``limit`` with its length said."""
    words = cut(strip_controls(text), limit).split(" ")
    out = []
    for i, word in enumerate(words):
        # Sentence marks around a word stay outside its code span.
        lead, core, trail = _AROUND.fullmatch(word).groups()  # type: ignore[union-attr]
        if not core:
            lead, core, trail = "", word, ""
        live = (
            not _SAFE_WORD.fullmatch(core)
            or _LIVE_WORD.search(core)
            or (i == 0 and not lead and _BLOCK_START.fullmatch(core))
        )
        out.append(f"{lead}{for_markdown(core, limit)}{trail}" if core and live else word)
    return " ".join(out)


_PLAIN = re.compile(r"[^\w .,;:()'/%+–—…→←×-]+")


def plain_words(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` as plain words for alt text or a diagram label: controls removed, and every
    character that could mean something to Markdown, HTML or Mermaid (``[]<>`*_|#@&!~\\``…)
    replaced by a space ("_" stays: it is plain text in alt text and in Mermaid). Cut to
    ``limit`` with its length said.

    >>> plain_words("run_0017.jsonl [stall] <b>@x</b>")
    'run_0017.jsonl (stall) b x /b'
    """
    text = strip_controls(value).replace("[", "(").replace("]", ")")
    text = " ".join(_PLAIN.sub(" ", text).split())
    return cut(text, limit)


def for_terminal(value: object, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` for one terminal line: every C0/C1 control, DEL and ESC shown escaped
    (``\\n``, ``\\x1b``, ``\\x9b``), so nothing the value holds can move the cursor, recolour
    or retitle the terminal; cut to ``limit`` characters with its full length said."""
    text = str(value)
    shown = cut(text, limit)
    escaped = _CONTROL.sub(_escape, shown)
    return escaped.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

