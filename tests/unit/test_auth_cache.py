"""The API-key resolve cache (pure: times are passed in; no Redis)."""

from __future__ import annotations

import pytest

from eventstrata.auth import ResolvedCache
from eventstrata.config import MAX_KEY_CACHE_MS, ConfigError, Settings


def test_an_entry_lives_exactly_ttl_ms_after_its_read() -> None:
    c = ResolvedCache(1_000)
    c.put("h1", "acme", read_ms=10_000)
    assert c.get("h1", 10_000) == "acme"
    assert c.get("h1", 10_999) == "acme"
    assert c.get("h1", 11_000) is None       # expired: the next request reads Redis
    assert len(c) == 0
    assert c.get("other", 10_000) is None


def test_ttl_zero_caches_nothing_and_the_bound_is_five_seconds() -> None:
    c = ResolvedCache(0)
    c.put("h1", "acme", read_ms=0)
    assert c.get("h1", 0) is None and len(c) == 0
    assert ResolvedCache(MAX_KEY_CACHE_MS).ttl_ms == 5_000
    with pytest.raises(ValueError):
        ResolvedCache(MAX_KEY_CACHE_MS + 1)
    with pytest.raises(ValueError):
        ResolvedCache(-1)


def test_a_full_cache_drops_expired_entries_then_everything() -> None:
    c = ResolvedCache(1_000, max_entries=3)
    c.put("a", "t", read_ms=0)
    c.put("b", "t", read_ms=500)
    c.put("c", "t", read_ms=900)
    c.put("d", "t", read_ms=1_200)            # full: "a" (expired at 1,000) is dropped
    assert len(c) == 3 and c.get("a", 1_200) is None and c.get("d", 1_200) == "t"
    c.put("e", "t", read_ms=1_300)            # full, "b" expired at 1,500: nothing expired -> cleared
    assert len(c) == 1 and c.get("e", 1_300) == "t" and c.get("c", 1_300) is None
    c.put("e", "t2", read_ms=1_400)           # an existing key is refreshed in place
    assert c.get("e", 2_399) == "t2"


def test_settings_bound_the_cache_like_auth_does() -> None:
    assert Settings.from_env(env={}).api_key_cache_ms == 1_000
    assert Settings.from_env(env={"EVENTSTRATA_API_KEY_CACHE": "5s"}).api_key_cache_ms == MAX_KEY_CACHE_MS
    assert Settings.from_env(env={"EVENTSTRATA_API_KEY_CACHE": "0s"}).api_key_cache_ms == 0
    with pytest.raises(ConfigError):
        Settings.from_env(env={"EVENTSTRATA_API_KEY_CACHE": "6s"})
