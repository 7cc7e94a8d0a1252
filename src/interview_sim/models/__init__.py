"""The model registry: `provider:name` references resolved by lazily imported provider modules.

A provider module exposes `create(name, ref, options) -> ChatModel` and `available() -> list[ModelInfo]`.
Providers are imported only when a reference names them, so `interview-sim --help` never loads
llama.cpp or an HTTP client.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from interview_sim.config import AgentSpec, LoadedScenario, LoadedSweep
from interview_sim.errors import ModelNotFoundError
from interview_sim.models.base import (
    ChatMessage,
    ChatModel,
    Completion,
    CompletionRequest,
    ModelInfo,
    RetryRecord,
    TokenAlternatives,
)

__all__ = [
    "ChatMessage",
    "ChatModel",
    "Completion",
    "CompletionRequest",
    "ModelInfo",
    "ModelOptions",
    "RetryRecord",
    "TokenAlternatives",
    "canonical_ref",
    "check_references",
    "create_model",
    "list_models",
    "parse_ref",
    "providers",
    "register_provider",
]


@dataclass(frozen=True)
class ModelOptions:
    """What a provider may use to build a model for one agent."""

    role: str = "candidate"
    """The role the model plays; scripted models use it to pick their script."""
    seat: str | None = None
    """The session seat it serves (a panelist's id; else the role): replayed models answer per seat."""
    seed: int | None = None
    context_length: int | None = None
    """Override the backend's context window (llama.cpp n_ctx, Ollama num_ctx)."""
    host: str | None = None
    """For server backends: which endpoint to call (default from the environment)."""
    timeout_s: float | None = None
    """For server backends: the deadline of one call, retries included (default: the backend's)."""
    extra: tuple[tuple[str, Any], ...] = ()


_PROVIDERS: dict[str, Callable[[], ModuleType]] = {}
_BARE: dict[str, str] = {}
"""Providers whose name alone is a reference (`human`), and the model name it stands for."""


def register_provider(name: str, loader: Callable[[], ModuleType], *, bare_name: str | None = None) -> None:
    """Register a provider; `loader` imports its module on first use.

    With `bare_name`, the provider's name alone is also a reference, meaning `provider:bare_name`.
    """
    _PROVIDERS[name] = loader
    if bare_name is not None:
        _BARE[name] = bare_name


def _module_loader(module: str) -> Callable[[], ModuleType]:
    return lambda: importlib.import_module(module)


register_provider("scripted", _module_loader("interview_sim.models.scripted"))
register_provider("llamacpp", _module_loader("interview_sim.models.llamacpp"))
register_provider("ollama", _module_loader("interview_sim.models.ollama"))
register_provider("replay", _module_loader("interview_sim.models.replay"))
register_provider("human", _module_loader("interview_sim.models.human"), bare_name="human")


def providers() -> list[str]:
    return sorted(_PROVIDERS)


def parse_ref(ref: str) -> tuple[str, str]:
    """Split `provider:name` at the first colon (Ollama tags contain colons themselves)."""
    if ref in _BARE:
        return ref, _BARE[ref]
    provider, sep, name = ref.partition(":")
    if not sep or not provider or not name:
        raise ModelNotFoundError(f"model reference {ref!r} must be 'provider:name' (providers: {', '.join(providers())})")
    if provider not in _PROVIDERS:
        raise ModelNotFoundError(f"unknown model provider {provider!r} in {ref!r} (known: {', '.join(providers())})")
    return provider, name


def canonical_ref(ref: str) -> str:
    """The full `provider:name` form of a reference (`human` → `human:human`); others unchanged."""
    return f"{ref}:{_BARE[ref]}" if ref in _BARE else ref


def check_references(loaded: AgentSpec | LoadedScenario | LoadedSweep, path: str | Path) -> None:
    """Every model a loaded agent, scenario or sweep file names must have a known provider (`validate`).

    Raises:
        ModelNotFoundError: naming the file and field of the first unknown one.
    """
    refs: list[tuple[str, str]] = []
    if isinstance(loaded, AgentSpec):
        refs.append((f"{path}: model", loaded.model))
    elif isinstance(loaded, LoadedScenario):
        refs.extend((f"{loaded.path}: {role} agent: model", agent.model) for role, agent in loaded.agents.items())
    else:
        fixed = ("evaluator_model", "interviewer_model", "candidate_model")
        refs.extend((f"{loaded.path}: models.{n}", ref) for n, ref in enumerate(loaded.spec.models))
        refs.extend((f"{loaded.path}: {name}", ref) for name in fixed if (ref := getattr(loaded.spec, name)) is not None)
        for scenario in loaded.scenarios:
            check_references(scenario, scenario.path)
    for where, ref in refs:
        try:
            parse_ref(ref)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"{where}: {exc}") from None


def create_model(ref: str, options: ModelOptions | None = None) -> ChatModel:
    """Build the model a reference names. Raises ModelNotFoundError for unknown references."""
    provider, name = parse_ref(ref)
    module = _PROVIDERS[provider]()
    model: ChatModel = module.create(name, ref, options or ModelOptions())
    return model


def list_models() -> list[ModelInfo]:
    """Every provider's known models and whether each is ready now."""
    infos: list[ModelInfo] = []
    for provider in providers():
        module = _PROVIDERS[provider]()
        available = getattr(module, "available", None)
        if available is not None:
            infos.extend(available())
    return infos
