"""`compare`: cells as ordinary runs, leaderboards on known outcomes, resume, endpoints, the process pool."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fake_ollama import FakeOllama
from interview_sim.cli import app
from interview_sim.compare import COMPARISON_FILE, CSV_FILE, compare_models, load_comparison
from interview_sim.compare.cells import Endpoints, Scheduler
from interview_sim.errors import ModelCallError
from interview_sim.grading import stats as _stats
from interview_sim.models import ChatModel, Completion, CompletionRequest, ModelOptions, create_model
from interview_sim.models.cache import ModelWrapper
from interview_sim.record import load_transcript

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SCRIPTED = ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]
FIXED = {"fixed_model": "scripted:default", "evaluator_model": "scripted:judge"}


def _compare_json(runs_dir: Path, *extra: str) -> dict[str, Any]:
    args = ["compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", *SCRIPTED]
    result = runner.invoke(app, [*args, "--runs-dir", str(runs_dir), "--json", *extra])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


# ---------------------------------------------------------------------------------------------- leaderboard


def test_strong_beats_weak_with_confidence_intervals_and_win_rates(runs_dir: Path) -> None:
    data = _compare_json(runs_dir, "--repeats", "6", "--seed", "5")
    assert next(iter(data)) == "schema_version"
    assert data["status"] == "complete" and data["kind"] == "compare"
    board = data["leaderboard"]
    assert isinstance(board, list) and [row["model"] for row in board] == ["scripted:strong", "scripted:weak"]
    strong, weak = board
    assert (strong["rank"], weak["rank"]) == (1, 2)
    assert strong["n"] == weak["n"] == 6 and strong["failed"] == weak["failed"] == 0
    assert strong["mean"] > weak["mean"]
    for row in board:
        assert row["ci_low"] is not None and row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert strong["ci_low"] > weak["ci_high"]
    # Pairwise judgments on the same repeat: strong wins all six.
    assert (strong["wins"], strong["losses"], strong["win_rate"]) == (6, 0, 1.0)
    assert (weak["wins"], weak["losses"], weak["win_rate"]) == (0, 6, 0.0)
    assert set(strong["criteria"]) == {c for c in data["criteria"]} and len(strong["criteria"]) == 5
    assert all(strong["criteria"][c] >= weak["criteria"][c] for c in strong["criteria"])
    # The model's own usage in its role; scripted models take no generation time.
    assert strong["completion_tokens"] > weak["completion_tokens"] > 0 and strong["prompt_tokens"] > 0

    # Every cell is an ordinary, graded run folder; repeat r used seed S + r for every agent.
    assert len(data["cells"]) == 12
    for cell in data["cells"]:
        run_dir = runs_dir / cell["run_dir"]
        transcript = load_transcript(run_dir)
        assert transcript.seed == 5 + cell["repeat"] == cell["seed"]
        assert transcript.agents["candidate"]["model"] == cell["model"]
        assert transcript.agents["interviewer"]["model"] == "scripted:default"
        assert (run_dir / f"evaluation-{cell['evaluation_id']}.json").exists()
        assert {c.role for c in transcript.calls} == {"interviewer", "candidate", "evaluator"}
    assert len(data["pairs"]) == 6 and {p["winner"] for p in data["pairs"]} == {"scripted:strong"}

    folder = runs_dir / "comparisons" / data["comparison_id"]
    assert load_comparison(folder).model_dump(mode="json") == data
    with (folder / CSV_FILE).open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["scripted:strong", "scripted:weak"]
    assert float(rows[0]["mean"]) == strong["mean"] and rows[0]["criterion:security-measures"]


def test_statistics_on_fixed_inputs() -> None:
    # Fewer than five scores: no interval, and a note saying so.
    summary = _stats.mean_ci([3.0, 4.0, 5.0])
    assert (summary.n, summary.mean, summary.stdev, summary.ci_low, summary.ci_high) == (3, 4.0, 1.0, None, None)
    assert summary.note == "too few runs for an interval (3 graded; 5 needed)"
    assert _stats.mean_ci([4.2]).ci_low is None and _stats.mean_ci([]).mean is None
    assert _stats.mean_ci([2.0] * 5).ci_low == _stats.mean_ci([2.0] * 5).ci_high == 2.0
    # A skewed sample near the top of a 1-5 scale: a t-interval would pass 5; the bootstrap stays in the sample's range.
    skewed = _stats.mean_ci([5.0, 5.0, 5.0, 5.0, 5.0, 1.0])
    assert skewed.ci_low is not None and skewed.ci_high is not None
    assert 1.0 <= skewed.ci_low < skewed.mean <= skewed.ci_high <= 5.0  # type: ignore[operator]
    assert skewed == _stats.mean_ci([5.0, 5.0, 5.0, 5.0, 5.0, 1.0])  # deterministic
    # Shares: Wilson, inside [0, 1] however few runs (the t-interval gave 33% [-390%, 457%] on three runs).
    share = _stats.share_ci([0.0, 1.0, 0.0])
    assert share.mean == pytest.approx(0.3333, abs=1e-4)
    assert share.ci_low == pytest.approx(0.0615, abs=1e-4) and share.ci_high == pytest.approx(0.7923, abs=1e-4)
    assert _stats.share_ci([1.0, 1.0]).ci_high == 1.0 and _stats.share_ci([0.5]).note is not None
    # Ranks: shared unless a paired test over shared seeds separates the models.
    assert _stats.shared_ranks([{0: 2.2, 1: 2.2}, {0: 2.1, 1: 2.1}]) == [1, 1]  # the two ties
    six_ahead = {k: 4.0 + k / 10 for k in range(6)}
    assert _stats.shared_ranks([six_ahead, {k: 2.0 for k in range(6)}]) == [1, 2]  # p = 2/2^6 = 0.031
    assert _stats.shared_ranks([six_ahead, {k: 2.0 for k in range(5)}]) == [1, 1]  # five shared seeds: p >= 0.0625
    assert _stats.shared_ranks([six_ahead, six_ahead, {k: 1.0 for k in range(6)}]) == [1, 1, 3]
    # A corpus's runs are not paired by seed: the unpaired Mann-Whitney U test (exact for small samples).
    unpaired = _stats.unpaired_p_value
    assert unpaired([4.0, 4.1, 4.2, 4.3], [2.0, 2.1, 2.2, 2.3]) == pytest.approx(2 / 70)  # 4 vs 4 all apart: 2 / C(8,4)
    assert unpaired([4.0, 4.1, 4.2], [2.0, 2.1, 2.2]) == pytest.approx(0.1)  # 3 vs 3 cannot reach 0.05
    assert unpaired([3.0, 3.0], [3.0]) == 1.0 and unpaired([], [1.0]) == 1.0
    assert _stats.shared_ranks_by([[4.0, 4.1, 4.2, 4.3], [2.0, 2.1, 2.2, 2.3], [2.05, 2.15]], unpaired) == [1, 2, 2]
    records = _stats.win_records([("x", "y", "a"), ("x", "y", "tie"), ("y", "z", "b"), ("x", "z", "b")], ["x", "y", "z"])
    assert (records["x"].wins, records["x"].losses, records["x"].ties, records["x"].rate) == (1, 1, 1, 0.5)
    assert records["z"].rate == 1.0 and records["y"].rate == 0.1667  # (0 + 1/2) / 3
    assert _stats.key_means([{"a": 1.0, "b": 2.0}, {"a": 3.0}], ["a", "b", "c"]) == {"a": 2.0, "b": 2.0, "c": None}


async def _compare(runs_dir: Path, models: list[str], **kwargs: Any) -> Any:
    return await compare_models("scalability-issues", models, runs_dir=runs_dir, **{**FIXED, **kwargs})


@pytest.mark.anyio
async def test_one_repeat_has_no_interval_and_says_so(runs_dir: Path) -> None:
    comparison = await _compare(runs_dir, ["scripted:average"], repeats=1)
    (row,) = comparison.leaderboard
    assert row.n == 1 and row.mean is not None and row.ci_low is None and row.ci_high is None
    assert any("too few runs for an interval" in note for note in comparison.notes)
    assert any("win rates need at least two models" in note for note in comparison.notes)


@pytest.mark.anyio
async def test_interviewers_can_be_compared_with_the_candidate_fixed(runs_dir: Path) -> None:
    comparison = await compare_models(
        "scalability-issues",
        ["scripted:default", "scripted:strong"],
        role="interviewer",
        fixed_model="scripted:average",
        evaluator_model="scripted:judge",
        pairwise=False,
        runs_dir=runs_dir,
    )
    for cell in comparison.cells:
        transcript = load_transcript(runs_dir / str(cell.run_dir))
        assert transcript.agents["interviewer"]["model"] == cell.model
        assert transcript.agents["candidate"]["model"] == "scripted:average"
    assert comparison.pairs == [] and all(row.win_rate is None for row in comparison.leaderboard)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "scripted:strong,scripted:strong"], "lists a model twice"),
        (["--models", "scripted:nobody"], "unknown scripted model 'scripted:nobody'"),
        (["--models", "scripted:strong", "--candidate-model", "scripted:weak"], "names the compared role"),
        (["--models", "scripted:strong", "--ollama-hosts", "ftp://x"], "--ollama-hosts"),
        ([], "no models to compare"),
    ],
)
def test_bad_requests_are_one_line(args: list[str], message: str, runs_dir: Path) -> None:
    result = runner.invoke(app, ["compare", "scalability-issues", *args, "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (runs_dir / "comparisons").exists()


def test_progress_is_shown_without_json_and_never_with_it(runs_dir: Path) -> None:
    args = ["compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", *SCRIPTED, "--runs-dir", str(runs_dir)]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "cells" in shown.stdout and "2/2" in shown.stdout and "model calls:" in shown.stdout
    quiet = runner.invoke(app, [*args, "--json", "--fresh"])
    assert quiet.exit_code == 0
    json.loads(quiet.stdout)  # nothing but the object on stdout


# ---------------------------------------------------------------------------------------------- resume


class _Counting:
    """A model factory counting the calls that reach a real backend."""

    def __init__(self, fail_models: set[str] | None = None, fail_roles: set[str] | None = None) -> None:
        self.calls: dict[str, int] = {}
        self.fail_models = fail_models or set()
        self.fail_roles = fail_roles or set()

    def __call__(self, ref: str, options: ModelOptions) -> ChatModel:
        factory = self

        class Counted(ModelWrapper):
            async def complete(self, request: CompletionRequest) -> Completion:
                factory.calls[ref] = factory.calls.get(ref, 0) + 1
                if (ref in factory.fail_models and options.role == "candidate") or options.role in factory.fail_roles:
                    raise ModelCallError(f"{ref} failed after 4 attempts: ConnectError: refused")
                return await self.inner.complete(request)

        return Counted(create_model(ref, options))

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@pytest.mark.anyio
async def test_failed_cells_are_retried_and_finished_ones_kept(runs_dir: Path) -> None:
    flaky = _Counting(fail_models={"scripted:weak"})
    first = await _compare(runs_dir, ["scripted:strong", "scripted:weak"], repeats=2, model_factory=flaky)
    assert [c.status for c in first.cells] == ["ok", "ok", "failed", "failed"]
    assert all("refused" in (c.error or "") for c in first.cells if c.status == "failed")
    assert first.pairs == [] and any("2 cell(s) failed" in n for n in first.notes)
    weak_row = next(r for r in first.leaderboard if r.model == "scripted:weak")
    assert (weak_row.n, weak_row.failed, weak_row.mean) == (0, 2, None)

    again = _Counting()
    second = await _compare(runs_dir, ["scripted:strong", "scripted:weak"], repeats=2, model_factory=again)
    assert second.comparison_id == first.comparison_id
    assert second.last_invocation is not None
    assert (second.last_invocation.cells_run, second.last_invocation.cells_skipped) == (2, 2)
    assert [c.status for c in second.cells] == ["ok"] * 4
    assert [c.run_dir for c in second.cells[:2]] == [c.run_dir for c in first.cells[:2]]
    assert [c.attempts for c in second.cells] == [1, 1, 2, 2]
    assert again.calls.get("scripted:strong", 0) == 0  # the strong cells did not run again
    assert len(second.pairs) == 2 and second.leaderboard[0].model == "scripted:strong"

    fresh = _Counting()
    third = await _compare(runs_dir, ["scripted:strong", "scripted:weak"], repeats=2, model_factory=fresh, fresh=True)
    assert third.last_invocation is not None and third.last_invocation.cells_run == 4
    assert {c.run_dir for c in third.cells}.isdisjoint({c.run_dir for c in second.cells})


@pytest.mark.anyio
async def test_a_finished_run_whose_grading_failed_is_graded_again_not_rerun(runs_dir: Path) -> None:
    judge_down = _Counting(fail_roles={"evaluator"})
    first = await _compare(runs_dir, ["scripted:strong"], model_factory=judge_down)
    (cell,) = first.cells
    assert cell.status == "failed" and cell.stop_reason == "end_marker" and "refused" in (cell.error or "")
    assert cell.run_dir is not None and (runs_dir / cell.run_dir).is_dir()

    counting = _Counting()
    second = await _compare(runs_dir, ["scripted:strong"], model_factory=counting)
    (regraded,) = second.cells
    assert regraded.status == "ok" and regraded.run_dir == cell.run_dir and regraded.overall is not None
    assert set(counting.calls) == {"scripted:judge"}  # only the judge was called: the run was not repeated


_KILLABLE = """
import asyncio, sys
from interview_sim.compare import compare_models
from interview_sim.models import create_model

