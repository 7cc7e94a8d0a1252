"""Conversation health: deterministic, judge-free facts about a run, computed from its transcript alone.

A grade from a small judge carries little signal; some of what makes an interview good or broken can be
counted instead. Every figure here is a function of `transcript.json` (measured, imported and replayed runs
alike), needs no model, and says which turns it counted against, so a reader can check it by hand.

Definitions (version `DEFINITIONS_VERSION`; words are lower-cased runs of letters, digits and apostrophes):

* **stage compliance** — of the interviewer's model-written turns in a stage that must ask
  (`pose_problem`, `probe`), the share that ask something: a `?`, a sentence that opens with a question
  or request word (`ASKING_WORDS`: how, what, why, describe, explain, walk, propose, …), or an indirect
  question (`INDIRECT_ASK`: "I would like to know how …", "I'd like you to …", "tell me …").
* **truncation** — of all model-written turns, the share whose call stopped at the token cap
  (`finish_reason == "length"`). **Shown cut off** counts those of them whose text, as shown, does not end
  a sentence (the session cuts a capped answer back to its last complete sentence; a turn with no complete
  sentence to keep stays as it was, and is counted here).
* **role adherence** — per seat, the share of its model-written turns that do not speak as the other seat.
  A turn speaks as the other seat when it (a) addresses its own seat by name (`"<own name>, …"`, the other
  seat's way of talking to it) or writes the other seat's speaker label (`"<other name>:"`); (b) repeats
  five consecutive words of the other seat's script (its system prompt; for the interviewer also the stage
  instructions and the opening line); (c) for a candidate, announces the time left ("N minutes left") or uses
  an evaluator's phrase (`EVALUATOR_PHRASES`: "your answer", "I will evaluate", …), which only the interviewer's
  script calls for.
* **topic adherence** — of the candidate's model-written turns, the share that touch the scenario: at least
  two distinct word stems (Snowball English stemmer, stop words and `GENERIC_WORDS` left out) shared with
  the scenario's topic, solution topic, title, stage instructions and rubric (criterion names, descriptions
  and level descriptions); one is enough for a turn of under twelve content words. Also the longest run of
  consecutive off-topic candidate turns.
* **repetition** — per seat, the mean over its model-written turns of the share of the turn's word 4-grams
  that already occurred earlier in the same turn or in the seat's earlier turns.
* **echo** — of the candidate's model-written turns, the share in which at least half of the word 4-grams
  occur in the interviewer turn just before.
* **note leakage** — of all model-written turns, the share that repeat what the session told the seat but
  never meant to be said: the stage note's framing ("Stage 2 of 5 (pose_problem)", "step 2 of 5", "Your next
  turn (", "the note asks"), a stage's id (`pose_problem`, `wrap_up`), the whiteboard how-to, or
  six consecutive words of the seat's own system prompt or turn note. (The stage instructions themselves are
  not counted: an interviewer is meant to pose the scripted problem in its words.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from interview_sim.config import ASKING_STAGES
from interview_sim.record import Message, Transcript

DEFINITIONS_VERSION = 3
"""2: note leakage added. 3: an indirect question ("I would like to know how ...") asks something."""
_ASKING_WORDS_TEXT = (
    "how what why which when where who whom whose could would can will do does did is are should shall may might "
    "describe explain tell walk propose design sketch outline show give list estimate suppose imagine consider "
    "compare justify elaborate clarify talk share"
)
ASKING_WORDS = frozenset(_ASKING_WORDS_TEXT.split())
INDIRECT_ASK = re.compile(
    r"\b(?:i(?:'d| would| want) (?:like )?(?:to (?:know|hear|understand|see|learn)|you to)|tell me|walk me through"
    r"|i(?:'m| am) (?:curious|interested) (?:about|to|in|how|what|why))\b",
    re.I,
)
EVALUATOR_PHRASES = (
    "your answer",
    "your response",
    "your proposal",
    "your solution",
    "i will evaluate",
    "i'll evaluate",
    "tasked with evaluating",
    "as the interviewer",
    "as your interviewer",
    "next question",
    "let's move on",
    "thank you for your answer",
    "great answer",
    "good answer",
)
_GENERIC_WORDS_TEXT = (
    "solution problem answer question interview candidate interviewer approach system systems good well "
    "also using use make need would could should like think thing things way ways able within across"
)
GENERIC_WORDS = frozenset(_GENERIC_WORDS_TEXT.split())
_STOP_WORDS_TEXT = (
    "a an the and or but if then else of to in on at by for with from as is are was were be been being this that "
    "these those it its it's i i'm i'd i'll we we'll we'd you your yours our ours they them their there here what "
    "which who whom how why when where not no yes so than too very can will just do does did done have has had "
    "into onto over under about after before between each other some any all more most such only own same few "
    "one two three may might must shall let us me my mine he she his her him"
)
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[a-z0-9']+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TIME_LEFT = re.compile(r"\b\d+(?:\.\d+)?\s*(?:more\s+)?minutes?\s+(?:left|remaining|to go)\b", re.I)
_SENTENCE_END = re.compile(r"[.!?:;)\]\"'`»”’…*]\s*$")
SHINGLE = 5
NGRAM = 4
LEAK_SHINGLE = 6
_NOTE_FRAMING = re.compile(
    r"\bstage \d+ of \d+\b|\bstep \d+ of \d+\b|\byour next turn \(|\bthe note (?:below|asks|says)\b"
    r"|\b(?:pose_problem|wrap_up)\b|\((?:open|probe|feedback)\)|\bthe shared whiteboard: write on it\b",
    re.I,
)


class Rate(BaseModel):
    """`count` of `total` turns have the named property; `turns` lists those turns' message indices."""

    count: int = 0
    total: int = 0
    turns: list[int] = Field(default_factory=list)

    @property
    def share(self) -> float | None:
        return round(self.count / self.total, 4) if self.total else None


