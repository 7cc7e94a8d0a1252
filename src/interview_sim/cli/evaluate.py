"""`evaluate` and `calibrate`, and the grade table `run` shows too."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from interview_sim.cli import app, fail, user_errors
from interview_sim.cli.common import Timeout, apply_timeout
from interview_sim.cli.otel import OtelFlag, send_traces
from interview_sim.cli.signals import run_async
from interview_sim.cli.terminal import clean

if TYPE_CHECKING:
    from rich.console import Console

    from interview_sim.grading.calibration import Calibration
    from interview_sim.grading.evaluate import Evaluation, PairwiseResult
    from interview_sim.grading.modes import Mode as GradingMode

EvaluatorModel = Annotated[
    str | None,
    typer.Option(
        "--evaluator-model", help="Judge model reference(s), comma-separated (default: the run's evaluator agent's model)."
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
Seed = Annotated[int | None, typer.Option(help="Seed of the first judge; judge k uses seed + k (default: the agent's).")]
MaxTokens = Annotated[int | None, typer.Option(min=1, help="Cap on each judge answer (default: the evaluator agent's).")]
Mode = Annotated[
    str,
    typer.Option(
        "--mode",
        help="criterion: one judge call per criterion (default); rubric: every criterion in one answer; routed: each"
        " answer routed to the criterion it addresses first, then one call per criterion on its answers.",
    ),
]


def check_mode(mode: str) -> GradingMode:
    from interview_sim.grading.modes import MODES

    for known in MODES:  # the Literal itself, not the str
        if mode == known:
            return known
    raise fail(f"--mode must be {', '.join(MODES[:-1])} or {MODES[-1]}, got {mode!r}", 2)


def trust_markup(calibration: Any) -> str:
    """The calibration state as one prominent line (green only when the judge passed)."""
    from rich.markup import escape

    from interview_sim.grading.gate import describe

    state = describe(calibration)
    colour = "green" if state.state == "passed" else "bold red"
    return f"[{colour}]{escape(state.summary)}[/]"


def score_text(evaluation: Evaluation) -> str:
    """The overall score with its judge's calibration state: never a bare number."""
    from interview_sim.grading.gate import describe

    if evaluation.overall is None:
        return "no score"
    return f"{evaluation.overall:.2f} / {evaluation.scale_max} ({describe(evaluation.calibration).summary})"


def split_refs(value: str | None) -> list[str] | None:
    """`a,b` → ["a", "b"]; None stays None (the default judge)."""
    if value is None:
        return None
    refs = [r.strip() for r in value.split(",") if r.strip()]
    if not refs:
        raise fail("--evaluator-model needs at least one model reference", 2)
    return refs


def _console() -> Console:
    from interview_sim.cli.terminal import console

    return console()


def grade_table(evaluation: Evaluation) -> Any:
    """Criterion, score (mean ± spread and range with several judges), the first judge's rationale and evidence."""
    from rich.markup import escape
    from rich.table import Table

    several = len(evaluation.judges) > 1
    judges = ", ".join(evaluation.evaluator_models)
    if evaluation.judges_per_model > 1:
        judges += f" × {evaluation.judges_per_model}"
    if evaluation.failed_judges:
        judges += f"; {len(evaluation.judges)} of {len(evaluation.judges) + len(evaluation.failed_judges)} judges graded"
    title = f"Grade ({judges}; {evaluation.mode} mode; scale {evaluation.scale_min}-{evaluation.scale_max})"
    table = Table(title=title, title_justify="left", caption=trust_markup(evaluation.calibration), caption_justify="left")
    table.add_column("criterion")
    table.add_column("score (mean ± sd, range)" if several else "score", justify="right")
    table.add_column("rationale (judge 1)" if several else "rationale")
    first = {g.criterion: g for g in evaluation.judges[0].criteria} if evaluation.judges else {}
    for cid, s in evaluation.criteria.items():
        grade = first.get(cid)
        if several:
            score = f"{s.mean:.2f} ± {s.stdev:.2f} ({s.min:.2f}-{s.max:.2f})"
        elif grade is not None and grade.expected_score is not None:
            score = f"{s.mean:.2f} (sampled {grade.score})"
        else:
            score = f"{s.mean:g}"
        text = escape(grade.rationale) if grade else ""
        if grade and grade.evidence:
            text += f'\n[dim]"{escape(grade.evidence[0])}"[/]'
        if evaluation.mode == "routed" and grade is not None:
            from interview_sim.grading.routing import WHOLE_TRANSCRIPT

            text += f"\n[dim]graded on {escape(', '.join(grade.turns or [WHOLE_TRANSCRIPT]))}[/]"
        table.add_row(escape(s.name), score, text)
    if evaluation.overall is not None:
        table.add_row("[bold]overall (weighted)[/]", f"[bold]{evaluation.overall:.2f}[/]", trust_markup(evaluation.calibration))
    return table


