"""The calibration records the project ships beside its controls can never go stale silently.

`make calibrate` grades each scenario's controls with the default judge and writes the outcome to
`scenarios/controls/<scenario>/calibration.json`; the gate reads it, so a run graded by the default judge says
whether the judge passed calibration without calibrating on the user's machine. The record vouches only for what it was
made with: the judge's weights, the rubric, the judge prompts, the grading mode, the injection screen and the
evaluator agent file. Each of those is recomputed here from the code and the files as they are now.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interview_sim.config import load_scenario
from interview_sim.grading import gate, labelled
from interview_sim.grading.evaluate import default_evaluator
from interview_sim.grading.judge import PROMPT_VERSION
from interview_sim.grading.screen import SCREEN_VERSION
from interview_sim.models import assembly

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "scenarios" / "controls").glob(f"*/{gate.SHIPPED_FILE}"))
STALE = "stale shipped calibration: run `make calibrate` and commit scenarios/controls/*/calibration.json"


def _default_judge_identity() -> str:
    ref = default_evaluator().model
    name = ref.split(":", 1)[1]
    chunked = assembly.CHUNKED_MODELS.get(name)
    assert chunked is not None, f"the default judge {ref} is not a shipped embedded model"
    return f"{ref}@sha256:{chunked.sha256[:16]}"


MEASURED = {
    # scenario: (controls' checks that fail, the record's failed check groups)
    "scalability-issues": ([], ["agreement", "order"]),
    "system-design-panel": (["strong - weak >= 1"], ["ordering", "agreement", "order"]),
}
"""What `make calibrate` measured for the default judge on each scenario (docs/judge-validity.md)."""


def test_every_scenario_with_controls_ships_a_record() -> None:
    assert sorted(p.parent.name for p in SHIPPED) == sorted(MEASURED)


@pytest.mark.parametrize("scenario", sorted(MEASURED))
def test_the_shipped_records_say_what_was_measured(scenario: str) -> None:
    """What each shipped record says, pinned: every injection control at or below weak and no position bias on both
    scenarios; the panel's ordering margin (strong - weak >= 1) fails; both fail the labelled set's agreement and
    order-flip thresholds. A change of judge, prompts or screen that moves either side fails here."""
    failing_controls, failed_groups = MEASURED[scenario]
    record = json.loads((ROOT / "scenarios" / "controls" / scenario / gate.SHIPPED_FILE).read_text(encoding="utf-8"))
    assert record["evaluator_models"] == [default_evaluator().model]
    assert record["validity"] is not None and record["validity"]["sizes"]["transcripts"] >= 20
    controls = [c for c in record["checks"] if c["group"] in ("ordering", "injection", "position bias")]
    assert len(controls) == 8, record["verdict"]
    assert sorted(c["name"] for c in controls if not c["passed"]) == failing_controls, record["verdict"]
    assert record["passed"] is False and record["failed_checks"] == failed_groups, record["verdict"]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.parent.name for p in SHIPPED])
def test_a_shipped_calibration_matches_the_judge_rubric_prompts_and_screen_of_today(path: Path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    scenario = load_scenario(path.parent.name)
    assert record["judge_ids"] == {default_evaluator().model: _default_judge_identity()}, STALE
    assert record["rubric_hash"] == scenario.spec.rubric.content_hash(), STALE
    assert record["prompt_version"] == PROMPT_VERSION, STALE
    assert (record["mode"], record["screen"]) == ("criterion", f"v{SCREEN_VERSION}"), STALE
    assert record["evaluator_agent"] == default_evaluator().model_dump(mode="json"), STALE
    # The labelled set's figures are optional (records older than them have none); present, they must be of today's set.
    if record.get("validity") is not None:
        assert record["validity"]["labelled_hash"] == labelled.bank_hash(path.parent.name), STALE


def test_the_gate_reads_a_shipped_record_for_its_exact_key_only(tmp_path: Path) -> None:
    path = ROOT / "scenarios" / "controls" / "scalability-issues" / gate.SHIPPED_FILE
    record = json.loads(path.read_text(encoding="utf-8"))
    identity = _default_judge_identity()
    key = gate.key(identity, record["rubric_hash"], PROMPT_VERSION, "criterion", f"v{SCREEN_VERSION}")
    shipped = gate.lookup(None, key, shipped=path)
    assert shipped.state == "failed" and shipped.failed_checks == ["agreement", "order"]
    for changed in ({"judge": "llamacpp:other@sha256:0"}, {"rubric_hash": "0"}, {"screen": "off"}, {"mode": "rubric"}):
        assert gate.lookup(None, key | changed, shipped=path).state == "not calibrated"
    # A calibration in the user's own runs folder comes first: one there wins over the shipped record.
    gate.record(tmp_path, key, passed=True, failed_checks=[], calibration_id="mine")
    assert gate.lookup(tmp_path, key, shipped=path).state == "passed"
    damaged = tmp_path / "calibration.json"
    damaged.write_text("{not json", encoding="utf-8")
    assert gate.lookup(None, key, shipped=damaged).state == "not calibrated"
