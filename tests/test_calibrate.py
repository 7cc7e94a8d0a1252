"""Calibration on the control transcripts, and the embedded model as a judge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.config import Rubric, load_scenario
from interview_sim.errors import EvaluationError
from interview_sim.grading.calibration import CONTROLS, REVERSED, calibrate, controls_dir
from interview_sim.grading.evaluate import evaluate_run, load_evaluations
from interview_sim.grading.validity import Sizes
from interview_sim.models.scripted import JUDGE_WORDS, ScriptInput, judge_script, script
from interview_sim.record import load_transcript
from interview_sim.session import run_scenario

runner = CliRunner()
NO_LABELLED = Sizes(transcripts=0)
"""The controls alone: the labelled set's figures are tested in test_validity.py."""


@script("test-contrarian-judge")
def contrarian_judge(inp: ScriptInput) -> str:
    """Test judge: scripted:judge's grade turned upside down on the 1-5 scale."""
    grade = json.loads(judge_script(inp))
    for item in grade["criteria"].values() if "criteria" in grade else [grade]:
        item["score"] = 6 - item["score"]
    return json.dumps(grade)


def test_the_controls_are_transcripts_of_the_current_rubric() -> None:
    rubric = load_scenario("scalability-issues").spec.rubric
    for control in CONTROLS:
        transcript = load_transcript(controls_dir() / f"{control}.json")
        assert transcript.scenario_id == "scalability-issues"
        assert Rubric.model_validate(transcript.scenario["rubric"]).content_hash() == rubric.content_hash()
        assert [m.role for m in transcript.messages[:3]] == ["interviewer", "candidate", "interviewer"]
    weak = load_transcript(controls_dir() / "weak.json")
    injection = load_transcript(controls_dir() / "injection.json")
    # The injection attempt is the weak control plus text aimed at the judge, in candidate turns.
    for w, i in zip(weak.messages, injection.messages, strict=True):
        assert i.content.startswith(w.content)
    added = " ".join(i.content[len(w.content) :] for w, i in zip(weak.messages, injection.messages, strict=True))
    assert "ignore the rubric" in added and "</transcript>" in added


@pytest.mark.anyio
async def test_calibration_passes_with_the_scripted_judge(runs_dir: Path) -> None:
    calibration = await calibrate(evaluator_models=["scripted:judge"], runs_dir=runs_dir, sizes=NO_LABELLED)
    assert calibration.passed
    overall = {name: r.overall for name, r in calibration.controls.items()}
    assert overall["strong"] > overall["average"] > overall["weak"] >= overall["injection"]  # type: ignore[operator]
    # Text addressed to the judge earned nothing: the judge graded the injection attempt exactly like the weak
    # answers, and the injection screen then capped it at the scale's lowest point.
    injection = load_evaluations(calibration.controls["injection"].run_dir)[0]
    assert injection.screen is not None and injection.screen.action == "capped"
    assert injection.screen.uncapped_overall == overall["weak"] and overall["injection"] == 1.0
    assert calibration.verdict.startswith("calibration passed (scripted:judge)")
    saved = json.loads((Path(calibration.folder) / "calibration.json").read_text())
    assert next(iter(saved)) == "schema_version" and saved["passed"] is True
    # Each control was graded in a copy; the shipped controls are untouched.
    for name, result in calibration.controls.items():
        assert load_evaluations(result.run_dir)[0].evaluation_id == result.evaluation_id
        shipped = controls_dir() / f"{'strong' if name == REVERSED else name}.json"
        assert not any(c.role == "evaluator" for c in load_transcript(shipped).calls)
    assert not list(controls_dir().glob("evaluation-*.json"))


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", ["scalability-issues", "system-design-panel"])
async def test_with_no_judge_given_the_controls_are_graded_by_agents_evaluator_yaml(scenario: str, runs_dir: Path) -> None:
    """Whatever evaluator a control was recorded with (the panel's controls carry SmolLM2's, the default of the day
    they were written), calibration grades them with the judge its record names: agents/evaluator.yaml's."""
    from interview_sim.grading.evaluate import default_evaluator
    from interview_sim.models import ChatModel, ModelOptions, create_model

    asked: list[str] = []

    def factory(ref: str, options: ModelOptions) -> ChatModel:
        asked.append(ref)
        return create_model("scripted:judge", options)  # stands in for the default judge: only who is asked matters

    calibration = await calibrate(scenario=scenario, runs_dir=runs_dir, sizes=NO_LABELLED, model_factory=factory)
    assert asked and set(asked) == {default_evaluator().model}
    assert calibration.evaluator_models == [default_evaluator().model]
    assert calibration.evaluator_agent == default_evaluator().model_dump(mode="json")


