"""Short fuzz profile (`make test`): every reader of outside data, hostile inputs, "a valid object or our error".

The long profile is `make fuzz` (tests/fuzz.py): thousands of inputs, each in a worker process with a timeout.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fuzz_readers import Reader, Seeds, readers, run_one

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


@given(st.data())
@settings(max_examples=5, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_the_seeds_themselves_read_cleanly(data: st.DataObject) -> None:
    # The unmutated documents are valid: each reader returns an object for its own seeds (the property is not vacuous).
    del data
    ok = {r.name: run_one(r.read, seed, Path(_tmp())) for r, seed in _valid_pairs()}
    assert set(ok.values()) == {"ok"}, ok


def _tmp() -> str:
    import tempfile

    return tempfile.mkdtemp()


def _valid_pairs() -> list[tuple[Reader, bytes]]:
    by_name = {r.name: r for r in READERS}
    md = next(t for s, t in SEEDS.autogen02 if s == ".md" and "Chat_id" in t and "Chat History" not in t)
    return [
        (by_name["agent-yaml"], SEEDS.agents[0].encode()),
        (by_name["scenario-yaml"], SEEDS.scenarios[0].encode()),
        (by_name["sweep-yaml"], SEEDS.sweeps[-1].encode()),
        (by_name["transcript-json"], SEEDS.transcripts[0].encode()),
        (by_name["events-jsonl"], SEEDS.events[1].encode()),
        (by_name["autogen02-markdown"], md.encode()),
    ]
