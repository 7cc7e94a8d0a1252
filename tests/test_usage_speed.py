"""Honest speed figures: generation tok/s over generation time only, prompt tok/s over prompt time; file modes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from interview_sim.record import CallRecord, Usage, write_text_atomic


def _call(**fields: object) -> CallRecord:
    data: dict[str, object] = {
        "index": 0, "role": "candidate", "agent": "c", "model": "m", "ref": "llamacpp:m",
        "prompt_tokens": 400, "completion_tokens": 100, "latency_s": 4.0,
    }  # fmt: skip
    return CallRecord.model_validate({**data, **fields})


def test_generation_and_prompt_speeds_use_their_own_times() -> None:
    call = _call(prompt_tokens_evaluated=300, generation_s=3.0, prompt_eval_s=1.0, eval_s=2.0)
    usage = call.usage_value() + call.usage_value()
    assert usage.tokens_per_second == 50.0  # 200 tokens / 4 s of generation, not / 6 s of prompt + generation
    assert usage.prompt_tokens_per_second == 300.0  # 600 evaluated / 2 s
    dumped = usage.model_dump(mode="json")
    assert dumped["tokens_per_second"] == 50.0 and dumped["prompt_tokens_per_second"] == 300.0
    assert Usage.model_validate(dumped) == usage  # computed fields are dropped on the way back in


def test_records_without_split_timings_keep_their_old_figure() -> None:
    usage = _call(generation_s=4.0).usage_value()
    assert usage.tokens_per_second == 25.0 and usage.prompt_tokens_per_second is None


def test_atomic_writes_get_the_mode_open_would_give(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    path = tmp_path / "x.json"
    write_text_atomic(path, "{}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_run_writes_its_records_with_the_users_umask(tmp_path: Path) -> None:
    args = ["run", "scalability-issues", "--interviewer-model", "scripted:default", "--candidate-model", "scripted:strong"]
    result = subprocess.run(
        [sys.executable, "-m", "interview_sim", *args, "--no-evaluate", "--runs-dir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        umask=0o027,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    transcript = Path(json.loads(result.stdout)["transcript"])
    assert stat.S_IMODE(transcript.stat().st_mode) == 0o640
