"""HTML reports, checked at the markup level: content, escaping, self-containment, evidence links, the CLI.

The fixtures are real records: runs made by `run_scenario` with scripted models, graded by `evaluate_run` with
`scripted:judge`, AutoGen 0.2 files imported by the importer, and a comparison made by `compare_models`.
The browser tests (test_report_browser.py) reuse them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from interview_sim.cli import app
from interview_sim.grading.evaluate import evaluate_run, load_evaluations
from interview_sim.models import ChatModel, CompletionRequest, ModelOptions, create_model
from interview_sim.models.cache import ModelWrapper
from interview_sim.models.scripted import ScriptInput, interviewer_reply, script
from interview_sim.record import load_transcript
from interview_sim.report import (
    REPORT_FILE,
    render_run_report,
    write_comparison_report,
    write_report,
    write_run_report,
)
from interview_sim.report.charts import QuoteIndex, fragments, nice_ticks, normalise

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

HOSTILE = '<script>window.__pwned=1;document.title="pwned"</script><img src=x onerror="window.__pwned=2"></script><!--'
"""A candidate answer that would run script three ways if any of it reached the page unescaped."""


@script("report-hostile")
def _hostile_script(inp: ScriptInput) -> str:
    """Test-only: a candidate whose every answer is planted HTML and script (interviewer: follows the stage notes)."""
    if inp.role == "interviewer":
        return interviewer_reply(inp)
    return f"Answer {inp.turn}.\n{HOSTILE}\nI would also cache the hot reads and queue the slow exports."


# ---------------------------------------------------------------------------------------------- fixtures (shared)


def make_native_run(runs_dir: Path, candidate: str = "scripted:strong", scenario: str | Path = "scalability-issues") -> Path:
    """A run made by the real session, graded twice: once by one judge, once by two."""
    from interview_sim.session import run_scenario

    async def go() -> Path:
        result = await run_scenario(
            scenario, interviewer_model="scripted:default", candidate_model=candidate, runs_dir=runs_dir, seed=3
        )
        await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"])
        await evaluate_run(result.run_dir, evaluator_models=["scripted:judge"], judges=2, seed=5)
        return result.run_dir

    return asyncio.run(go())


def make_hostile_run(runs_dir: Path, tmp: Path) -> Path:
    """A run whose candidate output, scenario title and agent name carry planted HTML and script."""
    spec = yaml.safe_load((ROOT / "scenarios" / "scalability-issues.yaml").read_text())
    spec["title"] = 'Scale <script>document.title="pwned"</script>'
    spec["company"] = "<img src=x onerror=\"window.__pwned='company'\">"
    spec["agents"] = {role: str(ROOT / "scenarios" / rel) for role, rel in spec["agents"].items()}
    candidate = yaml.safe_load((ROOT / "agents" / "candidate.yaml").read_text())
    candidate["name"] = '<b onmouseover="window.__pwned=4">Mallory</b>'
    (tmp / "candidate.yaml").write_text(yaml.safe_dump(candidate))
    spec["agents"]["candidate"] = str(tmp / "candidate.yaml")
    path = tmp / "hostile.yaml"
    path.write_text(yaml.safe_dump(spec))
    return make_native_run(runs_dir, candidate="scripted:report-hostile", scenario=path)


ANALYSIS_EXPORT = """**Assistant**: Greetings Example Employee, We will be focusing on the analysis of the interview data named: \
interview_7/interview_transcript_2024-04-24_scalability_issues_6_031b3d76-6dca-491a-80d5-0a245347f784.json


 Content:

 ```md

 Chat History: ["Candidate-Bot (Llama3), whiteboard for me some scalability issues. Propose a solution for a SaaS API. \
I will evaluate your answers and give my feedback, then propose a problem to you. You will answer and I will evaluate. \
Let's now begin. You have 30 minutes.", 'Shard tenants by id and put a <script>window.__pwned = 5</script> cache in front.', \
'Good. Problem: reports time out at quarter end. You have 20 minutes left.', 'Move reports to a replica and queue the exports.']
 Summary: Move reports to a replica and queue the exports.
```


 Your analysis will be evaluated and feedback will be provided. Let's get started.

**User**: **Strengths:**

* Sharding by tenant. <img src=x onerror="window.__pwned = 6">

**Weaknesses:**

* No security measures.

**Assistant**: Agreed. Recommendation: ask about authorization next time.

