"""The HTML reports in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright).

Each page must load with no console error and no request but its own file, render the conversation, usage
tables and bars, and keep planted script inert. A full-page screenshot of each page kind is written to
$INTERVIEW_SIM_TEST_ARTIFACTS (default: test-artifacts/ at the repository root, git-ignored), under report/.

Locally these tests skip when no browser is installed; under CI (CI=true) a missing browser is a failure,
because .ci/run installs it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from headless_chromium import CHROMIUM, FLAGS, require
from interview_sim.compare import load_comparison
from interview_sim.grading.evaluate import load_evaluations
from interview_sim.record import load_transcript
from interview_sim.report import REPORT_FILE, write_report
from test_report import HOSTILE, SPEEDS, records  # noqa: F401  (`records`: the shared module fixture)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("INTERVIEW_SIM_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "report"


@pytest.fixture(scope="module")
def browser(records: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:  # noqa: F811
    """One headless Chromium with a throw-away profile for the module.

    It takes `records` so that they are made first: Playwright's sync API runs an event loop of its own,
    inside which the fixtures' `asyncio.run` could not start.
    """
    require("the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


@dataclass
class Visit:
    page: Any
    url: str
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No script error, no console error or warning (a CSP violation is one), no request but the page."""
        assert self.errors == []
        assert [c for c in self.console if c.startswith(("error", "warning"))] == []
        assert self.requests == [self.url]

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 20_000, "a blank page compresses to a few kilobytes"
        return path


def visit(browser: Any, page_path: Path) -> Visit:
    page = browser.new_page()
    v = Visit(page, page_path.resolve().as_uri())
    page.on("console", lambda m: v.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: v.errors.append(str(e)))
    page.on("request", lambda r: v.requests.append(r.url))
    page.goto(v.url, wait_until="load")
    # The page's own script marks the document when it has run: proof that the CSP lets it (and only it) run.
    page.wait_for_selector("html[data-js=ready]", state="attached", timeout=10_000)
    return v


def test_native_run_page(browser: Any, records: dict[str, Path]) -> None:  # noqa: F811
    run_dir = records["native"]
    v = visit(browser, write_report(run_dir).path)
    page = v.page
    v.assert_clean()
    transcript = load_transcript(run_dir)

    bubbles = page.locator(".bubble")
    assert bubbles.count() == len(transcript.messages)
    assert page.locator("#m-1 .text").inner_text() == transcript.messages[1].content.strip()
    assert page.locator("table.usage[data-usage=model] tbody tr").count() == len(transcript.usage.including_cached.by_model)
    assert page.locator("table.usage[data-usage=role] tbody tr").count() == len(transcript.usage.including_cached.by_role)

    # The bars are drawn: each has a rendered width proportional to its criterion's mean.
    evaluation = load_evaluations(run_dir)[0]
    widths = page.eval_on_selector_all(
        f"#eval-{evaluation.evaluation_id} svg[data-chart=criteria] rect.bar", "rs => rs.map(r => r.getBBox().width)"
    )
    span = evaluation.scale_max - evaluation.scale_min
    assert widths == pytest.approx([(c.mean - evaluation.scale_min) / span * 360 for c in evaluation.criteria.values()], abs=0.05)
    assert page.locator("svg[data-chart=turns] rect").count() == len(transcript.messages)
    assert all(box["width"] > 0 for box in [page.locator("svg[data-chart=criteria]").first.bounding_box()] if box)

    # Filtering a role hides its turns; following an evidence link shows the quoted turn again.
    page.click("button[data-role-toggle=candidate]")
    candidate = [m.index for m in transcript.messages if m.role == "candidate"]
    assert all(page.locator(f"#m-{i}").is_hidden() for i in candidate)
    assert page.locator("#m-0").is_visible()
    link = page.locator("a.quote-link").first
    target = int(link.get_attribute("data-message") or -1)
    assert target in candidate
    link.click()
    assert page.locator(f"#m-{target}").is_visible()
    assert page.evaluate("location.hash") == link.get_attribute("href")
    page.click("button[data-role-toggle=candidate]")
    assert all(page.locator(f"#m-{i}").is_visible() for i in candidate)
    page.evaluate("window.scrollTo(0, 0)")
    v.screenshot("run.png")


