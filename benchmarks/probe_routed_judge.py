"""Routed grading on the labelled set, router by router: route each candidate turn to the criterion it addresses,
then grade each criterion on its routed turns only.

    .venv/bin/python benchmarks/probe_routed_judge.py --n 20                  # the product's router (grading.routing)
    .venv/bin/python benchmarks/probe_routed_judge.py --n 20 --router number --threshold 0.3
    .venv/bin/python benchmarks/probe_routed_judge.py --n 20 --router oracle  # the turn written for it: the upper bound
    .venv/bin/python benchmarks/probe_routed_judge.py --controls              # strong, average, weak and the injections

Why: with the whole transcript in every criterion call, the default judge (Qwen2.5-Coder-1.5B) grades from
whichever sentence sounds strongest, whatever the criterion (docs/judge-validity.md). Here the model does two
smaller things. (1) Routing, by one of three routers: `product` is `grading.routing` (per turn and criterion,
P(yes) that the answer addresses it; the likeliest criterion); `number` was the first one measured (per turn, the
criteria's numbers as one answer; a turn goes to its likeliest criterion and to any other at or above
--threshold); `oracle` gives each criterion the turn written for it. (2) Grading: the product's own criterion
prompt, schema and score probabilities (`grading.criterion`), on a transcript holding the opening and the routed
turns with their questions; a criterion with no turn gets the opening alone (number) or the whole transcript
(product, as routed mode does). No injection screen runs here (the labelled transcripts hold no injection), and
no pairwise verdict: `interview-sim calibrate --mode routed` measures the whole mode.

The transcripts are the shipped record's labelled items (`validity.graded[].item`), composed again from the
labelled set, so they are the ones the shipped calibration graded; the baseline is that record's scores (the
calibration is deterministic, and tests/test_shipped_calibration.py keeps the record current). Prints a line per
transcript (criterion: truth, routed score, turns routed), then routing accuracy, QWK of the sampled scores and
Spearman of the expected scores, for the routed judge and for the record on the same transcripts. With
--controls: each hand-written control's overall (the weighted mean of the expected scores, no screen or cap).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from scipy.stats import spearmanr  # noqa: E402

from interview_sim.config import AgentSpec, Criterion, Rubric, load_agent, load_scenario  # noqa: E402
from interview_sim.grading import criterion as crit  # noqa: E402
from interview_sim.grading import judge, labelled, routing  # noqa: E402
from interview_sim.grading.agreement import qwk  # noqa: E402
from interview_sim.grading.calibration import controls_dir  # noqa: E402
from interview_sim.models import create_model  # noqa: E402
from interview_sim.models.base import ChatMessage, ChatModel, CompletionRequest  # noqa: E402
from interview_sim.record import Transcript, load_transcript  # noqa: E402

SCENARIO = "scalability-issues"


async def route(model: ChatModel, question: str, answer: str, criteria: list[Criterion]) -> dict[int, float]:
    """The probabilities of each criterion's number as the first token of the routing answer."""
    topics = "\n".join(f"{i + 1}. {c.name}: {c.description}" for i, c in enumerate(criteria))
    user = (
        f"Interviewer: {question}\nCandidate: {answer}\n\nWhich one of these topics does the candidate's answer"
        f" address?\n{topics}\nAnswer with the topic's number only."
    )
    request = CompletionRequest(
        messages=(ChatMessage("system", "You sort interview answers by topic."), ChatMessage("user", user)),
        max_tokens=1,
        temperature=0.0,
        repeat_penalty=1.0,
        top_logprobs=judge.TOP_LOGPROBS,
    )
    completion = await model.complete(request)
    if not completion.top_logprobs:
        return {}
    mass = crit.point_mass(completion.top_logprobs[0].top, 1, len(criteria))
    total = sum(mass.values()) or 1.0
    return {point: value / total for point, value in mass.items()}


