"""Token usage: one call's figures, a run's ledger per model, role and agent, and AutoGen 0.2's cost block.

`record.py` re-exports these; they live here to keep that module a readable size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")


class UsedCall(Protocol):
    """What the ledger reads of a recorded call (`record.CallRecord`)."""

    @property
    def model(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def agent(self) -> str: ...
    @property
    def cached(self) -> bool: ...
    @property
    def thinking(self) -> str | None: ...
    def usage_value(self) -> Usage: ...


# ---------------------------------------------------------------------------------------------- usage


class Usage(_Record):
    """Token usage of one or more model calls; add them with `+`."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    generation_s: float = 0.0
    """Seconds the backends spent on the calls, prompt and generation (their own timings where reported,
    else wall time)."""
    prompt_eval_tokens: int = 0
    """Prompt tokens the backends actually evaluated, over the calls that report how long that took."""
    prompt_eval_s: float = 0.0
    """Seconds those calls spent evaluating their prompts."""
    eval_tokens: int = 0
    """Completion tokens of the calls that report how long generating them took."""
    eval_s: float = 0.0
    """Seconds those calls spent generating."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens_per_second(self) -> float | None:
        """Generation speed: completion tokens / generation time. Records from before the split (or backends
        that report one total) fall back to completion tokens / prompt + generation time."""
        if self.eval_s > 0 and self.eval_tokens:
            return round(self.eval_tokens / self.eval_s, 2)
        if self.generation_s <= 0 or self.completion_tokens == 0:
            return None
        return round(self.completion_tokens / self.generation_s, 2)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt_tokens_per_second(self) -> float | None:
        """Prompt speed: prompt tokens evaluated / prompt evaluation time."""
        if self.prompt_eval_s <= 0 or self.prompt_eval_tokens == 0:
            return None
        return round(self.prompt_eval_tokens / self.prompt_eval_s, 2)

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            computed = ("total_tokens", "tokens_per_second", "prompt_tokens_per_second")
            data = {k: v for k, v in data.items() if k not in computed}
        return data

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            calls=self.calls + other.calls,
            generation_s=round(self.generation_s + other.generation_s, 6),
            prompt_eval_tokens=self.prompt_eval_tokens + other.prompt_eval_tokens,
            prompt_eval_s=round(self.prompt_eval_s + other.prompt_eval_s, 6),
            eval_tokens=self.eval_tokens + other.eval_tokens,
            eval_s=round(self.eval_s + other.eval_s, 6),
        )


class UsageView(_Record):
    by_model: dict[str, Usage] = Field(default_factory=dict)
    by_role: dict[str, Usage] = Field(default_factory=dict)
    by_agent: dict[str, Usage] = Field(default_factory=dict)
    """Per agent name (schema 3): a panel's interviewers share a role but not an agent."""
    total: Usage = Field(default_factory=Usage)


class UsageLedger(_Record):
    """Usage of one run, per model and per role; cache hits count in `including_cached` only."""

    source: Literal["measured", "imported"] = "measured"
    including_cached: UsageView = Field(default_factory=UsageView)
    excluding_cached: UsageView = Field(default_factory=UsageView)
    warnings: list[str] = Field(default_factory=list)
    """Why some figures should not be trusted (e.g. imported counts too large for the chat)."""
    notes: list[str] = Field(default_factory=list)
    """What the figures include that a reader might not expect (e.g. thinking tokens in completion tokens)."""

    @classmethod
    def from_calls(cls, calls: Sequence[UsedCall]) -> UsageLedger:
        incl, excl = UsageView(), UsageView()
        thinking_models = sorted({call.model for call in calls if call.thinking})
        notes = [
            f"completion tokens of {model} include its thinking (reasoning) tokens, as the backend counts them"
            for model in thinking_models
        ]
        for call in calls:
            usage = call.usage_value()
            views = (incl,) if call.cached else (incl, excl)
            for view in views:
                view.by_model[call.model] = view.by_model.get(call.model, Usage()) + usage
                view.by_role[call.role] = view.by_role.get(call.role, Usage()) + usage
                view.by_agent[call.agent] = view.by_agent.get(call.agent, Usage()) + usage
                view.total = view.total + usage
        return cls(including_cached=incl, excluding_cached=excl, notes=notes)

    def cost_block(self) -> dict[str, Any]:
        """The AutoGen 0.2 `cost` shape the user's older tooling reads (local models cost 0)."""

        def view(v: UsageView) -> dict[str, Any]:
            block: dict[str, Any] = {"total_cost": 0}
            for model, u in v.by_model.items():
                block[model] = {
                    "cost": 0,
                    "prompt_tokens": u.prompt_tokens,
                    "completion_tokens": u.completion_tokens,
                    "total_tokens": u.total_tokens,
                }
            return block

        return {
            "usage_including_cached_inference": view(self.including_cached),
            "usage_excluding_cached_inference": view(self.excluding_cached),
        }
