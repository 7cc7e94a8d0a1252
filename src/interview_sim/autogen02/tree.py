"""Importing a whole results tree: every file accounted for, one run per session, analyses attached, idempotent.

Each file ends as exactly one of:

- `imported`: a new run (its first form seen);
- `merged`: another form (.json / .txt / .md, or a copy) of a chat already imported: its path joins that
  record's `imported.sources`;
- `attached`: an analysis (review) export, attached to the run of the interview it names, or whose history it
  embeds; that run is created from the embedded history only when no form of the interview is there;
- `skipped`: not a transcript (another extension, a JSON without `chat_history`, text without turns), or
  already imported (its path is among a record's sources);
- `failed`: looks like a transcript but cannot be read (the reason says why).

Sessions are recognised by content, not names: the pipeline gave each form its own uuid and `chat_id` is
usually null. A chat's fingerprint is its messages' texts (`catalog.chat_fingerprint`), the same whichever
form it was read from; the run index in the runs folder maps fingerprints and source paths to records, so
a second import of the same tree creates nothing.

Files are parsed in parallel (`jobs` worker processes; they return plain records), and the one writer, this
process, then writes runs in a fixed order: interviews before analyses, JSON before Markdown before text.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from interview_sim.autogen02.formats import Chat, alternating, embedded_history, parse_json, parse_markdown
from interview_sim.autogen02.importer import _ANALYSIS, _analysis, _Built, _interview, _Origin, _Scenarios, _write
from interview_sim.catalog import Catalog, chat_fingerprint, name_key, open_catalog
from interview_sim.errors import ImportFormatError, InterviewSimError, RecordError
from interview_sim.files import exclusive_lock, file_kind, is_dir, read_text
from interview_sim.record import TRANSCRIPT_FILE, Transcript, load_transcript, save_transcript, write_json_atomic

Status = Literal["imported", "merged", "attached", "skipped", "failed"]
STATUSES: tuple[Status, ...] = ("imported", "merged", "attached", "skipped", "failed")
EXTENSIONS = (".json", ".md", ".txt")
IMPORT_LOCK = ".import.lock"
_FORM_ORDER = {"json": 0, "markdown": 1, "text": 2, "embedded-history": 3}

Progress = Callable[[str, int, int], None]
"""(stage "parse" / "write", done, total)."""


class FileResult(BaseModel):
    """What became of one file."""

    path: str
    status: Status
    form: str
    """json, markdown, text, embedded-history, analysis-json, analysis-markdown, analysis-text, or other."""
    reason: str | None = None
    run: str | None = None
    """The run folder the file went into (or already was in)."""
    record: str | None = None
    """The record file within the run: transcript.json, or analysis-<id>.json."""


class ImportedRecord(BaseModel):
    """One record an import created or extended."""

    run_dir: str
    kind: Literal["interview", "analysis"]
    messages: int
    source_file: str
    path: str
    """The record's file: the run's transcript.json, or the attached analysis-<id>.json."""
    run_id: str
    scenario_id: str
    format: str
    topic: str | None
    warnings: list[str]
    notes: list[str]
    sources: list[str] = Field(default_factory=list)
    created: bool = True
    """False when the import only added a source file to a record that was already there."""


class ImportFailure(BaseModel):
    source_file: str
    error: str


class ImportReport(BaseModel):
    """What `import_transcripts` returns: the records created or extended, and every file's fate."""

    runs: list[ImportedRecord] = Field(default_factory=list)
    files: list[FileResult] = Field(default_factory=list)

    @property
    def created(self) -> list[ImportedRecord]:
        return [r for r in self.runs if r.created]

    @property
    def failures(self) -> list[ImportFailure]:
        return [ImportFailure(source_file=f.path, error=f.reason or "") for f in self.files if f.status == "failed"]

    def counts(self) -> dict[str, int]:
        found = Counter(f.status for f in self.files)
        return {s: found.get(s, 0) for s in STATUSES}

    def forms(self) -> dict[str, dict[str, int]]:
        """Per form, the count of each status."""
        table: dict[str, Counter[str]] = {}
        for f in self.files:
            table.setdefault(f.form, Counter())[f.status] += 1
        return {form: {s: c[s] for s in STATUSES if c[s]} for form, c in sorted(table.items())}


# ---------------------------------------------------------------------------------------------- parsing (workers)


