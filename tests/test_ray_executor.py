"""`--executor ray`: compare and sweep on a real multi-node Ray cluster on this machine.

The cluster (`ray.cluster_utils.Cluster`, every node with `num_cpus=1`, the custom resource `ollama` and its
own fake Ollama at its OLLAMA_HOST) runs in a private network namespace, driven by tests/ray_cluster.py in
one child process that runs the CLI as a user would; the tests here assert on what it recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from interview_sim.compare.cells import CellTask
from interview_sim.compare.executors import OLLAMA_RESOURCE, cell_resources, run_cell_here, write_cell_records
from interview_sim.config import load_scenario
from interview_sim.models import create_model
from interview_sim.record import load_transcript
from ray_cluster import in_namespace, namespace_refusal

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRIPTED = ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("ray", reason="the `ray` extra is not installed: pip install 'interview-sim[ray]'")
    refusal = namespace_refusal()
    if refusal is not None:
        pytest.skip(refusal)
    out = tmp_path_factory.mktemp("ray-cluster")
    # Ray's own folder (sessions, sockets, the "current cluster" file): this test's, not the machine's /tmp/ray.
    # Short, under /tmp: Ray's Unix socket paths must stay under 108 characters.
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    env = {**os.environ, "INTERVIEW_SIM_HOME": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": ray_tmp}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(HERE), env.get("PYTHONPATH", "")])
    try:
        proc = subprocess.run(
            in_namespace([sys.executable, str(HERE / "ray_cluster.py"), str(out)]),
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
            check=False,
        )
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result: dict[str, Any] = json.loads((out / "result.json").read_text())
    result["out"] = str(out)
    return result


def _ok(run: dict[str, Any]) -> dict[str, Any]:
    assert run["rc"] == 0, run["stderr"][-3000:]
    assert run["json"] is not None, f"stdout is not only the JSON document: {run['stdout'][:500]}"
    data: dict[str, Any] = run["json"]
    return data


def _board(data: dict[str, Any]) -> list[dict[str, Any]]:
    return list(data["leaderboard"])


def test_every_cell_lands_and_the_leaderboard_equals_the_local_one(cluster_run: dict[str, Any]) -> None:
    local, ray = _ok(cluster_run["compare_local"]), _ok(cluster_run["compare_ray"])
    assert local["last_invocation"]["executor"] == "local" and ray["last_invocation"]["executor"] == "ray"
    assert ray["comparison_id"] == local["comparison_id"]
    assert len(ray["cells"]) == 8 and {c["status"] for c in ray["cells"]} == {"ok"}
    assert ray["last_invocation"]["cells_run"] == 8
    assert _board(ray) == _board(local)
    assert [r["model"] for r in ray["leaderboard"]] == ["scripted:strong", "scripted:weak"]
    # The driver wrote every cell's run folder under its own runs directory, from the tasks' returned records.
    runs = Path(cluster_run["out"]) / "compare-ray"
    for cell in ray["cells"]:
        folder = runs / cell["run_dir"]
        transcript = load_transcript(folder)
        assert transcript.seed == cell["seed"] and transcript.agents["candidate"]["model"] == cell["model"]
        assert (folder / "events.jsonl").stat().st_size > 0
        assert (folder / f"evaluation-{cell['evaluation_id']}.json").exists()
    local_cells = {c["key"]: (c["overall"], c["criteria"], c["usage"]) for c in local["cells"]}
    assert {c["key"]: (c["overall"], c["criteria"], c["usage"]) for c in ray["cells"]} == local_cells
    saved = json.loads((runs / "comparisons" / ray["comparison_id"] / "comparison.json").read_text())
    assert saved == ray


def test_a_sweep_on_ray_has_the_local_leaderboards(cluster_run: dict[str, Any]) -> None:
    local, ray = _ok(cluster_run["sweep_local"]), _ok(cluster_run["sweep_ray"])
    assert ray["kind"] == "sweep" and len(ray["cells"]) == 4 and {c["status"] for c in ray["cells"]} == {"ok"}
    assert {r["group"] for r in ray["leaderboard"]} == {"corporate-taxation", "scalability-issues", "all"}
    assert _board(ray) == _board(local)


def test_ollama_cells_use_the_ollama_of_the_node_they_land_on(cluster_run: dict[str, Any]) -> None:
    data = _ok(cluster_run["ollama"])
    assert {c["status"] for c in data["cells"]} == {"ok"} and len(data["cells"]) == 4
    nodes = cluster_run["ollama_nodes"]
    # Every node's server was used, and only through its own node's cells (the driver has no OLLAMA_HOST).
    assert all(n > 0 for n in cluster_run["ollama_chats"])
    assert set(cluster_run["ollama_hosts"]) == set(nodes)


def test_ctrl_c_cancels_the_ray_tasks_and_keeps_the_finished_cells(cluster_run: dict[str, Any]) -> None:
    run = cluster_run["interrupt"]
    assert run["rc"] == 130 and run["stdout"] == ""
    assert run["stderr"].strip().splitlines()[-1].startswith("interrupted (SIGINT): finished cells are kept under ")
    assert "Traceback" not in run["stderr"]
    statuses = cluster_run["interrupt_cells"]
    assert "ok" in statuses and statuses.count("ok") < len(statuses)
    # Cancelled: no cell went on calling the nodes' Ollama servers after the command exited.
    at_exit, later = cluster_run["interrupt_chats"]
    assert later == at_exit


def test_20_sigterm_during_a_ray_compare_is_one_line_exit_143_and_keeps_the_finished_cells(
    cluster_run: dict[str, Any],
) -> None:
    """Issue 28, 20: `ray.init` installed Ray's SIGTERM handler: exit 15, a C++ stack dump, no line."""
    run = cluster_run["sigterm"]
    assert run["rc"] == 143 and run["stdout"] == "", run["stderr"][-3000:]
    assert "Traceback" not in run["stderr"] and "*** " not in run["stderr"], run["stderr"][-3000:]
    assert run["stderr"].strip().splitlines()[-1].startswith("interrupted (SIGTERM): finished cells are kept under ")
    statuses = cluster_run["sigterm_cells"]
    assert "ok" in statuses and statuses.count("ok") < len(statuses)
    at_exit, later = cluster_run["sigterm_chats"]
    assert later == at_exit


