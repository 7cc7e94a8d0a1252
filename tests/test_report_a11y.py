"""Every kind of page, checked the way a front-end team checks one: axe-core in a real headless Chromium.

Six pages (a run, an imported run, a person's run, a comparison, a comparison whose every cell failed, a panel run
with a whiteboard), each at a desktop width (1280 px) and a phone's (390 px), must have no violation of axe-core's
WCAG 2 A/AA rules (colour contrast included) and no element reaching past the viewport's edges. A full-page
screenshot of each is kept under $INTERVIEW_SIM_TEST_ARTIFACTS/a11y/ (default: test-artifacts/ in the checkout).

axe-core is the npm package, installed by `make install` (`npm install --prefix .venv/axe axe-core@<pinned>`), read
from $INTERVIEW_SIM_AXE or .venv/axe/, and loaded into each page by the test. Locally these tests skip with the
reason when axe-core or the browser is missing; under CI (CI=true) that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from headless_chromium import launched
from interview_sim.compare import compare_models, comparison_dir
from interview_sim.errors import ModelCallError
from interview_sim.grading.evaluate import evaluate_run
from interview_sim.models import ChatModel, CompletionRequest, ModelOptions, create_model, parse_ref
from interview_sim.models.cache import ModelWrapper
from interview_sim.models.human import AnswerRequest, with_answers
from interview_sim.report import write_report
from interview_sim.session import run_scenario
from test_report import make_comparison, make_imported_run, make_native_run

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
AXE = Path(os.environ.get("INTERVIEW_SIM_AXE") or ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js")
ARTIFACTS = Path(os.environ.get("INTERVIEW_SIM_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "a11y"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (1280, 390)
PAGES = ("run", "imported", "human", "comparison", "failed-comparison", "panel")

OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    if (box.left < -1 || box.right > width + 1) {
      wide.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(box.left)}..${Math.round(box.right)}`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, width, wide: wide.slice(0, 10)};
}"""


class _Failing(ModelWrapper):
    """A model whose every call fails as a server error would, after its check passed."""

    async def complete(self, request: CompletionRequest) -> Any:
        raise ModelCallError(f"{self.inner.ref} answered HTTP 500 three times")


async def _person_run(runs: Path) -> Path:
    """A panel run with a person in the candidate seat who writes on the whiteboard and in Markdown."""
    answers = iter(
        [
            "```whiteboard\n## Plan\ncache the hot reads\n```\nI would cache the **hottest** reads first.",
            "I would shard by tenant:\n- one schema each\n- replicas for reports",
        ]
    )

    async def source(request: AnswerRequest) -> str | None:
        return next(answers, None)

    def factory(ref: str, options: ModelOptions) -> ChatModel:
        if parse_ref(ref)[0] == "human":
            options = with_answers(options, source)
        return create_model(ref, options)

    result = await run_scenario(
        "system-design-panel",
        interviewer_model="scripted:default",
        candidate_model="human",
        runs_dir=runs,
        model_factory=factory,
        max_turns=5,
    )
    await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"])
    return result.run_dir


async def _failed_comparison(runs: Path) -> Path:
    def factory(ref: str, options: ModelOptions) -> ChatModel:
        model = create_model(ref, options)
        return _Failing(model) if ref in ("scripted:weak", "scripted:average") else model

    comparison = await compare_models(
        "scalability-issues",
        ["scripted:weak", "scripted:average"],
        evaluator_model="scripted:judge",
        fixed_model="scripted:default",
        runs_dir=runs,
        model_factory=factory,
    )
    return comparison_dir(runs, comparison.comparison_id)


async def _panel_run(runs: Path) -> Path:
    result = await run_scenario(
        "system-design-panel", interviewer_model="scripted:default", candidate_model="scripted:strong", runs_dir=runs
    )
    await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"])
    return result.run_dir


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One page of each kind, written before the browser starts (Playwright's sync API runs a loop of its own)."""
    base = tmp_path_factory.mktemp("a11y")
    runs = base / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERVIEW_SIM_HOME", str(ROOT))
        folders = {
            "run": make_native_run(runs),
            "imported": make_imported_run(runs, base),
            "human": asyncio.run(_person_run(runs)),
            "comparison": make_comparison(runs),
            "failed-comparison": asyncio.run(_failed_comparison(base / "failed")),
            "panel": asyncio.run(_panel_run(runs)),
        }
    return {name: write_report(folder).path for name, folder in folders.items()}


@pytest.fixture(scope="module")
def browser(pages: dict[str, Path]) -> Iterator[Any]:
    axe = (
        None
        if AXE.is_file()
        else f"axe-core is not installed at {AXE}: `make install` installs it with npm (or set INTERVIEW_SIM_AXE)"
    )
    with launched("the accessibility tests", axe) as chromium:
        yield chromium


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", PAGES)
def test_page_has_no_wcag_aa_violation_and_fits_the_viewport(browser: Any, pages: dict[str, Path], kind: str, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme="light")
    try:
        page.goto(pages[kind].resolve().as_uri(), wait_until="load")
        page.wait_for_selector("html[data-js=ready]", state="attached", timeout=10_000)
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")  # evaluated by the test, not by the page's CSP
        violations = page.evaluate(
            """async (tags) => {
                const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
                return result.violations.map(v => ({id: v.id, impact: v.impact,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ") + ": " + n.failureSummary)}));
            }""",
            WCAG_AA,
        )
        fit = page.evaluate(OVERFLOW)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{kind}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        page.close()
    assert violations == [], json.dumps(violations, indent=1)
    assert fit["scrollWidth"] <= fit["width"] and fit["wide"] == [], fit
    assert shot.stat().st_size > 20_000, "a blank page compresses to a few kilobytes"


def test_the_pages_say_what_happened(browser: Any, pages: dict[str, Path]) -> None:
    """The defects a newcomer met: contradictory badges, a person's usage, raw Markdown and whiteboard markup."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(pages["failed-comparison"].resolve().as_uri())
        assert page.locator(".chips [data-status]").inner_text() == "every cell failed"
        page.goto(pages["human"].resolve().as_uri())
        person = page.locator(".bubble.human")
        assert person.count() == 2
        assert "tokens out" not in person.first.inner_text() and "typed by a person" in person.first.inner_text()
        assert person.first.locator(".text strong").inner_text() == "hottest"  # Markdown, rendered
        assert "```" not in person.first.inner_text() and "wrote on the whiteboard: Plan" in person.first.inner_text()
        assert person.nth(1).locator(".text li").count() == 2
        # A graded run shows its calibration, never a green "ok" beside a red "not calibrated".
        assert page.locator(".eval-head .status-ok").count() == 0
    finally:
        page.close()
