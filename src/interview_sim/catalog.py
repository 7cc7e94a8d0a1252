"""The run catalog: a SQLite index of the run folders, so that listing and filtering thousands of runs is instant.

The folders stay the truth; `index.sqlite` in the runs folder is a cache of what they hold (one row per run,
its evaluations and pairwise verdicts, the content fingerprints and source files of imported chats). It is
updated as runs are written (`run`, `import`, `evaluate` call `note_run`), built on first use, and rebuilt
from the folders by `reindex`. `note_run` only updates an index that exists: one that was never built is
built whole on the next listing, so it never holds only some of the runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interview_sim.errors import BrokenIndexError, RecordError
from interview_sim.text import like_literal, qwk_entry_line

if TYPE_CHECKING:
    from interview_sim.record import Transcript

INDEX_FILE = "index.sqlite"
TRANSCRIPT_FILE = "transcript.json"
"""record.TRANSCRIPT_FILE; not imported from there, so that listing runs does not load the record models."""
INDEX_VERSION = 2
"""2: replayed runs (offline `replay --rerun` copies) have a source of their own, no longer `measured`."""
SOURCES = ("measured", "replayed", "imported")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    run_dir TEXT PRIMARY KEY, run_id TEXT, scenario_id TEXT, kind TEXT, started_at TEXT, source TEXT,
    batch TEXT, topic TEXT, interviewer_model TEXT, candidate_model TEXT, messages INTEGER, analyses INTEGER,
    evaluations INTEGER, score REAL, judge TEXT, calibration TEXT);
CREATE INDEX IF NOT EXISTS runs_order ON runs (started_at, run_id);
CREATE INDEX IF NOT EXISTS runs_id ON runs (run_id);
CREATE TABLE IF NOT EXISTS chats (fingerprint TEXT PRIMARY KEY, run_dir TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (path TEXT PRIMARY KEY, name_key TEXT, run_dir TEXT NOT NULL, record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sources_name ON sources (name_key);
CREATE TABLE IF NOT EXISTS evaluations (
    run_dir TEXT, evaluation_id TEXT, status TEXT, overall REAL, judge TEXT, rubric_hash TEXT, started_at TEXT,
    calibration TEXT, criteria TEXT, PRIMARY KEY (run_dir, evaluation_id));
CREATE TABLE IF NOT EXISTS pairwise (
    run_dir TEXT, pairwise_id TEXT, run_b_dir TEXT, status TEXT, outcome TEXT, judge TEXT, rubric_hash TEXT,
    PRIMARY KEY (run_dir, pairwise_id));
"""
_RUN_COLUMNS = [
    "run_dir",
    "run_id",
    "scenario_id",
    "kind",
    "started_at",
    "source",
    "batch",
    "topic",
    "interviewer_model",
    "candidate_model",
    "messages",
    "analyses",
    "evaluations",
    "score",
    "judge",
    "calibration",
]


def chat_fingerprint(texts: Iterable[str]) -> str:
    """A chat's identity whichever form it was read from: its messages' texts, stripped, in order."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.replace("\r\n", "\n").strip().encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()[:32]


def name_key(path: str | Path) -> str:
    """`interview_3/interview_transcript_....json`: how an analysis names the file it analyses."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


@dataclass(slots=True)
class RunRow:
    """One run as the catalog lists it."""

    run_dir: str
    """The run folder, relative to the runs folder (`<scenario>/<run id>`)."""
    run_id: str
    scenario_id: str
    kind: str
    started_at: str
    source: str
    """measured (run here), replayed (an offline `replay --rerun` copy of a run) or imported (read from an AutoGen 0.2
    file)."""
    batch: str | None
    topic: str | None
    interviewer_model: str | None
    candidate_model: str | None
    messages: int
    analyses: int
    evaluations: int
    score: float | None
    """The latest successful evaluation's overall score."""
    judge: str | None
    calibration: str | None
    """The calibration state the latest evaluation's judge had, when the evaluation records it."""

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in _RUN_COLUMNS}


