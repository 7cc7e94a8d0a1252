"""`fit_to_context`: the fewest turns that fit (as dropping them one at a time finds), rounded up to the end of
a block so the kept prompt's beginning stays stable (KV-cache reuse), with O(log n) exact counts."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from interview_sim.models import ChatMessage, ModelOptions, create_model
from interview_sim.models.base import DROP_BLOCKS_PER_WINDOW, ChatModel, fit_to_context
from interview_sim.models.scripted import ScriptedModel


class CountingModel(ScriptedModel):
    """A scripted model that counts how often the whole prompt is counted."""

    def __init__(self, context_length: int) -> None:
        super().__init__("scripted:default", "default", "candidate", 1, context_length)
        self.counts = 0

    def count_tokens(self, messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> int:
        self.counts += 1
        return super().count_tokens(messages)


def _one_at_a_time(model: ChatModel, messages: list[ChatMessage], max_tokens: int) -> int:
    """The drop count of the previous implementation: drop the oldest middle turn until the prompt fits."""
    budget = model.context_length - max_tokens
    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    head = min(head + 1, len(messages))
    tail_start = max(head, len(messages) - 2)
    middle, dropped = messages[head:tail_start], 0
    while model.count_tokens(messages[:head] + middle + messages[tail_start:]) > budget and middle:
        middle, dropped = middle[1:], dropped + 1
    return dropped


def _session(n: int, words: list[int]) -> list[ChatMessage]:
    messages = [ChatMessage("system", "You are an interviewer.")]
    for i in range(n):
        role = "user" if i % 2 == 0 else "assistant"
        messages.append(ChatMessage(role, " ".join(f"w{i}" for _ in range(words[i % len(words)]))))
    return messages


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 60),
    words=st.lists(st.integers(0, 80), min_size=1, max_size=12),
    context=st.integers(40, 1500),
    max_tokens=st.integers(1, 60),
)
def test_drops_the_fewest_turns_that_fit_rounded_up_to_a_block(n: int, words: list[int], context: int, max_tokens: int) -> None:
    model = create_model("scripted:default", ModelOptions(role="candidate", context_length=context))
    messages = _session(n, words)
    fitted = fit_to_context(model, messages, max_tokens)
    fewest = _one_at_a_time(model, messages, max_tokens)
    budget = context - max_tokens
    assert fitted.dropped >= fewest
    if fitted.dropped > fewest:  # the extra turns end a block, and they are less than a block's worth
        extra = messages[2 + fewest : 2 + fitted.dropped]
        assert sum(model.count_tokens([m]) for m in extra) < budget // DROP_BLOCKS_PER_WINDOW + max(
            model.count_tokens([m]) for m in extra
        )
    if fewest == 0:
        assert fitted.dropped == 0


def test_the_kept_prompt_begins_the_same_way_for_several_turns_as_a_session_grows() -> None:
    """What lets llama.cpp reuse its KV cache after trimming starts: the drop count moves in blocks."""
    model = create_model("scripted:default", ModelOptions(role="candidate", context_length=600))
    messages = _session(120, [30, 55, 12])
    fitted = [fit_to_context(model, messages[:n], 60) for n in range(10, 121)]
    fewest = [_one_at_a_time(model, messages[:n], 60) for n in range(10, 121)]
    for f in fitted:
        assert model.count_tokens(f.messages) <= 540
    changes = sum(a.dropped != b.dropped for a, b in itertools.pairwise(fitted))
    minimal_changes = sum(a != b for a, b in itertools.pairwise(fewest))
    assert minimal_changes > 60  # dropping the fewest turns changes the prompt's beginning nearly every turn
    assert changes <= minimal_changes // 2


def test_a_long_session_costs_a_logarithmic_number_of_exact_counts() -> None:
    for n, most in ((192, 14), (768, 16), (3072, 18)):
        model = CountingModel(context_length=2000)
        messages = _session(n, [30, 55, 12])
        fitted = fit_to_context(model, messages, 200)
        exact = model.counts - len(messages)  # one count per distinct message feeds the estimate
        assert fitted.dropped > 0 and model.count_tokens(fitted.messages) <= 1800
        assert exact <= most, (n, exact)
        # Counted again, the per-message counts are cached: only the exact counts remain.
        model.counts = 0
        fit_to_context(model, messages, 200)
        assert model.counts <= most
