"""Faults of servers, disks and the environment: one line on stderr, the right exit code, nothing half-written.

A fake Ollama that hangs, drops the connection, answers HTTP 500 or garbage; deadlines on every call; a malformed
OLLAMA_HOST or --ollama-hosts; --runs-dir on a file; a full disk (a 200 KB tmpfs, where this machine lets the test
mount one); compare with failed cells.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_process import ROOT, SCRIPTED, one_line, run_cli
from fake_ollama import DEFAULT_MODEL, FakeOllama
from interview_sim.errors import ModelCallError
from interview_sim.models import ChatModel, ModelOptions, create_model
from interview_sim.models.base import call_with_retries
from interview_sim.models.ollama import DEFAULT_TIMEOUT_S, TIMEOUT_ENV, resolve_timeout
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, load_transcript, read_events
from interview_sim.session import prepare_scenario, run_scenario

OLLAMA = f"ollama:{DEFAULT_MODEL}"


def _run_on_ollama(fake: FakeOllama, runs_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = ["run", "scalability-issues", "--interviewer-model", "scripted:default", "--candidate-model", OLLAMA]
    return run_cli(*args, "--no-evaluate", "--runs-dir", str(runs_dir), *extra, extra_env={"OLLAMA_HOST": fake.host})


# ---------------------------------------------------------------------------------------------- Ollama faults


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ("500", "failed after 4 attempts: ResponseError: fake ollama: internal server error"),
        ("reset", "failed after 4 attempts: RemoteProtocolError"),
        ("garbage", "failed after 1 attempt: JSONDecodeError"),
    ],
)
def test_a_failing_ollama_is_one_line_naming_model_and_host(
    fake_ollama: FakeOllama, runs_dir: Path, fault: str, says: str
) -> None:
    fake_ollama.chat_fault = fault
    result = _run_on_ollama(fake_ollama, runs_dir)
    assert result.returncode == 4
    line = one_line(result.stderr)  # AutoGen's tracebacks stay off the terminal
    assert line.startswith(f"error: {OLLAMA} at {fake_ollama.url} {says}")
    (events,) = runs_dir.glob(f"*/*/{EVENTS_FILE}")
    run_dir = events.parent
    failed = [e for e in read_events(run_dir) if e.type == "model_error"]
    assert len(failed) == 1 and failed[0].ref == OLLAMA  # the details are in the run
    if fault != "garbage":
        assert len(failed[0].retries) == 3 and all(r.error for r in failed[0].retries)
    assert load_transcript(run_dir).stop_reason == "error"


def test_a_hung_ollama_times_out_after_the_deadline_naming_model_and_host(fake_ollama: FakeOllama, runs_dir: Path) -> None:
    fake_ollama.chat_fault = "hang"
    start = time.monotonic()
    result = _run_on_ollama(fake_ollama, runs_dir, "--timeout", "1.5")
    elapsed = time.monotonic() - start
    print(f"hung chat with --timeout 1.5: exit {result.returncode} after {elapsed:.2f} s (process start included)")
    assert result.returncode == 4
    line = one_line(result.stderr)
    assert line.startswith(f"error: {OLLAMA} at {fake_ollama.url} did not answer within 1.5 s")
    assert "--timeout" in line
    assert elapsed < 60  # a failure bound only: without the deadline this waited 600 s per attempt


@pytest.mark.anyio
async def test_retries_stay_inside_one_overall_budget() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        raise ConnectionError("connection reset")

    start = time.monotonic()
    with pytest.raises(ModelCallError) as failed:
        await call_with_retries(flaky, what="m at h", attempts=1000, initial_wait=0.05, max_wait=0.2, budget_s=0.8)
    elapsed = time.monotonic() - start
    assert elapsed < 0.8 + 0.5 and 2 < calls < 1000  # it stops inside the budget, well before 1000 attempts
    assert str(failed.value).startswith("m at h failed after") and len(failed.value.retries) == calls - 1

    async def hangs() -> str:
        await asyncio.sleep(3600)
        return "never"

    start = time.monotonic()
    with pytest.raises(ModelCallError, match=r"^m at h did not answer within 0\.3 s \(1 attempt\)$"):
        await call_with_retries(hangs, what="m at h", budget_s=0.3)
    assert time.monotonic() - start < 5


def test_the_deadline_comes_from_timeout_then_the_agent_then_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert resolve_timeout() == DEFAULT_TIMEOUT_S == 120
    assert resolve_timeout(30) == 30
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")  # what --timeout sets
    assert resolve_timeout(30) == 7.5


@pytest.mark.anyio
async def test_an_agents_timeout_reaches_its_model(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    loaded = prepare_scenario("scalability-issues", interviewer_model="scripted:default", candidate_model="scripted:default")
    agents = dict(loaded.agents)
    agents["candidate"] = agents["candidate"].model_copy(update={"timeout_s": 42.0})
    loaded = loaded.model_copy(update={"agents": agents})
    seen: dict[str, float | None] = {}

    def factory(ref: str, options: ModelOptions) -> ChatModel:
        seen[options.role] = options.timeout_s
        return create_model(ref, options)

    await run_scenario(loaded, runs_dir=runs_dir, max_turns=3, model_factory=factory)
    assert seen == {"interviewer": None, "candidate": 42.0}


# ---------------------------------------------------------------------------------------------- environment


@pytest.mark.parametrize("host", ["127.0.0.1:99999", "::1", "http://h:1:2", "h:-1", "[::1", "http://[zz]:1", "a host"])
def test_a_malformed_ollama_host_is_one_line_exit_2(runs_dir: Path, host: str) -> None:
    args = ["run", "--interviewer-model", "scripted:default", "--candidate-model", OLLAMA, "--runs-dir", str(runs_dir)]
    result = run_cli(*args, extra_env={"OLLAMA_HOST": host})
    assert result.returncode == 2
    assert (
        one_line(result.stderr) == f"error: OLLAMA_HOST={host!r} is not a valid Ollama address (expected [http[s]://]host[:port])"
    )
    assert not any(runs_dir.iterdir())


def test_models_lists_a_malformed_ollama_host_as_not_ready() -> None:
    result = run_cli("models", "--json", extra_env={"OLLAMA_HOST": "127.0.0.1:99999"})
    assert result.returncode == 0, result.stderr
    (ollama,) = [m for m in json.loads(result.stdout) if m["provider"] == "ollama"]
    assert not ollama["ready"] and "not a valid Ollama address" in ollama["detail"]


@pytest.mark.parametrize("command", ["run", "compare"])
def test_runs_dir_naming_a_file_is_one_line_exit_2(tmp_path: Path, command: str) -> None:
    a_file = tmp_path / "runs"
    a_file.write_text("not a folder\n")
    args = [command, "scalability-issues", *SCRIPTED, "--runs-dir", str(a_file)]
    if command == "compare":
        args = ["compare", "scalability-issues", "--models", "scripted:weak", "--runs-dir", str(a_file)]
    result = run_cli(*args)
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: --runs-dir {a_file} is a file, not a folder"
    assert a_file.read_text() == "not a folder\n"


# ---------------------------------------------------------------------------------------------- compare


COMPARE = ["compare", "scalability-issues", "--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]


def test_compare_with_failed_cells_lists_them_and_exits_6(fake_ollama: FakeOllama, runs_dir: Path) -> None:
    fake_ollama.chat_fault = "500"
    args = [*COMPARE, "--models", f"scripted:strong,{OLLAMA}", "--max-turns", "3", "--runs-dir", str(runs_dir)]
    result = run_cli(*args, extra_env={"OLLAMA_HOST": fake_ollama.host})
    assert result.returncode == 6
    line = one_line(result.stderr)
    assert line.startswith(f"error: 1 of 2 cell(s) failed (scalability-issues|{OLLAMA}|0)")
    assert "run the same command again to retry them" in line
    assert f"failed cell scalability-issues|{OLLAMA}|0: {OLLAMA} at {fake_ollama.url} failed after 4 attempts" in " ".join(
        result.stdout.split()
    )
    (manifest,) = (runs_dir / "comparisons").glob("*/comparison.json")
    assert json.loads(manifest.read_text())["status"] == "complete"


@pytest.mark.parametrize("hosts", ["a host", "127.0.0.1:99999", "127.0.0.1:11434,h:-1", "[zz]:1", " , "])
def test_unparseable_ollama_hosts_are_refused_before_anything_runs(runs_dir: Path, hosts: str) -> None:
    args = [*COMPARE, "--models", f"scripted:strong,{OLLAMA}", "--ollama-hosts", hosts, "--runs-dir", str(runs_dir)]
    result = run_cli(*args)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith("error: --ollama-hosts")
    assert not any(runs_dir.iterdir())


# ---------------------------------------------------------------------------------------------- disk full


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 200 KB tmpfs (needs mount rights, e.g. root in a container that allows it)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a 200 KB tmpfs here ({done.stderr.strip() or 'mount failed'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave: int) -> None:
    """Fill the disk up to `leave` bytes free."""
    import os

    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave))


@pytest.mark.parametrize("leave", [0, 24_000], ids=["full-at-start", "full-mid-run"])
def test_a_full_disk_is_one_line_exit_4_and_leaves_nothing_half_written(small_disk: Path, leave: int) -> None:
    runs_dir = small_disk / "runs"
    runs_dir.mkdir()
    _fill(small_disk, leave)
    result = run_cli("run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir))
    assert result.returncode == 4
    assert one_line(result.stderr).endswith(
        "No space left on device: the disk is full; what was written before is kept (free some space and run again)"
    )
    for folder in runs_dir.glob("*/*"):
        events = folder / EVENTS_FILE
        assert events.exists() and events.stat().st_size > 0, f"{folder} was left without its header"
        assert read_events(folder)[0].type == "run_started"
        assert load_transcript(folder).stop_reason in ("interrupted", "end_marker")  # a later command reads it
        assert not list(folder.glob(".*.tmp")), "a temporary file was left behind"
    if leave == 0:
        assert not list(runs_dir.glob("*/*")), "a run that could not start left a folder"

    compared = run_cli(*COMPARE, "--models", "scripted:strong", "--runs-dir", str(runs_dir))
    assert compared.returncode == 4
    one_line(compared.stderr)
    assert not list((runs_dir / "comparisons").glob("*/.*.tmp"))

    before = sorted(p.relative_to(runs_dir) for p in runs_dir.glob("*/*") if p.is_dir())  # run folders
    imported = run_cli("import", str(ROOT / "tests" / "fixtures" / "autogen02" / "tree"), "--runs-dir", str(runs_dir))
    assert imported.returncode == 4
    one_line(imported.stderr)
    assert sorted(p.relative_to(runs_dir) for p in runs_dir.glob("*/*") if p.is_dir()) == before  # none half-imported


def test_a_run_folder_on_disk_with_a_finished_run_still_reads(small_disk: Path) -> None:
    runs_dir = small_disk / "runs"
    done = run_cli("run", "scalability-issues", *SCRIPTED, "--runs-dir", str(runs_dir), "--json")
    assert done.returncode == 0, done.stderr
    run_dir = Path(json.loads(done.stdout)["run_dir"])
    _fill(small_disk, 0)
    report = run_cli("report", str(run_dir))
    assert report.returncode == 4
    one_line(report.stderr)
    assert load_transcript(run_dir).stop_reason == "end_marker"
    assert (run_dir / TRANSCRIPT_FILE).exists() and not (run_dir / "report.html").exists()
