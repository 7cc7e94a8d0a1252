"""AutoGen 0.2 records in and out: the user's older corpus becomes runs, and our runs become their format.

Three forms come in (see FORMATS.md): (a) `ChatResult` JSON, whose history holds `{content, role, name}`
dicts or plain strings; (b) the Markdown export with its `**Chat_id**` / `**Cost**` / `**Human_input**` /
`**Summary**` trailer; (c) the analysis export, a Markdown export whose first turn embeds an interview.
The `**Cost**` trailer and the embedded history are Python literals, read with `ast.literal_eval` only.

Who is the interviewer. AutoGen's "assistant" / "user" describe one agent's view of the chat (its own turns
and the other's), not who interviews whom, so they are never taken as labels. The rule, in order:

1. the speaker of the first turn that matches the interview's opening template
   ("{candidate}, whiteboard for me some {topic}. Propose a solution for {solution_topic}. I will evaluate ...")
   is the interviewer, the other speaker the candidate;
2. otherwise, agent names that say "interviewer" / "candidate" decide;
3. otherwise the first speaker (the chat's initiator) is taken as the interviewer, and the transcript says so
   in `imported.notes`.

A speaker is a dict's `name` (else its `role`), a Markdown turn's "Assistant" / "User", and for plain strings
the position (the two agents alternate).

Imported token counts are evidence, not truth: AutoGen 0.2 accumulated usage per agent across every chat the
agent had. They are kept (ledger `source="imported"`, keyed by the model names of the Cost block) and flagged
in `usage.warnings` when they cannot belong to a single chat of that length. The bound: a model made at most
one call per message, and one call's prompt holds at most the whole chat — at most `MAX_TOKENS_PER_CHAR`
tokens per character of all its messages — plus `PROMPT_ALLOWANCE_TOKENS` for a system prompt and the chat
template. So prompt tokens above `messages × (chars × MAX_TOKENS_PER_CHAR + PROMPT_ALLOWANCE_TOKENS)`, or
completion tokens above `chars × MAX_TOKENS_PER_CHAR + COMPLETION_ALLOWANCE_PER_MESSAGE × messages`, are flagged.
English text runs 3-4 characters a token, so one token per character is already a wide margin.

Nothing is half-written: each file is parsed and validated whole in memory, then its run folder is built in
a hidden staging folder inside `runs_dir` and renamed into place.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from interview_sim import lookup
from interview_sim.autogen02.formats import (
    ANALYSIS_ROLES,
    Chat,
    CostEntry,
    HistoryItem,
    Turn,
    alternating,
    embedded_history,
    first_error,
    turns_from_history,
)
from interview_sim.config import LoadedScenario, load_scenario
from interview_sim.errors import ConfigError, ImportFormatError
from interview_sim.files import DIR_MODE
from interview_sim.record import (
    ImportInfo,
    Message,
    Transcript,
    Usage,
    UsageLedger,
    UsageView,
    new_run_id,
    run_dir_for,
    save_transcript,
    utc_now,
    write_json_atomic,
)
from interview_sim.version import version

DEFAULT_SCENARIO = "scalability-issues"
ANALYSIS_PREFIX = "analysis-"
"""The analysis conversation's speakers: the one who hands over the interview and the instructions, the other."""

MAX_TOKENS_PER_CHAR = 1.0
PROMPT_ALLOWANCE_TOKENS = 2000
COMPLETION_ALLOWANCE_PER_MESSAGE = 64