class Health(BaseModel):
    """A run's health figures; see the module docstring for each definition."""

    definitions_version: int = DEFINITIONS_VERSION
    stage_compliance: Rate
    """Interviewer turns in pose_problem/probe stages that ask something (turns: those that do not)."""
    truncated: Rate
    """Model turns that hit the token cap."""
    shown_cut_off: Rate
    """Model turns shown ending mid-sentence."""
    role_adherence: dict[str, Rate]
    """Per seat: turns that stay in role (turns: those that speak as the other seat)."""
    topic_adherence: Rate
    """Candidate turns on the scenario's topic (turns: the off-topic ones)."""
    longest_off_topic_run: int = 0
    repetition: dict[str, float | None]
    """Per seat: mean share of a turn's word 4-grams already said by that seat."""
    echo: Rate
    """Candidate turns that copy at least half of the interviewer turn before them."""
    note_leakage: Rate = Field(default_factory=Rate)
    """Model turns that repeat the session's notes or their seat's own instructions (turns: those that do);
    empty in figures computed before definitions version 2."""

    def headline(self) -> dict[str, float | None]:
        """The figures a leaderboard shows, as shares in [0, 1] (None where nothing was counted)."""
        return {
            "stage_compliance": self.stage_compliance.share,
            "truncation": self.truncated.share,
            "shown_cut_off": self.shown_cut_off.share,
            "role_adherence": self.role_adherence.get("candidate", Rate()).share,
            "topic_adherence": self.topic_adherence.share,
            "repetition": self.repetition.get("candidate"),
            "echo": self.echo.share,
            "note_leakage": self.note_leakage.share,
        }


HEADLINE_LABELS = {
    "stage_compliance": "stage compliance",
    "truncation": "truncated",
    "shown_cut_off": "shown cut off",
    "role_adherence": "role adherence",
    "topic_adherence": "topic adherence",
    "repetition": "repetition",
    "echo": "echo",
    "note_leakage": "note leakage",
}
HIGHER_IS_BETTER = {"stage_compliance": True, "role_adherence": True, "topic_adherence": True}
"""The other headline figures are defects: lower is better."""


# ---------------------------------------------------------------------------------------------- text


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case word. Stemming is pure and sessions repeat their words: each
    is stemmed once (it was a fifth of a scripted compare cell's CPU time). `scripted:judge` stems with it too."""
    return str(_stemmer().stemWord(word))


def content_stems(text: str) -> set[str]:
    kept = [w.strip("'") for w in words(text)]
    kept = [w for w in kept if len(w) > 2 and w not in _STOP_WORDS and w not in GENERIC_WORDS and not w.isdigit()]
    return {stem(w) for w in kept}


def asks_something(text: str) -> bool:
    if "?" in text or INDIRECT_ASK.search(text):
        return True
    for sentence in _SENTENCE.split(text):
        first = words(sentence)[:1]
        if first and first[0] in ASKING_WORDS:
            return True
    return False


def ends_a_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text.strip())) if text.strip() else True


