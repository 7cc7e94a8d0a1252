"""Reading AutoGen 0.2 records: the ChatResult JSON, the Markdown export and the interview an analysis embeds.

Parsing only: what the file says, as plain data. `interview_sim.autogen02` turns it into runs. The
Markdown `**Cost**` / `**Human_input**` trailer and the embedded `Chat History` are Python literals, read
with `ast.literal_eval` only, which refuses names and calls: a file's text is never run.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from interview_sim.errors import ImportFormatError

_SECTION = re.compile(r"^\*\*(?P<key>Assistant|User|Chat_id|Cost|Human_input|Summary)\*\*: ?", re.M)
_TRAILER = ("Chat_id", "Cost", "Human_input", "Summary")
_EMBEDDED_SUMMARY = re.compile(r"\s*Summary:[ \t]?(?P<summary>.*?)[ \t]*\n\s*```", re.S)

ANALYSIS_ROLES = ("lead-analyst", "analyst")
"""The two seats of an analysis (review) chat: its initiator first."""


@dataclass
class Turn:
    speaker: str
    """Who spoke, as far as the file tells: a dict's name or role, "Assistant"/"User", or the position."""
    content: str
    name: str | None = None
    autogen_role: str | None = None


@dataclass
class Chat:
    format: Literal["autogen02-json", "autogen02-markdown"]
    turns: list[Turn]
    cost: dict[str, Any] | None
    chat_id: int | str | None = None
    summary: str | None = None
    human_input: list[Any] = field(default_factory=list)


class HistoryItem(BaseModel):
    model_config = ConfigDict(extra="allow")  # tool_calls, function_call...: not part of an interview

    content: str | None = None
    role: str
    name: str | None = None


class _ChatResult(BaseModel):
    model_config = ConfigDict(extra="allow")

    chat_id: int | str | None = None
    chat_history: list[HistoryItem | str]
    summary: str | None = None
    cost: dict[str, Any] | None = None
    human_input: list[Any] | None = None


class CostEntry(BaseModel):
    model_config = ConfigDict(extra="allow")

    cost: float = 0
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int | None = None


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{loc}: {first['msg']}"


def alternating(items: list[str]) -> list[Turn]:
    # Plain strings carry no speaker: the two agents of a chat alternate, the initiator first.
    return [Turn(speaker="first" if i % 2 == 0 else "second", content=text) for i, text in enumerate(items)]


def turns_from_history(history: list[HistoryItem | str]) -> list[Turn]:
    if all(isinstance(h, str) for h in history):
        return alternating([str(h) for h in history])
    if any(isinstance(h, str) for h in history):
        raise ImportFormatError("chat_history mixes plain strings and message dicts")
    turns = []
    for h in history:
        assert isinstance(h, HistoryItem)
        turns.append(Turn(speaker=h.name or h.role, content=h.content or "", name=h.name, autogen_role=h.role))
    return turns


def parse_json(text: str) -> Chat:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):
            raise ImportFormatError(f"truncated JSON: the file ends early (line {exc.lineno})") from None
        raise ImportFormatError(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise ImportFormatError(f"expected a ChatResult object, got a JSON {type(data).__name__}")
    try:
        result = _ChatResult.model_validate(data)
    except ValidationError as exc:
        raise ImportFormatError(f"not an AutoGen 0.2 ChatResult: {first_error(exc)}") from None
    return Chat(
        format="autogen02-json",
        turns=turns_from_history(result.chat_history),
        cost=result.cost,
        chat_id=result.chat_id,
        summary=result.summary,
        human_input=list(result.human_input or []),
    )


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except SyntaxError as exc:
        raise ImportFormatError(f"{what} is not a complete Python literal (truncated?): {exc.msg}") from None
    except (ValueError, TypeError, MemoryError, RecursionError):
        # literal_eval refuses names, calls and operators: whatever the text is, it is never run.
        raise ImportFormatError(f"{what} is not a plain Python literal (it holds names, calls or operators)") from None


def parse_markdown(text: str) -> Chat:
    sections = list(_SECTION.finditer(text))
    if not sections or text[: sections[0].start()].strip():
        raise ImportFormatError("not an AutoGen 0.2 record: no JSON object and no **Assistant**/**User** Markdown turns")
    turns: list[Turn] = []
    trailer: dict[str, str] = {}
    for n, match in enumerate(sections):
        end = sections[n + 1].start() if n + 1 < len(sections) else len(text)
        body = text[match.end() : end].rstrip("\n")
        key = match["key"]
        if key in _TRAILER:
            if key in trailer or list(trailer) != list(_TRAILER[: len(trailer)]) or key != _TRAILER[len(trailer)]:
                raise ImportFormatError(f"malformed trailer: **{key}** out of order (expected {', '.join(_TRAILER)})")
            trailer[key] = body
        else:
            if trailer:
                raise ImportFormatError(f"malformed: a **{key}** turn after the **{next(iter(trailer))}** trailer")
            turns.append(Turn(speaker=key, content=body, autogen_role=key.lower()))
    missing = [k for k in _TRAILER if k not in trailer]
    if missing:
        last = next(reversed(trailer), None)
        where = f"in **{last}**" if last else f"after turn {len(turns)}" if turns else "before any turn"
        raise ImportFormatError(f"truncated Markdown export: no **{missing[0]}** trailer (the file stops {where})")
    cost = _literal(trailer["Cost"], "**Cost**")
    if not isinstance(cost, dict):
        raise ImportFormatError(f"**Cost** must be a dict literal, got {type(cost).__name__}")
    human_input = _literal(trailer["Human_input"], "**Human_input**")
    if not isinstance(human_input, list):
        raise ImportFormatError(f"**Human_input** must be a list literal, got {type(human_input).__name__}")
    raw_id = trailer["Chat_id"].strip()
    chat_id: int | str | None = None if raw_id == "None" else int(raw_id) if raw_id.lstrip("-").isdigit() else raw_id
    if not turns:
        raise ImportFormatError("the export holds no turns: nothing to import")
    return Chat(
        format="autogen02-markdown",
        turns=turns,
        cost=cost,
        chat_id=chat_id,
        summary=trailer["Summary"],
        human_input=human_input,
    )


def embedded_history(text: str) -> tuple[list[Any], str | None]:
    """The interview an analysis export embeds: its `Chat History: [...]` literal and its `Summary:` line."""
    start = text.find("Chat History:")
    bracket = text.find("[", start) if start >= 0 else -1
    if bracket < 0:
        raise ImportFormatError("analysis export: the first turn names an interview but embeds no `Chat History: [...]`")
    # The literal ends at one of the closing brackets; a prefix ending inside a quoted string never parses,
    # so the first one that evaluates to a list is the whole history.
    end = bracket
    while (end := text.find("]", end + 1)) >= 0:
        try:
            value = ast.literal_eval(text[bracket : end + 1])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, list):
            summary = _EMBEDDED_SUMMARY.match(text, end + 1)
            return value, summary["summary"] if summary else None
    raise ImportFormatError("analysis export: the embedded Chat History is not a complete Python list literal (truncated?)")
