"""The report as GitHub shows it: rendered by cmark-gfm (``cmarkgfm``, GitHub's own parser,
with its extensions table, autolink, strikethrough and tagfilter) from traces whose frames
carry every kind of hostile text, and checked on the HTML: nothing the server sent is live.

Plus :mod:`netra_ws.untrusted`, the one place that makes such text safe, for both sinks.
"""

from __future__ import annotations

import json
import re
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest

from netra_ws.report import build_report
from netra_ws.report.markdown import GITHUB_LIMIT, fit
from netra_ws.trace import TraceWriter
from netra_ws.untrusted import cut, for_markdown, for_prose, for_terminal, plain_words

EXTENSIONS = ["table", "autolink", "strikethrough", "tagfilter"]

HOSTILE = [
    "@someone",
    "#12",
    "owner/repo#34",
    "![x](http://evil.example/x.png)",
    "[click](http://evil.example/)",
    "<img src=x onerror=alert(1)>",
    "<details><summary>open",
    "<script>alert(1)</script>",
    "``` `` ` ````",
    "a | b | c",
    "line one\nline two\r\n- item\n# heading",
    "\x1b[31mred\x1b[0m \x1b]0;title\x07",
    "nul\x00byte",
    "~~struck~~ **bold** _em_",
    "https://evil.example/auto www.evil.example mail@evil.example",
    "x" * 100_000,
]
# What must never appear live: each in the HTML outside <code>.
MENTION = re.compile(r"@someone|#12\b|repo#34")


def render(markdown: str) -> str:
    """HTML as GitHub's parser makes it; raw HTML kept (GitHub keeps it, then sanitises),
    so a tag that slipped through shows up here."""
    return cmarkgfm.markdown_to_html_with_extensions(
        markdown, options=cmarkgfm.cmark.Options.CMARK_OPT_UNSAFE, extensions=EXTENSIONS
    )


class Html(HTMLParser):
    """The tags of the HTML, the text outside <code>, and each table's cells per row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.open: list[str] = []
        self.text: list[str] = []
        self.rows: list[int] = []
        self.code = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("img", "br", "hr", "input"):
            return
        self.open.append(tag)
        if tag == "code":
            self.code += 1
        if tag == "tr":
            self.rows.append(0)
        if tag in ("td", "th"):
            self.rows[-1] += 1

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()
        if tag == "code":
            self.code -= 1

    def handle_data(self, data):
        if not self.code:
            self.text.append(data)


def _hostile_trace(path: Path) -> None:
    """A workflow whose every server value is hostile: event names, user_id, run_id,
    tool names, error messages, the trace's labels and its file name."""
    labels = {"probe": "workflow", "capture": "@someone <b>x</b>", "dialect": None}
    writer = TraceWriter(path, target="ws://127.0.0.1:1/@someone", labels=labels)
    t = 1_000_000_000

    def frame(direction: str, payload: dict) -> None:
        nonlocal t
        t += 3_000_000_000  # 3 s apart: every gap is a stall, flagged in the diagram
        writer.frame(direction, json.dumps(payload), t_wall_ns=t, t_mono_ns=t)

    frame("receive", {"type": "connection_established", "user_id": HOSTILE[-1] + "@someone"})
    frame("send", {"type": "user_message", "payload": {"content": "hi"}})
    run = "<img src=x>@someone"
    frame("receive", {"type": "agent_started", "run_id": run, "user_id": "@someone"})
    for value in HOSTILE:
        frame(
            "receive",
            {"type": value, "run_id": run, "tool_name": value, "error_message": value},
        )
    frame("receive", {"type": "tool_executing", "run_id": run, "tool_name": "@someone|x"})
    frame("receive", {"type": "agent_completed", "run_id": run})
    writer.close()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile") / "probes-@someone <img src=x>"
    folder.mkdir()
    _hostile_trace(folder / "workflow-#12 `x` @someone.jsonl")
    report = build_report(folder)
    path = report.write(folder.parent / "report.md")
    return report, path