def slow(ref, options):
    model = create_model(ref, options)
    inner = model.complete
    async def complete(request):
        await asyncio.sleep(0.05)
        return await inner(request)
    model.complete = complete
    return model

asyncio.run(compare_models("scalability-issues", ["scripted:strong", "scripted:weak"], repeats=4, runs_dir=sys.argv[1],
                           fixed_model="scripted:default", evaluator_model="scripted:judge", model_factory=slow))
"""


def _wait_for_ok_cells(manifest: Path, proc: subprocess.Popen[bytes], at_least: int) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.exists():
            # The summary is written at the start; finished cells are appended to the journal beside it.
            data = load_comparison(manifest.parent).model_dump(mode="json")
            if sum(c["status"] == "ok" for c in data["cells"]) >= at_least:
                return dict(data)
        time.sleep(0.02)
    raise AssertionError("the batch never got going (or finished before it could be killed)")


def test_a_killed_compare_resumes_and_skips_finished_cells(runs_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE, str(runs_dir)], env=env)
    try:
        manifest_glob = lambda: list((runs_dir / "comparisons").glob(f"*/{COMPARISON_FILE}"))  # noqa: E731
        deadline = time.monotonic() + 60
        while not manifest_glob() and time.monotonic() < deadline:
            time.sleep(0.02)
        (manifest,) = manifest_glob()
        _wait_for_ok_cells(manifest, proc, 2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    killed = load_comparison(manifest.parent).model_dump(mode="json")
    assert killed["status"] == "running"
    finished = {c["key"]: c["run_dir"] for c in killed["cells"] if c["status"] == "ok"}
    assert 2 <= len(finished) < 8

    counting = _Counting()
    import asyncio

    resumed = asyncio.run(_compare(runs_dir, ["scripted:strong", "scripted:weak"], repeats=4, model_factory=counting))
    assert resumed.comparison_id == killed["comparison_id"] and resumed.status == "complete"
    assert resumed.last_invocation is not None
    assert resumed.last_invocation.cells_skipped == len(finished)
    assert resumed.last_invocation.cells_run == 8 - len(finished)
    for cell in resumed.cells:
        assert cell.status == "ok"
        if cell.key in finished:
            assert cell.run_dir == finished[cell.key] and cell.attempts == 1
    assert resumed.leaderboard[0].model == "scripted:strong" and resumed.leaderboard[0].n == 4


# ---------------------------------------------------------------------------------------------- endpoints


class _Tracked(FakeOllama):
    """A fake Ollama that records how many chat requests it served at once."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(delay_s=delay_s)
        self.in_flight = 0
        self.peak = 0
        self._count_lock = threading.Lock()

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if path != "/api/chat":
            return super().handle(method, path, body)
        with self._count_lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            return super().handle(method, path, body)
        finally:
            with self._count_lock:
                self.in_flight -= 1


