"""Agent and scenario files: YAML validated by pydantic, with one-line `file: field: problem` errors."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from interview_sim import lookup
from interview_sim.errors import ConfigError, field_path
from interview_sim.files import MAX_CONFIG_BYTES, data_problem, exists, read_text

Role = Literal["interviewer", "candidate", "evaluator"]
SESSION_ROLES: tuple[Role, Role] = ("interviewer", "candidate")
StageKind = Literal["open", "pose_problem", "probe", "feedback", "wrap_up"]
ASKING_STAGES: tuple[StageKind, ...] = ("pose_problem", "probe")
"""The stages whose interviewer turn must ask the candidate something (the session's note says so; health counts it)."""

_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"
_TEMPLATE_FIELDS = {"candidate", "interviewer", "company", "topic", "solution_topic", "minutes", "title"}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="constants")


class AgentSpec(_Spec):
    """One agent file (`agents/*.yaml`)."""

    name: str = Field(min_length=1)
    """Display name, also used in the opening line (e.g. "Candidate-Bot")."""
    role: Role
    """interviewer, candidate or evaluator."""
    model: str = Field(min_length=3)
    """Model reference `provider:name`, e.g. `llamacpp:smollm2-135m` or `ollama:llama3:8b-instruct-fp16`."""
    system_prompt: str = Field(min_length=1)
    """The persona: the system prompt the model sees first."""
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    """Sampling temperature."""
    seed: int = 42
    """Sampling seed; a run's `--seed` overrides it."""
    max_tokens: int = Field(default=200, gt=0, le=8192)
    """Cap on the tokens the model may generate in one turn."""
    repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0)
    """Penalty on repeating recent tokens (llama.cpp and Ollama `repeat_penalty`); 1.0 turns it off.
    An evaluator's defaults are its own: temperature 0 and repeat penalty off (a judge must be able to give
    the same score, or quote the same words, twice)."""
    think: bool | Literal["low", "medium", "high"] = False
    """Thinking models (deepseek-r1, qwen3, gpt-oss): reason before answering? true / false, or a level for
    models that take one (gpt-oss). Sent only to models whose server says they can think; off by default so
    every model spends its max_tokens on the answer and interviews stay comparable."""
    timeout_s: float | None = Field(default=None, gt=0)
    """Deadline of one model call to a server (Ollama), retries included (default 120 s; `--timeout` overrides)."""
    turn_note: str | None = None
    """A reminder the seat reads at the end of every prompt, after the conversation (e.g. "answer in at most four
    sentences of plain prose"): small models follow the last thing they read far better than a system prompt
    many turns above. It is never part of the transcript, and a turn that repeats it counts as note leakage."""

    @model_validator(mode="before")
    @classmethod
    def _judge_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("role") == "evaluator":
            data = {"temperature": 0.0, "repeat_penalty": 1.0, **data}
        return data

    @field_validator("model")
    @classmethod
    def _has_provider(cls, value: str) -> str:
        if ":" not in value:
            raise ValueError("must be 'provider:name', e.g. 'llamacpp:smollm2-135m'")
        return value


class Stage(_Spec):
    """One step of the interviewer's script."""

    kind: StageKind
    """open, pose_problem, probe, feedback or wrap_up."""
    instruction: str = Field(min_length=1)
    """What the interviewer is told to do while in this stage."""
    turns: int = Field(default=1, ge=1)
    """How many interviewer turns the stage lasts."""
    owner: str | None = None
    """Panel scenarios: the id of the panelist who runs this stage (default: the first panelist)."""


MAX_WEIGHT = 1000.0
"""The largest criterion weight: weights are relative, and a huge one (1e308) overflows the weighted mean to NaN."""
SCALE_LIMIT = 100
"""A rubric scale lies within -100..100 (a scale up to 10**30 passed validation and crashed grading)."""


class Criterion(_Spec):
    """One rubric criterion."""

    id: str = Field(pattern=_ID_PATTERN)
    name: str
    description: str
    """What a good answer shows on this criterion; the judge reads it."""
    weight: float = Field(default=1.0, gt=0, le=MAX_WEIGHT, allow_inf_nan=False)
    """How much the criterion counts in the overall score, relative to the others: a positive number up to 1000."""
    levels: dict[int, str] = Field(default_factory=dict)
    """Behavioural anchors: what an answer at a point of the scale looks like in this scenario, at least for
    the lowest, the middle and the highest point (e.g. {1: ..., 3: ..., 5: ...}); the judge reads them."""

    @field_validator("levels")
    @classmethod
    def _non_empty_levels(cls, value: dict[int, str]) -> dict[int, str]:
        if any(not text.strip() for text in value.values()):
            raise ValueError("a level's description must not be empty")
        return value


