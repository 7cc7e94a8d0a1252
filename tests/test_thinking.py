"""Thinking models: the `think` setting reaches Ollama only for thinking-capable models, reasoning is kept
apart from the answer in every view, and an answer spent on thinking is never recorded as an empty turn."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fake_ollama import FakeOllama
from interview_sim.cli import app
from interview_sim.config import load_agent
from interview_sim.models.base import Completion
from interview_sim.models.thinking import describe_empty_answer, parse_think, separate_thinking, split_thinking

R1 = "deepseek-r1:8b"
GPT_OSS = "gpt-oss:20b"
LLAMA3 = "llama3:8b-instruct-fp16"
ROOT = Path(__file__).resolve().parents[1]
CLI = (sys.executable, "-m", "interview_sim")
runner = CliRunner()


def _run(runs_dir: Path, candidate: str, *extra: str, interviewer: str = "scripted:default") -> tuple[int, str, str]:
    args = ["run", "scalability-issues", "--max-turns", "5", "--runs-dir", str(runs_dir), "--json", "--no-evaluate"]
    args += ["--interviewer-model", interviewer, "--candidate-model", candidate, *extra]
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def _transcript(summary_json: str) -> dict[str, Any]:
    return json.loads(Path(json.loads(summary_json)["transcript"]).read_text())


# ---------------------------------------------------------------------------------------------- the pieces


def test_split_thinking_takes_a_leading_think_block_and_an_unclosed_one_is_all_reasoning() -> None:
    assert split_thinking("<think>\nweigh A vs B\n</think>\n\nUse B.") == ("weigh A vs B", "Use B.")
    assert split_thinking("< think > cut off mid thought") == ("cut off mid thought", "")
    plain = "No reasoning here. <think>not leading</think>"
    assert split_thinking(plain) == (None, plain)
    done = Completion(content="<think>r</think>answer", model="m", prompt_tokens=1, completion_tokens=2, latency_s=0.0)
    once = separate_thinking(done)
    assert (once.thinking, once.content) == ("r", "answer") and separate_thinking(once) == once


def test_think_values_and_the_empty_answer_line() -> None:
    assert [parse_think(v) for v in ("on", "OFF", "true", "no", "high")] == [True, False, True, False, "high"]
    with pytest.raises(ValueError, match="not a think setting"):
        parse_think("max")
    spent = Completion(content="", model="m", prompt_tokens=9, completion_tokens=128, latency_s=0.1, finish_reason="length")
    spent.thinking = "Let me think"
    line = describe_empty_answer("ollama:deepseek-r1", spent, 128)
    assert line.startswith("ollama:deepseek-r1 spent its 128-token budget thinking") and "think: false" in line
    capped = Completion(content=" ", model="m", prompt_tokens=9, completion_tokens=4, latency_s=0.1, finish_reason="length")
    assert "raise max_tokens" in describe_empty_answer("llamacpp:x", capped, 4)


# ---------------------------------------------------------------------------------------------- Ollama


def test_default_sends_think_false_to_a_thinking_model_and_nothing_to_others(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.add_model(R1, thinking=True)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    code, out, err = _run(runs_dir, f"ollama:{R1}", interviewer=f"ollama:{LLAMA3}")
    assert code == 0, err
    by_model = {r["model"]: r for r in fake_ollama.chat_requests}
    assert by_model[R1]["think"] is False  # explicit: without it, Ollama would think by default
    assert "think" not in by_model[LLAMA3]  # Ollama answers 400 to think on a model that cannot think
    transcript = _transcript(out)
    candidate = [m for m in transcript["messages"] if m["role"] == "candidate"]
    assert candidate and all(m["content"].strip() and m["thinking"] is None for m in candidate)


def test_thinking_on_records_reasoning_apart_from_a_non_empty_answer(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.add_model(R1, thinking=True)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    for n in range(2):
        fake_ollama.enqueue(f"I would shard by tenant ({n}).", thinking=f"First consider the load ({n}). Then shard.")
    code, out, err = _run(runs_dir, f"ollama:{R1}", "--think", "on")
    assert code == 0, err
    assert [r["think"] for r in fake_ollama.chat_requests] == [True, True]
    transcript = _transcript(out)
    candidate = [m for m in transcript["messages"] if m["role"] == "candidate"]
    assert [m["content"] for m in candidate] == ["I would shard by tenant (0).", "I would shard by tenant (1)."]
    assert [m["thinking"] for m in candidate] == [f"First consider the load ({n}). Then shard." for n in range(2)]
    calls = [c for c in transcript["calls"] if c["model"] == R1]
    # Ollama counts the reasoning in eval_count; the usage says so.
    assert calls[0]["completion_tokens"] == 6 + 7 and calls[0]["thinking"]
    assert any(R1 in note and "thinking" in note for note in transcript["usage"]["notes"])


def test_thinking_spent_the_whole_budget_stops_with_one_line_instead_of_recording_empty_turns(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.add_model(R1, thinking=True)  # reasons ~300 tokens by default, over the candidate's cap
    cap = load_agent(ROOT / "agents" / "candidate.yaml").max_tokens
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    code, _, err = _run(runs_dir, f"ollama:{R1}", "--think", "on")
    assert code != 0
    line = err.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in err
    assert f"ollama:{R1} spent its {cap}-token budget thinking" in line and "think: false" in line
    [run_dir] = [p for p in (runs_dir / "scalability-issues").iterdir() if p.is_dir()]
    transcript = json.loads((run_dir / "transcript.json").read_text())
    assert transcript["stop_reason"] == "error" and f"spent its {cap}-token budget thinking" in transcript["error"]
    assert all(m["content"].strip() for m in transcript["messages"])  # no '' turn was recorded
    tries = [c for c in transcript["calls"] if c["model"] == R1]
    assert len(tries) == 2 and all(c["finish_reason"] == "length" and c["thinking"] for c in tries)
    assert [c["metadata"]["empty_answer"] for c in tries] == ["retried", "retried once; still empty"]


def test_a_think_level_reaches_a_model_that_takes_levels_and_a_bad_one_is_refused(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.add_model(GPT_OSS, thinking=True, think_levels=True)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    fake_ollama.enqueue("Partition by tenant.", thinking="short")
    fake_ollama.enqueue("Cache the reports.", thinking="short")
    code, _, err = _run(runs_dir, f"ollama:{GPT_OSS}", "--think", "low")
    assert code == 0, err
    assert [r["think"] for r in fake_ollama.chat_requests] == ["low", "low"]
    code, _, err = _run(runs_dir, f"ollama:{GPT_OSS}", "--think", "lots")
    assert code == 2 and err.strip() == "error: --think: 'lots' is not a think setting (on, off, low, medium or high)"


# ---------------------------------------------------------------------------------------------- text-tag models


def test_reasoning_written_into_the_text_is_split_off_and_shown_collapsed_in_replay_report_and_left_out_of_export(
    runs_dir: Path,
) -> None:
    # scripted:thinker writes `<think>…</think>` into its text, as GGUF reasoning models do under llama.cpp.
    code, out, err = _run(runs_dir, "scripted:thinker")
    assert code == 0, err
    run_dir = Path(json.loads(out)["run_dir"])
    transcript = _transcript(out)
    candidate = [m for m in transcript["messages"] if m["role"] == "candidate"]
    assert candidate and all(m["thinking"].startswith("The interviewer asked about") for m in candidate)
    assert all("<think>" not in m["content"] and "think>" not in m["content"] for m in candidate)

    shown = runner.invoke(app, ["replay", str(run_dir), "--instant"])
    assert shown.exit_code == 0 and "▸ reasoning:" in shown.stdout and "The interviewer asked about" not in shown.stdout
    full = runner.invoke(app, ["replay", str(run_dir), "--instant", "--thinking"])
    assert "The interviewer asked about" in full.stdout
    as_json = json.loads(runner.invoke(app, ["replay", str(run_dir), "--json"]).stdout)
    assert as_json["turns"][1]["thinking"] == candidate[0]["thinking"]

    assert runner.invoke(app, ["report", str(run_dir)]).exit_code == 0
    page = (run_dir / "report.html").read_text()
    assert page.count('<details class="thinking">') == len(candidate) and "The interviewer asked about" in page

    for fmt in ("autogen02-json", "autogen02-markdown"):
        exported = runner.invoke(app, ["export", str(run_dir), "--format", fmt])
        assert exported.exit_code == 0 and "The interviewer asked about" not in exported.stdout
        assert candidate[0]["content"].strip()[:40] in exported.stdout.replace("\\n", "\n")

    rerun = runner.invoke(app, ["replay", str(run_dir), "--rerun", "--json", "--runs-dir", str(runs_dir)])
    assert rerun.exit_code == 0, rerun.stderr
    assert json.loads(rerun.stdout)["identical"] is True


def test_text_thinking_under_a_tiny_cap_stops_in_a_subprocess_with_one_line(runs_dir: Path, tmp_path: Path) -> None:
    # The cap is met inside `<think>`: the answer is empty, retried once, then the run stops; as a user sees it.
    candidate = tmp_path / "candidate.yaml"
    source = re.sub(r"max_tokens: \d+", "max_tokens: 16", (ROOT / "agents" / "candidate.yaml").read_text())
    candidate.write_text(re.sub(r"(?m)^model: .*$", "model: scripted:thinker", source))
    scenario = tmp_path / "scenario.yaml"
    text = (ROOT / "scenarios" / "scalability-issues.yaml").read_text()
    text = text.replace("../agents/", f"{ROOT / 'agents'}/").replace(f"{ROOT / 'agents'}/candidate.yaml", str(candidate))
    scenario.write_text(text)
    assert f"candidate: {candidate}" in scenario.read_text()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [*CLI, "run", str(scenario), "--interviewer-model", "scripted:default", "--no-evaluate", "--runs-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "error: scripted:thinker spent its 16-token budget thinking" in proc.stderr