OLLAMA_MODEL = "ollama:llama3:8b-instruct-fp16"


@pytest.mark.anyio
async def test_cells_spread_across_endpoints_within_the_per_endpoint_limit(runs_dir: Path) -> None:
    servers = [_Tracked(delay_s=0.03) for _ in range(3)]
    try:
        comparison = await _compare(
            runs_dir,
            [OLLAMA_MODEL],
            repeats=6,
            max_turns=4,
            concurrency=6,
            ollama_hosts=[s.url for s in servers],
            per_endpoint=1,
        )
    finally:
        for s in servers:
            s.close()
    assert [c.status for c in comparison.cells] == ["ok"] * 6
    # Each endpoint served one cell at a time (the limit), and each served two of the six cells.
    assert [s.peak for s in servers] == [1, 1, 1]
    transcripts = [load_transcript(runs_dir / str(c.run_dir)) for c in comparison.cells]
    per_cell = {sum(1 for call in t.calls if call.role == "candidate") for t in transcripts}
    assert len(per_cell) == 1
    assert [len(s.chat_requests) for s in servers] == [2 * per_cell.pop()] * 3
    hosts = [next(call.metadata["host"] for call in t.calls if call.role == "candidate") for t in transcripts]
    assert sorted(hosts) == sorted(s.url for s in servers for _ in range(2))


