"""The hot layout's members and the read script's arguments (pure: no Redis; the scripts run
in tests/integration)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from eventstrata.hotstore.read import Sources, scan_args
from eventstrata.hotstore.scripts import READ, REMOVE, WRITE
from eventstrata.keys import (
    KeyLayout,
    body_member,
    escape_id,
    ids_value,
    seq_value,
    short_member,
    split_member,
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
    assert tk.user_day("U", 0) == "es:{T}:u:U:0" and tk.type_day("X", 0) == "es:{T}:t:X:0"
    assert tk.all_day(0) == "es:{T}:a:0"
    for script in (READ.source, WRITE.source):
        assert b"base .. ':u:'" in script and b"base .. ':t:'" in script and b"base .. ':a:'" in script
