"""Replay: playback data and pacing, the `replay` command, offline re-execution (`--rerun`), schema evolution."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.errors import ReplayError
from interview_sim.grading.evaluate import evaluate_run
from interview_sim.models.scripted import ScriptedModel
from interview_sim.record import SCHEMA_VERSION, TRANSCRIPT_FILE, Transcript, load_transcript, save_transcript
from interview_sim.replay import UNKNOWN_LATENCY_S, pacing, replay_run, rerun
from interview_sim.session import run_scenario

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
FIXTURES = ROOT / "tests" / "fixtures" / "autogen02"
SCRIPTED = {"interviewer_model": "scripted:default", "candidate_model": "scripted:default"}
runner = CliRunner()


@pytest.fixture
def scripted_run(runs_dir: Path) -> Path:
    return asyncio.run(run_scenario("scalability-issues", runs_dir=runs_dir, seed=5, **SCRIPTED)).run_dir


def _compared(t: Transcript) -> list[tuple[object, ...]]:
    return [(m.role, m.agent, m.content, m.stage, m.clock) for m in t.messages]


def _no_model_may_be_called(monkeypatch: pytest.MonkeyPatch) -> None:
    async def refuse(self: ScriptedModel, request: object) -> None:
        raise AssertionError(f"{self.ref} was called during a replay")

    monkeypatch.setattr(ScriptedModel, "complete", refuse)


# ---------------------------------------------------------------------------------------------- playback


def test_replay_shows_every_turn_with_speaker_model_tokens_and_clock(scripted_run: Path) -> None:
    t = load_transcript(scripted_run)
    replay = replay_run(scripted_run)
    assert replay.total_turns == len(t.messages) == len(replay.turns) == 11
    opening = replay.turns[0]
    assert (opening.turn, opening.source, opening.model, opening.completion_tokens) == (1, "template", None, None)
    for turn, message in zip(replay.turns, t.messages, strict=True):
        assert (turn.speaker, turn.role, turn.model, turn.stage) == (message.agent, message.role, message.model, message.stage)
        assert turn.completion_tokens == (message.usage.completion_tokens if message.usage else None)
        assert message.clock is not None and turn.elapsed_minutes == message.clock.elapsed_minutes
    assert [turn.elapsed_minutes for turn in replay.turns[:4]] == [1, 5, 6, 10]
    assert replay.usage == t.cost

    later = replay_run(scripted_run, turn=4)
    assert [turn.turn for turn in later.turns] == list(range(4, 12))
    for bad in (0, 12):
        with pytest.raises(ReplayError, match="outside the run: it has 11 turns"):
            replay_run(scripted_run, turn=bad)


def test_the_header_names_the_judge_that_graded_not_the_agent_files(scripted_run: Path) -> None:
    """A judge given on the command line is not in the run's evaluator snapshot (the agent file's, Qwen): once the
    run is graded, the header names the judges whose calls are in the transcript."""
    assert replay_run(scripted_run).models["evaluator"] == "llamacpp:qwen2.5-coder-1.5b"  # ungraded: the agent file's
    asyncio.run(evaluate_run(scripted_run, evaluator_models=["scripted:judge"]))
    assert replay_run(scripted_run).models == {
        "interviewer": "scripted-default",
        "candidate": "scripted-default",
        "evaluator": "scripted-judge",
    }


def _with_latencies(run_dir: Path) -> list[float]:
    """Give the model-written messages recorded latencies (scripted models take no time)."""
    t = load_transcript(run_dir)
    for m in t.messages[1:]:
        m.latency_s = round(0.5 * m.index, 3)
    save_transcript(run_dir, t)
    return [m.latency_s or 0.0 for m in t.messages]


def test_pacing_scales_the_recorded_latencies(scripted_run: Path) -> None:
    latencies = _with_latencies(scripted_run)
    turns = replay_run(scripted_run).turns
    assert pacing(turns, speed=1) == latencies
    assert pacing(turns) == [round(x / 10, 6) for x in latencies]  # the default speed is fast
    assert pacing(turns, speed=4) == [round(x / 4, 6) for x in latencies]
    assert pacing(turns, speed=4, instant=True) == [0.0] * len(turns)
    assert pacing(turns)[0] == 0  # the opening line is template text: nothing to wait for
    imported = turns[1].model_copy(update={"source": "imported", "latency_s": None})
    assert pacing([imported], speed=2) == [UNKNOWN_LATENCY_S / 2]
    with pytest.raises(ReplayError, match="--speed must be positive"):
        pacing(turns, speed=0)


def test_replay_command_paces_the_turns(scripted_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    latencies = _with_latencies(scripted_run)
    slept: list[float] = []
    monkeypatch.setattr("interview_sim.cli.replay._sleep", slept.append)

    result = runner.invoke(app, ["replay", str(scripted_run)])
    assert result.exit_code == 0, result.output
    assert slept == [round(x / 10, 6) for x in latencies if x > 0]
    out = result.stdout
    assert "turn 1 Interviewer (interviewer, opening line)" in out
    assert "OpenCorpo-Assistant (candidate, scripted-default)" in out and "clock 5/30 min" in out
    assert out.index("turn 2 ") < out.index("turn 11 ") and "stopped: end_marker after 11 turns" in out

    slept.clear()
    result = runner.invoke(app, ["replay", str(scripted_run), "--speed", "2", "--turn", "10"])
    assert result.exit_code == 0, result.output
    assert slept == [latencies[9] / 2, latencies[10] / 2]
    assert "turn 9 " not in result.stdout and "starting at turn 10 of 11" in result.stdout

    slept.clear()
    assert runner.invoke(app, ["replay", str(scripted_run), "--instant"]).exit_code == 0
    assert slept == []


def test_replay_json_is_a_machine_readable_dump(scripted_run: Path) -> None:
    result = runner.invoke(app, ["replay", str(scripted_run), "--json", "--turn", "3"])
    assert result.exit_code == 0, result.output
    dump = json.loads(result.stdout)
    t = load_transcript(scripted_run)
    assert dump["run_id"] == t.run_id and dump["total_turns"] == 11 and dump["stop_reason"] == "end_marker"
    assert [turn["turn"] for turn in dump["turns"]] == list(range(3, 12))
    assert dump["turns"][0]["content"] == t.messages[2].content
    assert dump["turns"][0]["completion_tokens"] == t.calls[1].completion_tokens
    assert dump["usage"] == t.cost


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nowhere"], "error: nowhere: no run there (no transcript.json)"),
        (["RUN", "--turn", "40"], "error: --turn 40 is outside the run: it has 11 turns (1..11)"),
        (["RUN", "--speed", "-1"], "error: --speed must be positive, got -1"),
    ],
)
def test_replay_user_errors_are_one_line(scripted_run: Path, args: list[str], message: str) -> None:
    args = [str(scripted_run) if a == "RUN" else a for a in args]
    result = runner.invoke(app, ["replay", *args])
    assert result.exit_code == 2
    assert result.stderr.strip() == message
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------------------------------- rerun


@pytest.mark.anyio
async def test_rerun_re_executes_a_scripted_session_offline(scripted_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model_may_be_called(monkeypatch)
    original = load_transcript(scripted_run)
    result = await rerun(scripted_run)

    assert result.identical and result.first_difference is None
    new_dir = Path(result.run_dir)
    assert new_dir != scripted_run and new_dir.parent == scripted_run.parent  # beside the original by default
    copy = load_transcript(new_dir)
    assert copy.replay_of == original.run_id and copy.run_id != original.run_id
    assert _compared(copy) == _compared(original)
    assert copy.stop_reason == original.stop_reason == "end_marker"
    assert copy.agents["candidate"]["model_name"] == original.agents["candidate"]["model_name"]

    # Every call was answered from the recording, and says so; replayed calls count as cached.
    assert all(c.ref == f"replay:{scripted_run}" and c.cached and c.metadata["replayed"] for c in copy.calls)
    assert [c.metadata["original_call"] for c in copy.calls] == [c.index for c in original.calls]
    assert copy.usage.including_cached.by_model == {
        model: u.model_copy(update={"generation_s": 0.0}) for model, u in original.usage.including_cached.by_model.items()
    }
    assert copy.usage.excluding_cached.total.calls == 0
    assert copy.cost["usage_including_cached_inference"] == original.cost["usage_including_cached_inference"]
    # Listed as what it is: a replayed copy, not a measured run.
    from interview_sim.catalog import RunFilter, list_runs

    sources = {r.run_id: r.source for r in list_runs(scripted_run.parent.parent, RunFilter())}
    assert (sources[original.run_id], sources[copy.run_id]) == ("measured", "replayed")


def test_rerun_from_the_cli(scripted_run: Path, runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model_may_be_called(monkeypatch)
    elsewhere = tmp_path / "reruns"
    result = runner.invoke(app, ["replay", str(scripted_run), "--rerun", "--runs-dir", str(elsewhere), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["identical"] is True and summary["messages_rerun"] == summary["messages_original"] == 11
    assert Path(summary["run_dir"]).parent == elsewhere / "scalability-issues"

    result = runner.invoke(app, ["replay", str(scripted_run), "--rerun"])
    assert result.exit_code == 0, result.output
    assert "identical: all 11 messages match" in result.stdout
    assert "OpenCorpo-Assistant (candidate, scripted-default)" in result.stdout  # the rerun plays live


def _tamper_stage(t: Transcript) -> None:
    t.messages[4].stage = "feedback"


def _tamper_clock_rule(t: Transcript) -> None:
    t.scenario["minutes_per_turn"] = {"interviewer": 1, "candidate": 3}


def _drop_last_candidate_call(t: Transcript) -> None:
    last = max(c.index for c in t.calls if c.role == "candidate")
    t.calls = [c for c in t.calls if c.index != last]


@pytest.mark.parametrize(
    ("tamper", "turn", "field", "original", "rerun_value"),
    [
        (_tamper_stage, 5, "stage", "feedback", "probe"),
        (
            _tamper_clock_rule,
            2,
            "clock",
            {"elapsed_minutes": 5.0, "remaining_minutes": 25.0},
            {"elapsed_minutes": 4.0, "remaining_minutes": 26.0},
        ),
        (_drop_last_candidate_call, 10, "missing", None, None),
    ],
)
def test_rerun_reports_the_first_divergence_and_exits_non_zero(
    scripted_run: Path,
    tamper: Callable[[Transcript], None],
    turn: int,
    field: str,
    original: object,
    rerun_value: object,
) -> None:
    t = load_transcript(scripted_run)
    tamper(t)
    save_transcript(scripted_run, t)

    result = runner.invoke(app, ["replay", str(scripted_run), "--rerun", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    difference = summary["first_difference"]
    assert summary["identical"] is False
    assert (difference["turn"], difference["field"]) == (turn, field)
    if original is not None:
        assert difference["original"] == original
    if rerun_value is not None:
        assert difference["rerun"] == rerun_value
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: rerun of {t.run_id} diverged at turn {turn} ({field})")
    if field == "missing":
        # The session asked for an answer that was never recorded: it stops, recorded, on that error.
        assert "recorded only 4" in summary["error"] and summary["stop_reason_rerun"] == "error"
        assert summary["messages_rerun"] == 9


def test_rerun_ignores_grading_calls_appended_to_the_run(scripted_run: Path) -> None:
    """evaluate appends its judges' calls (role evaluator, evaluation_id set) to the transcript: not session answers."""
    t = load_transcript(scripted_run)
    judge = t.calls[0].model_copy(
        update={"index": len(t.calls), "role": "evaluator", "agent": "Evaluator", "evaluation_id": "e1", "message_index": None}
    )
    t.calls.append(judge)
    save_transcript(scripted_run, t)
    result = runner.invoke(app, ["replay", str(scripted_run), "--rerun", "--json"])
    assert result.exit_code == 0, result.output
    copy = load_transcript(json.loads(result.stdout)["run_dir"])
    assert {c.role for c in copy.calls} == {"interviewer", "candidate"} and len(copy.calls) == len(t.calls) - 1


