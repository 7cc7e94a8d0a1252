"""`records.jsonl`: cells and pairs appended as they finish; the summary written at start, end and interrupt."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interview_sim.compare import COMPARISON_FILE, compare_models, load_comparison
from interview_sim.compare import execution as execution_module
from interview_sim.compare.journal import JOURNAL_FILE, Journal, read_journal
from interview_sim.errors import RecordError
from interview_sim.models import ChatModel, CompletionRequest, ModelOptions, create_model

FIXED = {"fixed_model": "scripted:default", "evaluator_model": "scripted:judge"}
GOLDEN = Path(__file__).parent / "golden" / "records-v1.jsonl"


def test_records_are_read_back_in_order_and_a_line_cut_short_is_ignored(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.append("cell", {"key": "a", "n": 1})
    journal.append("pair", {"key": "p"})
    journal.append("cell", {"key": "a", "n": 2})
    journal.close()
    with (tmp_path / JOURNAL_FILE).open("a") as fh:
        fh.write('{"schema_version": 1, "type": "cell", "rec')  # a crash in the middle of a write
    assert read_journal(tmp_path) == [("cell", {"key": "a", "n": 1}), ("pair", {"key": "p"}), ("cell", {"key": "a", "n": 2})]


def test_the_golden_v1_journal_still_reads_into_a_comparison(runs_dir: Path) -> None:
    result = asyncio.run(compare_models("scalability-issues", ["scripted:strong"], runs_dir=runs_dir, **FIXED))
    folder = runs_dir / "comparisons" / result.comparison_id
    shutil.copy(GOLDEN, folder / JOURNAL_FILE)
    assert [kind for kind, _ in read_journal(folder)] == ["cell", "pair"]
    loaded = load_comparison(folder)
    assert loaded.cell("scalability-issues|scripted:strong|0") is not None
    assert loaded.pair("scalability-issues|0|scripted:strong|scripted:weak") is not None


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=400))
def test_any_journal_bytes_read_as_records_or_nothing(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / JOURNAL_FILE).write_bytes(data)
        for kind, record in read_journal(Path(folder)):
            assert kind in ("cell", "pair") and isinstance(record, dict)


@pytest.mark.anyio
async def test_a_compare_writes_the_summary_at_start_and_end_only_and_empties_the_journal(
    runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saves: list[int] = []
    original = execution_module.save_comparison

    def counting(folder: Path, comparison: object, **kwargs: bool) -> None:
        saves.append(len(read_journal(folder)))
        original(folder, comparison, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(execution_module, "save_comparison", counting)
    result = await compare_models(
        "scalability-issues", ["scripted:strong", "scripted:weak"], repeats=3, runs_dir=runs_dir, **FIXED
    )
    # Start, end (also the interrupt path), and the final one with the leaderboard; not one per cell or pair.
    assert len(saves) == 3
    assert saves[1] == 6 + 3  # at the end, the journal held every cell and pair of this batch
    folder = runs_dir / "comparisons" / result.comparison_id
    assert read_journal(folder) == []
    on_disk = json.loads((folder / COMPARISON_FILE).read_text())
    assert on_disk["status"] == "complete" and all(c["status"] == "ok" for c in on_disk["cells"])
    assert len(on_disk["pairs"]) == 3


def _slow(ref: str, options: ModelOptions) -> ChatModel:
    model = create_model(ref, options)
    inner = model.complete

    async def complete(request: CompletionRequest):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.02)
        return await inner(request)

    model.complete = complete  # type: ignore[method-assign]
    return model


@pytest.mark.anyio
async def test_an_interrupted_compare_writes_the_summary_of_what_finished(runs_dir: Path) -> None:
    task = asyncio.create_task(
        compare_models(
            "scalability-issues",
            ["scripted:strong", "scripted:weak"],
            repeats=6,
            runs_dir=runs_dir,
            model_factory=_slow,
            **FIXED,
        )
    )
    folder: Path | None = None
    for _ in range(3000):
        await asyncio.sleep(0.01)
        found = list((runs_dir / "comparisons").glob(f"*/{JOURNAL_FILE}"))
        if found and len(read_journal(found[0].parent)) >= 2:
            folder = found[0].parent
            break
    assert folder is not None, "the batch never got going"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    summary = json.loads((folder / COMPARISON_FILE).read_text())
    assert summary["status"] == "running"
    finished = [c for c in summary["cells"] if c["status"] == "ok"]
    assert 2 <= len(finished) < 12
    assert read_journal(folder) == []  # all of it is in the summary now
    # Resuming runs only the rest.
    resumed = await compare_models(
        "scalability-issues", ["scripted:strong", "scripted:weak"], repeats=6, runs_dir=runs_dir, **FIXED
    )
    assert resumed.last_invocation is not None and resumed.last_invocation.cells_skipped == len(finished)


def test_a_journal_record_that_is_not_a_cell_is_a_record_error(runs_dir: Path) -> None:
    result = asyncio.run(compare_models("scalability-issues", ["scripted:strong"], runs_dir=runs_dir, **FIXED))
    folder = runs_dir / "comparisons" / result.comparison_id
    (folder / JOURNAL_FILE).write_text('{"schema_version": 1, "type": "cell", "record": {"key": 3}}\n')
    with pytest.raises(RecordError, match="records.jsonl: record 1"):
        load_comparison(folder)
