"""The package as a user who never cloned the repository meets it: built, installed, run from an empty folder.

The sdist is built from a copy of the checkout and the wheel from the sdist (what `python -m build` does), both
offline with the build tools of the dev extra. The wheel goes into a fresh virtual environment by pip, resolving
its dependencies against those `make install` already put in this environment (layered in through a .pth file,
without this checkout's own interview-sim), so nothing is downloaded. Every command then runs the venv's
`interview-sim` script from a folder outside the checkout, with no PYTHONPATH and no $INTERVIEW_SIM_HOME.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from cli_process import SCRIPTED

ROOT = Path(__file__).resolve().parents[1]
NOT_SOURCE = (".git", ".venv", ".hypothesis", ".*_cache", "__pycache__", "*.egg-info", "build", "dist", "runs", "test-artifacts")
SHIPPED = ("agents", "scenarios")


@dataclass
class Installed:
    wheel: Path
    sdist: Path
    venv: Path
    version: str
    build_seconds: float

    def command(self) -> Path:
        return self.venv / "bin" / "interview-sim"


def _build_tools() -> None:
    try:
        setuptools_version = int(metadata.version("setuptools").split(".")[0])
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        setuptools_version = 0
    if setuptools_version < 68:
        pytest.fail("the build tools (setuptools>=68, wheel; the dev extra) are not installed: run `make install`")


def _checked(
    args: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    command = " ".join(map(str, args))
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _dependencies_view(into: Path) -> Path:
    """This environment's installed packages, less this checkout's interview-sim, as a folder of links."""
    into.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("interview_sim", "__editable__", "_interview_sim")) or entry.suffix == ".pth":
            continue
        (into / entry.name).symlink_to(entry)
    return into


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    _build_tools()
    work = tmp_path_factory.mktemp("packaging")
    started = time.monotonic()
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE), symlinks=True)
    build = [sys.executable, "-c", "import sys; from setuptools import build_meta as b; print(b.build_sdist(sys.argv[1]))"]
    sdist = work / "sdist" / _checked([*build, work / "sdist"], cwd=source).stdout.strip().splitlines()[-1]
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _checked([*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", work / "dist", sdist])
    (wheel,) = (work / "dist").glob("interview_sim-*.whl")
    build_seconds = time.monotonic() - started

    venv = work / "venv"
    _checked([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    purelib = Path(_checked([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (purelib / "_dependencies.pth").write_text(f"{_dependencies_view(work / 'dependencies')}\n")
    _checked([*pip, "--python", python, "install", "--quiet", "--no-index", "--no-build-isolation", wheel])
    version = wheel.name.split("-")[1]
    print(f"built the sdist and the wheel in {build_seconds:.1f} s, installed in {time.monotonic() - started:.1f} s")
    yield Installed(wheel, sdist, venv, version, build_seconds)


def test_the_wheel_carries_scenarios_agents_controls_and_templates_and_no_tests_or_runs(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    shipped = {
        str(Path("interview_sim/data") / path.relative_to(ROOT))
        for folder in SHIPPED
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(ROOT).parts)
    }
    assert shipped <= names, sorted(shipped - names)  # every file, a new one included, with no list to keep up
    for needed in (
        "interview_sim/data/scenarios/scalability-issues.yaml",
        "interview_sim/data/scenarios/sweep-seven-topics.yaml",
        "interview_sim/data/agents/evaluator.yaml",
        "interview_sim/data/scenarios/controls/scalability-issues/strong.json",
        "interview_sim/report/templates/run.html.j2",
        "interview_sim/cli/init.py",
    ):
        assert needed in names
    tops = {name.split("/")[0] for name in names}
    assert tops == {"interview_sim", f"interview_sim-{installed.version}.dist-info"}, tops  # no tests/, runs/, benchmarks/
    assert not [n for n in names if "/runs/" in n or "/tests/" in n or "__pycache__" in n]
    with tarfile.open(installed.sdist) as sdist:
        members = sdist.getnames()
    assert any(m.endswith("/scenarios/controls/scalability-issues/weak.json") for m in members)
    assert any(m.endswith("/agents/candidate.yaml") for m in members)
    assert installed.build_seconds < 120


def test_run_calibrate_init_and_a_scaffolded_run_from_an_empty_folder_outside_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    outside, home = tmp_path / "outside", tmp_path / "home"
    outside.mkdir()
    home.mkdir()
    assert not outside.resolve().is_relative_to(ROOT)
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env |= {"HOME": str(home), "PATH": f"{installed.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
    runs_before = sorted((ROOT / "runs").iterdir()) if (ROOT / "runs").is_dir() else []

    def cli(*args: str, cwd: Path = outside, code: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(installed.command()), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert proc.returncode == code, f"interview-sim {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr
        return proc

    where = _checked([installed.venv / "bin" / "python", "-c", "import interview_sim; print(interview_sim.__file__)"], env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed.venv), where.stdout  # our wheel, not the checkout
    assert cli("--version").stdout.strip() == f"interview-sim {installed.version}"

    run = json.loads(cli("run", "scalability-issues", *SCRIPTED, "--json").stdout)
    assert (outside / run["run_dir"]).resolve().is_relative_to(outside.resolve())
    transcript = json.loads(Path(outside, run["transcript"]).read_text())
    assert list(transcript)[:2] == ["schema_version", "interview_sim_version"]
    assert transcript["interview_sim_version"] == installed.version
    assert Path(transcript["scenario"]["path"]).is_relative_to(installed.venv)  # the packaged scenario
    assert run["evaluation"]["status"] == "ok" and run["evaluation"]["interview_sim_version"] == installed.version

    small = ("--labelled", "6", "--verbosity", "2", "--retest", "2", "--pairs", "2")
    calibration = json.loads(cli("calibrate", "--evaluator-model", "scripted:judge", *small, "--json").stdout)
    assert calibration["passed"] and calibration["interview_sim_version"] == installed.version
    assert calibration["validity"]["sizes"]["transcripts"] == 6  # the labelled set travels in the wheel
    assert (outside / calibration["folder"]).resolve().is_relative_to(outside.resolve())

    assert "wrote" in cli("init", "project").stdout
    refused = cli("init", "project", code=2).stderr.strip().splitlines()
    assert len(refused) == 1 and "--force" in refused[0], refused
    project = outside / "project"
    scenario = project / "scenarios" / "scalability-issues.yaml"
    scenario.write_text(scenario.read_text().replace("title: Scalability issues", "title: My scalability interview"))
    checked = cli("validate", "scalability-issues", cwd=project).stdout
    assert "working directory, overrides packaged" in checked and str(scenario) in checked
    assert "scenarios/sweep-seven-topics.yaml (sweep" in cli("validate", cwd=project).stdout
    mine = json.loads(cli("run", "scalability-issues", *SCRIPTED, "--json", cwd=project).stdout)
    mine_transcript = json.loads(Path(project, mine["transcript"]).read_text())
    assert mine_transcript["scenario"]["title"] == "My scalability interview"  # the user's file won
    assert (project / mine["run_dir"]).resolve().is_relative_to(project.resolve())

    assert not list(home.rglob("*")), list(home.rglob("*"))  # nothing written outside that folder
    assert (sorted((ROOT / "runs").iterdir()) if (ROOT / "runs").is_dir() else []) == runs_before
    written = {p.relative_to(outside).parts[0] for p in outside.rglob("*")}
    assert written == {"runs", "project"}, written
