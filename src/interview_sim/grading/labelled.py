"""The labelled validation set: synthetic transcripts whose level on every criterion is known.

A scenario with controls may have `scenarios/controls/<scenario>/labelled.yaml` (`Bank`): candidate answer
passages written per criterion at levels 1, 3 and 5 of the rubric's anchors (three or more paraphrases each,
worded unlike the anchors), terse level-5 answers, padding sentences per criterion (on its subject, so the
screen's subject filter lets the judges read them, but naming no safeguard, step or plan: no level), and the
interviewer's lines for the scenario's stages. `design` draws each criterion's levels for a set of transcripts:
every level equally often per criterion (a balanced design), and the columns decorrelated by swaps within a
column, so a transcript's level on one criterion says nothing about another. `compose` writes one transcript:
one candidate turn per criterion, criteria in a seeded order, each answering the interviewer's question about it.

A transcript comes in two variants with the same truth: `plain` (the passages as written) and `swapped` (each
level-1 or level-3 answer padded to the length of a level-5 one with its criterion's padding, and each level-5
answer replaced by a terse one). A judge whose score follows length scores the swapped variant higher on the low
levels and lower on the high ones; one that follows content scores both alike.

Everything here is deterministic for a seed (numpy's PCG64 generator), so the truth recorded in a calibration
identifies its transcripts exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from interview_sim.errors import ConfigError
from interview_sim.grading import gate
from interview_sim.record import ClockReading, Message, Transcript, utc_now

__all__ = ["LEVELS", "Bank", "Item", "compose", "design", "load_bank", "make_items"]

LABELLED_FILE = "labelled.yaml"
LEVELS = (1, 3, 5)
"""The anchored levels the passages are written at."""
HIGH = 5
MIN_PADDING = 4
"""Padding sentences per criterion, so that a padded answer repeats none (a level-1 answer needs about three)."""
SWAP_ITERATIONS = 4000
"""Swaps tried when decorrelating the design's columns (a fixed number: the design is deterministic per seed)."""

Variant = Literal["plain", "swapped"]


