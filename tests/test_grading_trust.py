"""Grades a user can trust: criterion-wise grading, anchors, expected scores, independent judges, the calibration gate."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_ollama import DEFAULT_MODEL, FakeOllama, fake_ollama_fixture  # noqa: F401
from interview_sim.cli import app
from interview_sim.config import AgentSpec, load_scenario
from interview_sim.errors import EvaluationError
from interview_sim.grading import gate
from interview_sim.grading.calibration import INJECTIONS, calibrate, controls_dir
from interview_sim.grading.criterion import presentation_order, sampling_seed, score_probabilities
from interview_sim.grading.evaluate import evaluate_run, load_evaluations
from interview_sim.grading.screen import SCREEN_VERSION
from interview_sim.grading.validity import Sizes
from interview_sim.models import (
    ChatMessage,
    ChatModel,
    Completion,
    CompletionRequest,
    ModelOptions,
    TokenAlternatives,
    create_model,
    register_provider,
)
from interview_sim.models import scripted as scripted_backend
from interview_sim.models.scripted import JUDGE_WORDS, ScriptInput, _stem_words, judge_script, script
from interview_sim.record import load_transcript, save_transcript
from interview_sim.session import run_scenario

CONTROLS_ONLY = Sizes(transcripts=0)
"""Calibration on the controls alone: the labelled set is tested in test_validity.py."""

runner = CliRunner()
RUBRIC = load_scenario("scalability-issues").spec.rubric
IDS = [c.id for c in RUBRIC.criteria]


async def _run(runs_dir: Path, candidate: str = "scripted:average") -> Path:
    result = await run_scenario(
        "scalability-issues", interviewer_model="scripted:default", candidate_model=candidate, runs_dir=runs_dir
    )
    return result.run_dir


# ---------------------------------------------------------------------------------------------- test backends


_JUDGE_2_SEEDS = {1235} | {sampling_seed(1235, c.id) for c in RUBRIC.criteria}
"""The seeds judge 2 of 3 calls with: its own (one-call modes), and each criterion's (`criterion.sampling_seed`)."""


class _FlakyJudge(ChatModel):
    """`flaky:<script>`: a scripted judge whose second seed (base + 1) always answers with broken JSON."""

    provider = "flaky"
    supports_json_schema = True

    def __init__(self, ref: str, script_name: str, role: str) -> None:
        super().__init__(ref=ref, name=f"flaky-{script_name}", context_length=8192)
        self.inner = scripted_backend.ScriptedModel(ref, script_name, role, None, None)
        self.broken_seeds: set[int] = set()

    def count_tokens(self, messages: tuple[object, ...] | list[object]) -> int:
        return self.inner.count_tokens(messages)  # type: ignore[arg-type]

    async def complete(self, request: CompletionRequest) -> Completion:
        completion = await self.inner.complete(request)
        if request.seed in _JUDGE_2_SEEDS:  # the evaluator agent's seed is 1234: judge 2 of 3
            completion.content = '{"score": "not a number"'
        return completion


class _ProbableJudge(ChatModel):
    """`probable:judge`: scripted:judge's answers, plus token probabilities at the score like llama.cpp returns."""

    provider = "probable"
    supports_json_schema = True
    supports_logprobs = True

    def __init__(self, ref: str, role: str) -> None:
        super().__init__(ref=ref, name="probable-judge", context_length=8192)
        self.inner = scripted_backend.ScriptedModel(ref, "judge", role, None, None)

    def count_tokens(self, messages: tuple[object, ...] | list[object]) -> int:
        return self.inner.count_tokens(messages)  # type: ignore[arg-type]

    async def complete(self, request: CompletionRequest) -> Completion:
        completion = await self.inner.complete(request)
        at = completion.content.index('"score": ') + len('"score": ')
        sampled = int(completion.content[at])
        # Most of the mass on the sampled score, a quarter on the point above (when there is one), and a bit of
        # the remaining probability on tokens that are not scores at all.
        top = [(str(sampled), -0.4), (" " + str(min(5, sampled + 1)), -1.5), ("The", -3.0)]
        completion.top_logprobs = [TokenAlternatives(0, (("{", -0.01),)), TokenAlternatives(at, tuple(top))]
        return completion


