"""Our runs in the user's AutoGen 0.2 forms: a `ChatResult` dict (JSON) or the Markdown export with its trailer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from interview_sim.autogen02.formats import ANALYSIS_ROLES
from interview_sim.errors import ImportFormatError
from interview_sim.record import Transcript, load_transcript

ExportFormat = Literal["autogen02-json", "autogen02-markdown"]
EXPORT_FORMATS: tuple[str, ...] = ("autogen02-json", "autogen02-markdown")


def _autogen_role(transcript: Transcript, role: str) -> str:
    known = transcript.imported.autogen_roles if transcript.imported else {}
    # The chat's initiator (our interviewer, or the lead analyst) is AutoGen's "assistant" in its own ChatResult.
    return known.get(role) or ("assistant" if role in ("interviewer", ANALYSIS_ROLES[0]) else "user")


def to_chat_result(transcript: Transcript) -> dict[str, Any]:
    """A run as an AutoGen 0.2 ChatResult dict: chat_id, chat_history, summary, cost, human_input."""
    info = transcript.imported
    last = transcript.messages[-1].content if transcript.messages else ""
    return {
        "chat_id": info.chat_id if info else None,
        "chat_history": [
            {"content": m.content, "role": _autogen_role(transcript, m.role), "name": m.agent} for m in transcript.messages
        ],
        "summary": info.summary if info and info.summary is not None else last,
        "cost": transcript.cost or transcript.usage.cost_block(),
        "human_input": list(info.human_input) if info else [],
    }


def to_markdown(transcript: Transcript) -> str:
    """A run as AutoGen 0.2's Markdown export: `**Assistant**: ...` turns, then the four-line trailer."""
    result = to_chat_result(transcript)
    parts = [f"**{h['role'].capitalize()}**: {h['content']}" for h in result["chat_history"]]
    parts += [
        f"**Chat_id**: {result['chat_id']}",
        f"**Cost**: {result['cost']!r}",
        f"**Human_input**: {result['human_input']!r}",
        f"**Summary**: {result['summary']}",
    ]
    return "".join(f"{part}\n\n" for part in parts)


def export_run(run: str | Path, fmt: ExportFormat) -> str:
    """A run (folder or transcript path, including an attached analysis record) in an AutoGen 0.2 form.

    Raises:
        RecordError: the run cannot be read.
        ImportFormatError: unknown format.
    """
    if fmt not in EXPORT_FORMATS:
        raise ImportFormatError(f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    transcript = load_transcript(run)
    if fmt == "autogen02-json":
        return json.dumps(to_chat_result(transcript), indent=2, ensure_ascii=False) + "\n"
    return to_markdown(transcript)
