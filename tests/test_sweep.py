"""`sweep`: topics × solution topics × models × repeats, a leaderboard per group, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.compare import ALL_GROUPS, COMPARISON_FILE, load_comparison, run_sweep
from interview_sim.config import load_sweep, validate_file
from interview_sim.errors import ConfigError
from interview_sim.record import load_transcript

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ROOT / "scenarios" / "sweep-seven-topics.yaml"
runner = CliRunner()
OFFLINE = {
    "models": ["scripted:strong", "scripted:weak"],
    "fixed_model": "scripted:default",
    "evaluator_model": "scripted:judge",
}


def test_the_shipped_sweep_covers_the_seven_topics_on_the_embedded_model() -> None:
    assert validate_file(SWEEP) == "sweep"
    sweep = load_sweep("sweep-seven-topics")
    assert len(sweep.scenarios) == 7
    assert len({s.spec.topic for s in sweep.scenarios}) == 7
    assert sweep.spec.models == ["llamacpp:smollm2-135m"] and sweep.spec.repeats >= 2
    assert all(s.spec.id in {p.stem for p in (ROOT / "scenarios").glob("*.yaml")} for s in sweep.scenarios)


@pytest.mark.anyio
async def test_a_sweep_has_a_leaderboard_per_topic_and_over_all(runs_dir: Path) -> None:
    comparison = await run_sweep(SWEEP, repeats=1, runs_dir=runs_dir, **OFFLINE)  # type: ignore[arg-type]
    ids = [g.id for g in comparison.request.groups]
    assert len(ids) == 7 and comparison.kind == "sweep"
    assert len(comparison.cells) == 7 * 2
    groups = [row.group for row in comparison.leaderboard]
    assert groups == [g for g in ids for _ in range(2)] + [ALL_GROUPS, ALL_GROUPS]
    for row in comparison.leaderboard:
        # One repeat per topic cannot separate two models (they share rank 1); over the seven topics, the paired
        # test over their shared seeds does (strong ahead on all seven: Wilcoxon p = 2/2^7).
        assert row.rank == (2 if row.group == ALL_GROUPS and row.model != "scripted:strong" else 1), row
    assert any(note.startswith("shared ranks (") and "Wilcoxon" in note for note in comparison.notes)
    overall = [r for r in comparison.leaderboard if r.group == ALL_GROUPS]
    assert overall[0].n == 7 and overall[0].ci_low is not None and overall[0].wins == 7
    # Each cell ran its own topic's scenario.
    for cell in comparison.cells:
        assert load_transcript(runs_dir / str(cell.run_dir)).scenario_id == cell.group


@pytest.mark.anyio
async def test_solution_topics_make_groups_of_one_scenario(runs_dir: Path, tmp_path: Path) -> None:
    spec = {
        "sweep": "two-solutions",
        "models": ["scripted:average"],
        "topics": [{"scenario": "scalability-issues", "solution_topics": ["a payments API", "a video upload service"]}],
    }
    path = tmp_path / "sweep-two.yaml"
    path.write_text(yaml.safe_dump(spec))
    comparison = await run_sweep(path, fixed_model="scripted:default", evaluator_model="scripted:judge", runs_dir=runs_dir)
    assert [g.id for g in comparison.request.groups] == ["scalability-issues~1", "scalability-issues~2"]
    topics = {c.group: load_transcript(runs_dir / str(c.run_dir)).scenario["solution_topic"] for c in comparison.cells}
    assert topics == {"scalability-issues~1": "a payments API", "scalability-issues~2": "a video upload service"}
    opening = load_transcript(runs_dir / str(comparison.cells[0].run_dir)).messages[0].content
    assert "Propose a solution for a payments API." in opening


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"voice": "loud"}, "voice: unknown field (not allowed)"),
        ({"models": []}, "models: List should have at least 1 item"),
        ({"candidate_model": "scripted:weak"}, "candidate_model is the compared role"),
        ({"topics": [{"scenario": "no-such-topic"}]}, "topics.0.scenario: unknown scenario 'no-such-topic'"),
    ],
)
def test_bad_sweep_files_are_one_line(change: dict[str, Any], message: str, tmp_path: Path, runs_dir: Path) -> None:
    data = {**yaml.safe_load(SWEEP.read_text()), **change}
    path = tmp_path / "sweep-bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_sweep(path)
    result = runner.invoke(app, ["sweep", str(path), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


_KILLABLE = """
import asyncio, sys
from interview_sim.compare import run_sweep
from interview_sim.models import create_model

def slow(ref, options):
    model = create_model(ref, options)
    inner = model.complete
    async def complete(request):
        await asyncio.sleep(0.04)
        return await inner(request)
    model.complete = complete
    return model

asyncio.run(run_sweep("sweep-seven-topics", models=["scripted:strong", "scripted:weak"], repeats=1, runs_dir=sys.argv[1],
                      fixed_model="scripted:default", evaluator_model="scripted:judge", model_factory=slow))
"""


def test_a_killed_sweep_resumes_where_it_stopped(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "INTERVIEW_SIM_HOME": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(runs_dir)], env=env)
    manifest: Path | None = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            found = list((runs_dir / "comparisons").glob(f"*/{COMPARISON_FILE}"))
            if found and sum(c.status == "ok" for c in load_comparison(found[0].parent).cells) >= 3:
                manifest = found[0]
                break
            time.sleep(0.02)
        assert manifest is not None, "the sweep never got going (or finished before it could be killed)"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    killed = load_comparison(manifest.parent).model_dump(mode="json")  # the summary and the journal after it
    finished = {c["key"]: c["run_dir"] for c in killed["cells"] if c["status"] == "ok"}
    assert killed["status"] == "running" and 3 <= len(finished) < 14

    result = runner.invoke(
        app,
        [
            "sweep", "sweep-seven-topics", "--models", "scripted:strong,scripted:weak", "--repeats", "1",
            "--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge",
            "--runs-dir", str(runs_dir), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    resumed = json.loads(result.stdout)
    assert resumed["comparison_id"] == killed["comparison_id"] and resumed["status"] == "complete"
    invocation = resumed["last_invocation"]
    assert (invocation["cells_skipped"], invocation["cells_run"]) == (len(finished), 14 - len(finished))
    assert all(c["status"] == "ok" for c in resumed["cells"])
    assert all(c["run_dir"] == finished[c["key"]] for c in resumed["cells"] if c["key"] in finished)
    assert len(resumed["pairs"]) == 7