**Chat_id**: None

**Cost**: {'usage_including_cached_inference': {'total_cost': 0, 'llama3:8b-instruct-fp16': {'cost': 0, 'prompt_tokens': 183186, \
'completion_tokens': 210, 'total_tokens': 183396}, 'gemma:2b-instruct-v1.1-fp16': {'cost': 0, 'prompt_tokens': 900, \
'completion_tokens': 260, 'total_tokens': 1160}}, 'usage_excluding_cached_inference': {'total_cost': 0, \
'llama3:8b-instruct-fp16': {'cost': 0, 'prompt_tokens': 183186, 'completion_tokens': 210, 'total_tokens': 183396}, \
'gemma:2b-instruct-v1.1-fp16': {'cost': 0, 'prompt_tokens': 900, 'completion_tokens': 260, 'total_tokens': 1160}}}

**Human_input**: []

**Summary**: Agreed. Recommendation: ask about authorization next time.
"""


def make_imported_run(runs_dir: Path, tmp: Path) -> Path:
    """An AutoGen 0.2 analysis export imported by the importer: an interview run with the analysis attached."""
    from interview_sim.autogen02 import import_transcripts

    source = tmp / "interview_7" / "analysis_of_interview_7.md"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text(ANALYSIS_EXPORT)
    report = import_transcripts([source], runs_dir=runs_dir)
    assert not report.failures, report.failures
    interview = next(r for r in report.created if r.kind == "interview")
    return Path(interview.run_dir)


class _Timed(ModelWrapper):
    """A scripted model that reports a generation time, so the speed chart has figures to draw."""

    def __init__(self, inner: ChatModel, tokens_per_second: float) -> None:
        super().__init__(inner)
        self.tokens_per_second = tokens_per_second

    async def complete(self, request: CompletionRequest) -> Any:
        completion = await self.inner.complete(request)
        return replace(completion, generation_s=completion.completion_tokens / self.tokens_per_second)


SPEEDS = {"scripted:strong": 40.0, "scripted:average": 90.0, "scripted:weak": 150.0}


def make_comparison(runs_dir: Path) -> Path:
    """Three candidate controls, two repeats each, graded by scripted:judge, with pairwise judgments."""
    from interview_sim.compare import compare_models, comparison_dir

    def factory(ref: str, options: ModelOptions) -> ChatModel:
        model = create_model(ref, options)
        return _Timed(model, SPEEDS[ref]) if ref in SPEEDS else model

    comparison = asyncio.run(
        compare_models(
            "scalability-issues",
            list(SPEEDS),
            repeats=2,
            evaluator_model="scripted:judge",
            fixed_model="scripted:default",
            runs_dir=runs_dir,
            model_factory=factory,
        )
    )
    return comparison_dir(runs_dir, comparison.comparison_id)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One of each record, made once for the module (the scenarios resolve against the checkout)."""
    base = tmp_path_factory.mktemp("records")
    runs = base / "runs"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTERVIEW_SIM_HOME", str(ROOT))
        return {
            "native": make_native_run(runs),
            "hostile": make_hostile_run(runs, base),
            "imported": make_imported_run(runs, base),
            "comparison": make_comparison(runs),
        }


# ---------------------------------------------------------------------------------------------- a small DOM


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    parent: Node | None = None

    def all(self, tag: str | None = None, **attrs: str | bool) -> list[Node]:
        found = []
        for child in self.children:
            if (tag is None or child.tag == tag) and all(
                (k.replace("_", "-") in child.attrs) if v is True else child.attrs.get(k.replace("_", "-")) == v
                for k, v in attrs.items()
            ):
                found.append(child)
            found.extend(child.all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str | bool) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag} {attrs}>, found {len(found)}"
        return found[0]

    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    def by_class(self, name: str) -> list[Node]:
        return [n for n in self.all() if name in n.classes()]

    @property
    def content(self) -> str:
        return "".join(self.text) + "".join(c.content + "".join(c.tail) for c in self.children)


