"""Which records a page shows, read defensively: the run or comparison a target names (a killed run, rebuilt from
its event log, included), and the free-form parts of a transcript reduced to what the page can show."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from interview_sim.errors import RecordError
from interview_sim.files import exists, is_file
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, Transcript

COMPARISON_FILE = "comparison.json"


def resolve_target(target: str | Path, runs_dir: str | Path = "runs") -> tuple[Literal["run", "comparison"], Path]:
    """Tell a run from a comparison; returns its kind and folder. Raises RecordError."""
    p = Path(target)
    if p.is_file():
        if p.name == COMPARISON_FILE:
            return "comparison", p.parent
        if p.name == TRANSCRIPT_FILE:
            return "run", p.parent
        raise RecordError(f"{p}: not a {TRANSCRIPT_FILE} nor a {COMPARISON_FILE}")
    if p.is_dir():
        if (p / TRANSCRIPT_FILE).exists() or (p / EVENTS_FILE).is_file():  # a killed run is rebuilt from its log
            return "run", p
        if (p / COMPARISON_FILE).exists():
            return "comparison", p
        raise RecordError(f"{p}: not a run folder (no {TRANSCRIPT_FILE}) nor a comparison folder (no {COMPARISON_FILE})")
    root = Path(runs_dir)
    if len(p.parts) == 1:
        if (root / "comparisons" / p.name / COMPARISON_FILE).exists():
            return "comparison", root / "comparisons" / p.name
        runs = sorted({t.parent for name in (TRANSCRIPT_FILE, EVENTS_FILE) for t in root.glob(f"*/{p.name}/{name}")})
        if len(runs) == 1:
            return "run", runs[0]
        if len(runs) > 1:
            raise RecordError(f"{target}: ambiguous run id, found under {', '.join(str(r) for r in runs)}")
    raise RecordError(f"{target}: no run or comparison there (not a path, nor an id under {root})")


def run_folder(run: str | Path) -> Path:
    p = Path(run)
    return p.parent if p.is_file() else p


def comparison_dir(comparison: str | Path) -> Path:
    p = Path(comparison)
    folder = p.parent if p.is_file() else p
    if not (folder / COMPARISON_FILE).exists():
        raise RecordError(f"{comparison}: not a comparison (no {COMPARISON_FILE})")
    return folder


def cell_run_dir(folder: Path, cell: dict[str, Any]) -> Path | None:
    """A cell's run folder (recorded relative to the runs directory, `runs/comparisons/<id>/../..`), if it exists."""
    raw = cell.get("run_dir")
    if not raw:
        return None
    root = folder.parent.parent
    p = Path(str(raw))
    candidate = p if p.is_absolute() else root / p
    try:
        inside = candidate.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL character
        inside = False
    if not inside:
        return None  # a record pointing outside its runs folder: never read from, never written to
    return candidate if exists(candidate / TRANSCRIPT_FILE) or is_file(candidate / EVENTS_FILE) else None


def scenario_view(transcript: Transcript) -> dict[str, Any]:
    """The snapshot fields the page reads, each of its type or None: the record keeps the snapshot free-form, and a
    hand-edited one may be `{}` or hold anything."""
    raw = transcript.scenario
    view: dict[str, Any] = {key: raw.get(key) if isinstance(raw.get(key), str) else None for key in ("title", "company", "topic")}
    budget = raw.get("time_budget_minutes")
    view["time_budget_minutes"] = budget if isinstance(budget, int | float) and not isinstance(budget, bool) else None
    rubric = raw.get("rubric")
    criteria = rubric.get("criteria") if isinstance(rubric, dict) else None
    ok = isinstance(criteria, list) and all(isinstance(c, dict) and isinstance(c.get("id"), str) for c in criteria)
    view["rubric"] = {"criteria": criteria} if ok else {}
    return view
