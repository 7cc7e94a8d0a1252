"""The run record: transcript schema, event log and usage ledger.

A run folder holds `events.jsonl` (appended and flushed as things happen, so a crash loses at most the call
in flight) and `transcript.json` (versioned, written atomically when the run ends).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from interview_sim.errors import RecordError, field_path
from interview_sim.files import data_problem, exists, is_dir, is_file, open_append, parse_json, read_text
from interview_sim.files import write_text_atomic as write_text_atomic  # its home before files.py; still imported from here
from interview_sim.usage import Usage as Usage
from interview_sim.usage import UsageLedger as UsageLedger
from interview_sim.usage import UsageView as UsageView

SCHEMA_VERSION = 3
"""History: 1 = the first release; 2 = optional provenance fields on `imported` (AutoGen 0.2 chat id, summary,
human input, solution topic, how the rubric's scenario was chosen, the analysed interview); 3 = the whiteboard
(`board`, `board_changes`), the panel (`panel`, `debriefs`, a message's and a call's `seat`) and usage per agent."""
TRANSCRIPT_FILE = "transcript.json"
EVENTS_FILE = "events.jsonl"

StopReason = Literal["max_turns", "time_budget", "end_marker", "error", "interrupted", "imported"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_run_id(now: datetime | None = None) -> str:
    """Sortable: UTC timestamp first, then a short random suffix."""
    now = now or utc_now()
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}_{secrets.token_hex(3)}"


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


# ---------------------------------------------------------------------------------------------- records


class RetryInfo(_Record):
    attempt: int
    error: str
    wait_s: float


class CallRecord(_Record):
    """One model call, as it happened."""

    index: int
    role: str
    agent: str
    model: str
    """The model's name (the cost-block key)."""
    ref: str
    """The reference it was called through, e.g. `llamacpp:smollm2-135m`."""
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_evaluated: int | None = None
    latency_s: float
    generation_s: float | None = None
    prompt_eval_s: float | None = None
    """Of generation_s, the time spent evaluating the prompt (backends that report it)."""
    eval_s: float | None = None
    """Of generation_s, the time spent generating the completion (backends that report it)."""
    cached: bool = False
    retries: list[RetryInfo] = Field(default_factory=list)
    trimmed_messages: int = 0
    """Oldest turns dropped from the prompt so it fits the model's context window."""
    finish_reason: str = "stop"
    message_index: int | None = None
    evaluation_id: str | None = None
    seat: str | None = None
    """The session seat that made the call (schema 3): a panelist's id, else the role."""
    purpose: Literal["turn", "debrief"] = "turn"
    """A chat turn, or a panelist's wrap-up debrief (schema 3)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    thinking: str | None = None
    """The model's reasoning (thinking models), kept apart from the answer; its tokens are in completion_tokens."""

    def usage_value(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            calls=1,
            generation_s=self.generation_s if self.generation_s is not None else self.latency_s,
            prompt_eval_tokens=(self.prompt_tokens_evaluated or 0) if self.prompt_eval_s else 0,
            prompt_eval_s=self.prompt_eval_s or 0.0,
            eval_tokens=self.completion_tokens if self.eval_s else 0,
            eval_s=self.eval_s or 0.0,
        )


class ClockReading(_Record):
    elapsed_minutes: float
    remaining_minutes: float


class MessageUsage(_Record):
    prompt_tokens: int
    completion_tokens: int
    prompt_tokens_evaluated: int | None = None


class Message(_Record):
    index: int
    role: str
    """interviewer or candidate (analysis records: analyst roles)."""
    agent: str
    model: str | None = None
    """The model that wrote it; None for text from a template (the opening line) or an unknown source."""
    content: str
    source: Literal["model", "template", "imported"] = "model"
    usage: MessageUsage | None = None
    cached: bool = False
    latency_s: float | None = None
    clock: ClockReading | None = None
    """The simulated clock after this message."""
    stage: str | None = None
    """The script stage the interviewer was in."""
    thinking: str | None = None
    """The reasoning a thinking model wrote before this answer; `content` is the answer only."""
    cut_off: str | None = None
    """What the model wrote after its last complete sentence when it hit its token cap: cut from `content`
    (which then ends a sentence) and kept here, never hidden."""
    seat: str | None = None
    """The seat that spoke (schema 3): a panelist's id in a panel, else the role."""


class BoardSection(_Record):
    """One titled section of the whiteboard: text or an ASCII diagram."""

    title: str
    text: str
    author: str
    """The agent that last wrote it."""
    turn: int
    """1-based turn of its last change (0: the scenario's starting board)."""


class BoardChange(_Record):
    """One change to the whiteboard: a section written, replaced or erased."""

    version: int
    """The board's version after this change (1, 2, ...)."""
    turn: int
    """1-based turn whose message made the change (0: the scenario's starting board)."""
    author: str
    seat: str | None = None
    section: str
    before: str | None
    """The section's text before (None: it did not exist)."""
    after: str | None
    """The section's text after (None: erased)."""
    via: Literal["block", "tool", "scenario"] = "block"
    """A fenced `whiteboard` block in the turn, a whiteboard tool call, or the scenario's starting board."""


Verdict = Literal["hire", "lean hire", "lean no", "no"]


class PanelDebrief(_Record):
    """One panelist's wrap-up verdict."""

    seat: str
    agent: str
    verdict: Verdict | None
    """None when the panelist's answer never validated (see `error`): no verdict is ever made up."""
    reason: str | None = None
    raw: str = ""
    """The panelist's answer as written."""
    call_index: int | None = None
    error: str | None = None


class ImportInfo(_Record):
    """Where an imported run came from."""

    format: Literal["autogen02-json", "autogen02-markdown", "autogen02-text", "autogen02-analysis", "autogen02-embedded"]
    source_file: str
    original_name: str
    batch: str | None = None
    topic: str | None = None
    imported_at: datetime
    # Added in schema 2: what the user's file said beyond its messages, kept so an export reproduces it.
    solution_topic: str | None = None
    original_id: str | None = None
    """The session's uuid from the file name, when it has one."""
    scenario_match: Literal["topic", "default"] | None = None
    """How the rubric's scenario was chosen: its topic matched the file's, or the default scenario."""
    chat_id: int | str | None = None
    summary: str | None = None
    human_input: list[Any] = Field(default_factory=list)
    interview_file: str | None = None
    """Analysis exports: the interview file the analysis names (batch/file)."""
    analysis_of: str | None = None
    """Analysis records: the run id of the interview they analyse."""
    autogen_roles: dict[str, str] = Field(default_factory=dict)
    """Our role → the AutoGen role ("assistant" / "user") its turns had in the file; an export gives them back."""
    notes: list[str] = Field(default_factory=list)
    """Assumptions the importer made (e.g. who the interviewer is), so nobody mistakes them for facts."""
    sources: list[str] = Field(default_factory=list)
    """Every file this record was read from: the other forms (.json, .txt, .md) of the same chat join here."""
    fingerprint: str | None = None
    """The chat's content fingerprint (its messages' texts), the same whichever form it was read from."""


def _upgrade_1_to_2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 2 only added optional fields to `imported`; a version-1 record is already a valid version 2.
    return data


def _upgrade_2_to_3(data: dict[str, Any]) -> dict[str, Any]:
    # Version 3 added the board and the panel. A version-2 run had one interviewer and no board: every message's
    # and call's seat is its role, and the usage views gain a per-agent total rebuilt from the calls on save.
    # Entries of the wrong shape are left as they are, for validation to report in one line.
    data = dict(data)
    messages, calls = data.get("messages", []), data.get("calls", [])
    if isinstance(messages, list):
        data["messages"] = [{**m, "seat": m.get("seat") or m.get("role")} if isinstance(m, dict) else m for m in messages]
    if isinstance(calls, list):
        data["calls"] = [
            {**c, "seat": c.get("seat") or (c.get("role") if c.get("evaluation_id") is None else None)}
            if isinstance(c, dict)
            else c
            for c in calls
        ]
    data.setdefault("board", [])
    data.setdefault("board_changes", [])
    data.setdefault("panel", {})
    data.setdefault("debriefs", [])
    return data


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_1_to_2, 2: _upgrade_2_to_3}
"""Version n → n+1, applied in turn to older records as they are read."""


