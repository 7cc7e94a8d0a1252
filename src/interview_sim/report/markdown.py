"""A turn's text as the page shows it: Markdown rendered safely, evidence quotes marked.

Models (Llama 3, Gemma, Qwen) write Markdown; shown raw, `**Strengths:**` and `* **…` clutter every imported turn.
The text is rendered by markdown-it-py (CommonMark) with raw HTML off, so any tag a model or a file wrote stays
text, and with images and links off, so a page never fetches or points anywhere the text chose. A `whiteboard`
fenced block, which the board column shows, becomes one line naming its sections (and stays below it when an
evidence quote points into it).

Evidence quotes are marked by character offsets in the raw text. They travel through the renderer as private-use
characters and become `<mark>` elements afterwards; when a quote would straddle Markdown structure (its mark
would not be well nested), the turn is shown as plain text instead, marks and all, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from markupsafe import Markup, escape

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["render_turn"]

_OPEN, _CLOSE, _FIRST_ID = "\ue000", "\ue001", 0xE100
_PRIVATE = re.compile("[\ue000-\uf8ff]")
_BLOCK_MARKER = re.compile(r"[ \t]*(?:[-*+>]|\d{1,9}[.)]|#{1,6})[ \t]+")
_BOARD_TITLE = re.compile(r"^\s*##\s*(.+?)\s*$", re.M)


class SpanLike(Protocol):
    start: int
    end: int
    anchor: str


@cache
def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "breaks": True}).disable(["image", "link", "autolink"])
    default_fence = getattr(md.renderer, "rules", {}).get("fence")

    def fence(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        if token.info.strip().lower() == "whiteboard":
            titles = _BOARD_TITLE.findall(token.content)
            named = ", ".join(str(escape(t)) for t in titles) or "a block"
            note = f'<p class="board-note">wrote on the whiteboard: {named}</p>\n'
            if _OPEN in token.content:  # a judge quoted the block: show it, so that the quote is marked where it is
                return f'{note}<pre class="board-block">{escape(token.content)}</pre>\n'
            return note
        assert default_fence is not None
        return str(default_fence(tokens, idx, options, env))

    md.add_render_rule("fence", fence)
    return md


def render_turn(text: str, spans: Sequence[SpanLike]) -> tuple[Markup, bool]:
    """The turn as HTML, and whether it is rendered Markdown (False: plain text, shown with its line breaks)."""
    ordered = sorted(spans, key=lambda s: s.start)
    if _PRIVATE.search(text) is None and len(ordered) < 0x1000:
        marked, at = [], 0
        for k, span in enumerate(ordered):
            start = _after_block_marker(text, span.start, span.end)
            marked += [text[at:start], _OPEN, chr(_FIRST_ID + k), text[start : span.end], _CLOSE]
            at = span.end
        html = _parser().render("".join([*marked, text[at:]]))
        if _well_nested(html, len(ordered)):
            for k, span in enumerate(ordered):
                html = html.replace(_OPEN + chr(_FIRST_ID + k), f'<mark class="evidence" id="{escape(span.anchor)}">', 1)
            return Markup(html.replace(_CLOSE, "</mark>")), True
    return _plain(text, ordered), False


def _after_block_marker(text: str, start: int, end: int) -> int:
    """A quote that starts a line starts after the line's list bullet, number, heading or quote marker: a mark
    before it would hide the marker from Markdown."""
    if start == 0 or text[start - 1] == "\n":
        marker = _BLOCK_MARKER.match(text, start)
        if marker is not None and marker.end() < end:
            return marker.end()
    return start


def _well_nested(html: str, count: int) -> bool:
    """Every mark survived once, in order, with no tag between its ends (so it opens and closes in one element)."""
    found = re.findall(f"{_OPEN}(.)([^{_OPEN}{_CLOSE}]*){_CLOSE}", html, re.S)
    return [ord(c) - _FIRST_ID for c, _ in found] == list(range(count)) and all("<" not in inner for _, inner in found)


def _plain(text: str, spans: Sequence[SpanLike]) -> Markup:
    out = Markup("")
    at = 0
    for span in spans:
        out += escape(text[at : span.start])
        out += Markup('<mark class="evidence" id="{}">{}</mark>').format(span.anchor, text[span.start : span.end])
        at = span.end
    return out + escape(text[at:])