def test_20_a_dead_head_node_is_one_line_exit_4_in_bounded_time_and_keeps_the_finished_cells(
    cluster_run: dict[str, Any],
) -> None:
    """Issue 28, 20: Ray's driver waited 60 s for a dead head, then exited 1 with its own message."""
    from interview_sim.compare.executors import HEAD_LOST_S

    run = cluster_run["head"]
    assert run["rc"] == 4 and run["stdout"] == "", run["stderr"][-3000:]
    assert "Traceback" not in run["stderr"]
    last = run["stderr"].strip().splitlines()[-1]
    assert last.startswith("error: lost the Ray cluster at ") and "run the same command again to resume" in last
    assert run["wall_s"] < HEAD_LOST_S + 20  # from the kill to the exit
    statuses = cluster_run["head_cells"]
    assert "ok" in statuses and statuses.count("ok") < len(statuses)


def test_killing_a_worker_node_mid_compare_still_completes_every_cell(cluster_run: dict[str, Any]) -> None:
    data = _ok(cluster_run["kill"])
    assert cluster_run["killed_after_chats"] >= 1, "the node was killed before it ran a cell"
    assert len(data["cells"]) == 6 and {c["status"] for c in data["cells"]} == {"ok"}
    # The cell that was running on the dead node ran again on a live one.
    assert cluster_run["killed_node"] not in cluster_run["kill_hosts"]
    assert set(cluster_run["kill_hosts"]) <= set(cluster_run["ollama_nodes"])


# ---------------------------------------------------------------------------------------------- no cluster


def _task(tmp_path: Path, model: str, evaluator: str = "scripted:judge") -> CellTask:
    loaded = load_scenario("scalability-issues")
    interviewer = loaded.agents["interviewer"].model_copy(update={"model": "scripted:default"})
    return CellTask(
        key=f"g|{model}|0",
        scenario=loaded.model_copy(update={"agents": {**loaded.agents, "interviewer": interviewer}}),
        role="candidate",
        model=model,
        seed=1,
        max_turns=4,
        evaluator_models=(evaluator,),
        runs_dir=tmp_path / "runs",
    )


def test_placement_follows_the_models_of_the_cell(tmp_path: Path) -> None:
    assert cell_resources(_task(tmp_path, "scripted:strong"), 4) == {"num_cpus": 1}
    assert cell_resources(_task(tmp_path, "ollama:llama3"), 4) == {"num_cpus": 0, "resources": {OLLAMA_RESOURCE: 1}}
    assert cell_resources(_task(tmp_path, "llamacpp:smollm2-135m"), 3) == {"num_cpus": 3}
    both = cell_resources(_task(tmp_path, "llamacpp:smollm2-135m", evaluator="ollama:llama3"), 2)
    assert both == {"num_cpus": 2, "resources": {OLLAMA_RESOURCE: 1}}