class Scale(_Spec):
    min: int = Field(default=1, ge=-SCALE_LIMIT, le=SCALE_LIMIT)
    """The lowest score (at least -100)."""
    max: int = Field(default=5, ge=-SCALE_LIMIT, le=SCALE_LIMIT)
    """The highest score (at most 100): a judge's reply names a point of the scale, and a score is a small number."""
    labels: dict[int, str] = Field(default_factory=dict)
    """Optional meaning of some points of the scale, e.g. {1: poor, 5: excellent}."""

    @model_validator(mode="after")
    def _ordered(self) -> Scale:
        if self.max <= self.min:
            raise ValueError("max must be greater than min")
        return self


class Rubric(_Spec):
    scale: Scale = Field(default_factory=Scale)
    criteria: list[Criterion] = Field(min_length=1)

    @field_validator("criteria")
    @classmethod
    def _unique_ids(cls, value: list[Criterion]) -> list[Criterion]:
        ids = [c.id for c in value]
        if len(ids) != len(set(ids)):
            raise ValueError("criterion ids must be unique")
        return value

    @model_validator(mode="after")
    def _levels_on_scale(self) -> Rubric:
        for c in self.criteria:
            off = sorted(k for k in c.levels if not self.scale.min <= k <= self.scale.max)
            if off:
                raise ValueError(f"criterion {c.id!r}: level(s) {off} are off the scale {self.scale.min}-{self.scale.max}")
        return self

    def anchor_points(self) -> list[int]:
        """The points every criterion must describe: the scale's lowest, middle and highest."""
        lo, hi = self.scale.min, self.scale.max
        return sorted({lo, (lo + hi) // 2, hi})

    def missing_anchors(self) -> list[str]:
        """One line per criterion that lacks a behavioural anchor at the lowest, middle or highest point."""
        points = self.anchor_points()
        problems = []
        for n, c in enumerate(self.criteria):
            missing = [p for p in points if p not in c.levels]
            if missing:
                problems.append(
                    f"rubric.criteria.{n}.levels ({c.id}): describe what a {', '.join(map(str, missing))} looks like"
                    f" (every criterion needs levels {', '.join(map(str, points))})"
                )
        return problems

    def content_hash(self) -> str:
        """A stable hash of the rubric's content, recorded with every evaluation."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Clock(_Spec):
    """Simulated minutes each turn costs, per role."""

    interviewer: float = Field(default=2.0, ge=0)
    candidate: float = Field(default=5.0, ge=0)


class ScenarioAgents(_Spec):
    """Which agent file plays which role; paths are relative to the scenario file."""

    interviewer: str | None = None
    """Required unless the scenario has a `panel` (whose first panelist then chairs the interview)."""
    candidate: str
    evaluator: str | None = None


class Panelist(_Spec):
    """One interviewer of a panel."""

    id: str = Field(pattern=_ID_PATTERN)
    """The panelist's seat, e.g. `tech-lead`; stages name it as their `owner`."""
    agent: str
    """Agent file (role interviewer), relative to the scenario file."""
    persona: str = ""
    """Added to the agent's system prompt: who this panelist is and what they care about."""


class BoardSeed(_Spec):
    """A section of the whiteboard the scenario asks for."""

    title: str = Field(min_length=1, max_length=60)
    text: str = ""
    """Written on the board before the first turn; empty: the section is only asked for."""


class WhiteboardSpec(_Spec):
    """The scenario's whiteboard: which sections it asks for, and how much of it a prompt may carry."""

    sections: list[BoardSeed] = Field(default_factory=list)
    prompt_tokens: int = Field(default=300, ge=32)
    """Most tokens the board takes in a prompt (less when the model's context is short)."""


class ScenarioSpec(_Spec):
    """One scenario file (`scenarios/*.yaml`)."""

    id: str = Field(pattern=_ID_PATTERN)
    """Stable id; runs are stored under `runs/<id>/`."""
    title: str
    company: str
    topic: str
    """What the candidate whiteboards, e.g. "scalability issues"."""
    solution_topic: str
    """What the candidate proposes a solution for."""
    opening_line: str
    """Template of the interviewer's first line; fields: {candidate} {interviewer} {company} {topic}
    {solution_topic} {minutes} {title}."""
    time_budget_minutes: float = Field(default=30, gt=0)
    max_turns: int = Field(default=10, ge=1)
    """Messages in the session, the opening line included."""
    minutes_per_turn: Clock = Field(default_factory=Clock)
    end_marker: str = "END OF INTERVIEW"
    """Text the interviewer writes to end the session."""
    stages: list[Stage] = Field(min_length=1)
    agents: ScenarioAgents
    rubric: Rubric
    panel: list[Panelist] = Field(default_factory=list)
    """Several interviewers, each owning stages (`owner` on a stage); empty: one interviewer (`agents.interviewer`)."""
    whiteboard: WhiteboardSpec | None = None
    """Ask for a whiteboard: every prompt carries it and says how to write on it. Without it, a board written
    anyway (a fenced `whiteboard` block) is still kept and shown."""

    @model_validator(mode="after")
    def _panel_owns_stages(self) -> ScenarioSpec:
        ids = [p.id for p in self.panel]
        if len(ids) != len(set(ids)):
            raise ValueError("panel: panelist ids must be unique")
        if not self.panel and self.agents.interviewer is None:
            raise ValueError("agents.interviewer is required unless the scenario has a panel")
        for n, stage in enumerate(self.stages):
            if stage.owner is not None and stage.owner not in ids:
                known = ", ".join(ids) or "none: the scenario has no panel"
                raise ValueError(f"stages.{n}.owner: {stage.owner!r} is not a panelist (panel: {known})")
        return self

    def stage_owner(self, stage: Stage) -> str | None:
        """The panelist who runs a stage (None without a panel)."""
        if not self.panel:
            return None
        return stage.owner or self.panel[0].id

    @field_validator("opening_line")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        check_template(value)
        return value

    @field_validator("stages")
    @classmethod
    def _starts_with_open(cls, value: list[Stage]) -> list[Stage]:
        if value[0].kind != "open":
            raise ValueError("the first stage must be of kind 'open'")
        return value

    def render_opening(self, *, candidate: str, interviewer: str) -> str:
        return self.opening_line.format(
            candidate=candidate,
            interviewer=interviewer,
            company=self.company,
            topic=self.topic,
            solution_topic=self.solution_topic,
            minutes=_fmt_minutes(self.time_budget_minutes),
            title=self.title,
        )


def check_template(template: str) -> None:
    """Accept only `{field}` with a documented field name: no attribute or index access, format spec or conversion.

    `str.format` would otherwise read Python internals (`{candidate.__class__}`) or pad to any width
    (`{candidate:>300000000}`). Literal braces are written `{{` and `}}`. Raises ValueError.
    """
    allowed = f"allowed: {', '.join('{' + f + '}' for f in sorted(_TEMPLATE_FIELDS))} (write {{{{ and }}}} for braces)"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); {allowed}") from None
    fields = [(name, spec, conversion) for _, name, spec, conversion in parts if name is not None]
    unknown = sorted({name for name, _, _ in fields} - _TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"unknown template field(s) {unknown}; {allowed}")
    for name, spec, conversion in fields:
        if spec or conversion:
            raise ValueError(f"template field {{{name}}} may not carry a format spec or conversion; {allowed}")


def _fmt_minutes(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class LoadedScenario(_Spec):
    """A scenario with the agent files it names, resolved and validated."""

    path: str
    spec: ScenarioSpec
    agents: dict[str, AgentSpec]
    """Per role; in a panel scenario `interviewer` is the first panelist (the chair)."""
    panel: dict[str, AgentSpec] = Field(default_factory=dict)
    """Panel scenarios: each panelist's agent (persona included), by seat id in the panel's order."""

    def agent(self, role: str) -> AgentSpec:
        return self.agents[role]

    def seats(self) -> dict[str, tuple[str, AgentSpec]]:
        """Every seat of the session → (role, agent): the panelists (or the interviewer), then the candidate."""
        seats: dict[str, tuple[str, AgentSpec]] = {seat: ("interviewer", a) for seat, a in self.panel.items()}
        if not seats:
            seats["interviewer"] = ("interviewer", self.agents["interviewer"])
        seats["candidate"] = ("candidate", self.agents["candidate"])
        return seats


_S = TypeVar("_S", bound=BaseModel)


def _format_validation(path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = field_path(first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field (not allowed)"
    more = len(err.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {loc}: {msg}{suffix}"


class _StrictLoader(yaml.SafeLoader):
    """`yaml.safe_load`, except that a key given twice in one mapping is an error (PyYAML keeps the last silently,
    so a second `agents:` would quietly replace the first). Keys brought in by a merge (`<<: *base`) may be
    overridden, as YAML intends."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the constructor below says so
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {first + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)


def _yaml_problem(text: str, exc: yaml.YAMLError) -> str:
    """`line N: what`, where N is the line to fix. A quote left open is the usual slip, and PyYAML reports it where
    it gives up: at the end of the file, or lines later where the next quote closes it by accident. Both are
    traced back to the line the quoted value starts on."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "invalid YAML"
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context == "while scanning a quoted scalar" and context_mark is not None:
        return f"line {context_mark.line + 1}: a quoted value is never closed (a missing quote?)"
    flow = context is not None and context.startswith("while parsing a flow")
    if flow and context_mark is not None and problem.endswith("'<stream end>'"):
        return f"line {context_mark.line + 1}: a [ or {{ opened here is never closed"
    if mark is not None:
        opened = _quote_spanning_to(text, mark.line)
        if opened is not None:
            return (
                f"line {opened + 1}: a quoted value opened here runs on to line {mark.line + 1},"
                f" where YAML then finds {problem.split('found ', 1)[-1]} (a missing quote?)"
            )
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _quote_spanning_to(text: str, line: int) -> int | None:
    """The start line of a quoted scalar that spans several lines and ends on or just before `line`, if any."""
    last = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.line > line:
                break
            quoted = isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
            if quoted and token.end_mark.line > token.start_mark.line and token.end_mark.line >= line - 1:
                last = token.start_mark.line
    except yaml.YAMLError:
        pass
    return last


def _read_yaml(path: Path) -> dict[str, Any]:
    text = read_text(path, ConfigError, limit=MAX_CONFIG_BYTES)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(text, exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply to read") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # PyYAML builds some values itself and lets their errors through (a timestamp like 2024-13-45).
        raise ConfigError(f"{path}: a value YAML cannot build: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    problem = data_problem(data)
    if problem is not None:
        raise ConfigError(f"{path}: YAML {problem}")
    return data


def _validate(model: type[_S], path: Path, data: dict[str, Any]) -> _S:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(path, exc)) from None


def load_agent(path: str | Path) -> AgentSpec:
    """Load and validate one agent file."""
    p = Path(path)
    return _validate(AgentSpec, p, _read_yaml(p))


def _resolve_in_scenarios(ref: str | Path, kind: str, is_kind: Callable[[str], bool]) -> Path:
    """A path as given, or an id looked up in `scenarios/` (`lookup`: $INTERVIEW_SIM_HOME, the working directory,
    the packaged ones); the error lists the known ids of that kind."""
    p = Path(ref)
    if p.suffix in {".yaml", ".yml"} or exists(p):
        return p
    found = lookup.find(f"scenarios/{ref}.yaml")
    if found is not None:
        return found.path
    import difflib

    ids = [stem for stem in lookup.list_ids("scenarios") if is_kind(stem)]
    close = difflib.get_close_matches(str(ref), ids, n=1, cutoff=0.75)
    hint = f"did you mean {close[0]!r}? " if close else ""
    known = ", ".join(ids)
    raise ConfigError(f"unknown {kind} {str(ref)!r}: not a file and not an id in scenarios/ ({hint}known: {known or 'none'})")


def resolve_scenario_path(ref: str | Path) -> Path:
    """A scenario path, or an id looked up in `scenarios/`."""
    return _resolve_in_scenarios(ref, "scenario", lambda stem: not stem.startswith("sweep"))


def load_scenario(ref: str | Path) -> LoadedScenario:
    """Load a scenario (path or id) and the agent files it names, all validated."""
    path = resolve_scenario_path(ref)
    spec = _validate(ScenarioSpec, path, _read_yaml(path))
    agents: dict[str, AgentSpec] = {}
    for role in ("interviewer", "candidate", "evaluator"):
        rel = getattr(spec.agents, role)
        if rel is not None:
            agents[role] = _load_role_agent(path, f"agents.{role}", rel, role)
    panel: dict[str, AgentSpec] = {}
    for n, member in enumerate(spec.panel):
        agent = _load_role_agent(path, f"panel.{n}.agent", member.agent, "interviewer")
        if member.persona.strip():
            agent = agent.model_copy(update={"system_prompt": f"{agent.system_prompt.strip()}\n\n{member.persona.strip()}"})
        panel[member.id] = agent
    if panel:
        agents["interviewer"] = next(iter(panel.values()))
    return LoadedScenario(path=str(path), spec=spec, agents=agents, panel=panel)


def _load_role_agent(path: Path, where: str, rel: str, role: str) -> AgentSpec:
    agent_path = lookup.agent_file(path, rel)
    if not exists(agent_path):
        raise ConfigError(f"{path}: {where}: agent file {rel!r} not found (looked at {agent_path})")
    agent = load_agent(agent_path)
    if agent.role != role:
        raise ConfigError(f"{agent_path}: role: is {agent.role!r} but the scenario uses it as {role!r}")
    return agent


class SweepTopic(_Spec):
    """One topic of a sweep: a scenario, and the solution topics to run it with."""

    scenario: str = Field(min_length=1)
    """A scenario id from `scenarios/`, or a path to a scenario file relative to the sweep file."""
    solution_topics: list[str] = Field(default_factory=list)
    """What the candidate proposes a solution for, one group of cells each; empty: the scenario's own."""


class SweepSpec(_Spec):
    """A sweep file (`scenarios/sweep-*.yaml`): a batch over topics × solution topics × models × repeats."""

    sweep: str = Field(pattern=_ID_PATTERN)
    """The sweep's id; its results are stored under `runs/comparisons/<sweep>-<hash>/`."""
    description: str = ""
    role: Literal["candidate", "interviewer"] = "candidate"
    """The role the compared models play; the other agents are held fixed."""
    models: list[str] = Field(min_length=1)
    """Model references compared in that role, e.g. `llamacpp:smollm2-135m`."""
    repeats: int = Field(default=1, ge=1)
    """Sessions per model and group; repeat r uses seed `seed + r` for every agent."""
    seed: int = 0
    evaluator_model: str | None = None
    """The judge for every cell (default: each scenario's evaluator agent)."""
    interviewer_model: str | None = None
    """Replaces the interviewer agent's model when the candidate is compared (held fixed across cells)."""
    candidate_model: str | None = None
    """Replaces the candidate agent's model when the interviewer is compared (held fixed across cells)."""
    max_turns: int | None = Field(default=None, ge=1)
    """Messages per session, the opening line included (default: each scenario's)."""
    pairwise: bool = True
    """Judge the models' runs of the same group and repeat against each other (win rates)."""
    topics: list[SweepTopic] = Field(min_length=1)

    @field_validator("models")
    @classmethod
    def _refs(cls, value: list[str]) -> list[str]:
        bad = [ref for ref in value if ":" not in ref]
        if bad:
            raise ValueError(f"{bad[0]!r} must be 'provider:name', e.g. 'llamacpp:smollm2-135m'")
        if len(set(value)) != len(value):
            raise ValueError("model references must be unique")
        return value

    @model_validator(mode="after")
    def _fixed_role_only(self) -> SweepSpec:
        if getattr(self, f"{self.role}_model") is not None:
            raise ValueError(f"{self.role}_model is the compared role ({self.role}): list those models in `models`")
        return self


class LoadedSweep(_Spec):
    """A sweep with every scenario it names, resolved and validated (in the order of `topics`)."""

    path: str
    spec: SweepSpec
    scenarios: list[LoadedScenario]


def resolve_sweep_path(ref: str | Path) -> Path:
    """A sweep path, or an id looked up in `scenarios/` (`sweep-seven-topics`)."""
    return _resolve_in_scenarios(ref, "sweep", lambda stem: stem.startswith("sweep"))


def load_sweep(ref: str | Path) -> LoadedSweep:
    """Load a sweep file (path or id) and every scenario it names, all validated. Raises ConfigError."""
    path = resolve_sweep_path(ref)
    spec = _validate(SweepSpec, path, _read_yaml(path))
    scenarios = []
    for n, topic in enumerate(spec.topics):
        target: str | Path = topic.scenario
        if Path(topic.scenario).suffix in {".yaml", ".yml"}:
            target = path.parent / topic.scenario
        try:
            scenarios.append(load_scenario(target))
        except ConfigError as exc:
            raise ConfigError(f"{path}: topics.{n}.scenario: {exc}") from None
    return LoadedSweep(path=str(path), spec=spec, scenarios=scenarios)


def validate_file(path: str | Path) -> str:
    """Validate an agent, scenario or sweep file by its content; returns what it is. Raises ConfigError."""
    return load_any(path)[0]


def load_any(path: str | Path) -> tuple[str, AgentSpec | LoadedScenario | LoadedSweep]:
    """Load an agent, scenario or sweep file, told apart by its content: (what it is, the loaded file)."""
    p = Path(path)
    data = _read_yaml(p)
    if "sweep" in data:
        return "sweep", load_sweep(p)
    if "role" in data:
        return "agent", load_agent(p)
    if "stages" in data or "opening_line" in data:
        loaded = load_scenario(p)
        problems = loaded.spec.rubric.missing_anchors()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ConfigError(f"{p}: {problems[0]}{more}")
        return "scenario", loaded
    raise ConfigError(f"{p}: not an agent file (no 'role'), a scenario file (no 'stages') nor a sweep file (no 'sweep')")
