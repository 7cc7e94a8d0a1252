"""AutoGen 0.2 import and export: the three forms from hand-written fixtures, bad files, trees, round trips."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim.autogen02 import export_run, import_transcripts
from interview_sim.cli import app
from interview_sim.config import load_scenario
from interview_sim.record import TRANSCRIPT_FILE, Transcript, load_transcript
from interview_sim.replay import replay_run
from interview_sim.session import run_scenario

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "autogen02"
TREE = FIXTURES / "tree"
SCALABILITY = (
    TREE / "interview_26" / "interview_transcript_2024-04-24_scalability_issues_6_031b3d76-6dca-491a-80d5-0a245347f784.json"
)
TAXATION = (
    TREE / "interview_26" / "interview_transcript_2024-04-24_corporate_taxation_2_5b7e0c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b.json"
)
MARKDOWN = (
    TREE / "interview_27" / "interview_transcript_2024-04-25_technological_challenges_1_9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a.md"
)
ANALYSIS = FIXTURES / "analysis" / "analysis_interview_26_scalability_issues_6.md"
MALFORMED = FIXTURES / "malformed"
runner = CliRunner()


def _import_one(path: Path, runs_dir: Path) -> Transcript:
    report = import_transcripts([path], runs_dir=runs_dir)
    assert report.failures == []
    (record,) = report.created
    return load_transcript(record.path)


def _run_dirs(runs_dir: Path) -> list[Path]:
    return sorted(p.parent for p in runs_dir.glob(f"*/*/{TRANSCRIPT_FILE}"))


# ---------------------------------------------------------------------------------------------- the three forms


def test_chat_result_with_dict_history(runs_dir: Path) -> None:
    t = _import_one(SCALABILITY, runs_dir)
    assert (t.kind, t.stop_reason, t.scenario_id) == ("interview", "imported", "scalability-issues")
    assert [m.role for m in t.messages] == ["interviewer", "candidate"] * 2 + ["interviewer"]
    assert {m.agent for m in t.messages} == {"Interviewer-Bot (Gemma)", "OpenCorpo-Assistant (Llama3)"}
    assert t.agents["candidate"]["name"] == "OpenCorpo-Assistant (Llama3)"
    assert all(m.source == "imported" and m.model is None and m.usage is None for m in t.messages)
    assert "**Admission control**" in t.messages[1].content and "`GET /events/{id}`" in t.messages[1].content

    info = t.imported
    assert info is not None
    assert (info.format, info.original_name, info.batch) == ("autogen02-json", SCALABILITY.name, "interview_26")
    assert (info.topic, info.solution_topic) == ("scalability issues", "a ticketing API that slows down during concert sales")
    assert info.original_id == "031b3d76-6dca-491a-80d5-0a245347f784" and info.scenario_match == "topic"
    assert info.autogen_roles == {"interviewer": "assistant", "candidate": "user"}
    # The opening line names the candidate "(Llama3)" and the Cost block has one llama3 model: that is its model;
    # the interviewer is "Interviewer-Bot (Gemma)" and the block has one gemma model. Both are marked inferred.
    assert info.notes == [
        "interviewer model 'gemma:2b-instruct-v1.1-fp16' inferred from the interviewer's name and the Cost block's models",
        "candidate model 'llama3:8b-instruct-fp16' inferred from the candidate's name and the Cost block's models",
    ]
    assert t.agents["candidate"]["model_name"] == "llama3:8b-instruct-fp16" and t.agents["candidate"]["model_inferred"]
    assert t.agents["interviewer"]["model_name"] == "gemma:2b-instruct-v1.1-fp16" and t.agents["interviewer"]["model_inferred"]
    assert t.started_at == datetime(2024, 4, 24, tzinfo=UTC)

    # The rubric of the scenario with the same topic, the original topic and solution topic beside it.
    assert t.scenario["rubric"] == load_scenario("scalability-issues").spec.rubric.model_dump(mode="json")
    assert t.scenario["solution_topic"] == info.solution_topic and t.scenario["time_budget_minutes"] == 30

    # Counts kept as imported, keyed by the Cost block's model names; the impossible ones flagged.
    assert t.usage.source == "imported"
    llama = t.usage.including_cached.by_model["llama3:8b-instruct-fp16"]
    assert (llama.prompt_tokens, llama.completion_tokens) == (183186, 2310)
    assert t.cost == json.loads(SCALABILITY.read_text())["cost"]
    warnings = t.usage.warnings
    assert len(warnings) == 2 and all(w.startswith("llama3:8b-instruct-fp16: ") for w in warnings)
    assert "183,186 prompt tokens cannot belong to a single chat of 5 messages" in warnings[0]
    assert "2,310 completion tokens exceed all the text" in warnings[1]


def test_import_takes_the_seats_models_explicitly(runs_dir: Path) -> None:
    result = runner.invoke(
        app, ["import", str(SCALABILITY), "--runs-dir", str(runs_dir), "--candidate-model", "ollama:llama3:8b-instruct-fp16"]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = _run_dirs(runs_dir)
    candidate = load_transcript(run_dir).agents["candidate"]
    assert candidate["model_ref"] == "ollama:llama3:8b-instruct-fp16" and candidate["model_given"]
    assert not candidate["model_inferred"]
    listed = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir), "--json"])
    (row,) = json.loads(listed.output)
    assert row["candidate_model"] == "ollama:llama3:8b-instruct-fp16"
    assert row["interviewer_model"] == "gemma:2b-instruct-v1.1-fp16"  # inferred: the page says so, and so does `runs show`
    shown = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir), "show", row["run_id"], "--json"])
    assert json.loads(shown.output)["inferred_models"] == ["interviewer"]
    text = runner.invoke(app, ["runs", "--runs-dir", str(runs_dir), "show", row["run_id"]]).output
    assert "interviewer: gemma:2b-instruct-v1.1-fp16 (inferred) · candidate: ollama:llama3:8b-instruct-fp16\n" in text
    bad = runner.invoke(app, ["import", str(SCALABILITY), "--runs-dir", str(runs_dir), "--interviewer-model", "llama3"])
    assert bad.exit_code == 2


def test_chat_result_with_plain_string_history(runs_dir: Path) -> None:
    t = _import_one(TAXATION, runs_dir)
    assert t.scenario_id == "corporate-taxation"
    assert t.scenario["rubric"] == load_scenario("corporate-taxation").spec.rubric.model_dump(mode="json")
    assert [m.role for m in t.messages] == ["interviewer", "candidate"] * 2
    assert [m.agent for m in t.messages[:2]] == ["Interviewer", "OpenCorpo-Assistant (Llama3)"]
    assert t.usage.including_cached.total.prompt_tokens == 402 and t.usage.excluding_cached.total.prompt_tokens == 290
    assert t.usage.warnings == []


def test_markdown_export_whose_interviewer_is_the_user_side(runs_dir: Path) -> None:
    t = _import_one(MARKDOWN, runs_dir)
    # AutoGen's "User" spoke the opening line here: the template, not the label, says who interviews.
    assert [m.role for m in t.messages] == ["interviewer", "candidate"] * 2
    assert t.imported is not None and t.imported.autogen_roles == {"interviewer": "user", "candidate": "assistant"}
    assert t.messages[1].content.startswith("**Approach:** strangler fig.\n\n* Put an API facade")
    assert "```\nfacade -> {mainframe | cloud service}\n```" in t.messages[1].content
    assert t.imported.summary == t.messages[-1].content and t.imported.chat_id is None and t.imported.human_input == []
    assert t.scenario_id == "technological-challenges" and t.imported.batch == "interview_27"
    # The export gives the user's tooling the very same file back.
    assert export_run(_run_dirs(runs_dir)[0], "autogen02-markdown") == MARKDOWN.read_text()


def test_analysis_export_gives_an_interview_run_and_an_attached_analysis(runs_dir: Path) -> None:
    report = import_transcripts([ANALYSIS], runs_dir=runs_dir)
    assert report.failures == []
    interview_rec, analysis_rec = report.created
    assert (interview_rec.kind, analysis_rec.kind) == ("interview", "analysis")
    assert interview_rec.run_dir == analysis_rec.run_dir

    interview = load_transcript(interview_rec.run_dir)
    assert len(interview.messages) == 4 and [m.role for m in interview.messages] == ["interviewer", "candidate"] * 2
    assert "behind a queue [a virtual waiting room], scale" in interview.messages[1].content  # brackets inside the literal
    info = interview.imported
    assert info is not None and info.format == "autogen02-analysis"
    assert info.original_name == SCALABILITY.name and info.batch == "interview_26"
    assert info.interview_file == f"interview_26/{SCALABILITY.name}"
    assert info.summary == interview.messages[-1].content  # "Summary:" inside the last message does not cut it
    assert interview.usage.including_cached.by_model == {}
    assert interview.usage.warnings == [
        "the analysis export carries no usage for the embedded interview (its Cost block is the analysts')"
    ]

    name = Path(analysis_rec.path).name
    assert interview.attachments == [name] and name.startswith("analysis-")
    analysis = load_transcript(analysis_rec.path)
    assert analysis.kind == "analysis" and analysis.imported is not None
    assert analysis.imported.analysis_of == interview.run_id
    assert [m.role for m in analysis.messages] == ["lead-analyst", "analyst", "lead-analyst"]
    assert analysis.messages[1].content.startswith("**Analysis Process:**")
    assert analysis.usage.including_cached.by_model["gemma:2b-instruct-v1.1-fp16"].prompt_tokens == 1512
    assert analysis.usage.warnings == []
    assert export_run(analysis_rec.path, "autogen02-markdown") == ANALYSIS.read_text()
    assert replay_run(analysis_rec.path).turns[1].role == "analyst"


def test_no_opening_line_falls_back_to_the_initiator_and_says_so(runs_dir: Path) -> None:
    t = _import_one(FIXTURES / "misc" / "no_opening_line.json", runs_dir)
    assert [(m.role, m.agent) for m in t.messages] == [
        ("interviewer", "Panel-Lead"),
        ("candidate", "Applicant-7"),
        ("interviewer", "Panel-Lead"),
    ]
    assert t.imported is not None
    assert t.imported.notes == [
        "no turn matches the interview's opening template: assumed the first speaker (the initiator) is the interviewer"
    ]
    assert (t.imported.chat_id, t.imported.human_input, t.imported.scenario_match) == (7, ["continue"], "default")
    assert t.scenario_id == "scalability-issues" and "rubric" in t.scenario
    assert t.usage.warnings == ["the cost block lists no model: the file has no usage"]


# ---------------------------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "interview_transcript_2024-04-24_scalability_issues_7_truncated.json",
            "truncated JSON: the file ends early (line 10)",
        ),
        ("truncated_cost.md", "truncated Markdown export: no **Human_input** trailer (the file stops in **Cost**)"),
        ("no_trailer.md", "truncated Markdown export: no **Chat_id** trailer (the file stops after turn 2)"),
        ("evil_cost.md", "**Cost** is not a plain Python literal (it holds names, calls or operators)"),
        ("three_speakers.json", "3 speakers (alice, bob, carol): not a two-agent interview"),
        (
            "analysis_truncated.md",
            "analysis export: the embedded Chat History is not a complete Python list literal (truncated?)",
        ),
    ],
)
def test_malformed_and_truncated_files_fail_alone_and_write_nothing(name: str, message: str, runs_dir: Path) -> None:
    report = import_transcripts([MALFORMED / name], runs_dir=runs_dir)
    assert report.created == []
    assert [(f.source_file, f.error) for f in report.failures] == [(str(MALFORMED / name), message)]
    assert list(runs_dir.iterdir()) == []  # not even a staging folder


@pytest.mark.parametrize(
    ("name", "reason"), [("not_a_chat_result.json", "not a transcript: JSON without chat_history"), ("empty.md", "empty file")]
)
def test_files_that_are_not_transcripts_are_skipped_with_the_reason(name: str, reason: str, runs_dir: Path) -> None:
    report = import_transcripts([MALFORMED / name], runs_dir=runs_dir)
    assert [(f.path, f.status, f.reason) for f in report.files] == [(str(MALFORMED / name), "skipped", reason)]
    assert report.failures == [] and list(runs_dir.iterdir()) == []  # not even an index


def test_the_cost_block_is_never_executed(runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    report = import_transcripts([MALFORMED / "evil_cost.md"], runs_dir=runs_dir)
    assert len(report.failures) == 1
    assert not (tmp_path / "EVIL_MARKER").exists()


def test_a_tree_with_bad_files_imports_the_rest_one_error_line_per_bad_file(runs_dir: Path) -> None:
    bad = sorted(p for p in MALFORMED.iterdir() if p.is_file())
    failing = [p for p in bad if p.name not in ("not_a_chat_result.json", "empty.md")]
    result = runner.invoke(app, ["import", str(TREE), *map(str, bad), "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    created = [r for r in out["runs"] if r["created"]]
    assert sorted(Path(r["source_file"]).name for r in created) == sorted([SCALABILITY.name, TAXATION.name, MARKDOWN.name])
    assert out["counts"] == {"imported": 3, "merged": 0, "attached": 0, "skipped": 2, "failed": len(failing)}
    assert {f["path"] for f in out["files"]} == {str(p) for p in [SCALABILITY, TAXATION, MARKDOWN, *bad]}
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(failing) + 1 and all(line.startswith("error: ") for line in lines)
    assert {line.split(": ")[1] for line in lines[:-1]} == {str(p) for p in failing}
    assert lines[-1] == f"error: {len(failing)} of {len(bad) + 3} file(s) failed"
    assert "Traceback" not in result.output
    assert len(_run_dirs(runs_dir)) == 3
    assert not any(p.name.startswith(".import-") for p in runs_dir.rglob("*"))  # no staging folder left behind


def test_tree_import_prints_a_summary_table(runs_dir: Path) -> None:
    result = runner.invoke(app, ["import", str(TREE), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Created 3 record(s)" in out
    for topic in ("scalability issues", "corporate taxation", "technological challenges"):
        assert topic in out
    assert "warning: interview_transcript_2024-04-24_scalability_issues_6" in out
    assert "3 file(s)" in out and any(line.split()[:3] == ["│", "json", "│"] for line in out.splitlines())
    scenarios = sorted(p.parent.name for p in _run_dirs(runs_dir))
    assert scenarios == ["corporate-taxation", "scalability-issues", "technological-challenges"]


def test_import_json_lists_the_created_runs_and_every_file(runs_dir: Path) -> None:
    result = runner.invoke(app, ["import", str(ANALYSIS), str(TAXATION), "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(r["kind"], r["messages"], Path(r["source_file"]).name) for r in out["runs"]] == [
        ("interview", 4, TAXATION.name),
        ("interview", 4, ANALYSIS.name),
        ("analysis", 3, ANALYSIS.name),
    ]
    assert all(Path(r["run_dir"], TRANSCRIPT_FILE).exists() and Path(r["path"]).exists() for r in out["runs"])
    assert all("notes" in r for r in out["runs"])
    # Interviews are written before analyses, so an analysis finds its interview's run if it is in the import.
    assert [(Path(f["path"]).name, f["status"], f["form"]) for f in out["files"]] == [
        (TAXATION.name, "imported", "json"),
        (ANALYSIS.name, "attached", "analysis-markdown"),
    ]
    assert all(Path(f["run"]).is_dir() for f in out["files"])


def test_import_of_nothing_readable_is_one_line_per_path(runs_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["import", str(tmp_path / "missing.json"), str(empty), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.json'}: no such file or folder",
        f"error: {empty}: an empty folder: no files",
        "error: 2 of 2 file(s) failed",
    ]


# ---------------------------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(("fmt", "suffix"), [("autogen02-json", ".json"), ("autogen02-markdown", ".md")])
def test_round_trip_ours_export_import(fmt: str, suffix: str, runs_dir: Path, tmp_path: Path) -> None:
    ours = asyncio.run(
        run_scenario(
            "corporate-taxation",
            interviewer_model="scripted:default",
            candidate_model="scripted:default",
            runs_dir=runs_dir / "ours",
        )
    ).transcript
    exported = tmp_path / f"ours{suffix}"
    result = runner.invoke(
        app, ["export", str(runs_dir / "ours" / ours.scenario_id / ours.run_id), "--format", fmt, "-o", str(exported)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"exported: {exported}"

    back = _import_one(exported, runs_dir / "imported")
    assert [(m.role, m.content) for m in back.messages] == [(m.role, m.content) for m in ours.messages]
    assert back.messages[1].agent == ours.messages[1].agent == "OpenCorpo-Assistant"
    if fmt == "autogen02-json":
        assert [m.agent for m in back.messages] == [m.agent for m in ours.messages]
    assert back.scenario_id == ours.scenario_id == "corporate-taxation"
    assert back.scenario["solution_topic"] == ours.scenario["solution_topic"]
    assert back.cost == ours.cost
    for view in ("including_cached", "excluding_cached"):
        theirs = {m: (u.prompt_tokens, u.completion_tokens) for m, u in getattr(back.usage, view).by_model.items()}
        mine = {m: (u.prompt_tokens, u.completion_tokens) for m, u in getattr(ours.usage, view).by_model.items()}
        assert theirs == mine
    assert back.usage.warnings == []  # honest counts of one chat are not flagged


def test_json_export_is_a_chat_result(runs_dir: Path) -> None:
    ours = asyncio.run(
        run_scenario(
            "scalability-issues",
            interviewer_model="scripted:default",
            candidate_model="scripted:default",
            runs_dir=runs_dir,
            max_turns=4,
        )
    )
    result = runner.invoke(app, ["export", str(ours.run_dir)])
    assert result.exit_code == 0, result.output
    chat = json.loads(result.stdout)
    assert list(chat) == ["chat_id", "chat_history", "summary", "cost", "human_input"]
    assert chat["chat_history"][0] == {"content": ours.transcript.messages[0].content, "role": "assistant", "name": "Interviewer"}
    assert {h["role"] for h in chat["chat_history"][1::2]} == {"user"}
    assert chat["summary"] == ours.transcript.messages[-1].content
    assert (chat["cost"], chat["chat_id"], chat["human_input"]) == (ours.transcript.cost, None, [])


def test_json_imports_export_back_to_the_same_chat_result(runs_dir: Path) -> None:
    t = _import_one(SCALABILITY, runs_dir)
    assert json.loads(export_run(_run_dirs(runs_dir)[0], "autogen02-json")) == json.loads(SCALABILITY.read_text())
    assert t.run_id == _run_dirs(runs_dir)[0].name


# ---------------------------------------------------------------------------------------------- imported runs are runs


def test_replay_works_on_imported_runs(runs_dir: Path) -> None:
    _import_one(SCALABILITY, runs_dir)
    (run_dir,) = _run_dirs(runs_dir)
    result = runner.invoke(app, ["replay", str(run_dir), "--instant"])
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # rich wraps long lines
    assert "models (per agent unknown): llama3:8b-instruct-fp16, gemma:2b-instruct-v1.1-fp16" in out
    assert "imported (autogen02-json) from interview_26/" in out
    assert "turn 2 OpenCorpo-Assistant (Llama3) (candidate, model not recorded) · tokens not recorded" in out
    assert "warning: llama3:8b-instruct-fp16: 183,186 prompt tokens cannot belong" in out
    dump = json.loads(runner.invoke(app, ["replay", str(run_dir), "--json"]).stdout)
    assert dump["total_turns"] == 5 and dump["imported"]["topic"] == "scalability issues"


@pytest.mark.parametrize("source", [SCALABILITY, MARKDOWN, ANALYSIS], ids=["json", "markdown", "analysis"])
def test_evaluate_works_on_imported_runs(source: Path, runs_dir: Path) -> None:
    report = import_transcripts([source], runs_dir=runs_dir)
    interview = report.created[0]
    result = runner.invoke(app, ["evaluate", interview.run_dir, "--evaluator-model", "scripted:judge", "--json"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(result.stdout)
    t = load_transcript(interview.run_dir)
    # Graded against the rubric the import put in the scenario snapshot.
    assert evaluation["status"] == "ok" and evaluation["run_id"] == t.run_id
    assert set(evaluation["criteria"]) == {c["id"] for c in t.scenario["rubric"]["criteria"]}
    assert evaluation["overall"] is not None
    # The judge's calls are appended to the run; the imported ledger stays what the file said.
    # One call per criterion (criterion-wise grading).
    assert [c.role for c in t.calls] == ["evaluator"] * len(evaluation["criteria"])
    assert {c.evaluation_id for c in t.calls} == {evaluation["evaluation_id"]}
    assert t.usage.source == "imported" and t.messages[0].source == "imported"
