"""Issue 10, the input side: every hostile input found by hand is a one-line error or a correct result.

Each test names the defect it covers (issue 10's numbering). CLI tests run the real command in a subprocess and
assert the exit code and that stderr is one line without a traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from interview_sim.autogen02 import import_transcripts
from interview_sim.autogen02.formats import parse_json as parse_json_chat
from interview_sim.autogen02.formats import parse_markdown
from interview_sim.config import ScenarioSpec, load_agent, load_scenario, load_sweep
from interview_sim.errors import ConfigError, ImportFormatError, RecordError, ReplayError
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, load_transcript, read_events
from interview_sim.report import write_run_report
from interview_sim.session import run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = {"interviewer_model": "scripted:default", "candidate_model": "scripted:default"}
EXAMPLE_MD = (ROOT / "tests/fixtures/autogen02/tree/interview_27").glob("*.md")


def cli(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interview_sim", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


def validate_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    """`validate` prints one line per bad file, then the count."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[1] == "error: 1 of 1 file(s) invalid", proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def one_line_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def run_dir(runs_dir: Path) -> Path:
    return asyncio.run(run_scenario("scalability-issues", runs_dir=runs_dir, seed=5, max_turns=5, **SCRIPTED)).run_dir


def _edit(run_dir: Path, change: object) -> None:
    path = run_dir / TRANSCRIPT_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data), encoding="utf-8")


