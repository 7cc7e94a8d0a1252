"""Two runs side by side: the page's markup against the records, the CLI, and the page in headless Chromium.

The runs are the two cells of a real comparison (`compare_models`, scripted candidates strong and weak, the same
scenario and seed), graded by `scripted:judge`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cli_process import one_line, run_cli
from interview_sim.grading.evaluate import Evaluation, load_evaluations
from interview_sim.health import HEADLINE_LABELS, compute_health
from interview_sim.record import load_transcript
from interview_sim.report.side_by_side import exchanges, render_side_by_side, word_diff
from test_report import HOSTILE, parse

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["scripted:strong", "scripted:weak"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from interview_sim.compare import compare_models, comparison_dir

    runs = tmp_path_factory.mktemp("sbs") / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERVIEW_SIM_HOME", str(ROOT))
        comparison = asyncio.run(
            compare_models(
                "scalability-issues",
                MODELS,
                repeats=1,
                evaluator_model="scripted:judge",
                fixed_model="scripted:default",
                runs_dir=runs,
                pairwise=False,
                seed=7,
            )
        )
    cells = {c.model: runs / str(c.run_dir) for c in comparison.cells}
    return {
        "runs": runs,
        "comparison": comparison_dir(runs, comparison.comparison_id),
        "a": cells[MODELS[0]],
        "b": cells[MODELS[1]],
    }


def _latest(run: Path) -> Evaluation:
    return [e for e in load_evaluations(run) if e.status == "ok"][-1]


def test_word_diff_marks_only_what_the_other_answer_lacks() -> None:
    a, b = word_diff("I would shard the tenants by id.", "I would buy bigger servers.")
    assert "".join(p for p, _ in a) == "I would shard the tenants by id."
    assert [p for p, d in a if d] == ["shard the tenants by id."]
    assert [p for p, d in b if d] == ["buy bigger servers."]
    same, other = word_diff("Same text.", "Same text.")
    assert not any(d for _, d in same + other)


def test_the_page_aligns_the_turns_and_shows_both_runs_records(pair: dict[str, Path]) -> None:
    ta, tb = load_transcript(pair["a"]), load_transcript(pair["b"])
    assert ta.seed == tb.seed and ta.scenario_id == tb.scenario_id
    doc = parse(render_side_by_side(pair["a"], pair["b"]))
    rows = doc.all("div", data_row=True)
    assert len(rows) == max(len(exchanges(ta)), len(exchanges(tb)))
    # The opening line is the same in both: shown once, across both columns.
    first = rows[0]
    (opening,) = [n for n in first.all("div") if "both" in n.classes()]
    assert ta.messages[0].content in opening.content
    for row, xa, xb in zip(rows, exchanges(ta), exchanges(tb), strict=False):
        if not xa.answer and not xb.answer:  # the interviewer's closing words
            assert not row.all("div", data_answer=True)
            continue
        for side, exchange in (("a", xa), ("b", xb)):
            (answer,) = row.all("div", data_answer=side)
            text = answer.by_class("text")[0].content
            assert text == "\n\n".join(m.content for m in exchange.answer)
            tokens = answer.one("span", data_figure="completion-tokens").content
            assert tokens.startswith(f"{sum(m.usage.completion_tokens for m in exchange.answer if m.usage):,}")
        if [m.content for m in xa.prompt] != [m.content for m in xb.prompt]:
            assert "the interviewers differ" in row.content
            prompts = row.all("div", data_seat="interviewer")
            assert len(prompts) == 2 and all(p.all("mark") for p in prompts), "each interviewer's own words marked"
    # The answers differ word by word: each side marks words the other lacks.
    assert doc.all("mark", **{"class": "diff"})
    # Scores: each criterion, both runs, the better side marked.
    ea, eb = _latest(pair["a"]), _latest(pair["b"])
    table = doc.one("table", data_scores=True)
    for cid, summary in ea.criteria.items():
        cells = table.one("tr", data_criterion=cid).all("td")
        assert cells[1].content == f"{summary.mean:.2f}" and cells[2].content == f"{eb.criteria[cid].mean:.2f}"
        if summary.mean > eb.criteria[cid].mean:
            assert "better" in cells[1].classes() and "better" not in cells[2].classes()
        evidence = doc.one("div", data_evidence=cid)
        for side, evaluation in (("a", ea), ("b", eb)):
            column = evidence.one("div", data_col=side).content
            for grade in (g for j in evaluation.judges for g in j.criteria if g.criterion == cid):
                assert grade.rationale in column
                assert all(q in column for q in grade.evidence)
    # Health: every headline figure for both.
    health = doc.one("table", data_health_table=True)
    ha, hb = compute_health(ta).headline(), compute_health(tb).headline()
    for key, label in HEADLINE_LABELS.items():
        cells = health.one("tr", data_health_figure=label).all("td")
        assert cells[1].content == ("–" if ha[key] is None else f"{ha[key]:.2f}")
        assert cells[2].content == ("–" if hb[key] is None else f"{hb[key]:.2f}")
    assert "judge: scripted:judge" in doc.one("div", data_side="a").content.replace("</b>", "")


def test_cli_from_two_runs_and_from_a_comparison(pair: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = run_cli("report", str(pair["a"]), str(pair["b"]), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"side-by-side page: {out}"
    assert load_transcript(pair["b"]).run_id in out.read_text()
    result = run_cli("report", pair["comparison"].name, *MODELS, "--runs-dir", str(pair["runs"]))
    assert result.returncode == 0, result.stderr
    page = pair["comparison"] / "side-by-side-scripted-strong-vs-scripted-weak-r1.html"
    assert result.stdout.strip() == f"side-by-side page: {page}"
    assert page.read_text() == out.read_text().replace(_generated(out.read_text()), _generated(page.read_text()))


def _generated(text: str) -> str:
    return text.split("Written by interview-sim on ", 1)[1].split(" ·", 1)[0]


def test_planted_markup_stays_text(pair: dict[str, Path], runs_dir: Path) -> None:
    """A candidate whose answers are script and HTML: shown as text on the page, never as markup."""
    from interview_sim.session import run_scenario

    hostile = asyncio.run(
        run_scenario(
            "scalability-issues",
            interviewer_model="scripted:default",
            candidate_model="scripted:report-hostile",
            runs_dir=runs_dir,
        )
    ).run_dir
    html = render_side_by_side(pair["a"], hostile)
    assert "<script>window.__pwned" not in html and "<img src" not in html
    doc = parse(html)
    assert not doc.all("img") and len(doc.all("script")) == 2  # the page's data and its own script only
    answers = [n.by_class("text")[0].content for n in doc.all("div", data_answer="b")]
    assert any(HOSTILE in a for a in answers)


def test_bad_input_is_one_line(pair: dict[str, Path]) -> None:
    cases = [
        ("report", str(pair["a"]), str(pair["a"])),  # the same run twice
        ("report", str(pair["comparison"]), "scripted:strong", "scripted:nobody"),
        ("report", str(pair["comparison"]), *MODELS, "--repeat", "2"),
        ("report", str(pair["a"]), str(pair["comparison"])),
        ("report", str(pair["a"]), str(pair["b"]), "x", "y"),
    ]
    for args in cases:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert one_line(result.stderr).startswith("error: "), args


# ---------------------------------------------------------------------------------------------- in Chromium


@pytest.fixture(scope="module")
def chromium(pair: dict[str, Path]) -> Iterator[Any]:
    from headless_chromium import launched

    with launched() as browser:
        yield browser


@pytest.mark.browser
def test_side_by_side_in_chromium_at_1280(pair: dict[str, Path], chromium: Any, tmp_path: Path) -> None:
    from test_report_browser import ARTIFACTS

    path = tmp_path / "side-by-side.html"
    path.write_text(render_side_by_side(pair["a"], pair["b"]), encoding="utf-8")
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    console: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    page.wait_for_selector("html[data-js=ready]", state="attached", timeout=10_000)
    assert errors == [] and [c for c in console if c.startswith(("error", "warning"))] == []
    assert requests == [path.resolve().as_uri()], "self-contained: nothing but the page is loaded"
    # No horizontal overflow at 1280 px: the page and every answer box fit.
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], widths
    ta = load_transcript(pair["a"])
    rows = page.locator("[data-row]")
    assert rows.count() == len(exchanges(ta)) or rows.count() > 1
    aligned = 0
    for k in range(rows.count()):
        row = rows.nth(k)
        a, b = row.locator("[data-answer=a]"), row.locator("[data-answer=b]")
        if a.count() == 0 or b.count() == 0:
            continue
        box_a, box_b = a.bounding_box(), b.bounding_box()
        assert box_a is not None and box_b is not None
        # Both columns: side by side, level with each other, each about half the width, neither past the page.
        assert abs(box_a["y"] - box_b["y"]) < 1, (k, box_a, box_b)
        assert box_a["x"] + box_a["width"] <= box_b["x"]
        assert box_a["width"] > 400 and box_b["width"] > 400
        assert box_b["x"] + box_b["width"] <= 1280
        for box in (a, b):
            assert box.evaluate("e => e.scrollWidth <= e.clientWidth")
        aligned += 1
    assert aligned >= 2, "at least two exchanges answered in both runs"
    # The interviewer's shared opening line spans both columns, above them.
    opening = page.locator("[data-row='1'] .turn.prompt.both").bounding_box()
    first_a = page.locator("[data-row='1'] [data-answer=a]").bounding_box()
    first_b = page.locator("[data-row='1'] [data-answer=b]").bounding_box()
    assert opening is not None and first_a is not None and first_b is not None
    assert opening["x"] <= first_a["x"] + 1 and opening["x"] + opening["width"] >= first_b["x"] + first_b["width"] - 1
    assert opening["y"] + opening["height"] <= first_a["y"]
    # Both runs' scores are on screen in their columns.
    assert page.locator("[data-score=a]").is_visible() and page.locator("[data-score=b]").is_visible()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "side-by-side.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    page.close()
