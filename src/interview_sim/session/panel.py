"""A panel's wrap-up: each panelist's short structured debrief (hire / lean hire / lean no / no, and one reason).

Who speaks when is the session's script (`SessionState.next_interviewer_seat`) applied by the speaker selection
in `autogen_adapter`; this module asks each panelist, once the interview is over, for its verdict. The answer
is JSON (the schema is enforced by backends that can, like the grades); one that does not validate is recorded
with its error and no verdict - a verdict is never made up.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from interview_sim.config import LoadedScenario
from interview_sim.errors import ModelCallError
from interview_sim.models import ChatMessage, ChatModel, CompletionRequest
from interview_sim.models.base import fit_to_context
from interview_sim.models.thinking import separate_thinking
from interview_sim.record import PanelDebrief, Transcript, Verdict
from interview_sim.session.recorder import SessionRecorder
from interview_sim.session.state import SessionState

VERDICTS: tuple[str, ...] = get_args(Verdict)
MAX_REASON_CHARS = 240
DEBRIEF_MAX_TOKENS = 96
TURN_WORDS = 60
"""Each turn is shortened to this many words in the debrief prompt: the verdict needs the gist, not every word."""

DEBRIEF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": list(VERDICTS)},
        "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}


def debrief_messages(system_prompt: str, transcript: Transcript, board_view: str | None) -> list[ChatMessage]:
    turns = []
    for n, m in enumerate(transcript.messages, 1):
        words = m.content.split()
        text = " ".join(words[:TURN_WORDS]) + (" ..." if len(words) > TURN_WORDS else "")
        turns.append(f"[{n}] {m.agent} ({m.role}): {text}")
    system = (
        f"{system_prompt.strip()}\n\nThe interview is over. Give your debrief as one JSON object:"
        f' {{"verdict": one of {", ".join(VERDICTS)}, "reason": one sentence}}.'
    )
    user = "The interview:\n" + "\n".join(turns)
    if board_view:
        user += f"\n\n{board_view}"
    user += "\n\nYour debrief, as the JSON object only:"
    return [ChatMessage("system", system), ChatMessage("user", user)]


def parse_debrief(raw: str) -> tuple[str, str]:
    """(verdict, reason) from a panelist's answer. Raises ValueError saying what is wrong."""
    try:
        data = json.loads(raw.strip(), strict=False)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    verdict, reason = data.get("verdict"), data.get("reason")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise ValueError("reason must be a non-empty string")
    return str(verdict), reason.strip()[:MAX_REASON_CHARS]


async def debrief_panel(
    loaded: LoadedScenario,
    models: dict[str, ChatModel],
    transcript: Transcript,
    state: SessionState,
    recorder: SessionRecorder,
    seed: int | None,
) -> list[PanelDebrief]:
    """Ask every panelist, in the panel's order, for its debrief; each call is recorded (purpose `debrief`)."""
    debriefs = []
    for seat, agent in loaded.panel.items():
        model = models[seat]
        board = state.board_note(model)
        fitted = fit_to_context(model, debrief_messages(agent.system_prompt, transcript, board), DEBRIEF_MAX_TOKENS)
        request = CompletionRequest(
            messages=tuple(fitted.messages),
            max_tokens=fitted.max_tokens,
            temperature=agent.temperature,
            seed=seed if seed is not None else agent.seed,
            repeat_penalty=agent.repeat_penalty,
            json_schema=DEBRIEF_SCHEMA if model.supports_json_schema else None,
            think=agent.think,
        )
        try:
            completion = separate_thinking(await model.complete(request))
        except ModelCallError as exc:
            recorder.failure("interviewer", agent, model, exc)
            debriefs.append(PanelDebrief(seat=seat, agent=agent.name, verdict=None, error=str(exc)))
            continue
        call = recorder.call("interviewer", agent, model, completion, fitted.dropped, seat=seat, purpose="debrief")
        try:
            verdict, reason = parse_debrief(completion.content)
        except ValueError as exc:
            debriefs.append(
                PanelDebrief(
                    seat=seat, agent=agent.name, verdict=None, raw=completion.content, call_index=call.index, error=str(exc)
                )
            )
            continue
        debriefs.append(
            PanelDebrief(
                seat=seat,
                agent=agent.name,
                verdict=verdict,
                reason=reason,
                raw=completion.content,
                call_index=call.index,
            )
        )
    return debriefs
