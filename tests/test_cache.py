"""The disk cache: identical requests answered from disk, marked cached, and counted honestly."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.compare import compare_models
from interview_sim.models import ChatMessage, ChatModel, Completion, CompletionRequest, ModelOptions, create_model
from interview_sim.models.cache import CachedModel, ModelWrapper, cached_factory, open_store, request_key
from interview_sim.record import load_transcript

runner = CliRunner()


class _Backend:
    """A model factory that counts the calls reaching the real (scripted) backend."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, ref: str, options: ModelOptions) -> ChatModel:
        backend = self

        class Counted(ModelWrapper):
            async def complete(self, request: CompletionRequest) -> Completion:
                backend.calls += 1
                return await self.inner.complete(request)

        return Counted(create_model(ref, options))


REQUEST = CompletionRequest(
    messages=(ChatMessage("system", "You are a candidate."), ChatMessage("user", "Scale the API.")),
    max_tokens=64,
    temperature=0.7,
    seed=3,
    repeat_penalty=1.1,
)


@pytest.mark.anyio
async def test_a_hit_is_the_original_completion_marked_cached(tmp_path: Path) -> None:
    backend = _Backend()
    factory = cached_factory(backend, tmp_path / "cache")
    model = factory("scripted:strong", ModelOptions(role="candidate", seed=3))
    first = await model.complete(REQUEST)
    second = await model.complete(REQUEST)
    assert backend.calls == 1
    assert not first.cached and second.cached
    assert (second.content, second.prompt_tokens, second.completion_tokens, second.generation_s) == (
        first.content,
        first.prompt_tokens,
        first.completion_tokens,
        first.generation_s,
    )
    assert second.retries == [] and "cache_key" in second.metadata
    # A new model object over the same directory (another cell, another process) hits too.
    again = factory("scripted:strong", ModelOptions(role="candidate", seed=3))
    assert (await again.complete(REQUEST)).cached and backend.calls == 1
    assert isinstance(model, CachedModel) and (model.hits, model.misses) == (1, 1)


@pytest.mark.parametrize(
    "change",
    [
        {"max_tokens": 65},
        {"temperature": 0.8},
        {"seed": 4},
        {"repeat_penalty": 1.0},
        {"json_schema": {"type": "object"}},
        {"messages": (ChatMessage("system", "You are a candidate."), ChatMessage("user", "Scale the database."))},
    ],
)
def test_every_option_that_changes_the_answer_changes_the_key(change: dict[str, object]) -> None:
    model = create_model("scripted:strong", ModelOptions(role="candidate"))
    base = request_key(model, REQUEST, role="candidate", default_seed=None)
    assert request_key(model, dataclasses.replace(REQUEST, **change), role="candidate", default_seed=None) != base  # type: ignore[arg-type]


def test_the_model_and_role_are_part_of_the_key() -> None:
    strong = create_model("scripted:strong", ModelOptions(role="candidate"))
    weak = create_model("scripted:weak", ModelOptions(role="candidate"))
    key = request_key(strong, REQUEST, role="candidate", default_seed=None)
    assert request_key(weak, REQUEST, role="candidate", default_seed=None) != key
    assert request_key(strong, REQUEST, role="interviewer", default_seed=None) != key
    unseeded = dataclasses.replace(REQUEST, seed=None)
    assert request_key(strong, unseeded, role="candidate", default_seed=1) != request_key(
        strong, unseeded, role="candidate", default_seed=2
    )


@pytest.mark.anyio
async def test_a_second_identical_compare_with_cache_makes_no_model_call(runs_dir: Path) -> None:
    kwargs = {"repeats": 2, "fixed_model": "scripted:default", "evaluator_model": "scripted:judge", "runs_dir": runs_dir}
    models = ["scripted:strong", "scripted:weak"]
    cold = _Backend()
    first = await compare_models("scalability-issues", models, cache=True, model_factory=cold, **kwargs)  # type: ignore[arg-type]
    assert first.last_invocation is not None
    assert cold.calls == first.last_invocation.model_calls > 0 and first.last_invocation.cached_calls == 0

    warm = _Backend()
    second = await compare_models("scalability-issues", models, cache=True, fresh=True, model_factory=warm, **kwargs)  # type: ignore[arg-type]
    assert warm.calls == 0
    assert second.last_invocation is not None
    assert (second.last_invocation.model_calls, second.last_invocation.cached_calls) == (0, cold.calls)
    assert second.last_invocation.cells_run == 4 and second.last_invocation.pairs_run == 2

    # Same answers, same figures; the new runs' ledgers count every call as cached only.
    assert [r.model_dump() for r in second.leaderboard] == [r.model_dump() for r in first.leaderboard]
    for old, new in zip(first.cells, second.cells, strict=True):
        assert new.run_dir != old.run_dir
        a, b = load_transcript(runs_dir / str(old.run_dir)), load_transcript(runs_dir / str(new.run_dir))
        assert [m.content for m in b.messages] == [m.content for m in a.messages]
        assert all(call.cached for call in b.calls) and not any(call.cached for call in a.calls)
        assert b.usage.excluding_cached.total.calls == 0
        session_calls = [c for c in b.calls if c.role != "evaluator"]
        assert b.usage.including_cached.by_role["candidate"] == a.usage.including_cached.by_role["candidate"]
        assert len(session_calls) == len(b.messages) - 1
        assert b.cost["usage_excluding_cached_inference"] == {"total_cost": 0}


def test_the_cli_shows_a_cached_compare_made_no_model_call(runs_dir: Path) -> None:
    args = [
        "compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", "--repeats", "3",
        "--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir), "--cache",
    ]  # fmt: skip
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    calls = json.loads(first.stdout)["last_invocation"]["model_calls"]
    second = runner.invoke(app, [*args, "--fresh"])
    assert second.exit_code == 0, second.output
    assert f"model calls: 0, cached: {calls}" in second.stdout
    assert (runs_dir / ".model-cache").is_dir()


def test_run_with_cache_answers_the_second_run_from_disk(runs_dir: Path) -> None:
    args = [
        "run",
        "scalability-issues",
        "--interviewer-model",
        "scripted:default",
        "--candidate-model",
        "scripted:strong",
        "--no-evaluate",
    ]
    first = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--cache", "--json"])
    second = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--cache", "--json"])
    assert first.exit_code == second.exit_code == 0, second.output
    a = load_transcript(json.loads(first.stdout)["run_dir"])
    b = load_transcript(json.loads(second.stdout)["run_dir"])
    assert not any(c.cached for c in a.calls) and all(c.cached for c in b.calls)
    assert b.usage.excluding_cached.total.calls == 0 and b.usage.including_cached.total == a.usage.including_cached.total


def test_the_store_is_shared_per_directory(tmp_path: Path) -> None:
    assert open_store((tmp_path / "c").resolve()) is open_store((tmp_path / "c").resolve())