# ---------------------------------------------------------------------------------------------- the figures


def _model_turns(transcript: Transcript, role: str | None = None) -> list[Message]:
    return [m for m in transcript.messages if m.source != "template" and (role is None or m.role == role)]


def _finish_reasons(transcript: Transcript) -> dict[int, str]:
    return {c.message_index: c.finish_reason for c in transcript.calls if c.message_index is not None}


def _names(transcript: Transcript) -> dict[str, str]:
    names = {m.role: m.agent for m in transcript.messages}
    for role, agent in (transcript.agents or {}).items():
        if isinstance(agent, dict) and agent.get("name"):
            names.setdefault(role, str(agent["name"]))
    return names


def _mapping(value: Any) -> dict[str, Any]:
    """A snapshot's part if it is a mapping, else empty: a run's scenario snapshot may hold anything (issue 10)."""
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _hidden_script(transcript: Transcript, seat: str) -> set[tuple[str, ...]]:
    """Five-word runs of what `seat` is told but the other seat never sees (system prompt, stage notes)."""
    scenario, agents = _mapping(transcript.scenario), _mapping(transcript.agents)
    texts = [str(_mapping(agents.get(seat)).get("system_prompt", ""))]
    if seat == "interviewer":
        texts += [str(s.get("instruction", "")) for s in _items(scenario.get("stages")) if isinstance(s, dict)]
    script = {g for t in texts for g in _ngrams(words(t), SHINGLE)}
    shown = {g for m in transcript.messages if m.role == seat for g in _ngrams(words(m.content), SHINGLE)}
    return script - shown


def _topic_stems(transcript: Transcript) -> set[str]:
    scenario = _mapping(transcript.scenario)
    texts: list[str] = [str(scenario.get(k, "")) for k in ("topic", "solution_topic", "title")]
    texts += [str(s.get("instruction", "")) for s in _items(scenario.get("stages")) if isinstance(s, dict)]
    for criterion in _items(_mapping(scenario.get("rubric")).get("criteria")):
        if isinstance(criterion, dict):
            texts += [str(criterion.get("name", "")), str(criterion.get("description", ""))]
            texts += [str(v) for v in _level_texts(criterion.get("levels"))]
    return set().union(*(content_stems(t) for t in texts)) if texts else set()


def _level_texts(levels: Any) -> Iterable[Any]:
    if isinstance(levels, dict):
        return levels.values()
    if isinstance(levels, list):
        return [lvl.get("description", lvl) if isinstance(lvl, dict) else lvl for lvl in levels]
    return []


def _speaks_as_other(message: Message, names: dict[str, str], other_script: set[tuple[str, ...]]) -> bool:
    own, other = message.role, "candidate" if message.role == "interviewer" else "interviewer"
    text = message.content
    lowered = text.lower()
    own_name, other_name = names.get(own, ""), names.get(other, "")
    if own_name and re.search(rf"(?:^|[\n.!?]\s*){re.escape(own_name.lower())}\s*,", lowered):
        return True
    if other_name and re.search(rf"(?:^|\n)\s*\**{re.escape(other_name.lower())}\**\s*:", lowered):
        return True
    if other_script and any(g in other_script for g in _ngrams(words(text), SHINGLE)):
        return True
    return own == "candidate" and (bool(_TIME_LEFT.search(text)) or any(p in lowered for p in EVALUATOR_PHRASES))


def _own_script(transcript: Transcript, seat: str) -> set[tuple[str, ...]]:
    """Six-word runs of the seat's own system prompt and turn note: what it is told, never what it should say."""
    agent = _mapping(_mapping(transcript.agents).get(seat))
    texts = [str(agent.get("system_prompt") or ""), str(agent.get("turn_note") or "")]
    return {g for t in texts for g in _ngrams(words(t), LEAK_SHINGLE)}


def _note_leakage(transcript: Transcript) -> Rate:
    scripts = {seat: _own_script(transcript, seat) for seat in ("candidate", "interviewer")}
    rate = Rate()
    for m in _model_turns(transcript):
        rate.total += 1
        script = scripts.get(m.role, set())
        if _NOTE_FRAMING.search(m.content) or (script and any(g in script for g in _ngrams(words(m.content), LEAK_SHINGLE))):
            rate.count += 1
            rate.turns.append(m.index)
    return rate


