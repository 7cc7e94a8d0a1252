"""interview-sim: simulated whiteboard interviews between local language models.

The public Python API. The CLI is a thin skin over these functions.
"""

from __future__ import annotations

import sys


def _started_as_the_command(argv: list[str]) -> bool:
    """`interview-sim ...` or `python -m interview_sim ...` (never a program that imports the API)."""
    script = argv[1] if len(argv) > 1 else ""  # [python, the console script, its arguments...]
    module = argv[argv.index("-m") + 1 : argv.index("-m") + 2] if "-m" in argv else []  # python's own -m comes first
    return script.rsplit("/", 1)[-1] == "interview-sim" or module == ["interview_sim"]


def _stopped_while_starting(signum: int, _frame: object) -> None:
    import os
    import signal

    os.write(2, f"interrupted ({signal.Signals(signum).name}): the command had not started; nothing was written\n".encode())
    os._exit(128 + signum)


if _started_as_the_command(getattr(sys, "orig_argv", [])):
    # The command's first code, before any other import: Ctrl-C or SIGTERM while it is still importing (typer,
    # rich, pydantic take a moment on a loaded machine) is one line, not a traceback. The CLI's own handlers
    # replace these once it runs (cli/signals.py).
    import signal as _signal

    for _signum in (_signal.SIGINT, _signal.SIGTERM):
        _signal.signal(_signum, _stopped_while_starting)

from typing import TYPE_CHECKING, Any  # noqa: E402

__all__ = [
    "InterviewSimError",
    "calibrate",
    "compare_models",
    "create_model",
    "evaluate_pairwise",
    "evaluate_run",
    "export_inspect",
    "export_run",
    "export_traces",
    "import_transcripts",
    "list_models",
    "load_agent",
    "load_comparison",
    "load_evaluations",
    "load_scenario",
    "load_transcript",
    "replay_run",
    "rerun",
    "run_scenario",
    "run_sweep",
    "write_report",
    "write_side_by_side",
]

# Lazy attribute access keeps `import interview_sim` (and `interview-sim --help`) fast:
# the session engine pulls in AutoGen, which costs about a second to import.
_LAZY = {
    "InterviewSimError": ("interview_sim.errors", "InterviewSimError"),
    "load_agent": ("interview_sim.config", "load_agent"),
    "load_scenario": ("interview_sim.config", "load_scenario"),
    "run_scenario": ("interview_sim.session", "run_scenario"),
    "load_transcript": ("interview_sim.record", "load_transcript"),
    "create_model": ("interview_sim.models", "create_model"),
    "list_models": ("interview_sim.models", "list_models"),
    "evaluate_run": ("interview_sim.grading", "evaluate_run"),
    "evaluate_pairwise": ("interview_sim.grading", "evaluate_pairwise"),
    "load_evaluations": ("interview_sim.grading", "load_evaluations"),
    "calibrate": ("interview_sim.grading", "calibrate"),
    "replay_run": ("interview_sim.replay", "replay_run"),
    "rerun": ("interview_sim.replay", "rerun"),
    "import_transcripts": ("interview_sim.autogen02", "import_transcripts"),
    "export_run": ("interview_sim.autogen02", "export_run"),
    "compare_models": ("interview_sim.compare", "compare_models"),
    "run_sweep": ("interview_sim.compare", "run_sweep"),
    "load_comparison": ("interview_sim.compare", "load_comparison"),
    "write_report": ("interview_sim.report", "write_report"),
    "write_side_by_side": ("interview_sim.report.side_by_side", "write_side_by_side"),
    "export_inspect": ("interview_sim.exports", "export_inspect"),
    "export_traces": ("interview_sim.exports", "export_traces"),
}

if TYPE_CHECKING:
    from interview_sim.autogen02 import export_run, import_transcripts
    from interview_sim.compare import compare_models, load_comparison, run_sweep
    from interview_sim.config import load_agent, load_scenario
    from interview_sim.errors import InterviewSimError
    from interview_sim.exports import export_inspect, export_traces
    from interview_sim.grading import calibrate, evaluate_pairwise, evaluate_run, load_evaluations
    from interview_sim.models import create_model, list_models
    from interview_sim.record import load_transcript
    from interview_sim.replay import replay_run, rerun
    from interview_sim.report import write_report
    from interview_sim.report.side_by_side import write_side_by_side
    from interview_sim.session import run_scenario


def __getattr__(name: str) -> Any:
    if name == "__version__":  # read from the installed metadata (interview_sim.version), never written twice
        from interview_sim.version import version

        return version()
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'interview_sim' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module_name), attr)