def test_a_task_returns_its_records_as_data_and_the_driver_writes_them(tmp_path: Path) -> None:
    """The task body on its own: nothing it writes outlives it; the records travel as bytes."""
    task = _task(tmp_path, "scripted:strong")
    result = run_cell_here(task, {}, None, 1, create_model)
    json.dumps(result["outcome"])  # plain data
    assert set(result["files"]) >= {"transcript.json", "events.jsonl"}
    assert not (tmp_path / "runs").exists()
    outcome = write_cell_records(task.runs_dir, result)
    assert outcome.status == "ok" and outcome.run_dir is not None
    assert outcome.run_dir.parent.parent == task.runs_dir
    assert load_transcript(outcome.run_dir).run_id == outcome.run_id
    assert (outcome.run_dir / f"evaluation-{outcome.evaluation_id}.json").exists()


def test_a_task_result_cannot_write_outside_the_runs_directory(tmp_path: Path) -> None:
    from interview_sim.errors import BatchError

    task = _task(tmp_path, "scripted:strong")
    result = run_cell_here(task, {}, None, 1, create_model)
    result["outcome"]["run_dir"] = "../escaped"
    with pytest.raises(BatchError):
        write_cell_records(task.runs_dir, result)


def test_executor_ray_without_ray_says_how_to_install_it(tmp_path: Path) -> None:
    blocker = tmp_path / "no-ray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT / "src")]), "INTERVIEW_SIM_HOME": str(ROOT)}
    args = ["compare", "scalability-issues", "--models", "scripted:strong", *SCRIPTED, "--executor", "ray"]
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", *args, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --executor ray needs Ray: pip install 'interview-sim[ray]'"
    assert not (tmp_path / "runs").exists()


def test_an_unknown_executor_is_one_line(tmp_path: Path) -> None:
    args = ["compare", "scalability-issues", "--models", "scripted:strong", *SCRIPTED, "--executor", "dask"]
    proc = subprocess.run(
        [sys.executable, "-m", "interview_sim", *args, "--runs-dir", str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --executor must be one of local, ray, not 'dask'"


def test_help_and_local_runs_never_import_ray(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from interview_sim.cli import app\n"
        "from interview_sim.compare import compare_models\n"
        f"asyncio.run(compare_models('scalability-issues', ['scripted:strong'], fixed_model='scripted:default',"
        f" evaluator_model='scripted:judge', max_turns=4, runs_dir={str(tmp_path)!r}))\n"
        "print('ray' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_a_model_failure_is_a_failed_cell_returned_as_data_not_an_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What Ray sees of a cell whose model is down: a normal return (so it is not retried), status failed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{port}")  # nothing listens there: the node's Ollama is down
    task = _task(tmp_path, "ollama:llama3:8b-instruct-fp16")
    result = run_cell_here(task, {}, None, 1, create_model)
    outcome = write_cell_records(task.runs_dir, result)
    assert outcome.status == "failed" and outcome.error is not None
    assert f"127.0.0.1:{port}" in outcome.error


def test_a_finished_run_is_sent_to_the_node_and_graded_again_not_rerun(tmp_path: Path) -> None:
    from dataclasses import replace

    from interview_sim.compare.executors import _folder_files

    task = _task(tmp_path, "scripted:strong")
    first = write_cell_records(task.runs_dir, run_cell_here(task, {}, None, 1, create_model))
    assert first.run_dir is not None
    again = replace(task, reuse_run=first.run_dir)
    result = run_cell_here(again, _folder_files(first.run_dir), None, 1, create_model)
    outcome = write_cell_records(task.runs_dir, result)
    assert outcome.status == "ok" and outcome.run_id == first.run_id and outcome.run_dir == first.run_dir
    assert outcome.evaluation_id != first.evaluation_id
    assert {p.name for p in first.run_dir.glob("evaluation-*.json")} == {
        f"evaluation-{first.evaluation_id}.json",
        f"evaluation-{outcome.evaluation_id}.json",
    }
    assert [d.name for d in task.runs_dir.glob("*/*") if d.is_dir()] == [first.run_dir.name]
