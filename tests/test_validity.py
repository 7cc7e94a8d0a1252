"""The labelled validation set and the judge-validity figures: the generator, the statistics, and judges that fail
the gate for the right reason."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from cli_process import one_line, run_cli
from interview_sim.config import Rubric, load_scenario
from interview_sim.grading import gate, labelled, validity
from interview_sim.grading.calibration import Calibration, calibrate, controls_dir
from interview_sim.grading.evaluate import evaluate_run
from interview_sim.grading.judge import render_transcript
from interview_sim.grading.screen import (
    SELF_ASSESSMENT,
    off_subject_spans,
    screen_transcript,
    self_assessing,
    subject_filter,
    subject_stems,
)
from interview_sim.health import content_stems
from interview_sim.models.scripted import (
    ScriptInput,
    _answer_lines,
    _candidate_sentences,
    _criterion_keywords,
    _hits,
    judge_script,
    script,
)
from interview_sim.record import load_transcript, save_transcript

SCENARIO = "scalability-issues"
RUBRIC = load_scenario(SCENARIO).spec.rubric
CRITERIA = [c.id for c in RUBRIC.criteria]
SMALL = validity.Sizes(transcripts=30, verbosity=15, retest=4, pairs=10)
"""Enough for a judge that is broken to show it, in a few seconds."""


LABELLED_SCENARIOS = ["scalability-issues", "system-design-panel"]
"""Every scenario with controls has a labelled set."""


@functools.cache
def _scenario_bank(scenario: str) -> tuple[Rubric, labelled.Bank]:
    rubric = load_scenario(scenario).spec.rubric
    bank = labelled.load_bank(scenario, [c.id for c in rubric.criteria])
    assert bank is not None, f"{scenario} has controls but no labelled set"
    return rubric, bank


def _bank() -> labelled.Bank:
    """The default scenario's labelled set (read once: the test judges look it up on every answer)."""
    return _scenario_bank(SCENARIO)[1]


# ---------------------------------------------------------------------------------------------- test judges


def _seeded(*parts: object) -> int:
    return hashlib.sha256("|".join(map(str, parts)).encode()).digest()[0]


def _blocks(inp: ScriptInput) -> list[str]:
    prompt = next(m.content for m in inp.messages if m.role == "user" and "<transcript" in m.content)
    return re.findall(r"<transcript[^>]*>\n(.*?)\n</transcript>", prompt, re.S)


@script("test-random-judge")
def random_judge(inp: ScriptInput) -> str:
    """Test judge: scripted:judge's answer with every score and winner replaced by a seeded coin."""
    grade = json.loads(judge_script(inp))
    key = (inp.seed, *(m.content for m in inp.messages))
    if "score" in grade:
        grade["score"] = 1 + _seeded(*key) % 5
    for cid, item in grade.get("criteria", {}).items():
        if "winner" in item:
            item["winner"] = ("first", "second", "tie")[_seeded(*key, cid) % 3]
        else:
            item["score"] = 1 + _seeded(*key, cid) % 5
    if "overall" in grade:
        grade["overall"]["winner"] = ("first", "second")[_seeded(*key, "overall") % 2]
    return json.dumps(grade)


@script("test-middle-judge")
def middle_judge(inp: ScriptInput) -> str:
    """Test judge: always the middle of the scale; every pairwise verdict a tie."""
    grade = json.loads(judge_script(inp))
    if "score" in grade:
        grade["score"] = 3
    for item in grade.get("criteria", {}).values():
        if "winner" in item:
            item["winner"] = "tie"
        else:
            item["score"] = 3
    if "overall" in grade:
        grade["overall"]["winner"] = "tie"
    return json.dumps(grade)


def _answer_words(block: str, criterion_title: str) -> int:
    """Words of the candidate's answer about a criterion: the turn after the interviewer's question about it (the
    first answer when no question names it)."""
    cid = next(c.id for c in RUBRIC.criteria if c.name == criterion_title)
    turns = re.findall(r'<turn n="\d+" role="(\w+)">\n(.*?)\n</turn>', block, re.S)
    asked = {c: any(q in text for _, text in turns for q in _bank().questions[c]) for c in CRITERIA}
    previous = ""
    for role, text in turns:
        if role == "candidate":
            about = next((c for c in CRITERIA if any(q in previous for q in _bank().questions[c])), None)
            if about == cid or (about is None and not asked[cid]):
                return len(text.split())
        previous = text
    return 0


