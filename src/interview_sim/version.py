"""The release: one source of truth, the installed distribution's metadata (pyproject.toml's `version`).

Shown by `interview-sim --version` and recorded in every transcript, evaluation and calibration it writes
(`interview_sim_version`), so a record says which release wrote it.
"""

from __future__ import annotations

from functools import cache
from importlib import metadata

DISTRIBUTION = "interview-sim"
UNKNOWN = "0+unknown"
"""Running from a source tree that was never installed (no metadata to read)."""


@cache
def version() -> str:
    """The installed interview-sim's version, e.g. `0.1.0`."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return UNKNOWN
