"""Text from outside (a transcript, a model's answer, a person's typed line, a file name): made safe to show, and
numbers in it read strictly.

Such text may hold control characters: an ANSI/OSC escape sequence would clear the user's screen, set the window
title or plant a hyperlink when printed, and a stray ESC is noise in a page. `clean` is the one sanitiser: the
CLI's console and error lines (`interview_sim.cli.terminal`) and the HTML pages (`report/pages.py`) use it.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 control characters except tab and newline (ESC, BEL, CR, backspace...), DEL, and the C1 block (CSI is \\x9b)."""


def clean(text: str) -> str:
    """`text` without control characters other than tab and newline (a carriage return is dropped too)."""
    return _CONTROL.sub("", text) if not text.isprintable() else text


_ASCII_INT = re.compile(r"-?[0-9]+")


def ascii_int(text: str) -> int | None:
    """The integer `text` writes in ASCII digits (an optional leading minus), else None.

    `str.isdigit()` is also true for "³" and "١", which `int()` then rejects or reads as a number no one wrote:
    a score, a port or a count is only ever ASCII digits.
    """
    return int(text) if len(text) <= 100 and _ASCII_INT.fullmatch(text) else None


def like_literal(text: str) -> str:
    """`text` for an SQL LIKE pattern that matches it literally (with `ESCAPE '\\'`): `%` and `_` are no wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def qwk_line(value: float | None, low: float | None, high: float | None, n: int) -> str:
    """A judge's agreement with a labelled set, as every grade shows it:
    "judge QWK 0.64 [0.55, 0.72] on 60 labelled transcripts"."""
    if value is None:
        return f"judge QWK n/a on {n} labelled transcripts"
    interval = f" [{low:.2f}, {high:.2f}]" if low is not None and high is not None else ""
    return f"judge QWK {value:.2f}{interval} on {n} labelled transcripts"


def qwk_entry_line(entry: object) -> str:
    """`qwk_line` of a stored {"value", "low", "high", "n"} entry; "" when it is missing or malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("n"), int):
        return ""
    figures = [entry.get(k) for k in ("value", "low", "high")]
    if not all(f is None or isinstance(f, (int, float)) for f in figures):
        return ""
    value, low, high = (None if f is None else float(f) for f in figures)
    return qwk_line(value, low, high, entry["n"])
