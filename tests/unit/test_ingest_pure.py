"""Pure parts of the ingest path: DLQ limit, commit math, DLQ headers, grouping, Lua args."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_records import Rec

from eventstrata.hotstore.codec import BodyCodec, lean_payload
from eventstrata.hotstore.writer import WRITE_SCRIPT, encode_event, prepare_chunks
from eventstrata.ingest.batch import group_by_tenant, merge, normalize_records, validity_runs
from eventstrata.ingest.commit import Partition, consumer_lag, merge_offsets, offsets_to_commit
from eventstrata.ingest.dlq import DLQ_HEADERS, DlqLimit, dead_letter, header, letter_tenant, original_headers
from eventstrata.ingest.pipeline import backoff_delays, is_transient
from eventstrata.keys import KeyLayout, day_of, encode_part, id_hash, stream_key, type_set_of, user_part
from eventstrata.model import Event, InvalidEvent


def ev(i: int, tenant: str = "t1", **kw: object) -> Event:
    e = Event(id=f"e{i}", tenant=tenant, type="click", timestamp=1_732_406_400_000 + i, received_at=1,
              format="native")
    return replace(e, **kw)


# -- DLQ limit ---------------------------------------------------------------------------------
def test_dlq_limit_consecutive_trips_exactly_at_limit() -> None:
    lim = DlqLimit(0.99, 5, min_count=10**9)
    assert lim.should_stop(0, 4, 0) is None
    trip = lim.should_stop(0, 1, 0)
    assert trip is not None and trip.reason == "consecutive" and trip.invalid == 5


def test_dlq_limit_consecutive_resets_on_valid() -> None:
    lim = DlqLimit(0.99, 5, min_count=10**9)
    assert lim.should_stop(0, 4, 1) is None
    assert lim.should_stop(0, 4, 1) is None
    assert lim.consecutive == 0


def test_dlq_limit_ratio_needs_min_count_then_trips() -> None:
    lim = DlqLimit(0.5, 10**9, window=1000, min_count=100)
    assert lim.should_stop(0, 30, 10) is None  # 40 seen < min_count
    trip = lim.check_runs(0, [(30, 10), (30, 10)])
    assert trip is not None and trip.reason == "ratio" and trip.total == 120


def test_dlq_limit_ratio_window_slides() -> None:
    lim = DlqLimit(0.5, 10**9, window=100, min_count=50)
    assert lim.should_stop(0, 40, 60) is None
    for _ in range(5):
        assert lim.should_stop(0, 0, 100) is None
    # the old invalid segment slid out: 45 invalid of the last ~150 is fine, 60 of 100 is not
    assert lim.should_stop(0, 45, 55) is None
    assert lim.should_stop(0, 60, 40) is not None


def test_dlq_limit_horizon_forgets_old_segments() -> None:
    lim = DlqLimit(0.5, 10**9, window=10_000, min_count=100, horizon_ms=1000)
    assert lim.should_stop(0, 90, 0) is None
    assert lim.should_stop(5000, 10, 100) is None  # the 90 invalid of t=0 are beyond the horizon


def test_validity_runs_and_merge() -> None:
    assert validity_runs([False, False, True, True, True, False, True]) == ((2, 3), (1, 1))
    assert validity_runs([True, True]) == ((0, 2),)
    assert validity_runs([False]) == ((1, 0),)
    assert validity_runs([]) == ()


def _norm(value: bytes, headers: object, *, now_ms: int, max_bytes: int, max_future_skew_ms: int
          ) -> Event | InvalidEvent:
    if not value or value.startswith(b"bad"):
        return InvalidEvent("malformed_json", "bad")
    return ev(int(value))


def test_normalize_records_splits_and_merge_joins_runs() -> None:
    recs = [Rec("t", 0, i, value=v) for i, v in enumerate([b"1", b"bad", b"bad", b"2", None])]
    nb = normalize_records(recs, _norm, now_ms=0, max_bytes=10, max_future_skew_ms=1)
    assert [e.id for e in nb.events] == ["e1", "e2"]
    assert [r.record.offset for r in nb.rejected] == [1, 2, 4]  # a tombstone is invalid
    assert nb.runs == ((0, 1), (2, 1), (1, 0))
    a = normalize_records(recs[:2], _norm, now_ms=0, max_bytes=10, max_future_skew_ms=1)
    b = normalize_records(recs[2:], _norm, now_ms=0, max_bytes=10, max_future_skew_ms=1)
    m = merge([a, b])
    assert m.runs == nb.runs and m.events == nb.events and len(m.rejected) == 3


def test_group_by_tenant_keeps_order() -> None:
    g = group_by_tenant([ev(1, "a"), ev(2, "b"), ev(3, "a")])
    assert [e.id for e in g["a"]] == ["e1", "e3"] and [e.id for e in g["b"]] == ["e2"]


# -- commit math ---------------------------------------------------------------------------------
def test_offsets_to_commit_is_last_plus_one_per_partition() -> None:
    recs = [Rec("t", 0, 5), Rec("t", 1, 9), Rec("t", 0, 7), Rec("t", 0, 6), Rec("u", 0, 0)]
    assert offsets_to_commit(recs) == {Partition("t", 0): 8, Partition("t", 1): 10, Partition("u", 0): 1}
    assert merge_offsets({Partition("t", 0): 3}, {Partition("t", 0): 2, Partition("t", 1): 1}) == {
        Partition("t", 0): 3, Partition("t", 1): 1}
    assert consumer_lag(100, 90) == 10 and consumer_lag(None, 1) is None and consumer_lag(5, 9) == 0


# -- DLQ record ------------------------------------------------------------------------------------
def test_dead_letter_headers_and_original_bytes() -> None:
    rec = Rec("events.raw", 3, 42, key=b"k", value=b"\xff not json",
              headers=(("es-format", b"native"), ("es-error-code", b"old")))
    dl = dead_letter(rec, InvalidEvent("malformed_json", "x" * 5000), now_ms=1234)
    assert dl.value == b"\xff not json" and dl.key == b"k"
    assert header(dl.headers, "es-error-code") == b"malformed_json"
    assert header(dl.headers, "es-source-topic") == b"events.raw"
    assert header(dl.headers, "es-source-partition") == b"3"
    assert header(dl.headers, "es-source-offset") == b"42"
    assert header(dl.headers, "es-dlq-time") == b"1234"
    assert len(header(dl.headers, "es-error-message") or b"") == 1024
    assert [k for k, _ in dl.headers].count("es-error-code") == 1
    assert ("es-format", b"native") in dl.headers
    assert original_headers(dl.headers) == (("es-format", b"native"),)
    assert {k for k, _ in dl.headers} >= set(DLQ_HEADERS)


def test_a_dead_letter_names_the_tenant_as_normalize_reads_it() -> None:
    assert letter_tenant(b"{oops", [("es-tenant", b"acme")]) == "acme"  # the header wins
    assert letter_tenant(b'{"tenant": "acme"}', [("es-tenant", b"globex")]) == "globex"
    assert letter_tenant(b'{"tenant": "acme", "type": 1}', []) == "acme"
    assert letter_tenant(b'{"dataset_id": "ds-1"}', []) == "ds-1"  # Trieve
    assert letter_tenant(b'{"tenantId": "ft"}', []) == "ft"  # Fluid Topics
    for value, headers in ((b"{oops", []), (b"[1]", []), (b'{"tenant": 5}', []),
                           (b'{"tenant": "a b"}', []), (b"{}", [("es-tenant", b"bad tenant!")])):
        assert letter_tenant(value, headers) is None, value


# -- retry policy ------------------------------------------------------------------------------------
def test_backoff_and_transient_classification() -> None:
    from redis.exceptions import ConnectionError, ResponseError

    d = backoff_delays(0.05, 1.0, 10.0)
    assert d[:3] == [0.05, 0.1, 0.2] and max(d) == 1.0 and sum(d) <= 10.0
    assert is_transient(ConnectionError("x")) and is_transient(ResponseError("OOM command not allowed"))
    assert not is_transient(ResponseError("ERR wrong number of arguments"))


# -- Lua arguments agree with keys.py --------------------------------------------------------------------
@pytest.mark.parametrize("user", [None, "u", "a:b{c}*d e\x00", "x" * 10_000, ""])
def test_encode_event_meta_fields(user: str | None) -> None:
    e = ev(7, user_id=user, type="ty:{pe}", stream_id="st|x", id="id|with\x00|bars")
    codec = BodyCodec()
    meta, body = encode_event(e, 3_600_000, codec)
    ts, win, day, u, t, slen, rest = meta.split(b"|", 6)
    assert int(ts) == e.timestamp and int(day) == day_of(e.timestamp)
    assert int(win) == e.timestamp - e.timestamp % 3_600_000
    assert u.decode() == user_part(user) and (user is not None or u == b"_")
    assert t.decode() == encode_part("ty:{pe}")
    assert rest == id_hash("id|with\x00|bars").encode() + b"st|x" + b"id|with\x00|bars" and int(slen) == 4
    assert body[:1] == b"\x04"  # a frame of dictionary 4
    assert codec.decode(body) == lean_payload(e)
    assert codec.event(body, 9, 4, eid=e.id, ts=e.timestamp) == e.with_positions(9, 4)
    _, plain = encode_event(e, 3_600_000, BodyCodec(compress=False))
    assert plain == lean_payload(e)
    # the key names the script builds from these parts are those of keys.py
    tk = KeyLayout("es").tenant("T")
    assert f"{tk.base}:u:{u.decode()}:{int(day)}" == tk.user_set(user_part(user), day_of(e.timestamp))
    h = type_set_of(e.timestamp)
    assert f"{tk.base}:t:{t.decode()}:{h}" == tk.type_set(encode_part("ty:{pe}"), h)


def test_script_builds_key_names_with_keys_py_suffixes() -> None:
    src = WRITE_SCRIPT.decode()
    for suffix in ("':gpos'", "':spos'", "':win'", "':q:'", "':qb'", "':tail'", "':u:'", "':t:'", "':ty:'", "':hc'",
                   "':offsets'", "':us'"):
        assert suffix in src
    tk = KeyLayout("p").tenant("T")
    assert (tk.id_buckets, tk.gpos, tk.spos, tk.windows, tk.seq_blocks, tk.tail, tk.types_of_hour(5), tk.offsets,
            tk.user_sets) == (
        "p:{T}:ib", "p:{T}:gpos", "p:{T}:spos", "p:{T}:win", "p:{T}:qb", "p:{T}:tail", "p:{T}:ty:5",
        "p:{T}:offsets", "p:{T}:us")


def test_prepare_chunks_groups_by_tenant_and_chunks() -> None:
    events = [ev(i, "a" if i % 3 else "b") for i in range(1200)]
    plan = prepare_chunks(events, KeyLayout("es"), window_ms=3_600_000, tail_maxlen=10, codec=BodyCodec(),
                          chunk_max=500)
    assert [len(c.indexes) for c in plan["a"]] == [500, 300]
    assert [len(c.indexes) for c in plan["b"]] == [400]
    assert plan["a"][0].key == "es:{a}:ib" and plan["a"][0].args[:6] == ("all", "es:{a}", "128", "10", "0", "0")
    idx = [i for c in plan["a"] for i in c.indexes]
    assert idx == sorted(idx) and len(plan["a"][1].args) == 6 + 2 * 300
    # every call carries the highest position of its tenant the writer saw acknowledged
    seen = prepare_chunks(events, KeyLayout("es"), window_ms=3_600_000, tail_maxlen=10, codec=BodyCodec(),
                          chunk_max=500, seen=lambda t: {"a": 41}.get(t, 0))
    assert [c.args[4] for c in seen["a"]] == ["41", "41"] and seen["b"][0].args[4] == "0"


def test_prepare_chunks_records_the_covered_offsets_with_each_tenants_last_chunk() -> None:
    events = [ev(i, "a" if i % 3 else "b") for i in range(1200)]
    covers = (("events.raw|0", 120), ("events.raw|3", 7))
    expected = {("a", "events.raw|0"): 100}
    plan = prepare_chunks(events, KeyLayout("es"), window_ms=3_600_000, tail_maxlen=10, codec=BodyCodec(),
                          chunk_max=500, covers=covers, expected=expected)
    first, last = plan["a"]
    assert first.args[5] == "0" and first.covers == () and len(first.args) == 6 + 2 * 500
    assert last.args[5:12] == ("2", "events.raw|0", "120", "100", "events.raw|3", "7", "")
    assert last.covers == ("events.raw|0", "events.raw|3") and len(last.args) == 12 + 2 * 300
    (only,) = plan["b"]  # tenant b expects nothing
    assert only.covers == last.covers and only.args[5:12] == ("2", "events.raw|0", "120", "", "events.raw|3", "7", "")


def test_confirmed_positions_go_out_as_runs() -> None:
    from eventstrata.hotstore.writer import _ranges

    assert _ranges([5, 1, 2, 3, 8, 7, 8]) == ["1", "3", "5", "5", "7", "8"]
    assert _ranges([]) == [] and _ranges([4]) == ["4", "4"]


def test_the_meta_carries_the_stream_key_of_the_store_and_stream() -> None:
    _, _, _, _, _, slen, rest = encode_event(ev(1, stream_id="s", store="b"), 3_600_000, BodyCodec())[0].split(b"|", 6)
    assert int(slen) == 4 and rest[8:12] == b"\0b\0s" == stream_key("b", "s")


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(["default", "b", "c.d-1"]), st.text(min_size=1, max_size=8)),
                      max_size=30))
def test_each_store_and_stream_has_its_own_stream_key(pairs: list[tuple[str, str]]) -> None:
    keys = {stream_key(store, sid): (store, sid) for store, sid in pairs}
    assert len(keys) == len(set(pairs))
    for store, sid in pairs:  # the default store's streams keep their id (unless it starts with NUL)
        assert (stream_key(store, sid) == sid.encode("utf-8", "surrogatepass")) == (
            store == "default" and not sid.startswith("\0"))


def test_encode_event_rejects_positioned_event() -> None:
    with pytest.raises(ValueError, match="positions"):
        encode_event(ev(1).with_positions(3, None), 3_600_000, BodyCodec())


def test_rebalance_listener_is_accepted_by_aiokafka() -> None:
    from aiokafka.abc import ConsumerRebalanceListener

    from eventstrata.ingest.rebalance import DrainOnRevoke

    assert issubclass(DrainOnRevoke, ConsumerRebalanceListener)


def test_dlq_cli_is_registered() -> None:
    from typer.testing import CliRunner

    from eventstrata.cli import app

    res = CliRunner().invoke(app, ["dlq", "--help"])
    assert res.exit_code == 0
    for cmd in ("list", "show", "replay"):
        assert cmd in res.output
