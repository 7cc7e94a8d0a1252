"""Routing: which of the candidate's answers address which criterion, so a criterion is graded on those alone.

With the whole transcript in every criterion call, the default judge (Qwen2.5-Coder-1.5B) grades a criterion
from whichever answer sounds strongest, whatever that answer is about (docs/judge-validity.md). Shown only the
turn that answers the criterion, the same judge and prompt agree with the labelled set far better (on 20 labelled
transcripts: pooled QWK 0.66 against 0.45, every criterion at 0.44 or more). The router finds those turns.

For each unit (a candidate turn with the interviewer's turn before it, or a whiteboard section the candidate wrote)
and each criterion, the judge model is asked whether the answer addresses the criterion, with one token to
answer: P(yes) is read from that token's probabilities (a backend without them: its sampled answer, 1 or 0).
The unit goes to the criterion it most likely addresses, and to every other within `MARGIN` of that; a criterion
no unit went to gets the unit most likely to address it (`assign`).

Measured on the 100 answers of 20 labelled transcripts (one criterion each): every level-3 and level-5 answer
went to its own criterion. The misses were all level-1 answers, which decline or deflect and so address no
criterion. Asking instead for the number or the name of the topic in one call routed 76 and 81 of 100, and
missed good answers too. P(yes) is not calibrated across units (a level-1 answer often gets 0.7 for an unrelated
criterion), so a unit is routed by comparing its own criteria, never by a fixed level of P(yes).

A criterion that no unit reaches (no unit at all, or P(yes) 0 from every one: a backend without probabilities
answered "no" each time) is graded on the whole transcript, as criterion mode grades it; its grade records that
(`CriterionGrade.turns` is None). So is one whose units hold no sentence the judge could quote as evidence, since a
grade's evidence must be something the candidate said.

The prompt puts the unit before the criterion, so a backend that reuses its prompt cache (llama.cpp) reads each
unit once for all the criteria.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from interview_sim.config import Criterion
from interview_sim.grading import judge
from interview_sim.models import ChatMessage, ChatModel, Completion, CompletionRequest
from interview_sim.record import Transcript

ROUTING_VERSION = "1"
"""Part of the routed mode's calibration key (with the judge's PROMPT_VERSION): change the routing prompt or
rule, bump it."""
MARGIN = 0.0
"""A unit also goes to every criterion whose P(yes) is within this of its likeliest one's. 0: the likeliest only.

On the labelled set's answers each margin step adds wrong routes faster than right ones (0.03: 3 more of the 35
level-1 answers right, 36 more wrong routes), so the default is the likeliest criterion alone."""
SYSTEM = "You check whether an interview answer addresses a topic. Answer yes or no."
WHOLE_TRANSCRIPT = "the whole transcript"
"""What a routed criterion with `turns` None was graded on, as the grade table and the run page say it."""


@dataclass(frozen=True)
class Unit:
    """What is routed: a candidate turn (with the question before it) or a whiteboard section the candidate wrote."""

    where: str
    """"turn <n>" (the message's 1-based number, as the judges' transcript shows it) or "section <title>"."""
    context: str
    """The interviewer's turn before the answer, or the section's title."""
    text: str
    message: int | None = None
    """The message's index in the transcript (a turn), else None."""
    section: int | None = None
    """The section's index on the whiteboard (a section), else None."""


def units(transcript: Transcript) -> list[Unit]:
    """The transcript's candidate turns and the whiteboard sections the candidate wrote, in order; one with no
    text left (the screen's subject filter leaves "Okay, thanks." out) is no unit."""
    found = []
    messages = transcript.messages
    for i, message in enumerate(messages):
        if message.role == "candidate" and message.content.strip():
            question = messages[i - 1].content if i and messages[i - 1].role != "candidate" else ""
            found.append(Unit(where=f"turn {i + 1}", context=question, text=message.content, message=i))
    for k, section in enumerate(transcript.board):
        if judge._board_role(transcript, section.author) == "candidate" and section.text.strip():
            found.append(Unit(where=f"section {section.title}", context=section.title, text=section.text, section=k))
    return found