def _agreement_line(evaluation: Evaluation) -> str:
    names = {"krippendorff_alpha": "Krippendorff's alpha (ordinal)", "mean_pairwise_spearman": "mean pairwise Spearman"}
    parts = []
    for key, label in names.items():
        value = evaluation.agreement.get(key)
        parts.append(f"{label} {value:.3f}" if value is not None else f"{label} n/a ({evaluation.agreement_notes.get(key, '')})")
    return "agreement: " + "; ".join(parts)


ITEM_CHARS = 200
"""Strengths, weaknesses and recommendations are shortened to this many characters in the terminal."""


def render_evaluation(out: Console, evaluation: Evaluation, path: Path | None = None, *, table: bool = True) -> None:
    """The grade table (unless `table` is False: a person's feedback lists the criteria instead), agreement,
    strengths / weaknesses / recommendations, and where the record is."""
    from rich.markup import escape

    if table:
        out.print(grade_table(evaluation))
    else:
        out.print(trust_markup(evaluation.calibration))
    out.print(_agreement_line(evaluation))
    for failure in evaluation.failed_judges:
        out.print(f"[red]judge failed[/] ({escape(failure.judge)}, seed {failure.seed}): {escape(failure.error)}")
    probabilities = sorted({j.probabilities for j in evaluation.judges})
    if probabilities:
        out.print(f"expected scores: {escape('; '.join(probabilities))}")
    for title, items in (
        ("Strengths", evaluation.strengths),
        ("Weaknesses", evaluation.weaknesses),
        ("Recommendations", evaluation.recommendations),
    ):
        if items:
            out.print(f"[bold]{title}[/]")
            for item in items:
                # Shortened: a small judge can write a paragraph of "1) 1) 1) ..."; the record keeps it all.
                out.print(f"  - {escape(textwrap.shorten(item, ITEM_CHARS, placeholder=' [...]'))}")
    for note in evaluation.notes:
        out.print(f"[yellow]note:[/] {escape(note)}")
    usage = evaluation.usage
    out.print(f"judge usage: {usage.calls} call(s), {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")
    if path is not None:
        out.print(f"evaluation: {path}", soft_wrap=True)
    if evaluation.overall is not None:
        out.print(f"[bold]SCORE[/] {escape(score_text(evaluation))}", soft_wrap=True)


def _render_pairwise(out: Console, result: PairwiseResult) -> None:
    from rich.table import Table

    names = {"a": f"a ({result.run_a})", "b": f"b ({result.run_b})", "tie": "tie"}
    table = Table(title=f"Pairwise ({', '.join(result.evaluator_models)}; both orders)", title_justify="left")
    table.add_column("criterion")
    table.add_column("better")
    rubric = {c["id"]: c["name"] for c in result.rubric.get("criteria", [])}
    for cid, side in result.criteria.items():
        flipped = " [dim](order-inconsistent)[/]" if cid in result.inconsistent else ""
        table.add_row(rubric.get(cid, cid), names[side] + flipped)
    if result.overall is not None:
        flipped = " [dim](order-inconsistent)[/]" if "overall" in result.inconsistent else ""
        table.add_row("[bold]overall[/]", f"[bold]{names[result.overall]}[/]{flipped}")
    out.print(table)
    out.print(f"pairwise: {Path(result.run_a_dir) / f'pairwise-{result.pairwise_id}.json'}", soft_wrap=True)


def _dump(record: Any) -> str:
    return json.dumps(record.model_dump(mode="json"))


