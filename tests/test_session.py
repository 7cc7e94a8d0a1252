"""The session engine on scripted models, through the real registry and the real AutoGen team."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from interview_sim.errors import ModelCallError
from interview_sim.models import ChatModel, Completion, CompletionRequest, ModelOptions, create_model
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, load_transcript, read_events
from interview_sim.session import run_scenario

pytestmark = pytest.mark.anyio
SCRIPTED = {"interviewer_model": "scripted:default", "candidate_model": "scripted:default"}


async def test_scripted_session_follows_the_script_and_records_everything(runs_dir: Path) -> None:
    result = await run_scenario("scalability-issues", runs_dir=runs_dir, **SCRIPTED)
    t = result.transcript
    assert result.run_dir.parent == runs_dir / "scalability-issues"
    assert result.run_dir.name == t.run_id

    raw = json.loads((result.run_dir / TRANSCRIPT_FILE).read_text())
    assert next(iter(raw)) == "schema_version"
    assert load_transcript(result.run_dir) == t

    # The opening line is the scenario's template; speakers alternate; the interviewer walks the stages.
    assert t.messages[0].source == "template" and t.messages[0].content.startswith("OpenCorpo-Assistant, whiteboard")
    assert [m.role for m in t.messages] == ["interviewer", "candidate"] * (len(t.messages) // 2) + ["interviewer"] * (
        len(t.messages) % 2
    )
    stages = [m.stage for m in t.messages if m.role == "interviewer"]
    assert stages == ["open", "pose_problem", "probe", "probe", "feedback", "wrap_up"]
    # The scripted interviewer repeats the time left it was told, and ends with the end marker.
    assert "You have 25 minutes left." in t.messages[2].content
    assert t.stop_reason == "end_marker" and t.messages[-1].content.endswith("END OF INTERVIEW")
    # The simulated clock: 1 minute per interviewer turn, 4 per candidate turn.
    assert [m.clock.elapsed_minutes for m in t.messages if m.clock][:4] == [1, 5, 6, 10]
    assert t.simulated_minutes_used == 26

    # Usage: one call per model-written message, per role and per model, and the AutoGen 0.2 cost block.
    assert len(t.calls) == len(t.messages) - 1
    assert all(m.usage and m.usage.completion_tokens > 0 for m in t.messages[1:])
    view = t.usage.including_cached
    assert set(view.by_role) == {"interviewer", "candidate"}
    assert view.total.prompt_tokens == sum(c.prompt_tokens for c in t.calls)
    assert view.by_role["candidate"].completion_tokens == sum(c.completion_tokens for c in t.calls if c.role == "candidate")
    assert t.cost["usage_including_cached_inference"] == {
        "total_cost": 0,
        "scripted-default": {
            "cost": 0,
            "prompt_tokens": view.total.prompt_tokens,
            "completion_tokens": view.total.completion_tokens,
            "total_tokens": view.total.total_tokens,
        },
    }
    assert t.cost["usage_excluding_cached_inference"] == t.cost["usage_including_cached_inference"]

    events = read_events(result.run_dir)
    kinds = [e.type for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("message") == len(t.messages) and kinds.count("model_call") == len(t.calls)


async def test_prompt_tokens_are_the_prompts_the_model_really_got(runs_dir: Path) -> None:
    """The candidate's prompt grows turn by turn: system prompt + every message so far."""
    t = (await run_scenario("scalability-issues", runs_dir=runs_dir, **SCRIPTED)).transcript
    candidate_prompts = [c.prompt_tokens for c in t.calls if c.role == "candidate"]
    assert candidate_prompts == sorted(candidate_prompts) and len(set(candidate_prompts)) == len(candidate_prompts)