@script("test-length-judge")
def length_judge(inp: ScriptInput) -> str:
    """Test judge: scores an answer by its length alone (under 35 words: 2, else 5); pairwise, the longer
    transcript wins."""
    grade = json.loads(judge_script(inp))
    blocks = _blocks(inp)
    schema = inp.json_schema or {}
    if "score" in grade:
        grade["score"] = 5 if _answer_words(blocks[0], str(schema.get("title", ""))) >= 35 else 2
        return json.dumps(grade)
    lengths = [len(b.split()) for b in blocks]
    winner = "first" if lengths[0] > lengths[1] else "second"
    for item in grade.get("criteria", {}).values():
        item["winner"] = winner
    grade["overall"]["winner"] = winner
    return json.dumps(grade)


# ---------------------------------------------------------------------------------------------- the generator


def test_the_design_is_deterministic_balanced_and_uncorrelated() -> None:
    rows = labelled.design(60, 5, seed=11)
    assert rows == labelled.design(60, 5, seed=11)
    assert rows != labelled.design(60, 5, seed=12)
    table = np.array(rows)
    for column in table.T:
        assert sorted(np.unique(column, return_counts=True)[1].tolist()) == [20, 20, 20]
    r = np.corrcoef(table, rowvar=False)
    assert np.abs(r[np.triu_indices(5, 1)]).max() < 0.1  # independent permutations alone give ~0.13 typical, 0.3 worst


def test_every_scenario_with_controls_has_a_labelled_set() -> None:
    with_controls = sorted(p.name for p in gate.controls_dir(SCENARIO).parent.iterdir() if (p / "strong.json").is_file())
    assert with_controls == sorted(LABELLED_SCENARIOS)


@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
def test_the_transcripts_are_deterministic_and_carry_no_truth(scenario: str) -> None:
    rubric, bank = _scenario_bank(scenario)
    criteria = [c.id for c in rubric.criteria]
    template = load_transcript(controls_dir(scenario) / "strong.json")
    items = labelled.make_items(bank, criteria, 12, seed=5)
    assert items == labelled.make_items(bank, criteria, 12, seed=5)
    for item in items:
        plain = labelled.compose(bank, item, template)
        assert [m.content for m in plain.messages] == [m.content for m in labelled.compose(bank, item, template).messages]
        candidate = [m.content for m in plain.messages if m.role == "candidate"]
        assert len(candidate) == len(criteria)
        swapped = labelled.compose(bank, labelled.swapped(item, bank), template)
        longer = [m.content for m in swapped.messages if m.role == "candidate"]
        for k, cid in enumerate(item.order):
            # the swapped variant: low levels padded (longer, same passage inside), level 5 terse (shorter)
            if item.truth[cid] == labelled.HIGH:
                assert len(longer[k].split()) < len(candidate[k].split())
            else:
                assert candidate[k] in longer[k] and len(longer[k].split()) > len(candidate[k].split())
        for transcript in (plain, swapped):
            assert screen_transcript(transcript) == []  # nothing for the injection screen to cap
            assert "level" not in json.dumps(transcript.model_dump(mode="json")["agents"]).replace("labelled", "")


@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
def test_every_passage_is_worded_unlike_its_anchor(scenario: str) -> None:
    """No paraphrase shares a run of four words with its level's anchor in the rubric."""
    rubric, bank = _scenario_bank(scenario)
    for criterion in rubric.criteria:
        for level in labelled.LEVELS:
            anchor = re.findall(r"[a-z']+", criterion.levels[level].lower())
            grams = {tuple(anchor[i : i + 4]) for i in range(len(anchor) - 3)}
            for passage in bank.passages[criterion.id][level]:
                words = re.findall(r"[a-z']+", passage.lower())
                assert not grams & {tuple(words[i : i + 4]) for i in range(len(words) - 3)}, passage


