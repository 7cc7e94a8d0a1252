"""How the terminal shows the whiteboard's changes and a panel's debriefs (live runs and replays)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from interview_sim.record import BoardChange, PanelDebrief


def board_lines(changes: list[BoardChange]) -> list[str]:
    """A turn's whiteboard changes as rich markup: + written, ~ replaced, - erased, then the new text."""
    from rich.markup import escape

    lines = []
    for c in changes:
        mark = "+" if c.before is None else "-" if c.after is None else "~"
        via = " (tool)" if c.via == "tool" else ""
        lines.append(f"[magenta]whiteboard: {mark} {escape(c.section)}[/]{via} [dim]v{c.version} by {escape(c.author)}[/]")
        if c.after:
            lines.extend(f"[dim]  | {escape(line)}[/]" for line in c.after.splitlines())
    return lines


def debrief_lines(debriefs: list[PanelDebrief]) -> list[str]:
    """A panel's verdicts as rich markup, one line per panelist."""
    from rich.markup import escape

    lines = []
    for d in debriefs:
        verdict = d.verdict or f"no verdict ({d.error})"
        reason = f" · {escape(d.reason)}" if d.reason else ""
        lines.append(f"debrief · {escape(d.agent)}: [bold]{escape(verdict)}[/]{reason}")
    return lines
