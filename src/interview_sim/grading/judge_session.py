"""The judges' shared bookkeeping for one evaluation or pairwise judgment: models, call records, raw outputs.

Both grading modes (`modes`) and the pairwise verdicts (`evaluate`) ask their judges through one of these, so
every call joins the run's transcript with its kind, seed and attempt, and every raw answer is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from interview_sim.config import AgentSpec
from interview_sim.grading import judge
from interview_sim.grading.grades import RawOutput, total_usage
from interview_sim.models import ChatModel, Completion, ModelOptions
from interview_sim.record import CallRecord, Transcript, Usage

__all__ = ["JudgeSession", "ModelFactory"]

ModelFactory = Callable[[str, ModelOptions], ChatModel]


class JudgeSession:
    """The judges' shared bookkeeping for one evaluation: models, call records, raw outputs."""

    def __init__(self, transcript: Transcript, agent: AgentSpec, record_id: str, factory: ModelFactory, seed: int) -> None:
        self.transcript, self.agent, self.record_id = transcript, agent, record_id
        self.factory, self.seed = factory, seed
        self.models: dict[str, ChatModel] = {}
        self.calls: list[CallRecord] = []
        self.raw: list[RawOutput] = []

    async def model(self, ref: str) -> ChatModel:
        if ref not in self.models:
            self.models[ref] = self.factory(ref, ModelOptions(role="evaluator", seed=self.seed))
            await self.models[ref].check_ready()
        return self.models[ref]

    async def aclose(self) -> None:
        for model in self.models.values():
            await model.aclose()

    def recorder(
        self, ref: str, seed: int, kind: str, order: Literal["ab", "ba"] | None = None
    ) -> Callable[[Completion, int], None]:
        def on_completion(completion: Completion, attempt: int) -> None:
            call = completion.call_record(
                index=len(self.calls),  # renumbered when the calls join the transcript
                role="evaluator",
                agent=self.agent.name,
                ref=ref,
                evaluation_id=self.record_id,
                metadata={
                    **completion.metadata,
                    "kind": kind,
                    "seed": seed,
                    "attempt": attempt,
                    **({"order": order} if order else {}),
                },
            )
            self.calls.append(call)

        return on_completion

    def keep_raw(self, ref: str, seed: int, attempts: list[judge.Attempt], order: Literal["ab", "ba"] | None = None) -> None:
        self.raw.extend(
            RawOutput(
                judge=ref,
                seed=seed,
                attempt=a.attempt,
                order=order,
                content=a.content,
                finish_reason=a.finish_reason,
                error=a.error,
                thinking=a.thinking,
            )
            for a in attempts
        )

    def usage_of(self, ref: str, seed: int, kind: str) -> Usage:
        return total_usage(
            [
                c.usage_value()
                for c in self.calls
                if c.ref == ref and c.metadata.get("seed") == seed and c.metadata["kind"].split(":")[0] == kind
            ]
        )

    def model_name(self, ref: str) -> str:
        names = [c.model for c in self.calls if c.ref == ref]
        return names[-1] if names else self.models[ref].name
