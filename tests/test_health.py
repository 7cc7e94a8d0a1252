"""Conversation health on hand-made transcripts: each figure counts exactly the turns its definition names."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.health import Health, asks_something, compute_health, health_line
from interview_sim.models.base import Completion
from interview_sim.record import CallRecord, Message, Transcript
from interview_sim.session import cut_back_to_sentence

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

SCENARIO: dict[str, Any] = {
    "id": "scalability-issues",
    "title": "Scalability issues",
    "topic": "scalability issues",
    "solution_topic": "a multi-tenant SaaS API whose traffic grows tenfold during quarter-end reporting",
    "stages": [
        {"kind": "open", "instruction": "Open the interview with the opening line."},
        {"kind": "pose_problem", "instruction": "Pose this problem: the database becomes the bottleneck at quarter end."},
        {"kind": "probe", "instruction": "Ask one follow-up question about a weak spot of the last answer.", "turns": 2},
        {"kind": "wrap_up", "instruction": "Thank the candidate and close the interview."},
    ],
    "rubric": {
        "criteria": [
            {"id": "perf", "name": "Performance optimization", "description": "Caching, indexing, batching, profiling."},
            {"id": "scale", "name": "Scalability and efficiency", "description": "Horizontal scaling, partitioning, queues."},
        ]
    },
}
AGENTS = {
    "interviewer": {
        "name": "Interviewer",
        "system_prompt": "You are a senior engineering interviewer at OpenCorpo running a whiteboard interview.",
    },
    "candidate": {"name": "Cand", "system_prompt": "You are a software engineer in a whiteboard interview. Answer concretely."},
}


def _transcript(turns: list[tuple[str, str | None, str]], finish: dict[int, str] | None = None) -> Transcript:
    """Turns as (role, stage, text); turn 0 is the opening line (a template). `finish` maps turns to a finish reason."""
    messages, calls = [], []
    for i, (role, stage, text) in enumerate(turns):
        source = "template" if i == 0 else "model"
        name = AGENTS[role]["name"]
        model = None if i == 0 else "m"
        messages.append(Message(index=i, role=role, agent=name, content=text, source=source, stage=stage, model=model))
        if i:
            reason = (finish or {}).get(i, "stop")
            calls.append(
                CallRecord(
                    index=len(calls), role=role, agent=name, model="m", ref="scripted:m", prompt_tokens=1,
                    completion_tokens=1, latency_s=0.0, finish_reason=reason, message_index=i,
                )
            )  # fmt: skip
    return Transcript(
        run_id="r", scenario_id="scalability-issues", scenario=SCENARIO, agents=AGENTS,
        started_at=datetime(2024, 1, 1, tzinfo=UTC), messages=messages, calls=calls,
    )  # fmt: skip


OPENING = ("interviewer", "open", "Cand, whiteboard for me some scalability issues. You have 30 minutes.")


def test_stage_compliance_counts_asking_turns_in_pose_problem_and_probe_stages_only() -> None:
    health = compute_health(
        _transcript(
            [
                OPENING,
                ("candidate", None, "I would partition the database by tenant and add caching."),
                ("interviewer", "pose_problem", "The database is the bottleneck at quarter end. How do you fix it?"),
                ("candidate", None, "Queue the writes and batch them; index the report queries."),
                ("interviewer", "probe", "Describe how you would secure the queue."),  # a request, no question mark
                ("candidate", None, "Encrypt it and authenticate every producer."),
                ("interviewer", "probe", "Good. We have 10 minutes left."),  # asks nothing
                ("candidate", None, "Thanks."),
                ("interviewer", "wrap_up", "Thank you, that is all."),  # not an asking stage
            ]
        )
    )
    assert (health.stage_compliance.count, health.stage_compliance.total, health.stage_compliance.turns) == (2, 3, [6])


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("I would like to know how you plan to handle security at quarter end.", True),  # an indirect question
        ("I'd like you to walk through the write path.", True),
        ("Tell me how the queue is drained.", True),
        ("I am curious about how you would shard the tenants.", True),
        ("I would like to add that caching helps here.", False),  # "would like to" alone asks nothing
        ("We have 10 minutes left. The database is the bottleneck at quarter end.", False),
    ],
)
def test_an_indirect_question_asks_something(text: str, asks: bool) -> None:
    assert asks_something(text) is asks


def test_truncation_and_shown_cut_off() -> None:
    turns = [
        OPENING,
        ("candidate", None, "I would add read replicas. Then I would"),  # capped, shown mid-sentence
        ("interviewer", "pose_problem", "What about writes?"),
        ("candidate", None, "Queue them and batch them."),  # capped, but cut back to a full sentence
    ]
    health = compute_health(_transcript(turns, finish={1: "length", 3: "length"}))
    assert (health.truncated.count, health.truncated.total, health.truncated.turns) == (2, 3, [1, 3])
    assert (health.shown_cut_off.count, health.shown_cut_off.turns) == (1, [1])


def test_cut_back_keeps_the_last_complete_sentence_and_the_cut_text() -> None:
    text = "Use a queue. Batch the writes, then"
    done = Completion(content=text, model="m", prompt_tokens=1, completion_tokens=9, latency_s=0.0)
    cut = cut_back_to_sentence(done)
    assert cut.content == "Use a queue." and cut.metadata["cut_at_cap"] == " Batch the writes, then"
    no_sentence = Completion(content="Use a queue and", model="m", prompt_tokens=1, completion_tokens=4, latency_s=0.0)
    assert cut_back_to_sentence(no_sentence) == no_sentence  # nothing complete to keep: shown as it was (and counted)
    whole = Completion(content='He said "fine." ', model="m", prompt_tokens=1, completion_tokens=4, latency_s=0.0)
    assert cut_back_to_sentence(whole) == whole


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("Shard by tenant.\n\n1. **Queue writes**: batch them.\n2.", "Shard by tenant.\n\n1. **Queue writes**: batch them."),
        ("Shard by tenant.\n\n3.", "Shard by tenant."),
        ("Shard by tenant.\n- Cache reports.\n-", "Shard by tenant.\n- Cache reports."),
        ("Shard by tenant.\n\n### 2. Scaling", "Shard by tenant."),
        ("Shard by tenant.\n\n**Trade-offs:**", "Shard by tenant."),
        ("Use v2.1 of the API. Then", "Use v2.1 of the API."),
    ],
)
def test_cut_back_never_ends_on_a_bare_list_marker_or_heading(text: str, kept: str) -> None:
    capped = Completion(content=text, model="m", prompt_tokens=1, completion_tokens=9, latency_s=0.0, finish_reason="length")
    cut = cut_back_to_sentence(capped)
    assert cut.content == kept
    assert kept + cut.metadata["cut_at_cap"] == text  # nothing is lost: the cut text is kept beside it


def test_note_leakage_counts_turns_that_repeat_the_session_notes_or_their_own_instructions() -> None:
    turns = [
        OPENING,
        ("candidate", None, "I would shard the tenants and cache the hot reports."),
        ("interviewer", "pose_problem", "Stage 2 of 5 (pose_problem): the database is the bottleneck. What now?"),
        ("candidate", None, "Answer in one paragraph of at most four spoken sentences of plain prose: queue writes."),
        ("interviewer", "probe", "Good. How would you secure the tenants' data?"),
        ("candidate", None, "Row-level security per tenant and encrypted disks."),
    ]
    transcript = _transcript(turns)
    transcript.agents["candidate"] = {
        **transcript.agents.get("candidate", {}),
        "turn_note": "Answer in one paragraph of at most four spoken sentences of plain prose.",
    }
    health = compute_health(transcript)
    assert (health.note_leakage.count, health.note_leakage.total, health.note_leakage.turns) == (2, 5, [2, 3])
    assert "note leakage 2" in health_line(health)


@pytest.mark.parametrize(
    ("text", "in_role"),
    [
        ("I would shard the tenants and cache hot reports.", True),
        ("I've been tasked with evaluating your answer: it lacks detail.", False),  # an evaluator's phrase
        ("Cand, tell me how you would scale the writes.", False),  # addresses its own seat as the interviewer does
        ("Interviewer: what is your approach to caching?", False),  # writes the other seat's label
        ("We have 15 minutes left, so let us move to security.", False),  # only the interviewer keeps time
        ("As a senior engineering interviewer at OpenCorpo I would ask more.", False),  # the interviewer's hidden prompt
    ],
)
def test_role_adherence_of_a_candidate_turn(text: str, in_role: bool) -> None:
    health = compute_health(_transcript([OPENING, ("candidate", None, text)]))
    assert health.role_adherence["candidate"].count == int(in_role)
    assert health.role_adherence["candidate"].turns == ([] if in_role else [1])


def test_repeating_what_the_other_seat_said_is_not_a_role_flip() -> None:
    said = "the database becomes the bottleneck at quarter end"
    health = compute_health(
        _transcript(
            [
                OPENING,
                ("candidate", None, "I would cache reads."),
                ("interviewer", "pose_problem", f"Now {said}. How do you fix it?"),
                ("candidate", None, f"When {said}, I queue the writes."),
            ]
        )
    )
    assert health.role_adherence["candidate"].count == 2


def test_topic_adherence_and_the_longest_off_topic_run() -> None:
    health = compute_health(
        _transcript(
            [
                OPENING,
                ("candidate", None, "Partition tenants and cache the reporting queries with an index."),
                ("interviewer", "probe", "And then?"),
                ("candidate", None, "Healthcare data analytics platforms help hospitals."),
                ("interviewer", "probe", "Go on?"),
                ("candidate", None, "Real estate transactions are complex for buyers."),
                ("interviewer", "probe", "Anything else?"),
                ("candidate", None, "Queue the writes and scale horizontally."),
            ]
        )
    )
    assert (health.topic_adherence.count, health.topic_adherence.total, health.topic_adherence.turns) == (2, 4, [3, 5])
    assert health.longest_off_topic_run == 2


def test_repetition_and_echo() -> None:
    question = "How would you protect the tenant data in the reporting database?"
    health = compute_health(
        _transcript(
            [
                OPENING,
                ("candidate", None, "I would add a cache in front of the reports."),
                ("interviewer", "probe", question),
                ("candidate", None, "How would you protect the tenant data in the reporting database? Good question."),
                ("interviewer", "probe", "Anything else?"),
                ("candidate", None, "I would add a cache in front of the reports."),  # says it again
            ]
        )
    )
    assert health.echo.turns == [3] and (health.echo.count, health.echo.total) == (1, 3)
    rep = health.repetition["candidate"]
    assert rep is not None and 0.3 < rep < 0.4  # one turn of three wholly repeated: mean share 1/3
    assert "echo 1/3" in health_line(health)


def test_health_is_shown_by_run_replay_and_the_page(runs_dir: Path) -> None:
    args = ["run", "scalability-issues", "--interviewer-model", "scripted:default", "--candidate-model", "scripted:weak"]
    result = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--no-evaluate", "--json"])
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    health = Health.model_validate(summary["health"])
    run_dir = Path(summary["run_dir"])
    # The scripted interviewer reads its stage instruction out rather than asking: 0 of 3 asking turns ask.
    assert (health.stage_compliance.count, health.stage_compliance.total) == (0, 3)
    shown = runner.invoke(app, ["replay", str(run_dir), "--json"])
    assert json.loads(shown.stdout)["health"] == summary["health"]
    text = runner.invoke(app, ["replay", str(run_dir), "--instant"]).stdout
    assert "health: stage compliance 0/3" in text
    assert runner.invoke(app, ["report", str(run_dir)]).exit_code == 0
    page = (run_dir / "report.html").read_text()
    assert 'data-health-figure="stage compliance"' in page and 'href="#m-2"' in page
