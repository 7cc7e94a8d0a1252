"""What a newcomer sees in a real terminal at 80 and at 120 columns, and in a pipe.

Each command runs in its own tmux pane of the given width (a real terminal: rich reads its width from the pty,
model turns stream, long lines wrap where the terminal wraps them). The screen is read back twice: as the visual
lines the person sees, and with the terminal's own wraps joined (how a line is copied). Model names, means and
the leaderboards' figures must be whole on visual lines (never squeezed to `…`, never broken), paths whole once
the terminal's wraps are joined, streamed words never split, and a person in a seat never shown the instructions
written for a model. Piped, every column of every table is whole.

A candidate model with a long name (as Ollama tags are: `ollama:llama3:8b-instruct-fp16`) is the scripted strong
candidate registered under a long name in the command's own process. Skipped with the reason when tmux is missing
(CI installs it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cli_process import env
from interview_sim.session.whiteboard import BOARD_HOW_TO

LONG = "scripted:candidate-8b-instruct-v1.1-fp16-q4"
MODELS = f"{LONG},scripted:weak"
OFFLINE = ["--interviewer-model", "scripted:default", "--evaluator-model", "scripted:judge"]
LONG_NAME_CLI = f"""
import sys
import interview_sim.models.scripted as scripted
scripted.script({LONG.split(":", 1)[1]!r})(scripted.SCRIPTS["strong"])
from interview_sim.cli import main
sys.argv = ["interview-sim", *sys.argv[1:]]
main()
"""
DONE = "__done__"
WIDTHS = (80, 120)


@dataclass
class Screen:
    visual: list[str]
    """The lines as the terminal shows them (a long line is several)."""
    joined: list[str]
    """The same, with the terminal's own wraps joined."""

    @property
    def text(self) -> str:
        return "\n".join(self.visual)

    def tokens(self) -> set[str]:
        return set(self.text.split())


