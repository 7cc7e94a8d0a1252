"""Short fuzz profile (`make test`): every reader of outside data, hostile inputs, "a valid object or our error".

The long profile is `make fuzz` (tests/fuzz.py): thousands of inputs, each in a worker process with a timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from fuzz_readers import ROOT, Reader, Seeds, readers, run_one

SEEDS = Seeds.collect()
READERS = readers(SEEDS)
EXAMPLES = 40


@pytest.mark.parametrize("reader", READERS, ids=lambda r: r.name)
def test_a_reader_returns_a_valid_object_or_raises_our_error(reader: Reader, tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp(reader.name)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure shows the raw input at once
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(payload=reader.inputs)
    def check(payload: bytes) -> None:
        assert run_one(reader.read, payload, root) in ("ok", "clean")

    check()


def test_the_seeds_themselves_read_cleanly(tmp_path: Path) -> None:
    # The unmutated documents are valid: each reader returns an object for them (the property is not vacuous).
    by_name = {r.name: r for r in READERS}
    tree = ROOT / "tests" / "fixtures" / "autogen02" / "tree"
    valid = {
        "agent-yaml": SEEDS.agents[0],
        "scenario-yaml": SEEDS.scenarios[0],
        "sweep-yaml": SEEDS.sweeps[-1],
        "validate-yaml": SEEDS.scenarios[-1],
        "transcript-json": SEEDS.transcripts[0],
        "events-jsonl": SEEDS.events[1],
        "autogen02-json": next(tree.rglob("*.json")).read_text(encoding="utf-8"),
        "autogen02-markdown": next(tree.rglob("*.md")).read_text(encoding="utf-8"),
    }
    outcomes = {name: run_one(by_name[name].read, text.encode(), tmp_path) for name, text in valid.items()}
    assert outcomes == dict.fromkeys(valid, "ok")
