"""What more than one command module uses: the shared options, the console, the live message printer.

Keeping them here keeps the imports of the command modules one way: `run` uses `live` and `evaluate`'s
renderers, and neither of those (nor `compare`, `replay`) needs anything from `run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interview_sim.cli import fail

if TYPE_CHECKING:
    from rich.console import Console

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Where run folders are written.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of the live view.")]
Timeout = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help="Deadline in seconds of each call to a model server (Ollama), retries included;"
        " overrides the agents' timeout_s (default 120).",
    ),
]


def check_runs_dir(runs_dir: Path) -> None:
    """`--runs-dir` must be a folder, or a path where one can be made (not a file, nor under a file)."""
    for path in (runs_dir, *runs_dir.parents):
        if path.exists():
            if not path.is_dir():
                what = "is a file" if path == runs_dir else f"is under {path}, which is a file"
                raise fail(f"--runs-dir {runs_dir} {what}, not a folder", 2)
            return


def apply_timeout(seconds: float | None) -> None:
    """`--timeout`: set INTERVIEW_SIM_TIMEOUT for this process and the worker processes it starts."""
    if seconds is None:
        return
    import math
    import os

    from interview_sim.models.ollama import TIMEOUT_ENV

    if not (0 < seconds < math.inf):
        raise fail(f"--timeout must be a number of seconds above 0, got {seconds:g}", 2)
    os.environ[TIMEOUT_ENV] = repr(seconds)


def console() -> Console:
    """The console commands print through: text from outside is cleaned of control characters (cli/terminal.py)."""
    from interview_sim.cli.terminal import console

    return console()


def message_printer(out: Console) -> Any:
    from rich.markup import escape

    from interview_sim.cli.panel import board_lines, debrief_lines
    from interview_sim.record import MessageAdded, ModelFailed, RunFinished, RunStarted

    colours = {"interviewer": "cyan", "candidate": "green"}

    def on_event(event: Any) -> None:
        if isinstance(event, RunStarted):
            models = ", ".join(f"{role}: {ref}" for role, ref in event.models.items())
            out.print(f"[bold]{event.scenario_id}[/] · run {event.run_id} · {models}")
        elif isinstance(event, MessageAdded):
            m = event.message
            tokens = f"{m.usage.completion_tokens} tok" if m.usage else "template"
            clock = f"{m.clock.elapsed_minutes:g}/{m.clock.elapsed_minutes + m.clock.remaining_minutes:g} min" if m.clock else ""
            stage = f" · {m.stage}" if m.stage else ""
            colour = colours.get(m.role, "white")
            out.print(
                f"\n[bold {colour}]{escape(m.agent)}[/] ({m.role}, {escape(m.model or 'opening line')})"
                f" · {tokens} · {clock}{stage}"
            )
            if m.cut_off:
                out.print(f"[dim]✂ cut back to the last complete sentence at the token cap ({len(m.cut_off.split())} words)[/]")
            if m.thinking:
                out.print(f"[dim]▸ reasoning: {len(m.thinking.split())} words (replay --thinking shows it)[/]")
            out.print(escape(m.content))
            for line in board_lines(event.board_changes):
                out.print(line)
        elif isinstance(event, RunFinished):
            for line in debrief_lines(event.debriefs):
                out.print(line)
        elif isinstance(event, ModelFailed):
            out.print(f"[red]model call failed[/] ({event.role}, {event.ref}): {escape(event.error)}")

    return on_event
