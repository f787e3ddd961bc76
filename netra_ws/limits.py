"""How much of what a server sends the kit takes and records (Issue #22): one place.

A server the user does not control can send frames of tens of megabytes, compressed a
thousand to one, or never stop. :class:`Limits` holds the three budgets that keep a laptop
alive and the evidence loadable; :func:`netra_ws.connect`, :class:`~netra_ws.trace.TraceWriter`,
:func:`~netra_ws.target.resolve_target` and the command line (``--frame-limit``,
``--record-limit``, ``--trace-budget``) take them. Pure: no network, no pandas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_LIMITS", "Limits", "parse_size", "size_words"]


@dataclass(frozen=True)
class Limits:
    """How much of what a server sends the kit takes and records: what a laptop survives from
    a server the user does not control (a flood, frames of tens of megabytes).

    ``frame_limit``: the largest frame a session accepts (after decompression); a bigger one
    makes the client close the connection with 1009, which the verdicts name. Taking a frame
    costs about seven times its size in memory at the peak (inflating, decoding, hashing),
    so raise it only as far as the frames you expect.
    ``record_limit``: the bytes of one received frame's data that are recorded (a frame the
    client sends is the user's own and is recorded whole). A frame above it is
    recorded with its first ``record_limit`` bytes, its full ``size`` and the SHA-256 of the
    whole (``sha256``), flagged ``truncated`` and not parsed (``parse_error`` says so).
    ``trace_budget``: the bytes one session records (its frames' data plus 300 bytes a
    record; JSON escaping can make the file larger). The frame that reaches it is the last
    one recorded: a mark (:data:`~netra_ws.trace.BUDGET_MARK`) says so, later frames raise
    :class:`~netra_ws.errors.TraceBudgetReached`, and a session closes its connection
    (1001). None turns a limit off. Pass ``Limits(…)`` to :func:`netra_ws.connect` or
    :class:`~netra_ws.trace.TraceWriter` (``--frame-limit``, ``--record-limit`` and
    ``--trace-budget`` on the command line).

    >>> Limits()
    Limits(frame_limit=16777216, record_limit=1048576, trace_budget=268435456)
    >>> Limits(trace_budget=None).describe()
    'frames up to 16 MiB, recorded up to 1 MiB each, no trace budget'
    """

    frame_limit: int | None = 16 << 20
    record_limit: int | None = 1 << 20
    trace_budget: int | None = 256 << 20

    def __post_init__(self) -> None:
        for name in ("frame_limit", "record_limit", "trace_budget"):
            value = getattr(self, name)
            if value is not None and (type(value) is not int or value < 1):
                raise ValueError(
                    f"{name} must be a positive number of bytes or None, not {value!r}"
                )

    def describe(self) -> str:
        """The limits in words, for a mark or a message."""
        size = f"frames up to {size_words(self.frame_limit)}" if self.frame_limit else "any frame"
        frame = (
            f"{size}, recorded up to {size_words(self.record_limit)} each"
            if self.record_limit is not None
            else f"{size}, recorded whole"
        )
        budget = (
            f"a trace budget of {size_words(self.trace_budget)}"
            if self.trace_budget is not None
            else "no trace budget"
        )
        return f"{frame}, {budget}"


DEFAULT_LIMITS = Limits()


def size_words(n: int | None) -> str:
    """A byte count for people.

    >>> size_words(1 << 20), size_words(256 << 20), size_words(3 << 29), size_words(900)
    ('1 MiB', '256 MiB', '1.5 GiB', '900 bytes')
    """
    if n is None:
        return "unlimited"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


def parse_size(text: str) -> int | None:
    """A size as the command line takes it: bytes, ``KiB``/``MiB``/``GiB``, or ``none``.

    >>> parse_size("1048576"), parse_size("64KiB"), parse_size("16 MiB"), parse_size("none")
    (1048576, 65536, 16777216, None)
    >>> parse_size("1.5GB")
    Traceback (most recent call last):
    ValueError: give a size in bytes (1048576, 64KiB, 16MiB, 1GiB) or none, not '1.5GB'
    """
    if text.strip().lower() == "none":
        return None
    found = re.fullmatch(r"\s*(\d+)\s*(B|KiB|MiB|GiB)?\s*", text, flags=re.IGNORECASE)
    if found is None or int(found.group(1)) < 1:
        raise ValueError(
            f"give a size in bytes (1048576, 64KiB, 16MiB, 1GiB) or none, not {text!r}"
        )
    return int(found.group(1)) * _UNITS[(found.group(2) or "b").lower()]