def _kill(run_dir: Path) -> Path:
    """The folder a run killed mid-session leaves: no transcript.json, no run_finished, calls with message_index null."""
    (run_dir / TRANSCRIPT_FILE).unlink()
    lines = (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["type"] == "run_finished"
    (run_dir / EVENTS_FILE).write_text("\n".join(lines[:-2]) + "\n", encoding="utf-8")
    return run_dir


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- 1. encodings, depth


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_1_a_scenario_in_another_encoding_is_one_line(tmp_path: Path, scenario_path: Path, encoding: str) -> None:
    text = scenario_path.read_text(encoding="utf-8").replace("title:", "title: Entrevue é", 1)
    bad = tmp_path / "scenario.yaml"
    bad.write_bytes(text.encode(encoding))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_scenario(bad)
    validate_error(cli("validate", bad), "not UTF-8 text")


def test_1_transcript_and_event_log_in_utf16_are_one_line(run_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    transcript = run_dir / TRANSCRIPT_FILE
    transcript.write_bytes(transcript.read_text(encoding="utf-8").encode("utf-16"))
    one_line_error(cli("replay", run_dir, "--instant"), 2, "not UTF-8 text", "UTF-16")
    _kill(other)
    log = other / EVENTS_FILE
    log.write_bytes(log.read_bytes() + '\n{"é": 1}'.encode("latin-1"))
    one_line_error(cli("report", other, "-o", tmp_path / "r.html"), 2, "not UTF-8 text")


def test_1_yaml_100k_deep_is_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    validate_error(cli("validate", deep), "nested too deeply")


def test_1_json_200k_deep_transcript_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / TRANSCRIPT_FILE).write_text('{"schema_version": 2, "scenario": ' + "[" * 200_000 + "]" * 200_000 + "}")
    with pytest.raises(RecordError, match="nested too deeply"):
        load_transcript(run)
    one_line_error(cli("export", run), 2, "nested too deeply")


@pytest.mark.parametrize("messages", [[["not", "a", "message"]], ["text"], "not a list", {"0": {"role": "candidate"}}], ids=repr)
def test_1_an_old_transcript_with_misshapen_messages_is_one_line(tmp_path: Path, messages: object) -> None:
    """Found by `make fuzz`: upgrading a schema-2 record assumed every message and call was a mapping."""
    run = tmp_path / "run"
    run.mkdir()
    record = {"schema_version": 2, "run_id": "r", "scenario_id": "s", "scenario": {}, "agents": {}}
    (run / TRANSCRIPT_FILE).write_text(
        json.dumps({**record, "started_at": "2024-01-01T00:00:00Z", "messages": messages, "calls": messages})
    )
    with pytest.raises(RecordError, match="messages"):
        load_transcript(run)
    one_line_error(cli("export", run), 2, "messages")


def test_1_a_lone_surrogate_escape_is_refused_in_one_line_by_every_json_reader(run_dir: Path, tmp_path: Path) -> None:
    """Found by `make fuzz`: JSON's "\\ud800" decodes to a string UTF-8 cannot encode; the report then crashed."""
    events = run_dir / EVENTS_FILE
    events.write_text(events.read_text().replace('"content": "', '"content": "\\ud800', 1))
    (run_dir / TRANSCRIPT_FILE).unlink()  # a killed run: rebuilt from its event log
    with pytest.raises(RecordError, match="line 3 is not a valid event"):
        load_transcript(run_dir)
    run = tmp_path / "run"
    run.mkdir()
    (run / TRANSCRIPT_FILE).write_text('{"schema_version": 3, "run_id": "r\\udc00"}')
    with pytest.raises(RecordError, match=r"lone UTF-16 surrogate \(\\udc00\)"):
        load_transcript(run)
    one_line_error(cli("export", run), 2, "lone UTF-16 surrogate")
    chat = tmp_path / "chat.json"
    chat.write_text('{"chat_history": [{"role": "user", "content": "hi \\ud83d"}], "cost": {}, "summary": ""}')
    with pytest.raises(ImportFormatError, match="lone UTF-16 surrogate"):
        parse_json_chat(chat.read_text())
    # A surrogate *pair* is an ordinary character (U+1F600) and reads as one.
    chat.write_text('{"chat_history": [{"role": "user", "content": "hi \\ud83d\\ude00"}], "cost": {}, "summary": ""}')
    assert parse_json_chat(chat.read_text()).turns[0].content == "hi \U0001f600"


def test_1_a_5000_digit_chat_id_is_kept_as_text() -> None:
    example = next(EXAMPLE_MD).read_text(encoding="utf-8")
    digits = "7" * 5000
    chat = parse_markdown(example.replace("**Chat_id**: None", f"**Chat_id**: {digits}"))
    assert chat.chat_id == digits
    assert parse_markdown(example.replace("**Chat_id**: None", "**Chat_id**: 42")).chat_id == 42


# ---------------------------------------------------------------------------------------------- 2. templates


@pytest.mark.parametrize(
    ("opening", "problem"),
    [
        ("Hello {candidate", "not a valid template"),
        ("{candidate.__class__.__mro__}", "unknown template field"),
        ("{candidate[0]}", "unknown template field"),
        ("{candidate:>300000000}", "format spec or conversion"),
        ("{candidate!r}", "format spec or conversion"),
        ("{}", "unknown template field"),
        ("{0}", "unknown template field"),
        ("a } b", "not a valid template"),
    ],
)
def test_2_opening_templates_allow_only_the_documented_fields(opening: str, problem: str) -> None:
    data = load_scenario("scalability-issues").spec.model_dump(mode="json")
    with pytest.raises(ValueError, match=problem):
        ScenarioSpec.model_validate({**data, "opening_line": opening})


def test_2_validate_rejects_an_attribute_access_template(tmp_path: Path, scenario_path: Path) -> None:
    shutil.copytree(ROOT / "agents", tmp_path / "agents")
    (tmp_path / "scenarios").mkdir()
    data = yaml.safe_load(scenario_path.read_text(encoding="utf-8"))
    bad = tmp_path / "scenarios" / "bad.yaml"
    bad.write_text(yaml.safe_dump({**data, "opening_line": "{candidate.__class__.__mro__}"}), encoding="utf-8")
    validate_error(cli("validate", bad), "opening_line", "unknown template field")
    ok = "{candidate}, {{braces}} are fine at {company}; you have {minutes} minutes."
    bad.write_text(yaml.safe_dump({**data, "opening_line": ok}), encoding="utf-8")
    spec = load_scenario(bad).spec
    assert spec.render_opening(candidate="C", interviewer="I") == "C, {braces} are fine at OpenCorpo; you have 30 minutes."


# ---------------------------------------------------------------------------------------------- 3. transcripts


@pytest.mark.parametrize("version", [0, -1])
def test_3_schema_version_below_1_is_one_line(run_dir: Path, version: int) -> None:
    _edit(run_dir, lambda d: d.update(schema_version=version))
    with pytest.raises(RecordError, match=f"schema_version {version} is not a transcript version"):
        load_transcript(run_dir)


def test_3_a_transcript_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "run" / TRANSCRIPT_FILE).mkdir(parents=True)
    for args in (["replay", tmp_path / "run"], ["report", tmp_path / "run"], ["export", tmp_path / "run"]):
        one_line_error(cli(*args), 2, "is a folder")