_VOID = {"meta", "link", "img", "br", "hr", "input", "source", "area", "base", "col", "embed", "param", "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), parent=self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, dict(attrs), parent=self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>: the markup is not well nested"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        current = self.stack[-1]
        if current.children:
            current.children[-1].tail.append(data)
        else:
            current.text.append(data)


def parse(html: str) -> Node:
    builder = _Builder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    return builder.root


def assert_self_contained(html: str, dom: Node) -> None:
    """Nothing a browser would fetch; the only script is the page's own, pinned by hash in the CSP."""
    for node in dom.all():
        for attr in ("src", "srcset", "data", "poster", "background"):
            assert attr not in node.attrs, f"<{node.tag} {attr}=...> loads something"
        if node.tag == "link":
            assert node.attrs.get("href") == "data:,", node.attrs
        for name in node.attrs:
            assert not name.startswith("on"), f"event handler attribute {name} on <{node.tag}>"
    assert "url(" not in html and "@import" not in html
    scripts = dom.all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json", None]
    csp = dom.one("meta", http_equiv="Content-Security-Policy").attrs["content"] or ""
    assert "default-src 'none'" in csp
    digest = base64.b64encode(hashlib.sha256(scripts[1].content.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


def page_data(dom: Node) -> Any:
    return json.loads(dom.one("script", id="report-data").content)


# ---------------------------------------------------------------------------------------------- run page


def test_run_page_shows_header_conversation_usage_and_grades(records: dict[str, Path]) -> None:
    run_dir = records["native"]
    path = write_run_report(run_dir)
    assert path == run_dir / REPORT_FILE
    html = path.read_text()
    dom = parse(html)
    assert_self_contained(html, dom)
    transcript = load_transcript(run_dir)

    header = dom.one("header").content
    assert "Scalability issues" in header and transcript.run_id in header
    assert "stopped: end marker" in header
    models = dom.one(data_fact="models").content
    assert "interviewer: scripted:default" in models and "candidate: scripted:strong" in models
    assert "evaluator: scripted:judge" in models  # the judge actually called, not the agent file's default
    assert f"{transcript.simulated_minutes_used:g} min" in dom.one(data_fact="simulated").content

    bubbles = dom.by_class("bubble")
    assert [b.attrs["id"] for b in bubbles] == [f"m-{m.index}" for m in transcript.messages]
    assert [b.attrs["data-role"] for b in bubbles] == [m.role for m in transcript.messages]
    for bubble, message in zip(bubbles, transcript.messages, strict=True):
        # Rendered as Markdown: the text is the same, its paragraph and line breaks are elements.
        assert bubble.by_class("text")[0].content.strip() == message.content.strip()
        if message.usage is not None:
            assert bubble.one("span", data_tokens=str(message.usage.completion_tokens))
    candidate = [b for b in bubbles if b.attrs["data-role"] == "candidate"]
    assert candidate and all("right" in b.classes() for b in candidate)
    assert len(dom.one("svg", data_chart="turns").all("rect")) == len(transcript.messages)

    incl, excl = transcript.usage.including_cached, transcript.usage.excluding_cached
    by_model = dom.one("table", data_usage="model")
    rows = {r.all("td")[0].content: [td.content for td in r.all("td")] for r in by_model.one("tbody").all("tr")}
    assert set(rows) == set(incl.by_model)
    for name, u in incl.by_model.items():
        assert rows[name][1:5] == [f"{u.calls:,}", f"{u.prompt_tokens:,}", f"{u.completion_tokens:,}", f"{u.total_tokens:,}"]
        assert rows[name][6] == f"{excl.by_model[name].prompt_tokens:,}"
    by_role = dom.one("table", data_usage="role")
    assert {r.all("td")[0].content for r in by_role.one("tbody").all("tr")} == {"interviewer", "candidate", "evaluator"}


def test_every_evaluation_renders_as_bars_with_rationale(records: dict[str, Path]) -> None:
    run_dir = records["native"]
    dom = parse(render_run_report(run_dir))
    evaluations = load_evaluations(run_dir)
    assert len(evaluations) == 2
    blocks = dom.by_class("evaluation")
    assert [b.attrs["id"] for b in blocks] == [f"eval-{e.evaluation_id}" for e in evaluations]
    for block, evaluation in zip(blocks, evaluations, strict=True):
        assert block.attrs["data-status"] == "ok"
        assert float(block.one("span", data_overall=True).attrs["data-overall"] or "nan") == evaluation.overall
        bars = block.one("svg", data_chart="criteria").by_class("criterion-bar")
        assert [b.attrs["data-criterion"] for b in bars] == list(evaluation.criteria)
        for bar, summary in zip(bars, evaluation.criteria.values(), strict=True):
            assert float(bar.attrs["data-mean"] or "nan") == summary.mean
            # The bar's length is the mean's share of the scale: 360 user units span scale_min..scale_max.
            width = float(bar.one("rect", **{"class": "bar"}).attrs["width"] or "nan")
            expected = (summary.mean - evaluation.scale_min) / (evaluation.scale_max - evaluation.scale_min) * 360
            assert width == pytest.approx(expected, abs=0.02)
            assert len(bar.by_class("dot")) == len(summary.scores)
        rationales = [p.content for p in block.by_class("rationale")]
        assert rationales == [g.rationale for j in evaluation.judges for g in j.criteria] or sorted(rationales) == sorted(
            g.rationale for j in evaluation.judges for g in j.criteria
        )
    assert "2 judges" in blocks[1].content


def test_evidence_quotes_link_to_the_turns_that_hold_them(records: dict[str, Path]) -> None:
    run_dir = records["native"]
    dom = parse(render_run_report(run_dir))
    transcript = load_transcript(run_dir)
    by_id = {n.attrs["id"]: n for n in dom.all() if n.attrs.get("id")}
    quotes = [q for j in load_evaluations(run_dir)[0].judges for g in j.criteria for q in g.evidence]
    links = dom.by_class("quote-link")
    assert quotes and len(links) >= len(quotes)
    for link in links:
        target = by_id[(link.attrs["href"] or "#")[1:]]
        assert target.tag == "mark"
        bubble = target.parent
        while bubble is not None and "bubble" not in bubble.classes():
            bubble = bubble.parent
        assert bubble is not None
        message = transcript.messages[int(bubble.attrs["data-index"] or -1)]
        assert int(link.attrs["data-message"] or -1) == message.index
        quote = link.parent.one("q").content if link.parent else ""
        assert normalise(target.content)[0] in normalise(message.content)[0]
        assert normalise(target.content)[0] in normalise(quote)[0]


def test_quote_finder_tolerates_case_whitespace_and_elisions() -> None:
    @dataclass
    class M:
        index: int
        content: str

    messages = [M(0, "Hello there."), M(1, "First I   profile the Database\nto find the hot queries, then add indexes.")]
    index = QuoteIndex(messages, "")
    found = index.locate('"first i profile the database to find..."')
    assert found.message_index == 1 and found.anchor == "q-1"
    elided = index.locate("profile the database ... then add indexes")
    assert elided.message_index == 1 and elided.anchor == "q-1"  # overlaps the first mark: shares it
    assert index.locate("a sentence nobody said").anchor is None
    html = str(index.content(1))
    assert html.startswith('<mark class="evidence" id="q-1">First I   profile the Database\nto find</mark>')
    assert fragments("abc ... a longer fragment here")[:2] == ["abc ... a longer fragment here", "a longer fragment here"]


def test_unfound_quote_is_said_not_linked(records: dict[str, Path], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for f in records["native"].iterdir():
        if f.name == "transcript.json" or f.name.startswith("evaluation-"):
            (run_dir / f.name).write_text(f.read_text())
    evaluation = run_dir / f"evaluation-{load_evaluations(run_dir)[0].evaluation_id}.json"
    data = json.loads(evaluation.read_text())
    data["judges"][0]["criteria"][0]["evidence"] = ["words the candidate never said <b>at all</b>"]
    evaluation.write_text(json.dumps(data))
    dom = parse(render_run_report(run_dir))
    first = dom.by_class("evaluation")[0].one("details", data_criterion=data["judges"][0]["criteria"][0]["criterion"])
    assert "words the candidate never said <b>at all</b>" in first.content
    assert "not found in the transcript" in first.content
    assert not first.by_class("quote-link")


def test_failed_evaluation_shows_its_error_and_raw_outputs(runs_dir: Path) -> None:
    from interview_sim.errors import EvaluationError
    from interview_sim.session import run_scenario

    async def go() -> Path:
        result = await run_scenario(
            "scalability-issues",
            interviewer_model="scripted:default",
            runs_dir=runs_dir,
            candidate_model="scripted:weak",
            max_turns=3,
        )
        with pytest.raises(EvaluationError):
            # scripted:default answers in prose, never the JSON grade asked for.
            await evaluate_run(result.run_dir, evaluator_models=["scripted:default"])
        return result.run_dir

    run_dir = asyncio.run(go())
    (evaluation,) = load_evaluations(run_dir)
    assert evaluation.status == "failed" and evaluation.raw_outputs
    block = parse(render_run_report(run_dir)).one("div", id=f"eval-{evaluation.evaluation_id}")
    assert block.attrs["data-status"] == "failed"
    assert block.by_class("errbox")[0].content == evaluation.error
    outputs = [p.content for p in block.one("details").all("pre")]
    assert outputs == [r.content for r in evaluation.raw_outputs]
    assert not block.all("svg") and not block.all(data_overall=True)


def test_planted_html_and_script_are_text(records: dict[str, Path]) -> None:
    run_dir = records["hostile"]
    html = render_run_report(run_dir)
    dom = parse(html)
    assert_self_contained(html, dom)
    transcript = load_transcript(run_dir)
    assert "<script>window.__pwned" not in html and "<img src" not in html
    assert not dom.all("img") and all(
        svg.attrs.get("role") in ("img", "group") and svg.attrs.get("aria-label") for svg in dom.all("svg")
    )
    hostile = [m for m in transcript.messages if HOSTILE in m.content]
    assert len(hostile) >= 3
    texts = {b.attrs["id"]: b.by_class("text")[0].content for b in dom.by_class("bubble")}
    for m in hostile:
        assert texts[f"m-{m.index}"].strip() == m.content.strip()
    assert dom.one("h1").content == 'Scale <script>document.title="pwned"</script>'
    assert '<b onmouseover="window.__pwned=4">Mallory</b>' in dom.one(data_fact="models").content
    # The JSON blob cannot end its <script> early nor open a comment, and it carries the record unchanged.
    blob = dom.one("script", id="report-data").content
    assert "</script" not in blob.lower() and "<!--" not in blob
    assert page_data(dom)["transcript"]["messages"][1]["content"] == transcript.messages[1].content


def test_imported_run_shows_provenance_warnings_and_its_analysis(records: dict[str, Path]) -> None:
    run_dir = records["imported"]
    html = render_run_report(run_dir)
    dom = parse(html)
    assert_self_contained(html, dom)
    transcript = load_transcript(run_dir)
    assert transcript.imported is not None and transcript.attachments
    assert "Imported AutoGen 0.2" in dom.one("header").content
    provenance = dom.one("section", id="provenance").content
    assert transcript.imported.source_file in provenance and "autogen02-analysis" in provenance
    record = load_transcript(run_dir / transcript.attachments[0])
    assert record.kind == "analysis" and record.usage.warnings, "the fixture's 183,186 prompt tokens are impossible"
    warnings = [n.content.strip("⚠ ") for n in dom.one("section", id="usage").all(data_usage_warning=True)]
    assert warnings == transcript.usage.warnings
    analysis = dom.one("section", data_attachment=transcript.attachments[0])
    assert [n.content.strip("⚠ ") for n in analysis.all(data_usage_warning=True)] == record.usage.warnings
    assert len(dom.by_class("bubble")) == len(transcript.messages) + len(record.messages)
    assert [b.attrs["id"] for b in analysis.by_class("bubble")] == [f"a1-m-{m.index}" for m in record.messages]
    table = analysis.one("table", data_usage="model")
    assert {r.all("td")[0].content for r in table.one("tbody").all("tr")} == set(record.usage.including_cached.by_model)
    assert "183,186" in table.content
    assert "window.__pwned = 6" in analysis.content and not dom.all("img")


# ---------------------------------------------------------------------------------------------- comparison page


def test_comparison_page_has_leaderboard_charts_and_cell_links(records: dict[str, Path], tmp_path: Path) -> None:
    from interview_sim.compare import load_comparison

    folder = records["comparison"]
    comparison = load_comparison(folder)
    result = write_comparison_report(folder)
    assert result.path == folder / REPORT_FILE
    assert sorted(result.run_pages) == sorted(
        folder.parent.parent / c.run_dir / REPORT_FILE for c in comparison.cells if c.run_dir
    )
    assert all(p.exists() for p in result.run_pages)
    html = result.path.read_text()
    dom = parse(html)
    assert_self_contained(html, dom)

    rows = dom.one("table", **{"class": "sortable leaderboard"}).one("tbody").all("tr")
    assert [r.attrs["data-model"] for r in rows] == [r.model for r in comparison.leaderboard]
    for tr, row in zip(rows, comparison.leaderboard, strict=True):
        cells = [td.content for td in tr.all("td")]
        # two repeats: too few runs for an interval, and the page says so instead of printing one
        assert cells[4] == f"{row.mean:.2f}" and row.ci_low is None and cells[5] == "too few runs"
    overall = dom.one("svg", data_chart="overall")
    bars = {g.attrs["data-name"]: g for g in overall.by_class("hbar")}
    assert set(bars) == set(SPEEDS)
    for row in comparison.leaderboard:
        assert float(bars[row.model].attrs["data-value"] or "nan") == row.mean
        assert not bars[row.model].by_class("ci"), "no CI whiskers: too few runs for an interval"
    speed = {
        g.attrs["data-name"]: float(g.attrs["data-value"] or "nan") for g in dom.one("svg", data_chart="speed").by_class("hbar")
    }
    assert speed == {r.model: r.tokens_per_second for r in comparison.leaderboard}
    assert speed["scripted:weak"] > speed["scripted:strong"]
    per_criterion = dom.all("svg", data_chart="criterion")
    assert len(per_criterion) == len(comparison.criteria)
    assert all(len(svg.by_class("hbar")) == len(SPEEDS) for svg in per_criterion)

    links = dom.by_class("cell-link")
    assert len(links) == len(comparison.cells)
    for link in links:
        href = link.attrs["href"] or ""
        assert href.startswith("../") and (folder / href).resolve().exists()


def test_comparison_page_written_elsewhere_links_back(records: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mail" / "page.html"
    result = write_comparison_report(records["comparison"], out, run_pages=False)
    assert result.run_pages == []
    for link in parse(out.read_text()).by_class("cell-link"):
        assert (out.parent / (link.attrs["href"] or "")).resolve().exists()


def test_nice_ticks() -> None:
    assert nice_ticks(83) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(4.2, 4) == [0, 2, 4, 6]
    assert nice_ticks(0) == [0.0, 1.0]


# ---------------------------------------------------------------------------------------------- CLI


def test_report_command_writes_each_page_kind(records: dict[str, Path], tmp_path: Path) -> None:
    native = records["native"]
    result = runner.invoke(app, ["report", str(native / "transcript.json"), "-o", str(tmp_path / "run.html"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == {"kind": "run", "path": str(tmp_path / "run.html"), "run_pages": []}
    assert parse((tmp_path / "run.html").read_text()).one("body").attrs["data-page"] == "run"

    runs_dir = native.parent.parent
    by_id = runner.invoke(app, ["report", native.name, "--runs-dir", str(runs_dir)])
    assert by_id.exit_code == 0 and by_id.stdout.strip() == f"run page: {native / REPORT_FILE}"

    comparison = records["comparison"]
    by_cmp_id = runner.invoke(app, ["report", comparison.name, "--runs-dir", str(runs_dir), "--no-run-pages"])
    assert by_cmp_id.exit_code == 0, by_cmp_id.output
    assert by_cmp_id.stdout.strip() == f"comparison page: {comparison / REPORT_FILE}"

    imported = runner.invoke(app, ["report", str(records["imported"])])
    assert imported.exit_code == 0 and (records["imported"] / REPORT_FILE).exists()


def test_report_open_hands_the_page_to_the_browser(records: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    result = runner.invoke(app, ["report", str(records["native"]), "--open"])
    assert result.exit_code == 0, result.output
    assert opened == [(records["native"] / REPORT_FILE).resolve().as_uri()]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no-such-run", r"error: no-such-run: no run or comparison there \(not a path, nor an id under .*\)"),
        ("{tmp}", r"error: .*: not a run folder \(no transcript.json\) nor a comparison folder \(no comparison.json\)"),
        ("{tmp}/notes.txt", r"error: .*notes.txt: not a transcript.json nor a comparison.json"),
    ],
)
def test_report_on_something_else_is_one_line_exit_2(tmp_path: Path, runs_dir: Path, target: str, message: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    result = runner.invoke(app, ["report", target.format(tmp=tmp_path), "--runs-dir", str(runs_dir)])
    assert result.exit_code == 2
    assert re.fullmatch(message, result.stderr.strip()), result.stderr
    assert "Traceback" not in result.output


def test_broken_transcript_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "transcript.json").write_text('{"schema_version": 1, "run_id": 3}')
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_write_report_detects_the_kind(records: dict[str, Path]) -> None:
    assert write_report(records["comparison"] / "comparison.json", run_pages=False).kind == "comparison"
    assert write_report(records["imported"]).kind == "run"
