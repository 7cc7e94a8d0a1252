"""Arize Phoenix, for real: start it on 127.0.0.1, send a run's trace, find it through Phoenix's REST API.

Opt-in (marker `phoenix`; skipped unless INTERVIEW_SIM_PHOENIX=1): Phoenix takes half a minute to start, and
arize-phoenix cannot share interview-sim's environment (its pydantic-ai dependency has no release that fits our
pins), so it lives in a virtual environment of its own, named by INTERVIEW_SIM_PHOENIX_PYTHON:

    python3 -m venv /tmp/phx-venv && /tmp/phx-venv/bin/pip install arize-phoenix
    INTERVIEW_SIM_PHOENIX=1 INTERVIEW_SIM_PHOENIX_PYTHON=/tmp/phx-venv/bin/python pytest tests/test_phoenix.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_process import SCRIPTED, run_cli
from interview_sim.exports.otel import trace_id_of
from interview_sim.grading.evaluate import load_evaluations
from interview_sim.record import load_transcript

pytestmark = [
    pytest.mark.phoenix,
    pytest.mark.skipif(
        os.environ.get("INTERVIEW_SIM_PHOENIX") != "1",
        reason="Arize Phoenix integration: opt in with INTERVIEW_SIM_PHOENIX=1 (and INTERVIEW_SIM_PHOENIX_PYTHON)",
    ),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


@pytest.fixture
def phoenix(tmp_path: Path) -> Iterator[str]:
    python = os.environ.get("INTERVIEW_SIM_PHOENIX_PYTHON", sys.executable)
    found = subprocess.run([python, "-c", "import phoenix"], capture_output=True)
    if found.returncode != 0:
        pytest.fail(f"arize-phoenix is not installed for {python}: see this module's docstring")
    port, grpc = _port(), _port()
    env = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc),
        "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"),
    }
    env.pop("PYTHONPATH", None)
    log = (tmp_path / "phoenix.log").open("w")
    proc = subprocess.Popen([python, "-m", "phoenix.server.main", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"Phoenix did not start:\n{(tmp_path / 'phoenix.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_phoenix_finds_the_runs_trace(phoenix: str, runs_dir: Path) -> None:
    result = run_cli(
        "run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--json", "--otel",
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": phoenix},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "traces: 1 session(s)" in result.stderr
    run_dir = Path(json.loads(result.stdout)["run_dir"])
    transcript = load_transcript(run_dir)
    (evaluation,) = load_evaluations(run_dir)
    trace_id = f"{trace_id_of(transcript.run_id):032x}"
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # Phoenix writes what it receives in the background
        found = _get(f"{phoenix}/v1/projects/default/spans?limit=1000")["data"]
        spans = [s for s in found if s["context"]["trace_id"] == trace_id]
        if any(s["name"] == "invoke_agent evaluator" for s in spans) and len(spans) >= len(transcript.messages) + 2:
            break
        time.sleep(0.5)
    (root,) = [s for s in spans if s["parent_id"] is None]
    assert root["name"] == "interview scalability-issues"
    assert root["attributes"]["gen_ai.conversation.id"] == transcript.run_id
    turns = [s for s in spans if s["parent_id"] == root["context"]["span_id"] and s["name"] != "invoke_agent evaluator"]
    assert sorted(s["name"] for s in turns) == sorted(f"invoke_agent {m.agent}" for m in transcript.messages)
    chats = [s for s in spans if s["name"].startswith("chat ")]
    assert len(chats) == len(transcript.calls)
    (judge,) = [s for s in spans if s["name"] == "invoke_agent evaluator"]
    results = {e["attributes"]["gen_ai.evaluation.name"] for e in judge["events"] if e["name"] == "gen_ai.evaluation.result"}
    assert results == {*evaluation.criteria, "overall"}