def test_nothing_a_server_sent_is_live_in_the_rendered_report(hostile):
    report, path = hostile
    markdown = path.read_text(encoding="utf-8")
    assert len(markdown) < GITHUB_LIMIT
    html = render(markdown)
    parsed = Html()
    parsed.feed(html)
    parsed.close()
    # Only the kit's own tags: no image but the charts, no link, no script or raw HTML.
    images = [attrs.get("src") for tag, attrs in parsed.tags if tag == "img"]
    assert images == [f"report-{chart.name}.png" for chart in report.charts]
    assert not [a for tag, a in parsed.tags if tag == "a"], "a link the kit did not make"
    tags = {tag for tag, _ in parsed.tags}
    assert tags <= {
        "h2", "h3", "p", "strong", "em", "code", "pre", "table", "thead", "tbody", "tr", "th",
        "td", "ol", "ul", "li", "details", "summary", "blockquote", "img",
    }, tags
    assert "<script" not in html and "&lt;script" in html  # shown, inside <code>
    # Paths on shell lines are quoted.
    assert "python -m netra_ws report 'data/probes-@someone <img src=x>'" in markdown
    # Every <details> closed, every tag balanced (Html asserts it), none left open.
    assert parsed.open == [] and html.count("<details>") == html.count("</details>") >= 3
    # No mention, issue reference or URL in the text outside <code>.
    outside = "".join(parsed.text)
    assert not MENTION.search(outside), MENTION.search(outside)
    assert "evil.example" not in outside
    assert "\x1b" not in html and "\x00" not in html and "[31m" not in html
    # Each table row has as many cells as its header.
    cells = _header_cells(html)
    assert parsed.rows and all(n == c for n, c in zip(parsed.rows, cells, strict=True))
    # The 100 k value is cut, saying how long it was.
    assert "x" * 100_001 not in markdown and "(100,008 chars)" in markdown
    # The diagram is there, its labels plain words.
    diagram = markdown.split("```mermaid\n", 1)[1].split("\n```", 1)[0]
    assert "Note over C,S: gap of 3.00 s, above the 2 s stall threshold" in diagram
    assert not re.search(r"[<>#@`|;]", diagram.replace("->>", ""))


def _header_cells(html: str) -> list[int]:
    """For each <tr>, the number of header cells of its table."""
    out = []
    for table in re.findall(r"<table>.*?</table>", html, re.S):
        header = len(re.findall(r"<th[ >]", table))
        out += [header] * len(re.findall(r"<tr>", table))
    return out


def test_the_bundle_holds_everything_the_report_refers_to(hostile, tmp_path):
    report, _ = hostile
    bundle = report.bundle(tmp_path / "findings.zip")
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {"findings.md", *(f"findings-{c.name}.png" for c in report.charts)} <= names
    assert set(report.files) <= names and len(report.files) == 1
    text = zipfile.ZipFile(bundle).read("findings.md").decode()
    assert "`findings-timeline.png`" in text


def test_a_report_longer_than_a_comment_is_cut_with_its_sections_closed():
    body = "<details>\n<summary>s</summary>\n\n```sh\n" + "x\n" * 40_000 + "```\n</details>\n"
    cut_body = fit(body)
    assert len(cut_body) <= GITHUB_LIMIT
    assert cut_body.count("<details>") == cut_body.count("</details>")
    html = render(cut_body)
    assert html.count("<pre>") == 1 and "This report was cut to fit a GitHub comment" in html
    assert fit("short") == "short"


# --- netra_ws.untrusted --------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_for_markdown_is_one_code_span(value):
    shown = for_markdown(value, limit=500)
    html = render(shown)
    assert html.startswith("<p><code>") and html.endswith("</code></p>\n"), html
    assert html.count("<code>") == 1 and "\n" not in shown