def test_planted_script_does_not_run(browser: Any, records: dict[str, Path]) -> None:  # noqa: F811
    run_dir = records["hostile"]
    v = visit(browser, write_report(run_dir).path)
    page = v.page
    v.assert_clean()
    transcript = load_transcript(run_dir)
    page.hover(".bubble.right .agent")  # the candidate's name carries an onmouseover
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.title().startswith('Scale <script>document.title="pwned"</script>')
    assert page.evaluate("document.querySelectorAll('main script, main img, header script, header img').length") == 0
    hostile = next(m for m in transcript.messages if HOSTILE in m.content)
    assert (page.locator(f"#m-{hostile.index} .text").text_content() or "").strip() == hostile.content.strip()
    # The record embedded for download round-trips through the page's JSON blob.
    data = page.evaluate("JSON.parse(document.getElementById('report-data').textContent)")
    assert data["transcript"]["messages"][hostile.index]["content"] == hostile.content
    v.screenshot("run-hostile.png")


def test_imported_run_page(browser: Any, records: dict[str, Path]) -> None:  # noqa: F811
    run_dir = records["imported"]
    v = visit(browser, write_report(run_dir).path)
    page = v.page
    v.assert_clean()
    transcript = load_transcript(run_dir)
    analysis = load_transcript(run_dir / transcript.attachments[0])
    assert page.locator("#chat .bubble").count() == len(transcript.messages)
    assert page.locator("#chat-1 .bubble").count() == len(analysis.messages)
    assert page.locator("#provenance").is_visible()
    # The attached analysis follows the conversation (its usage folded away), before the interview's usage.
    warnings = page.locator("[data-usage-warning]").all_text_contents()
    assert [w.strip("⚠ ") for w in warnings] == analysis.usage.warnings + transcript.usage.warnings
    chat, attachment, usage = (page.locator(s).bounding_box() for s in ("#conversation", "#attachment-1", "#usage"))
    assert chat and attachment and usage and chat["y"] < attachment["y"] < usage["y"]
    assert page.evaluate("typeof window.__pwned") == "undefined"
    v.screenshot("run-imported.png")


def test_comparison_page(browser: Any, records: dict[str, Path]) -> None:  # noqa: F811
    folder = records["comparison"]
    comparison = load_comparison(folder)
    v = visit(browser, write_report(folder).path)
    page = v.page
    v.assert_clean()

    rows = page.locator("table.leaderboard tbody tr")
    assert rows.count() == len(SPEEDS)
    # Two repeats per model: too few runs for an interval, so no whiskers are drawn (the table says "too few runs").
    assert page.locator("svg[data-chart=overall] g.ci").count() == 0
    assert page.eval_on_selector_all("svg[data-chart=criterion] g.ci", "gs => gs.length") == 0
    assert page.locator("table.leaderboard tbody tr").first.locator("td").nth(5).inner_text() == "too few runs"
    speed = page.eval_on_selector_all(
        "svg[data-chart=speed] g.hbar", "gs => gs.map(g => [g.dataset.name, g.querySelector('rect').getBBox().width])"
    )
    widths = dict(speed)
    assert widths["scripted:weak"] > widths["scripted:average"] > widths["scripted:strong"] > 0

    v.screenshot("comparison.png")

    # Sorting by tokens per second puts the fastest model first.
    headers = page.locator("table.leaderboard thead th")
    headers.filter(has_text="gen tok/s").click()
    headers.filter(has_text="gen tok/s").click()
    assert rows.first.get_attribute("data-model") == "scripted:weak"

    # A cell's link opens that run's page, which loads cleanly too.
    link = page.locator("a.cell-link").first
    href = link.get_attribute("href") or ""
    link.click()
    page.wait_for_selector("body[data-page=run]", state="attached")
    assert page.url == (folder / href).resolve().as_uri()
    assert Path(page.url.removeprefix("file://")).name == REPORT_FILE
    assert v.errors == [] and [c for c in v.console if c.startswith("error")] == []
    run_id = json.loads(page.locator("#report-data").text_content() or "{}")["transcript"]["run_id"]
    assert run_id in {c.run_id for c in comparison.cells}


