"""`scripted:<script>`: deterministic offline models for tests, examples and calibration.

A script is a function of the conversation (and the role the model plays) that returns the reply text.
Token counts are honest for this backend's own tokenizer: words and punctuation marks are one token
each, plus a fixed overhead per message, and `max_tokens` truncates the output like a real model.
"""

from __future__ import annotations

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


def detokenize(tokens: list[str]) -> str:
    out = ""
    for tok in tokens:
        word_after_word = (tok[0].isalnum() or tok[0] == "_") and not out.endswith(("(", "[", '"', "'", "/"))
        opening_bracket = tok in ("(", "[") and not out.endswith(" ")
        if out and (word_after_word or opening_bracket):
            out += " "
        out += tok
    return out


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


_STAGE_NOTE = re.compile(r"Stage \d+ of \d+ \((?P<kind>\w+)\): (?P<instruction>.*?) You have (?P<left>[\d.]+) minutes? left\.")
_END_MARKER = re.compile(r'write "(?P<marker>[^"]+)"')


def interviewer_reply(inp: ScriptInput) -> str:
    """Follow the session's stage note: acknowledge the answer, do what the stage says, say the time left."""
    note = _STAGE_NOTE.search(inp.stage_note)
    heard = " ".join(inp.last_user.split()[:8])
    ack = f'You said: "{heard}". ' if heard else ""
    if note is None:
        return f"{ack}Please go on."
    reply = f"{ack}{note['instruction']} You have {note['left']} minutes left."
    marker = _END_MARKER.search(inp.stage_note)
    if note["kind"] == "wrap_up" and marker:
        reply = f"{ack}Thank you, that is all the time we have. {marker['marker']}"
    return reply


_DEFAULT_ANSWERS = [
    "I would start by measuring where the load goes, then scale the stateless tier horizontally behind a load balancer.",
    "I would put a cache in front of the hottest reads and move slow work onto a queue so requests return quickly.",
    "I would split the data by customer so each shard stays small, and add read replicas for reporting.",
    "I would add timeouts, retries with backoff and circuit breakers so one slow dependency cannot take the system down.",
    "I would set service-level objectives, dashboards and alerts first, so we know when the changes help.",
]


@script("default")
def default_script(inp: ScriptInput) -> str:
    """Interviewer: follows the stage notes. Candidate: a plausible engineering answer picked by seed and turn."""
    if inp.role == "interviewer":
        return interviewer_reply(inp)
    return inp.pick(_DEFAULT_ANSWERS)


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
        return sum(len(tokenize(m.content)) + MESSAGE_OVERHEAD for m in messages)

    async def complete(self, request: CompletionRequest) -> Completion:
        self.calls += 1
        seed = request.seed if request.seed is not None else self._seed
        text = self._script(ScriptInput(request.messages, self._role, seed, request.json_schema))
        tokens = tokenize(text)
        finish = "stop"
        if len(tokens) > request.max_tokens:
            tokens, finish = tokens[: request.max_tokens], "length"
            text = detokenize(tokens)
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
