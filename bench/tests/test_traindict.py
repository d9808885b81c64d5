"""The dictionary trainer reproduces the dictionaries the product ships. Pure."""

from __future__ import annotations

from eventstrata.hotstore.codec import DICTIONARIES, DICTIONARY_FILE
from eventstrata_bench.traindict import OLD_DICT_SIZE, OLD_SAMPLES, train, training_bodies


def test_packaged_dictionaries_are_reproducible_from_the_samples() -> None:
    assert train(training_bodies()) == DICTIONARY_FILE.read_bytes()
    d1, d3 = (DICTIONARY_FILE.parent.joinpath(DICTIONARIES[v]).read_bytes() for v in (1, 3))
    assert train(training_bodies(OLD_SAMPLES, layout="canonical"), OLD_DICT_SIZE) == d1
    assert train(training_bodies(OLD_SAMPLES), OLD_DICT_SIZE) == d3