@app.command("evaluate")
@user_errors
def evaluate_command(
    runs: Annotated[
        list[Path] | None, typer.Argument(help="Run folders or transcript.json files; with --pairwise, exactly two.")
    ] = None,
    evaluator_model: EvaluatorModel = None,
    judges: Annotated[int, typer.Option(min=1, help="Gradings per judge model, with seeds seed, seed+1, ...")] = 1,
    seed: Seed = None,
    scenario: Annotated[
        str | None, typer.Option(help="Grade against this scenario's rubric instead of the run's snapshot.")
    ] = None,
    pairwise: Annotated[
        bool, typer.Option("--pairwise", help="Compare two runs per criterion, in both orders (inconsistent → tie).")
    ] = False,
    where: Annotated[
        str | None,
        typer.Option(
            "--where",
            metavar="FILTER",
            help="Also grade the runs of --runs-dir matching FILTER: key=value pairs (scenario, model, source, batch)"
            " separated by commas, or `all`.",
        ),
    ] = None,
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="The runs folder --where searches.")] = Path("runs"),
    concurrency: Annotated[int, typer.Option(min=1, help="Runs graded at the same time (several runs).")] = 1,
    resume: Annotated[
        bool, typer.Option("--resume/--no-resume", help="Skip runs already graded by the same judge and rubric.")
    ] = True,
    max_tokens: MaxTokens = None,
    mode: Mode = "criterion",
    as_json: JsonFlag = False,
    timeout: Timeout = None,
    otel: OtelFlag = False,
) -> None:
    """Grade runs against their scenario's rubric (one, many, or a filter), or compare two runs with --pairwise.

    With several runs (or --where): a progress bar, one line per run, exit 5 when any run failed to grade.
    """
    from interview_sim.errors import EvaluationError
    from interview_sim.grading.evaluate import evaluate_pairwise, evaluate_run, evaluation_path

    apply_timeout(timeout)
    runs = list(runs or [])
    refs = split_refs(evaluator_model)
    if pairwise:
        if len(runs) != 2 or where is not None:
            raise fail(f"--pairwise needs exactly two runs (and no --where), got {len(runs)}", 2)
        if judges != 1 or scenario is not None:
            raise fail("--judges and --scenario do not apply to --pairwise", 2)
    elif where is not None or len(runs) > 1:
        _evaluate_many(runs, where, runs_dir, refs, judges, seed, scenario, max_tokens, concurrency, resume, as_json, otel)
        return
    elif len(runs) != 1:
        raise fail("evaluate needs a run (or several, or --where FILTER)", 2)
    try:
        if pairwise:
            result = run_async(evaluate_pairwise(runs[0], runs[1], evaluator_models=refs, seed=seed, max_tokens=max_tokens))
        else:
            evaluation = run_async(
                evaluate_run(
                    runs[0],
                    evaluator_models=refs,
                    judges=judges,
                    seed=seed,
                    scenario=scenario,
                    max_tokens=max_tokens,
                    mode=check_mode(mode),
                )
            )
    except EvaluationError as exc:
        if as_json and exc.evaluation is not None:
            typer.echo(_dump(exc.evaluation))
        if not pairwise:
            send_traces(runs, otel, session=False, evaluations="latest")  # the failed grading, in the session's trace
        raise
    if as_json:
        typer.echo(_dump(result if pairwise else evaluation))
    elif pairwise:
        _render_pairwise(_console(), result)
    else:
        render_evaluation(_console(), evaluation, evaluation_path(runs[0], evaluation.evaluation_id))
    if not pairwise:
        send_traces(runs, otel, session=False, evaluations="latest")  # the new grading joins the session's trace


def _evaluate_many(
    runs: list[Path],
    where: str | None,
    runs_dir: Path,
    refs: list[str] | None,
    judges: int,
    seed: int | None,
    scenario: str | None,
    max_tokens: int | None,
    concurrency: int,
    resume: bool,
    as_json: bool,
    otel: bool,
) -> None:
    from rich.markup import escape
    from rich.progress import Progress

    from interview_sim.catalog import RunFilter
    from interview_sim.grading.bulk import evaluate_runs, select_runs
    from interview_sim.models import parse_ref

    for ref in refs or []:
        parse_ref(ref)  # an unknown provider is one error, not one per run
    targets = list(runs)
    if where is not None:
        targets += select_runs(runs_dir, RunFilter.parse(where))
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise fail(f"no runs to grade: nothing in {runs_dir} matches {where!r}", 2)
    err = _console_err()
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("grading", total=len(targets))
        results = run_async(
            evaluate_runs(
                targets,
                evaluator_models=refs,
                judges=judges,
                seed=seed,
                scenario=scenario,
                max_tokens=max_tokens,
                concurrency=concurrency,
                resume=resume,
                progress=lambda done, total, result: bar.update(task, completed=done),
            )
        )
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in results]))
    else:
        out = _console()
        for r in results:
            score = f" {r.overall:.2f}" if r.overall is not None else ""
            reason = f" ({escape(r.reason)})" if r.reason else ""
            out.print(f"{r.status}: {escape(r.run_dir)}{score}{reason}", soft_wrap=True)
        counts = {s: sum(1 for r in results if r.status == s) for s in ("graded", "skipped", "failed")}
        out.print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(results)} run(s)")
    send_traces([r.run_dir for r in results if r.status != "skipped"], otel, session=False, evaluations="latest")
    failed = sum(1 for r in results if r.status == "failed")
    if failed:
        raise fail(f"{failed} of {len(results)} run(s) failed to grade (run the same command again to retry them)", 5)


