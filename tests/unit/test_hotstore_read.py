"""The hot layout's members and the read script's arguments (pure: no Redis; the scripts run
in tests/integration)."""

from __future__ import annotations

from binascii import crc_hqx

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventstrata.hotstore import scripts
from eventstrata.hotstore.read import Row, ScanResult, Sources, merge_scans, scan_args, shard_sources
from eventstrata.hotstore.scripts import READ, REMOVE, WRITE
from eventstrata.keys import (
    DAY_MS,
    KeyLayout,
    body_member,
    escape_id,
    ids_value,
    seq_value,
    short_member,
    split_member,
    user_part,
    user_set_of,
    user_set_starts,
)
from eventstrata.query.planner import HotPlan


def test_scan_args_carry_the_escaped_cursor_and_the_sources() -> None:
    tk = KeyLayout("es").tenant("acme")
    args = scan_args(tk, Sources("ut", (("bdQ", "bcGFnZQ"),)), lo=5, hi=None, order="desc",
                     after=(7, "a\0b"), limit=50, examine=2000, first=True, then_w=True)
    assert args == ["es:{acme}", "scan", "1", 5, "", "desc", 7, b"a\0\1b\0\0", 50, 2000, "1",
                    "ut", "1", "bdQ", "bcGFnZQ"]
    plain = scan_args(tk, Sources("a"), lo=0, hi=9, order="asc", after=None, limit=1, examine=1,
                      first=False, then_w=False)
    assert plain[2:8] == ["", 0, 9, "asc", "", b""] and plain[-2:] == ["a", "0"]


def test_plans_read_the_family_of_their_kind_with_encoded_parts() -> None:
    assert HotPlan(0, None, "user_type", (("u1", "page"),), False).sources() == Sources(
        "ut", (("bdTE", "bcGFnZQ"),))
    assert HotPlan(0, None, "type", (("a:{b}",), ("c",)), False).sources().parts == (("bYTp7Yn0",), ("bYw",))
    assert HotPlan(0, None, "all", (), False).sources() == Sources("a")


@given(st.text(), st.text())
def test_members_sort_by_id_whatever_follows(a: str, b: str) -> None:
    # equal scores order members by bytes: the escaped id and its terminator keep id order
    ma, mb = body_member(a, "bXg", 1, None, b"\xff" * 3), short_member(b, "_")
    if a.encode("utf-8", "surrogatepass") < b.encode("utf-8", "surrogatepass"):
        assert ma < mb
    elif a != b:
        assert mb < ma
    assert split_member(ma) == (a, b"bXg|1||\xff\xff\xff")
    assert seq_value("_", 12) == b"_|12" and ids_value(3, None) == b"3|" and ids_value(3, 4) == b"3|4"
    assert escape_id(a).count(b"\0") == a.count("\0")


def test_scripts_declare_what_they_do() -> None:
    assert READ.source.startswith(b"#!lua flags=no-writes\n")
    assert not WRITE.source.startswith(b"#!lua") and not REMOVE.source.startswith(b"#!lua")
    # the key names the scripts build are those of keys.TenantKeys
    tk = KeyLayout("es").tenant("T")
    assert tk.user_set("U", 0) == "es:{T}:u:U:0" and tk.type_set("X", 0) == "es:{T}:t:X:0"
    assert tk.types_of_hour(0) == "es:{T}:ty:0"
    for script in (READ.source, WRITE.source, REMOVE.source):
        assert b"base .. ':u:'" in script and b"base .. ':t:'" in script and b"base .. ':ty:'" in script
    # the layout rules have one Lua home, composed in front of each script
    for name in ("write.lua", "read.lua", "remove.lua"):
        raw = scripts._read(name)
        composed = scripts.load(name).source
        assert composed.count(scripts.LAYOUT) == 1 and composed.replace(scripts.LAYOUT, b"") == raw
        for rule in (b"local function id_bucket", b"local function set_index", b"local DAY ="):
            assert rule not in raw and rule in composed


