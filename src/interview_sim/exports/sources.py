"""Which runs an export covers: run folders and ids, comparisons (their cells' runs) and runs-folder filters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from interview_sim.errors import MissingExtraError, RecordError
from interview_sim.files import exists, is_file
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE

COMPARISON_FILE = "comparison.json"


@dataclass(frozen=True)
class ExportRun:
    """One run to export, and the comparison cell it came from (if any)."""

    run_dir: Path
    comparison_id: str | None = None
    repeat: int | None = None
    """The cell's repeat (0-based) in its comparison: its epoch there."""


def require(module: str, install: str) -> None:
    """Raise MissingExtraError (one line: what to install, `install` being pip's argument) when `module` cannot be
    imported."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"this needs {module}, which is not installed: pip install {install}") from None


def _is_run(folder: Path) -> bool:
    # A transcript.json that is not a regular file still names a run: reading it says what is wrong with it.
    return exists(folder / TRANSCRIPT_FILE) or is_file(folder / EVENTS_FILE)


def _comparison_runs(folder: Path) -> list[ExportRun]:
    """The runs of a comparison's finished cells, in the record's order."""
    from interview_sim.compare.comparison import load_comparison

    comparison = load_comparison(folder / COMPARISON_FILE)
    root = folder.parent.parent  # runs/comparisons/<id> → runs
    found = []
    for cell in comparison.cells:
        if cell.status != "ok" or not cell.run_dir:
            continue
        run_dir = root / cell.run_dir
        if not run_dir.resolve().is_relative_to(root.resolve()) or not _is_run(run_dir):
            continue  # a record pointing outside its runs folder, or at a run since deleted
        found.append(ExportRun(run_dir, comparison.comparison_id, cell.repeat))
    if not found:
        raise RecordError(f"{folder}: the comparison has no finished cell with a run to export")
    return found


def resolve_target(target: str | Path, runs_dir: Path) -> list[ExportRun]:
    """A run (folder, transcript.json, id under runs_dir) or a comparison (folder, comparison.json, id) → its runs."""
    p = Path(target)
    if p.is_file():
        if p.name == TRANSCRIPT_FILE:
            return [ExportRun(p.parent)]
        if p.name == COMPARISON_FILE:
            return _comparison_runs(p.parent)
        raise RecordError(f"{p}: not a {TRANSCRIPT_FILE} nor a {COMPARISON_FILE}")
    if p.is_dir():
        if _is_run(p):
            return [ExportRun(p)]
        if is_file(p / COMPARISON_FILE):
            return _comparison_runs(p)
        raise RecordError(f"{p}: not a run folder (no {TRANSCRIPT_FILE}) nor a comparison folder (no {COMPARISON_FILE})")
    if len(p.parts) == 1 and p.name not in ("", ".", ".."):
        if is_file(runs_dir / "comparisons" / p.name / COMPARISON_FILE):
            return _comparison_runs(runs_dir / "comparisons" / p.name)
        runs = sorted({t.parent for name in (TRANSCRIPT_FILE, EVENTS_FILE) for t in runs_dir.glob(f"*/{p.name}/{name}")})
        if len(runs) == 1:
            return [ExportRun(runs[0])]
        if len(runs) > 1:
            raise RecordError(f"{target}: ambiguous run id, found under {', '.join(str(r) for r in runs)}")
    raise RecordError(f"{target}: no run or comparison there (not a path, nor an id under {runs_dir})")


def resolve_runs(targets: list[str], *, where: str | None = None, runs_dir: str | Path = "runs") -> list[ExportRun]:
    """Every run the targets and the filter name, each once, in the order given.

    Args:
        targets: runs and comparisons (paths or ids under runs_dir).
        where: a runs-folder filter (`scenario=...,model=...,source=...,batch=...` or `all`), as `evaluate --where`.
        runs_dir: where ids and the filter are looked up.

    Raises:
        RecordError: a target names nothing, or nothing at all was named.
    """
    root = Path(runs_dir)
    found: list[ExportRun] = []
    for target in targets:
        found.extend(resolve_target(target, root))
    if where is not None:
        from interview_sim.catalog import RunFilter, list_runs

        rows = [r for r in list_runs(root, RunFilter.parse(where)) if r.kind == "interview"]
        if not rows:
            raise RecordError(f"no run in {root} matches {where!r}")
        found.extend(ExportRun(root / r.run_dir) for r in rows)
    if not found:
        raise RecordError("nothing to export: name runs or comparisons, or a filter with --where")
    seen: set[Path] = set()
    unique = []
    for run in found:
        key = run.run_dir.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(run)
    return unique
