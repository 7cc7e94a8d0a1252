"""A whole AutoGen 0.2 results tree, built the way the pipeline built it, as a dataset: import, browse, grade, rank.

The tree (tests/pipeline_tree.py) holds three forms per session written from one ChatResult exactly as
FORMATS.md says, reviews naming and embedding their interviews, a `**Summary**:` line inside a turn, `.md`
files with the two-uuid name, and files that are not transcripts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interview_sim.autogen02 import import_transcripts
from interview_sim.autogen02.formats import parse_markdown
from interview_sim.autogen02.tree import parse_file
from interview_sim.catalog import INDEX_FILE, RunFilter, list_runs, reindex
from interview_sim.errors import ImportFormatError
from interview_sim.grading import evaluate_run, evaluate_runs, select_runs
from interview_sim.record import TRANSCRIPT_FILE, load_transcript
from interview_sim.session import run_scenario
from pipeline_tree import CANDIDATES, Tree, write_tree

SESSIONS, REVIEWED, ORPHANS = 4, 3, 1


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return write_tree(tmp_path_factory.mktemp("results"), SESSIONS, reviews=REVIEWED, orphans=ORPHANS)


def _run_dirs(runs_dir: Path) -> list[Path]:
    return sorted(p.parent for p in runs_dir.glob(f"*/*/{TRANSCRIPT_FILE}"))


def test_every_file_accounted_for_one_run_per_session_reviews_attached_and_a_second_import_creates_nothing(
    tree: Tree, tmp_path: Path
) -> None:
    runs_dir = tmp_path / "runs"
    report = import_transcripts([tree.root], runs_dir=runs_dir, jobs=2)
    by_path = {Path(f.path): f for f in report.files}
    assert set(by_path) == {p.resolve() for p in tree.files()}  # every file, once
    reviews = REVIEWED + ORPHANS
    assert report.counts() == {
        "imported": SESSIONS,
        "merged": 2 * SESSIONS + 2 * reviews,
        "attached": reviews,
        "skipped": len(tree.others),
        "failed": 0,
    }
    assert report.forms()["json"] == {"imported": SESSIONS}
    assert report.forms()["text"] == report.forms()["markdown"] == {"merged": SESSIONS}
    assert all(by_path[p.resolve()].reason for p in tree.others)
    assert len(_run_dirs(runs_dir)) == SESSIONS + ORPHANS  # one run per session; an orphan review brings its interview

    for i, files in tree.sessions.items():
        results = [by_path[p.resolve()] for p in files]
        assert [r.status for r in results] == ["imported", "merged", "merged"]  # json, txt, md: one session
        assert len({r.run for r in results}) == 1
        transcript = load_transcript(results[0].run or "")
        assert transcript.imported is not None
        assert sorted(transcript.imported.sources) == sorted(str(p.resolve()) for p in files)
        assert transcript.started_at.date().isoformat() == files[0].name.split("_")[2]  # the date in the name
        assert transcript.agents["candidate"]["model_name"] == list(CANDIDATES)[i % 2]
        review = tree.reviews.get(i)
        if review:
            attached = [by_path[p.resolve()] for p in review]
            assert [r.status for r in attached] == ["attached", "merged", "merged"]
            assert {r.run for r in attached} == {results[0].run}  # attached to the interview it names
            assert "the interview it names" in (attached[0].reason or "")
            record = attached[0].record or ""
            assert transcript.attachments == [record]
            analysis = load_transcript(Path(results[0].run or "") / record)
            assert analysis.kind == "analysis" and analysis.imported is not None
            assert analysis.imported.analysis_of == transcript.run_id and len(analysis.imported.sources) == 3
        else:
            assert transcript.attachments == []

    # The model's turn holding a `**Summary**:` line is kept whole, in every form.
    (json_file, txt_file, md_file) = tree.sessions[2]
    answer = json.loads(json_file.read_text())["chat_history"][1]["content"]
    assert "\n\n**Summary**: queue" in answer
    assert load_transcript(by_path[md_file.resolve()].run or "").messages[1].content == answer
    assert by_path[md_file.resolve()].status == by_path[txt_file.resolve()].status == "merged"  # same fingerprint

    (orphan,) = tree.orphan_reviews
    created = by_path[tree.reviews[orphan][0].resolve()]
    assert created.status == "attached" and "created from its embedded history" in (created.reason or "")

    again = import_transcripts([tree.root], runs_dir=runs_dir, jobs=1)
    assert again.created == [] and again.runs == []
    assert again.counts()["skipped"] == len(tree.files()) and again.counts()["failed"] == 0
    assert len(_run_dirs(runs_dir)) == SESSIONS + ORPHANS


def test_the_text_and_markdown_forms_alone_give_the_json_form_exactly(tree: Tree, tmp_path: Path) -> None:
    json_file, txt_file, md_file = tree.sessions[2]
    runs = {}
    for f in (json_file, txt_file, md_file):
        report = import_transcripts([f], runs_dir=tmp_path / f.suffix.strip("."), jobs=1)
        assert [x.status for x in report.files] == ["imported"]
        runs[f.suffix] = load_transcript(report.created[0].path)
    messages = {k: [(m.role, m.content) for m in t.messages] for k, t in runs.items()}
    assert messages[".txt"] == messages[".md"] == messages[".json"]
    usage = {k: t.usage.including_cached.by_model for k, t in runs.items()}
    assert usage[".txt"] == usage[".md"] == usage[".json"]
    # The .md's two-uuid name still gives the session's date and its (txt/md) uuid.
    md_info = runs[".md"].imported
    assert md_info is not None and md_info.format == "autogen02-markdown"
    assert md_info.original_id == txt_file.stem.rsplit("_", 1)[1] and runs[".md"].started_at == runs[".json"].started_at
    assert runs[".txt"].imported is not None and runs[".txt"].imported.format == "autogen02-text"


@pytest.mark.anyio
async def test_the_index_follows_run_and_evaluate_and_is_rebuilt_from_the_folders(tmp_path: Path) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    assert list_runs(runs_dir) == []  # builds the (empty) index
    result = await run_scenario(
        "scalability-issues",
        interviewer_model="scripted:default",
        candidate_model="scripted:default",
        max_turns=3,
        runs_dir=runs_dir,
    )
    (row,) = list_runs(runs_dir)
    assert (row.run_id, row.source, row.candidate_model, row.score) == (
        result.transcript.run_id,
        "measured",
        "scripted:default",
        None,
    )
    evaluation = await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"])
    (row,) = list_runs(runs_dir, RunFilter(source="measured", model="scripted"))
    assert (row.score, row.judge, row.evaluations) == (evaluation.overall, "scripted:judge", 1)
    (runs_dir / INDEX_FILE).unlink()
    assert reindex(runs_dir) == 1
    assert list_runs(runs_dir)[0] == row
    assert list_runs(runs_dir, RunFilter(source="imported")) == []


def _cli(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "interview_sim", *args], capture_output=True, text=True, timeout=300)
    if ok:
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    return done


def _json(*args: str) -> Any:
    return json.loads(_cli(*args, "--json").stdout)


def test_runs_bulk_evaluate_and_compare_from_runs_on_an_imported_tree(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results", SESSIONS, reviews=2)
    runs = str(tmp_path / "runs")
    imported = _json("import", str(tree.root), "--runs-dir", runs)
    assert imported["counts"]["imported"] == SESSIONS and imported["counts"]["failed"] == 0
    assert {f["status"] for f in imported["files"]} == {"imported", "merged", "attached", "skipped"}
    assert all({"path", "status", "reason", "run"} <= set(f) for f in imported["files"])

    listed = _json("runs", "--runs-dir", runs)
    assert len(listed) == SESSIONS and {r["source"] for r in listed} == {"imported"}
    assert {r["candidate_model"] for r in listed} == set(CANDIDATES)
    assert len(_json("runs", "--runs-dir", runs, "--model", "gemma", "--source", "imported")) == SESSIONS // 2
    assert [r["batch"] for r in _json("runs", "--runs-dir", runs, "--batch", "interview_1")] == ["interview_1"]
    table = _cli("runs", "--runs-dir", runs).stdout
    assert f"{SESSIONS} run(s)" in table and "llama3:8b-instruct-fp16" in table

    shown = _json("runs", "--runs-dir", runs, "show", listed[0]["run_id"][:-2])
    assert shown["run"]["run_id"] == listed[0]["run_id"] and len(shown["sources"]) == 6  # 3 forms + a 3-form review

    graded = _json(
        "evaluate", "--where", "source=imported", "--runs-dir", runs, "--evaluator-model", "scripted:judge", "--concurrency", "2"
    )
    assert [g["status"] for g in graded] == ["graded"] * SESSIONS and all(g["overall"] is not None for g in graded)
    again = _json("evaluate", "--where", "all", "--runs-dir", runs, "--evaluator-model", "scripted:judge")
    assert [g["status"] for g in again] == ["skipped"] * SESSIONS  # resume: same judge, same rubric
    rows = _json("runs", "--runs-dir", runs)
    assert all(r["score"] is not None and r["judge"] == "scripted:judge" for r in rows)

    by_model = {m: [r for r in rows if r["candidate_model"] == m] for m in CANDIDATES}
    # A pairwise verdict needs one rubric, and each scenario's rubric has its own anchors: a same-topic pair.
    llama, gemma = next(
        (a, b)
        for a in by_model["llama3:8b-instruct-fp16"]
        for b in by_model["gemma:2b-instruct-v1.1-fp16"]
        if a["scenario_id"] == b["scenario_id"]
    )
    _cli(
        "evaluate",
        "--pairwise",
        f"{runs}/{llama['run_dir']}",
        f"{runs}/{gemma['run_dir']}",
        "--evaluator-model",
        "scripted:judge",
    )

    board = _json("compare", "--from-runs", "source=imported", "--runs-dir", runs)
    assert board["judge"] == "scripted:judge" and board["runs"] == SESSIONS
    assert sorted(r["model"] for r in board["rows"]) == sorted(CANDIDATES)
    for row in board["rows"]:
        assert row["n"] == SESSIONS // 2 and row["mean"] is not None and row["ci_low"] is None
        assert row["ci_note"] == "too few runs for an interval (2 graded; 5 needed)"
        assert set(row["criteria"]) == set(board["criteria"]) and board["criteria"]
        assert row["wins"] + row["losses"] + row["ties"] == 1 and row["win_rate"] is not None
    # Two graded runs a model cannot separate two models (Mann-Whitney U, unpaired: the runs share no seeds).
    assert [r["rank"] for r in board["rows"]] == [1, 1] and any(n.startswith("shared ranks (rank 1)") for n in board["notes"])
    assert "95% CI" in _cli("compare", "--from-runs", "source=imported", "--runs-dir", runs).stdout

    bad = _cli("compare", "--from-runs", "colour=blue", "--runs-dir", runs, ok=False)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    assert _cli("runs", "reindex", "--runs-dir", runs).stdout.startswith(f"indexed {SESSIONS} run(s)")
    missing = _cli("runs", "show", "no-such-run", "--runs-dir", runs, ok=False)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: no run")


def test_pipeline_tree_writes_forms_from_one_chat_result(tree: Tree) -> None:
    """The generator itself: the .txt and .md carry the JSON's turns and trailer exactly as the pipeline wrote them."""
    json_file, txt_file, md_file = tree.sessions[1]
    result = json.loads(json_file.read_text())
    first = result["chat_history"][0]
    assert txt_file.read_text().startswith(f"Assistant: {first['content']}\n\n")
    assert md_file.read_text().startswith(f"**Assistant**: {first['content']}\n\n")
    assert f"\n\nCost: {result['cost']}\n\n" in txt_file.read_text()
    assert md_file.stem.startswith(txt_file.stem + "_")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["Assistant", "User", "Chat_id", "Cost", "Human_input", "Summary", "**User**"]), st.text()),
        max_size=8,
    ),
    st.booleans(),
)
def test_the_text_reader_gives_a_chat_or_its_own_error(sections: list[tuple[str, str]], plain: bool) -> None:
    text = "".join(f"{key}: {body}\n\n" if plain else f"**{key}**: {body}\n\n" for key, body in sections)
    try:
        chat = parse_markdown(text, plain=plain)
    except ImportFormatError:
        return
    assert chat.turns and chat.format == ("autogen02-text" if plain else "autogen02-markdown")


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([".json", ".txt", ".md", ".log"]))
def test_any_file_in_a_tree_ends_skipped_or_failed_or_parsed_never_raising(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"interview_transcript_x{suffix}"
        path.write_bytes(data)
        parsed = parse_file(str(path))
    assert (parsed.skip is not None) + (parsed.error is not None) + (parsed.built is not None) == 1


@pytest.mark.anyio
async def test_bulk_grading_reports_each_run_and_resumes(tmp_path: Path) -> None:
    tree = write_tree(tmp_path / "results", 2, reviews=0, others=False)
    lone = tree.root / "interview_9" / "interview_transcript_2024-04-09_scalability_issues_6_x.json"
    lone.parent.mkdir()
    opening = json.loads(tree.sessions[1][0].read_text())
    opening["chat_history"] = opening["chat_history"][:1]  # the opening line only: no candidate turn to grade
    lone.write_text(json.dumps(opening))
    runs_dir = tmp_path / "runs"
    import_transcripts([tree.root], runs_dir=runs_dir)
    runs = select_runs(runs_dir, RunFilter.parse("source=imported"))
    seen: list[tuple[int, int]] = []
    first = await evaluate_runs(
        runs, evaluator_models=["scripted:judge"], concurrency=2, progress=lambda d, t, r: seen.append((d, t))
    )
    assert sorted(r.status for r in first) == ["failed", "graded", "graded"]
    assert "no candidate turns" in next(r.reason or "" for r in first if r.status == "failed")
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    again = await evaluate_runs(runs, evaluator_models=["scripted:judge"])
    assert sorted(r.status for r in again) == ["failed", "skipped", "skipped"]  # the failed one is tried again
    graded = [Path(r.run_dir) for r in first if r.status == "graded"][:1]
    other_judge = await evaluate_runs(graded, evaluator_models=["scripted:judge"], judges=2)
    assert [r.status for r in other_judge] == ["graded"]  # another judge setting (2 per model): not skipped
