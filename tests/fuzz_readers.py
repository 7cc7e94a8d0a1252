"""The readers of outside data, and hypothesis strategies for hostile inputs to each (issue 10's fuzz suite).

Property, for every reader: given any bytes (random, or a valid document mutated), it returns a valid object
or raises `InterviewSimError` (the project's own, one-line error). Anything else is a crash. Where a reader
returns, what users do next with the object is run too (a transcript is replayed, exported and rendered; an
import's runs are read back), so a record that loads but breaks a later command also counts as a crash.

Used by `tests/test_fuzz.py` (a short profile in `make test`) and `tests/fuzz.py` (`make fuzz`: a long one,
each input in a worker process with a timeout, so hangs and hard crashes are caught too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from interview_sim.autogen02 import export_run, import_transcripts
from interview_sim.config import AgentSpec, LoadedScenario, LoadedSweep, load_agent, load_any, load_scenario, load_sweep
from interview_sim.errors import ImportFormatError, InterviewSimError
from interview_sim.models import check_references
from interview_sim.record import EVENTS_FILE, TRANSCRIPT_FILE, Transcript, load_transcript, read_events
from interview_sim.replay import replay_run
from interview_sim.report import render_run_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "autogen02"


# ---------------------------------------------------------------------------------------------- seeds


def _scripted_run(folder: Path) -> Path:
    from interview_sim.session import run_scenario

    scripted = {"interviewer_model": "scripted:default", "candidate_model": "scripted:default"}
    return asyncio.run(run_scenario("scalability-issues", runs_dir=folder, seed=3, max_turns=5, **scripted)).run_dir


@dataclass
class Seeds:
    """Valid documents of every kind, as text: what the near-valid strategies mutate."""

    agents: list[str]
    scenarios: list[str]
    sweeps: list[str]
    transcripts: list[str]
    events: list[str]
    autogen02: list[tuple[str, str]]
    """(suffix, text) of every AutoGen 0.2 fixture."""

    @classmethod
    def collect(cls) -> Seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run = _scripted_run(Path(tmp))
            transcript = (run / TRANSCRIPT_FILE).read_text(encoding="utf-8")
            events = (run / EVENTS_FILE).read_text(encoding="utf-8")
        golden = sorted((ROOT / "tests" / "golden").glob("transcript-v*.json"))
        controls = sorted((ROOT / "scenarios" / "controls").rglob("*.json"))
        killed = "\n".join(events.splitlines()[:-2]) + "\n"
        return cls(
            agents=[p.read_text(encoding="utf-8") for p in sorted((ROOT / "agents").glob("*.yaml"))],
            scenarios=[p.read_text(encoding="utf-8") for p in sorted((ROOT / "scenarios").glob("[!s]*.yaml"))],
            sweeps=[
                *(p.read_text(encoding="utf-8") for p in sorted((ROOT / "scenarios").glob("sweep*.yaml"))),
                "sweep: s\nmodels: [scripted:strong, scripted:weak]\nrepeats: 2\ntopics:\n  - scenario: scalability-issues\n",
            ],
            transcripts=[transcript, *(p.read_text(encoding="utf-8") for p in [*golden, *controls[:1]])],
            events=[events, killed],
            autogen02=[(p.suffix, p.read_text(encoding="utf-8")) for p in sorted(FIXTURES.rglob("*")) if p.is_file()],
        )


# ---------------------------------------------------------------------------------------------- strategies

_WORDS = [
    "schema_version", "kind", "run_id", "scenario_id", "scenario", "agents", "messages", "calls", "usage", "cost",
    "stop_reason", "imported", "attachments", "index", "role", "agent", "content", "source", "clock", "message_index",
    "evaluation_id", "type", "run_started", "model_call", "message", "run_finished", "header", "call", "opening_line",
    "stages", "rubric", "criteria", "model", "models", "topics", "scenario", "sweep", "chat_history", "chat_id",
    "interviewer", "candidate", "evaluator", "name", "system_prompt", "max_turns", "time_budget_minutes",
]  # fmt: skip
_SPLICES = [
    "{", "}", "[", "]", '"', "'", ":", ",", "\n", "\\u", "\\ud800", "\x00", "\ufeff", "\u2028", "{candidate}",
    "{candidate.__class__}", "{candidate:>99999999}", "**Assistant**: ", "**User**: ", "**Chat_id**: ", "**Cost**: {",
    "**Human_input**: []", "**Summary**: ", "Chat History: [", "analysis of the interview data named: x/y.json",
    "```", "!!python/object:os.system", "&a", "*a", "<<: *a", "---", "...", "? ", "- ", "9" * 5000, "[" * 3000,
    "X, whiteboard for me some a. Propose a solution for b. I will evaluate",
]  # fmt: skip

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(_WORDS)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_WORDS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.extend(_paths(v, (*prefix, i)))
    return out


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        value = value[key]
    return value


@st.composite
def mutated_data(draw: st.DrawFn, data: Any) -> Any:
    """A valid document's data with 1-4 structural edits: replace, delete, add a key, wrap, deepen."""
    data = json.loads(json.dumps(data, default=str))
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(data)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["replace", "delete", "add", "wrap", "deep", "empty", "nonfinite", "share"]))
        if not path:
            if op == "replace":
                data = draw(json_values)
            continue
        parent, key = _get(data, path[:-1]), path[-1]
        if op == "replace":
            parent[key] = draw(json_values)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(_WORDS) | st.text(max_size=6))] = draw(json_values)
        elif op == "wrap":
            parent[key] = [parent[key]]
        elif op == "deep":
            nested: Any = parent[key]
            for _ in range(draw(st.integers(10, 120))):
                nested = [nested]
            parent[key] = nested
        elif op == "empty":
            parent[key] = type(parent[key])() if isinstance(parent[key], dict | list | str) else None
        elif op == "nonfinite":
            parent[key] = draw(NON_FINITE)
        elif op == "share":  # YAML writes a shared value once, with an anchor, and an alias where it appears again
            others = [p for p in paths if p and p[: len(path)] != path and path[: len(p)] != p]
            if others:
                before, parent[key] = parent[key], _get(data, draw(st.sampled_from(others)))
                try:
                    json.dumps(data)
                except ValueError:  # the value shared contains this place: a cycle, not an alias
                    parent[key] = before
    if draw(st.integers(0, 9)) == 0:  # now and then every number of the record at once
        data = _all_non_finite(data, draw(NON_FINITE))
    return data


NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def _all_non_finite(value: Any, number: float) -> Any:
    if isinstance(value, dict):
        return {k: _all_non_finite(v, number) for k, v in value.items()}
    if isinstance(value, list):
        return [_all_non_finite(v, number) for v in value]
    return number if isinstance(value, int | float) and not isinstance(value, bool) else value


_KEY_LINE = re.compile(r'^\s*"?[\w-]+"?\s*:')


def alias_bomb(levels: int) -> str:
    """YAML whose aliases expand to 9**levels values: a few hundred bytes (levels 9: 387 million)."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 9)}]" for n in range(1, levels)]
    return "\n".join(lines)


@st.composite
def mutated_text(draw: st.DrawFn, text: str) -> str:
    """Splices, deletions and a truncation at random places of a text."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["splice", "delete", "truncate", "repeat", "duplicate-key", "alias-bomb"]))
        if op == "splice":
            text = text[:at] + draw(st.sampled_from(_SPLICES) | st.text(max_size=12)) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 200)) :]
        elif op == "truncate":
            text = text[:at]
        elif op == "duplicate-key":  # a line `key: value` given again in the same mapping, right below it
            lines = text.split("\n")
            keyed = [n for n, line in enumerate(lines) if _KEY_LINE.match(line)]
            if keyed:
                n = draw(st.sampled_from(keyed))
                lines.insert(n + 1, lines[n])
                text = "\n".join(lines)
        elif op == "alias-bomb":  # nine aliases a line over `levels` lines, as new top-level keys
            text = f"{text.rstrip()}\n{alias_bomb(draw(st.integers(2, 9)))}\n"
        else:
            piece = text[at : at + draw(st.integers(1, 40))]
            text = text[:at] + piece * draw(st.integers(2, 50)) + text[at:]
    return text