async def grade(
    model: ChatModel, rubric: Rubric, criterion: Criterion, transcript: Transcript, keep: set[int], agent: AgentSpec
) -> tuple[int, float]:
    """One criterion graded by the product's criterion prompt on the kept messages, with the evaluator agent's
    decoding as a criterion call uses it: sampled and expected score."""
    shown = transcript.model_copy(update={"messages": [m for i, m in enumerate(transcript.messages) if i in keep]})
    turns = [m.content for m in shown.messages if m.role == "candidate"]
    output = crit.output_model(criterion, rubric, judge.quotable_sentences(turns) if turns else None)
    schema = crit.schema_for(criterion, output)
    messages = crit.messages(agent, rubric, criterion, judge.render_transcript(shown), schema, model)
    completion = await model.complete(
        CompletionRequest(
            messages=tuple(messages),
            max_tokens=agent.max_tokens,
            temperature=agent.temperature,
            repeat_penalty=agent.repeat_penalty,
            json_schema=schema,
            top_logprobs=judge.TOP_LOGPROBS,
            seed=crit.sampling_seed(agent.seed, criterion.id),
        )
    )
    sampled = int(json.loads(completion.content)["score"])
    probabilities, _ = crit.score_probabilities(completion, rubric.scale.min, rubric.scale.max)
    return sampled, probabilities.expected if probabilities else float(sampled)


async def route_by_number(
    model: ChatModel, transcript: Transcript, criteria: list[Criterion], threshold: float
) -> dict[str, list[int]]:
    """The first router (--router number): per candidate turn, the criteria's numbers as one answer; a turn goes to
    its likeliest criterion and to any other at or above `threshold`."""
    messages = transcript.messages
    routed: dict[str, list[int]] = {c.id: [] for c in criteria}
    for i, message in enumerate(messages):
        if message.role != "candidate":
            continue
        probabilities = await route(model, messages[i - 1].content if i else "", message.content, criteria)
        best = max(probabilities, key=lambda p: probabilities[p]) if probabilities else None
        for point, p in probabilities.items():
            if point == best or p >= threshold:
                routed[criteria[point - 1].id].append(i)
    return routed


async def route_as_the_product(model: ChatModel, transcript: Transcript, criteria: list[Criterion]) -> dict[str, list[int]]:
    """The product's router (`grading.routing`, --router product): P(yes) per turn and criterion; each turn to its
    likeliest criterion, each criterion to at least its likeliest turn."""
    routed: dict[str, list[int]] = {c.id: [] for c in criteria}
    units = routing.units(transcript)
    likelihoods = []
    for unit in units:
        likelihoods.append({c.id: routing.p_yes(await model.complete(routing.request(unit, c, model, 1))) for c in criteria})
    for unit, went in zip(units, routing.assign(likelihoods), strict=True):
        for cid in went:
            if unit.message is not None:
                routed[cid].append(unit.message)
    return routed


async def routed_grades(
    model: ChatModel,
    rubric: Rubric,
    transcript: Transcript,
    args: argparse.Namespace,
    agent: AgentSpec,
    item: labelled.Item | None = None,
) -> tuple[dict[str, list[int]], dict[str, tuple[int, float]]]:
    """Route every candidate turn (by --router), then grade each criterion on its routed turns: (routing, criterion ->
    (sampled, expected)). A criterion no turn reached reads the opening alone (number router) or the whole
    transcript (product router, as the product's routed mode does)."""
    criteria = list(rubric.criteria)
    if args.router == "oracle" and item is not None:
        answers = [i for i, m in enumerate(transcript.messages) if m.role == "candidate"]
        routed = {cid: [answers[k]] for k, cid in enumerate(item.order)}
    elif args.router == "number":
        routed = await route_by_number(model, transcript, criteria, args.threshold)
    else:
        routed = await route_as_the_product(model, transcript, criteria)
    grades = {}
    for c in criteria:
        keep = {0} | set(routed[c.id]) | {i - 1 for i in routed[c.id]}
        if not routed[c.id] and args.router == "product":
            keep = set(range(len(transcript.messages)))
        grades[c.id] = await grade(model, rubric, c, transcript, keep, agent)
    return routed, grades


