"""`CompletionRequest.on_text`: streamed pieces for a terminal, never a different result."""

from __future__ import annotations

from pathlib import Path

import pytest

from interview_sim.models import ChatMessage, CompletionRequest, ModelOptions, create_model
from interview_sim.models.cache import cached_factory
from interview_sim.models.scripted import _pieces


@pytest.mark.parametrize("text", ["", "One.", "Use a cache (Redis), then shard: 3 ways!", "  leading and trailing  ", "x\n\ny"])
def test_scripted_pieces_add_up_to_the_text(text: str) -> None:
    assert "".join(_pieces(text)) == text


@pytest.mark.anyio
async def test_scripted_model_streams_token_pieces_and_returns_the_same_completion() -> None:
    model = create_model("scripted:strong", ModelOptions(role="candidate", seed=2))
    messages = (ChatMessage("system", "You are a candidate."), ChatMessage("user", "How would you scale a web API?"))
    plain = await model.complete(CompletionRequest(messages=messages, max_tokens=200))
    pieces: list[str] = []
    streamed = await model.complete(CompletionRequest(messages=messages, max_tokens=200, on_text=pieces.append))
    assert len(pieces) > 3 and "".join(pieces) == streamed.content
    assert streamed == plain


@pytest.mark.anyio
async def test_a_cache_hit_hands_over_the_whole_text_once(tmp_path: Path) -> None:
    build = cached_factory(lambda ref, options: create_model(ref, options), tmp_path)
    model = build("scripted:strong", ModelOptions(role="candidate", seed=2))
    messages = (ChatMessage("user", "How would you scale a web API?"),)
    first = await model.complete(CompletionRequest(messages=messages, max_tokens=200))
    pieces: list[str] = []
    hit = await model.complete(CompletionRequest(messages=messages, max_tokens=200, on_text=pieces.append))
    assert hit.cached and pieces == [first.content]
