"""The dictionary trainer reproduces the dictionaries the product ships. Pure."""

from __future__ import annotations

from eventstrata.hotstore.codec import DICTIONARIES, DICTIONARY_FILE
from eventstrata_bench.traindict import train, training_bodies


def test_packaged_dictionaries_are_reproducible_from_the_samples() -> None:
    assert train(training_bodies()) == DICTIONARY_FILE.read_bytes()
    d1 = DICTIONARY_FILE.parent.joinpath(DICTIONARIES[1]).read_bytes()
    assert train(training_bodies(layout="canonical")) == d1