@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
def test_no_passage_opens_like_a_speaker_label(scenario: str) -> None:
    """ "My scaling plan: ..." at the start of a turn reads as a forged speaker label ("System: ...") to the scripted
    judge, which then reads none of the turn: a passage must be read whole."""
    _, bank = _scenario_bank(scenario)
    for by_level in bank.passages.values():
        for passage in (p for options in by_level.values() for p in options):
            assert _answer_lines(passage) == passage.splitlines(), passage


@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
def test_the_padding_is_read_by_the_judges_and_adds_no_level(scenario: str) -> None:
    """Padding sentences are on the criterion's subject (the screen's subject filter keeps them, so a padded answer
    reaches the judges at its full length) and name none of the rubric's terms of substance (the scripted judge's
    keywords of any criterion), so a padded answer stays at its level."""
    rubric, bank = _scenario_bank(scenario)
    template = load_transcript(controls_dir(scenario) / "strong.json")
    vocabulary = subject_stems(rubric, template.scenario)
    keywords = set().union(*(_criterion_keywords(c.name, c.description) for c in rubric.criteria))
    for cid, sentences in bank.padding.items():
        for sentence in sentences:
            assert not off_subject_spans(sentence, vocabulary), f"{cid}: off the subject: {sentence}"
            assert not {k for k in keywords if any(w.startswith(k) for w in content_stems(sentence))}, sentence
    items = labelled.make_items(bank, [c.id for c in rubric.criteria], 12, seed=5)
    for item in items:
        composed = labelled.compose(bank, labelled.swapped(item, bank), template)
        shown, left_out = subject_filter(composed, rubric)
        said = " ".join(m.content for m in composed.messages if m.role == "candidate")
        read = " ".join(m.content for m in shown.messages if m.role == "candidate")
        used = [s for c in rubric.criteria if item.truth[c.id] != labelled.HIGH for s in bank.padding[c.id] if s in said]
        assert used and all(s in read for s in used), left_out


@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
def test_the_self_assessment_filter_leaves_no_honest_answer_out(scenario: str) -> None:
    """No passage or padding sentence of the labelled set and no sentence of the strong, average and weak controls
    appraises the candidate's own answers or holds a numbered list's marker, so screen version 3 (the
    self-assessment filter; markers read as markup) changes nothing the judges read of them: the labelled and
    control figures measured with version 2 are what version 3 measures."""
    rubric, bank = _scenario_bank(scenario)
    texts = [p for by_key in bank.passages.values() for options in by_key.values() for p in options]
    texts += [p for sentences in bank.padding.values() for p in sentences]
    assert [t for t in texts if self_assessing(t)] == []
    for control in ("strong", "average", "weak"):
        transcript = load_transcript(controls_dir(scenario) / f"{control}.json")
        _, left_out = subject_filter(transcript, rubric)
        assert [f for f in left_out if f.rule == SELF_ASSESSMENT] == [], control
        texts += [m.content for m in transcript.messages if m.role == "candidate"] + [b.text for b in transcript.board]
    assert [t for t in texts if re.search(r"(?:^|\s)\d{1,3}\.(?:\s|$)", t)] == []


# ---------------------------------------------------------------------------------------------- the statistics


def test_qwk_agrees_with_the_pairwise_formula() -> None:
    rng = np.random.default_rng(3)
    truth = rng.choice([1, 3, 5], size=200)
    scores = np.clip(truth + rng.integers(-2, 3, size=200), 1, 5)
    # QWK = 1 - mean squared disagreement / the same under independence (all pairs of a truth and a score).
    independent = float(np.mean(np.subtract.outer(truth, scores) ** 2))
    expected = 1 - float(np.mean((truth - scores) ** 2)) / independent
    assert validity.qwk(truth.tolist(), scores.tolist(), 1, 5) == pytest.approx(expected)
    assert validity.qwk([1, 3, 5], [1, 3, 5], 1, 5) == pytest.approx(1.0)
    assert validity.qwk([1, 3, 5, 1], [3, 3, 3, 3], 1, 5) == pytest.approx(0.0)  # a constant judge agrees by chance only
    assert validity.qwk([3, 3], [1, 5], 1, 5) is not None and validity.qwk([], [], 1, 5) is None


