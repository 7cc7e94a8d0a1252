"""The drawing side of the reports: where evidence quotes are in the conversation, and chart geometry.

Pure functions of the records; `report.pages` gathers the records and renders the templates that draw these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from markupsafe import Markup

HBAR_WIDTH = 520.0
"""Width of a horizontal bar chart in SVG units: names, the axis, then room for the value."""
PALETTE = ("#3b6fd8", "#1f9d74", "#d9822b", "#9b59b6", "#d64550", "#2aa1b3", "#8a6d3b", "#5c6b7a")
"""Series colours, in order; chosen to stay distinct for the colour-blind in pairs (blue/orange first)."""


# ---------------------------------------------------------------------------------------------- evidence quotes


@dataclass
class Quote:
    """An evidence quote and where it was found in the conversation."""

    text: str
    anchor: str | None = None
    message_index: int | None = None


@dataclass
class Span:
    start: int
    end: int
    anchor: str


def normalise(text: str) -> tuple[str, list[int]]:
    """Lower-case, whitespace runs collapsed; with the original index of every normalised character."""
    chars: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace():
            if chars and chars[-1] != " ":
                chars.append(" ")
                where.append(i)
            continue
        for low in ch.lower():
            chars.append(low)
            where.append(i)
    return "".join(chars), where


_QUOTE_TRIM = " \t\n\"'“”‘’«».…"


def fragments(quote: str) -> list[str]:
    """What to look for: the quote itself, then (judges elide) its longest pieces around '...'."""
    whole = quote.strip(_QUOTE_TRIM)
    pieces = sorted((p.strip(_QUOTE_TRIM) for p in re.split(r"\.\.\.|…|\[\.\.\.\]", quote)), key=len, reverse=True)
    return [whole] + [p for p in pieces if len(p) >= 12 and p != whole]


class QuoteIndex:
    """Finds evidence quotes in the messages and remembers where, so the bubbles can mark them."""

    def __init__(self, messages: Sequence[Any], prefix: str) -> None:
        self.prefix = prefix
        self._texts = {m.index: m.content for m in messages}
        self._norm = {i: normalise(t) for i, t in self._texts.items()}
        self.spans: dict[int, list[Span]] = {}
        self._count = 0

    def locate(self, quote: str) -> Quote:
        for fragment in fragments(quote):
            needle = normalise(fragment)[0]
            if not needle:
                continue
            for index, (norm, where) in self._norm.items():
                pos = norm.find(needle)
                if pos < 0:
                    continue
                start, end = where[pos], where[pos + len(needle) - 1] + 1
                return Quote(quote, self._mark(index, start, end), index)
        return Quote(quote)

    def _mark(self, index: int, start: int, end: int) -> str:
        spans = self.spans.setdefault(index, [])
        for span in spans:
            if start < span.end and span.start < end:
                return span.anchor  # overlapping quotes share the first one's mark
        self._count += 1
        anchor = f"{self.prefix}q-{self._count}"
        spans.append(Span(start, end, anchor))
        return anchor

    def content(self, index: int) -> Markup:
        """A message's text as HTML: Markdown rendered safely, the quoted passages wrapped in <mark>."""
        return self.rendered(index)[0]

    def rendered(self, index: int) -> tuple[Markup, bool]:
        """`content`, and whether it is rendered Markdown (else plain text whose line breaks are kept)."""
        from interview_sim.report.markdown import render_turn

        return render_turn(self._texts[index], self.spans.get(index, []))


# ---------------------------------------------------------------------------------------------- charts