def _console_err() -> Console:
    from interview_sim.cli.terminal import console

    return console(stderr=True)


def _render_calibration(out: Console, calibration: Calibration) -> None:
    from rich.markup import escape
    from rich.table import Table

    per_model = f"{calibration.judges_per_model} judge(s) per model"
    title = f"Calibration on {calibration.scenario_id} controls ({calibration.mode} mode, {per_model})"
    table = Table(title=title, title_justify="left")
    for column in ("control", "overall", "spread", "judges", "status"):
        table.add_column(column, justify="left" if column in ("control", "status") else "right")
    for name, result in calibration.controls.items():
        overall = f"{result.overall:.2f}" if result.overall is not None else "-"
        spread = f"{result.spread:.2f}" if result.spread is not None else "n/a"
        judges = f"{result.judges_graded} ok" + (f", {result.judges_failed} failed" if result.judges_failed else "")
        status = "ok" if result.status == "ok" else f"[red]failed[/]: {escape(result.error or '')}"
        table.add_row(name, overall, spread, judges, status)
    from interview_sim.cli.tables import print_whole

    print_whole(out, table)
    if calibration.position_deltas:
        deltas = ", ".join(f"{cid} {d:+.2f}" for cid, d in calibration.position_deltas.items())
        out.print(f"position bias, strong control reversed minus first order, per criterion: {escape(deltas)}")
    for name, value in calibration.figures.items():
        shown = f"{value:.3f}" if value is not None else "n/a"
        note = calibration.figure_notes.get(name) or (calibration.figure_notes.get("spread") if "spread" in name else None)
        out.print(f"  {name}: {shown}" + (f" ({escape(note)})" if value is None and note else ""))
    if calibration.validity is not None:
        out.print(validity_table(calibration))
        for note in calibration.validity.notes:
            out.print(f"  note: {escape(note)}")
    for check in calibration.checks:
        mark = "[green]ok[/]  " if check.passed else "[red]FAIL[/]"
        out.print(f"{mark} {check.group}: {check.name}: {escape(check.detail)}")
    out.print(f"records: {calibration.folder}", soft_wrap=True)
    out.print(escape(calibration.verdict), soft_wrap=True)  # one line, however narrow the terminal


def summary_rows(judge: Any) -> list[tuple[str, str, str]]:
    """(figure, value [interval], n) rows for the terminal."""
    rows = [
        ("QWK pooled", judge.qwk.text(), str(judge.qwk.n)),
        *((f"QWK {cid}", i.text(), str(i.n)) for cid, i in judge.qwk_by_criterion.items()),
        (f"Spearman pooled ({judge.scores_from})", judge.spearman.text(), str(judge.spearman.n)),
        ("verbosity delta (longer - shorter)", judge.verbosity_delta.text("{:+.2f}"), str(judge.verbosity_delta.n)),
        ("  padded low levels", judge.padding_delta.text("{:+.2f}"), str(judge.padding_delta.n)),
        ("  terse level 5", judge.terse_delta.text("{:+.2f}"), str(judge.terse_delta.n)),
        ("retest: identical scores", judge.retest_identical.text("{:.0%}"), str(judge.retest_identical.n)),
        (f"retest: correlation ({judge.scores_from})", judge.retest_correlation.text(), str(judge.retest_correlation.n)),
        ("order-flip rate", judge.order_flip_rate.text("{:.0%}"), str(judge.order_flip_rate.n)),
        ("accuracy on decisive pairs", judge.decisive_accuracy.text("{:.0%}"), str(judge.decisive_accuracy.n)),
    ]
    return rows