def test_the_default_sizes_tell_a_judge_at_04_from_one_at_06() -> None:
    """A simulated judge whose QWK is about 0.5: at the default 60 transcripts the pooled interval is under 0.2 wide,
    so 0.4 and 0.6 cannot both be inside it."""
    rng = np.random.default_rng(8)
    bank = _bank()
    items = labelled.make_items(bank, CRITERIA, validity.Sizes().transcripts, seed=1)
    graded = []
    for item in items:
        scores = {c: int(np.clip(round(item.truth[c] + rng.normal(0, 2.5)), 1, 5)) for c in CRITERIA}
        graded.append(
            validity.Graded(
                item=item,
                purpose="agreement",
                run_dir="",
                scores={"sim": [scores]},
                values={"sim": [{k: float(v) for k, v in scores.items()}]},
            )
        )
    record = validity.Validity(labelled_hash="", seed=1, sizes=validity.Sizes(), scale_min=1, scale_max=5, graded=graded)
    figures = validity.figures(record, CRITERIA)["sim"]
    assert 0.4 < (figures.qwk.value or 0) < 0.6
    assert (figures.qwk.high or 0) - (figures.qwk.low or 0) < 0.2
    assert figures.qwk.n == 60


def test_wilson_stays_in_range() -> None:
    assert validity.wilson(0, 10).low == 0.0 and validity.wilson(10, 10).high == 1.0
    interval = validity.wilson(1, 3)
    assert interval.low is not None and interval.high is not None
    assert 0.0 < interval.low < 1 / 3 < interval.high < 1.0


