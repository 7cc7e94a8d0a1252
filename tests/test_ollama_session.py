"""Whole sessions through the real `ollama` client against a fake Ollama server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fake_ollama import FakeOllama
from interview_sim.cli import app
from interview_sim.config import load_agent

ROOT = Path(__file__).resolve().parents[1]
LLAMA3, GEMMA = "llama3:8b-instruct-fp16", "gemma:2b-instruct-v1.1-fp16"
runner = CliRunner()


def _run(runs_dir: Path, *models: str) -> tuple[int, str, str]:
    args = ["run", "scalability-issues", "--max-turns", "5", "--runs-dir", str(runs_dir), "--json", "--no-evaluate"]
    args += ["--interviewer-model", models[0], "--candidate-model", models[1]]
    result = runner.invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def test_session_on_two_ollama_models_records_their_tags_digests_and_retries(
    fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ollama.add_model(GEMMA, context_length=8192)
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.host)
    fake_ollama.fail_next(1, status=500)  # the first chat call fails once, then succeeds when retried

    code, out, err = _run(runs_dir, f"ollama:{GEMMA}", f"ollama:{LLAMA3}")
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["usage"]) == {LLAMA3, GEMMA}
    cost = summary["cost"]["usage_including_cached_inference"]
    assert set(cost) == {"total_cost", LLAMA3, GEMMA}
    transcript = json.loads(Path(summary["transcript"]).read_text())
    calls = transcript["calls"]
    assert len(calls) == 4 and [c["model"] for c in calls] == [LLAMA3, GEMMA, LLAMA3, GEMMA]
    # Ollama's own counts, as the server reported them, and the digest of the model that answered.
    sent = fake_ollama.chat_requests
    assert calls[0]["completion_tokens"] == 2 and calls[0]["metadata"]["digest"]
    assert calls[0]["metadata"]["timings"]["eval_duration"] == 80_000_000
    assert calls[0]["retries"] and "500" in calls[0]["retries"][0]["error"]
    assert all(c["retries"] == [] for c in calls[1:])
    # What the agents' files ask for reaches the server: the per-turn cap and the seed.
    assert len(sent) == 5 and sent[0] == sent[1]  # the failed attempt and its retry carry the same request
    candidate, interviewer = (load_agent(ROOT / "agents" / f"{role}.yaml") for role in ("candidate", "interviewer"))
    assert sent[1]["options"]["num_predict"] == candidate.max_tokens and sent[1]["options"]["seed"] == candidate.seed
    assert sent[2]["options"]["num_predict"] == interviewer.max_tokens and sent[2]["options"]["seed"] == interviewer.seed


def test_unreachable_ollama_is_one_line_within_five_seconds(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")
    start = time.monotonic()
    code, _, err = _run(runs_dir, "scripted:default", f"ollama:{LLAMA3}")
    assert time.monotonic() - start < 5
    assert code == 3
    assert err.strip().splitlines() == [err.strip()] and "ollama serve" in err and "Traceback" not in err
    assert not any(runs_dir.iterdir())  # nothing written for a run that could not start


def test_model_not_pulled_says_what_to_pull(fake_ollama: FakeOllama, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", fake_ollama.url)
    code, _, err = _run(runs_dir, "scripted:default", f"ollama:{GEMMA}")
    assert code == 3
    assert f"ollama pull {GEMMA}" in err and len(err.strip().splitlines()) == 1