def test_rerun_of_a_loose_transcript_goes_to_runs(scripted_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loose = tmp_path / "copies" / "saved.json"
    loose.parent.mkdir()
    shutil.copy(scripted_run / TRANSCRIPT_FILE, loose)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["replay", str(loose), "--rerun", "--json"])
    assert result.exit_code == 0, result.output
    assert Path(json.loads(result.stdout)["run_dir"]).parent == Path("runs") / "scalability-issues"


def test_a_replay_model_plays_one_side_of_a_recorded_run(scripted_run: Path, runs_dir: Path) -> None:
    """`replay:<run folder>` through the registry: the recorded candidate answers a live interviewer."""
    original = load_transcript(scripted_run)
    args = ["run", "scalability-issues", "--seed", "5", "--runs-dir", str(runs_dir / "again"), "--no-evaluate", "--json"]
    result = runner.invoke(app, [*args, "--interviewer-model", "scripted:default", "--candidate-model", f"replay:{scripted_run}"])
    assert result.exit_code == 0, result.output
    copy = load_transcript(json.loads(result.stdout)["run_dir"])
    assert [m.content for m in copy.messages if m.role == "candidate"] == [
        m.content for m in original.messages if m.role == "candidate"
    ]
    assert {c.ref for c in copy.calls if c.role == "candidate"} == {f"replay:{scripted_run}"}
    assert all(c.cached for c in copy.calls if c.role == "candidate")
    assert not any(c.cached for c in copy.calls if c.role == "interviewer")

    result = runner.invoke(app, [*args, "--candidate-model", "replay:/no/such/run"])
    assert result.exit_code == 2 and result.stderr.strip() == "error: /no/such/run: no run there (no transcript.json)"