def _module(name: str, create: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.create = create  # type: ignore[attr-defined]
    return module


register_provider(
    "flaky",
    lambda: _module("flaky", lambda name, ref, options: _FlakyJudge(ref, name, options.role)),
)
register_provider(
    "probable",
    lambda: _module("probable", lambda name, ref, options: _ProbableJudge(ref, options.role)),
)


@script("test-positional-judge")
def positional_judge(inp: ScriptInput) -> str:
    """Test judge: in rubric mode, scores the criteria 1, 2, 3, 4, 5 in the order it is shown them."""
    grade = json.loads(judge_script(inp))
    for n, item in enumerate(grade.get("criteria", {}).values()):
        item["score"] = n + 1
    return json.dumps(grade)


# ---------------------------------------------------------------------------------------------- criterion-wise


@pytest.mark.anyio
async def test_criterion_wise_is_the_default_one_fresh_call_per_criterion_in_a_seeded_order(runs_dir: Path) -> None:
    run_dir = await _run(runs_dir)
    evaluation = await evaluate_run(run_dir, evaluator_models=["scripted:judge"], judges=2, seed=7)
    assert evaluation.mode == "criterion"
    calls = [c for c in load_transcript(run_dir).calls if c.evaluation_id == evaluation.evaluation_id]
    assert len(calls) == 2 * len(IDS)
    for judge in evaluation.judges:
        expected = [c.id for c in presentation_order(RUBRIC, judge.seed)]
        assert judge.order == expected and sorted(judge.order) == sorted(IDS)
        asked = [c.metadata["kind"] for c in calls if c.metadata["seed"] == judge.seed]
        assert asked == [f"grade:{cid}" for cid in expected]
        assert {g.criterion: g.position for g in judge.criteria} == {cid: n for n, cid in enumerate(expected)}
        assert judge.probabilities == "the backend returns no token probabilities"
        assert all(g.expected_score is None and g.value == g.score for g in judge.criteria)
    # Orders differ between seeds, and reversing mirrors every position.
    orders = {tuple(c.id for c in presentation_order(RUBRIC, s)) for s in range(10)}
    assert len(orders) > 1
    assert presentation_order(RUBRIC, 3, reverse=True) == presentation_order(RUBRIC, 3)[::-1]


@pytest.mark.anyio
async def test_each_criterion_prompt_holds_that_criterion_alone_with_its_anchors(runs_dir: Path) -> None:
    seen: list[CompletionRequest] = []

    def recording(ref: str, options: ModelOptions) -> ChatModel:
        model = scripted_backend.create(ref.partition(":")[2], ref, options)
        inner = model.complete

        async def complete(request: CompletionRequest) -> Completion:
            seen.append(request)
            return await inner(request)

        model.complete = complete  # type: ignore[method-assign]
        return model

    run_dir = await _run(runs_dir)
    await evaluate_run(run_dir, evaluator_models=["scripted:judge"], model_factory=recording)
    assert len(seen) == len(RUBRIC.criteria)
    for request in seen:
        user = request.messages[-1].content
        named = [c for c in RUBRIC.criteria if f"Criterion: {c.name}." in user]
        assert len(named) == 1
        others = [c for c in RUBRIC.criteria if c is not named[0]]
        assert all(c.levels[5] not in user for c in others) and named[0].levels[5] in user
        assert request.temperature == 0 and request.repeat_penalty == 1.0  # the judge's own decoding


def test_the_evaluator_agent_defaults_to_its_own_greedy_decoding() -> None:
    agent = AgentSpec(name="J", role="evaluator", model="scripted:judge", system_prompt="grade")
    assert agent.temperature == 0.0 and agent.repeat_penalty == 1.0
    candidate = AgentSpec(name="C", role="candidate", model="scripted:strong", system_prompt="answer")
    assert candidate.temperature == 0.7 and candidate.repeat_penalty == 1.1


# ---------------------------------------------------------------------------------------------- anchors


def test_every_shipped_criterion_has_anchors_and_validate_checks_them(tmp_path: Path) -> None:
    scenarios = [p for p in Path("scenarios").glob("*.yaml") if not p.stem.startswith("sweep")]
    for path in scenarios:
        rubric = load_scenario(path).spec.rubric
        assert rubric.missing_anchors() == []
        assert len({c.levels[5] for c in rubric.criteria}) == len(rubric.criteria)
    texts = {load_scenario(p).spec.rubric.criteria[0].levels[5] for p in scenarios}
    assert len(texts) == len(scenarios)  # written per scenario, not copied
    source = Path("scenarios/scalability-issues.yaml").read_text()
    stripped = tmp_path / "scenarios" / "no-anchors.yaml"
    stripped.parent.mkdir()
    (tmp_path / "agents").symlink_to(Path("agents").resolve())
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "levels:")
    del lines[start : start + 4]  # the first criterion's levels
    stripped.write_text("\n".join(lines).replace("id: scalability-issues", "id: no-anchors"))
    result = subprocess.run(
        [sys.executable, "-m", "interview_sim", "validate", str(stripped)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    first, *rest = result.stderr.strip().splitlines()
    assert first.startswith("error: ") and "rubric.criteria.0.levels (security-measures)" in first
    assert rest == ["error: 1 of 1 file(s) invalid"] and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------- probabilities


def test_the_expected_score_comes_from_the_score_tokens_probabilities() -> None:
    content = '{"score": 3, "evidence": ["x y z"], "rationale": "ok"}'
    at = content.index("3")
    completion = Completion(
        content=content,
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.0,
        top_logprobs=[
            TokenAlternatives(0, (("{", 0.0),)),
            TokenAlternatives(at, (("3", -0.7), (" 4", -1.6), ("2", -2.3), ("The", -2.5), ("9", -3.0))),
        ],
    )
    found, source = score_probabilities(completion, 1, 5)
    assert source == "token probabilities" and found is not None
    assert set(found.probabilities) == {1, 2, 3, 4, 5} and sum(found.probabilities.values()) == pytest.approx(1, abs=1e-3)
    assert found.probabilities[3] > found.probabilities[4] > found.probabilities[2] > 0 and found.probabilities[5] == 0
    assert 2.9 < found.expected < 3.5 and 0 < found.mass < 1  # "The" and "9" are not on the scale
    assert score_probabilities(None, 1, 5) == (None, "the backend returns no token probabilities")


@pytest.mark.anyio
async def test_expected_scores_count_in_the_overall_where_the_backend_returns_probabilities(runs_dir: Path) -> None:
    run_dir = await _run(runs_dir)
    evaluation = await evaluate_run(run_dir, evaluator_models=["probable:judge"])
    (judge,) = evaluation.judges
    assert judge.probabilities == "token probabilities"
    for grade in judge.criteria:
        assert grade.expected_score is not None and grade.probabilities is not None
        assert grade.expected_score > grade.score or grade.score == 5  # a quarter of the mass on the point above
    assert evaluation.overall == pytest.approx(sum(g.expected_score or 0 for g in judge.criteria) / len(IDS), abs=1e-3)
    assert evaluation.criteria["security-measures"].values == [judge.criteria[0].expected_score]


# ---------------------------------------------------------------------------------------------- several judges


@pytest.mark.anyio
async def test_three_judges_one_forced_to_fail_records_two_grades_and_one_failure(runs_dir: Path) -> None:
    run_dir = await _run(runs_dir)
    evaluation = await evaluate_run(run_dir, evaluator_models=["flaky:judge"], judges=3)
    assert evaluation.status == "ok" and evaluation.error is None
    assert [j.seed for j in evaluation.judges] == [1234, 1236]
    (failure,) = evaluation.failed_judges
    assert failure.seed == 1235 and "no valid answer after 3 attempts" in failure.error
    raw = [r for r in evaluation.raw_outputs if r.seed == 1235]
    assert len(raw) == 3 and all(r.error and r.content.startswith('{"score": "not') for r in raw)
    assert all(len(s.scores) == 2 for s in evaluation.criteria.values())
    assert any("2 of 3 judges graded" in n for n in evaluation.notes)
    (saved,) = load_evaluations(run_dir)
    assert saved.failed_judges == evaluation.failed_judges


def test_evaluate_cli_shows_the_judges_that_failed_beside_those_that_graded(runs_dir: Path) -> None:
    run_dir = asyncio.run(_run(runs_dir))
    table = runner.invoke(app, ["evaluate", str(run_dir), "--evaluator-model", "flaky:judge", "--judges", "3"])
    assert table.exit_code == 0, table.output
    assert "2 of 3 judges graded" in table.stdout and "judge failed (flaky:judge, seed 1235)" in table.stdout


@pytest.mark.anyio
async def test_when_every_judge_fails_the_evaluation_fails_on_record(runs_dir: Path) -> None:
    run_dir = await _run(runs_dir)
    with pytest.raises(EvaluationError, match="no valid answer"):
        await evaluate_run(run_dir, evaluator_models=["flaky:judge"], seed=1235)
    (failed,) = load_evaluations(run_dir)
    assert failed.status == "failed" and failed.overall is None and len(failed.failed_judges) == 1


# ---------------------------------------------------------------------------------------------- controls and checks


def test_the_injection_variants_are_the_weak_answers_plus_text_without_the_judge_words() -> None:
    weak = load_transcript(controls_dir() / "weak.json")
    for name in INJECTIONS[1:]:
        variant = load_transcript(controls_dir() / f"{name}.json")
        added = " ".join(v.content[len(w.content) :] for w, v in zip(weak.messages, variant.messages, strict=True))
        assert all(v.content.startswith(w.content) for w, v in zip(weak.messages, variant.messages, strict=True))
        assert added.strip() and not {w for w, _ in _stem_words(added)} & JUDGE_WORDS


@pytest.mark.anyio
async def test_the_control_judge_ranks_the_variants_at_or_below_weak_without_its_word_list(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scripted_backend, "JUDGE_WORDS", frozenset())
    overall = {}
    for name in ("weak", *INJECTIONS[1:]):
        save_transcript(runs_dir / name, load_transcript(controls_dir() / f"{name}.json"))
        # The judge alone (screen off): its own rules, not the screen's cap, must hold the variants at weak.
        overall[name] = (await evaluate_run(runs_dir / name, evaluator_models=["scripted:judge"], screen=False)).overall
    assert all(overall[name] == overall["weak"] for name in INJECTIONS[1:]), overall


@pytest.mark.anyio
async def test_a_judge_that_scores_by_position_fails_the_position_bias_check(runs_dir: Path) -> None:
    calibration = await calibrate(
        evaluator_models=["scripted:test-positional-judge"], runs_dir=runs_dir, mode="rubric", sizes=CONTROLS_ONLY
    )
    assert not calibration.passed and "position bias" in calibration.failed_checks
    assert calibration.figures["position_spearman"] == pytest.approx(1.0)
    assert calibration.figures["position_mean_abs_delta"] is not None and calibration.figures["position_mean_abs_delta"] > 0.5
    assert set(calibration.position_deltas) == set(IDS)


# ---------------------------------------------------------------------------------------------- the gate


@pytest.mark.anyio
async def test_every_evaluation_carries_its_judges_calibration_state(runs_dir: Path) -> None:
    run_dir = await _run(runs_dir)
    before = await evaluate_run(run_dir, evaluator_models=["scripted:judge"])
    assert before.calibration is not None and before.calibration.state == "not calibrated"
    assert before.calibration.summary == "judge not calibrated - this score is not evidence"

    passed = await calibrate(evaluator_models=["scripted:judge"], runs_dir=runs_dir, sizes=CONTROLS_ONLY)
    assert passed.passed
    index = (runs_dir / "_calibration" / gate.INDEX_FILE).read_text().splitlines()
    assert json.loads(index[-1])["key"] == {
        "judge": passed.judge_ids["scripted:judge"],
        "rubric_hash": RUBRIC.content_hash(),
        "prompt_version": passed.prompt_version,
        "mode": "criterion",
        "screen": f"v{SCREEN_VERSION}",
    }
    after = await evaluate_run(run_dir, evaluator_models=["scripted:judge"])
    assert after.calibration is not None and after.calibration.state == "passed"
    assert after.calibration.calibration_id == passed.calibration_id
    # The key holds the mode and the rubric: the same judge in rubric mode, or on another rubric, is not calibrated.
    other_mode = await evaluate_run(run_dir, evaluator_models=["scripted:judge"], mode="rubric")
    assert other_mode.calibration is not None and other_mode.calibration.state == "not calibrated"
    other_rubric = await evaluate_run(run_dir, evaluator_models=["scripted:judge"], scenario="corporate-taxation")
    assert other_rubric.calibration is not None and other_rubric.calibration.state == "not calibrated"

    failed = await calibrate(
        evaluator_models=["scripted:test-positional-judge"], runs_dir=runs_dir, mode="rubric", sizes=CONTROLS_ONLY
    )
    graded = await evaluate_run(run_dir, evaluator_models=["scripted:test-positional-judge"], mode="rubric")
    assert graded.calibration is not None and graded.calibration.state == "failed"
    assert graded.calibration.failed_checks == failed.failed_checks and "position bias" in graded.calibration.failed_checks
    assert graded.calibration.summary.startswith("judge failed calibration: ") and "this score is not evidence" in (
        graded.calibration.summary
    )


def test_evaluate_cli_shows_the_calibration_state_next_to_the_score(runs_dir: Path) -> None:
    args = ["run", "--interviewer-model", "scripted:default", "--candidate-model", "scripted:strong", "--runs-dir", str(runs_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "interview_sim", *args, "--evaluator-model", "scripted:judge"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    score_line = next(line for line in result.stdout.splitlines() if line.startswith("SCORE"))
    assert score_line == "SCORE 5.00 / 5 (judge not calibrated - this score is not evidence)"
    run_dir = next((runs_dir / "scalability-issues").iterdir())
    as_json = subprocess.run(
        [sys.executable, "-m", "interview_sim", "evaluate", str(run_dir), "--evaluator-model", "scripted:judge", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    data = json.loads(as_json.stdout)
    assert data["calibration"]["state"] == "not calibrated" and data["overall"] == 5.0


@pytest.mark.anyio
async def test_an_ollama_judge_asks_for_top_logprobs_and_gets_expected_scores(fake_ollama: FakeOllama) -> None:
    fake_ollama.add_model(DEFAULT_MODEL, context_length=4096)
    content = '{"score": 4, "evidence": ["x y z"], "rationale": "r"}'
    pieces = ['{"', "score", '":', " ", "4", ', "evidence": ["x y z"], "rationale": "r"}']
    logprobs = [{"token": t, "logprob": -0.1, "top_logprobs": [{"token": t, "logprob": -0.1}]} for t in pieces]
    logprobs[4]["top_logprobs"] = [{"token": "4", "logprob": -0.3}, {"token": "5", "logprob": -1.5}]
    fake_ollama.enqueue(content, extra={"logprobs": logprobs})
    model = create_model(f"ollama:{DEFAULT_MODEL}", ModelOptions(host=fake_ollama.url))
    await model.check_ready()
    messages = (ChatMessage("user", "grade"),)
    completion = await model.complete(CompletionRequest(messages=messages, max_tokens=64, top_logprobs=20))
    await model.aclose()
    assert fake_ollama.chat_requests[-1]["logprobs"] is True and fake_ollama.chat_requests[-1]["top_logprobs"] == 20
    found, source = score_probabilities(completion, 1, 5)
    assert source == "token probabilities" and found is not None
    assert set(k for k, p in found.probabilities.items() if p > 0) == {4, 5} and 4 < found.expected < 4.5


@pytest.mark.anyio
async def test_the_run_page_shows_the_calibration_state_beside_the_score(runs_dir: Path) -> None:
    from interview_sim.report import write_run_report

    run_dir = await _run(runs_dir, "scripted:strong")
    await evaluate_run(run_dir, evaluator_models=["scripted:judge"])
    html = write_run_report(run_dir).read_text(encoding="utf-8")
    score_fact = html[html.index('data-fact="score"') :]
    badge = 'data-calibration="not calibrated">judge not calibrated - this score is not evidence<'
    assert badge in score_fact[: score_fact.index("latest evaluation")]
    assert html.count('data-calibration="not calibrated"') == 2  # the header fact and the evaluation itself
