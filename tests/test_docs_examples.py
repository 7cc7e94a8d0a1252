"""Every code example in the README and in docs/ is either run here on the current code or marked as not run.

A fenced block is preceded by one of
    <!-- example: run -->                  each `interview-sim ...` line is run here and must exit 0
    <!-- example: not run (why) -->        a command that needs a server, a model, a person or files of your own
    <!-- example: output (what) -->        something a command printed, or a file's format: not a command
A block with none of them fails the test. The run examples of a page run in order in one working folder (as a
reader would type them), offline; `RUN` stands for the newest run folder made so far.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_process import env

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^\s*<!-- example: (run|not run \(.+\)|output \(.+\)) -->\s*$")
FENCE = re.compile(r"^\s*(`{3,})")


@dataclass
class Block:
    page: Path
    line: int
    marker: str | None
    body: list[str]


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        ticks, start = m.group(1), i
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = MARKER.match(previous)
        i += 1
        body = []
        while (
            i < len(lines)
            and lines[i].strip() != ticks
            and not (lines[i].strip().startswith(ticks) and set(lines[i].strip()) == {"`"})
        ):
            body.append(lines[i])
            i += 1
        found.append(Block(page, start + 1, marker.group(1) if marker else None, body))
        i += 1
    return found


def commands(block: Block) -> list[str]:
    """The `interview-sim` lines of a block, continuation lines joined, trailing comments left out."""
    joined = "\n".join(block.body).replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line.startswith("interview-sim "):
            out.append(line)
    return out


def test_every_example_is_run_or_says_why_not() -> None:
    unmarked = [f"{b.page.relative_to(ROOT)}:{b.line}" for page in PAGES for b in blocks(page) if b.marker is None]
    assert not unmarked, "code blocks with no <!-- example: ... --> marker: " + ", ".join(unmarked)
    runnable = [b for page in PAGES for b in blocks(page) if b.marker == "run"]
    assert all(commands(b) for b in runnable), "a block marked run has no interview-sim command"
    assert len(runnable) >= 4


@pytest.mark.parametrize("page", [p for p in PAGES if any(b.marker == "run" for b in blocks(p))], ids=lambda p: p.name)
def test_the_run_examples_work(page: Path, tmp_path: Path) -> None:
    extra = {"OLLAMA_HOST": "http://127.0.0.1:9", "INTERVIEW_SIM_LLAMA_THREADS": "1", "COLUMNS": "100"}
    for block in (b for b in blocks(page) if b.marker == "run"):
        for command in commands(block):
            runs = sorted((tmp_path / "runs").glob("*/*/transcript.json"), key=lambda p: p.stat().st_mtime)
            words = [str(runs[-1].parent) if w == "RUN" else w for w in shlex.split(command)]
            assert "RUN" not in words or runs, f"{page.name}:{block.line}: {command}: no run made yet"
            proc = subprocess.run(
                [sys.executable, "-m", "interview_sim", *words[1:]],
                cwd=tmp_path,
                env=env(**extra),
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert proc.returncode == 0, f"{page.name}:{block.line}: {command}\n{proc.stderr[-2000:]}"
