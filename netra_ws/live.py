"""The live view: a session's frames as they arrive, in a notebook output cell.

One IPython display handle is shown when the view starts and updated in place (at most every
``every`` seconds, and once more at the end), so it works wherever display handles do:
JupyterLab, VS Code, and headless nbclient/papermill, whose saved notebook keeps the last
state. It shows a small timeline (one dot per frame, sent above, received below) and the
table of the last ``limit`` records, each payload opening onto its full JSON::

    async with target.connect(trace=OUT / "live.jsonl") as session:
        view = session.live()                   # shows up under the cell, then follows
        await session.send_user_message("What did we spend?")
        await session.collect(until="agent_completed", timeout=30)
    # closing the session drew the final state; view.stop() ends a view early

Nothing here parses or decides: the table is :func:`netra_ws.browse.html_listing`.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from typing import TYPE_CHECKING, Any

from .browse import html_listing

if TYPE_CHECKING:
    from .client import Session

__all__ = ["LiveView", "timeline_svg"]

_WIDTH, _HEIGHT = 640, 56
_COLORS = {"send": "#0a7f8f", "receive": "#1b7d2b"}


def timeline_svg(records: list[dict[str, Any]], t0_ns: int | None) -> str:
    """A small SVG timeline of frames: sent on the upper line, received on the lower one;
    hover a dot for its ``#seq`` and event."""
    frames = [r for r in records if r.get("kind") == "frame" and type(r.get("t_mono_ns")) is int]
    if not frames or t0_ns is None:
        return ""
    span = max(max(f["t_mono_ns"] for f in frames) - t0_ns, 1)
    dots = []
    for f in frames:
        x = 10 + (f["t_mono_ns"] - t0_ns) / span * (_WIDTH - 20)
        y = 18 if f.get("dir") == "send" else 40
        title = html.escape(f"#{f.get('seq')} {f.get('event') or f.get('parse_error') or '?'}")
        color = _COLORS.get(str(f.get("dir")), "#888")
        dots.append(
            f'<circle cx="{x:.1f}" cy="{y}" r="4" fill="{color}"><title>{title}</title></circle>'
        )
    return (
        f'<svg width="{_WIDTH}" height="{_HEIGHT}" role="img" aria-label="frame timeline">'
        f'<text x="0" y="10" font-size="9">sent ↑ received ↓ · {span / 1e9:.3f} s</text>'
        f"{''.join(dots)}</svg>"
    )


class LiveView:
    """A display handle that follows a session: start it with :meth:`Session.live`.

    It refreshes every ``every`` seconds while frames arrive and once more when the
    connection closes (the state a saved notebook keeps). :meth:`stop` ends it early;
    :meth:`refresh` redraws now.
    """

    def __init__(self, session: Session, *, every: float = 0.25, limit: int = 50) -> None:
        from IPython.display import HTML, display

        self._html_type = HTML
        self.session = session
        self.every = every
        self.limit = limit
        self._shown = -1
        self.handle = display(HTML(self.html()), display_id=True)
        self._task = asyncio.get_running_loop().create_task(self._follow())
        session._on_close.append(self.stop)  # the final state, before the cell ends

    def html(self) -> str:
        """The view as it is now: state line, timeline, and the last ``limit`` records."""
        records = self.session.records()
        t0 = next((r["t_mono_ns"] for r in records if "t_mono_ns" in r), None)
        frames = sum(1 for r in records if r.get("kind") == "frame")
        state = f"closed ({self.session.close_code})" if self.session.closed else "live"
        head = (
            f"<p><b>{html.escape(self.session.url)}</b> · {frames} frames · {state} · "
            f"trace {html.escape(str(self.session.trace_path or 'in memory'))}</p>"
        )
        shown = records[-self.limit :]
        return (
            head
            + timeline_svg(records, t0)
            + html_listing(shown, t0_ns=t0, title=f"last {len(shown)} of {len(records)} records")
        )

    def refresh(self) -> None:
        """Redraw the view now."""
        self.handle.update(self._html_type(self.html()))
        self._shown = len(self.session.records())

    async def _follow(self) -> None:
        try:
            while not self.session.closed:
                await asyncio.sleep(self.every)
                if len(self.session.records()) != self._shown:
                    self.refresh()
        finally:
            self.refresh()

    def stop(self) -> None:
        """Stop following (the last state stays shown)."""
        self._task.cancel()
        with contextlib.suppress(Exception):
            self.refresh()

    @property
    def done(self) -> bool:
        return self._task.done()

    def __repr__(self) -> str:
        return f"<LiveView of {self.session!r}{' (stopped)' if self.done else ''}>"
