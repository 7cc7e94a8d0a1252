"""The calibration gate: which judges have passed calibration, and the state every grade carries.

A calibration vouches for one judge model (its file's hash, an Ollama digest, a scripted judge's source), one
rubric (its content hash), one version of the judge prompts and one grading mode; change any of them and the
judge is "not calibrated" again. Results are kept in `<runs>/_calibration/index.jsonl` (append-only, the
newest line for a key wins), which an evaluation finds by looking up from the run's folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from interview_sim.grading.grades import CalibrationState
from interview_sim.lookup import find, packaged_root
from interview_sim.models import ChatModel, assembly

INDEX_FILE = "index.jsonl"
SHIPPED_FILE = "calibration.json"
"""In `scenarios/controls/<scenario>/`: the default judge's calibration on those controls, as `make calibrate` wrote it."""
CALIBRATION_DIR = "_calibration"
LOOK_UP_LEVELS = 4
"""How far above a run folder the store is looked for (runs/<scenario>/<run>, runs/_calibration/<id>/<control>)."""
NOT_EVIDENCE = "this score is not evidence"

_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_HASHES and (known := assembly.verified_sha256(path)) is not None:
        _FILE_HASHES[key] = known[:16]
    if key not in _FILE_HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[key] = digest.hexdigest()[:16]
    return _FILE_HASHES[key]


def judge_identity(model: ChatModel) -> str:
    """What a calibration vouches for: the model's weights (file hash, Ollama digest), not just its name.

    A model file's hash is read once per process; a scripted judge is identified by its script's source file.
    A backend with neither is identified by its reference alone.
    """
    path = getattr(model, "path", None)
    if isinstance(path, Path) and path.is_file():
        return f"{model.ref}@sha256:{_file_sha256(path)}"
    digest = getattr(model, "digest", None)
    if isinstance(digest, str) and digest:
        return f"{model.ref}@{digest}"
    source = getattr(sys.modules.get(type(model).__module__), "__file__", None)
    if model.provider == "scripted" and source:
        return f"{model.ref}@source-sha256:{_file_sha256(Path(source))}"
    return model.ref


def key(identity: str, rubric_hash: str, prompt_version: str, mode: str, screen: str) -> dict[str, str]:
    """What a calibration vouches for; `screen` is the injection screen's rules version ("v1") or "off"."""
    return {"judge": identity, "rubric_hash": rubric_hash, "prompt_version": prompt_version, "mode": mode, "screen": screen}


def controls_dir(scenario: str) -> Path:
    """Where a scenario's calibration controls live (and the calibration record the project ships for them):
    `scenarios/controls/<scenario>/` of the first place that has it (`interview_sim.lookup`), else the packaged one."""
    relative = f"scenarios/controls/{scenario}"
    found = find(relative)
    if found is not None:
        return found.path
    packaged = packaged_root()
    return (packaged if packaged is not None else Path.cwd()) / relative


def shipped_calibration(scenario: str) -> Path | None:
    """The calibration record shipped for a scenario's default judge (`make calibrate` writes it), if any."""
    path = controls_dir(scenario) / SHIPPED_FILE
    return path if path.is_file() else None


def _shipped_entries(path: Path | None) -> list[dict[str, Any]]:
    """A shipped `calibration.json` as index entries, one per judge identity it vouches for."""
    if path is None:
        return []
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        judge_ids = record["judge_ids"]
        parts = [str(record[k]) for k in ("rubric_hash", "prompt_version", "mode", "screen")]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # a damaged shipped record vouches for nothing: the judge is "not calibrated"
    if not isinstance(judge_ids, dict):
        return []
    state = "passed" if record.get("passed") is True else "failed"
    measured = record.get("validity")
    judges = measured.get("judges") if isinstance(measured, dict) else None
    judges = judges if isinstance(judges, dict) else {}
    return [
        {
            "key": key(str(identity), *parts),
            "state": state,
            "failed_checks": record.get("failed_checks") or [],
            "calibration_id": record.get("calibration_id"),
            "shipped": True,
            "qwk": (judges.get(ref) or {}).get("qwk") if isinstance(judges.get(ref), dict) else None,
        }
        for ref, identity in judge_ids.items()
    ]


def find_store(run_dir: Path) -> Path | None:
    """The nearest `_calibration` folder above a run folder, if any."""
    for parent in list(run_dir.resolve().parents)[:LOOK_UP_LEVELS]:
        if (parent / CALIBRATION_DIR).is_dir():
            return parent / CALIBRATION_DIR
        if parent.name == CALIBRATION_DIR:
            return parent
    return None