@dataclass
class RunFilter:
    scenario: str | None = None
    model: str | None = None
    """A substring of the interviewer's or the candidate's model."""
    source: str | None = None
    batch: str | None = None

    @classmethod
    def parse(cls, text: str) -> RunFilter:
        """`scenario=scalability-issues,model=llama3,source=imported,batch=interview_26`; `all` or "" for every run."""
        found = cls()
        if text.strip().lower() in ("", "all"):
            return found
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in ("scenario", "model", "source", "batch") or not value.strip():
                raise RecordError(
                    f"bad run filter {part.strip()!r}: use key=value pairs separated by commas,"
                    " keys scenario, model, source, batch (or `all`)"
                )
            setattr(found, key, value.strip())
        found.where()  # reject a bad --source now
        return found

    def where(self) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if self.scenario:
            clauses.append("scenario_id = ?")
            args.append(self.scenario)
        if self.model:
            clauses.append(r"(candidate_model LIKE ? ESCAPE '\' OR interviewer_model LIKE ? ESCAPE '\')")
            args += [f"%{like_literal(self.model)}%"] * 2
        if self.source:
            if self.source not in SOURCES:
                raise RecordError(f"--source must be one of {', '.join(SOURCES)}, got {self.source!r}")
            clauses.append("source = ?")
            args.append(self.source)
        if self.batch:
            clauses.append("batch = ?")
            args.append(self.batch)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


@dataclass
class EvaluationRow:
    run_dir: str
    evaluation_id: str
    status: str
    overall: float | None
    judge: str
    rubric_hash: str | None
    started_at: str
    calibration: str | None
    criteria: dict[str, float | None] = field(default_factory=dict)


def _model(agent: dict[str, Any] | None) -> str | None:
    if not agent:
        return None
    value = agent.get("model_ref") or agent.get("model") or agent.get("model_name")
    return str(value) if value else None


def judge_label(data: dict[str, Any]) -> str:
    """The judge of an evaluation or pairwise record: its models, and × n for repeated judges."""
    label = ",".join(str(m) for m in data.get("evaluator_models") or [])
    per = data.get("judges_per_model") or 1
    return f"{label}×{per}" if per > 1 else label


def _calibration(data: dict[str, Any]) -> str | None:
    """The judge's calibration state, and its QWK on the labelled set when that calibration measured one."""
    value = data.get("calibration")
    agreement = qwk_entry_line(value.get("judge_qwk")) if isinstance(value, dict) else ""
    if isinstance(value, dict):
        value = value.get("state") or value.get("status") or value.get("verdict")
    if not value:
        return None
    return f"{value}; {agreement}" if agreement else str(value)


def _read_json(path: Path) -> dict[str, Any] | None:
    from interview_sim.files import parse_json, read_text

    try:
        data = parse_json(read_text(path, RecordError), RecordError, str(path))
    except RecordError:
        return None  # a broken side record is left out of the index, never fatal to a listing
    return data if isinstance(data, dict) else None