def nice_ticks(high: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `high` (1, 2 or 5 times a power of ten apart)."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    n = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


CHART_INSET = 12.0
"""Where a bar chart's axis starts: names are written above the bars, not beside them."""
ROW_WITH_LABEL = 42
"""A bar and the line of its name above it (SVG user units)."""


@dataclass
class Axis:
    """Maps values in [lo, hi] onto [x0, x0 + width] (SVG user units)."""

    lo: float
    hi: float
    x0: float = 200.0
    width: float = 360.0

    def x(self, value: float) -> float:
        span = self.hi - self.lo or 1.0
        clamped = min(max(value, self.lo), self.hi)
        return round(self.x0 + (clamped - self.lo) / span * self.width, 2)


def series_colours(names: Iterable[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(dict.fromkeys(names))}


def criterion_chart(evaluation: dict[str, Any], rubric_names: dict[str, str]) -> dict[str, Any]:
    """Horizontal bars: each criterion's mean over the judges, its min-max range and every judge's score."""
    lo, hi = evaluation.get("scale_min", 1), evaluation.get("scale_max", 5)
    # Each criterion's name on its own line above its bar: a name is never clipped, however long or narrow the page.
    axis = Axis(lo, hi, x0=CHART_INSET)
    rows = []
    for i, (cid, c) in enumerate(evaluation.get("criteria", {}).items()):
        y = 22 + i * ROW_WITH_LABEL
        rows.append(
            {
                "id": cid,
                "name": c.get("name") or rubric_names.get(cid, cid),
                "mean": c["mean"],
                "y": y,
                "x0": axis.x(lo),
                "x_mean": axis.x(c["mean"]),
                "x_min": axis.x(c["min"]),
                "x_max": axis.x(c["max"]),
                "dots": [axis.x(s) for s in (c.get("values") or c.get("scores", []))],
                "fraction": (c["mean"] - lo) / ((hi - lo) or 1),
            }
        )
    ticks = [{"value": v, "x": axis.x(v)} for v in range(int(lo), int(hi) + 1)]
    return {"rows": rows, "ticks": ticks, "height": 22 + len(rows) * ROW_WITH_LABEL + 12, "axis": axis}


def turn_chart(messages: Sequence[Any], colours: dict[str, str], anchor_prefix: str) -> dict[str, Any] | None:
    """Vertical bars: tokens each turn generated, coloured by role, each a link to its turn."""
    turns = [m for m in messages if m.usage is not None]
    if not turns:
        return None
    width, height, left, bottom = 720.0, 130.0, 44.0, 20.0
    ticks = nice_ticks(max(m.usage.completion_tokens for m in turns) or 1, 4)
    top = ticks[-1] or 1.0
    slot = (width - left - 8) / len(messages)
    bar = max(2.0, min(26.0, slot - 3))
    plot = height - bottom - 8
    bars = []
    for i, m in enumerate(messages):
        tokens = m.usage.completion_tokens if m.usage is not None else 0
        h = round(tokens / top * plot, 2)
        bars.append(
            {
                "x": round(left + i * slot + (slot - bar) / 2, 2),
                "y": round(height - bottom - h, 2),
                "w": round(bar, 2),
                "h": h,
                "colour": colours.get(m.role, "#888"),
                "href": f"#{anchor_prefix}m-{m.index}",
                "label": f"#{m.index} {m.agent} ({m.role}): {tokens} tokens" + (" (cached)" if m.cached else ""),
                "index": m.index,
            }
        )
    grid = [{"value": t, "y": round(height - bottom - t / top * plot, 2)} for t in ticks]
    return {"bars": bars, "grid": grid, "width": width, "height": height, "left": left, "bottom": height - bottom}


def hbar_chart(
    rows: list[dict[str, Any]],
    *,
    unit: str = "",
    digits: int = 2,
    scale: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Horizontal bars (rows: name, value, colour, optional low/high whisker; value None = no data), each row's
    name on its own line above its bar, so that no name is clipped.

    The axis runs over `scale` (a score scale, one tick per point) or from 0 to a round number above the data.
    """
    if scale is not None:
        ticks: list[float] = [float(v) for v in range(scale[0], scale[1] + 1)]
    else:
        values = [v for r in rows for v in (r.get("value"), r.get("high")) if v is not None]
        ticks = nice_ticks(max(values) if values else 1.0, 4)
    axis = Axis(ticks[0], ticks[-1] or 1.0, x0=CHART_INSET, width=HBAR_WIDTH - CHART_INSET - 80)
    out = []
    for i, r in enumerate(rows):
        value = r.get("value")
        out.append(
            {
                "low": None,
                "high": None,
                **r,
                "y": 22 + i * ROW_WITH_LABEL,
                "x0": axis.x(ticks[0]),
                "x_value": axis.x(value) if value is not None else None,
                "x_low": axis.x(r["low"]) if r.get("low") is not None else None,
                "x_high": axis.x(r["high"]) if r.get("high") is not None else None,
            }
        )
    return {
        "rows": out,
        "ticks": [{"value": t, "x": axis.x(t)} for t in ticks],
        "height": 22 + len(rows) * ROW_WITH_LABEL + 14,
        "unit": unit,
        "width": HBAR_WIDTH,
        "digits": digits,
    }
