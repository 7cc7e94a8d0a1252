from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from interview_sim.config import AgentSpec, ScenarioSpec, load_agent, load_scenario, validate_file
from interview_sim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SEVEN_TOPICS = {
    "scalability-issues",
    "technological-challenges",
    "opencorpo-specific-solutions",
    "ai-integration-in-business",
    "corporate-taxation",
    "investment-analysis-and-portfolio-management",
    "information-systems-management",
}
CRITERIA = {
    "security-measures",
    "integration-with-existing-tools",
    "performance-optimization",
    "scalability-and-efficiency",
    "governance-and-compliance",
}


def test_every_shipped_scenario_loads_with_its_agents() -> None:
    ids = set()
    for path in sorted((ROOT / "scenarios").glob("*.yaml")):
        if path.stem.startswith("sweep"):
            continue
        loaded = load_scenario(path)
        ids.add(loaded.spec.id)
        assert loaded.spec.id == path.stem
        assert {c.id for c in loaded.spec.rubric.criteria} == CRITERIA
        assert set(loaded.agents) == {"interviewer", "candidate", "evaluator"}
        assert all(a.model == "llamacpp:qwen2.5-coder-1.5b" for a in loaded.agents.values())
    assert ids >= SEVEN_TOPICS


def test_scenario_resolves_by_id_and_renders_the_users_opening_line() -> None:
    loaded = load_scenario("scalability-issues")
    opening = loaded.spec.render_opening(candidate="OpenCorpo-Assistant", interviewer="Interviewer")
    assert opening.startswith("OpenCorpo-Assistant, whiteboard for me some scalability issues. Propose a solution for ")
    assert "I will evaluate your answers and give my feedback, then propose a problem to you." in opening
    assert opening.endswith("Let's now begin. You have 30 minutes.")


def test_yaml_round_trip_keeps_every_field(scenario_path: Path, tmp_path: Path) -> None:
    spec = load_scenario(scenario_path).spec
    dumped = tmp_path / "again.yaml"
    dumped.write_text(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False))
    assert ScenarioSpec.model_validate(yaml.safe_load(dumped.read_text())) == spec
    agent = load_agent(ROOT / "agents" / "candidate.yaml")
    assert AgentSpec.model_validate(yaml.safe_load(yaml.safe_dump(agent.model_dump()))) == agent


def _broken_copy(tmp_path: Path, scenario_path: Path, mutate: object) -> Path:
    data = yaml.safe_load(scenario_path.read_text())
    assert callable(mutate)
    mutate(data)
    data["agents"] = {role: str((scenario_path.parent / rel).resolve()) for role, rel in data["agents"].items()}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(colour="blue"), "colour: unknown field (not allowed)"),
        (lambda d: d.update(max_turns="many"), "max_turns: Input should be a valid integer"),
        (lambda d: d["stages"][1].update(kind="dance"), "stages.1.kind: Input should be"),
        (lambda d: d["rubric"]["criteria"][0].update(weight=-1), "rubric.criteria.0.weight: Input should be greater than 0"),
        (lambda d: d.update(opening_line="Hi {nobody}"), "opening_line: Value error, unknown template field(s) ['nobody']"),
        (lambda d: d["stages"].pop(0), "stages: Value error, the first stage must be of kind 'open'"),
    ],
)
def test_bad_scenario_names_file_and_field(tmp_path: Path, scenario_path: Path, mutate: object, expected: str) -> None:
    path = _broken_copy(tmp_path, scenario_path, mutate)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message
    assert info.value.exit_code == 2


def test_bad_agent_file_and_role_mismatch(tmp_path: Path, scenario_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text("name: X\nrole: judge\nmodel: scripted:default\nsystem_prompt: hi\n")
    with pytest.raises(ConfigError, match=r"agent.yaml: role: Input should be 'interviewer', 'candidate' or 'evaluator'"):
        load_agent(agent)
    agent.write_text("name: X\nrole: evaluator\nmodel: scripted:default\nsystem_prompt: hi\n")

    def swap(d: dict[str, object]) -> None:
        pass

    path = _broken_copy(tmp_path, scenario_path, swap)
    data = yaml.safe_load(path.read_text())
    data["agents"]["candidate"] = str(agent)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="role: is 'evaluator' but the scenario uses it as 'candidate'"):
        load_scenario(path)


def test_model_reference_needs_a_provider(tmp_path: Path) -> None:
    agent = tmp_path / "agent.yaml"
    agent.write_text("name: X\nrole: candidate\nmodel: llama3\nsystem_prompt: hi\n")
    with pytest.raises(ConfigError, match="model: Value error, must be 'provider:name'"):
        load_agent(agent)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: line \d+: "):
        load_scenario(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="unknown scenario 'no-such-topic'.*known: .*scalability-issues"):
        load_scenario("no-such-topic")


def test_validate_file_tells_kinds_apart() -> None:
    assert validate_file(ROOT / "agents" / "interviewer.yaml") == "agent"
    assert validate_file(ROOT / "scenarios" / "corporate-taxation.yaml") == "scenario"


def test_rubric_hash_is_stable_and_content_sensitive(scenario_path: Path) -> None:
    rubric = load_scenario(scenario_path).spec.rubric
    assert rubric.content_hash() == load_scenario(scenario_path).spec.rubric.content_hash()
    changed = rubric.model_copy(update={"criteria": rubric.criteria[:-1]})
    assert changed.content_hash() != rubric.content_hash()


def test_the_public_api_resolves_every_name() -> None:
    import interview_sim

    for name in interview_sim.__all__:
        assert callable(getattr(interview_sim, name)) or isinstance(getattr(interview_sim, name), type), name