class Bank(BaseModel):
    """`labelled.yaml`: the passages, padding and interviewer lines of one scenario's labelled set."""

    model_config = ConfigDict(extra="forbid")

    scenario: str
    candidate: str
    interviewer: str
    opening: str
    stage_lines: dict[str, str] = Field(default_factory=dict)
    closing: str
    questions: dict[str, list[str]]
    passages: dict[str, dict[int | str, list[str]]]
    """Per criterion id: levels 1, 3, 5 and `terse`, each a list of paraphrases."""
    padding: dict[str, list[str]]
    """Per criterion id: fluent sentences on the criterion's subject that add no level (at least `MIN_PADDING`).
    On the subject, because the screen's subject filter leaves sentences about nothing out of what the judges
    read: padding about nothing would measure the filter, not the judge."""

    @field_validator("passages")
    @classmethod
    def _complete(cls, value: dict[str, dict[int | str, list[str]]]) -> dict[str, dict[int | str, list[str]]]:
        for cid, by_level in value.items():
            for key in (*LEVELS, "terse"):
                if len(by_level.get(key, [])) < 3:
                    raise ValueError(f"{cid}: level {key} needs at least three paraphrases")
        return value

    @field_validator("padding")
    @classmethod
    def _enough_padding(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for cid, sentences in value.items():
            if len(sentences) < MIN_PADDING:
                raise ValueError(f"{cid}: padding needs at least {MIN_PADDING} sentences")
        return value

    def passage(self, criterion: str, key: int | str, index: int) -> str:
        options = self.passages[criterion][key]
        return options[index % len(options)]


def bank_path(scenario: str) -> Path:
    return gate.controls_dir(scenario) / LABELLED_FILE


def load_bank(scenario: str, criteria: Sequence[str]) -> Bank | None:
    """The scenario's labelled set, or None when it has none. ConfigError when it is malformed or does not
    cover the rubric's criteria."""
    import yaml

    path = bank_path(scenario)
    if not path.is_file():
        return None
    try:
        bank = Bank.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {message}") from None
    missing = [c for c in criteria if c not in bank.passages or c not in bank.questions or c not in bank.padding]
    if missing:
        raise ConfigError(f"{path}: no passages, questions or padding for criteria {', '.join(missing)}")
    return bank


def bank_hash(scenario: str) -> str:
    """The labelled set file's content hash (part of a calibration's record: which passages it measured on)."""
    return hashlib.sha256(bank_path(scenario).read_bytes()).hexdigest()[:16]


def design(n: int, criteria: int, seed: int) -> list[list[int]]:
    """n rows of one level per criterion: each level equally often per criterion (as equal as n allows), the
    columns permuted independently, then decorrelated by swaps within a column that lower the sum of squared
    correlations between columns (a swap keeps the column's balance)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    base = np.array([LEVELS[i % len(LEVELS)] for i in range(n)], dtype=float)
    table = np.stack([rng.permutation(base) for _ in range(criteria)], axis=1)
    if n >= 3 and criteria >= 2:

        def cost(t: np.ndarray) -> float:
            r = np.corrcoef(t, rowvar=False)
            return float(np.sum(np.triu(r, 1) ** 2))

        current = cost(table)
        for _ in range(SWAP_ITERATIONS):
            col = int(rng.integers(criteria))
            i, j = (int(x) for x in rng.integers(n, size=2))
            if table[i, col] == table[j, col]:
                continue
            table[[i, j], col] = table[[j, i], col]
            trial = cost(table)
            if trial < current:
                current = trial
            else:
                table[[i, j], col] = table[[j, i], col]
    return [[int(v) for v in row] for row in table]


class Item(BaseModel):
    """One synthetic transcript of the labelled set, and its truth: enough to compose it again."""

    model_config = ConfigDict(extra="forbid")

    id: str
    """e.g. "t07" (plain) or "t07-swapped"."""
    variant: Variant = "plain"
    truth: dict[str, int]
    """Per criterion id, the level its passage was written at."""
    order: list[str]
    """The criteria in the order the candidate's turns answer them."""
    passages: dict[str, str]
    """Per criterion id, which passage: "<level>:<paraphrase>", "terse:<i>" or "<level>:<i>+pad" (padded)."""


def make_items(bank: Bank, criteria: Sequence[str], n: int, seed: int) -> list[Item]:
    """n plain transcripts' truth from the balanced design, with seeded criterion orders and paraphrases."""
    import numpy as np

    rng = np.random.default_rng([seed, 1])
    rows = design(n, len(criteria), seed)
    items = []
    for k, row in enumerate(rows):
        order = [criteria[int(i)] for i in rng.permutation(len(criteria))]
        picks = {
            cid: f"{level}:{int(rng.integers(len(bank.passages[cid][level])))}" for cid, level in zip(criteria, row, strict=True)
        }
        items.append(Item(id=f"t{k:02d}", truth=dict(zip(criteria, row, strict=True)), order=order, passages=picks))
    return items


def swapped(item: Item, bank: Bank) -> Item:
    """The same truth, lengths turned around: low levels padded, high levels terse."""
    picks = {}
    for cid, level in item.truth.items():
        index = int(item.passages[cid].split(":")[1].removesuffix("+pad"))
        picks[cid] = f"terse:{index % len(bank.passages[cid]['terse'])}" if level == HIGH else f"{level}:{index}+pad"
    return item.model_copy(update={"id": f"{item.id}-swapped", "variant": "swapped", "passages": picks})


def _words(text: str) -> int:
    return len(text.split())


def answer(bank: Bank, criterion: str, pick: str) -> str:
    """The candidate's answer for a passage pick ("3:1", "terse:0", "1:2+pad")."""
    key, _, rest = pick.partition(":")
    padded = rest.endswith("+pad")
    index = int(rest.removesuffix("+pad"))
    level: int | str = key if key == "terse" else int(key)
    text = bank.passage(criterion, level, index)
    if not padded:
        return text
    high = bank.passages[criterion][HIGH]
    target = round(sum(_words(p) for p in high) / len(high))
    padding = bank.padding[criterion]
    sentences: list[str] = []
    k = index
    while _words(" ".join([*sentences, text])) < target and len(sentences) < len(padding):
        sentences.append(padding[k % len(padding)])
        k += 1
    # Half the padding before the answer, half after: fluent prose around the same content.
    half = len(sentences) // 2
    return " ".join([*sentences[:half], text, *sentences[half:]])


def compose(bank: Bank, item: Item, template: Transcript) -> Transcript:
    """The item's transcript: the scenario snapshot of `template` (a control), the interviewer's lines from the
    bank (opening, one question per criterion with the next stage's line, closing), one candidate turn per
    criterion in the item's order."""
    stages = template.scenario.get("stages", [])
    expanded = [str(s.get("kind", "")) for s in stages for _ in range(int(s.get("turns", 1)))]
    later = [kind for kind in expanded if kind not in ("open", "wrap_up")]
    messages: list[Message] = []
    minutes = 0.0
    budget = float(template.scenario.get("time_budget_minutes", 30))

    def add(role: str, agent: str, text: str, stage: str | None, spent: float) -> None:
        nonlocal minutes
        minutes += spent
        clock = ClockReading(elapsed_minutes=minutes, remaining_minutes=max(0.0, budget - minutes))
        messages.append(
            Message(index=len(messages), role=role, agent=agent, content=text, source="imported", clock=clock, stage=stage)
        )

    add("interviewer", bank.interviewer, bank.opening, "open", 1.0)
    for k, cid in enumerate(item.order):
        if k > 0:
            stage = later[min(k - 1, len(later) - 1)] if later else None
            questions = bank.questions[cid]
            question = questions[(k + len(item.id)) % len(questions)]
            line = bank.stage_lines.get(stage or "", "")
            add("interviewer", bank.interviewer, f"{line} {question}".strip(), stage, 1.0)
        add("candidate", bank.candidate, answer(bank, cid, item.passages[cid]), None, 4.0)
    add("interviewer", bank.interviewer, bank.closing, "wrap_up", 1.0)
    agents = {
        "interviewer": {"name": bank.interviewer, "role": "interviewer", "model": None, "note": "labelled set"},
        "candidate": {
            "name": bank.candidate,
            "role": "candidate",
            "model": None,
            "note": "labelled set: its truth is kept in the calibration record, never in the transcript",
        },
    }
    now = utc_now()
    return Transcript(
        run_id=f"labelled-{item.id}",
        scenario_id=template.scenario_id,
        scenario=template.scenario,
        agents=agents,
        started_at=now,
        ended_at=now,
        stop_reason=template.stop_reason,
        messages=messages,
        simulated_minutes_used=minutes,
    )