def test_shards_keep_a_users_events_together_and_spread_users() -> None:
    one, six = KeyLayout("es").tenant("T"), KeyLayout("es", 6).tenant("T")
    assert not one.sharded and one.shards() == (one,) and one.shard_for("bdQ") == one
    assert one.bases == ("es:{T}",)
    assert six.sharded and six.base == "es:{T}" and len(set(six.shard_bases)) == 6
    assert six.bases == ("es:{T}", *six.shard_bases)
    # shard s's slot is in the s-th sixth of the slot space (masters own contiguous ranges)
    slots = [crc_hqx(b[b.index("{") + 1:-1].encode(), 0) % 16384 for b in six.shard_bases]
    assert [s * 6 // 16384 for s in slots] == list(range(6))
    assert all(b.startswith(f"es:{{T/{i}") for i, b in enumerate(six.shard_bases))
    users = [user_part(f"u{i}") for i in range(600)]
    assert {six.shard_index(u) for u in users} == set(range(6))
    assert all(six.shard_for(u).base == six.shard_bases[six.shard_index(u)] for u in users)
    assert six.shard_for(users[0]).user_set(users[0], 0) == f"{six.shard_bases[six.shard_index(users[0])]}:u:{users[0]}:0"
    with pytest.raises(ValueError):
        KeyLayout("es", 0)


def test_user_set_starts_come_from_the_registry_field() -> None:
    day = 20_000 * DAY_MS
    assert user_set_starts(day, None) == [day] and user_set_starts(day, b"") == [day]
    starts = user_set_starts(day, b"5,3600000,86399999")
    assert starts == [day, day + 5, day + 3_600_000, day + DAY_MS - 1]
    assert [user_set_of(starts, t) for t in (day, day + 4, day + 5, day + 3_599_999, day + DAY_MS - 1)] == [
        day, day, day + 5, day + 5, day + DAY_MS - 1]
    for bad in (b"5,5", b"7,3", b"0", b"86400000", b"x", b"-1"):
        with pytest.raises(ValueError):
            user_set_starts(day, bad)
    tk = KeyLayout("es").tenant("T")
    assert (tk.user_sets, tk.user_sets_field("bdQ", day), tk.user_set("bdQ", day + 5)) == (
        "es:{T}:us", f"bdQ:{day}", f"es:{{T}}:u:bdQ:{day + 5}")
    assert KeyLayout("es").user_set_max == 128 == KeyLayout("es", 3, 128).user_set_max
    for bad_max in (1, 0, 5000):
        with pytest.raises(ValueError):
            KeyLayout("es", 1, bad_max)
    for script in (READ.source, WRITE.source, REMOVE.source):
        assert b"base .. ':us'" in script


def test_shard_sources_route_user_reads_and_fan_out_the_others() -> None:
    tk = KeyLayout("es", 4).tenant("T")
    users = [user_part(f"u{i}") for i in range(40)]
    groups = shard_sources(tk, Sources("u", tuple((u,) for u in users)))
    assert sorted(p for _, s in groups for p in s.parts) == sorted((u,) for u in users)
    for stk, s in groups:
        assert all(tk.shard_for(p[0]) == stk for p in s.parts)
    assert [stk for stk, _ in shard_sources(tk, Sources("a"))] == list(tk.shards())
    one = KeyLayout("es").tenant("T")
    assert shard_sources(one, Sources("t", (("x",),))) == [(one, Sources("t", (("x",),)))]


def _row(ts: int, eid: str) -> Row:
    return Row(ts, eid, b"1|", b"")


@given(st.lists(st.tuples(st.integers(0, 30), st.text(min_size=1, max_size=3), st.integers(0, 2)),
                unique_by=lambda x: x[1], max_size=40),
       st.integers(1, 12), st.sampled_from(["asc", "desc"]), st.lists(st.integers(1, 15), min_size=3, max_size=3))
def test_merged_shard_scans_equal_one_scan_of_everything(items: list[tuple[int, str, int]], limit: int,
                                                         order: str, caps: list[int]) -> None:
    """Shard ``s`` answers each page with at most ``min(limit, caps[s])`` rows, and a boundary
    when it has more (a capped scan stops early); walking the merged pages yields every row
    once, in ``(time, id)`` order, and W first / after are the lowest / highest of the shards'."""
    desc = order == "desc"

    def key(r: tuple[int, str, int]) -> tuple[int, bytes]:
        return r[0], r[1].encode("utf-8", "surrogatepass")

    everything = sorted(items, key=key, reverse=desc)
    after: tuple[int, bytes] | None = None
    got: list[str] = []
    for _ in range(500):
        parts = []
        for shard in range(3):
            rest = [r for r in everything
                    if r[2] == shard and (after is None or (key(r) < after if desc else key(r) > after))]
            rows = rest[:min(limit, caps[shard])]
            done = len(rest) == len(rows)
            parts.append(ScanResult([_row(r[0], r[1]) for r in rows], done,
                                    None if done else (rows[-1][0], rows[-1][1]), 4 + shard, 6 - shard))
        m = merge_scans(parts, order=order, limit=limit)
        assert len(m.rows) <= limit and (m.w, m.w_after) == (4, 6)
        got += [r.id for r in m.rows]
        if m.complete:
            break
        assert m.boundary is not None
        after = (m.boundary[0], m.boundary[1].encode("utf-8", "surrogatepass"))
    assert got == [r[1] for r in everything]


def test_the_scripts_constants_are_those_of_keys_py() -> None:
    """Each script mirrors a layout constant as ``local NAME = value  -- keys.CONSTANT``; every
    mirror equals the constant, and every script that needs one has it."""
    import re

    from eventstrata import keys

    mirrored: dict[str, set[str]] = {}
    for script in (READ, WRITE, REMOVE):
        for value, const in re.findall(rb"^local \w+ = (\d+)  -- keys\.(\w+)$", script.source, re.M):
            assert int(value) == getattr(keys, const.decode()), const
            mirrored.setdefault(const.decode(), set()).add(script.sha)
    assert set(mirrored) == {"DAY_MS", "SEQ_BLOCK", "TYPE_SET_MS", "ID_BUCKET_LOAD", "POS_GAP", "POS_EPOCH_MS",
                              "POS_PER_MS"}
    assert mirrored["TYPE_SET_MS"] == {READ.sha, WRITE.sha, REMOVE.sha}


def test_the_scripts_share_one_id_bucket_rule() -> None:
    """The id bucket functions are the same text in the three scripts (``keys.id_bucket_of`` is
    the rule in Python; the integration tests find every stored id where it says)."""
    import re

    rules = set()
    for script in (READ, WRITE, REMOVE):
        found = re.search(rb"\nlocal function id_level.*?\nend\nlocal function id_bucket.*?\nend\n", script.source, re.S)
        assert found is not None
        rules.add(found.group(0))
    assert len(rules) == 1
    for script in (READ, REMOVE):  # the writer passes the hash; the others compute it the same way
        assert b"tonumber(string.sub(redis.sha1hex(id), 1, 8), 16)" in script.source


def test_id_buckets_split_one_at_a_time() -> None:
    from eventstrata.keys import id_bucket_of

    ids = [f"e{i}" for i in range(2000)]
    for b in range(1, 40):
        now = [id_bucket_of(i, b) for i in ids]
        after = [id_bucket_of(i, b + 1) for i in ids]
        assert max(now) == b - 1 and max(after) == b
        level = 1 << (b.bit_length() - 1)
        moved = {x for x, y in zip(now, after, strict=True) if x != y}
        assert moved == {b - level}  # only the split bucket gives ids away, all to bucket b
        assert {y for x, y in zip(now, after, strict=True) if x != y} == {b}
