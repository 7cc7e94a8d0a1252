"""interview-sim: simulated whiteboard interviews between local language models.

The public Python API. The CLI is a thin skin over these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "InterviewSimError",
    "create_model",
    "list_models",
    "load_agent",
    "load_scenario",
    "load_transcript",
    "run_scenario",
]

__version__ = "0.1.0"

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
}

if TYPE_CHECKING:
    from interview_sim.config import load_agent, load_scenario
    from interview_sim.errors import InterviewSimError
    from interview_sim.models import create_model, list_models
    from interview_sim.record import load_transcript
    from interview_sim.session import run_scenario


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'interview_sim' has no attribute {name!r}") from None
    import importlib

    return getattr(importlib.import_module(module_name), attr)
