"""Greedy decoding under a grammar, grammar consulted only when the likeliest token breaks it (models/greedy_grammar.py):
the same tokens as llama-cpp-python's own sampler chain, on real models, through a whole grading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from interview_sim.grading.evaluate import evaluate_run
from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model, greedy_grammar
from interview_sim.session.run import run_scenario

pytestmark = [pytest.mark.slow]


class _Counting:
    """Counts the positions the fast sampler decided, and how many of them needed the whole vocabulary."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.positions = 0
        self.rejected = 0
        sample, allowed = greedy_grammar.GreedyGrammarSampler.sample, greedy_grammar.GreedyGrammarSampler._allowed_argmax

        def counted_sample(sampler: greedy_grammar.GreedyGrammarSampler, ctx: Any, idx: int = -1) -> int:
            self.positions += 1
            return sample(sampler, ctx, idx)

        def counted_allowed(sampler: greedy_grammar.GreedyGrammarSampler, logits: Any) -> int:
            self.rejected += 1
            return allowed(sampler, logits)

        monkeypatch.setattr(greedy_grammar.GreedyGrammarSampler, "sample", counted_sample)
        monkeypatch.setattr(greedy_grammar.GreedyGrammarSampler, "_allowed_argmax", counted_allowed)


async def _complete(ref: str, request: CompletionRequest) -> Any:
    model = create_model(ref, ModelOptions(seed=3))
    try:
        return await model.complete(request)
    finally:
        await model.aclose()


# A grammar the model's likeliest first token breaks ("{" or text, never `verdict:`), so both paths run.
_SCHEMA = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["scale out the web tier", "add a read replica", "cache hot keys"]},
        "score": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
    },
    "required": ["verdict", "score"],
}
_ASK = (
    ChatMessage("system", "You answer with JSON only."),
    ChatMessage("user", "Our API's p99 latency tripled at peak; reads dominate. What first, and how sure are you (1-5)?"),
)


@pytest.mark.anyio
@pytest.mark.parametrize("ref", ["llamacpp:smollm2-135m", "llamacpp:qwen2.5-coder-1.5b"])
async def test_a_constrained_greedy_call_gives_the_same_tokens_and_probabilities_both_ways(
    ref: str, monkeypatch: pytest.MonkeyPatch, smollm2_available: None
) -> None:
    request = CompletionRequest(messages=_ASK, max_tokens=60, temperature=0.0, seed=3, json_schema=_SCHEMA, top_logprobs=5)
    counted = _Counting(monkeypatch)
    fast = await _complete(ref, request)
    monkeypatch.setenv(greedy_grammar.FULL_GRAMMAR_ENV, "1")
    chain = await _complete(ref, request)
    assert json.loads(fast.content)["verdict"] in _SCHEMA["properties"]["verdict"]["enum"]  # type: ignore[index]
    assert fast.content == chain.content and fast.completion_tokens == chain.completion_tokens
    assert fast.top_logprobs == chain.top_logprobs
    # The fast path decided every position of the first call (and the end-of-text token after them), and both of
    # its ways ran: the likeliest token allowed, and the whole vocabulary filtered where it was not.
    assert fast.finish_reason == "stop" and counted.positions == fast.completion_tokens + 1
    assert 0 < counted.rejected < counted.positions


@pytest.mark.anyio
async def test_a_grading_by_the_default_judge_is_the_same_with_the_fast_sampler(
    runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default judge (Qwen2.5-Coder-1.5B) grades one short run twice: the fast sampler, then the sampler chain."""
    result = await run_scenario(
        "scalability-issues",
        interviewer_model="scripted:default",
        candidate_model="scripted:strong",
        max_turns=2,
        runs_dir=runs_dir,
    )
    twin = tmp_path / "twin"
    twin.mkdir()
    shutil.copy(result.run_dir / "transcript.json", twin / "transcript.json")
    counted = _Counting(monkeypatch)
    fast = await evaluate_run(result.run_dir, evaluator_models=["llamacpp:qwen2.5-coder-1.5b"])
    assert counted.positions > 100
    monkeypatch.setenv(greedy_grammar.FULL_GRAMMAR_ENV, "1")
    chain = await evaluate_run(twin, evaluator_models=["llamacpp:qwen2.5-coder-1.5b"])
    assert fast.status == chain.status == "ok"
    for a, b in zip(fast.judges[0].criteria, chain.judges[0].criteria, strict=True):
        assert (a.criterion, a.score, a.evidence, a.rationale) == (b.criterion, b.score, b.evidence, b.rationale)
        assert a.expected_score == pytest.approx(b.expected_score, abs=0.02)
    assert fast.overall == pytest.approx(chain.overall, abs=0.02)
    assert [r.content for r in fast.raw_outputs] == [r.content for r in chain.raw_outputs]