@dataclass
class _Parsed:
    path: str
    form: str
    error: str | None = None
    skip: str | None = None
    built: _Built | None = None
    fingerprint: str | None = None
    """The file's own chat: the interview, or for an analysis the analysis conversation."""
    interview_fingerprint: str | None = None
    named: str | None = None
    """Analyses: `batch/file` of the interview they name."""

    @property
    def analysis(self) -> bool:
        return self.form.startswith("analysis-")


_scenarios: _Scenarios | None = None


def _shipped_scenarios() -> _Scenarios:
    global _scenarios  # one load per worker process
    if _scenarios is None:
        _scenarios = _Scenarios.load()
    return _scenarios


def _classify(path: Path, text: str) -> tuple[str, str | None]:
    """(form, reason to skip): what a file looks like, before parsing it."""
    head = text.lstrip()[:200]
    if head.startswith(("{", "[")):
        return "json", None if '"chat_history"' in text else "not a transcript: JSON without chat_history"
    if head.startswith(("**Assistant**:", "**User**:")):
        return "markdown", None
    if head.startswith(("Assistant:", "User:")):
        return "text", None
    if head.startswith("Chat History:"):
        return "embedded-history", None
    return "other", "not a transcript: no AutoGen 0.2 turns at the start of this file"


def _fingerprint(transcript: Transcript) -> str:
    return chat_fingerprint(m.content for m in transcript.messages)


def _build(path: Path, form: str, text: str) -> _Parsed:
    scenarios = _shipped_scenarios()
    if form == "embedded-history":
        history, summary = embedded_history(text)
        turns = alternating([str(h.get("content") or "") if isinstance(h, dict) else str(h) for h in history])
        interview = _interview(
            Chat("autogen02-embedded", turns, cost=None, summary=summary),
            origin=_Origin.from_name(path.name, path.parent.name),
            source=path,
            scenarios=scenarios,
            empty_usage_reason="an embedded history carries no usage",
        )
        return _Parsed(str(path), form, built=_Built(interview), fingerprint=_fingerprint(interview))
    chat = parse_json(text) if form == "json" else parse_markdown(text, plain=form == "text")
    if not chat.turns:
        raise ImportFormatError("the chat history is empty: nothing to import")
    first = chat.turns[0].content
    named = _ANALYSIS.search(first)
    if named and "Chat History:" in first:
        built = _analysis(chat, named, source=path, scenarios=scenarios)
        interview_file = built.transcript.imported.interview_file if built.transcript.imported else None
        return _Parsed(
            str(path),
            f"analysis-{form}",
            built=built,
            fingerprint=_fingerprint(built.attachments[0][1]),
            interview_fingerprint=_fingerprint(built.transcript),
            named=name_key(interview_file) if interview_file else None,
        )
    interview = _interview(chat, origin=_Origin.from_name(path.name, path.parent.name), source=path, scenarios=scenarios)
    return _Parsed(str(path), form, built=_Built(interview), fingerprint=_fingerprint(interview))


def parse_file(name: str) -> _Parsed:
    """Read and build one file, in memory: a worker's whole job. Never raises for a bad file."""
    path = Path(name)
    if path.name.startswith(".") or path.suffix.lower() not in EXTENSIONS:
        return _Parsed(name, "other", skip=f"not a transcript: {f'a {path.suffix} file' if path.suffix else 'no extension'}")
    try:
        # Strict UTF-8 (a BOM is dropped); the failure is reported with the file's name beside it.
        text = read_text(path, ImportFormatError, prefix="").replace("\r\n", "\n")
    except ImportFormatError as exc:
        return _Parsed(name, "other", error=str(exc))
    if not text.strip():
        return _Parsed(name, "other", skip="empty file")
    form, skip = _classify(path, text)
    if skip:
        return _Parsed(name, "other", skip=skip)
    try:
        return _build(path, form, text)
    except ImportFormatError as exc:
        return _Parsed(name, form, error=str(exc))
    except (RecursionError, MemoryError):
        return _Parsed(name, form, error="too deeply nested or too large to read")
    except Exception as exc:  # one odd file (say, an impossible date in its name) must not sink the tree
        return _Parsed(name, form, error=f"cannot be read ({type(exc).__name__}: {exc})")