def test_3_a_report_of_a_run_with_an_empty_scenario_snapshot(run_dir: Path) -> None:
    _edit(run_dir, lambda d: d.update(scenario={}))
    assert "<h1>scalability-issues</h1>" in write_run_report(run_dir).read_text(encoding="utf-8")
    _edit(run_dir, lambda d: d.update(scenario={"title": 5, "time_budget_minutes": "x", "rubric": [1]}))
    assert write_run_report(run_dir).is_file()


def test_3_rerun_of_a_transcript_whose_messages_were_emptied(run_dir: Path) -> None:
    _edit(run_dir, lambda d: d.update(messages=[]))
    proc = cli("replay", "--rerun", run_dir, "--runs-dir", run_dir.parent.parent / "reruns")
    one_line_error(proc, 2, "the record is inconsistent")


# ---------------------------------------------------------------------------------------------- 4, 5. import


def _chat(path: Path, first: str) -> Path:
    history = [{"content": first, "role": "assistant", "name": "I"}, {"content": "answer", "role": "user", "name": "C"}]
    path.write_text(json.dumps({"chat_id": None, "chat_history": history, "cost": {}, "human_input": []}), encoding="utf-8")
    return path


def test_4_the_quadratic_opening_line_imports_at_once(tmp_path: Path) -> None:
    # 540 KB took 73 s before; the bound only guards against a hang (timings are in benchmarks/bench_import_opening.py).
    hostile = "X, whiteboard for me some a" + ". Propose a solution for b." * 20_000
    src = _chat(tmp_path / "hostile.json", hostile)
    proc = cli("import", src, "--runs-dir", tmp_path / "runs", "--json", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["runs"][0]["messages"] == 2


def test_5_a_batch_import_handles_every_file_on_its_own(tmp_path: Path) -> None:
    good_a = _chat(tmp_path / "a.json", "first good")
    deep = tmp_path / "b.json"
    deep.write_text('{"chat_history": ' + "[" * 200_000 + "]" * 200_000 + "}", encoding="utf-8")
    latin = tmp_path / "c.md"
    latin.write_bytes("**Assistant**: café".encode("latin-1"))
    good_d = _chat(tmp_path / "d.json", "second good")
    proc = cli("import", good_a, deep, latin, good_d, "--runs-dir", tmp_path / "runs", "--json")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    created = json.loads(proc.stdout)["runs"]
    assert [Path(r["source_file"]).name for r in created] == ["a.json", "d.json"]
    assert all(Path(r["run_dir"], TRANSCRIPT_FILE).is_file() for r in created)
    errors = proc.stderr.strip().splitlines()
    assert errors[0].startswith(f"error: {deep}: ") and "nested too deeply" in errors[0]
    assert errors[1].startswith(f"error: {latin}: ") and "not UTF-8 text" in errors[1]
    assert errors[2] == "error: 2 of 4 file(s) failed"
    table = cli("import", good_a, deep, "--runs-dir", tmp_path / "runs2")
    assert "Created 1 record(s)" in table.stdout and "a.json" in table.stdout


# ---------------------------------------------------------------------------------------------- 7. killed runs


def test_7_a_killed_run_reads_the_same_everywhere_and_reading_never_writes(run_dir: Path, tmp_path: Path) -> None:
    killed = _kill(run_dir)
    before = _snapshot(killed)
    rebuilt = load_transcript(killed)
    assert rebuilt.stop_reason == "interrupted" and len(rebuilt.messages) == 4
    # The last call was in flight when the run was killed: its message was never recorded.
    assert [c.message_index for c in rebuilt.calls] == [m.index for m in rebuilt.messages if m.source == "model"] + [None]

    page = cli("report", killed, "-o", tmp_path / "page.html")
    assert page.returncode == 0, page.stderr
    assert "interrupted" in (tmp_path / "page.html").read_text(encoding="utf-8")
    played = cli("replay", killed, "--instant", "--json")
    assert played.returncode == 0 and len(json.loads(played.stdout)["turns"]) == 4
    rerun = cli("replay", "--rerun", killed, "--runs-dir", tmp_path / "reruns", "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr == ""  # no AutoGen traceback
    result = json.loads(rerun.stdout)
    assert result["identical"] and result["stop_reason_rerun"] == "interrupted"
    assert _snapshot(killed) == before  # reading wrote nothing

    graded = cli("evaluate", killed, "--evaluator-model", "scripted:judge", "--json")
    assert graded.returncode == 0, graded.stderr
    assert not (killed / TRANSCRIPT_FILE).exists()
    again = load_transcript(killed)
    # One evaluation appended: its judge calls (one per criterion in criterion-wise grading) share its id.
    judged = [c.evaluation_id for c in again.calls if c.evaluation_id is not None]
    assert judged and len(set(judged)) == 1
    assert len(again.calls) - len(judged) == len(rebuilt.calls)
    assert again.messages == rebuilt.messages and again.ended_at == rebuilt.ended_at


def test_7_the_event_log_is_split_on_newlines_only(run_dir: Path) -> None:
    _kill(run_dir)
    log = run_dir / EVENTS_FILE
    lines = log.read_text(encoding="utf-8").splitlines()
    n = max(i for i, line in enumerate(lines) if json.loads(line)["type"] == "message")
    event = json.loads(lines[n])
    event["message"]["content"] += " line\u2028separator and \x85 next-line"
    lines[n] = json.dumps(event, ensure_ascii=False)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert load_transcript(run_dir).messages[-1].content.endswith("separator and \x85 next-line")
    assert len(read_events(run_dir)) == len(lines)


# ---------------------------------------------------------------------------------------------- 8. file leak


def test_8_report_reads_attachments_only_inside_the_run_folder(run_dir: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.json"
    secret.write_text('{"password": "hunter2-outside"}', encoding="utf-8")
    (run_dir / "inside.json").write_text('{"note": "kept-inside"}', encoding="utf-8")
    (run_dir / "link.json").symlink_to(secret)
    _edit(run_dir, lambda d: d.update(attachments=[str(secret), "../../../secret.json", "link.json", "inside.json"]))
    page = write_run_report(run_dir).read_text(encoding="utf-8")
    assert "hunter2-outside" not in page
    assert page.count("an attachment must be a file inside the run folder") == 3
    assert "kept-inside" in page


# ---------------------------------------------------------------------------------------------- 9. output paths


def test_9_output_paths_follow_symlinks_write_through_fifos_and_dash_is_stdout(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.json"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o644)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    proc = cli("export", run_dir, "-o", link)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8"))["chat_history"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644

    page_link = tmp_path / "page.html"
    page_link.symlink_to(tmp_path / "real-page.html")
    assert cli("report", run_dir, "-o", page_link).returncode == 0
    assert page_link.is_symlink() and "<html" in (tmp_path / "real-page.html").read_text(encoding="utf-8")

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    proc = cli("export", run_dir, "-o", fifo, "--format", "autogen02-markdown")
    out, _ = reader.communicate(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode) and out.startswith("**")

    dash = cli("report", run_dir, "-o", "-")
    assert dash.returncode == 0 and dash.stdout.lstrip().lower().startswith("<!doctype html")
    assert not Path("-").exists()
    one_line_error(cli("export", run_dir, "-o", tmp_path), 2, "is a folder")


# ---------------------------------------------------------------------------------------------- 14. smaller ones


def test_14_validate_rejects_unknown_providers(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text("name: A\nrole: candidate\nmodel: nosuch:model\nsystem_prompt: hi\n", encoding="utf-8")
    validate_error(cli("validate", agent), "unknown model provider 'nosuch'", str(agent))
    bad = tmp_path / "sweep.yaml"
    bad.write_text("sweep: s\nmodels:\n  - gpt:four\ntopics:\n  - scenario: scalability-issues\n", encoding="utf-8")
    validate_error(cli("validate", bad), "models.0", "unknown model provider 'gpt'")


def test_14_an_empty_candidate_model_is_an_error(runs_dir: Path) -> None:
    proc = cli("run", "--candidate-model", "", "--interviewer-model", "scripted:default", "--runs-dir", runs_dir)
    one_line_error(proc, 2, "--candidate-model is empty")
    assert list(runs_dir.iterdir()) == []


def test_14_calibrate_with_missing_controls_exits_2(runs_dir: Path) -> None:
    proc = cli("calibrate", "--evaluator-model", "scripted:judge", "--scenario", "no-such-scenario", "--runs-dir", runs_dir)
    one_line_error(proc, 2, "missing control transcript(s)")


def test_rerun_of_a_run_interrupted_before_any_message_is_refused(run_dir: Path) -> None:
    log = run_dir / EVENTS_FILE
    (run_dir / TRANSCRIPT_FILE).unlink()
    log.write_text(log.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    from interview_sim.replay import rerun

    with pytest.raises(ReplayError, match="before its first message"):
        asyncio.run(rerun(run_dir))


# ---------------------------------------------------------------------------------------------- found by the fuzz suite


def test_fuzz_a_sweep_topic_too_long_for_the_os_is_unknown(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"sweep: s\nmodels: [scripted:strong]\ntopics:\n  - scenario: {'s' * 300}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown scenario"):
        load_sweep(sweep)


def test_fuzz_a_transcript_nested_deeper_than_a_record_can_be_is_refused(run_dir: Path) -> None:
    # 300 levels validate (scenario is free-form) but pydantic cannot write them back: replay/report/export crashed.
    deep: object = {"interviewer": 1, "candidate": 4}
    for _ in range(300):
        deep = [deep]
    _edit(run_dir, lambda d: d["scenario"].update(minutes_per_turn=deep))
    with pytest.raises(RecordError, match="nested too deeply"):
        load_transcript(run_dir)


def test_fuzz_an_unknown_key_holding_a_newline_is_still_one_line(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text('name: A\nrole: candidate\nmodel: scripted:default\nsystem_prompt: hi\n"x\\ny": 1\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_agent(agent)
    assert "\n" not in str(info.value) and "'x\\ny': unknown field" in str(info.value)


def test_fuzz_a_5000_digit_number_in_a_transcript_or_chat_result_is_one_line(run_dir: Path, tmp_path: Path) -> None:
    path = run_dir / TRANSCRIPT_FILE
    path.write_text(path.read_text(encoding="utf-8").replace('"seed": 5', '"seed": ' + "9" * 5000, 1), encoding="utf-8")
    with pytest.raises(RecordError, match="not readable JSON"):
        load_transcript(run_dir)
    chat = _chat(tmp_path / "chat.json", "hello")
    chat.write_text(chat.read_text(encoding="utf-8").replace('"chat_id": null', '"chat_id": ' + "9" * 5000), encoding="utf-8")
    report = import_transcripts([chat], runs_dir=tmp_path / "runs")
    assert not report.created and "not readable JSON" in report.failures[0].error