def _repetition(turns: list[Message]) -> float | None:
    seen: set[tuple[str, ...]] = set()
    shares = []
    for m in turns:
        grams = _ngrams(words(m.content), NGRAM)
        if not grams:
            continue
        repeated = 0
        for g in grams:
            repeated += g in seen
            seen.add(g)
        shares.append(repeated / len(grams))
    return round(sum(shares) / len(shares), 4) if shares else None


def _stage_compliance(transcript: Transcript) -> Rate:
    rate = Rate()
    for m in _model_turns(transcript, "interviewer"):
        if m.stage in ASKING_STAGES:
            rate.total += 1
            if asks_something(m.content):
                rate.count += 1
            else:
                rate.turns.append(m.index)
    return rate


def _truncation(transcript: Transcript) -> tuple[Rate, Rate]:
    finish = _finish_reasons(transcript)
    turns = _model_turns(transcript)
    truncated, cut = Rate(total=len(turns)), Rate(total=len(turns))
    for m in turns:
        if finish.get(m.index) == "length":
            truncated.count += 1
            truncated.turns.append(m.index)
            if not ends_a_sentence(m.content):
                cut.count += 1
                cut.turns.append(m.index)
    return truncated, cut


def _topic(transcript: Transcript) -> tuple[Rate, int]:
    topic = _topic_stems(transcript)
    rate, run, longest = Rate(), 0, 0
    for m in _model_turns(transcript, "candidate"):
        rate.total += 1
        stems = content_stems(m.content)
        needed = 2 if len(stems) >= 12 else 1
        if len(stems & topic) >= needed:
            rate.count += 1
            run = 0
        else:
            rate.turns.append(m.index)
            run += 1
            longest = max(longest, run)
    return rate, longest


def _echo(transcript: Transcript) -> Rate:
    rate = Rate()
    previous: set[tuple[str, ...]] = set()
    for m in transcript.messages:
        grams = _ngrams(words(m.content), NGRAM)
        if m.role == "candidate" and m.source != "template":
            rate.total += 1
            if grams and previous and sum(g in previous for g in grams) / len(grams) >= 0.5:
                rate.count += 1
                rate.turns.append(m.index)
        if m.role == "interviewer":
            previous = set(grams)
    return rate


def compute_health(transcript: Transcript) -> Health:
    """Every health figure of a run, from its transcript alone (no model, no files)."""
    names = _names(transcript)
    adherence: dict[str, Rate] = {}
    for seat in ("candidate", "interviewer"):
        other_script = _hidden_script(transcript, "interviewer" if seat == "candidate" else "candidate")
        rate = Rate()
        for m in _model_turns(transcript, seat):
            rate.total += 1
            if _speaks_as_other(m, names, other_script):
                rate.turns.append(m.index)
            else:
                rate.count += 1
        adherence[seat] = rate
    truncated, cut = _truncation(transcript)
    topic, longest = _topic(transcript)
    return Health(
        stage_compliance=_stage_compliance(transcript),
        truncated=truncated,
        shown_cut_off=cut,
        role_adherence=adherence,
        topic_adherence=topic,
        longest_off_topic_run=longest,
        repetition={seat: _repetition(_model_turns(transcript, seat)) for seat in ("candidate", "interviewer")},
        echo=_echo(transcript),
        note_leakage=_note_leakage(transcript),
    )


def health_line(health: Health) -> str:
    """One line for the terminal: `stage compliance 2/3 · truncated 1/12 · ...`."""

    def frac(rate: Rate) -> str:
        return f"{rate.count}/{rate.total}" if rate.total else "-"

    rep = health.repetition.get("candidate")
    return " · ".join(
        [
            f"stage compliance {frac(health.stage_compliance)}",
            f"truncated {frac(health.truncated)} (shown cut off {health.shown_cut_off.count})",
            f"role adherence {frac(health.role_adherence['candidate'])}",
            f"topic adherence {frac(health.topic_adherence)} (longest off-topic run {health.longest_off_topic_run})",
            f"repetition {rep:.0%}" if rep is not None else "repetition -",
            f"echo {frac(health.echo)}",
            f"note leakage {health.note_leakage.count}",
        ]
    )