def validity_table(calibration: Calibration) -> Any:
    """One table of every judge's figures on the labelled set: value [95 % interval], n, and the gate's threshold."""
    from rich.markup import escape
    from rich.table import Table

    from interview_sim.grading.validity import THRESHOLDS

    measured = calibration.validity
    assert measured is not None
    sizes = measured.sizes
    title = (
        f"Judge validity on the labelled set ({sizes.transcripts} transcripts, {sizes.verbosity} length-swapped,"
        f" {sizes.retest} retested, {sizes.pairs} pairs; seed {measured.seed}; 95 % intervals)"
    )
    limits = {
        "QWK pooled": f">= {THRESHOLDS.qwk_pooled:g}",
        "QWK per criterion": f">= {THRESHOLDS.qwk_criterion:g}",
        "verbosity delta (longer - shorter)": f"|delta| <= {THRESHOLDS.verbosity_abs_delta:g}",
        "order-flip rate": f"<= {THRESHOLDS.order_flip_rate:.0%}",
    }
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    for ref in measured.judges:
        table.add_column(escape(ref), justify="right")
        table.add_column("n", justify="right")
    table.add_column("gate")
    rows = {ref: summary_rows(j) for ref, j in measured.judges.items()}
    names = [name for name, _, _ in next(iter(rows.values()), [])]
    for k, name in enumerate(names):
        cells = [cell for ref in measured.judges for cell in (rows[ref][k][1], rows[ref][k][2])]
        limit = limits.get(name) or (limits["QWK per criterion"] if name.startswith("QWK ") else "")
        table.add_row(escape(name), *(escape(c) for c in cells), limit)
    return table


@app.command("calibrate")
@user_errors
def calibrate_command(
    evaluator_model: EvaluatorModel = None,
    judges: Annotated[int, typer.Option(min=1, help="Gradings per judge model and control.")] = 1,
    seed: Seed = None,
    scenario: Annotated[str, typer.Option(help="Whose controls (scenarios/controls/<scenario>/).")] = "scalability-issues",
    runs_dir: Annotated[Path, typer.Option("--runs-dir", help="Records go under <runs-dir>/_calibration/.")] = Path("runs"),
    max_tokens: MaxTokens = None,
    mode: Mode = "criterion",
    screen: Annotated[
        bool,
        typer.Option("--screen/--no-screen", help="Grade with the injection screen, as evaluate does (off: judge alone)."),
    ] = True,
    ship: Annotated[
        bool, typer.Option("--ship", help="Also write the record as the scenario's shipped calibration (make calibrate).")
    ] = False,
    labelled_transcripts: Annotated[
        int,
        typer.Option("--labelled", min=0, help="Labelled transcripts graded for agreement (0: the controls alone)."),
    ] = 60,
    verbosity: Annotated[int, typer.Option("--verbosity", min=0, help="Of those, graded again length-swapped.")] = 30,
    retest: Annotated[int, typer.Option("--retest", min=0, help="Of those, graded again under two judge seeds.")] = 20,
    pairs: Annotated[int, typer.Option("--pairs", min=0, help="Pairs with a known better one, judged in both orders.")] = 30,
    labelled_seed: Annotated[int, typer.Option("--labelled-seed", help="The labelled set's design seed.")] = 2025,
    as_json: JsonFlag = False,
) -> None:
    """Grade the controls and the labelled set; check ordering, injections, position bias, agreement (QWK),
    verbosity and order flips; store the result. Exit 0 on pass, 1 on fail.

    Progress goes to stderr, one line per control and per labelled transcript or pair.
    """
    from interview_sim.grading.calibration import calibrate
    from interview_sim.grading.validity import Sizes

    if labelled_transcripts and (verbosity > labelled_transcripts or retest > labelled_transcripts):
        raise fail("--verbosity and --retest are samples of --labelled: they cannot be larger", 2)
    if labelled_transcripts and pairs > labelled_transcripts // 2:
        raise fail(f"--pairs can be at most --labelled / 2 ({labelled_transcripts // 2}): a transcript is in one pair", 2)

    def progress(line: str) -> None:
        print(clean(line), file=sys.stderr, flush=True)

    calibration = run_async(
        calibrate(
            evaluator_models=split_refs(evaluator_model),
            judges=judges,
            seed=seed,
            scenario=scenario,
            runs_dir=runs_dir,
            max_tokens=max_tokens,
            mode=check_mode(mode),
            on_progress=progress,
            screen=screen,
            ship=ship,
            sizes=Sizes(transcripts=labelled_transcripts, verbosity=verbosity, retest=retest, pairs=pairs),
            labelled_seed=labelled_seed,
        )
    )
    if as_json:
        typer.echo(_dump(calibration))
    else:
        _render_calibration(_console(), calibration)
    if not calibration.passed:
        raise typer.Exit(1)
