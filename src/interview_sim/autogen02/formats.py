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

from interview_sim.errors import ImportFormatError, field_path
from interview_sim.files import MAX_DEPTH, data_problem

_SECTION = re.compile(r"^\*\*(?P<key>Assistant|User|Chat_id|Cost|Human_input|Summary)\*\*: ?", re.M)
# The .txt form has no bold to tell a key from text: the pipeline wrote a blank line before each key.
_SECTION_PLAIN = re.compile(r"(?:\A|(?<=\n\n))(?P<key>Assistant|User|Chat_id|Cost|Human_input|Summary): ?")
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
    format: Literal["autogen02-json", "autogen02-markdown", "autogen02-text", "autogen02-analysis", "autogen02-embedded"]
    """The form it was read from; the last two are a history embedded in another file (no cost, id or input)."""
    turns: list[Turn]
    cost: dict[str, Any] | None
    chat_id: int | str | None = None
    summary: str | None = None
    human_input: list[Any] = field(default_factory=list)


class HistoryItem(BaseModel):
    # extra: tool_calls, function_call...: not part of an interview
    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    content: str | None = None
    role: str
    name: str | None = None


class _ChatResult(BaseModel):
    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    chat_id: int | str | None = None
    chat_history: list[HistoryItem | str]
    summary: str | None = None
    cost: dict[str, Any] | None = None
    human_input: list[Any] | None = None


class CostEntry(BaseModel):
    model_config = ConfigDict(extra="allow", ser_json_inf_nan="constants")

    cost: float = 0
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    total_tokens: int | None = None


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    loc = field_path(first["loc"])
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
    except RecursionError:
        raise ImportFormatError(f"JSON nested too deeply to read (more than {MAX_DEPTH} levels)") from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise ImportFormatError(f"not readable JSON ({exc.args[0].split(':')[0]})") from None
    problem = data_problem(data)
    if problem is not None:
        raise ImportFormatError(f"JSON {problem}")
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
        value = ast.literal_eval(text.strip())
        problem = data_problem(value)
        if problem is not None:
            raise ImportFormatError(f"{what} is {problem}" if problem.startswith("nested") else f"{what} {problem}")
        return value
    except SyntaxError as exc:
        raise ImportFormatError(f"{what} is not a complete Python literal (truncated?): {exc.msg}") from None
    except (ValueError, TypeError, MemoryError, RecursionError):
        # literal_eval refuses names, calls and operators: whatever the text is, it is never run.
        raise ImportFormatError(f"{what} is not a plain Python literal (it holds names, calls or operators)") from None


def _chat_id(raw: str) -> int | str | None:
    if raw == "None":
        return None
    if raw.lstrip("-").isascii() and raw.lstrip("-").isdigit():
        try:
            return int(raw)
        except ValueError:  # longer than Python converts (4300 digits): kept as the text it is
            return raw
    return raw


def _sections(text: str, plain: bool) -> list[re.Match[str]]:
    return list((_SECTION_PLAIN if plain else _SECTION).finditer(text))


def _trailer(sections: list[re.Match[str]]) -> tuple[int, list[re.Match[str]]] | None:
    """The trailer: the last `Chat_id` key followed, in order, by `Cost`, `Human_input` and `Summary` keys.

    Searching from the end lets a turn hold a line that looks like a trailer key (a model answering
    `**Summary**: ...`): only the final complete sequence is the trailer.
    """
    for start in range(len(sections) - 1, -1, -1):
        if sections[start]["key"] != "Chat_id":
            continue
        found, want = [sections[start]], 1
        for match in sections[start + 1 :]:
            if match["key"] == _TRAILER[want]:
                found.append(match)
                want += 1
                if want == len(_TRAILER):
                    return start, found
        break  # an earlier Chat_id would have this incomplete one inside its own trailer
    return None


def _truncation(sections: list[re.Match[str]], turns: int, bold: str) -> ImportFormatError:
    keys = [m["key"] for m in sections]
    last_id = len(keys) - 1 - keys[::-1].index("Chat_id") if "Chat_id" in keys else None
    if last_id is None:
        missing, where = "Chat_id", f"after turn {turns}" if turns else "before any turn"
    else:
        seen = [k for k in keys[last_id:] if k in _TRAILER]
        have: list[str] = []
        for key in seen:
            if len(have) < len(_TRAILER) and key == _TRAILER[len(have)]:
                have.append(key)
        missing, where = _TRAILER[len(have)], f"in {bold}{have[-1]}{bold}"
    return ImportFormatError(
        f"truncated {'Markdown' if bold else 'text'} export: no {bold}{missing}{bold} trailer (the file stops {where})"
    )


def parse_markdown(text: str, *, plain: bool = False) -> Chat:
    """Form (b): `**Assistant**: ...` turns and the trailer; with `plain`, the `.txt` form (`Assistant: ...`)."""
    bold = "" if plain else "**"
    sections = _sections(text, plain)
    if not sections or text[: sections[0].start()].strip() or sections[0]["key"] not in ("Assistant", "User"):
        raise ImportFormatError(f"not an AutoGen 0.2 record: no JSON object and no {bold}Assistant{bold}/{bold}User{bold} turns")
    found = _trailer(sections)
    turn_matches = [m for m in (sections[: found[0]] if found else sections) if m["key"] in ("Assistant", "User")]
    if found is None:
        raise _truncation(sections, len(turn_matches), bold)
    trailer_start, trailer_matches = found
    turns_end = sections[trailer_start].start()
    turns: list[Turn] = []
    for n, match in enumerate(turn_matches):
        end = turn_matches[n + 1].start() if n + 1 < len(turn_matches) else turns_end
        body = text[match.end() : end].rstrip("\n")
        turns.append(Turn(speaker=match["key"], content=body, autogen_role=match["key"].lower()))
    trailer: dict[str, str] = {}
    for n, match in enumerate(trailer_matches):
        end = trailer_matches[n + 1].start() if n + 1 < len(trailer_matches) else len(text)
        trailer[match["key"]] = text[match.end() : end].rstrip("\n")
    cost = _literal(trailer["Cost"], f"{bold}Cost{bold}")
    if not isinstance(cost, dict):
        raise ImportFormatError(f"{bold}Cost{bold} must be a dict literal, got {type(cost).__name__}")
    human_input = _literal(trailer["Human_input"], f"{bold}Human_input{bold}")
    if not isinstance(human_input, list):
        raise ImportFormatError(f"{bold}Human_input{bold} must be a list literal, got {type(human_input).__name__}")
    chat_id = _chat_id(trailer["Chat_id"].strip())
    if not turns:
        raise ImportFormatError("the export holds no turns: nothing to import")
    return Chat(
        format="autogen02-text" if plain else "autogen02-markdown",
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
            problem = data_problem(value)
            if problem is not None:
                verb = "is " if problem.startswith("nested") else ""
                raise ImportFormatError(f"analysis export: the embedded Chat History {verb}{problem}")
            summary = _EMBEDDED_SUMMARY.match(text, end + 1)
            return value, summary["summary"] if summary else None
    raise ImportFormatError("analysis export: the embedded Chat History is not a complete Python list literal (truncated?)")