@st.composite
def encoded(draw: st.DrawFn, text: str) -> bytes:
    """Mostly UTF-8; sometimes UTF-16, Latin-1 or a few flipped bytes."""
    how = draw(st.sampled_from(["utf-8"] * 6 + ["utf-16", "utf-8-sig", "latin-1", "flip"]))
    if how == "flip":
        raw = bytearray(text.encode("utf-8"))
        for _ in range(draw(st.integers(1, 4))):
            if raw:
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
        return bytes(raw)
    return text.encode(how, errors="replace")


SPECIAL = b"\x00fuzz-special:"
"""A payload `SPECIAL + kind` puts something other than a regular file where the reader looks (see `place`)."""
SPECIALS = ["fifo", "dev-zero", "dev-null", "dev-urandom", "huge", "folder", "symlink-loop", "dangling-symlink", "socket"]
special_files = st.sampled_from(SPECIALS).map(lambda kind: SPECIAL + kind.encode())


def place(path: Path, payload: bytes) -> None:
    """Write `payload` at `path`, or, for a special payload, a FIFO, a device (through a symlink), a 4 GB sparse
    file, a folder, a symlink loop, a dangling symlink or a socket: what a hostile user can name instead of a file."""
    import os
    import socket

    path.parent.mkdir(parents=True, exist_ok=True)
    kind = payload.removeprefix(SPECIAL).decode() if payload.startswith(SPECIAL) else None
    if kind is None:
        path.write_bytes(payload)
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind.startswith("dev-"):
        path.symlink_to(f"/dev/{kind.removeprefix('dev-')}")
    elif kind == "huge":
        with path.open("wb") as fh:
            fh.truncate(4 * 1024**3)
    elif kind == "folder":
        path.mkdir()
    elif kind == "symlink-loop":
        path.symlink_to(path.name)
    elif kind == "dangling-symlink":
        path.symlink_to(path.parent / "nowhere")
    elif kind == "socket":  # bound at a short path (AF_UNIX paths are short), then moved into place
        short = Path(tempfile.mkdtemp(prefix="s")) / "s"
        sock = socket.socket(socket.AF_UNIX)
        try:
            sock.bind(str(short))
            os.rename(short, path)
        finally:
            sock.close()
            shutil.rmtree(short.parent, ignore_errors=True)


def documents(texts: list[str], load: Callable[[str], Any], dump: Callable[[Any], str]) -> st.SearchStrategy[bytes]:
    """Hostile inputs for one kind of document: random bytes, mutated text, mutated structure, duplicate keys,
    aliases and alias bombs (YAML), NaN and infinities in any field, and things that are not regular files."""
    seeds = st.sampled_from(texts)
    loadable = []
    for text in texts:  # malformed fixtures are seeds for text mutations only
        with contextlib.suppress(ValueError, yaml.YAMLError):
            loadable.append(load(text))
    structural = st.sampled_from(loadable).flatmap(mutated_data).map(dump)
    textual = seeds.flatmap(mutated_text)
    return st.binary(max_size=300) | special_files | st.one_of(structural, textual, seeds).flatmap(encoded)


def _yaml_dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except RecursionError:  # PyYAML's writer recurses; JSON is YAML too
        return json.dumps(data)


def _json_dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _events_dump(lines: Any) -> str:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in (lines if isinstance(lines, list) else [lines]))


def _events_load(text: str) -> Any:
    return [json.loads(line) for line in text.splitlines()]


# ---------------------------------------------------------------------------------------------- readers


def _check_transcript(transcript: Transcript, run: Path) -> None:
    """What users do with a transcript that loaded: it must work or fail in one line."""
    assert isinstance(transcript, Transcript)
    for step in (
        lambda: replay_run(run),
        lambda: export_run(run, "autogen02-json"),
        lambda: export_run(run, "autogen02-markdown"),
        lambda: render_run_report(run),
    ):
        with contextlib.suppress(InterviewSimError):
            step()


def read_agent(payload: bytes, work: Path) -> None:
    path = work / "agents" / "fuzzed.yaml"
    place(path, payload)
    assert isinstance(load_agent(path), AgentSpec)


def read_scenario(payload: bytes, work: Path) -> None:
    path = work / "scenarios" / "fuzzed.yaml"
    place(path, payload)
    assert isinstance(load_scenario(path), LoadedScenario)