class Catalog:
    """An open index; use `open_catalog`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self.conn = conn
        self.built = False
        """True when opening it (re)built it from the folders."""

    def rel(self, folder: Path) -> str:
        try:  # the usual case, a folder this process built under the root: no file system calls
            return folder.relative_to(self.root).as_posix()
        except ValueError:
            pass
        try:
            return folder.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(folder.resolve())

    def folder(self, run_dir: str) -> Path:
        return self.root / run_dir

    # ------------------------------------------------------------------------------------------ writing

    def forget(self, run_dir: str) -> None:
        for table in ("runs", "chats", "sources", "evaluations", "pairwise"):
            self.conn.execute(f"DELETE FROM {table} WHERE run_dir = ?", (run_dir,))

    def upsert(self, folder: Path, transcript: Transcript | None = None) -> None:
        """(Re)index one run folder from its files; `transcript` saves re-reading one just written."""
        from interview_sim.record import load_transcript

        run_dir = self.rel(folder)
        self.forget(run_dir)
        if transcript is None:
            try:
                transcript = load_transcript(folder / TRANSCRIPT_FILE)
            except RecordError:
                return  # no readable run there (any more): nothing to list
        evaluations = self._evaluations(folder, run_dir)
        self._pairwise(folder, run_dir)
        info = transcript.imported
        texts = [m.content for m in transcript.messages]
        records = [(TRANSCRIPT_FILE, texts, (info.sources or [info.source_file]) if info else [])]
        for name in transcript.attachments:
            data = _read_json(folder / name)
            if data is not None:
                imported = data.get("imported") or {}
                texts = [str(m.get("content", "")) for m in data.get("messages", []) if isinstance(m, dict)]
                records.append((name, texts, imported.get("sources") or [imported.get("source_file", "")]))
        if info is not None:
            for record, texts, sources in records:
                self.conn.execute("INSERT OR IGNORE INTO chats VALUES (?, ?, ?)", (chat_fingerprint(texts), run_dir, record))
                self.conn.executemany(
                    "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?)",
                    [(s, name_key(s), run_dir, record) for s in sources if s],
                )
        ok = sorted((e for e in evaluations if e.status == "ok"), key=lambda e: (e.started_at, e.evaluation_id))
        latest = ok[-1] if ok else None
        row = RunRow(
            run_dir=run_dir,
            run_id=transcript.run_id,
            scenario_id=transcript.scenario_id,
            kind=transcript.kind,
            started_at=transcript.started_at.isoformat(),
            source="imported" if info else "replayed" if transcript.replay_of else "measured",
            batch=info.batch if info else None,
            topic=info.topic if info else str(transcript.scenario.get("topic") or "") or None,
            interviewer_model=_model(transcript.agents.get("interviewer")),
            candidate_model=_model(transcript.agents.get("candidate")),
            messages=len(transcript.messages),
            analyses=len(records) - 1,
            evaluations=len(evaluations),
            score=latest.overall if latest else None,
            judge=latest.judge if latest else None,
            calibration=latest.calibration if latest else None,
        )
        marks = ", ".join("?" * len(_RUN_COLUMNS))
        self.conn.execute(f"INSERT INTO runs VALUES ({marks})", [getattr(row, c) for c in _RUN_COLUMNS])

    def _evaluations(self, folder: Path, run_dir: str) -> list[EvaluationRow]:
        rows = []
        for file in folder.glob("evaluation-*.json"):
            data = _read_json(file)
            if data is None:
                continue
            criteria = {str(k): (v.get("mean") if isinstance(v, dict) else None) for k, v in (data.get("criteria") or {}).items()}
            rows.append(
                EvaluationRow(
                    run_dir=run_dir,
                    evaluation_id=str(data.get("evaluation_id", file.stem)),
                    status=str(data.get("status", "failed")),
                    overall=data.get("overall"),
                    judge=judge_label(data),
                    rubric_hash=data.get("rubric_hash"),
                    started_at=str(data.get("started_at", "")),
                    calibration=_calibration(data),
                    criteria=criteria,
                )
            )
        self.conn.executemany(
            "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (e.run_dir, e.evaluation_id, e.status, e.overall, e.judge, e.rubric_hash, e.started_at, e.calibration,
                 json.dumps(e.criteria))
                for e in rows
            ],
        )  # fmt: skip
        return rows

    def _pairwise(self, folder: Path, run_dir: str) -> None:
        for file in folder.glob("pairwise-*.json"):
            data = _read_json(file)
            if data is None:
                continue
            other = self.rel(Path(str(data.get("run_b_dir", ""))))
            self.conn.execute(
                "INSERT OR REPLACE INTO pairwise VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_dir,
                    str(data.get("pairwise_id", file.stem)),
                    other,
                    str(data.get("status", "failed")),
                    data.get("overall"),
                    judge_label(data),
                    data.get("rubric_hash"),
                ),
            )

    def reconcile(self) -> int:
        """Index the run folders the index does not list yet: a command killed after it renamed a run into place and
        before it committed the index left one. Returns how many were added."""
        listed = {row[0] for row in self.conn.execute("SELECT run_dir FROM runs")}
        added = 0
        for transcript in sorted(self.root.glob(f"*/*/{TRANSCRIPT_FILE}")):
            folder = transcript.parent
            if folder.parent.name.startswith((".", "_")) or self.rel(folder) in listed:
                continue
            self.upsert(folder)
            added += 1
        return added

    # ------------------------------------------------------------------------------------------ reading

    def runs(self, where: RunFilter | None = None, limit: int | None = None) -> list[RunRow]:
        clause, args = (where or RunFilter()).where()
        sql = f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs{clause} ORDER BY started_at, run_id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [RunRow(*r) for r in self.conn.execute(sql, args)]

    def find(self, run: str) -> RunRow | None:
        """A run by id, id prefix or folder (relative to the runs folder, or a path)."""
        path = Path(run)
        key = self.rel(path.parent if path.name == TRANSCRIPT_FILE else path) if path.exists() else run.rstrip("/")
        cols = ", ".join(_RUN_COLUMNS)
        for sql, arg in (
            (f"SELECT {cols} FROM runs WHERE run_dir = ?", key),
            (f"SELECT {cols} FROM runs WHERE run_id = ?", key),
            (f"SELECT {cols} FROM runs WHERE run_id LIKE ? ESCAPE '\\' ORDER BY run_id", f"{like_literal(key)}%"),
        ):
            found = self.conn.execute(sql, (arg,)).fetchall()
            if len(found) == 1:
                return RunRow(*found[0])
            if len(found) > 1:
                raise RecordError(f"{run!r} matches {len(found)} runs: give more of the run id")
        return None

    def chat(self, fingerprint: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT run_dir, record FROM chats WHERE fingerprint = ?", (fingerprint,)).fetchone()
        return (row[0], row[1]) if row else None

    def source(self, path: str) -> tuple[str, str] | None:
        row = self.conn.execute("SELECT run_dir, record FROM sources WHERE path = ?", (path,)).fetchone()
        return (row[0], row[1]) if row else None

    def named(self, key: str) -> str | None:
        """The run whose interview was read from a file named `batch/file` (as an analysis names it)."""
        row = self.conn.execute(
            "SELECT run_dir FROM sources WHERE name_key = ? AND record = ?", (key, TRANSCRIPT_FILE)
        ).fetchone()
        return str(row[0]) if row else None

    def evaluations(self, run_dir: str) -> list[EvaluationRow]:
        rows = self.conn.execute(
            "SELECT * FROM evaluations WHERE run_dir = ? ORDER BY started_at, evaluation_id", (run_dir,)
        ).fetchall()
        return [EvaluationRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], json.loads(r[8] or "{}")) for r in rows]

    def pairwise(self, run_dirs: Iterable[str]) -> list[tuple[str, str, str, str, str | None]]:
        """(run a, run b, outcome, judge, rubric hash) of the successful pairwise verdicts among these runs."""
        wanted = set(run_dirs)
        rows = self.conn.execute("SELECT run_dir, run_b_dir, outcome, judge, rubric_hash FROM pairwise WHERE status = 'ok'")
        return [(a, b, o, j, h) for a, b, o, j, h in rows if a in wanted and b in wanted and o]

    def sources_of(self, run_dir: str) -> list[tuple[str, str]]:
        rows = self.conn.execute("SELECT record, path FROM sources WHERE run_dir = ? ORDER BY record, path", (run_dir,))
        return [(r, p) for r, p in rows]


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


_DISK_FAILURES = ("disk is full", "disk I/O error", "readonly database")


def _version(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None  # an index file another process has only just created, or an empty one
        raise
    return str(row[0]) if row else None


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


@contextlib.contextmanager
def open_catalog(runs_dir: str | Path, *, build: bool = True, writer: bool = False) -> Iterator[Catalog]:
    """The runs folder's index, built from the folders first if it does not exist yet (or is of another version).
    Building it is one write transaction: two commands that find no index build it once. `writer` holds a write
    transaction for the whole block (an import: what it looks up and writes stays consistent). A runs folder this
    process cannot write to is listed from an index built in memory. Committed when the block ends without error.

    Raises:
        BrokenIndexError: index.sqlite is not a usable database (`runs reindex` replaces it).
        sqlite3.OperationalError: the disk is full or failing (the CLI says so, exit 4).
    """
    root = Path(runs_dir)
    path = root / INDEX_FILE
    if not build and not path.exists():
        raise RecordError(f"{root}: no run index")
    root.mkdir(parents=True, exist_ok=True)
    in_memory = not _writable(root)
    if in_memory and (writer or not build):
        raise RecordError(f"{root}: cannot write to the runs folder (read-only)")
    try:
        conn = sqlite3.connect(":memory:") if in_memory else _connect(path)
    except sqlite3.DatabaseError as exc:
        raise _broken(path, exc) from None
    try:
        catalog = Catalog(root, conn)
        if writer:
            conn.execute("BEGIN IMMEDIATE")
        if _version(conn) != str(INDEX_VERSION):
            if not build:
                raise BrokenIndexError(f"{path}: not a run index of version {INDEX_VERSION}")
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")  # one builder; another waits here, then finds it built
            if _version(conn) != str(INDEX_VERSION):
                _rebuild(catalog)
                catalog.built = True
        yield catalog
        conn.commit()
    except sqlite3.DatabaseError as exc:
        with contextlib.suppress(sqlite3.Error):
            conn.rollback()
        raise _broken(path, exc) from None
    finally:
        conn.close()


def _broken(path: Path, exc: sqlite3.DatabaseError) -> Exception:
    if isinstance(exc, sqlite3.OperationalError) and any(s in str(exc) for s in _DISK_FAILURES):
        return exc  # the machine, not the index: the CLI reports a full or failing disk as such
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return RecordError(f"{path}: the run index is busy (another command is writing to it): run again when it is done")
    return BrokenIndexError(f"{path}: the run index is unusable ({exc}); rebuild it with `interview-sim runs reindex`")


def _rebuild(catalog: Catalog) -> int:
    """Fill the index from the folders, inside the caller's transaction (committed by `open_catalog`)."""
    conn = catalog.conn
    for table in ("meta", "runs", "chats", "sources", "evaluations", "pairwise"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    count = 0
    for transcript in sorted(catalog.root.glob(f"*/*/{TRANSCRIPT_FILE}")):
        if transcript.parent.parent.name.startswith((".", "_")):
            continue  # staging folders, calibration records, comparisons: not runs to list
        catalog.upsert(transcript.parent)
        count += 1
    conn.execute("INSERT INTO meta VALUES ('version', ?)", (str(INDEX_VERSION),))
    return count


def reindex(runs_dir: str | Path) -> int:
    """Rebuild the runs folder's index from its folders; returns how many runs it lists. An index file that is
    not a usable database is replaced."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no such runs folder")
    if not _writable(root):
        raise RecordError(f"{root}: read-only: no index can be written there (`runs` lists it from the folders)")
    try:
        return _reindex(root)
    except BrokenIndexError:
        for name in (INDEX_FILE, f"{INDEX_FILE}-wal", f"{INDEX_FILE}-shm", f"{INDEX_FILE}-journal"):
            (root / name).unlink(missing_ok=True)
        return _reindex(root)


def _reindex(root: Path) -> int:
    with open_catalog(root) as catalog:
        if catalog.built:
            return int(catalog.conn.execute("SELECT count(*) FROM runs").fetchone()[0])
        return _rebuild(catalog)


def note_run(folder: str | Path) -> None:
    """Bring an existing index up to date with one run folder (`<runs>/<scenario>/<run>`) just written. Never fails
    the write it follows: an index that cannot be updated is removed, and rebuilt on next use."""
    folder = Path(folder)
    root = folder.parent.parent
    path = root / INDEX_FILE
    if not path.exists() or folder.parent.name.startswith((".", "_")):
        return  # no index to keep, or not a listed run (calibration copies, staging)
    try:
        with open_catalog(root, build=False) as catalog:
            catalog.upsert(folder)
    except (RecordError, OSError):
        with contextlib.suppress(OSError):
            path.unlink()


def list_runs(runs_dir: str | Path, where: RunFilter | None = None, limit: int | None = None) -> list[RunRow]:
    """The runs of a runs folder, oldest first, filtered; the index is built first if there is none."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no such runs folder")
    with open_catalog(root) as catalog:
        return catalog.runs(where, limit)


