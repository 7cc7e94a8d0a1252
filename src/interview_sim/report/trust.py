"""The calibration badge every score on a page carries: passed, failed (which checks) or not calibrated."""

from __future__ import annotations

from typing import Any

from interview_sim.grading.gate import describe, summary
from interview_sim.grading.grades import CalibrationState


def evaluation_badge(raw: dict[str, Any] | None) -> dict[str, Any]:
    """An evaluation's calibration state for the page (an old record without one: not calibrated)."""
    state = describe(CalibrationState.model_validate(raw) if raw else None)
    return {"state": state.state, "summary": state.summary, "css": state.state.replace(" ", "-")}


def comparison_badge(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The judges' states over a comparison's graded cells: passed only when every graded cell's judge passed."""
    graded = [c for c in cells if c.get("status") == "ok" and c.get("overall") is not None]
    lines = list(dict.fromkeys(c.get("calibration_summary") or summary("not calibrated") for c in graded))
    states = {c.get("calibration") or "not calibrated" for c in graded}
    state = "passed" if graded and states == {"passed"} else "failed" if "failed" in states else "not calibrated"
    return {"state": state, "summary": "; ".join(lines) or "no graded cells", "css": state.replace(" ", "-")}