def _expand(paths: list[Path]) -> tuple[list[str], list[FileResult]]:
    """The regular files to read, and a result for every other thing named or found (so every file gets a status)."""
    files: list[str] = []
    results: list[FileResult] = []
    for p in paths:
        if is_dir(p):
            found, problems = _walk(p)
            if not found and not problems:
                results.append(FileResult(path=str(p), status="failed", form="other", reason="an empty folder: no files"))
            files.extend(found)
            results.extend(problems)
        elif (problem := _not_readable(p)) is not None:
            results.append(problem)
        else:
            files.append(str(p.resolve()))
    return list(dict.fromkeys(files)), results


def _shown(path: str | Path) -> str:
    """A path as text that can be written anywhere: a name that is not valid UTF-8 shows its bytes as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _not_readable(path: Path, how: str = "") -> FileResult | None:
    """Why `path` (a file named, or met in a walk) is not read, as its result; None for a regular file to read."""
    shown = _shown(path)
    if shown != str(path):
        return FileResult(path=shown, status="failed", form="other", reason="the file name is not valid UTF-8: rename it")
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError) as exc:
        reason = "no such file or folder" if isinstance(exc, FileNotFoundError) else f"cannot read: {exc}"
        return FileResult(path=shown, status="failed", form="other", reason=f"{how}{reason}")
    if not stat.S_ISREG(mode):
        reason = f"{how}{file_kind(mode)}: only regular files are read"
        return FileResult(path=shown, status="skipped", form="other", reason=reason)
    return None


def _walk(top: Path) -> tuple[list[str], list[FileResult]]:
    """Every regular file under `top`, with a loop instead of recursion (a tree may be thousands of folders deep).

    A folder that cannot be listed fails, with its path; FIFOs, sockets and devices are skipped; symlinks are not
    followed out of the tree, nor into folders (a link to a folder of the tree would import it twice).
    """
    root = top.resolve()
    files: list[str] = []
    results: list[FileResult] = []
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            reason = f"cannot read this folder ({exc.strerror or exc}): the files in it were not imported"
            results.append(FileResult(path=_shown(folder), status="failed", form="other", reason=reason))
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    target = path.resolve(strict=True)
                    if not target.is_relative_to(root):
                        reason = f"a symlink to {_shown(target)}, outside the folder imported: not followed"
                        results.append(FileResult(path=_shown(path), status="skipped", form="other", reason=reason))
                    elif target.is_dir():
                        reason = "a symlink to a folder: not followed"
                        results.append(FileResult(path=_shown(path), status="skipped", form="other", reason=reason))
                    elif (problem := _not_readable(target, "a symlink to ")) is not None:
                        results.append(problem.model_copy(update={"path": _shown(path)}))
                    else:
                        files.append(str(target))
                elif entry.is_dir(follow_symlinks=False):
                    folders.append(path)
                elif (problem := _not_readable(path)) is not None:
                    results.append(problem)
                else:
                    files.append(str(path))
            except (OSError, RuntimeError) as exc:  # a dangling symlink or a loop of them
                reason = f"a symlink that leads nowhere ({getattr(exc, 'strerror', None) or exc})"
                results.append(FileResult(path=_shown(path), status="skipped", form="other", reason=reason))
    return sorted(files), results


def _parse_all(files: list[str], jobs: int, progress: Progress | None) -> Iterator[_Parsed]:
    _shipped_scenarios()  # loaded once here: forked workers inherit them instead of each reading the YAML
    if jobs <= 1 or len(files) < 2 * jobs:
        for n, name in enumerate(files, 1):
            yield parse_file(name)
            if progress:
                progress("parse", n, len(files))
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for n, parsed in enumerate(pool.map(parse_file, files, chunksize=max(1, min(32, len(files) // (jobs * 8)))), 1):
            yield parsed
            if progress:
                progress("parse", n, len(files))


# ---------------------------------------------------------------------------------------------- writing (one writer)


class _Writer:
    def __init__(self, catalog: Catalog, runs_dir: Path, report: ImportReport, seat_models: dict[str, str] | None = None) -> None:
        self.catalog, self.runs_dir, self.report = catalog, runs_dir, report
        self.seat_models = seat_models or {}

    def _given(self, transcript: Transcript) -> Transcript:
        """The seats' models the person importing named (`import --candidate-model ...`): recorded as given."""
        for role, ref in self.seat_models.items():
            if role in transcript.agents:
                transcript.agents[role].update(model_ref=ref, model_given=True, model_inferred=False)
        return transcript

    def _done(self, parsed: _Parsed, status: Status, folder: Path | None, record: str | None, reason: str | None) -> None:
        run = str(folder) if folder else None
        self.report.files.append(
            FileResult(path=parsed.path, status=status, form=parsed.form, reason=reason, run=run, record=record)
        )

    def _entry(self, transcript: Transcript, folder: Path, record: str, created: bool) -> None:
        info = transcript.imported
        assert info is not None
        self.report.runs.append(
            ImportedRecord(
                run_dir=str(folder),
                kind=transcript.kind,
                messages=len(transcript.messages),
                source_file=info.source_file,
                path=str(folder / record),
                run_id=transcript.run_id,
                scenario_id=transcript.scenario_id,
                format=info.format,
                topic=info.topic,
                warnings=list(transcript.usage.warnings),
                notes=list(info.notes),
                sources=list(info.sources),
                created=created,
            )
        )

    @staticmethod
    def unwritten(parsed: _Parsed) -> FileResult:
        """A file that gives nothing to write: skipped or failed."""
        status: Status = "failed" if parsed.error else "skipped"
        return FileResult(path=parsed.path, status=status, form=parsed.form, reason=parsed.error or parsed.skip)

    def handle(self, group: list[_Parsed]) -> None:
        """One chat: all the files (forms, copies) with the same fingerprint, written in one go."""
        fresh = []
        for parsed in group:
            known = self.catalog.source(parsed.path)
            if known:
                self._done(parsed, "skipped", self.catalog.folder(known[0]), known[1], f"already imported (into {known[0]})")
            else:
                fresh.append(parsed)
        if not fresh:
            return
        lead = fresh[0]
        assert lead.built is not None and lead.fingerprint is not None
        same = self.catalog.chat(lead.fingerprint)
        if same:
            self._merge(fresh, same)
        elif lead.analysis:
            self._attach(lead, fresh[1:])
        else:
            self._create(lead, fresh[1:])

    def _merged(self, others: list[_Parsed], folder: Path, record: str) -> None:
        for parsed in others:
            self._done(parsed, "merged", folder, record, f"another form of {self.catalog.rel(folder)}/{record}")

    def _create(self, lead: _Parsed, others: list[_Parsed]) -> None:
        assert lead.built is not None
        transcript = self._given(lead.built.transcript)
        assert transcript.imported is not None
        transcript.imported.sources = [lead.path, *(p.path for p in others)]
        transcript.imported.fingerprint = lead.fingerprint
        folder = _write(lead.built, self.runs_dir, durable=False)
        self.catalog.upsert(folder, transcript)
        self._entry(transcript, folder, TRANSCRIPT_FILE, True)
        self._done(lead, "imported", folder, TRANSCRIPT_FILE, None)
        self._merged(others, folder, TRANSCRIPT_FILE)

    def _merge(self, items: list[_Parsed], same: tuple[str, str]) -> None:
        run_dir, record = same
        folder = self.catalog.folder(run_dir)
        if record == TRANSCRIPT_FILE:
            transcript = load_transcript(folder)
            assert transcript.imported is not None
            transcript.imported.sources.extend(p.path for p in items)
            save_transcript(folder, transcript, durable=False)
            self.catalog.upsert(folder, transcript)
            self._entry(transcript, folder, record, False)
        else:
            analysis = load_transcript(folder / record)
            assert analysis.imported is not None
            analysis.imported.sources.extend(p.path for p in items)
            write_json_atomic(folder / record, analysis, durable=False)
            self.catalog.upsert(folder)
            self._entry(analysis, folder, record, False)
        self._merged(items, folder, record)

    def _interview_run(self, parsed: _Parsed) -> tuple[Path, Transcript, str]:
        """The run an analysis belongs to: the interview it names, else the one whose history it embeds, else new."""
        run_dir = self.catalog.named(parsed.named) if parsed.named else None
        how = f"the interview it names ({parsed.named})"
        if run_dir is None and parsed.interview_fingerprint:
            same = self.catalog.chat(parsed.interview_fingerprint)
            run_dir = same[0] if same and same[1] == TRANSCRIPT_FILE else None
            how = "the interview whose history it embeds"
        if run_dir is not None:
            folder = self.catalog.folder(run_dir)
            return folder, load_transcript(folder), f"analysis of {run_dir}: {how}"
        assert parsed.built is not None
        interview = self._given(parsed.built.transcript.model_copy(update={"attachments": []}))
        assert interview.imported is not None
        interview.imported.sources = []
        interview.imported.fingerprint = parsed.interview_fingerprint
        folder = _write(_Built(interview), self.runs_dir, durable=False)
        self.catalog.upsert(folder, interview)
        self._entry(interview, folder, TRANSCRIPT_FILE, True)
        return (
            folder,
            interview,
            f"analysis of {self.catalog.rel(folder)}: created from its embedded history (no form of it found)",
        )

    def _attach(self, parsed: _Parsed, others: list[_Parsed]) -> None:
        assert parsed.built is not None
        folder, interview, reason = self._interview_run(parsed)
        name, analysis = parsed.built.attachments[0]
        assert analysis.imported is not None
        analysis.imported.analysis_of = interview.run_id
        analysis.imported.sources = [parsed.path, *(p.path for p in others)]
        analysis.imported.fingerprint = parsed.fingerprint
        analysis.refresh_usage()
        write_json_atomic(folder / name, analysis, durable=False)
        interview.attachments.append(name)
        save_transcript(folder, interview, durable=False)
        self.catalog.upsert(folder, interview)
        self._entry(analysis, folder, name, True)
        self._done(parsed, "attached", folder, name, reason)
        self._merged(others, folder, name)