@pytest.mark.anyio
async def test_the_per_endpoint_limit_is_what_bounds_a_single_server(runs_dir: Path) -> None:
    with _Tracked(delay_s=0.05) as server:
        comparison = await _compare(
            runs_dir, [OLLAMA_MODEL], repeats=4, max_turns=4, concurrency=4, ollama_hosts=[server.url], per_endpoint=2
        )
    assert server.peak == 2
    candidate_calls = [
        call for c in comparison.cells for call in load_transcript(runs_dir / str(c.run_dir)).calls if call.role == "candidate"
    ]
    assert len(server.chat_requests) == len(candidate_calls) >= 4


@pytest.mark.anyio
async def test_the_endpoint_pool_picks_the_least_loaded_endpoint() -> None:
    endpoints = Endpoints(["http://a:1", "http://b:1"], per_endpoint=2)
    async with endpoints.slot(True) as first, endpoints.slot(True) as second, endpoints.slot(True) as third:
        assert {first, second} == {"http://a:1", "http://b:1"} and third in {first, second}
        assert sorted(endpoints.in_flight.values()) == [1, 2]
    async with endpoints.slot(False) as none:
        assert none is None and sum(endpoints.in_flight.values()) == 0


def test_llamacpp_cells_go_to_a_process_pool_no_larger_than_the_cores() -> None:
    cores = os.cpu_count() or 1
    scheduler = Scheduler(concurrency=64, endpoints=Endpoints([], 1), cache_dir=None)
    assert scheduler.processes == cores
    assert scheduler._needs_process(["scripted:default", "llamacpp:smollm2-135m"])
    assert not scheduler._needs_process(["scripted:default", OLLAMA_MODEL])
    serial = Scheduler(concurrency=1, endpoints=Endpoints([], 1), cache_dir=None)
    assert not serial._needs_process(["llamacpp:smollm2-135m"])  # one cell at a time runs in this process