@dataclass
class RunDetails:
    """One run as `runs show` prints it: its row, the files it was read from, its evaluations."""

    run: RunRow
    folder: str
    sources: list[tuple[str, str]]
    """(record, source file) pairs: transcript.json or analysis-<id>.json, and each file it was read from."""
    evaluations: list[EvaluationRow]
    warnings: list[str]
    notes: list[str]
    inferred: list[str] = field(default_factory=list)  # roles whose model an import inferred (name + Cost block)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.as_dict(),
            "folder": self.folder,
            "sources": [{"record": r, "path": p} for r, p in self.sources],
            "evaluations": [asdict(e) for e in self.evaluations],
            "warnings": self.warnings,
            "notes": self.notes,
            "inferred_models": self.inferred,
        }


def show_run(runs_dir: str | Path, run: str) -> RunDetails:
    """A run by id, id prefix or folder. Raises RecordError when none (or several) match."""
    root = Path(runs_dir)
    if not root.is_dir():
        raise RecordError(f"{root}: no such runs folder")
    with open_catalog(root) as catalog:
        row = catalog.find(run)
        if row is None:
            raise RecordError(f"no run {run!r} in {root} (try `interview-sim runs`, or `runs reindex` after moving folders)")
        from interview_sim.record import load_transcript

        folder = catalog.folder(row.run_dir)
        transcript = load_transcript(folder)
        return RunDetails(
            run=row,
            folder=str(folder),
            sources=catalog.sources_of(row.run_dir),
            evaluations=catalog.evaluations(row.run_dir),
            warnings=list(transcript.usage.warnings),
            notes=list(transcript.imported.notes) if transcript.imported else [],
            inferred=[role for role, agent in transcript.agents.items() if agent.get("model_inferred")],
        )
