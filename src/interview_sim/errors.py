"""One base error for everything a user can cause; the CLI turns it into one line and an exit code."""

from __future__ import annotations


class InterviewSimError(Exception):
    """A failure the user can cause or fix. Rendered as one line, never as a traceback."""

    exit_code = 1


class ConfigError(InterviewSimError):
    """An agent, scenario or sweep file that cannot be loaded or does not validate."""

    exit_code = 2


class ModelNotFoundError(InterviewSimError):
    """A model reference that names no known provider, or a model file that is missing."""

    exit_code = 2


class ModelNotReadyError(InterviewSimError):
    """A backend that cannot serve the model now (server down, model not pulled)."""

    exit_code = 3


class ModelCallError(InterviewSimError):
    """A model call that failed after its bounded retries (`retries`: the failed attempts, for the record)."""

    exit_code = 4

    def __init__(self, message: str, retries: list[object] | None = None) -> None:
        super().__init__(message)
        self.retries: list[object] = list(retries or [])


class ClusterError(InterviewSimError):
    """A Ray cluster lost while a compare or sweep ran on it (its head node stopped answering).

    `leave_at_once`: the command ends as soon as it has said so; Python's own shutdown would wait for Ray's."""

    exit_code = 4
    leave_at_once = True


class RecordError(InterviewSimError):
    """A run folder or transcript that cannot be read (missing, malformed, newer schema)."""

    exit_code = 2


class BrokenIndexError(RecordError):
    """A runs folder's index.sqlite that cannot be read (not a database, damaged): `runs reindex` replaces it."""


class ImportFormatError(InterviewSimError):
    """A file to import that is not a readable AutoGen 0.2 record (malformed, truncated, unknown shape)."""

    exit_code = 2


class ReplayError(InterviewSimError):
    """A run that cannot be replayed or re-executed as asked (e.g. `--rerun` on an imported run)."""

    exit_code = 2


class EvaluationError(InterviewSimError):
    """Grading that could not produce a trustworthy grade; the failed evaluation is recorded in the run folder.

    `evaluation` carries the failed record (raw outputs included) for callers that render it.
    """

    exit_code = 5

    def __init__(self, message: str, evaluation: object | None = None) -> None:
        super().__init__(message)
        self.evaluation = evaluation


class BatchIncompleteError(InterviewSimError):
    """A compare or sweep that ran to the end with failed cells or pairwise judgments (the finished ones are kept)."""

    exit_code = 6


class BatchError(InterviewSimError):
    """A compare or sweep request that cannot run as given (no models, a model listed twice, bad endpoints)."""

    exit_code = 2


class OutputError(InterviewSimError):
    """An output path a user named (`-o PATH`) that cannot be written as asked (a folder, no permission)."""

    exit_code = 2


class MissingExtraError(InterviewSimError):
    """A feature whose optional dependency is not installed; the message names the pip command that installs it."""

    exit_code = 3


def field_path(loc: tuple[int | str, ...] | list[int | str]) -> str:
    """A validation error's location as `a.b.0` for a one-line message; a part that is not plain printable text
    (a key read from a file may hold a newline) is shown quoted, with its escapes."""
    parts = [str(p) if str(p).isprintable() and str(p).strip() == str(p) and str(p) else repr(p) for p in loc]
    return ".".join(parts) or "(top level)"