@pytest.mark.slow
@pytest.mark.anyio
async def test_an_embedded_model_cell_runs_in_a_worker_process(runs_dir: Path, smollm2_available: None) -> None:
    comparison = await _compare(
        runs_dir, ["llamacpp:smollm2-135m", "scripted:strong"], repeats=1, max_turns=2, concurrency=2, pairwise=False
    )
    assert [c.status for c in comparison.cells] == ["ok", "ok"], [c.error for c in comparison.cells]
    cell = comparison.cells[0]
    transcript = load_transcript(runs_dir / str(cell.run_dir))
    (call,) = [c for c in transcript.calls if c.role == "candidate"]
    assert call.ref == "llamacpp:smollm2-135m" and call.completion_tokens > 0 and call.generation_s
    assert cell.usage.completion_tokens == call.completion_tokens and cell.model_calls >= 1


def _candidate_texts_and_instances(runs_dir: Path, comparison: Any) -> tuple[list[list[str]], list[str]]:
    """Each cell's candidate turns, and the loaded model (`<pid>#<n>`) each cell's candidate calls ran on."""
    texts, instances = [], []
    for cell in comparison.cells:
        transcript = load_transcript(runs_dir / str(cell.run_dir))
        texts.append([m.content for m in transcript.messages if m.role == "candidate"])
        (instance,) = {c.metadata["loaded"] for c in transcript.calls if c.role == "candidate"}
        instances.append(instance)
    return texts, instances


