"""Greedy decoding under a grammar that consults the grammar only when it has to.

llama-cpp-python's sampler chain applies the grammar to every token of the vocabulary at every step (151,936
for Qwen2.5), then takes the most likely token left. For a JSON grade that was 11 % of a grading's wall time
(py-spy, `benchmarks/bench_grading.py`), and constrained generation ran at 0.61x the speed of free generation.
llama.cpp's own `common_sampler` does it the other way round, and so does this: take the most likely token
first, ask the grammar about that one token, and only when the grammar rejects it apply the grammar to the
whole vocabulary and take the most likely token it allows. Under greedy decoding both give the same token:
if the most likely token is allowed, it is also the most likely allowed one (ties go to the lowest id either
way, as llama.cpp's greedy sampler does).

Used for greedy calls (temperature 0) with a grammar and no penalties, i.e. the judge's; every other call
keeps llama-cpp-python's own sampler chain. Set $INTERVIEW_SIM_FULL_GRAMMAR=1 to use the chain for those too
(the equivalence test and the benchmark compare the two).
"""

from __future__ import annotations

import ctypes
import math
import os
from typing import Any

FULL_GRAMMAR_ENV = "INTERVIEW_SIM_FULL_GRAMMAR"


def applies(temp: float, repeat_penalty: float, frequency_penalty: float, presence_penalty: float, grammar: Any) -> bool:
    """Whether a call's sampling is the greedy-under-grammar case this sampler reproduces exactly."""
    if grammar is None or os.environ.get(FULL_GRAMMAR_ENV):
        return False
    return temp == 0.0 and repeat_penalty == 1.0 and frequency_penalty == 0.0 and presence_penalty == 0.0


class GreedyGrammarSampler:
    """Stands in for llama-cpp-python's `LlamaSampler` inside `Llama.generate` (which calls `sample(ctx, idx)`
    once per position) for one generation: the logits processors, then greedy under the grammar."""

    def __init__(self, llm: Any, grammar: Any, logits_processor: Any) -> None:
        import llama_cpp
        import numpy as np

        self._llm = llm
        self._processors = list(logits_processor or [])
        self._n_vocab = int(llm.n_vocab())
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._grammar:
            raise ValueError("llama.cpp could not parse the grammar")
        self._one = (llama_cpp.llama_token_data * 1)()
        self._all: Any = None  # the whole vocabulary as llama_token_data, allocated when first needed
        self._all_view: Any = None
        self._np = np
        self.rejected = 0
        """Positions where the most likely token broke the grammar (the whole vocabulary was filtered)."""
        self.positions = 0

    def sample(self, ctx: Any, idx: int = -1) -> int:
        import llama_cpp

        np = self._np
        raw = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        logits = np.ctypeslib.as_array(raw, shape=(self._n_vocab,))
        if self._processors:
            logits = logits.copy()  # the chain hands processors a copy too: llama.cpp's own buffer stays as it was
            for processor in self._processors:
                logits = processor(self._llm._input_ids, logits)
        token = int(np.argmax(logits))
        candidate = llama_cpp.llama_token_data(token, float(logits[token]), 0.0)
        self._one[0] = candidate
        one = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(one))
        self.positions += 1
        if math.isinf(self._one[0].logit):
            self.rejected += 1
            token = self._allowed_argmax(logits)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        return token

    def _allowed_argmax(self, logits: Any) -> int:
        """The grammar over the whole vocabulary, then the most likely token it leaves (lowest id on ties)."""
        import llama_cpp

        np = self._np
        if self._all is None:
            self._all = (llama_cpp.llama_token_data * self._n_vocab)()
            self._all_view = np.ctypeslib.as_array(self._all)
        view = self._all_view
        view["id"] = np.arange(self._n_vocab, dtype=np.int32)
        view["logit"] = logits
        view["p"] = 0.0
        array = llama_cpp.llama_token_data_array(data=self._all, size=self._n_vocab, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(array))
        # llama.cpp's grammar sampler sets rejected tokens' logits to -inf in place (it never reorders or resizes).
        return int(view["id"][int(np.argmax(view["logit"][: array.size]))])

    def close(self) -> None:
        import llama_cpp

        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None

    def __del__(self) -> None:
        self.close()


def patch(llm: Any) -> None:
    """Have this Llama instance use `GreedyGrammarSampler` where it applies (see `applies`) and its own sampler
    chain everywhere else. Per instance, so nothing else in the process changes."""
    original = llm._init_sampler

    def init_sampler(**kwargs: Any) -> Any:
        if applies(
            kwargs.get("temp", 0.8),
            kwargs.get("repeat_penalty", 1.0),
            kwargs.get("frequency_penalty", 0.0),
            kwargs.get("presence_penalty", 0.0),
            kwargs.get("grammar"),
        ):
            return GreedyGrammarSampler(llm, kwargs["grammar"], kwargs.get("logits_processor"))
        return original(**kwargs)

    llm._init_sampler = init_sampler