def read_sweep(payload: bytes, work: Path) -> None:
    path = work / "scenarios" / "sweep-fuzzed.yaml"
    place(path, payload)
    assert isinstance(load_sweep(path), LoadedSweep)


def read_any_config(payload: bytes, work: Path) -> None:
    """What `validate` does: tell the kind by content, load it, check its model references."""
    path = work / "scenarios" / "any.yaml"
    place(path, payload)
    _, loaded = load_any(path)
    check_references(loaded, path)


def read_transcript(payload: bytes, work: Path) -> None:
    run = work / "run"
    run.mkdir()
    place(run / TRANSCRIPT_FILE, payload)
    _check_transcript(load_transcript(run), run)


def read_event_log(payload: bytes, work: Path) -> None:
    """A run killed before it wrote transcript.json: rebuilt from its event log."""
    run = work / "run"
    run.mkdir()
    place(run / EVENTS_FILE, payload)
    assert isinstance(read_events(run), list)
    _check_transcript(load_transcript(run), run)


def _read_autogen02(suffix: str) -> Callable[[bytes, Path], None]:
    def read(payload: bytes, work: Path) -> None:
        src = work / "interview_26" / f"interview_transcript_2024-04-24_scalability_issues_6_fuzzed{suffix}"
        place(src, payload)
        report = import_transcripts([src], runs_dir=work / "runs")
        assert len(report.files) == 1  # every file is accounted for: imported, skipped (empty, not a chat) or failed
        for record in report.created:  # what an import writes, every later command reads
            _check_transcript(load_transcript(record.path), Path(record.run_dir))
        if report.failures:  # the import reports a file it cannot read, as the CLI prints it: our error
            raise ImportFormatError(report.failures[0].error)

    return read


@dataclass(frozen=True)
class Reader:
    name: str
    read: Callable[[bytes, Path], None]
    inputs: st.SearchStrategy[bytes]


READ: dict[str, Callable[[bytes, Path], None]] = {
    "agent-yaml": read_agent,
    "scenario-yaml": read_scenario,
    "sweep-yaml": read_sweep,
    "validate-yaml": read_any_config,
    "transcript-json": read_transcript,
    "events-jsonl": read_event_log,
    "autogen02-json": _read_autogen02(".json"),
    "autogen02-markdown": _read_autogen02(".md"),
}
"""Every reader by name (what a fuzz worker process runs)."""


def readers(seeds: Seeds) -> list[Reader]:
    yaml_docs = [*seeds.agents, *seeds.scenarios, *seeds.sweeps]
    md = [text for suffix, text in seeds.autogen02 if suffix == ".md"]
    js = [text for suffix, text in seeds.autogen02 if suffix == ".json"]
    inputs = {
        "agent-yaml": documents(seeds.agents, yaml.safe_load, _yaml_dump),
        "scenario-yaml": documents(seeds.scenarios, yaml.safe_load, _yaml_dump),
        "sweep-yaml": documents(seeds.sweeps, yaml.safe_load, _yaml_dump),
        "validate-yaml": documents(yaml_docs, yaml.safe_load, _yaml_dump),
        "transcript-json": documents(seeds.transcripts, json.loads, _json_dump),
        "events-jsonl": documents(seeds.events, _events_load, _events_dump),
        "autogen02-json": documents(js, json.loads, _json_dump),
        "autogen02-markdown": documents(md, str, str),
    }
    return [Reader(name, READ[name], inputs[name]) for name in READ]


def make_workspace(root: Path) -> Path:
    """A fresh folder with the shipped agents beside a scenarios/ folder, so fuzzed scenarios resolve agent files."""
    work = Path(tempfile.mkdtemp(dir=root))
    shutil.copytree(ROOT / "agents", work / "agents")
    (work / "scenarios").mkdir()
    return work


def run_one(read: Callable[[bytes, Path], None], payload: bytes, root: Path) -> str:
    """Feed one input to a reader in a fresh workspace: "ok" or "clean" (our error); anything else propagates."""
    work = make_workspace(root)
    try:
        read(payload, work)
        return "ok"
    except InterviewSimError as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message.strip(), f"an error message must be one line: {message!r}"
        return "clean"
    finally:
        shutil.rmtree(work, ignore_errors=True)