# ---------------------------------------------------------------------------------------------- judges through the gate


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", LABELLED_SCENARIOS)
async def test_the_scripted_judges_figures_are_what_its_rules_imply(scenario: str, runs_dir: Path) -> None:
    rubric, bank = _scenario_bank(scenario)
    criteria = [c.id for c in rubric.criteria]
    calibration = await calibrate(scenario=scenario, evaluator_models=["scripted:judge"], runs_dir=runs_dir)
    measured = calibration.validity
    assert measured is not None and calibration.passed
    template = load_transcript(controls_dir(scenario) / "strong.json")
    keywords = {c.id: _criterion_keywords(c.name, c.description) for c in rubric.criteria}

    def keyword_count(item: labelled.Item) -> dict[str, int]:
        # What the judge reads: the composed transcript after the screen's subject filter.
        shown, _ = subject_filter(labelled.compose(bank, item, template), rubric)
        sentences, _ = _candidate_sentences(render_transcript(shown))
        return {cid: len(_hits(sentences, keywords[cid]).found) for cid in criteria}

    def rule(item: labelled.Item) -> dict[str, int]:
        """scripted:judge's documented rule: 1 + distinct rubric keywords in the candidate's sentences, at most 5."""
        return {cid: min(5, 1 + found) for cid, found in keyword_count(item).items()}

    implied = {g.item.id: rule(g.item) for g in measured.graded}
    for g in measured.graded:
        assert all(seed == implied[g.item.id] for seed in g.scores["scripted:judge"]), g.item.id
    main = [g for g in measured.graded if g.purpose == "agreement"]
    truth = [g.item.truth[c] for g in main for c in criteria]
    scores = [implied[g.item.id][c] for g in main for c in criteria]
    figures = measured.judges["scripted:judge"]
    assert figures.qwk.value == pytest.approx(validity.qwk(truth, scores, 1, 5), abs=1e-4)
    assert figures.qwk.n == 60 and figures.qwk.low is not None and figures.qwk.low < figures.qwk.value < (figures.qwk.high or 0)
    # The rule is deterministic and symmetric: the same scores under any seed, the same verdict in either order.
    assert figures.retest_identical.value == 1.0 and figures.order_flip_rate.value == 0.0
    # Padding adds no keyword: a padded answer scores as the plain one unless its turn's neighbours changed.
    assert figures.padding_delta.value is not None and abs(figures.padding_delta.value) < 0.1
    # The pairwise rule: more distinct keywords over all criteria wins (uncapped: score - 1 where under the cap).
    by_id = {g.item.id: g for g in main}
    for pair in measured.pairs:
        totals = {side: sum(keyword_count(by_id[getattr(pair, side)].item).values()) for side in ("a", "b")}
        assert pair.verdicts["scripted:judge"]["ab"] == (
            "tie" if totals["a"] == totals["b"] else max(totals, key=totals.__getitem__)
        )
        assert pair.a in by_id and pair.b in by_id
    # calibration.json holds the truth and the scores: the figures re-score from it alone.
    saved = Calibration.model_validate_json((Path(calibration.folder) / "calibration.json").read_text())
    assert saved.validity is not None
    assert validity.figures(saved.validity, criteria) == measured.judges
    # The gate carries the QWK to every grade made by this judge under this runs folder.
    copy = runs_dir / scenario / "graded"
    save_transcript(copy, load_transcript(controls_dir(scenario) / "average.json"))
    evaluation = await evaluate_run(copy, evaluator_models=["scripted:judge"])
    state = evaluation.calibration
    assert state is not None and state.state == "passed" and state.judge_qwk is not None
    assert state.judge_qwk["n"] == 60 and state.judge_qwk["value"] == figures.qwk.value
    assert f"judge QWK {figures.qwk.value:.2f} [" in state.summary and "on 60 labelled transcripts" in state.summary
    # ... and the runs list shows it beside the judge's state.
    from typer.testing import CliRunner

    from interview_sim.cli import app

    listed = CliRunner().invoke(app, ["runs", "--runs-dir", str(runs_dir), "--scenario", scenario, "--json"])
    (row,) = [r for r in json.loads(listed.stdout) if r["run_id"] == "control-average"]
    assert row["calibration"] == f"passed; {figures.headline()}"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("judge", "reason"),
    [("test-random-judge", "agreement"), ("test-middle-judge", "agreement"), ("test-length-judge", "verbosity")],
)
async def test_a_broken_judge_fails_the_gate_for_the_right_reason(judge: str, reason: str, runs_dir: Path) -> None:
    ref = f"scripted:{judge}"
    # With the screen on, as users calibrate: the padding is on the subject, so the length judge reads it.
    calibration = await calibrate(evaluator_models=[ref], runs_dir=runs_dir, sizes=SMALL)
    assert not calibration.passed and reason in calibration.failed_checks, calibration.verdict
    # Of the labelled set's checks, the ones it fails (the controls' ordering may fail too: that is their business).
    failed = [group for group in calibration.failed_checks if group in ("agreement", "verbosity", "order")]
    assert calibration.validity is not None
    figures = calibration.validity.judges[ref]
    if judge == "test-random-judge":
        assert figures.qwk.low is not None and figures.qwk.high is not None
        assert figures.qwk.low < 0.0 < figures.qwk.high < 0.6  # agreement by chance only, and the interval says so
        assert {"agreement", "order"} <= set(failed)  # and a coin per order flips most verdicts
        # Its verbosity delta is noise: on SMALL's 15 swapped transcripts it may pass or fail by chance (after each
        # criterion's call got its own seed, which changed the coins, it measured -0.39 [-0.79, -0.01] and failed),
        # but it stays far below a length judge's (over 2 points).
        delta = figures.verbosity_delta
        assert delta.value is not None and abs(delta.value) < 1.0
    elif judge == "test-middle-judge":
        assert figures.qwk.value == 0.0 and figures.spearman.value is None and "one score" in figures.spearman.note
        assert figures.order_flip_rate.value == 0.0 and figures.decisive_accuracy.value is None
        assert failed == ["agreement"]
    else:
        # It orders the plain transcripts' levels well (longer is better there) - only the length swap shows it up.
        assert figures.qwk.value is not None and figures.qwk.value >= 0.6
        assert figures.verbosity_delta.value is not None and figures.verbosity_delta.value > 2.0
        assert failed == ["verbosity"]
    # the gate stores the failure and the QWK, and every grade by this judge says so
    entry = json.loads((runs_dir / gate.CALIBRATION_DIR / gate.INDEX_FILE).read_text().splitlines()[-1])
    assert entry["state"] == "failed" and reason in entry["failed_checks"] and entry["qwk"]["n"] == SMALL.transcripts