# Atomic groups `(?>...)`: each part, once matched at its first possible end, is never tried again at a later
# one. Without them a first turn repeating ". Propose a solution for b." took quadratic time (540 KB: 73 s).
_OPENING = re.compile(
    r"^\s*(?>(?P<candidate>[^\n]+?), whiteboard for me some )(?>(?P<topic>.+?)\. Propose a solution for )"
    r"(?>(?P<solution>.+?)\.\s+I will evaluate)",
    re.S,
)
_BUDGET = re.compile(r"You have (?P<minutes>\d+(?:\.\d+)?) minutes\.")
_UUID = r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
_FILE_NAME = re.compile(
    r"^interview_transcript_(?P<date>\d{4}-\d{2}-\d{2})_(?P<topic>.+?)_(?P<k>\d+)_(?P<uuid>" + _UUID + r")(?:_" + _UUID + r")?$"
)
"""The pipeline's names: `<date>_<topic>_<max turns>_<uuid>` (.json, .txt), and `<txt stem>_<uuid>` for the .md."""
_BATCH = re.compile(r"^(?:review_)?interview_[\w-]+$")
_ANALYSIS = re.compile(r"analysis of the interview data named:\s*(?P<file>\S+)")
TREE_PATTERN = "interview_transcript_*"


# ---------------------------------------------------------------------------------------------- building runs


@dataclass
class _Scenarios:
    """The shipped scenarios, loaded once per import, to pick the rubric by topic."""

    by_topic: dict[str, LoadedScenario] = field(default_factory=dict)
    default: LoadedScenario | None = None

    @classmethod
    def load(cls) -> _Scenarios:
        found = cls()
        for hit in lookup.list_ids("scenarios").values():
            try:
                loaded = load_scenario(hit.path)
            except ConfigError:
                continue  # sweep files and broken scenarios are no rubric source
            found.by_topic.setdefault(_norm(loaded.spec.topic), loaded)
            found.by_topic.setdefault(_norm(loaded.spec.id), loaded)
            if loaded.spec.id == DEFAULT_SCENARIO:
                found.default = loaded
        return found

    def match(self, topic: str | None) -> tuple[LoadedScenario, Literal["topic", "default"]]:
        if topic and _norm(topic) in self.by_topic:
            return self.by_topic[_norm(topic)], "topic"
        if self.default is None:
            raise ImportFormatError(
                f"no shipped scenario matches topic {topic!r} and the default {DEFAULT_SCENARIO!r} is missing"
            )
        return self.default, "default"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


@dataclass
class _Origin:
    """What a file's name and place say about the session."""

    original_name: str
    batch: str | None = None
    topic: str | None = None
    original_id: str | None = None
    date: datetime | None = None

    @classmethod
    def from_name(cls, name: str, folder: str | None) -> _Origin:
        stem = Path(name).stem
        origin = cls(original_name=Path(name).name, batch=folder if folder and _BATCH.match(folder) else None)
        match = _FILE_NAME.match(stem)
        if match:
            origin.topic = match["topic"].replace("_", " ")
            origin.original_id = match["uuid"].lower()
            with contextlib.suppress(ValueError):  # an impossible date (2024-13-45) in a name is no date
                origin.date = datetime.fromisoformat(match["date"]).replace(tzinfo=UTC)
        return origin


def _assign_roles(turns: list[Turn]) -> tuple[dict[str, str], re.Match[str] | None, list[str]]:
    """speaker → interviewer / candidate, by the rule in the module docstring."""
    speakers = list(dict.fromkeys(t.speaker for t in turns))
    if len(speakers) > 2:
        raise ImportFormatError(f"{len(speakers)} speakers ({', '.join(speakers)}): not a two-agent interview")
    for turn in turns:
        opening = _OPENING.match(turn.content)
        if opening:
            other = [s for s in speakers if s != turn.speaker]
            return {turn.speaker: "interviewer", **{s: "candidate" for s in other}}, opening, []
    by_name = {s: r for s in speakers for r in ("interviewer", "candidate") if r in s.lower()}
    if len(set(by_name.values())) == len(speakers) == 2:
        note = "no turn matches the interview's opening template: roles taken from the agents' names"
        return by_name, None, [note]
    roles = {s: ("interviewer" if i == 0 else "candidate") for i, s in enumerate(speakers)}
    note = "no turn matches the interview's opening template: assumed the first speaker (the initiator) is the interviewer"
    return roles, None, [note]