def record(
    store: Path,
    entry_key: dict[str, str],
    *,
    passed: bool,
    failed_checks: list[str],
    calibration_id: str,
    qwk: dict[str, float | int | None] | None = None,
) -> None:
    """Append one calibration's outcome for a key (append + flush: a crash never leaves half a line)."""
    store.mkdir(parents=True, exist_ok=True)
    line: dict[str, Any] = {
        "key": entry_key,
        "state": "passed" if passed else "failed",
        "failed_checks": failed_checks,
        "calibration_id": calibration_id,
    }
    if qwk is not None:
        line["qwk"] = qwk
    with (store / INDEX_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, sort_keys=True) + "\n")
        fh.flush()


def _entries(store: Path | None) -> list[dict[str, Any]]:
    if store is None or not (store / INDEX_FILE).is_file():
        return []
    entries = []
    for line in (store / INDEX_FILE).read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a torn last line from a killed process: the others still count
        if isinstance(entry, dict) and isinstance(entry.get("key"), dict):
            entries.append(entry)
    return entries


def qwk_entry(interval: Any) -> dict[str, float | int | None]:
    """A calibration's pooled QWK (a `validity.Interval`) as the gate keeps it."""
    return {"value": interval.value, "low": interval.low, "high": interval.high, "n": interval.n}


def _qwk(entry: Any) -> dict[str, float | int | None] | None:
    """A stored QWK entry, or None when it is missing or malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("n"), int):
        return None
    figures = {k: entry.get(k) for k in ("value", "low", "high")}
    if not all(v is None or isinstance(v, (int, float)) for v in figures.values()):
        return None
    return {**figures, "n": entry["n"]}


def qwk_summary(qwk: dict[str, float | int | None] | None) -> str:
    """ "judge QWK 0.64 [0.55, 0.72] on 60 labelled transcripts" ("" without a measured QWK)."""
    from interview_sim.text import qwk_entry_line

    return qwk_entry_line(qwk)


def summary(state: str, failed_checks: list[str] | None = None, qwk: dict[str, float | int | None] | None = None) -> str:
    """The line shown next to every score (with the judge's QWK on the labelled set when its calibration measured it)."""
    agreement = f" ({qwk_summary(qwk)})" if qwk else ""
    if state == "passed" and not qwk:  # a calibration from before the labelled set: its controls' checks only
        agreement = " (controls only: agreement on the labelled set not measured)"
    if state == "passed":
        return f"judge passed calibration{agreement}"
    if state == "failed":
        return f"judge failed calibration{agreement}: {', '.join(failed_checks or ['unknown check'])} - {NOT_EVIDENCE}"
    return f"judge not calibrated - {NOT_EVIDENCE}"


def lookup(store: Path | None, entry_key: dict[str, str], *, shipped: Path | None = None) -> CalibrationState:
    """The newest calibration result for this key in the runs folder's store, else the shipped record's, else
    "not calibrated"."""
    found = [e for e in _entries(store) if e["key"] == entry_key] or [
        e for e in _shipped_entries(shipped) if e["key"] == entry_key
    ]
    if not found:
        return CalibrationState(state="not calibrated", key=entry_key, summary=summary("not calibrated"))
    last = found[-1]
    state = "passed" if last.get("state") == "passed" else "failed"
    checks = [str(c) for c in last.get("failed_checks") or []]
    qwk = _qwk(last.get("qwk"))
    return CalibrationState(
        state=state,
        failed_checks=checks,
        calibration_id=last.get("calibration_id"),
        key=entry_key,
        summary=summary(state, checks, qwk),
        judge_qwk=qwk,
    )


def combine(states: list[CalibrationState]) -> CalibrationState:
    """Several judge models: passed only if every one passed; failed if any failed; else not calibrated."""
    if len(states) == 1:
        return states[0]
    failed = [s for s in states if s.state == "failed"]
    if failed:
        checks = list(dict.fromkeys(c for s in failed for c in s.failed_checks))
        return CalibrationState(state="failed", failed_checks=checks, summary=summary("failed", checks))
    if all(s.state == "passed" for s in states):
        return CalibrationState(state="passed", summary=summary("passed"))
    return CalibrationState(state="not calibrated", summary=summary("not calibrated"))


def describe(calibration: CalibrationState | None) -> CalibrationState:
    """The state to show for an evaluation (old records have none: not calibrated)."""
    return calibration or CalibrationState(state="not calibrated", summary=summary("not calibrated"))
