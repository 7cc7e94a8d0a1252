"""The errors a newcomer makes, in a real process: one clear line on stderr, the right exit code, no traceback."""

from __future__ import annotations

import time
from pathlib import Path

from cli_process import ROOT, SCRIPTED, one_line, run_cli
from interview_sim.version import version


def test_version() -> None:
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout == f"interview-sim {version()}\n"


def test_a_yaml_error_names_the_line_of_the_open_quote(tmp_path: Path) -> None:
    lines = (ROOT / "scenarios" / "scalability-issues.yaml").read_text().splitlines()
    number = next(i for i, line in enumerate(lines) if line.startswith("title:"))
    lines[number] = 'title: "Scalability issues'  # a quote opened and never closed
    bad = tmp_path / "bad.yaml"
    bad.write_text("\n".join(lines) + "\n")
    proc = run_cli("validate", str(bad))
    assert proc.returncode == 2
    assert f"{bad}: line {number + 1}: a quoted value" in proc.stderr.splitlines()[0]
    bad.write_text("\n".join(lines[: number + 1]) + "\n")  # and the file ends inside it
    proc = run_cli("validate", str(bad))
    assert f"{bad}: line {number + 1}: a quoted value is never closed" in proc.stderr.splitlines()[0]


def test_compare_with_ollama_down_exits_3_within_5_s_and_writes_nothing(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    started = time.monotonic()
    proc = run_cli(
        "compare",
        "scalability-issues",
        "--models",
        "scripted:strong,ollama:llama3:8b-instruct-fp16",
        *SCRIPTED[:2],
        *SCRIPTED[4:],
        "--runs-dir",
        str(runs),
        extra_env={"OLLAMA_HOST": "http://127.0.0.1:9"},  # nothing listens on the discard port
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert "Ollama is not reachable at http://127.0.0.1:9" in one_line(proc.stderr)
    assert elapsed < 5 + 3  # the 5 s readiness deadline, plus starting Python
    assert not runs.exists()


def test_model_suggests_the_seat_options_and_a_scenario_typo_its_name() -> None:
    proc = run_cli("run", "--model", "scripted:strong")
    assert proc.returncode == 2
    assert "--candidate-model" in one_line(proc.stderr) and "--interviewer-model" in proc.stderr
    proc = run_cli("run", "scalabilty-issues", *SCRIPTED)
    assert proc.returncode == 2
    assert "did you mean 'scalability-issues'?" in one_line(proc.stderr)


def test_help_at_80_columns_keeps_every_option_whole() -> None:
    proc = run_cli("run", "--help", extra_env={"COLUMNS": "80"})
    assert proc.returncode == 0 and "…" not in proc.stdout
    assert all(len(line) <= 80 for line in proc.stdout.splitlines())
    for option in ("--interviewer-model", "--candidate-model", "--evaluator-model", "--answer-time"):
        assert any(line.lstrip().startswith(option) for line in proc.stdout.splitlines()), option