def _ledger(cost: dict[str, Any] | None, messages: list[Message], *, empty_reason: str | None = None) -> UsageLedger:
    ledger = UsageLedger(source="imported")
    if not cost:
        ledger.warnings.append(empty_reason or "the file has no usage (no or empty cost block)")
        return ledger
    views = {"including_cached": "usage_including_cached_inference", "excluding_cached": "usage_excluding_cached_inference"}
    for attr, key in views.items():
        block = cost.get(key) or {}
        if not isinstance(block, dict):
            raise ImportFormatError(f"cost.{key} must be a mapping, got {type(block).__name__}")
        view = UsageView()
        for model, entry in block.items():
            if model == "total_cost":
                continue
            try:
                parsed = CostEntry.model_validate(entry)
            except ValidationError as exc:
                raise ImportFormatError(f"cost.{key}.{model}: {first_error(exc)}") from None
            usage = Usage(prompt_tokens=parsed.prompt_tokens, completion_tokens=parsed.completion_tokens)
            if parsed.total_tokens is not None and parsed.total_tokens != usage.total_tokens:
                ledger.warnings.append(
                    f"{model}: total_tokens {parsed.total_tokens:,} is not prompt + completion ({usage.total_tokens:,})"
                )
            view.by_model[model] = usage
            view.total = view.total + usage
        setattr(ledger, attr, view)
    if not ledger.including_cached.by_model and not ledger.excluding_cached.by_model:
        ledger.warnings.append(empty_reason or "the cost block lists no model: the file has no usage")
    ledger.warnings.extend(_impossible_counts(ledger, messages))
    return ledger


def _impossible_counts(ledger: UsageLedger, messages: list[Message]) -> list[str]:
    n = len(messages)
    chars = sum(len(m.content) for m in messages)
    prompt_bound = int(n * (chars * MAX_TOKENS_PER_CHAR + PROMPT_ALLOWANCE_TOKENS))
    completion_bound = int(chars * MAX_TOKENS_PER_CHAR + COMPLETION_ALLOWANCE_PER_MESSAGE * n)
    chat = f"a single chat of {n} message{'s' if n != 1 else ''} ({chars:,} characters)"
    warnings = []
    incl, excl = ledger.including_cached.by_model, ledger.excluding_cached.by_model
    for model in dict.fromkeys([*incl, *excl]):
        u = incl.get(model) or excl[model]
        if u.prompt_tokens > prompt_bound:
            warnings.append(
                f"{model}: {u.prompt_tokens:,} prompt tokens cannot belong to {chat}: at most {prompt_bound:,}"
                " (AutoGen 0.2 accumulated usage per agent across chats)"
            )
        if u.completion_tokens > completion_bound:
            warnings.append(
                f"{model}: {u.completion_tokens:,} completion tokens exceed all the text of {chat}: at most {completion_bound:,}"
            )
        e = excl.get(model)
        if model in incl and e is not None and (e.prompt_tokens > u.prompt_tokens or e.completion_tokens > u.completion_tokens):
            warnings.append(f"{model}: usage excluding cached inference exceeds usage including it")
    return warnings


def _scenario_snapshot(loaded: LoadedScenario, topic: str | None, solution: str | None, minutes: float | None) -> dict[str, Any]:
    snapshot = {**loaded.spec.model_dump(mode="json"), "path": loaded.path}
    if topic:
        snapshot["topic"] = topic
    if solution:
        snapshot["solution_topic"] = solution
    if minutes:
        snapshot["time_budget_minutes"] = minutes
    return snapshot


def _agent_snapshot(name: str, role: str) -> dict[str, Any]:
    # The model behind each agent is not in the file: the Cost block names models but not who used which.
    return {"name": name, "role": role, "model": None, "model_ref": None, "model_name": None}