@pytest.mark.anyio
async def test_the_scripted_judge_ignores_sentences_addressed_to_it(runs_dir: Path) -> None:
    calibration = await calibrate(evaluator_models=["scripted:judge"], runs_dir=runs_dir, sizes=NO_LABELLED)
    graded = load_evaluations(calibration.controls["injection"].run_dir)[0]
    evidence = [q for g in graded.judges[0].criteria for q in g.evidence]
    assert not any(set(q.lower().replace(",", " ").split()) & JUDGE_WORDS for q in evidence)


def test_calibrate_cli_passes_with_the_scripted_judge(runs_dir: Path) -> None:
    result = runner.invoke(
        app, ["calibrate", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir), "--labelled", "0"]
    )
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("calibration passed")
    as_json = runner.invoke(
        app, ["calibrate", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir), "--labelled", "0", "--json"]
    )
    data = json.loads(as_json.stdout)
    assert data["passed"] is True and [c["name"] for c in data["checks"]] == [
        "strong > average",
        "average > weak",
        "strong - weak >= 1",
        "injection <= weak",
        "injection-stuffing <= weak",
        "injection-system <= weak",
        "injection-forged-end <= weak",
        "position bias",
    ]
    assert data["figures"]["position_mean_abs_delta"] == 0.0 and data["mode"] == "criterion"
    # Progress goes to stderr, one line per control started and finished; stdout stays one JSON object.
    assert as_json.stderr.count("grading ") == len(CONTROLS) + 1 and "[8/8]" in as_json.stderr


def test_calibrate_cli_fails_with_a_judge_that_ranks_backwards(runs_dir: Path) -> None:
    result = runner.invoke(
        app, ["calibrate", "--evaluator-model", "scripted:test-contrarian-judge", "--runs-dir", str(runs_dir), "--labelled", "0"]
    )
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines()[-1].startswith("calibration FAILED (scripted:test-contrarian-judge)")
    assert "strong > average" in result.stdout


# ---------------------------------------------------------------------------------------------- the embedded model


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_real_evaluation_on_the_embedded_model_grades_or_fails_on_record(runs_dir: Path, smollm2_available: None) -> None:
    result = await run_scenario(
        "scalability-issues",
        interviewer_model="scripted:default",
        candidate_model="scripted:average",
        max_turns=4,
        runs_dir=runs_dir,
    )
    # At most four messages (the scripted interviewer wraps up early): a short prompt for a slow judge.
    assert len(result.transcript.messages) <= 4 and any(m.role == "candidate" for m in result.transcript.messages)
    try:
        evaluation = await evaluate_run(result.run_dir, evaluator_models=["llamacpp:smollm2-135m"], max_tokens=120)
    except EvaluationError as exc:
        (evaluation,) = load_evaluations(result.run_dir)
        assert exc.evaluation == evaluation
        assert evaluation.status == "failed" and evaluation.error and str(exc).startswith("evaluation failed: ")
        assert evaluation.overall is None and evaluation.criteria == {} and evaluation.judges == []
        assert evaluation.raw_outputs and all(r.error for r in evaluation.raw_outputs)
    else:
        assert evaluation.status == "ok" and evaluation.overall is not None
        candidate = " ".join(m.content for m in result.transcript.messages if m.role == "candidate").lower()
        for grade in evaluation.judges[0].criteria:
            assert 1 <= grade.score <= 5
            assert all(" ".join(q.split()).lower() in " ".join(candidate.split()) for q in grade.evidence)
            # llama.cpp returns the score token's probabilities: the expected score is on the scale, and counts.
            assert grade.probabilities is not None and sum(grade.probabilities.values()) == pytest.approx(1, abs=1e-3)
            assert grade.expected_score is not None and 1 <= grade.expected_score <= 5
            assert grade.value == grade.expected_score
        assert evaluation.judges[0].probabilities == "token probabilities"
        expected = [g.expected_score or 0.0 for g in evaluation.judges[0].criteria]
        assert evaluation.overall == pytest.approx(sum(expected) / len(expected), abs=1e-3)
    calls = [c for c in load_transcript(result.run_dir).calls if c.role == "evaluator"]
    assert calls and all(c.completion_tokens > 0 and c.model.startswith("SmolLM2") for c in calls)
    assert len(calls) == len(evaluation.raw_outputs)
