"""The whiteboard: a small document of titled sections that every seat of a session can change.

A model changes it in one of two ways, and both end as the same text in its turn and the same records:

* a fenced block in its turn, tagged `whiteboard`, holding sections. A line `## Title` starts a section;
  the lines after it, up to the next `## ` line or the end of the block, are its text. A section with the
  title of an existing one replaces it (titles compare case-insensitively); an empty section erases it::

      ```whiteboard
      ## API
      POST /orders -> 201 {id}
      ## Open questions
      ```

* the tools `whiteboard_write(title, text)` and `whiteboard_erase(title)` (models with tool calling, through
  AutoGen's function tools): each returns the equivalent fenced block, which becomes the turn's text.

`Board.apply` turns a turn's blocks into `BoardChange` records (turn, author, section, before/after) and the
board after it; `Board.prompt_view` is the bounded view every later prompt carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from interview_sim.record import BoardChange, BoardSection

FENCE_TAG = "whiteboard"
MAX_SECTIONS = 12
MAX_TITLE_CHARS = 60
MAX_SECTION_CHARS = 1200
"""Caps that keep the board small enough for every prompt: a longer section keeps its first characters."""

_BLOCK = re.compile(r"```[ \t]*" + FENCE_TAG + r"[ \t]*\n(?P<body>.*?)(?:\n[ \t]*```|\Z)", re.S | re.I)
_HEADING = re.compile(r"^[ \t]*##[ \t]+(?P<title>\S.*?)[ \t]*#*[ \t]*$")

BoardOp = tuple[str, str]
"""(title, text): an empty text erases the section."""


def parse_blocks(text: str) -> list[BoardOp]:
    """The section writes in a turn's fenced `whiteboard` blocks, in order (an unterminated last block counts:
    a model cut off at its token limit still wrote what it wrote)."""
    ops: list[BoardOp] = []
    for block in _BLOCK.finditer(text):
        title: str | None = None
        lines: list[str] = []
        for line in block["body"].splitlines():
            heading = _HEADING.match(line)
            if heading:
                if title is not None:
                    ops.append((title, "\n".join(lines).strip("\n")))
                title, lines = _clean_title(heading["title"]), []
            elif title is not None:
                lines.append(line.rstrip())
        if title is not None:
            ops.append((title, "\n".join(lines).strip("\n")))
    return [(t, x) for t, x in ops if t]


def render_block(ops: list[BoardOp]) -> str:
    """The fenced block that makes these changes (what the whiteboard tools put in a turn)."""
    body = "\n".join(f"## {_clean_title(title)}" + (f"\n{text.strip()}" if text.strip() else "") for title, text in ops)
    return f"```{FENCE_TAG}\n{body}\n```"


def _clean_title(title: str) -> str:
    return " ".join(title.split())[:MAX_TITLE_CHARS]


@dataclass
class Board:
    """The board of one session, and every change made to it."""

    sections: dict[str, BoardSection] = field(default_factory=dict)
    """Keyed by the case-folded title, in first-written order."""
    changes: list[BoardChange] = field(default_factory=list)

    def apply(self, ops: list[BoardOp], *, turn: int, author: str, seat: str | None, via: str = "block") -> list[BoardChange]:
        """Apply section writes; returns the changes made (writes that change nothing are not changes)."""
        made: list[BoardChange] = []
        for title, raw in ops:
            key = title.casefold()
            text = raw.strip("\n")[:MAX_SECTION_CHARS] or None
            old = self.sections.get(key)
            before = old.text if old else None
            if before == text or (text is not None and old is None and len(self.sections) >= MAX_SECTIONS):
                continue
            name = old.title if old else title
            if text is None:
                del self.sections[key]
            else:
                self.sections[key] = BoardSection(title=name, text=text, author=author, turn=turn)
            change = BoardChange(
                version=len(self.changes) + 1,
                turn=turn,
                author=author,
                seat=seat,
                section=name,
                before=before,
                after=text,
                via=via,
            )
            self.changes.append(change)
            made.append(change)
        return made

    def snapshot(self) -> list[BoardSection]:
        return list(self.sections.values())

    def prompt_view(self, budget_tokens: int, count: Callable[[str], int]) -> str:
        """The board as a prompt sees it, within `budget_tokens`: when it does not fit, the sections changed
        longest ago are left out first (like the oldest turns of the history), and the view says so."""
        if not self.sections:
            return "The whiteboard is empty."
        ordered = sorted(self.sections.values(), key=lambda s: s.turn, reverse=True)
        kept: list[BoardSection] = []
        for section in ordered:
            trial = [*kept, section]
            if count(_render_sections(trial, len(self.sections) - len(trial))) > budget_tokens and kept:
                break
            kept = trial
        shown = [s for s in self.sections.values() if s in kept]
        return _render_sections(shown, len(self.sections) - len(shown))


def _render_sections(sections: list[BoardSection], left_out: int) -> str:
    lines = ["The whiteboard now:"]
    for s in sections:
        lines += [f"## {s.title}", s.text]
    if left_out:
        lines.append(f"({left_out} older section{'s' if left_out > 1 else ''} not shown: the prompt is short of room)")
    return "\n".join(lines)


BOARD_HOW_TO = (
    "The shared whiteboard: write on it with a fenced block tagged whiteboard in your turn, one '## Title' line per"
    " section followed by its text (a section with an existing title replaces it; an empty one erases it)."
)


def board_note(board: Board, *, budget_tokens: int, count: Callable[[str], int], wanted: list[str]) -> str:
    """The note every seat's prompt ends with in a session that has a board."""
    lines = [BOARD_HOW_TO]
    missing = [w for w in wanted if w.casefold() not in board.sections]
    if missing:
        lines.append("Sections still to fill: " + ", ".join(missing) + ".")
    lines.append(board.prompt_view(budget_tokens, count))
    return "\n".join(lines)