def _candidate_model(name: str, cost: dict[str, Any] | None) -> str | None:
    """The candidate's model when its name says it ("OpenCorpo-Assistant (Llama3)") and exactly one model of
    the Cost block fits the hint (`llama3:8b-instruct-fp16`); otherwise unknown."""
    hint = re.search(r"\(([^()]{1,40})\)\s*$", name)
    if not hint or not isinstance(cost, dict):
        return None
    want = re.sub(r"[^a-z0-9]", "", hint[1].lower())
    models = {m for view in cost.values() if isinstance(view, dict) for m in view if m != "total_cost"}
    fits = [m for m in models if want and re.sub(r"[^a-z0-9]", "", m.split(":")[0].lower()).startswith(want)]
    return fits[0] if len(fits) == 1 else None


@dataclass
class _Built:
    transcript: Transcript
    attachments: list[tuple[str, Transcript]] = field(default_factory=list)


def _interview(
    chat: Chat,
    *,
    origin: _Origin,
    source: Path,
    scenarios: _Scenarios,
    interview_file: str | None = None,
    empty_usage_reason: str | None = None,
) -> Transcript:
    """An interview run from a chat's turns and its own record (form, cost block, chat id, summary, human input)."""
    turns, cost = chat.turns, chat.cost
    if not turns:
        raise ImportFormatError("the chat history is empty: nothing to import")
    roles, opening, notes = _assign_roles(turns)
    topic = opening["topic"].strip() if opening else origin.topic
    solution = opening["solution"].strip() if opening else None
    budget = _BUDGET.search(opening.string) if opening else None
    loaded, how = scenarios.match(topic)
    default_names = {"interviewer": "Interviewer", "candidate": opening["candidate"].strip() if opening else "Candidate"}
    names = {
        role: next((t.name for t in turns if roles[t.speaker] == role and t.name), default_names[role]) for role in roles.values()
    }
    messages = [
        Message(index=i, role=roles[t.speaker], agent=names[roles[t.speaker]], content=t.content, source="imported")
        for i, t in enumerate(turns)
    ]
    autogen_roles: dict[str, str] = {}
    for t in turns:
        if t.autogen_role:
            autogen_roles.setdefault(roles[t.speaker], t.autogen_role)
    agents = {role: _agent_snapshot(names[role], role) for role in ("interviewer", "candidate") if role in names}
    for role, agent in agents.items():
        # An agent's name often says its model ("OpenCorpo-Assistant (Llama3)"); the opening line addresses the
        # candidate by such a name. Taken only when exactly one model of the Cost block fits, and marked inferred.
        model = _candidate_model(default_names.get(role, ""), cost) or _candidate_model(names[role], cost)
        if model:
            agent["model_name"], agent["model_inferred"] = model, True
            notes = [*notes, f"{role} model {model!r} inferred from the {role}'s name and the Cost block's models"]
    imported_at = utc_now()
    return Transcript(
        interview_sim_version=version(),
        kind="interview",
        run_id=new_run_id(imported_at),
        scenario_id=loaded.spec.id,
        scenario=_scenario_snapshot(loaded, topic, solution, float(budget["minutes"]) if budget else None),
        agents=agents,
        started_at=origin.date or datetime.fromtimestamp(source.stat().st_mtime, UTC),
        ended_at=None,
        stop_reason="imported",
        messages=messages,
        usage=_ledger(cost, messages, empty_reason=empty_usage_reason),
        imported=ImportInfo(
            format=chat.format,
            source_file=str(source if source.is_absolute() else source.resolve()),
            original_name=origin.original_name,
            batch=origin.batch,
            topic=topic,
            imported_at=imported_at,
            solution_topic=solution,
            original_id=origin.original_id,
            scenario_match=how,
            chat_id=chat.chat_id,
            summary=chat.summary,
            human_input=chat.human_input,
            interview_file=interview_file,
            autogen_roles=autogen_roles,
            notes=notes,
        ),
    )


