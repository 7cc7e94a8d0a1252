"""The CLI through typer's CliRunner: one JSON object with --json, one line and an exit code on bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from cli_process import SCRIPTED, one_line, run_cli
from interview_sim.cli import app
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, load_transcript, parse_event

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_run_json_prints_one_object_with_the_run(runs_dir: Path) -> None:
    result = runner.invoke(app, ["run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {"run_dir", "transcript", "stop_reason", "messages", "usage"} <= set(summary)
    assert summary["stop_reason"] == "end_marker" and summary["messages"] == 11
    assert set(summary["usage"]) == {"scripted-default", "scripted-judge"}
    assert summary["usage"]["scripted-default"]["prompt_tokens"] > 0
    assert summary["evaluation"]["status"] == "ok" and summary["evaluation"]["overall"] is not None
    transcript = json.loads(Path(summary["transcript"]).read_text())
    assert next(iter(transcript)) == "schema_version"
    assert set(transcript["usage"]["including_cached"]["by_role"]) == {"interviewer", "candidate", "evaluator"}
    assert set(transcript["cost"]["usage_including_cached_inference"]) == {"total_cost", "scripted-default", "scripted-judge"}


def test_run_renders_the_session_live(runs_dir: Path) -> None:
    result = runner.invoke(app, ["run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--max-turns", "3"])
    assert result.exit_code == 0, result.output
    assert "OpenCorpo-Assistant (candidate, scripted-default)" in result.stdout
    assert "Usage per model" in result.stdout and "transcript:" in result.stdout


def test_bad_scenario_file_is_one_line_exit_2(tmp_path: Path, scenario_path: Path, runs_dir: Path) -> None:
    data = yaml.safe_load(scenario_path.read_text())
    data["max_turns"] = 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["run", str(bad), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {bad}: max_turns: Input should be greater than or equal to 1"
    assert "Traceback" not in result.output
    assert not any(runs_dir.iterdir())


def test_validate_reports_each_file(tmp_path: Path) -> None:
    bad = tmp_path / "agent.yaml"
    bad.write_text("name: A\nrole: candidate\nmodel: scripted:default\nsystem_prompt: hi\nvoice: loud\n")
    result = runner.invoke(app, ["validate", str(ROOT / "scenarios" / "scalability-issues.yaml"), str(bad)])
    assert result.exit_code == 2
    assert "ok: " in result.stdout and "(scenario)" in result.stdout
    assert f"error: {bad}: voice: unknown field (not allowed)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--candidate-model", "nosuch:model"], "unknown model provider 'nosuch'"),
        (["--candidate-model", "scripted:nobody"], "unknown scripted model 'scripted:nobody'"),
        (["--candidate-model", "llamacpp:/no/such/model.gguf"], "model file /no/such/model.gguf not found"),
    ],
)
def test_unknown_models_are_one_line(args: list[str], message: str, runs_dir: Path) -> None:
    result = runner.invoke(
        app, ["run", "scalability-issues", "--interviewer-model", "scripted:default", *args, "--runs-dir", str(runs_dir)]
    )
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_models_lists_backends_and_readiness() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    models = {m["ref"]: m for m in json.loads(result.stdout)}
    assert models["scripted:default"]["ready"] is True
    assert "llamacpp:smollm2-135m" in models


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "models", "validate"):
        assert command in result.stdout


_SLOW_RUN = """
import asyncio, sys, time
from interview_sim.models import ModelOptions, create_model
from interview_sim.session import run_scenario

def slow(ref, options):
    model = create_model(ref, options)
    inner = model.complete
    async def complete(request):
        await asyncio.sleep(0.3)
        return await inner(request)
    model.complete = complete
    return model

asyncio.run(run_scenario("scalability-issues", interviewer_model="scripted:default", candidate_model="scripted:default",
                         runs_dir=sys.argv[1], model_factory=slow))
"""


def test_a_run_killed_mid_session_leaves_a_valid_event_log(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_RUN, str(runs_dir)], env=env)
    try:
        deadline = time.monotonic() + 60
        events: Path | None = None
        while time.monotonic() < deadline:
            found = list(runs_dir.glob(f"*/*/{EVENTS_FILE}"))
            if found and found[0].read_text().count('"type": "message"') >= 3:
                events = found[0]
                break
            time.sleep(0.05)
        assert events is not None, "the session never got going"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    lines = events.read_text().splitlines()
    parsed = [parse_event(line) for line in lines]  # every line is a whole, valid event
    assert parsed[0].type == "run_started"
    assert sum(1 for e in parsed if e.type == "message") >= 3
    assert not (events.parent / TRANSCRIPT_FILE).exists()

    # What was recorded is not lost: the transcript is rebuilt from the event log.
    recovered = load_transcript(events.parent)
    assert recovered.stop_reason == "interrupted" and "did not finish" in (recovered.error or "")
    assert len(recovered.messages) == sum(1 for e in parsed if e.type == "message")
    assert recovered.messages[0].content.startswith("OpenCorpo-Assistant, whiteboard")
    assert recovered.usage.including_cached.total.calls == sum(1 for e in parsed if e.type == "model_call")


def test_run_report_flag_writes_the_run_page(runs_dir: Path) -> None:
    result = runner.invoke(app, ["run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--report", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    page = Path(summary["report"])
    assert page == Path(summary["run_dir"]) / "report.html"
    html = page.read_text()
    assert "OpenCorpo-Assistant, whiteboard for me some scalability issues" in html
    assert "Security measures" in html  # the grade is on the page


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["run", "--bogus"], "error: No such option: --bogus (see 'interview-sim run --help')"),
        (["replay"], "error: Missing argument 'run' (see 'interview-sim replay --help')"),
        (["nosuch"], "error: No such command 'nosuch' (see 'interview-sim --help')"),
        (["runs", "nosuch"], "error: No such command 'nosuch' (see 'interview-sim runs --help')"),
        (
            ["run", "--max-turns", "0"],
            "error: Invalid value for '--max-turns': Input should be greater than or equal to 1 (see 'interview-sim run --help')",
        ),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], line: str) -> None:
    """What click reports as a usage error (a box of five lines by default) is one line, as the rest of the CLI's errors."""
    result = run_cli(*args)
    assert result.returncode == 2
    assert one_line(result.stderr) == line
    assert result.stdout == ""


def test_help_and_a_bare_command_still_show_help() -> None:
    assert run_cli("--help").returncode == 0
    bare = run_cli()
    assert bare.returncode == 2 and "Usage: interview-sim" in bare.stdout + bare.stderr
    assert "Traceback" not in bare.stderr