def upgrade_transcript_data(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a transcript's JSON from its schema version up to the current one (the input is not modified)."""
    version = data.get("schema_version", SCHEMA_VERSION)
    while version < SCHEMA_VERSION:
        data = {**_UPGRADES[version](dict(data)), "schema_version": version + 1}
        version += 1
    return data


class Transcript(_Record):
    """transcript.json. `schema_version` is always the first key."""

    schema_version: int = SCHEMA_VERSION
    interview_sim_version: str | None = None
    """The interview-sim release that wrote this record (None: written before releases were recorded)."""
    kind: Literal["interview", "analysis"] = "interview"
    run_id: str
    scenario_id: str
    scenario: dict[str, Any]
    """Snapshot of the scenario as it was run."""
    agents: dict[str, dict[str, Any]]
    """Snapshot per role: the agent file's fields plus the model's resolved name and reference."""
    seed: int | None = None
    max_turns: int | None = None
    """The turn limit in force (the scenario's, or the run's override)."""
    started_at: datetime
    ended_at: datetime | None = None
    stop_reason: StopReason | None = None
    error: str | None = None
    messages: list[Message] = Field(default_factory=list)
    calls: list[CallRecord] = Field(default_factory=list)
    usage: UsageLedger = Field(default_factory=UsageLedger)
    cost: dict[str, Any] = Field(default_factory=dict)
    simulated_minutes_used: float = 0.0
    imported: ImportInfo | None = None
    replay_of: str | None = None
    """Run id of the run this one re-executed offline (`replay --rerun`)."""
    attachments: list[str] = Field(default_factory=list)
    """Other records in the run folder that belong to this run (e.g. an imported analysis)."""
    board: list[BoardSection] = Field(default_factory=list)
    """The whiteboard at the end of the run (schema 3)."""
    board_changes: list[BoardChange] = Field(default_factory=list)
    """Every change to the whiteboard in order; the board after any turn is rebuilt from them (schema 3)."""
    panel: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Panel runs: snapshot of each panelist's agent, by seat id, in the panel's order (schema 3)."""
    debriefs: list[PanelDebrief] = Field(default_factory=list)
    """Panel runs: each panelist's wrap-up verdict (schema 3)."""

    @model_validator(mode="before")
    @classmethod
    def _check_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            version = data.get("schema_version", SCHEMA_VERSION)
            if not isinstance(version, int) or isinstance(version, bool):
                raise ValueError(f"schema_version must be an integer, got {version!r}")
            if version < 1:
                raise ValueError(f"schema_version {version} is not a transcript version (1 to {SCHEMA_VERSION})")
            if version > SCHEMA_VERSION:
                raise ValueError(
                    f"schema_version {version} is newer than this interview-sim understands ({SCHEMA_VERSION}):"
                    " upgrade interview-sim"
                )
            data = upgrade_transcript_data(data)
        return data

    def refresh_usage(self) -> None:
        """Recompute the ledger and cost block from the calls (measured runs only)."""
        if self.usage.source == "measured":
            self.usage = UsageLedger.from_calls(self.calls)
        self.cost = self.usage.cost_block()

    def models_by_role(self) -> dict[str, str]:
        """Each seat's model as its agent snapshot names it; the evaluator's, once the run is graded, as the
        judges that graded it (a judge given on the command line is not in the snapshot, which is the agent file's)."""
        models = {role: str(a.get("model_name") or a.get("model") or "?") for role, a in self.agents.items()}
        judges = list(dict.fromkeys(c.model for c in self.calls if c.role == "evaluator"))
        if judges:
            models["evaluator"] = ", ".join(judges)
        return models


# ---------------------------------------------------------------------------------------------- events


class _Event(_Record):
    at: datetime = Field(default_factory=utc_now)


class RunStarted(_Event):
    type: Literal["run_started"] = "run_started"
    run_id: str
    scenario_id: str
    models: dict[str, str]
    header: dict[str, Any] | None = None
    """The transcript as it stood at the start (snapshots, no messages): with the later events it rebuilds
    the transcript of a run that died before writing transcript.json."""


class ModelCalled(_Event):
    type: Literal["model_call"] = "model_call"
    call: CallRecord


class ModelFailed(_Event):
    type: Literal["model_error"] = "model_error"
    role: str
    agent: str
    ref: str
    error: str
    retries: list[RetryInfo] = Field(default_factory=list)


class MessageAdded(_Event):
    type: Literal["message"] = "message"
    message: Message
    board_changes: list[BoardChange] = Field(default_factory=list)
    """The whiteboard changes this message made (schema 3)."""


class RunFinished(_Event):
    type: Literal["run_finished"] = "run_finished"
    stop_reason: StopReason
    error: str | None = None
    debriefs: list[PanelDebrief] = Field(default_factory=list)
    """Panel runs: the panelists' wrap-up verdicts (schema 3)."""


Event = Annotated[RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished, Field(discriminator="type")]


class _EventLine(BaseModel):
    event: Event


def parse_event(line: str) -> RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished:
    """One line of events.jsonl. Raises ValueError (invalid JSON, too deep, not an event)."""
    data = json.loads(line)
    problem = data_problem(data)
    if problem is not None:
        raise ValueError(problem)
    return _EventLine.model_validate({"event": data}).event


# ---------------------------------------------------------------------------------------------- files


def write_json_atomic(path: Path, data: BaseModel | Any, *, durable: bool = True) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file.

    A record (a pydantic model) is serialized by pydantic itself: the same text as `json.dumps(model_dump(),
    indent=2)` but 6x faster (`json.dumps` runs its pure-Python encoder whenever it indents), except that very
    small floats are spelled as pydantic spells them (0.000025 and 1e-7, where Python writes 2.5e-05 and 1e-07):
    the same numbers to any JSON reader. NaN and infinities are written as json.dumps writes them (every record
    model says `ser_json_inf_nan="constants"`; pydantic's default, null, would make such a record unreadable).
    """
    indented = data.model_dump_json(indent=2) if isinstance(data, BaseModel) else json.dumps(data, indent=2, ensure_ascii=False)
    write_text_atomic(path, indented + "\n", durable=durable)


def dump_record(record: BaseModel) -> dict[str, Any]:
    return record.model_dump(mode="json")


class EventLog:
    """events.jsonl: one JSON object a line, appended and flushed as each event happens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = open_append(path)

    def emit(self, event: RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished) -> None:
        if self._fh is None:
            raise RuntimeError("event log is closed")
        self._fh.write(json.dumps(event.model_dump(mode="json"), ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file (also when its last flush fails, e.g. on a full disk: then that error is raised)."""
        fh, self._fh = self._fh, None
        if fh is not None:
            fh.close()

    def discard(self) -> None:
        """Close and remove the log, and its folder if that is left empty (a run that could not even start)."""
        with contextlib.suppress(OSError):
            self.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.path.parent.rmdir()


def save_calls(run_dir: Path, transcript: Transcript) -> None:
    """Keep calls made after a run ended (a grading's), already added to `transcript`: in its transcript.json, or
    for a run rebuilt from its event log (killed before it wrote transcript.json) appended to that log, so every
    later reading rebuilds the run with them and no transcript.json appears behind the user's back."""
    if exists(run_dir / TRANSCRIPT_FILE):
        save_transcript(run_dir, transcript)
        return
    logged = {e.call.index for e in read_events(run_dir) if isinstance(e, ModelCalled)}
    log = EventLog(run_dir / EVENTS_FILE)
    try:
        for call in transcript.calls:
            if call.index not in logged:
                log.emit(ModelCalled(call=call))
    finally:
        log.close()


def run_dir_for(runs_dir: Path, scenario_id: str, run_id: str) -> Path:
    return runs_dir / scenario_id / run_id


def transcript_path(run: str | Path) -> Path:
    """A run folder or a transcript path → the transcript path."""
    p = Path(run)
    return p / TRANSCRIPT_FILE if is_dir(p) else p


def save_transcript(run_dir: Path, transcript: Transcript, *, durable: bool = True) -> Path:
    transcript.refresh_usage()
    path = run_dir / TRANSCRIPT_FILE
    write_json_atomic(path, transcript, durable=durable)
    return path


REQUIRED_IN_FILE = ("messages",)
"""Fields a transcript file of every schema version has, though the model defaults them for a run being built."""


def load_transcript(run: str | Path) -> Transcript:
    """Read a transcript from a run folder or a transcript.json path. Raises RecordError."""
    path = transcript_path(run)
    if not exists(path):
        if is_file(path.parent / EVENTS_FILE):
            return recover_transcript(path.parent)
        raise RecordError(f"{run}: no run there (no {TRANSCRIPT_FILE})")
    data = parse_json(read_text(path, RecordError), RecordError, str(path))
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected a transcript object, got a JSON {type(data).__name__}")
    missing = [name for name in REQUIRED_IN_FILE if name not in data]
    if missing:  # a default would make a file without them read as an empty run
        raise RecordError(f"{path}: {missing[0]}: Field required (every transcript file has it)")
    try:
        return Transcript.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = field_path(first["loc"])
        raise RecordError(f"{path}: {loc}: {' '.join(str(first['msg']).split())}") from None
    except RecursionError:
        raise RecordError(f"{path}: nested too deeply to read") from None


def recover_transcript(run_dir: str | Path) -> Transcript:
    """Rebuild the transcript of a run that was killed before it wrote transcript.json, from its event log.

    Everything recorded before the crash is kept; the stop reason is `interrupted` unless the log says more.
    """
    events = read_events(run_dir)
    started = events[0] if events else None
    if not isinstance(started, RunStarted) or started.header is None:
        raise RecordError(f"{run_dir}: {EVENTS_FILE} has no run header to rebuild the transcript from")
    try:
        transcript = Transcript.model_validate(started.header)
    except ValidationError as exc:
        raise RecordError(
            f"{run_dir}: the run header in {EVENTS_FILE} is not a valid transcript: {exc.errors()[0]['msg']}"
        ) from None
    transcript.stop_reason, transcript.error = "interrupted", f"recovered from {EVENTS_FILE}: the run did not finish"
    # A call is logged before the message it produced, so its `message_index` is still null in the log; link
    # each model-written message to its role's last unlinked call, as the session did in memory.
    pending: dict[str, CallRecord] = {}
    for event in events[1:]:
        if isinstance(event, ModelCalled):
            transcript.calls.append(event.call)
            if event.call.evaluation_id is not None:
                continue  # a grading's calls, appended after the session: not part of its timeline
            if event.call.message_index is None:
                pending[event.call.role] = event.call
        elif isinstance(event, MessageAdded):
            transcript.messages.append(event.message)
            call = pending.pop(event.message.role, None) if event.message.source == "model" else None
            if call is not None:
                call.message_index = event.message.index
            transcript.board_changes.extend(event.board_changes)
            if event.message.clock is not None:
                transcript.simulated_minutes_used = event.message.clock.elapsed_minutes
        elif isinstance(event, RunFinished):
            transcript.stop_reason, transcript.error = event.stop_reason, event.error
            transcript.debriefs = list(event.debriefs)
        transcript.ended_at = event.at
    transcript.board = board_after(transcript.board_changes)
    transcript.refresh_usage()
    return transcript


def board_after(changes: list[BoardChange], version: int | None = None) -> list[BoardSection]:
    """The whiteboard after the given changes (up to `version`, default all), sections in first-written order."""
    sections: dict[str, BoardSection] = {}
    for change in changes:
        if version is not None and change.version > version:
            break
        if change.after is None:
            sections.pop(change.section, None)
        else:
            sections[change.section] = BoardSection(
                title=change.section, text=change.after, author=change.author, turn=change.turn
            )
    return list(sections.values())


def read_events(run_dir: str | Path) -> list[RunStarted | ModelCalled | ModelFailed | MessageAdded | RunFinished]:
    """Every complete event of a run; a torn last line (a crash mid-write) is ignored."""
    path = Path(run_dir) / EVENTS_FILE
    events = []
    # Split on newlines only: str.splitlines() would also cut at U+2028 and friends, which JSON keeps raw.
    lines = read_text(path, RecordError).rstrip("\n").split("\n")
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(parse_event(line))
        except (ValueError, RecursionError):  # JSONDecodeError and ValidationError are ValueErrors
            if n == len(lines):
                break
            raise RecordError(f"{path}: line {n} is not a valid event") from None
    return events
