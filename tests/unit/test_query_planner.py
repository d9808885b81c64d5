"""Planner: tier split at the watermark, index choice, SQL shape (pure)."""

from __future__ import annotations

from eventstrata.hotstore.read import Sources
from eventstrata.keys import encode_part
from eventstrata.query.filters import EventFilter
from eventstrata.query.planner import cold_count_sql, cold_sql, plan_for, plan_query

W = 1_000_000


def test_split_at_watermark() -> None:
    p = plan_query(EventFilter(since_ms=500, until_ms=2_000_000), watermark=W, now_ms=0)
    assert p.hot is not None and (p.hot.lo, p.hot.hi) == (W, 2_000_000)
    assert p.cold is not None and (p.cold.since, p.cold.until) == (500, W)


def test_only_hot_or_only_cold() -> None:
    p = plan_query(EventFilter(since_ms=W), watermark=W, now_ms=0)
    assert p.cold is None and p.hot is not None and p.hot.lo == W and p.hot.hi is None
    p = plan_query(EventFilter(until_ms=W), watermark=W, now_ms=0)
    assert p.hot is None and p.cold is not None and p.cold.until == W
    p = plan_query(EventFilter(), watermark=0, now_ms=0)
    assert p.cold is None and p.hot is not None and p.hot.lo == 0


def test_position_order_reads_the_hot_tier_below_the_watermark() -> None:
    """Late events (time below W, not archived yet) are only in Redis: position order reads the
    hot part from ``since``, not from W; the cold part and time order keep the split."""
    f = EventFilter(since_ms=500, until_ms=2_000_000)
    by_time = plan_for(f, sort="time", watermark=W, now_ms=0)
    assert by_time == plan_query(f, watermark=W, now_ms=0)
    for sort in ("gpos", "spos"):
        p = plan_for(f, sort=sort, watermark=W, now_ms=0)
        assert p.hot is not None and (p.hot.lo, p.hot.hi) == (500, 2_000_000)
        assert p.cold == by_time.cold and p.watermark == W
    p = plan_for(EventFilter(until_ms=W), sort="gpos", watermark=W, now_ms=0)
    assert p.hot is not None and (p.hot.lo, p.hot.hi) == (0, W)  # a range wholly below W too
    p = plan_for(EventFilter(since_ms=2 * W), sort="gpos", watermark=W, now_ms=0)
    assert p == plan_query(EventFilter(since_ms=2 * W), watermark=W, now_ms=0)


def test_index_choice() -> None:
    def kind(f: EventFilter) -> str:
        hp = plan_query(f, watermark=0, now_ms=0).hot
        assert hp is not None
        return hp.kind

    assert kind(EventFilter(user_ids=("u",), types=("t",))) == "user_type"
    assert kind(EventFilter(user_ids=("u", "v"), types=("t", "s"))) == "user_type"
    assert kind(EventFilter(user_ids=tuple("abcde"), types=tuple("abcde"))) == "user"
    assert kind(EventFilter(user_ids=("u",))) == "user"
    assert kind(EventFilter(types=("t",))) == "type"
    assert kind(EventFilter(source="x")) == "all"
    hp = plan_query(EventFilter(user_ids=("u", "v"), types=("t",)), watermark=0, now_ms=0).hot
    assert hp is not None and hp.sources() == Sources(
        "ut", ((encode_part("u"), encode_part("t")), (encode_part("v"), encode_part("t"))))
    assert not hp.post_filter


def test_post_filter_flag() -> None:
    def pf(f: EventFilter) -> bool:
        hp = plan_query(f, watermark=0, now_ms=0).hot
        assert hp is not None
        return hp.post_filter

    assert not pf(EventFilter(since_ms=5, until_ms=10))
    assert not pf(EventFilter(types=("a",)))
    assert pf(EventFilter(user_ids=tuple("abcde"), types=tuple("abcde")))
    assert pf(EventFilter(exclude_types=("a",)))
    assert pf(EventFilter(data_eq=((("a",), 1),)))
    assert pf(EventFilter(is_conversion=False))


def test_cold_sql_binds_every_value() -> None:
    hostile = "x'); COPY (SELECT 1) TO '/tmp/p'; --"
    f = EventFilter(user_ids=(hostile,), types=("a",), exclude_types=("b",), source=hostile, realms=("eu",),
                    is_conversion=True, data_eq=((("plan",), hostile), (("n",), 5), (("it's",), "v")),
                    metadata_eq=((("m",), True),))
    p = plan_query(f, watermark=W, now_ms=0)
    assert p.cold is not None and not p.cold.exact
    sql, params = cold_sql(p.cold, sort="time", order="desc", after=(5, "id'"), limit=50)
    assert hostile not in sql and "it's" not in sql and "'" not in sql
    assert sql.count("?") == len(params)
    assert hostile in params and "/data/plan" in params and 5.0 in params and params[-1] == 50
    assert "ORDER BY ts DESC, id DESC" in sql
    assert "(ts < ?) OR (ts = ? AND id < ?)" in sql
    csql, cparams = cold_count_sql(p.cold, bucket_ms=3600000)
    assert csql.count("?") == len(cparams) and "GROUP BY" in csql


def test_cold_exact_without_paths() -> None:
    p = plan_query(EventFilter(types=("a",)), watermark=W, now_ms=0)
    assert p.cold is not None and p.cold.exact