def test_rerun_refuses_an_imported_run(runs_dir: Path) -> None:
    from interview_sim.autogen02 import import_transcripts

    (record,) = import_transcripts([FIXTURES / "misc" / "no_opening_line.json"], runs_dir=runs_dir).created
    result = runner.invoke(app, ["replay", record.run_dir, "--rerun"])
    assert result.exit_code == 2
    assert "was imported (autogen02-json): it was not produced by this session engine" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.usefixtures("smollm2_available")
def test_a_real_embedded_model_session_re_executes_offline_with_identical_messages(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    smol = ["--interviewer-model", "llamacpp:smollm2-135m", "--candidate-model", "llamacpp:smollm2-135m"]
    args = ["run", "scalability-issues", *smol, "--max-turns", "3", "--no-evaluate", "--runs-dir", str(runs_dir), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    original_dir = Path(json.loads(result.stdout)["run_dir"])
    original = load_transcript(original_dir)
    assert [c.ref for c in original.calls] == ["llamacpp:smollm2-135m"] * 2
    assert all(c.generation_s and c.generation_s > 0 for c in original.calls)  # the real model really ran

    from interview_sim.models.llamacpp import LlamaCppModel

    def refuse(self: LlamaCppModel) -> None:
        raise AssertionError("the rerun loaded the model")

    monkeypatch.setattr(LlamaCppModel, "_load", refuse)
    result = runner.invoke(app, ["replay", str(original_dir), "--rerun", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["identical"] is True and summary["messages_rerun"] == 3
    copy = load_transcript(summary["run_dir"])
    assert _compared(copy) == _compared(original)
    assert copy.replay_of == original.run_id
    assert copy.cost["usage_including_cached_inference"] == original.cost["usage_including_cached_inference"]
    assert {c.model for c in copy.calls} == {c.model for c in original.calls}


# ---------------------------------------------------------------------------------------------- schema evolution


def _goldens() -> list[Path]:
    return sorted(GOLDEN.glob("transcript-v*.json"))


def test_there_is_a_golden_transcript_for_every_schema_version() -> None:
    versions = {int(p.stem.split("-v")[1]) for p in _goldens()}
    assert versions == set(range(1, SCHEMA_VERSION + 1))


@pytest.mark.parametrize("golden", _goldens(), ids=lambda p: p.stem)
def test_golden_transcripts_load_upgrade_and_replay(golden: Path, tmp_path: Path) -> None:
    raw = json.loads(golden.read_text())
    assert raw["schema_version"] == int(golden.stem.split("-v")[1])
    t = load_transcript(golden)
    assert t.schema_version == SCHEMA_VERSION
    assert len(t.messages) == len(raw["messages"]) and t.messages[0].content == raw["messages"][0]["content"]
    assert t.cost == raw["cost"]
    # Saved again, it is the current version and loads to the same transcript.
    save_transcript(tmp_path, t)
    assert json.loads((tmp_path / TRANSCRIPT_FILE).read_text())["schema_version"] == SCHEMA_VERSION
    assert load_transcript(tmp_path) == t
    assert replay_run(golden).total_turns == len(raw["messages"])


def test_a_version_1_run_still_re_executes_identically(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_model_may_be_called(monkeypatch)
    raw = json.loads((GOLDEN / "transcript-v1.json").read_text())
    run_dir = runs_dir / raw["scenario_id"] / raw["run_id"]
    run_dir.mkdir(parents=True)
    shutil.copy(GOLDEN / "transcript-v1.json", run_dir / TRANSCRIPT_FILE)
    result = runner.invoke(app, ["replay", str(run_dir), "--rerun", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["identical"] is True


def test_a_newer_schema_version_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = json.loads((GOLDEN / f"transcript-v{SCHEMA_VERSION}.json").read_text())
    raw["schema_version"] = SCHEMA_VERSION + 1
    (tmp_path / TRANSCRIPT_FILE).write_text(json.dumps(raw))
    for command in (["replay", str(tmp_path)], ["export", str(tmp_path)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr.strip().endswith(
            f"schema_version {SCHEMA_VERSION + 1} is newer than this interview-sim understands ({SCHEMA_VERSION}):"
            " upgrade interview-sim"
        )
        assert len(result.stderr.strip().splitlines()) == 1
