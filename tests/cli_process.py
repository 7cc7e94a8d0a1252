"""The CLI as a user meets it, in a real process: start it, wait for it to get going, signal it, read what it left.

`SLOW_CLI` runs the real command line with every model answering `INTERVIEW_SIM_TEST_DELAY` seconds late (a slow
model without a server), so a test can interrupt it mid-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTED = [
    "--interviewer-model",
    "scripted:default",
    "--candidate-model",
    "scripted:default",
    "--evaluator-model",
    "scripted:judge",
]

SLOW_CLI = """
import asyncio, os, sys
import interview_sim.models as models

create, delay = models.create_model, float(os.environ["INTERVIEW_SIM_TEST_DELAY"])

def slow(ref, options=None):
    model = create(ref, options)
    inner = model.complete
    async def complete(request):
        await asyncio.sleep(delay)
        return await inner(request)
    model.complete = complete
    return model

models.create_model = slow
from interview_sim.cli import main
sys.argv = ["interview-sim", *sys.argv[1:]]
main()
"""


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "INTERVIEW_SIM_HOME": str(ROOT), **extra}


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "interview_sim", *args]


def slow_cli_args(*args: str) -> list[str]:
    return [sys.executable, "-c", SLOW_CLI, *args]


def run_cli(*args: str, extra_env: Mapping[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_args(*args), env=env(**(extra_env or {})), capture_output=True, text=True, timeout=timeout)


def one_line(stderr: str) -> str:
    """The user-facing rule: stderr is exactly one line, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    return lines[0]


def start(args: list[str], extra_env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, env=env(**(extra_env or {})), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            _out, err = proc.communicate()
            raise AssertionError(f"the command ended (exit {proc.returncode}) before {what}:\n{err}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Stopped:
    code: int
    seconds: float
    """From the signal to the process's exit."""
    stdout: str
    stderr: str


def interrupt(proc: subprocess.Popen[str], signum: int = signal.SIGINT, timeout: float = 20) -> Stopped:
    """Send `signum` and wait for the process to end; a process still running after `timeout` fails the test."""
    start_at = time.monotonic()
    proc.send_signal(signum)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running {timeout:g} s after {signal.Signals(signum).name}:\n{err[-2000:]}") from None
    seconds = time.monotonic() - start_at
    print(f"{signal.Signals(signum).name}: exited {proc.returncode} after {seconds:.2f} s")
    return Stopped(proc.returncode, seconds, out, err)


def count_events(run_dir_glob: Path, pattern: str, kind: str) -> int:
    found = sorted(run_dir_glob.glob(pattern))
    return found[0].read_text().count(f'"type": "{kind}"') if found else 0


def descendants(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
