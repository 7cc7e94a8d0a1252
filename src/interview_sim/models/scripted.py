"""`scripted:<script>`: deterministic offline models for tests, examples and calibration.

A script is a function of the conversation (and the role the model plays) that returns the reply text.
Token counts are honest for this backend's own tokenizer: words and punctuation marks are one token
each, plus a fixed overhead per message, and `max_tokens` truncates the output like a real model.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from interview_sim.errors import ModelNotFoundError
from interview_sim.models.base import ChatMessage, ChatModel, Completion, CompletionRequest, ModelInfo

_TOKEN = re.compile(r"\w+|[^\w\s]")
MESSAGE_OVERHEAD = 4
"""Tokens each message costs beyond its text (role markers), as in chat templates."""
CONTEXT_LENGTH = 8192


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


@functools.lru_cache(maxsize=65536)
def _text_tokens(text: str) -> int:
    """Tokens in one message's text, counted once: a long session counts the same turns on every call."""
    return len(tokenize(text))


def detokenize(tokens: list[str]) -> str:
    out = ""
    for tok in tokens:
        word_after_word = (tok[0].isalnum() or tok[0] == "_") and not out.endswith(("(", "[", '"', "'", "/"))
        opening_bracket = tok in ("(", "[") and not out.endswith(" ")
        if out and (word_after_word or opening_bracket):
            out += " "
        out += tok
    return out


def _pieces(text: str) -> list[str]:
    """`text` cut at its token boundaries, each piece with the spacing before its token: they add up to `text`."""
    cuts = [m.end() for m in _TOKEN.finditer(text)][:-1]
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True) if b > a]