def _order(parsed: _Parsed) -> tuple[int, int, str]:
    return (int(parsed.analysis), _FORM_ORDER.get(parsed.form.removeprefix("analysis-"), 9), parsed.path)


def import_transcripts(
    paths: list[str | Path],
    *,
    runs_dir: str | Path = "runs",
    jobs: int = 1,
    progress: Progress | None = None,
    seat_models: dict[str, str] | None = None,
) -> ImportReport:
    """Import AutoGen 0.2 records, single files or whole results trees, as runs; every file is accounted for.

    Args:
        paths: files in any form (ChatResult JSON, Markdown or text export, analysis export, embedded
            history), or folders, searched recursively (every file in them is reported).
        runs_dir: where run folders are created (`<runs_dir>/<scenario id>/<run id>/`); its run index is
            used to recognise chats imported before.
        jobs: parser processes; 1 (the default) parses in this process. Parsing is about half the work (the
            writing is one process's), and handing parsed runs back costs time too: on a busy 2-core machine
            one process was fastest (benchmarks/bench_import.py).
        progress: called as files are parsed and written.
        seat_models: the model each seat used ({"candidate": "ollama:llama3:8b-instruct-fp16"}), when the
            person importing knows it: recorded on every interview run created, as given (AutoGen 0.2 files
            do not say which agent used which model).

    Returns:
        The records created or extended, and one entry per file with its status (see the module docstring).
    """
    report = ImportReport()
    files, missing = _expand([Path(p) for p in paths])
    report.files.extend(missing)
    if not files:
        return report
    root = Path(runs_dir)
    parsed = sorted(_parse_all(files, jobs, progress), key=_order)
    report.files.extend(_Writer.unwritten(p) for p in parsed if p.built is None)
    groups: dict[tuple[bool, str], list[_Parsed]] = {}
    for p in parsed:
        if p.built is not None and p.fingerprint is not None:
            groups.setdefault((p.analysis, p.fingerprint), []).append(p)
    if not groups:  # nothing to write: leave the runs folder as it is, not even an index
        return report
    root.mkdir(parents=True, exist_ok=True)
    # One import at a time per runs folder: a second waits, then finds every chat the first imported.
    with exclusive_lock(root / IMPORT_LOCK, RecordError), open_catalog(root, writer=True) as catalog:
        if not catalog.built:
            catalog.reconcile()  # runs an interrupted import renamed into place after its last commit
        writer = _Writer(catalog, root, report, seat_models)
        try:
            for n, group in enumerate(groups.values(), 1):
                before = len(report.files)
                try:
                    writer.handle(group)
                except (InterviewSimError, OSError) as exc:  # each file on its own: the others still count
                    done = {f.path for f in report.files[before:]}
                    failed = [p for p in group if p.path not in done]
                    report.files.extend(FileResult(path=p.path, status="failed", form=p.form, reason=str(exc)) for p in failed)
                if progress:
                    progress("write", n, len(groups))
        finally:
            catalog.conn.commit()  # even when interrupted: the index lists exactly the runs written so far
        # One sync for the whole import instead of one per file: files are renamed into place whole either way,
        # so a reader never sees half a file; only a power cut during the import could lose what it wrote.
        os.sync()
    return report
