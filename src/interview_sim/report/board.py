"""The whiteboard on a run page: the board after each turn that changed it, with the changes marked, and the
panel's debriefs."""

from __future__ import annotations

from typing import Any

from interview_sim.record import BoardChange, Transcript, board_after


def board_view(transcript: Transcript, prefix: str) -> dict[str, Any] | None:
    """Every version of the board (the start, then after each turn that changed it), or None without a board.

    A version lists the sections as they stood after that turn; each section says whether that turn wrote it
    (`new`), replaced it (`changed`, with the text before) or left it alone, and `erased` names the sections
    the turn removed.
    """
    changes = transcript.board_changes
    if not changes:
        return None
    turns = sorted({c.turn for c in changes})
    versions: list[dict[str, Any]] = []
    for turn in turns:
        made = [c for c in changes if c.turn == turn]
        by_section: dict[str, BoardChange] = {c.section: c for c in made}
        upto = max(c.version for c in made)
        sections = []
        for s in board_after(changes, upto):
            change = by_section.get(s.title)
            state = "same" if change is None else "new" if change.before is None else "changed"
            sections.append(
                {
                    "title": s.title,
                    "text": s.text,
                    "author": s.author,
                    "turn": s.turn,
                    "state": state,
                    "before": change.before if change is not None else None,
                }
            )
        erased = [c.section for c in made if c.after is None]
        authors = list(dict.fromkeys(c.author for c in made))
        versions.append(
            {
                "turn": turn,
                "anchor": f"{prefix}board-{turn}",
                "message_anchor": f"{prefix}m-{turn - 1}" if turn > 0 else None,
                "label": "before the first turn" if turn == 0 else f"after turn #{turn - 1}",
                "authors": authors,
                "sections": sections,
                "erased": erased,
                "changes": [_mark(c) for c in made],
                "via_tool": any(c.via == "tool" for c in made),
            }
        )
    by_message = {turn - 1: v for turn, v in zip(turns, versions, strict=True) if turn > 0}
    return {"versions": versions, "by_message": by_message, "changes": len(changes)}


def _mark(change: BoardChange) -> str:
    sign = "+" if change.before is None else "−" if change.after is None else "~"
    return f"{sign} {change.section}"


def debrief_view(transcript: Transcript) -> list[dict[str, Any]]:
    verdict_class = {"hire": "ok", "lean hire": "ok", "lean no": "warn", "no": "bad"}
    return [
        {
            "seat": d.seat,
            "agent": d.agent,
            "verdict": d.verdict,
            "reason": d.reason,
            "error": d.error,
            "class": verdict_class.get(d.verdict or "", "bad"),
        }
        for d in transcript.debriefs
    ]