class Tmux:
    """A private tmux server (its own socket) running one command per window of a given width."""

    def __init__(self, folder: Path) -> None:
        self.socket = folder / "tmux.sock"
        self.conf = folder / "tmux.conf"
        self.conf.write_text("set -g history-limit 100000\nset -g status off\n")
        self.count = 0

    def _tmux(self, *args: str) -> str:
        cmd = ["tmux", "-S", str(self.socket), "-f", str(self.conf), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout

    def start(self, args: list[str], width: int, extra: dict[str, str] | None = None) -> str:
        self.count += 1
        name = f"w{self.count}"
        variables = {**env(), "INTERVIEW_SIM_LLAMA_THREADS": "1", **(extra or {})}
        wanted = ("PATH", "HOME", "PYTHONPATH", "INTERVIEW_SIM_HOME", "INTERVIEW_SIM_LLAMA_THREADS", "LANG", "LC_ALL")
        assignments = [f"{k}={v}" for k, v in variables.items() if k in wanted and v]
        command = f"env {shlex.join(assignments)} LANG=C.UTF-8 {shlex.join(args)}; echo {DONE} $?; sleep 600"
        self._tmux("new-session", "-d", "-s", name, "-x", str(width), "-y", "50", command)
        return name

    def screen(self, name: str) -> Screen:
        visual = self._tmux("capture-pane", "-p", "-t", name, "-S", "-", "-E", "-").splitlines()
        joined = self._tmux("capture-pane", "-p", "-J", "-t", name, "-S", "-", "-E", "-").splitlines()
        return Screen([v.rstrip() for v in visual], [j.rstrip() for j in joined])

    def wait_for(self, name: str, pattern: str, timeout: float = 60) -> Screen:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(name)
            if re.search(pattern, screen.text):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {pattern!r}:\n{screen.text[-3000:]}")
            time.sleep(0.1)

    def finish(self, name: str, timeout: float = 240) -> Screen:
        screen = self.wait_for(name, rf"{DONE} \d+", timeout)
        code = re.search(rf"{DONE} (\d+)", screen.text)
        assert code is not None and code.group(1) == "0", screen.text[-3000:]
        self._tmux("kill-session", "-t", name)
        return screen

    def keys(self, name: str, *lines: str) -> None:
        for line in lines:
            self._tmux("send-keys", "-t", name, "-l", line)
            self._tmux("send-keys", "-t", name, "Enter")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def tmux(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tmux]:
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("the terminal tests must run in CI: tmux is missing (apt-get install tmux)")
        pytest.skip("tmux is not installed: apt-get install tmux")
    server = Tmux(tmp_path_factory.mktemp("tmux"))
    server._tmux("new-session", "-d", "-s", "keep", "sleep 3600")  # the server ends with its last session otherwise
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", LONG_NAME_CLI, *args]


def assert_nothing_squeezed(screen: Screen, width: int) -> None:
    assert "…" not in screen.text, screen.text
    assert all(len(line) <= width for line in screen.visual)


def assert_whole_on_a_line(screen: Screen, *names: str) -> None:
    for name in names:
        assert any(name in line for line in screen.visual), f"{name!r} is not whole on any line:\n{screen.text}"


@pytest.mark.parametrize("width", WIDTHS)
def test_run_streams_whole_words_and_ends_with_where_the_results_are(tmux: Tmux, runs: Path, width: int) -> None:
    folder = runs / f"run-{width}"
    args = cli("run", "scalability-issues", "--candidate-model", LONG, *OFFLINE, "--runs-dir", str(folder), "--report")
    screen = tmux.finish(tmux.start(args, width))
    assert_nothing_squeezed(screen, width)
    assert_whole_on_a_line(screen, LONG, "scripted:default", "scripted:judge")
    (transcript_path,) = folder.glob("*/*/transcript.json")
    transcript = json.loads(transcript_path.read_text())
    words = screen.tokens()
    for message in transcript["messages"]:
        split = [w for w in message["content"].split() if w not in words]
        assert not split, f"words broken on screen at {width} columns: {split}\n{screen.text}"
    ending = [line for line in screen.joined if line.strip()][-3:]
    assert ending[0].startswith("transcript: ") and ending[0].endswith(str(transcript_path))
    assert ending[1] == f"page: {transcript_path.parent / 'report.html'}"


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_and_sweep_leaderboards_keep_names_and_means(tmux: Tmux, runs: Path, width: int) -> None:
    folder = runs / "compare"
    args = cli("compare", "scalability-issues", "--models", MODELS, *OFFLINE, "--runs-dir", str(folder), "--max-turns", "3")
    screen = tmux.finish(tmux.start(args, width))
    assert_nothing_squeezed(screen, width)
    assert_whole_on_a_line(screen, LONG, "scripted:weak")
    (summary,) = folder.glob("comparisons/*/comparison.json")
    for row in json.loads(summary.read_text())["leaderboard"]:
        means = [line for line in screen.visual if row["model"] in line and f"{row['mean']:.2f}" in line.split()]
        assert means, f"{row['model']}'s mean {row['mean']:.2f} is not on its row:\n{screen.text}"

    sweep = cli("sweep", "sweep-seven-topics", "--models", MODELS, *OFFLINE, "--repeats", "1", "--max-turns", "3")
    screen = tmux.finish(tmux.start([*sweep, "--runs-dir", str(runs / "sweep")], width), timeout=400)
    assert_nothing_squeezed(screen, width)
    leaderboards = [line for line in screen.visual if "· candidates · judge" in line]
    assert len(leaderboards) == 8  # seven topics and all of them together
    assert sum(1 for line in screen.visual if LONG in line) >= 8


@pytest.mark.parametrize("width", WIDTHS)
def test_runs_lists_models_and_paths_whole(tmux: Tmux, runs: Path, width: int) -> None:
    folder = runs / f"listed-{width}"
    subprocess.run(
        cli("run", "scalability-issues", "--candidate-model", LONG, *OFFLINE, "--runs-dir", str(folder), "--json"),
        env=env(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    screen = tmux.finish(tmux.start(cli("runs", "--runs-dir", str(folder)), width))
    assert_nothing_squeezed(screen, width)
    (run_dir,) = folder.glob("*/*/transcript.json")
    assert_whole_on_a_line(screen, LONG, "scripted:default", f"{run_dir.parent.parent.name}/{run_dir.parent.name}")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_practice_session_shows_the_person_no_model_instructions(tmux: Tmux, runs: Path, width: int) -> None:
    args = cli(
        "run",
        "system-design-panel",
        "--candidate-model",
        "human",
        *OFFLINE,
        "--runs-dir",
        str(runs / f"practice-{width}"),
        "--max-turns",
        "5",
    )
    name = tmux.start(args, width)
    tmux.wait_for(name, r"your turn")
    tmux.keys(name, "/board")
    tmux.wait_for(name, r"section title")
    tmux.keys(name, "Plan", "cache the hot reads", "")
    tmux.wait_for(name, r"section 'Plan' written")
    tmux.keys(name, "I would cache the hottest reads first.", "")
    tmux.wait_for(name, r"(?s)whiteboard: \+ Plan.*your turn")
    tmux.keys(name, "I would split data by customer and add replicas.", "")
    screen = tmux.finish(name)
    assert_nothing_squeezed(screen, width)
    shown = " ".join(screen.text.split())
    assert " ".join(BOARD_HOW_TO.split()[:8]) not in shown  # the model's how-to, never the person's
    assert "```" not in shown  # nor the markup the board is written in
    assert shown.count("whiteboard for me some system design") == 1  # the opening line, once
    assert "said by Product-Manager" in shown  # a panel's streamed turn names its speaker once it is known
    assert "Your answers, graded" in shown and shown.count("Grade (scripted:judge") == 0  # the criteria once


def test_piped_output_keeps_every_column_whole(runs: Path) -> None:
    folder = runs / "piped"
    compare = cli("compare", "scalability-issues", "--models", MODELS, *OFFLINE, "--runs-dir", str(folder), "--max-turns", "3")
    out = subprocess.run(compare, env=env(), capture_output=True, text=True, check=True, timeout=240).stdout
    listed = subprocess.run(
        cli("runs", "--runs-dir", str(folder)), env=env(), capture_output=True, text=True, check=True, timeout=60
    ).stdout
    for text in (out, listed):
        assert "…" not in text
    rows = [line for line in out.splitlines() if LONG in line]
    assert len(rows) >= 3  # the leaderboard, the criteria's header, the health table's header
    (summary,) = folder.glob("comparisons/*/comparison.json")
    board = {r["model"]: r for r in json.loads(summary.read_text())["leaderboard"]}
    assert any(f"{board[LONG]['mean']:.2f}" in line.split() for line in rows)
    assert out.splitlines()[-1] == f"comparison: {summary}"
    header, *table = listed.splitlines()[:-1]
    assert header.split()[:5] == ["run", "date", "source", "interviewer", "candidate"]
    assert len(table) == 2 and all(LONG in line or "scripted:weak" in line for line in table)


def test_the_interviewer_seat_shows_the_opening_line_once_and_the_stage_to_come(tmux: Tmux, runs: Path) -> None:
    args = [
        *cli("run", "scalability-issues", "--interviewer-model", "human", "--candidate-model", "scripted:strong"),
        *["--evaluator-model", "scripted:judge", "--runs-dir", str(runs / "interviewer"), "--max-turns", "4"],
    ]
    name = tmux.start(args, 80)
    screen = tmux.wait_for(name, r"your turn")
    tmux.keys(name, "Good. Now the database is the bottleneck at quarter end: what do you do?", "")
    screen = tmux.finish(name)
    shown = " ".join(screen.text.split())
    (transcript_path,) = (runs / "interviewer").glob("*/*/transcript.json")
    messages = json.loads(transcript_path.read_text())["messages"]
    assert shown.count(" ".join(messages[0]["content"].split()[:12])) == 1  # the opening line, once
    assert shown.count(" ".join(messages[1]["content"].split())) == 1  # the candidate's first answer, once
    turn = shown[shown.index("your turn") :]
    assert "stage: open" not in turn.split("(type your answer")[0]  # no stage that contradicts the note below it
    assert "Your next turn (" in turn  # the stage to come, from the note
