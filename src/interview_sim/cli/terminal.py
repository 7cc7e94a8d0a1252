"""The terminal: every console the commands print through, and every plain line they write, shows text from
outside through `interview_sim.text.clean`, so no escape sequence in a transcript, a model's answer, a typed
answer or a file name ever reaches the terminal raw. Our own colours are added by rich after the text is cleaned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interview_sim.text import clean

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["clean", "console"]


def console(*, stderr: bool = False, highlight: bool = False, **options: Any) -> Console:
    """A rich Console that cleans every string it renders (`print`, table cells, titles) before rich parses its
    markup and adds its own styles."""
    from rich.console import Console

    class _CleanConsole(Console):
        def render_str(self, text: str, **kwargs: Any) -> Any:
            return super().render_str(clean(text), **kwargs)

    out = _CleanConsole(stderr=stderr, highlight=highlight, **options)
    if not out.is_terminal and "soft_wrap" not in options:
        out.soft_wrap = True  # piped or written to a file: a line is never broken, a path or a name stays whole
    return out
