"""Where scenarios, sweeps, agents and calibration controls are found, whether installed or in a checkout.

A scenario or sweep id (`scalability-issues`), the fallback evaluator agent and a scenario's controls are looked up
in these places, in order; the first that has the file wins, so a file of your own with the id of a shipped one is
the one used:

    1. an explicit path: an argument that names a file is that file (`run ./my-topic.yaml`);
    2. `$INTERVIEW_SIM_HOME/scenarios/` and `$INTERVIEW_SIM_HOME/agents/`, when the variable is set;
    3. the working directory's `scenarios/` and `agents/`, when it has either folder;
    4. the packaged ones. They are the repository's top-level `agents/` and `scenarios/` folders: a wheel carries
       them inside the package as `interview_sim/data/` (setup.py copies them there at build time) and they are
       read through `importlib.resources`; a source checkout (the editable install of `make install`) reads them
       where they are.

A scenario names its agents relative to itself (`../agents/candidate.yaml`). Such a file is used as written when it
is one of yours; when it is a packaged one, or missing beside your scenario, it is looked up in the same order, so a
shipped scenario plays your `agents/candidate.yaml` and a lone scenario of yours plays the shipped agents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from interview_sim.files import exists

__all__ = [
    "HOME_ENV",
    "Found",
    "Place",
    "agent_file",
    "find",
    "find_all",
    "find_id",
    "list_ids",
    "packaged_root",
    "places",
    "visible",
]

HOME_ENV = "INTERVIEW_SIM_HOME"
FOLDERS = ("scenarios", "agents")
PACKAGED = "packaged"


@dataclass(frozen=True)
class Place:
    """One place scenarios and agents are read from."""

    root: Path
    """The folder that holds `scenarios/` and `agents/`."""
    label: str
    """`$INTERVIEW_SIM_HOME`, `working directory` or `packaged`."""


@dataclass(frozen=True)
class Found:
    """A file (or folder) found in a place."""

    path: Path
    place: Place
    shadows: tuple[Place, ...] = ()
    """The later places that have a file of the same name, which this one wins over."""

    def describe(self) -> str:
        """`working directory, overrides packaged`: where the file comes from, for `validate` and `models`."""
        if not self.shadows:
            return self.place.label
        return f"{self.place.label}, overrides {' and '.join(p.label for p in self.shadows)}"


def packaged_root() -> Path | None:
    """The folder holding the shipped `scenarios/` and `agents/`: inside the installed package, else the checkout."""
    shipped = resources.files("interview_sim") / "data"
    if isinstance(shipped, Path) and shipped.is_dir():  # pip installs a wheel unzipped: a real folder
        return shipped
    package = Path(__file__).resolve().parent
    checkout = package.parents[1]  # src/interview_sim -> the repository
    if package.parent.name == "src" and (checkout / "pyproject.toml").is_file() and (checkout / "scenarios").is_dir():
        return checkout
    return None


def places() -> list[Place]:
    """Where ids are looked up, in order (see the module docstring); a folder is listed once, at its first place."""
    found: list[Place] = []
    home = os.environ.get(HOME_ENV)
    if home:
        found.append(Place(Path(home), f"${HOME_ENV}"))
    cwd = Path.cwd()
    if any((cwd / folder).is_dir() for folder in FOLDERS):
        found.append(Place(cwd, "working directory"))
    packaged = packaged_root()
    if packaged is not None:
        found.append(Place(packaged, PACKAGED))
    unique: list[Place] = []
    seen: set[Path] = set()
    for place in found:
        key = _resolved(place.root)
        if key not in seen:
            seen.add(key)
            unique.append(place)
    return unique


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def find_all(relative: str | PurePosixPath) -> list[Found]:
    """Every place's file (or folder) at `relative` (e.g. `scenarios/scalability-issues.yaml`), first place first."""
    hits = [Found(place.root / relative, place) for place in places() if exists(place.root / relative)]
    return [Found(hit.path, hit.place, tuple(h.place for h in hits[n + 1 :])) for n, hit in enumerate(hits)]


def find(relative: str | PurePosixPath) -> Found | None:
    """The file (or folder) at `relative` in the first place that has it; None when no place has it."""
    hits = find_all(relative)
    return hits[0] if hits else None


def list_ids(folder: str, suffix: str = ".yaml") -> dict[str, Found]:
    """The ids (file stems) of `<folder>/*<suffix>` over every place, each with the file that wins, sorted by id."""
    stems: set[str] = set()
    for place in places():
        try:
            stems.update(p.name[: -len(suffix)] for p in (place.root / folder).glob(f"*{suffix}") if p.is_file())
        except OSError:
            continue
    found = {stem: find(f"{folder}/{stem}{suffix}") for stem in sorted(stems)}
    return {stem: hit for stem, hit in found.items() if hit is not None}


def agent_file(scenario: Path, rel: str) -> Path:
    """The agent file a scenario names as `rel` (relative to the scenario file); see the module docstring."""
    written = (scenario.parent / rel).resolve()
    for place in places():
        try:
            inside = written.relative_to(_resolved(place.root))
        except ValueError:
            continue
        if inside.parts[:1] != ("agents",) or (place.label != PACKAGED and exists(written)):
            break
        hit = find(PurePosixPath(*inside.parts))
        return hit.path.resolve() if hit is not None else written
    return written


def find_id(ref: str) -> Found | None:
    """A scenario or sweep id (`scenarios/<ref>.yaml`), else an agent id (`agents/<ref>.yaml`); None for neither."""
    if not ref or "/" in ref or ref.startswith("."):
        return None
    return find(f"scenarios/{ref}.yaml") or find(f"agents/{ref}.yaml")


def visible() -> dict[str, Found]:
    """Every scenario, sweep and agent file an id can name (`scenarios/<id>.yaml`, `agents/<id>.yaml`): the one used."""
    return {f"{folder}/{stem}.yaml": found for folder in FOLDERS for stem, found in list_ids(folder).items()}
