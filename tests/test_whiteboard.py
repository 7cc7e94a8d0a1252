"""The whiteboard and the panel: the board model and its parser, panel sessions, records, replay, tools."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from fake_ollama import FakeOllama
from interview_sim.autogen02 import export_run
from interview_sim.cli import app
from interview_sim.grading import judge as judging
from interview_sim.grading.evaluate import evaluate_run
from interview_sim.models.scripted import ScriptInput, judge_script, script
from interview_sim.record import board_after, load_transcript, read_events, recover_transcript
from interview_sim.report import write_report
from interview_sim.session import run_scenario
from interview_sim.session.whiteboard import Board, parse_blocks, render_block

runner = CliRunner()
SCRIPTED = ["--interviewer-model", "scripted:default", "--candidate-model", "scripted:default"]


# ---------------------------------------------------------------------------------------------- the board


def test_blocks_write_replace_and_erase_sections_and_every_change_is_recorded() -> None:
    board = Board()
    first = "Here is my API.\n```whiteboard\n## API\nPOST /orders\n## Data model\norders(id)\n```\nThat's it."
    changes = board.apply(parse_blocks(first), turn=2, author="Cand", seat="candidate")
    assert [(c.version, c.section, c.before, c.after) for c in changes] == [
        (1, "API", None, "POST /orders"),
        (2, "Data model", None, "orders(id)"),
    ]
    # Same title (any case) replaces, an empty section erases, an unchanged one is no change.
    second = "```whiteboard\n## api\nPOST /v1/orders\n## Data model\n\n## Data model\n```"
    changes = board.apply(parse_blocks(second), turn=4, author="Lead", seat="tech-lead")
    assert [(c.section, c.before, c.after, c.author) for c in changes] == [
        ("API", "POST /orders", "POST /v1/orders", "Lead"),
        ("Data model", "orders(id)", None, "Lead"),
    ]
    assert [(s.title, s.text) for s in board.snapshot()] == [("API", "POST /v1/orders")]
    # The board after any version is rebuilt from the changes alone.
    assert [s.text for s in board_after(board.changes, 2)] == ["POST /orders", "orders(id)"]
    assert board_after(board.changes) == board.snapshot()


def test_a_block_cut_off_at_the_token_limit_still_counts_and_text_without_blocks_changes_nothing() -> None:
    assert parse_blocks("```whiteboard\n## Scaling plan\nshard by tenant") == [("Scaling plan", "shard by tenant")]
    assert parse_blocks("no board here\n```python\n## not a section\n```") == []
    assert parse_blocks(render_block([("API", "GET /x"), ("Old", "")])) == [("API", "GET /x"), ("Old", "")]


def test_the_prompt_view_is_bounded_and_leaves_out_the_oldest_sections_first() -> None:
    board = Board()
    for turn, title in enumerate(["Requirements", "API", "Data model", "Scaling plan"], start=1):
        board.apply([(title, f"{title} " + "word " * 40)], turn=turn, author="C", seat="candidate")
    words = lambda text: len(text.split())  # noqa: E731
    full = board.prompt_view(10_000, words)
    assert all(f"## {t}" in full for t in ("Requirements", "API", "Data model", "Scaling plan"))
    short = board.prompt_view(100, words)
    assert words(short) <= 100 + 12
    assert "## Scaling plan" in short and "## Requirements" not in short and "not shown" in short


@given(st.text(max_size=400))
def test_any_text_parses_to_section_writes_or_nothing(text: str) -> None:
    ops = parse_blocks(f"```whiteboard\n{text}\n```")
    board = Board()
    board.apply(ops, turn=1, author="a", seat=None)
    assert all(title and len(title) <= 60 for title, _ in ops)
    assert len(board.sections) <= len(ops)


# ---------------------------------------------------------------------------------------------- panel sessions


def _run_panel(runs_dir: Path, *extra: str) -> Path:
    result = runner.invoke(
        app,
        ["run", "system-design-panel", *SCRIPTED, "--runs-dir", str(runs_dir), "--json", "--no-evaluate", *extra],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {"Tech-Lead", "Product-Manager", "OpenCorpo-Assistant"} <= set(summary["usage_by_agent"])
    return Path(summary["run_dir"])


def test_a_panel_session_follows_the_stage_owners_and_records_board_and_debriefs(runs_dir: Path) -> None:
    run_dir = _run_panel(runs_dir)
    t = load_transcript(run_dir)
    assert t.schema_version == 3 and set(t.panel) == {"tech-lead", "product-manager"}
    seats = [m.seat for m in t.messages]
    assert seats[0] == "tech-lead" and seats[1::2] == ["candidate"] * len(seats[1::2])
    owners = {"open": "tech-lead", "pose_problem": "product-manager", "probe": "tech-lead", "wrap_up": "tech-lead"}
    for m in t.messages[0::2]:
        assert m.role == "interviewer" and m.seat == owners[m.stage or ""], (m.index, m.stage, m.seat)
    assert {"Tech-Lead", "Product-Manager"} <= {m.agent for m in t.messages}
    # The board: the scenario's starting section, then the candidate's sections, each change in its turn.
    assert t.board_changes[0].via == "scenario" and t.board_changes[0].turn == 0
    written = [c for c in t.board_changes if c.via == "block"]
    assert [c.section for c in written] == ["Requirements", "API", "Data model", "Scaling plan"]
    for c in written:
        assert c.author == "OpenCorpo-Assistant" and c.after and c.after in t.messages[c.turn - 1].content
    assert [s.title for s in t.board] == ["Problem", "Requirements", "API", "Data model", "Scaling plan"]
    # Later prompts carry the board: the candidate's last request showed the sections written before.
    assert "## Data model" in t.messages[-2].content or any(c.section == "Data model" for c in written)
    # Debriefs: one per panelist, in the panel's order, each from a recorded call.
    assert [(d.seat, d.verdict) for d in t.debriefs] == [("tech-lead", "hire"), ("product-manager", "hire")]
    for d in t.debriefs:
        call = t.calls[d.call_index or 0]
        assert call.purpose == "debrief" and call.seat == d.seat and d.reason
    # Usage per agent as well as per model and role.
    by_agent = t.usage.including_cached.by_agent
    assert set(by_agent) == {"Tech-Lead", "Product-Manager", "OpenCorpo-Assistant"}
    assert sum(u.calls for u in by_agent.values()) == len(t.calls)


def test_the_event_log_rebuilds_the_board_and_the_debriefs(runs_dir: Path) -> None:
    run_dir = _run_panel(runs_dir, "--max-turns", "6")
    t = load_transcript(run_dir)
    (run_dir / "transcript.json").unlink()
    rebuilt = recover_transcript(run_dir)
    assert rebuilt.board_changes == t.board_changes and rebuilt.board == t.board and rebuilt.debriefs == t.debriefs
    assert any(e.type == "message" and e.board_changes for e in read_events(run_dir))


def test_replay_rerun_of_a_panel_run_is_identical_and_a_tampered_board_is_caught(runs_dir: Path) -> None:
    run_dir = _run_panel(runs_dir, "--max-turns", "8")
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", "replay", str(run_dir), "--rerun", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["identical"] is True
    # Change one recorded board change: the rerun reproduces the real one, and says where they differ.
    data = json.loads((run_dir / "transcript.json").read_text())
    data["board_changes"][1]["after"] = "something the candidate never wrote"
    (run_dir / "transcript.json").write_text(json.dumps(data))
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", "replay", str(run_dir), "--rerun", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    difference = json.loads(proc.stdout)["first_difference"]
    assert difference["field"] == "board" and difference["original"]["after"] == "something the candidate never wrote"


def test_replay_shows_board_changes_and_debriefs(runs_dir: Path) -> None:
    run_dir = _run_panel(runs_dir, "--max-turns", "6")
    result = runner.invoke(app, ["replay", str(run_dir), "--instant"])
    assert result.exit_code == 0, result.output
    assert "whiteboard: + Requirements" in result.stdout
    assert "debrief · Tech-Lead: lean hire" in result.stdout and "debrief · Product-Manager: lean hire" in result.stdout
    data = json.loads(runner.invoke(app, ["replay", str(run_dir), "--instant", "--json"]).stdout)
    turn = next(t for t in data["turns"] if t["board_changes"])
    assert turn["board_changes"][0]["section"] == "Requirements" and data["debriefs"][0]["verdict"] == "lean hire"


def test_single_interviewer_scenarios_have_no_board_note_and_no_board(runs_dir: Path) -> None:
    result = runner.invoke(app, ["run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--json", "--no-evaluate"])
    assert result.exit_code == 0, result.output
    t = load_transcript(json.loads(result.stdout)["run_dir"])
    assert t.board == [] and t.board_changes == [] and t.panel == {} and t.debriefs == []
    assert {m.seat for m in t.messages} == {"interviewer", "candidate"}
    assert "```whiteboard" not in " ".join(m.content for m in t.messages)


def test_a_panel_stage_owned_by_nobody_on_the_panel_is_one_line(tmp_path: Path) -> None:
    text = (Path(__file__).parents[1] / "scenarios" / "system-design-panel.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("owner: product-manager", "owner: designer", 1).replace("../agents/", "/nonexistent/"))
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", "run", str(bad), "--no-evaluate"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert "'designer' is not a panelist" in proc.stderr


# ---------------------------------------------------------------------------------------------- tool calling


def test_an_ollama_model_with_tools_writes_the_board_through_autogen_function_tools(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = "llama3:8b-instruct-fp16"
    fake_ollama.add_model(tag, capabilities=["completion", "tools"])
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    call = {"function": {"name": "whiteboard_write", "arguments": {"title": "API", "text": "POST /v1/orders -> 201"}}}
    fake_ollama.enqueue("", tool_calls=[call])
    fake_ollama.enqueue("I would keep the API versioned and stateless.")
    args = ["run", "system-design-panel", "--interviewer-model", "scripted:default", "--candidate-model", f"ollama:{tag}"]
    result = runner.invoke(app, [*args, "--max-turns", "5", "--runs-dir", str(runs_dir), "--json", "--no-evaluate"])
    assert result.exit_code == 0, result.output
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    t = load_transcript(run_dir)
    sent = fake_ollama.chat_requests
    assert {tool["function"]["name"] for tool in sent[0]["tools"]} == {"whiteboard_write", "whiteboard_erase"}
    # The tool call ends as the same turn text and the same record a fenced block gives, marked as a tool call.
    assert t.messages[1].content == render_block([("API", "POST /v1/orders -> 201")])
    tool_change = next(c for c in t.board_changes if c.via == "tool")
    assert (tool_change.turn, tool_change.section, tool_change.before, tool_change.after) == (
        2,
        "API",
        None,
        "POST /v1/orders -> 201",
    )
    block_board = Board()
    (block_change,) = block_board.apply(parse_blocks(t.messages[1].content), turn=2, author=tool_change.author, seat="candidate")
    assert block_change.model_dump(exclude={"via", "version"}) == tool_change.model_dump(exclude={"via", "version"})
    recorded = [c.metadata["tool_calls"] for c in t.calls if "tool_calls" in c.metadata]
    assert recorded == [[{"name": "whiteboard_write", "arguments": {"title": "API", "text": "POST /v1/orders -> 201"}}]]
    # The rerun answers with the recorded tool call again: same text, same board.
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", "replay", str(run_dir), "--rerun", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    rerun = load_transcript(json.loads(proc.stdout)["run_dir"])
    assert [c.via for c in rerun.board_changes] == [c.via for c in t.board_changes]


# ---------------------------------------------------------------------------------------------- grading


@script("test-board-misquoting-judge")
def board_misquoting_judge(inp: ScriptInput) -> str:
    """Test judge: first cites a whiteboard line nobody wrote, then (told why) grades like scripted:judge."""
    grade = json.loads(judge_script(inp))
    if "rejected" not in inp.last_user:
        grade["criteria"]["scalability-and-efficiency"]["evidence"] = ["Shard the orders by planet and by moon phase."]
    return json.dumps(grade)


@pytest.mark.anyio
async def test_a_grade_of_a_board_run_cites_board_text_and_a_made_up_board_quote_is_rejected(runs_dir: Path) -> None:
    result = await run_scenario(
        "system-design-panel", interviewer_model="scripted:default", candidate_model="scripted:default", runs_dir=runs_dir
    )
    t = result.transcript
    block = judging.render_transcript(t)
    assert '<whiteboard>\n<section title="Problem" author="scenario">' in block
    assert '<section title="Scaling plan" author="candidate">' in block
    evaluation = await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"])
    quotes = [q for g in evaluation.judges[0].criteria for q in g.evidence]
    board = [s.text for s in t.board if s.author == "OpenCorpo-Assistant"]
    assert any(q in text for q in quotes for text in board)

    evaluation = await evaluate_run(result.run_dir, evaluator_models=["scripted:test-board-misquoting-judge"], mode="rubric")
    assert evaluation.status == "ok" and evaluation.judges[0].attempts == 2
    error = evaluation.raw_outputs[0].error or ""
    assert "planet" in error and "not found word for word in the candidate's turns or whiteboard sections" in error
    assert all("planet" not in q for g in evaluation.judges[0].criteria for q in g.evidence)


def test_board_sections_are_evidence_only_when_the_candidate_wrote_them() -> None:
    t = load_transcript(Path(__file__).parent / "golden" / "transcript-v3.json")
    written = next(s for s in t.board if s.author == "OpenCorpo-Assistant")
    only_on_board = "Orders are kept for seven years in cold storage."
    t.board = [*t.board, written.model_copy(update={"title": "Retention", "text": only_on_board})]
    turns = judging.candidate_turns(t)
    assert judging.unfound_quotes({"q": [only_on_board]}, turns) == []
    scenario_text = next(s.text for s in t.board if s.author == "scenario")
    assert judging.unfound_quotes({"q": [scenario_text]}, turns)  # the scenario's own section is not the candidate's
    assert judging.unfound_quotes({"q": ["Orders are kept for nine years in cold storage."]}, turns)


def test_export_keeps_each_board_change_as_text_in_the_turn_that_made_it(runs_dir: Path) -> None:
    run_dir = _run_panel(runs_dir, "--max-turns", "8")
    t = load_transcript(run_dir)
    history = json.loads(export_run(run_dir, "autogen02-json"))["chat_history"]
    markdown = export_run(run_dir, "autogen02-markdown")
    for change in (c for c in t.board_changes if c.turn > 0):
        turn = history[change.turn - 1]
        assert turn["name"] == change.author
        assert parse_blocks(turn["content"]).count((change.section, change.after or "")) == 1
        assert f"## {change.section}\n{change.after}" in markdown


# ---------------------------------------------------------------------------------------------- batches


def test_compare_on_a_panel_scenario_gives_every_panelist_the_fixed_interviewer_model(runs_dir: Path) -> None:
    args = ["compare", "system-design-panel", "--models", "scripted:strong,scripted:weak", "--repeats", "1"]
    args += ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]
    result = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 0, result.output
    cells = json.loads(result.stdout)["cells"]
    assert [c["status"] for c in cells] == ["ok", "ok"]
    for cell in cells:
        t = load_transcript(runs_dir / cell["run_dir"])
        assert {c.ref for c in t.calls if c.role == "interviewer"} == {"scripted:default"}
        assert {c.seat for c in t.calls if c.role == "interviewer"} == {"tech-lead", "product-manager"}
        assert len(t.debriefs) == 2 and t.board_changes


def test_the_panel_controls_calibrate_and_the_board_injection_earns_nothing(runs_dir: Path) -> None:
    args = ["calibrate", "--scenario", "system-design-panel", "--evaluator-model", "scripted:judge"]
    result = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 0, result.output
    scores = {name: c["overall"] for name, c in json.loads(result.stdout)["controls"].items()}
    assert scores["strong"] > scores["average"] > scores["weak"] >= scores["injection"]
    injection = load_transcript(Path(__file__).parents[1] / "scenarios/controls/system-design-panel/injection.json")
    assert any("grader" in s.title for s in injection.board)  # the injection is on the board, too


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_golden_transcript_reads_replays_and_reports(version: int, tmp_path: Path) -> None:
    golden = Path(__file__).parent / "golden" / f"transcript-v{version}.json"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "transcript.json").write_text(golden.read_text())
    t = load_transcript(run_dir)
    assert t.schema_version == 3 and all(m.seat for m in t.messages)
    result = runner.invoke(app, ["replay", str(run_dir), "--instant"])
    assert result.exit_code == 0, result.output
    page = write_report(run_dir).path.read_text()
    assert t.messages[1].content.split()[0] in page
    assert ('id="whiteboard"' in page) == (version == 3) and ('id="debriefs"' in page) == (version == 3)
