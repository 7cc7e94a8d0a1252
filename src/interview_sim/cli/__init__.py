"""The `interview-sim` command: a thin typer skin over the public Python API.

Each command parses its arguments, calls one public function and renders the result. Commands live in
one module per feature; this module owns the app and the rule that a user-caused failure is one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import errno
import functools
import itertools
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from interview_sim.cli.signals import Interrupted, finished, leave, own_process, print_interrupted, received
from interview_sim.cli.terminal import clean
from interview_sim.errors import InterviewSimError


def _as_the_command(argv: list[str]) -> bool:
    """Whether this process is the `interview-sim` command (its script, or `python -m interview_sim`)."""
    return bool(argv) and (Path(argv[0]).name == "interview-sim" or argv[0] == str(Path(__file__).parents[1] / "__main__.py"))


app = typer.Typer(
    name="interview-sim",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help (click's formatter): rich's help panels squeeze option names to `--interviewer-mod…` at 80 columns.
    rich_markup_mode=None,
    help="Simulated whiteboard interviews between local language models: run, grade, replay, compare.",
)


def _print_version(value: bool) -> None:
    if value:
        from interview_sim.version import version

        print(f"interview-sim {version()}")
        raise typer.Exit()


@app.callback()
def _group(
    version: Annotated[
        bool, typer.Option("--version", is_eager=True, callback=_print_version, help="Show the version and exit.")
    ] = False,
) -> None:
    # A group callback keeps `interview-sim COMMAND` a group even when only one command module is imported
    # (see _register): a Typer app with a single command and no callback runs that command without its name.
    return None


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line on stderr and return the Exit to raise."""
    print(f"error: {clean(message)}", file=sys.stderr)
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Turn InterviewSimError into one line and its exit code; Ctrl-C into exit 130 (SIGTERM: 143)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InterviewSimError as exc:
            error = fail(str(exc), exc.exit_code)
            if getattr(exc, "leave_at_once", False):  # what finished is written; finalization could hang
                leave(exc.exit_code)
            raise error from None
        except OSError as exc:  # a full disk, a file where a folder should be, no permission: not a crash
            message, code = describe_os_error(exc)
            raise fail(message, code) from None
        except sqlite3.OperationalError as exc:  # the runs catalog on a full or failing disk
            if not any(s in str(exc) for s in ("disk is full", "disk I/O error", "readonly database")):
                raise
            raise fail(f"the runs catalog: {exc}: free some space and run again", 4) from None
        except Interrupted as exc:
            print_interrupted(exc)
            leave(exc.exit_code)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            print_interrupted(Interrupted(2))
            leave(130)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


IO_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG})
"""Failures of the machine rather than of what the user typed: exit 4 (the others are exit 2)."""


def describe_os_error(exc: OSError) -> tuple[str, int]:
    """One line for an OSError that reached the CLI, and its exit code: 4 for I/O failures, 2 for bad paths."""
    where = f"{exc.filename}: " if exc.filename else ""
    text = f"{where}{exc.strerror or exc}"
    if exc.errno == errno.ENOSPC:
        return f"{text}: the disk is full; what was written before is kept (free some space and run again)", 4
    if exc.errno in IO_ERRNOS or isinstance(exc, ConnectionError | TimeoutError):
        return text, 4
    return text, 2


COMMAND_MODULES = {
    "run": "run", "models": "run", "validate": "run", "init": "init",
    "compare": "compare", "sweep": "compare",
    "evaluate": "evaluate", "calibrate": "evaluate",
    "replay": "replay", "import": "replay", "export": "export",
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

    running_cli = _as_the_command(argv)
    command = next((a for a in argv[1:] if not a.startswith("-")), None) if running_cli else None
    modules = [COMMAND_MODULES[command]] if command in COMMAND_MODULES else dict.fromkeys(COMMAND_MODULES.values())
    for module in modules:
        importlib.import_module(f"interview_sim.cli.{module}")


_register(sys.argv)


def main() -> None:
    own_process()  # SIGTERM ends the command like Ctrl-C; an interrupted command leaves at once
    try:
        code = run_app(sys.argv[1:])
        signum = received()  # typer made a signal during its parsing, or after the work, a silent 130
        finished()  # inside the try: a signal before it is raised here and caught below; after it, noted
    except KeyboardInterrupt as exc:  # a signal outside a command's own handling: while parsing, after its work
        code, signum = 0, exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
    except RuntimeError as exc:  # Python 3.11 wraps a signal raised in a class body's __set_name__ (a lazy import)
        cause = _signal_cause(exc)
        if cause is None:
            raise
        code, signum = 0, cause.signum if isinstance(cause, Interrupted) else signal.SIGINT
    if signum is not None:
        print_interrupted(Interrupted(signum))  # once per process: nothing if the command already said it
        code = 128 + signum
        leave(code)
    sys.exit(code)


def _signal_cause(exc: BaseException) -> KeyboardInterrupt | None:
    """The signal's exception an error was raised from, if any (`__cause__` or `__context__`, a few levels)."""
    seen: BaseException | None = exc
    for _ in range(8):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if isinstance(seen, KeyboardInterrupt):
            return seen
    return None


def seats_or_models(ctx: Any) -> list[str]:
    return [opt for param in ctx.command.params for opt in getattr(param, "opts", [])]


def _guess_option(exc: Exception) -> str | None:
    """A better suggestion than click's for a likely guess: `--model` on a command whose options name the seat
    (`--candidate-model`, `--interviewer-model`, `--evaluator-model`)."""
    name = getattr(exc, "option_name", None)
    ctx = getattr(exc, "ctx", None)
    if name not in ("--model", "-m") or ctx is None:
        return None
    seats = [opt for opt in seats_or_models(ctx) if opt.endswith("-model")]
    if not seats or "--models" in seats_or_models(ctx):
        return None
    return f"No such option: {name} (a model is given per seat: {', '.join(seats)})"


PATH_OPTIONS = frozenset({"--runs-dir", "--output", "-o"})
"""Options that name a path, which an empty value must not silently turn into the working folder."""


def run_app(args: list[str]) -> int:
    """Run the app on `args` and return the exit code; a usage error is one line (click draws a box of five)."""
    try:
        from typer._click import exceptions as click  # typer >= 0.25 carries its own copy of click
    except ImportError:  # pragma: no cover - older typer runs on click itself
        from click import exceptions as click  # type: ignore[no-redef]

    pairs = [*itertools.pairwise(args), *(a.partition("=")[::2] for a in args if a.startswith("--") and "=" in a)]
    empty = next((name for name, value in pairs if name in PATH_OPTIONS and not value.strip()), None)
    if empty is not None:  # Path("") is the working folder: an empty --runs-dir would write runs into it
        print(f"error: {empty} names no path (it is empty; use . for the working folder)", file=sys.stderr)
        return 2
    try:
        result = app(args=args, prog_name="interview-sim", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:  # a group run bare: its help (typer prints it itself), exit 2
        text = exc.ctx.get_help() if exc.ctx is not None else exc.format_message()
        if text:
            print(text, file=sys.stderr)
        return 2
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "interview-sim"
        message = _guess_option(exc) or exc.format_message().rstrip(".")
        print(clean(f"error: {message} (see '{where} --help')"), file=sys.stderr)
        return exc.exit_code
    except click.ClickException as exc:
        print(clean(f"error: {exc.format_message()}"), file=sys.stderr)
        return exc.exit_code
    except typer.Abort:  # Ctrl-C while click itself prompts
        print("interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0