@pytest.fixture(scope="module")
def board_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A graded panel run with a whiteboard, made in subprocesses (Playwright's loop may already be running here)."""
    import subprocess
    import sys

    runs = tmp_path_factory.mktemp("board-runs")
    scripted = ["--interviewer-model", "scripted:default", "--candidate-model", "scripted:default"]
    run = [sys.executable, "-m", "interview_sim", "run", "system-design-panel", *scripted, "--no-evaluate", "--json"]
    proc = subprocess.run([*run, "--runs-dir", str(runs)], capture_output=True, text=True, timeout=300, check=True)
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    grade = [sys.executable, "-m", "interview_sim", "evaluate", str(run_dir), "--evaluator-model", "scripted:judge"]
    subprocess.run(grade, capture_output=True, text=True, timeout=300, check=True)
    return run_dir


def test_whiteboard_run_page_shows_the_board_history_beside_the_conversation(
    board_run: Path,
    browser: Any,
) -> None:
    v = visit(browser, write_report(board_run).path)
    page = v.page
    v.assert_clean()
    transcript = load_transcript(board_run)
    turns = sorted({c.turn for c in transcript.board_changes})

    # Beside the conversation: the board column sits to the right of the chat, on the same rows.
    chat, board = page.locator("#chat").bounding_box(), page.locator("#whiteboard").bounding_box()
    assert chat and board and board["x"] >= chat["x"] + chat["width"] - 1 and board["y"] < chat["y"] + chat["height"]
    # One version per turn that changed the board (and the starting board); the latest is shown.
    versions = page.locator(".board-version")
    assert versions.count() == len(turns)
    visible = page.locator(".board-version:visible")
    assert visible.count() == 1 and visible.get_attribute("data-board-turn") == str(turns[-1])
    shown = visible.locator(".board-section").evaluate_all("els => els.map(e => [e.dataset.section, e.dataset.state])")
    last = {c.section for c in transcript.board_changes if c.turn == turns[-1]}
    assert [s for s, _ in shown] == [s.title for s in transcript.board]
    assert {s for s, state in shown if state in ("new", "changed")} == last  # this turn's changes are highlighted
    colours = visible.locator(".board-section").evaluate_all("els => els.map(e => getComputedStyle(e).borderLeftWidth)")
    assert {c for (s, _), c in zip(shown, colours, strict=True) if s in last} == {"4px"}

    # Stepping back shows the board as it was a turn earlier; a turn's badge shows the board after that turn.
    page.click("button[data-board-step='-1']")
    earlier = page.locator(".board-version:visible")
    assert earlier.get_attribute("data-board-turn") == str(turns[-2])
    assert earlier.locator(".board-section").count() == len(transcript.board) - len(last)
    first_write = turns[1]
    badge = page.locator(f"#m-{first_write - 1} a.board-badge")
    assert badge.inner_text().startswith("whiteboard: + ")
    badge.click()
    assert page.locator(".board-version:visible").get_attribute("data-board-turn") == str(first_write)

    # The panel's debriefs, and usage per agent.
    assert page.locator("#debriefs li").count() == len(transcript.debriefs) == 2
    agents = page.locator("table.usage[data-usage=agent] tbody tr td:first-child").all_inner_texts()
    assert {"Tech-Lead", "Product-Manager", "OpenCorpo-Assistant"} <= set(agents)
    assert len(agents) == len(transcript.usage.including_cached.by_agent)
    for _ in turns:
        page.click("button[data-board-step='1']")  # back to the latest board (steps stop at the last one)
    assert page.locator(".board-version:visible").get_attribute("data-board-turn") == str(turns[-1])
    page.evaluate("window.scrollTo(0, 0)")
    v.screenshot("run-whiteboard.png")