def messages(unit: Unit, criterion: Criterion) -> list[ChatMessage]:
    """The routing prompt: the unit first (the same for every criterion), then the criterion."""
    if unit.section is not None:
        shown = f"Whiteboard section written by the candidate, titled {unit.context!r}:\n{unit.text}"
    else:
        shown = f"Interviewer: {unit.context}\nCandidate: {unit.text}" if unit.context else f"Candidate: {unit.text}"
    user = (
        f"{shown}\n\nTopic: {criterion.name} ({criterion.description})\n"
        "Does the candidate's answer address this topic? Answer yes or no."
    )
    return [ChatMessage("system", SYSTEM), ChatMessage("user", user)]


def request(unit: Unit, criterion: Criterion, model: ChatModel, seed: int, think: bool | str | None = None) -> CompletionRequest:
    """One routing question: greedy, one token, that token's alternatives where the backend has them (`think`: the
    evaluator agent's, so a thinking model does not spend its one token on thinking)."""
    return CompletionRequest(
        messages=tuple(messages(unit, criterion)),
        max_tokens=1,
        temperature=0.0,
        repeat_penalty=1.0,
        seed=seed,
        think=think,
        top_logprobs=judge.TOP_LOGPROBS if model.supports_logprobs else 0,
    )


def p_yes(completion: Completion) -> float:
    """P(yes) among yes and no at the answer's first token; a backend without token probabilities: 1.0 for a
    sampled yes, else 0.0."""
    if completion.top_logprobs:
        yes = no = 0.0
        for text, logprob in completion.top_logprobs[0].top:
            word = text.strip().lower()
            if word == "yes":
                yes += math.exp(logprob)
            elif word == "no":
                no += math.exp(logprob)
        if yes + no > 0:
            return yes / (yes + no)
    return 1.0 if completion.content.strip().lower().startswith("yes") else 0.0


def route(likelihood: dict[str, float], margin: float = MARGIN) -> list[str]:
    """The criteria a unit goes to: its likeliest, and every other within `margin` of it (rubric order kept). A
    unit with P(yes) 0 for every criterion (a sampled "no" to each) goes nowhere."""
    best = max(likelihood.values(), default=0.0)
    if best <= 0.0:
        return []
    return [cid for cid, p in likelihood.items() if p >= best - margin - 1e-12]


def assign(likelihoods: list[dict[str, float]], margin: float = MARGIN) -> list[list[str]]:
    """Where each unit goes: its likeliest criterion (`route`), and each criterion also to its likeliest unit, so no
    criterion is left without an answer to read while one has P(yes) above 0 for it. Seen in the labelled set: the
    subject filter leaves a deflecting answer ("That is more of an operations topic.") out entirely, and its
    criterion, reached by no unit, was graded on the whole transcript, i.e. from the other criteria's answers."""
    routed = [route(likelihood, margin) for likelihood in likelihoods]
    criteria = list(dict.fromkeys(cid for likelihood in likelihoods for cid in likelihood))
    for cid in criteria:
        if any(cid in r for r in routed):
            continue
        best = max(range(len(likelihoods)), key=lambda k: likelihoods[k].get(cid, 0.0))
        if likelihoods[best].get(cid, 0.0) > 0.0:
            routed[best] = [c for c in criteria if c in routed[best] or c == cid]
    return routed


def view(transcript: Transcript, routed: list[Unit]) -> Transcript:
    """What one criterion's call reads: the interviewer's opening, each routed turn with the interviewer's turn
    before it, and the routed whiteboard sections with the sections the candidate did not write (context)."""
    keep = {0}
    for unit in routed:
        if unit.message is not None:
            keep |= {unit.message, unit.message - 1}
    sections = {u.section for u in routed if u.section is not None}
    board = [s for k, s in enumerate(transcript.board) if k in sections or judge._board_role(transcript, s.author) != "candidate"]
    return transcript.model_copy(update={"messages": [m for i, m in enumerate(transcript.messages) if i in keep], "board": board})