def _analysis(chat: Chat, match: re.Match[str], *, source: Path, scenarios: _Scenarios) -> _Built:
    """Form (c): the embedded interview becomes a run; the analysis conversation an attached analysis record."""
    history, embedded_summary = embedded_history(chat.turns[0].content)
    named = match["file"].rstrip(".,;:")
    named_path = Path(named)
    origin = _Origin.from_name(named_path.name, named_path.parent.name or None)
    if all(isinstance(h, str) for h in history):
        turns = alternating([str(h) for h in history])
    else:
        try:
            turns = turns_from_history([HistoryItem.model_validate(h) for h in history])
        except ValidationError as exc:
            raise ImportFormatError(f"analysis export: embedded Chat History: {first_error(exc)}") from None
    interview = _interview(
        Chat("autogen02-analysis", turns, cost=None, summary=embedded_summary),
        origin=origin,
        source=source,
        scenarios=scenarios,
        interview_file=named,
        empty_usage_reason="the analysis export carries no usage for the embedded interview (its Cost block is the analysts')",
    )
    speakers = list(dict.fromkeys(t.speaker for t in chat.turns))
    if len(speakers) > 2:
        raise ImportFormatError(f"analysis export: {len(speakers)} speakers ({', '.join(speakers)}): expected two analysts")
    roles = dict(zip(speakers, ANALYSIS_ROLES, strict=False))
    messages = [
        Message(index=i, role=roles[t.speaker], agent=t.name or t.speaker, content=t.content, source="imported")
        for i, t in enumerate(chat.turns)
    ]
    autogen_roles: dict[str, str] = {}
    for t in chat.turns:
        if t.autogen_role:
            autogen_roles.setdefault(roles[t.speaker], t.autogen_role)
    assert interview.imported is not None
    file_origin = _Origin.from_name(source.name, source.parent.name)
    record = Transcript(
        interview_sim_version=version(),
        kind="analysis",
        run_id=new_run_id(interview.imported.imported_at),
        scenario_id=interview.scenario_id,
        scenario=interview.scenario,
        agents={
            roles[s]: _agent_snapshot(next((t.name or t.speaker) for t in chat.turns if t.speaker == s), roles[s])
            for s in speakers
        },
        started_at=datetime.fromtimestamp(source.stat().st_mtime, UTC),
        stop_reason="imported",
        messages=messages,
        usage=_ledger(chat.cost, messages),
        imported=interview.imported.model_copy(
            update={
                "format": "autogen02-analysis",
                "original_name": source.name,
                "batch": file_origin.batch,
                "original_id": None,
                "chat_id": chat.chat_id,
                "summary": chat.summary,
                "human_input": chat.human_input,
                "analysis_of": interview.run_id,
                "autogen_roles": autogen_roles,
                "notes": [f"{ANALYSIS_ROLES[0]}: the first speaker, who hands over the interview and the instructions"],
            }
        ),
    )
    name = f"{ANALYSIS_PREFIX}{record.run_id}.json"
    interview.attachments.append(name)
    return _Built(interview, [(name, record)])


def _write(built: _Built, runs_dir: Path, *, durable: bool = True) -> Path:
    """Build the run folder in a hidden staging folder, then rename it into place: never half a run."""
    transcript = built.transcript
    final = _reserve(built, runs_dir)
    staging = Path(tempfile.mkdtemp(prefix=".import-", dir=runs_dir))
    try:
        os.chmod(staging, DIR_MODE)
        for name, record in built.attachments:
            record.refresh_usage()
            write_json_atomic(staging / name, record, durable=durable)
        save_transcript(staging, transcript, durable=durable)
        os.rename(staging, final)  # onto the empty folder reserved for it
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        with contextlib.suppress(OSError):
            final.rmdir()
        raise
    return final


def _reserve(built: _Built, runs_dir: Path) -> Path:
    """Create the run's empty folder, under a run id no other run has: two chats imported in the same second (by
    this process or another) may draw the same id, and renaming onto another run's folder would lose one."""
    transcript = built.transcript
    while True:
        final = run_dir_for(runs_dir, transcript.scenario_id, transcript.run_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            final.mkdir()
        except FileExistsError:
            taken = transcript.run_id
            transcript.run_id = new_run_id(transcript.imported.imported_at if transcript.imported else None)
            for _name, record in built.attachments:
                if record.imported is not None and record.imported.analysis_of == taken:
                    record.imported.analysis_of = transcript.run_id
            continue
        return final