@pytest.mark.slow
@pytest.mark.anyio
async def test_cells_of_one_embedded_model_share_one_loaded_model_and_say_the_same(
    tmp_path: Path, smollm2_available: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process (one cell at a time) and in two worker processes: a loaded model goes on to the next cell,
    handed over with an empty KV cache, so every cell says what it says on a freshly loaded model."""
    from interview_sim.models import llama_loaded

    smol = ["llamacpp:smollm2-135m"]
    loads = llama_loaded.loads
    kept = await _compare(tmp_path / "a", smol, repeats=4, max_turns=4, pairwise=False)
    assert llama_loaded.loads == loads + 1 and llama_loaded.kept() == 0  # one load; freed when the comparison ended
    texts, instances = _candidate_texts_and_instances(tmp_path / "a", kept)
    assert len(set(instances)) == 1 and all(texts)

    monkeypatch.setattr(llama_loaded, "keep_loaded", lambda on=True: None)  # every cell loads its own
    fresh = await _compare(tmp_path / "b", smol, repeats=4, max_turns=4, pairwise=False)
    fresh_texts, fresh_instances = _candidate_texts_and_instances(tmp_path / "b", fresh)
    assert len(set(fresh_instances)) == 4
    assert texts == fresh_texts
    monkeypatch.undo()

    workers = await _compare(tmp_path / "c", smol, repeats=4, max_turns=4, pairwise=False, concurrency=2)
    worker_texts, worker_instances = _candidate_texts_and_instances(tmp_path / "c", workers)
    assert worker_texts == texts
    pids = {i.split("#")[0] for i in worker_instances}
    assert 1 <= len(pids) <= 2 and len(set(worker_instances)) == len(pids)  # each worker loaded the model once


def test_compare_report_flag_writes_the_comparison_page_and_every_cell_page(runs_dir: Path) -> None:
    args = ["compare", "scalability-issues", "--models", "scripted:strong,scripted:weak", "--repeats", "2"]
    args += ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge", "--no-pairwise"]
    result = CliRunner().invoke(app, [*args, "--runs-dir", str(runs_dir), "--report", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    page = Path(data["report"])
    html = page.read_text()
    assert page.name == "report.html" and "<table" in html
    for cell in data["cells"]:
        cell_page = runs_dir / cell["run_dir"] / "report.html"  # cells record run folders relative to runs/
        assert cell_page.exists()
        assert os.path.relpath(cell_page, page.parent) in html  # linked from the comparison page
