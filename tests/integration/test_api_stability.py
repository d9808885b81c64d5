"""Cursor stability: walking every page while a producer keeps ingesting and the archiver keeps
advancing the watermark (moving windows from Redis to Parquet) returns every event that existed
when the first page was read exactly once, in order, and nothing twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from query_support import DAY_MS, HOUR_MS, QueryStack, brute_force, make_events

from eventstrata.query.filters import EventFilter

pytestmark = pytest.mark.integration
TENANT = "stab"
_CLOCK: dict[str, int] = {}  # archiver clock carried across the parametrized walks (W only grows)


@pytest.fixture(scope="module")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[QueryStack, str, int]]:
    s = QueryStack(redis_url, tmp_path_factory.mktemp("stab"), hot_retention="3d")
    s.start()
    now = int(time.time() * 1000)
    s.write(make_events(TENANT, 300, start_ms=now - 6 * DAY_MS, span_ms=6 * DAY_MS, seed=99))
    s.archive(now)
    yield s, s.create_key(TENANT), now
    s.stop()


class Churn(threading.Thread):
    """Producer + archiver: new events (old, current and late ones) and an archive pass whose
    clock moves 2 h per round, until stopped."""

    def __init__(self, s: QueryStack, now: int, seed: int) -> None:
        super().__init__(daemon=True)
        self.s, self.clock, self.seed = s, now, seed
        self.stop_flag = threading.Event()
        self.rounds = 0
        self.done = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop_flag.is_set():
                self.rounds += 1
                batch = make_events(TENANT, 12, start_ms=self.clock - 6 * DAY_MS, span_ms=6 * DAY_MS + HOUR_MS,
                                    seed=self.seed * 1000 + self.rounds, prefix=f"new{self.seed}-{self.rounds}-")
                self.s.write(batch)
                self.clock += 2 * HOUR_MS
                self.s.archive(self.clock)
                self.done += 1
        except BaseException as exc:
            self.error = exc


@pytest.mark.parametrize(("order", "flt_params", "flt", "seed"), [
    ("desc", [], EventFilter(), 1),
    ("asc", [], EventFilter(), 2),
    ("desc", [("type", "view"), ("type", "click")], EventFilter(types=("view", "click")), 3),
    ("asc", [("user_id", "a:b{c}*"), ("user_id", " ")], EventFilter(user_ids=("a:b{c}*", " ")), 4),
])
def test_walk_under_ingest_and_archive(stack: tuple[QueryStack, str, int], order: str,
                                       flt_params: list[tuple[str, str]], flt: EventFilter, seed: int) -> None:
    s, key, now = stack
    w_before = s.watermark(TENANT)
    existing = {e.id for e in brute_force(s.snapshot(TENANT), flt, order)}
    churn = Churn(s, max(now, _CLOCK.get("last", now)), seed)
    headers = {"Authorization": f"Bearer {key}"}
    seen: list[tuple[int, str]] = []
    churn.start()
    try:
        with httpx.Client(base_url=s.base_url, timeout=30) as client:
            cursor: str | None = None
            pages = 0
            while True:
                params = [*flt_params, ("order", order), ("limit", "9")]
                if cursor:
                    params.append(("cursor", cursor))
                r = client.get("/v1/events", params=params, headers=headers)
                assert r.status_code == 200, r.text
                doc = r.json()
                for e in doc["events"]:
                    seen.append((_ms(e["timestamp"]), e["id"]))
                pages += 1
                cursor = doc["next_cursor"]
                if cursor is None:
                    break
                if pages % 4 == 0:
                    # Make sure ingest + archiving really happen between these pages.
                    target = churn.done + 1
                    deadline = time.monotonic() + 60
                    while churn.done < target and churn.is_alive() and time.monotonic() < deadline:
                        time.sleep(0.02)
    finally:
        churn.stop_flag.set()
        churn.join(timeout=60)
        _CLOCK["last"] = churn.clock
    assert churn.error is None, churn.error
    ids = [i for _, i in seen]
    assert len(ids) == len(set(ids)), "an event was returned twice"
    missing = existing - set(ids)
    assert not missing, f"{len(missing)} events that existed at page 1 were skipped"
    assert seen == sorted(seen, reverse=(order == "desc")), "pages out of order"
    assert churn.done >= 2 and s.watermark(TENANT) > w_before, "the archiver did not move anything"
    stored = {e.id: e for e in s.snapshot(TENANT)}
    assert all(flt.matches(stored[i]) for i in ids)


def _ms(iso: str) -> int:
    from eventstrata.timeutil import parse_time_ms

    return parse_time_ms(iso)
