"""Thinking models: the `think` setting, reasoning kept apart from the answer, and no silent empty turns.

Thinking-capable models (deepseek-r1, qwen3, gpt-oss, ...) write a reasoning trace before their answer.
Ollama returns it in `message.thinking` and turns thinking ON by default for such models when a request
has no `think` field; GGUF models run through llama.cpp write it into the text between `<think>` and
`</think>`. Either way the trace is kept apart (`Completion.thinking`) and the transcript's message holds
the answer only.

A reasoning trace counts against the turn's token cap (Ollama counts it in `eval_count`), so a small cap
can be spent on thinking alone and the answer comes back empty. `describe_empty_answer` names the likely
cause and the fix; the session retries an empty answer once and then stops with that line.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from interview_sim.models.base import Completion

ThinkLevel = Literal["low", "medium", "high"]
ThinkSetting = bool | ThinkLevel
"""`think` in an agent file: true / false, or a level for models that take one (gpt-oss)."""
THINK_LEVELS: tuple[str, ...] = ("low", "medium", "high")

_THINK_BLOCK = re.compile(r"^\s*<\s*think\s*>(?P<thinking>.*?)(?:<\s*/\s*think\s*>|\Z)\s*", re.S)


def parse_think(value: str) -> ThinkSetting:
    """A `--think` value: on/true/yes, off/false/no, or a level. Raises ValueError on anything else."""
    text = value.strip().lower()
    if text in ("on", "true", "yes"):
        return True
    if text in ("off", "false", "no"):
        return False
    if text in THINK_LEVELS:
        return text  # type: ignore[return-value]
    raise ValueError(f"{value!r} is not a think setting (on, off, low, medium or high)")


def split_thinking(text: str) -> tuple[str | None, str]:
    """(reasoning, answer) of a text that may open with a `<think>...</think>` block; (None, text) otherwise.

    An unclosed block (the cap was hit while thinking) is all reasoning and no answer.
    """
    match = _THINK_BLOCK.match(text)
    if match is None:
        return None, text
    return match["thinking"].strip(), text[match.end() :]


def separate_thinking(completion: Completion) -> Completion:
    """The completion with any `<think>` block of its text moved into `thinking` (once; idempotent)."""
    thinking, answer = split_thinking(completion.content)
    if thinking is None:
        return completion
    joined = "\n\n".join(t for t in (completion.thinking, thinking) if t)
    return dataclasses.replace(completion, content=answer, thinking=joined)


def is_empty_answer(completion: Completion) -> bool:
    return not completion.content.strip()


def describe_empty_answer(ref: str, completion: Completion, max_tokens: int) -> str:
    """One line: which model gave an empty answer, the likely cause and the fix."""
    if completion.thinking and completion.finish_reason == "length":
        return (
            f"{ref} spent its {max_tokens}-token budget thinking and wrote no answer: "
            "set think: false in its agent file (or --think off), or raise max_tokens"
        )
    if completion.thinking:
        return f"{ref} wrote only reasoning and no answer: set think: false in its agent file (or --think off)"
    if completion.finish_reason == "length":
        return f"{ref} hit its {max_tokens}-token cap before writing any answer: raise max_tokens in its agent file"
    return f"{ref} returned an empty answer twice (finish reason {completion.finish_reason!r}): try another seed or model"