def test_for_markdown_cuts_and_escapes_pipes_in_tables():
    assert for_markdown("x" * 20, limit=5) == "`xxxxx… (20 chars)`"
    assert for_markdown(None) == "–" and for_markdown("") == "(empty)"
    backslash_pipe = "c\\|d"
    row = f"| {for_markdown('a|b', table=True)} | {for_markdown(backslash_pipe, table=True)} |"
    html = render("| h | i |\n|---|---|\n" + row)
    assert html.count("<td>") == 2, html


def test_for_prose_keeps_words_and_neutralises_the_rest():
    text = "We read connection_established #1 as '@someone' <b>, see www.x.example."
    shown = for_prose(text)
    assert shown.startswith("We read connection_established `#1` as '`@someone`' `<b>`,")
    outside = re.sub(r"<code>.*?</code>", "", render(shown))
    assert not re.search(r"@someone|#1|<b>|<a ", outside)
    assert for_prose("- not a list").startswith("`-`")


def test_for_terminal_shows_controls_escaped_and_cuts_with_the_length():
    assert for_terminal("a\x1b[31mb\x9bc\nd\x00") == "a\\x1b[31mb\\x9bc\\nd\\x00"
    assert for_terminal("y" * 300, limit=10) == "yyyyyyyyyy… (300 chars)"
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", for_terminal("".join(map(chr, range(160)))))


def test_cut_and_plain_words():
    assert cut("abc", 3) == "abc" and cut("abcd", 3) == "abc… (4 chars)"
    with pytest.raises(ValueError):
        cut("x", 0)
    assert plain_words("<img src=x> @a #1 [b](c) `d`") == "img src x a 1 (b)(c) d"


def _stalled_run(path: Path, labels: dict) -> None:
    writer = TraceWriter(path, target="ws://127.0.0.1:1/ws", labels=labels)
    t = 1_000_000_000
    frames = [
        ("receive", {"type": "connection_established", "user_id": "u"}),
        ("send", {"type": "user_message", "payload": {"content": "hi"}}),
        ("receive", {"type": "agent_started", "run_id": "r1"}),
        ("receive", {"type": "agent_thinking", "run_id": "r1"}),
        ("receive", {"type": "agent_completed", "run_id": "r1"}),
    ]
    for i, (direction, payload) in enumerate(frames):
        t += 3_000_000_000 if i == 3 else 10_000_000  # a 3 s stall before agent_thinking
        writer.frame(direction, json.dumps(payload), t_wall_ns=t, t_mono_ns=t)
    writer.close()


@pytest.mark.parametrize("how", ["label", "fault log"])
def test_an_injected_stall_is_named_as_injected_never_as_the_server(tmp_path, how):
    runs = tmp_path / "runs"
    runs.mkdir()
    faults = {"faults": ["stall agent_thinking#1 3s"]} if how == "label" else {}
    _stalled_run(runs / "run-0001.jsonl", {"capture": "runs", **faults})
    _stalled_run(runs / "run-0002.jsonl", {"capture": "runs"})  # the same stall, not injected
    if how == "fault log":  # as notebook 04 saves Target.faults()
        log = [{"kind": "stall", "fault": "stall agent_thinking#1 3s", "run_id": "r1"}]
        (tmp_path / "faults.json").write_text(json.dumps(log[:0]), encoding="utf-8")
        (runs / "faults.json").write_text(json.dumps(log), encoding="utf-8")
        (runs / "run-0002.jsonl").unlink()
    text = build_report(runs, charts=False).markdown
    assert "**Injected fault.** Stall injected on purpose (stall `agent_thinking#1` 3s)" in text
    assert "Detected from the traces alone: in capture runs, 1 of 1 run(s) stalled" in text
    if how == "label":  # the run without the label is the server's own: its stall is a finding
        assert "**Timing.** Events can arrive late: in capture runs, 1 of 1 run(s)" in text
    else:
        assert "Events can arrive late" not in text
        assert "runs/faults.json" in text
