"""The `interview-sim` command: a thin typer skin over the public Python API.

Each command parses its arguments, calls one public function and renders the result. Commands live in
one module per feature; this module owns the app and the rule that a user-caused failure is one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from interview_sim.errors import InterviewSimError

app = typer.Typer(
    name="interview-sim",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Simulated whiteboard interviews between local language models: run, grade, replay, compare.",
)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn InterviewSimError into one line and its exit code; Ctrl-C into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InterviewSimError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted (what was recorded so far is kept)", 130) from None

    return wrapper  # type: ignore[return-value]


COMMAND_MODULES = {
    "run": "run", "models": "run", "validate": "run",
    "compare": "compare", "sweep": "compare",
    "evaluate": "evaluate", "calibrate": "evaluate",
    "replay": "replay", "import": "replay", "export": "replay",
    "report": "report",
    "runs": "runs",
}  # fmt: skip
"""Which module of this package defines each command; importing a module registers its commands."""


def _register(argv: list[str]) -> None:
    """Import the command modules: only the one holding the command when the CLI runs one, else all of them.

    Each command module pulls in its feature (AutoGen, the grading stack, the report templates); a command
    should pay only for its own. Help, no command, an unknown one, and `app` used from Python see them all,
    registered in the same order.
    """
    import importlib

    program = Path(argv[0]).name if argv else ""
    running_cli = program == "interview-sim" or argv[0:1] == [str(Path(__file__).parents[1] / "__main__.py")]
    command = next((a for a in argv[1:] if not a.startswith("-")), None) if running_cli else None
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else dict.fromkeys(COMMAND_MODULES.values())
    for module in modules:
        importlib.import_module(f"interview_sim.cli.{module}")


_register(sys.argv)


def main() -> None:
    app()