def test_calibrate_json_and_table_carry_the_figures(runs_dir: Path) -> None:
    from rich.console import Console
    from typer.testing import CliRunner

    from interview_sim.cli import app
    from interview_sim.cli.evaluate import validity_table

    sizes = ["--labelled", "12", "--verbosity", "6", "--retest", "3", "--pairs", "4"]
    result = CliRunner().invoke(
        app, ["calibrate", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir), *sizes, "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    figures = data["validity"]["judges"]["scripted:judge"]
    for name in ("qwk", "spearman", "verbosity_delta", "retest_identical", "retest_correlation", "order_flip_rate"):
        assert set(figures[name]) >= {"value", "low", "high", "n"}, name
    assert set(figures["qwk_by_criterion"]) == set(CRITERIA)
    assert data["validity"]["thresholds"] == {
        "qwk_pooled": 0.6, "qwk_criterion": 0.4, "verbosity_abs_delta": 0.3, "order_flip_rate": 0.2,
    }  # fmt: skip
    # calibration.json keeps each transcript's truth: here, the design's first row
    assert {g["item"]["id"]: g["item"]["truth"] for g in data["validity"]["graded"]}["t00"] == dict(
        zip(CRITERIA, labelled.design(12, 5, 2025)[0], strict=True)
    )
    console = Console(record=True, width=120)
    console.print(validity_table(Calibration.model_validate(data)))
    table = console.export_text()
    assert "Judge validity on the labelled set (12 transcripts" in table
    for row in ("QWK pooled", "QWK governance-and-compliance", "verbosity delta", "retest: identical", "order-flip rate"):
        assert row in table
    assert ">= 0.6" in table and "<= 20%" in table and "|delta| <= 0.3" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--labelled", "10", "--verbosity", "5", "--retest", "5", "--pairs", "6"], "--pairs can be at most --labelled / 2 (5)"),
        (["--labelled", "10", "--retest", "11"], "--verbosity and --retest are samples of --labelled"),
    ],
)
def test_impossible_sizes_are_one_line_exit_2(args: list[str], message: str, runs_dir: Path) -> None:
    result = run_cli("calibrate", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs_dir), *args)
    assert result.returncode == 2
    assert message in one_line(result.stderr)


def test_a_malformed_labelled_set_is_one_line_exit_2_before_any_grading(tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(controls_dir(SCENARIO), home / "scenarios" / "controls" / SCENARIO)
    broken = home / "scenarios" / "controls" / SCENARIO / labelled.LABELLED_FILE
    broken.write_text(broken.read_text().replace("    terse:\n", "    tersely:\n", 1))
    runs = tmp_path / "runs"
    result = run_cli(
        "calibrate", "--evaluator-model", "scripted:judge", "--runs-dir", str(runs), extra_env={"INTERVIEW_SIM_HOME": str(home)}
    )
    assert result.returncode == 2
    assert one_line(result.stderr).endswith(
        "labelled.yaml: passages: security-measures: level terse needs at least three paraphrases"
    )
    assert not runs.exists() or not any(runs.rglob("transcript.json"))


def test_a_shipped_record_with_figures_gives_the_gate_its_qwk(tmp_path: Path) -> None:
    qwk = {"value": 0.64, "low": 0.55, "high": 0.72, "n": 60, "note": ""}
    record = {
        "judge_ids": {"llamacpp:x": "llamacpp:x@sha256:0"},
        "rubric_hash": "r", "prompt_version": "p", "mode": "criterion", "screen": "v1", "passed": True,
        "validity": {"judges": {"llamacpp:x": {"qwk": qwk}}},
    }  # fmt: skip
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps(record))
    state = gate.lookup(None, gate.key("llamacpp:x@sha256:0", "r", "p", "criterion", "v1"), shipped=path)
    assert state.summary == "judge passed calibration (judge QWK 0.64 [0.55, 0.72] on 60 labelled transcripts)"
    del record["validity"]  # an older shipped record: the state alone
    path.write_text(json.dumps(record))
    state = gate.lookup(None, gate.key("llamacpp:x@sha256:0", "r", "p", "criterion", "v1"), shipped=path)
    assert state.judge_qwk is None
    assert state.summary == "judge passed calibration (controls only: agreement on the labelled set not measured)"