@dataclass(frozen=True)
class ScriptInput:
    """What a script sees: the prompt, the role it plays, its seed and the JSON schema asked for."""

    messages: tuple[ChatMessage, ...]
    role: str
    seed: int
    json_schema: dict[str, object] | None = None

    @property
    def turn(self) -> int:
        """How many replies this model has already given in the conversation."""
        return sum(1 for m in self.messages if m.role == "assistant")

    @property
    def last_user(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def stage_note(self) -> str:
        """The session's latest note to the interviewer (stage and time left), if any."""
        system = [m.content for m in self.messages[1:] if m.role == "system"]
        return system[-1] if system else ""

    def pick(self, options: list[str], salt: str = "") -> str:
        digest = hashlib.sha256(f"{self.seed}|{self.turn}|{salt}|{self.last_user}".encode()).digest()
        return options[digest[0] % len(options)]


Script = Callable[[ScriptInput], str]
SCRIPTS: dict[str, Script] = {}


def script(name: str) -> Callable[[Script], Script]:
    """Register a script under `scripted:<name>`."""

    def register(fn: Script) -> Script:
        SCRIPTS[name] = fn
        return fn

    return register


_STAGE_NOTE = re.compile(
    r"Your next turn \((?:step \d+ of \d+|the last)\): (?P<instruction>.*?)"
    r'(?: Say that (?P<left>[\d.]+) minutes are left\.| End it with the words "(?P<marker>[^"]+)"\.)'
)


_FENCED = re.compile(r"```.*?(?:```|$)", re.S)


def interviewer_reply(inp: ScriptInput) -> str:
    """Follow the session's stage note: acknowledge the answer, do what the stage says, say the time left."""
    note = _STAGE_NOTE.search(inp.stage_note)
    # What a person would repeat back: the words, not a whiteboard block's markup.
    heard = " ".join(_FENCED.sub(" ", inp.last_user).split()[:8])
    ack = f'You said: "{heard}". ' if heard else ""
    if note is None:
        return f"{ack}Please go on."
    if note["marker"]:
        return f"{ack}Thank you, that is all the time we have. {note['marker']}"
    return f"{ack}{note['instruction']} You have {note['left']} minutes left."


_DEFAULT_ANSWERS = [
    "I would start by measuring where the load goes, then scale the stateless tier horizontally behind a load balancer.",
    "I would put a cache in front of the hottest reads and move slow work onto a queue so requests return quickly.",
    "I would split the data by customer so each shard stays small, and add read replicas for reporting.",
    "I would add timeouts, retries with backoff and circuit breakers so one slow dependency cannot take the system down.",
    "I would set service-level objectives, dashboards and alerts first, so we know when the changes help.",
]


_TO_FILL = re.compile(r"Sections still to fill: (?P<titles>[^\n]*?)\.\n")
_BOARD_TEXT = {  # the first key found in the section's title picks its text
    "use case": "First use case: draft replies to password and billing tickets; an agent reviews every draft before it is sent.",
    "data flow": "Ticket -> redact customer data -> retrieve help articles -> model drafts a reply -> agent reviews"
    " -> helpdesk REST API. Prompts and drafts are encrypted and kept in an audit log.",
    "risk": "Risks: leaked customer data, wrong answers. Governance: an owner per prompt, approvals for changes,"
    " retention of 90 days and a monthly compliance report.",
    "rollout": "Pilot with 20 agents for a month, measure handling time and accuracy, then roll out team by team"
    " behind a feature flag.",
    "requirement": "Functional: create, read and list orders per tenant. Non-functional: p99 latency under 200 ms,"
    " tenfold peak traffic at quarter end, encrypted data and audit logs.",
    "api": "POST /v1/orders -> 201 {id}; GET /v1/orders/{id}; GET /v1/orders?tenant=&cursor= (paginated)."
    " OAuth tokens with per-tenant authorization on every call.",
    "data": "orders(id, tenant_id, status, total, created_at) partitioned by tenant_id; index on (tenant_id,"
    " created_at); an append-only audit_log table.",
    "scal": "Stateless API tier scaled horizontally behind a load balancer; read replicas and a cache for hot reads;"
    " slow exports on a queue processed in batches; shard by tenant when one node is not enough.",
}


_AVERAGE_BOARD_TEXT = {
    "use case": "Answer common support tickets with the assistant.",
    "data flow": "Tickets go to the model and the answers go back to the helpdesk.",
    "risk": "The model could be wrong, so someone should check it.",
    "rollout": "Try it with a few agents first.",
    "requirement": "Orders per tenant, fast enough at quarter end.",
    "api": "REST endpoints for creating and reading orders.",
    "data": "An orders table with a tenant column.",
    "scal": "More servers behind a load balancer and a cache.",
}
_WEAK_BOARD_TEXT = {"": "Not sure yet, to be decided later."}


def board_block(inp: ScriptInput, texts: dict[str, str] | None = None) -> str:
    """The next section the session's whiteboard note asks for, as a fenced block ("" when none is asked for)."""
    wanted = _TO_FILL.search(inp.stage_note + "\n")
    if wanted is None:
        return ""
    title = wanted["titles"].split(", ")[0].strip()
    known = _BOARD_TEXT if texts is None else texts
    text = next((t for key, t in known.items() if key in title.lower()), f"Notes on {title.lower()}: to be agreed.")
    return f"\n\n```whiteboard\n## {title}\n{text}\n```"


def debrief_json(inp: ScriptInput) -> str:
    """A panelist's debrief: the verdict follows how many board sections the candidate filled."""
    import json

    prompt = next((m.content for m in reversed(inp.messages) if m.role == "user"), "")
    filled = sum(1 for line in prompt.splitlines() if line.startswith("## "))
    verdict = "hire" if filled >= 4 else "lean hire" if filled >= 2 else "lean no" if filled == 1 else "no"
    return json.dumps({"verdict": verdict, "reason": f"The whiteboard has {filled} section(s) filled in."})


@script("default")
def default_script(inp: ScriptInput) -> str:
    """Interviewer: follows the stage notes. Candidate: a plausible engineering answer picked by seed and turn,
    plus the next whiteboard section the session asks for."""
    if inp.json_schema is not None and "verdict" in inp.json_schema.get("properties", {}):  # type: ignore[operator]
        return debrief_json(inp)
    if inp.role == "interviewer":
        return interviewer_reply(inp)
    return inp.pick(_DEFAULT_ANSWERS) + board_block(inp)


_REASONING = (
    "The interviewer asked about {topic}. I should name the components first, then the trade-offs, and keep"
    " the answer short because the time is limited. Security, integration and measurement matter too."
)


@script("thinker")
def thinker_script(inp: ScriptInput) -> str:
    """A thinking model that writes its reasoning into the text, as GGUF reasoning models do under llama.cpp:
    `<think>reasoning</think>` then the default script's answer. A small max_tokens is spent on thinking alone."""
    topic = " ".join(inp.last_user.split()[:12]) or "the problem"
    return f"<think>{_REASONING.format(topic=topic)}</think>\n{default_script(inp)}"


# ---------------------------------------------------------------------------------------------- controls
# Candidates of known quality for the scalability rubric, and a judge whose rule anyone can check by hand.

_STRONG_ANSWERS = [
    "I would scale the stateless API tier horizontally behind a load balancer and partition tenant data by tenant id, so"
    " no shard outgrows its capacity plan. Slow exports go onto a queue and are processed in batches. Every request"
    " carries OAuth authentication and per-tenant authorization, traffic and disks are encrypted, and secrets live in a"
    " vault. I keep the existing REST API and data formats, so current integrations need no migration.",
    "First I profile the database to find the hot queries, then add the missing indexes and a read-through cache for"
    " report queries with a latency budget of 200 ms. Writes go through a queue and are applied in batches, so bursts"
    " cannot starve the reports. Partitioning the ledger by tenant and month keeps every index small.",
    "Tenants are isolated by authorization checks in the service layer and row-level security in the database. The"
    " secrets manager rotates keys, every admin action lands in an append-only audit log, and backups are encrypted.",
    "Schema and scaling changes need an approval from the owning team. Retention policies keep audit logs for seven"
    " years, and a monthly compliance report goes to the risk committee.",
    "Thank you. I would add load tests that replay quarter-end traffic, and publish an API compatibility policy so"
    " integrators know which changes are safe.",
]
_AVERAGE_ANSWERS = [
    "I would add more servers behind a load balancer and put a cache in front of the database. We should keep the"
    " current API so clients still work.",
    "I would add indexes to the slow queries and move the reports to a separate replica. Writes could go to a queue.",
    "We would use HTTPS and authentication for every user.",
    "Someone should own the database and approve big changes.",
    "Thanks, I would test more before quarter end.",
]
_WEAK_ANSWERS = [
    "Um, I would probably just buy bigger servers. It should be fine after that.",
    "Maybe add a cache, I guess. Or ask users to wait a bit.",
    "I am not sure about that part, we can look at it later.",
    "Someone else usually handles that sort of thing.",
    "Okay, thanks.",
]


def _answer(answers: list[str], inp: ScriptInput, board: dict[str, str]) -> str:
    if inp.json_schema is not None and "verdict" in inp.json_schema.get("properties", {}):  # type: ignore[operator]
        return debrief_json(inp)
    if inp.role == "interviewer":
        return interviewer_reply(inp)
    return answers[inp.turn % len(answers)] + board_block(inp, board)


@script("strong")
def strong_script(inp: ScriptInput) -> str:
    """Candidate control: concrete answers covering all five scalability criteria (interviewer: follows the stage notes)."""
    return _answer(_STRONG_ANSWERS, inp, _BOARD_TEXT)


@script("average")
def average_script(inp: ScriptInput) -> str:
    """Candidate control: plausible but thin answers touching a few criteria (interviewer: follows the stage notes)."""
    return _answer(_AVERAGE_ANSWERS, inp, _AVERAGE_BOARD_TEXT)


@script("weak")
def weak_script(inp: ScriptInput) -> str:
    """Candidate control: vague answers that address almost nothing (interviewer: follows the stage notes)."""
    return _answer(_WEAK_ANSWERS, inp, _WEAK_BOARD_TEXT)


_BLOCK = re.compile(r'<transcript(?: id="(?P<id>\w+)")?>\n(?P<body>.*?)\n</transcript>', re.S)
_TURN = re.compile(r'<turn n="\d+" role="(?P<role>[^"]*)">\n(?P<text>.*?)\n</turn>', re.S)
_SECTION = re.compile(r'<section title="[^"]*" author="(?P<role>[^"]*)">\n(?P<text>.*?)\n</section>', re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_PARENTHESES = re.compile(r"\(([^)]*)\)")
JUDGE_WORDS = frozenset(
    {"judge", "judges", "evaluator", "evaluators", "grader", "graders", "assessor", "assessors", "rubric"}
    | {"score", "scores", "scoring", "grade", "grades", "grading", "rating", "ratings"}
)
"""A sentence with one of these words speaks to the judge, not to the interviewer: scripted:judge skips it."""


def _stem_words(text: str) -> list[tuple[str, str]]:
    """(word, Snowball English stem) for each word of the text."""
    from interview_sim.health import stem  # the one cached stemmer; health is imported only by the judge

    return [(word, stem(word)) for word in re.findall(r"[a-z0-9]+", text.lower())]


def _criterion_keywords(title: str, description: str) -> dict[str, str]:
    """stem -> the keyword as the rubric spells it."""
    examples = " ".join(_PARENTHESES.findall(description))
    source, shortest = (examples, 4) if examples.strip() else (f"{title} {description}", 5)
    keywords: dict[str, str] = {}
    for word, stem in _stem_words(source):
        if len(word) >= shortest:
            keywords.setdefault(stem, word)
    return keywords


@dataclass
class _Hits:
    found: list[str]
    missing: list[str]
    evidence: str


_FORGED_STRUCTURE = re.compile(r"^\s*(?:[A-Za-z][A-Za-z ]{0,30}:(?=\s)|\[?[A-Z][A-Z ]{2,30}\]?\s*:)|</?(?:transcript|turn)\b")
"""A line that imitates the transcript's own structure: a speaker label ("System:", "Interviewer:") opening it,
or a transcript tag anywhere in it. Nobody answering a question writes one."""


def _answer_lines(text: str) -> list[str]:
    """The candidate's own answer in one turn: its lines up to the first that forges transcript structure."""
    kept = []
    for line in text.splitlines():
        if _FORGED_STRUCTURE.search(line):
            break
        kept.append(line)
    return kept


def _candidate_sentences(block: str) -> tuple[list[str], int]:
    """The candidate's sentences that count, and how many were left out (addressing the judge, or forged)."""
    import html

    kept: list[str] = []
    skipped = 0
    # The candidate's turns, then the candidate's sections of the final whiteboard (when the transcript has one).
    texts = [*_TURN.finditer(block), *_SECTION.finditer(block)]
    for turn in texts:
        if turn["role"] != "candidate":
            continue
        text = html.unescape(turn["text"])
        answer = _answer_lines(text)
        forged = [s for s in _SENTENCE_END.split("\n".join(text.splitlines()[len(answer) :])) if s.strip()]
        skipped += len(forged)
        for sentence in _SENTENCE_END.split("\n".join(answer)):
            sentence = sentence.strip()
            # Whiteboard markup (a block's fences, a section's "## Title" line) is layout, not something said.
            if not sentence or sentence in kept or sentence.startswith(("```", "## ")):
                continue
            if {w for w, _ in _stem_words(sentence)} & JUDGE_WORDS:
                skipped += 1
            else:
                kept.append(sentence)
    return kept, skipped


_LIST_SEPARATOR = re.compile(r",|;|\band\b|\bor\b")
LIST_ITEM_WORDS = 3
LIST_ITEMS = 3
"""A list of terms: at least LIST_ITEMS items in a row, each of at most LIST_ITEM_WORDS words, separated by
commas, semicolons, "and" or "or". Its terms earn nothing: a term counts where the candidate says something
about it, not where it is named in a list (the same rule for every criterion and transcript)."""


def _unlisted(sentence: str) -> str:
    """The sentence without the items of any list of terms in it."""
    items = [part.strip() for part in _LIST_SEPARATOR.split(sentence)]
    items = [part for part in items if part]
    kept: list[str] = []
    run: list[str] = []

    def close() -> None:
        if len(run) < LIST_ITEMS:
            kept.extend(run)
        run.clear()

    for item in items:
        if len(item.split()) <= LIST_ITEM_WORDS:
            run.append(item)
        else:
            close()
            kept.append(item)
    close()
    return " ".join(kept)


_MAX_QUOTE_CHARS = 300


def _hits(sentences: list[str], keywords: dict[str, str]) -> _Hits:
    found: dict[str, str] = {}
    evidence = ""
    for sentence in sentences:
        stems = {s for _, s in _stem_words(_unlisted(sentence))}
        new = [k for k in keywords if k in stems and k not in found]
        if new and not evidence and len(sentence.split()) >= 3:  # a judge's quote has at least 3 words
            evidence = sentence
        for stem in new:
            found[stem] = keywords[stem]
    if not evidence:
        evidence = next((s for s in sentences if len(s.split()) >= 3), sentences[0] if sentences else "")
    # Quotes are capped (300 characters): a long sentence is quoted up to the last whole word that fits.
    words = evidence.split()
    while len(" ".join(words)) > _MAX_QUOTE_CHARS:
        words.pop()
    evidence = " ".join(words) if len(words) < len(evidence.split()) else evidence
    return _Hits(list(found.values()), [w for s, w in keywords.items() if s not in found], evidence)


def _any_quote(block: str) -> str:
    """A verbatim candidate sentence to cite when none counts (every one was left out): the evidence of a
    lowest score must still be something the candidate said."""
    import html

    for turn in _TURN.finditer(block):
        if turn["role"] != "candidate":
            continue
        for sentence in _SENTENCE_END.split(html.unescape(turn["text"])):
            words = sentence.split()
            if len(words) >= 3 and '"' not in sentence and "\\" not in sentence:
                while len(" ".join(words)) > _MAX_QUOTE_CHARS:
                    words.pop()
                return " ".join(words)
    return ""


def _criterion_json(schema: dict[str, object], block: str) -> str:
    """A criterion-wise request: the schema is one criterion's answer, titled and described with it."""
    import json

    score_spec: dict[str, int] = schema["properties"]["score"]  # type: ignore[index]
    lo, hi = int(score_spec["minimum"]), int(score_spec["maximum"])
    sentences, _ = _candidate_sentences(block)
    hits = _hits(sentences, _criterion_keywords(str(schema.get("title", "")), str(schema.get("description", ""))))
    score = min(hi, lo + len(hits.found))
    rationale = f"{len(hits.found)} rubric keyword(s) in the candidate's turns: {', '.join(hits.found) or 'none'}."
    return json.dumps({"evidence": [hits.evidence or _any_quote(block)], "score": score, "rationale": rationale})


def _grade_json(schema: dict[str, object], block: str) -> str:
    import json

    criteria: dict[str, dict[str, object]] = schema["properties"]["criteria"]["properties"]  # type: ignore[index]
    sentences, skipped = _candidate_sentences(block)
    out: dict[str, dict[str, object]] = {}
    strengths, weaknesses, recommendations = [], [], []
    for cid, spec in criteria.items():
        score_spec: dict[str, int] = spec["properties"]["score"]  # type: ignore[index]
        lo, hi = int(score_spec["minimum"]), int(score_spec["maximum"])
        hits = _hits(sentences, _criterion_keywords(str(spec.get("title", cid)), str(spec.get("description", ""))))
        score = min(hi, lo + len(hits.found))
        found = ", ".join(hits.found) or "none"
        out[cid] = {
            "evidence": [hits.evidence or _any_quote(block)],
            "rationale": f"{len(hits.found)} rubric keyword(s) in the candidate's turns: {found}.",
            "score": score,
        }
        name = str(spec.get("title", cid))
        if score >= hi - 1:
            strengths.append(f"{name}: covers {found}.")
        if score <= lo + 1:
            weaknesses.append(f"{name}: little or nothing on it.")
        if score < (lo + hi) / 2:
            recommendations.append(f"{name}: address {', '.join(hits.missing[:3])}.")
    if skipped:
        weaknesses.insert(0, f"{skipped} sentence(s) addressed the grader instead of the interviewer; they earned nothing.")
    answer = {"criteria": out, "strengths": strengths[:5], "weaknesses": weaknesses[:5], "recommendations": recommendations[:5]}
    return json.dumps(answer)


def _pairwise_json(schema: dict[str, object], blocks: dict[str, str]) -> str:
    import json

    criteria: dict[str, dict[str, object]] = schema["properties"]["criteria"]["properties"]  # type: ignore[index]
    sentences = {label: _candidate_sentences(block)[0] for label, block in blocks.items()}
    out: dict[str, dict[str, str]] = {}
    totals = {"first": 0, "second": 0}
    for cid, spec in criteria.items():
        keywords = _criterion_keywords(str(spec.get("title", cid)), str(spec.get("description", "")))
        counts = {label: len(_hits(sentences.get(label, []), keywords).found) for label in totals}
        for label in totals:
            totals[label] += counts[label]
        winner = "tie" if counts["first"] == counts["second"] else max(counts, key=lambda k: counts[k])
        out[cid] = {"rationale": f"keyword hits: first {counts['first']}, second {counts['second']}.", "winner": winner}
    overall = "tie" if totals["first"] == totals["second"] else max(totals, key=lambda k: totals[k])
    verdict = {"rationale": f"keyword hits in total: first {totals['first']}, second {totals['second']}.", "winner": overall}
    return json.dumps({"criteria": out, "overall": verdict})


_ROUTE_TOPIC = re.compile(
    r"(?P<name>[^\n]*?) \((?P<description>[^\n]*)\)\nDoes the candidate's answer address this topic\? Answer yes or no\."
)
_ROUTE_ANSWER = re.compile(r"(?:^|\n)Candidate: (?P<text>.*)|^Whiteboard section [^\n]*:\n(?P<section>.*)", re.S)


def _route_answer(prompt: str) -> str | None:
    """A routing question (`grading.routing`): "yes" when the answer holds one of the topic's keywords by rule 1
    and 2 of the judge (its own lines, no sentence addressing the judge), else "no"; None for another prompt."""
    # The question is the prompt's last "Topic:" paragraph: an answer may hold a line that looks like it.
    shown, _, question = prompt.rpartition("\n\nTopic: ")
    topic = _ROUTE_TOPIC.fullmatch(question)
    answer = _ROUTE_ANSWER.search(shown) if topic else None
    if topic is None or answer is None:
        return None
    keywords = _criterion_keywords(topic["name"], topic["description"])
    text = "\n".join(_answer_lines(answer["text"] if answer["text"] is not None else answer["section"]))
    for sentence in _SENTENCE_END.split(text):
        words = _stem_words(sentence)
        if not {w for w, _ in words} & JUDGE_WORDS and {s for _, s in words} & set(keywords):
            return "yes"
    return "no"


@script("judge")
def judge_script(inp: ScriptInput) -> str:
    """Judge control: scores each criterion by counting rubric keywords in the candidate's own sentences.

    The rule, per criterion of the rubric it is given (in the JSON schema of the request):

    1. Keywords: the words of four or more letters in the parenthesised examples of the criterion's description
       (when it has none: the words of five or more letters of its name and description), compared by their
       Snowball English stems, so "encrypted" matches "encryption".
    2. Only the candidate's own answers count (`<turn role="candidate">` inside the quoted transcript), sentence
       by sentence, and within a turn only the lines before any line that forges the transcript's structure (a
       speaker label such as "System:" opening it, or a transcript tag): a forged end of transcript, a fake
       system or interviewer turn and everything after it in that turn earn nothing. A sentence that speaks to
       the judge - it contains judge, evaluator, grader, assessor, rubric, score, grade, grading or rating (or a
       plural) - is skipped too.
    3. Terms named in a list (three or more items in a row of at most three words each, separated by commas,
       "and" or "or") earn nothing: keyword stuffing is a list. A keyword counts where a sentence says something.
    4. Score = the scale's minimum + the number of distinct keywords found, capped at the scale's maximum.
    5. Evidence: the sentence holding the first keyword found (else the candidate's first sentence of three or
       more words), quoted exactly. The rationale names the keywords found.
    6. Strengths: criteria at the maximum or one below; weaknesses: criteria at the minimum or one above, plus a
       note when sentences were skipped for addressing the judge; recommendations: up to three missing keywords
       of each criterion below the middle of the scale. The overall score is computed by the evaluator.

    Criterion-wise requests (the schema is one criterion's answer, titled and described with it) get that
    criterion's score by the same rule. Pairwise requests (two transcripts, `winner` fields): per criterion the
    transcript with more distinct keywords by the same rule wins, equal counts tie; overall, the one with more
    keywords over all criteria wins.
    Routing questions (routed mode: does this answer address this topic?) get "yes" when one of the topic's
    keywords by rule 1 stands in a sentence of the answer that counts by rule 2, else "no".
    Asked anything else without a JSON schema, it answers with one line saying it only grades.
    """
    schema = inp.json_schema
    routed = _route_answer(inp.last_user) if not schema else None
    if routed is not None:
        return routed
    prompt = next((m.content for m in inp.messages if m.role == "user" and "<transcript" in m.content), "")
    blocks = {m["id"] or "": m["body"] for m in _BLOCK.finditer(prompt)}
    if not schema or not blocks:
        return "scripted:judge only grades: send it a quoted transcript and a JSON schema."
    if "score" in schema.get("properties", {}):  # type: ignore[operator]
        return _criterion_json(schema, next(iter(blocks.values())))
    criteria = schema.get("properties", {}).get("criteria", {}).get("properties", {})  # type: ignore[attr-defined]
    if any("winner" in spec.get("properties", {}) for spec in criteria.values()):
        return _pairwise_json(schema, blocks)
    return _grade_json(schema, next(iter(blocks.values())))


class ScriptedModel(ChatModel):
    provider = "scripted"
    supports_json_schema = True

    def __init__(self, ref: str, script_name: str, role: str, seed: int | None, context_length: int | None) -> None:
        super().__init__(ref=ref, name=f"scripted-{script_name}", context_length=context_length or CONTEXT_LENGTH)
        self._script = SCRIPTS[script_name]
        self._role = role
        self._seed = seed if seed is not None else 0
        self.calls = 0

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        return sum(_text_tokens(m.content) + MESSAGE_OVERHEAD for m in messages)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        seed = request.seed if request.seed is not None else self._seed
        text = self._script(ScriptInput(request.messages, self._role, seed, request.json_schema))
        tokens = tokenize(text)
        finish = "stop"
        if len(tokens) > request.max_tokens:
            tokens, finish = tokens[: request.max_tokens], "length"
            text = detokenize(tokens)
        if request.on_text is not None:
            for piece in _pieces(text):
                request.on_text(piece)
        return Completion(
            content=text,
            model=self.name,
            prompt_tokens=self.count_tokens(request.messages),
            completion_tokens=len(tokens),
            latency_s=0.0,
            generation_s=0.0,
            finish_reason=finish,
        )


def create(name: str, ref: str, options: object) -> ScriptedModel:
    from interview_sim.models import ModelOptions

    assert isinstance(options, ModelOptions)
    if name not in SCRIPTS:
        raise ModelNotFoundError(f"unknown scripted model {ref!r} (known: {', '.join('scripted:' + s for s in sorted(SCRIPTS))})")
    return ScriptedModel(ref, name, options.role, options.seed, options.context_length)


def available() -> list[ModelInfo]:
    return [
        ModelInfo(ref=f"scripted:{name}", provider="scripted", ready=True, detail=(fn.__doc__ or "").strip().splitlines()[0])
        for name, fn in sorted(SCRIPTS.items())
    ]