async def test_max_turns_and_time_budget_stop_the_session(runs_dir: Path, scenario_path: Path, tmp_path: Path) -> None:
    t = (await run_scenario("scalability-issues", runs_dir=runs_dir, max_turns=2, **SCRIPTED)).transcript
    assert (t.stop_reason, len(t.messages)) == ("max_turns", 2)

    data = yaml.safe_load(scenario_path.read_text())
    data.update(time_budget_minutes=6)
    data["stages"] = [s for s in data["stages"] if s["kind"] != "wrap_up"]  # nobody asks for the end marker
    data["agents"] = {role: str((scenario_path.parent / rel).resolve()) for role, rel in data["agents"].items()}
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(data))
    t = (await run_scenario(short, runs_dir=runs_dir, **SCRIPTED)).transcript
    assert t.stop_reason == "time_budget"
    assert t.messages[-1].clock is not None and t.messages[-1].clock.remaining_minutes == 0


async def test_same_seed_same_session(runs_dir: Path) -> None:
    a = (await run_scenario("scalability-issues", runs_dir=runs_dir, seed=3, **SCRIPTED)).transcript
    b = (await run_scenario("scalability-issues", runs_dir=runs_dir, seed=3, **SCRIPTED)).transcript
    assert [m.content for m in a.messages] == [m.content for m in b.messages]
    assert a.run_id != b.run_id


async def test_long_session_is_trimmed_to_the_context_window_not_crashed(runs_dir: Path) -> None:
    def small_context(ref: str, options: ModelOptions) -> ChatModel:
        return create_model(ref, ModelOptions(role=options.role, seed=options.seed, context_length=260))

    result = await run_scenario("scalability-issues", runs_dir=runs_dir, model_factory=small_context, **SCRIPTED)
    calls = result.transcript.calls
    assert any(c.trimmed_messages > 0 for c in calls)
    assert all(c.prompt_tokens + c.completion_tokens <= 260 for c in calls)
    assert result.transcript.stop_reason == "end_marker"


class _FailsOnThirdCall(ChatModel):
    def __init__(self, inner: ChatModel) -> None:
        super().__init__(inner.ref, inner.name, inner.context_length)
        self.inner = inner
        self.count = 0

    def count_tokens(self, messages: tuple[object, ...] | list[object]) -> int:  # type: ignore[override]
        return self.inner.count_tokens(messages)  # type: ignore[arg-type]

    async def complete(self, request: CompletionRequest) -> Completion:
        self.count += 1
        if self.count == 3:
            raise ModelCallError("scripted:default failed after 4 attempts: ConnectError: connection reset")
        return await self.inner.complete(request)


async def test_a_failed_model_call_keeps_what_was_recorded(runs_dir: Path) -> None:
    def flaky_candidate(ref: str, options: ModelOptions) -> ChatModel:
        model = create_model(ref, options)
        return _FailsOnThirdCall(model) if options.role == "candidate" else model

    with pytest.raises(ModelCallError, match="connection reset.*run recorded in"):
        await run_scenario("scalability-issues", runs_dir=runs_dir, model_factory=flaky_candidate, **SCRIPTED)
    (run_dir,) = (runs_dir / "scalability-issues").iterdir()
    t = load_transcript(run_dir)
    assert t.stop_reason == "error" and "connection reset" in (t.error or "")
    assert len(t.messages) == 5  # opening, C, I, C, I: the sixth (candidate's third) failed
    events = read_events(run_dir)
    assert [e.type for e in events].count("model_error") == 1
    assert (run_dir / EVENTS_FILE).read_text().endswith("\n")


@pytest.mark.anyio
async def test_a_record_writes_what_it_reads_back_non_finite_floats_included(runs_dir: Path) -> None:
    """Records are serialized by pydantic (fast); a NaN or an infinity must come back as itself, as it did with
    json.dumps, not as null (which would make the record unreadable)."""
    import math

    from interview_sim.record import save_transcript

    result = await run_scenario("scalability-issues", max_turns=3, runs_dir=runs_dir)
    transcript = load_transcript(result.run_dir)
    odd = transcript.calls[0].model_copy(update={"latency_s": math.inf, "generation_s": math.nan})
    transcript.calls[0] = odd
    save_transcript(result.run_dir, transcript)
    text = (result.run_dir / TRANSCRIPT_FILE).read_text()
    assert text.startswith('{\n  "schema_version"')  # still indented for people
    again = load_transcript(result.run_dir)
    assert again.calls[0].latency_s == math.inf and again.calls[0].generation_s is not None
    assert math.isnan(again.calls[0].generation_s)