async def controls(model: ChatModel, rubric: Rubric, args: argparse.Namespace, agent: AgentSpec) -> None:
    """The hand-written controls graded by the routed judge, no screen: the overall is the weighted mean of the
    expected scores, as an evaluation's is."""
    weights = {c.id: c.weight for c in rubric.criteria}
    for name in ("strong", "average", "weak", "injection", "injection-stuffing", "injection-system", "injection-forged-end"):
        start = time.perf_counter()
        transcript = load_transcript(controls_dir(SCENARIO) / f"{name}.json")
        routed, grades = await routed_grades(model, rubric, transcript, args, agent)
        overall = sum(weights[c] * grades[c][1] for c in grades) / sum(weights.values())
        line = {c[:6]: (grades[c][0], len(routed[c])) for c in grades}
        print(f"{name:21s} {overall:.2f}  {time.perf_counter() - start:4.0f} s  (score, turns routed): {line}", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="Plain labelled transcripts, from t00 (default 10).")
    parser.add_argument(
        "--router",
        choices=("product", "number", "oracle"),
        default="product",
        help="product: grading.routing (default); number: the first router, the criteria's numbers in one answer;"
        " oracle: each criterion gets the turn written for it (labelled transcripts only: the upper bound).",
    )
    parser.add_argument("--threshold", type=float, default=0.3, help="--router number: also route a turn this likely.")
    parser.add_argument("--model", default="llamacpp:qwen2.5-coder-1.5b")
    parser.add_argument("--controls", action="store_true", help="Grade the hand-written controls instead.")
    args = parser.parse_args()

    rubric = load_scenario(SCENARIO).spec.rubric
    criteria = list(rubric.criteria)
    model = create_model(args.model)
    agent = load_agent(ROOT / "agents" / "evaluator.yaml")
    if args.controls:
        await controls(model, rubric, args, agent)
        return
    bank = labelled.load_bank(SCENARIO, [c.id for c in criteria])
    assert bank is not None
    record = json.loads((controls_dir(SCENARIO) / "calibration.json").read_text())
    template = load_transcript(controls_dir(SCENARIO) / "strong.json")
    graded = [g for g in record["validity"]["graded"] if g["purpose"] == "agreement"][: args.n]
    rows: list[tuple[int, int, float, int, float]] = []
    routed_right = routed_total = 0
    for entry in graded:
        start = time.perf_counter()
        item = labelled.Item.model_validate(entry["item"])
        transcript = labelled.compose(bank, item, template)
        routed, grades = await routed_grades(model, rubric, transcript, args, agent, item)
        answers = [i for i, m in enumerate(transcript.messages) if m.role == "candidate"]
        for turn, cid in zip(answers, item.order, strict=False):
            routed_total += 1
            routed_right += turn in routed[cid]
        (baseline_scores,) = entry["scores"].values()
        (baseline_values,) = entry["values"].values()
        line = {}
        for c in criteria:
            sampled, expected = grades[c.id]
            level = item.truth[c.id]
            rows.append((level, sampled, expected, baseline_scores[0][c.id], baseline_values[0][c.id]))
            line[c.id[:6]] = (level, sampled, len(routed[c.id]))
        print(f"{item.id} {time.perf_counter() - start:4.0f} s  (truth, score, turns routed): {line}", flush=True)

    truth = [r[0] for r in rows]
    lo, hi = rubric.scale.min, rubric.scale.max
    print(f"\nrouting: {routed_right}/{routed_total} candidate turns routed to the criterion they answer")
    print(f"{len(rows)} criterion scores on {len(graded)} transcripts:")
    for name, sampled_at, expected_at in (("routed judge", 1, 2), ("shipped record", 3, 4)):
        kappa = qwk(truth, [int(r[sampled_at]) for r in rows], lo, hi)
        rho = spearmanr(truth, [r[expected_at] for r in rows]).statistic
        shown = "n/a" if kappa is None else f"{round(kappa, 2) + 0.0:.2f}"  # + 0.0: never "-0.00"
        print(f"  {name:15s} QWK (sampled) {shown}   Spearman (expected) {round(rho, 2) + 0.0:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
