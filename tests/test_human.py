"""A person in a seat: the `human` provider, and `run --candidate-model human` driven through a real pseudo-terminal.

The pty tests spawn the real CLI under `pexpect` (a pseudo-terminal, as a person's terminal is) and type the
answers; the interviewer is a scripted model or the embedded SmolLM2, the judge `scripted:judge`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from interview_sim.errors import ModelNotReadyError
from interview_sim.models import ModelOptions, canonical_ref, create_model, parse_ref
from interview_sim.models.cache import cached_factory
from interview_sim.models.human import AnswerRequest, HumanModel, with_answers
from interview_sim.record import load_transcript
from interview_sim.replay import rerun
from interview_sim.session import run_scenario

INTERVIEWERS = ["scripted:default", "llamacpp:smollm2-135m"]
PTY_TIMEOUT_S = 180
"""Generous: the embedded model answers in seconds on an idle machine, much slower on a loaded one."""


def answers_from(texts: list[str | None], asked: list[AnswerRequest] | None = None):  # type: ignore[no-untyped-def]
    queue = list(texts)

    async def source(request: AnswerRequest) -> str | None:
        if asked is not None:
            asked.append(request)
        await asyncio.sleep(0.01)
        return queue.pop(0)

    def factory(ref: str, options: ModelOptions):  # type: ignore[no-untyped-def]
        if parse_ref(ref)[0] == "human":
            options = with_answers(options, source)
        return create_model(ref, options)

    return factory


# ---------------------------------------------------------------------------------------------- the provider


def test_human_is_a_bare_reference_through_the_registry() -> None:
    assert parse_ref("human") == ("human", "human")
    assert canonical_ref("human") == "human:human" and canonical_ref("scripted:default") == "scripted:default"
    model = create_model("human", ModelOptions(role="candidate"))
    assert isinstance(model, HumanModel) and model.interactive and model.name == "human"


@pytest.mark.anyio
async def test_a_person_answers_are_recorded_as_human_calls(runs_dir: Path) -> None:
    asked: list[AnswerRequest] = []
    result = await run_scenario(
        "scalability-issues",
        interviewer_model="scripted:default",
        candidate_model="human",
        max_turns=5,
        runs_dir=runs_dir,
        model_factory=answers_from(["A cache in front of the database.", "Shard by tenant."], asked),
    )
    t = result.transcript
    assert [m.content for m in t.messages if m.role == "candidate"] == ["A cache in front of the database.", "Shard by tenant."]
    human = [c for c in t.calls if c.role == "candidate"]
    assert [c.model for c in human] == ["human", "human"]
    assert all(c.prompt_tokens == 0 and c.completion_tokens == 0 and c.latency_s >= 0.01 for c in human)
    assert t.agents["candidate"]["model_ref"] == "human:human"
    # The person is asked with the whole conversation: the opening line first, then the interviewer's reply.
    assert [r.turn for r in asked] == [1, 3] and "whiteboard" in asked[0].last_heard
    person = t.usage.including_cached.by_role["candidate"]
    assert (person.total_tokens, person.generation_s) == (0, 0.0)


@pytest.mark.anyio
async def test_quit_keeps_the_answers_and_rerun_stops_where_the_person_did(runs_dir: Path) -> None:
    result = await run_scenario(
        "scalability-issues",
        interviewer_model="scripted:default",
        candidate_model="human",
        runs_dir=runs_dir,
        model_factory=answers_from(["First answer.", None]),
    )
    t = load_transcript(result.run_dir)
    assert t.stop_reason == "interrupted" and t.error is None
    assert [m.role for m in t.messages] == ["interviewer", "candidate", "interviewer"]
    again = await rerun(result.run_dir, runs_dir=runs_dir / "rerun")
    assert again.identical and again.stop_reason_rerun == "interrupted"


@pytest.mark.anyio
async def test_without_a_person_the_seat_is_not_ready(runs_dir: Path) -> None:
    with pytest.raises(ModelNotReadyError, match="needs a person at a terminal"):
        await run_scenario("scalability-issues", candidate_model="human", interviewer_model="scripted:default", runs_dir=runs_dir)
    assert not any(runs_dir.rglob("transcript.json"))


def test_a_person_is_never_answered_from_the_cache(tmp_path: Path) -> None:
    factory = cached_factory(create_model, tmp_path / "cache")
    assert isinstance(factory("human", ModelOptions(role="candidate")), HumanModel)
    assert not isinstance(factory("scripted:default", ModelOptions()), HumanModel)


# ---------------------------------------------------------------------------------------------- CLI refusals


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interview_sim", *args], capture_output=True, text=True, input=stdin, timeout=300
    )


@pytest.mark.parametrize(
    "args",
    [
        ("compare", "scalability-issues", "--models", "human,scripted:default", "--evaluator-model", "scripted:judge"),
        ("compare", "scalability-issues", "--models", "scripted:default", "--candidate-model", "human", "--role", "interviewer"),
        ("run", "--candidate-model", "human", "--json"),
        ("run", "--candidate-model", "scripted:default", "--evaluator-model", "human"),
        ("run", "--candidate-model", "scripted:default", "--answer-time", "30"),
    ],
)
def test_human_seats_are_refused_where_no_person_can_sit(args: tuple[str, ...], runs_dir: Path) -> None:
    proc = cli(*args, "--runs-dir", str(runs_dir))
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    assert not any(runs_dir.rglob("transcript.json"))


def test_answers_can_be_piped_and_the_session_replays(runs_dir: Path) -> None:
    """Not a terminal: no streaming, answers still read line by line; replay and --rerun treat the run like any other."""
    proc = cli(
        "run", "--candidate-model", "human", "--interviewer-model", "scripted:default", "--max-turns", "5",
        "--no-evaluate", "--runs-dir", str(runs_dir),
        stdin="I would cache reads.\nAnd queue writes.\n\nShard by tenant.\n\n",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "an empty line ends it" in proc.stdout
    assert "(interviewer, scripted:default)" not in proc.stdout  # stdout is not a terminal: no streamed header
    (run_dir,) = [p.parent for p in runs_dir.rglob("transcript.json")]
    t = load_transcript(run_dir)
    answers = [m.content for m in t.messages if m.role == "candidate"]
    assert answers == ["I would cache reads.\nAnd queue writes.", "Shard by tenant."]
    played = cli("replay", str(run_dir), "--instant")
    assert played.returncode == 0 and "typed by a person" in played.stdout and "Shard by tenant." in played.stdout
    again = cli("replay", str(run_dir), "--rerun", "--json", "--runs-dir", str(runs_dir / "rerun"))
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["identical"] is True


# ---------------------------------------------------------------------------------------------- on a pty


def spawn(runs_dir: Path, *args: str) -> pexpect.spawn:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("NO_COLOR", None)
    command = ["-m", "interview_sim", "run", "--runs-dir", str(runs_dir), "--evaluator-model", "scripted:judge", *args]
    return pexpect.spawn(
        sys.executable, command, env=env, encoding="utf-8", timeout=PTY_TIMEOUT_S, dimensions=(50, 220), codec_errors="replace"
    )


def your_turn(child: pexpect.spawn, where: str | None = None) -> None:
    child.expect("your turn: ")
    if where is not None:
        child.expect(where)
    child.expect(r"an empty line ends it")
    child.expect("> ")


def answer(child: pexpect.spawn, *lines: str, where: str | None = None) -> None:
    your_turn(child, where)
    for line in lines:
        child.sendline(line)
    child.sendline("")


def finish(child: pexpect.spawn) -> str:
    """The rest of the output, without colour codes."""
    child.expect(pexpect.EOF)
    child.close()
    return re.sub(r"\x1b\[[0-9;]*m", "", str(child.before))


def the_run(runs_dir: Path) -> Path:
    (transcript,) = [p for p in runs_dir.rglob("transcript.json") if "rerun" not in p.parts]
    return transcript.parent


@pytest.mark.parametrize("interviewer", INTERVIEWERS)
def test_pty_answers_then_quit_midway(interviewer: str, runs_dir: Path, smollm2_available: None) -> None:
    child = spawn(runs_dir, "--candidate-model", "human", "--interviewer-model", interviewer, "--seed", "3")
    answer(
        child,
        "I would put a cache in front of the hottest reads,",
        "and move slow work onto a queue.",
        where=r"stage: open · clock 1/30 min, 29 min left",  # the prompt says where the session stands
    )
    your_turn(child)
    child.sendline("/quit")
    out = finish(child)
    assert child.exitstatus == 0, out
    assert "stopped: interrupted after 3 messages" in out and "Traceback" not in out
    t = load_transcript(the_run(runs_dir))
    assert t.stop_reason == "interrupted"
    candidate = [m for m in t.messages if m.role == "candidate"]
    assert [m.content for m in candidate] == [
        "I would put a cache in front of the hottest reads,\nand move slow work onto a queue."
    ]
    assert candidate[0].model == "human" and candidate[0].usage is not None and candidate[0].usage.completion_tokens == 0
    assert t.messages[-1].role == "interviewer" and t.messages[-1].content  # the question the person did not answer
    assert not list(the_run(runs_dir).glob("evaluation-*.json"))  # nothing graded after a /quit


@pytest.mark.parametrize("interviewer", INTERVIEWERS)
def test_pty_full_session_is_graded_with_evidence(interviewer: str, runs_dir: Path, smollm2_available: None) -> None:
    # Five messages with the scripted interviewer (two answers); three with the embedded one (one answer), to keep
    # the test short on a loaded machine.
    turns = 5 if interviewer.startswith("scripted") else 3
    child = spawn(runs_dir, "--candidate-model", "human", "--interviewer-model", interviewer, "--max-turns", str(turns))
    answer(child, "I would use horizontal scaling behind a load balancer and caching of hot reads.")
    if turns == 5:
        answer(child, "Partitioning by tenant, with authentication and encryption at every service.")
    child.expect("Your answers, graded")
    out = finish(child)
    assert child.exitstatus == 0, out
    assert 'you said: "I would use horizontal scaling behind a load balancer and caching of hot reads."' in out
    run_dir = the_run(runs_dir)
    (evaluation,) = run_dir.glob("evaluation-*.json")
    assert json.loads(evaluation.read_text())["status"] == "ok"
    t = load_transcript(run_dir)
    assert t.stop_reason in ("max_turns", "end_marker") and len(t.messages) == turns
    assert [m.model for m in t.messages if m.role == "candidate"] == ["human"] * (turns // 2)


def test_pty_ctrl_d_stops_like_quit(runs_dir: Path) -> None:
    child = spawn(runs_dir, "--candidate-model", "human", "--interviewer-model", "scripted:default")
    answer(child, "Cache the reads.")
    your_turn(child)
    child.sendline("half an answer")
    child.sendeof()
    out = finish(child)
    assert child.exitstatus == 0, out
    t = load_transcript(the_run(runs_dir))
    assert t.stop_reason == "interrupted"
    assert [m.content for m in t.messages if m.role == "candidate"] == ["Cache the reads."]


def test_pty_answer_time_sends_what_was_typed(runs_dir: Path) -> None:
    child = spawn(runs_dir, "--candidate-model", "human", "--interviewer-model", "scripted:default", "--answer-time", "5")
    your_turn(child)
    assert "5 s per answer" in child.before  # the rest of the prompt's line, before "> "
    child.sendline("Only this line made it.")
    child.expect("time is up")
    your_turn(child)
    child.sendline("/quit")
    out = finish(child)
    assert child.exitstatus == 0, out
    t = load_transcript(the_run(runs_dir))
    assert [m.content for m in t.messages if m.role == "candidate"] == ["Only this line made it."]
    assert t.calls[0].latency_s >= 5


def test_pty_human_interviewer_sees_the_stage_note(runs_dir: Path) -> None:
    child = spawn(runs_dir, "--interviewer-model", "human", "--candidate-model", "scripted:default", "--max-turns", "3")
    your_turn(
        child, where=r"Your next turn \((?:step \d of \d|the last)\): "
    )  # the interviewer's script, as a model interviewer gets it
    child.sendline("Good. Now the database is the bottleneck: what do you do?")
    child.sendline("")
    out = finish(child)
    assert child.exitstatus == 0, out
    t = load_transcript(the_run(runs_dir))
    assert [m.model for m in t.messages] == [None, "scripted-default", "human"]


def test_pty_ctrl_c_while_the_person_thinks_exits_130_and_keeps_the_answers(runs_dir: Path) -> None:
    child = spawn(runs_dir, "--candidate-model", "human", "--interviewer-model", "scripted:default")
    answer(child, "Cache the reads.")
    your_turn(child)
    child.sendintr()
    out = finish(child)
    assert child.exitstatus == 130, out
    assert "interrupted (SIGINT)" in out and "Traceback" not in out
    t = load_transcript(the_run(runs_dir))
    assert t.stop_reason == "interrupted"
    assert [m.content for m in t.messages if m.role == "candidate"] == ["Cache the reads."]
