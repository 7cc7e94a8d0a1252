"""Build step: the repository's top-level `agents/` and `scenarios/` travel inside the wheel as `interview_sim/data/`.

They stay where they are in the repository (they are the project's own files, edited there, and a scenario names its
agents as `../agents/...`); a wheel carries a copy made at build time, read at run time through `importlib.resources`
(see `interview_sim.lookup`). Every file under them is shipped, so a new scenario, agent or control needs no change
here; an editable install (`make install`) reads them in the checkout instead. Everything else is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("agents", "scenarios")
TARGET = ("interview_sim", "data")


def shipped_files() -> list[Path]:
    """Every file under the shipped folders, but no hidden file, editor backup or Python cache."""
    files = []
    for folder in SHIPPED:
        for path in sorted(Path(folder).rglob("*")):
            parts = path.relative_to(folder).parts
            hidden = any(part.startswith(".") or part == "__pycache__" for part in parts)
            if path.is_file() and not hidden and not path.name.endswith(("~", ".pyc", ".swp")):
                files.append(path)
    return files


class BuildPyWithData(build_py):
    """`build_py`, then copy the shipped folders into the built package."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads them in the checkout
            return
        for source in shipped_files():
            target = Path(self.build_lib, *TARGET, source)
            self.mkpath(str(target.parent))
            self.copy_file(str(source), str(target))

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        return [*outputs, *(str(Path(self.build_lib, *TARGET, source)) for source in shipped_files())]


setup(cmdclass={"build_py": BuildPyWithData})
