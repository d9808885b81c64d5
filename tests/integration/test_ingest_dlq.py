"""Every DLQ reason, with its headers; good events of the same batch stored; DLQ limit."""

from __future__ import annotations

import asyncio
import time

import pytest
from ingest_util import (
    committed,
    end_offsets,
    jmsg,
    native,
    produce,
    read_all,
    run_until,
    stored_ids,
)
from redis.asyncio import Redis

from eventstrata.hotstore.codec import BodyCodec
from eventstrata.hotstore.read import read_events
from eventstrata.hotstore.tailentry import entry_count, first_position, parse_entry_id
from eventstrata.ingest.dlq import header
from eventstrata.ingest.worker import EXIT_DLQ_LIMIT
from eventstrata.keys import (
    SEQ_BLOCK,
    KeyLayout,
    body_member,
    day_of,
    encode_part,
    ids_value,
    seq_value,
    short_member,
    split_member,
    type_set_of,
    user_part,
)
from eventstrata.model import INVALID_CODES

pytestmark = pytest.mark.integration

FAR_FUTURE = int(time.time() * 1000) + 30 * 86_400_000


def bad_messages() -> dict[str, tuple[bytes, list[tuple[str, bytes]], bytes | None]]:
    """One message per InvalidEvent code."""
    return {
        "malformed_json": (b'{"id": "x", "type": ', [], None),
        "not_an_object": (b"[1, 2, 3]", [], None),
        "unknown_format": jmsg({"hello": "world"}),
        "missing_field": jmsg({k: v for k, v in native(900).items() if k != "type"}, es_format="native"),
        "wrong_type": jmsg(native(901, items="not-a-list"), es_format="native"),
        "bad_tenant": jmsg(native(902, tenant="bad tenant!"), es_format="native"),
        "bad_timestamp": jmsg(native(903, timestamp="not a time"), es_format="native"),
        "future_timestamp": jmsg(native(904, timestamp=FAR_FUTURE), es_format="native"),
        "oversize": jmsg(native(905, data={"pad": "y" * 300_000}), es_format="native"),
        "bad_id": jmsg(native(906, id={"an": "object"}), es_format="native"),
        "bad_store": jmsg(native(907, store="bad store!"), es_format="native"),
    }


async def test_every_dlq_reason_dead_lettered_with_headers_good_events_stored(settings_factory, kafka_bootstrap):
    s = settings_factory(topic_partitions=1, max_event_bytes=262_144)
    bad = bad_messages()
    assert set(bad) == set(INVALID_CODES)
    msgs = []
    expected_bad: dict[int, tuple[str, bytes]] = {}
    good_ids = []
    for i, (code, (value, headers, _)) in enumerate(bad.items()):
        good = native(i)
        good_ids.append(good["id"])
        msgs.append(jmsg(good, es_format="native"))
        expected_bad[len(msgs)] = (code, value)
        msgs.append((value, [*headers, ("x-trace", f"trace-{code}".encode())], f"key-{code}".encode()))
    n = await produce(kafka_bootstrap, s.topic, msgs, partition=0)

    code = await run_until(s, lambda p: p.totals["processed"] >= n and p.totals["dead_lettered"] >= len(bad))
    assert code == 0

    # good events of the same batches are stored
    r = Redis.from_url(s.redis_url)
    tk = KeyLayout(s.key_prefix).tenant("acme")
    stored = set(await stored_ids(r, tk))
    assert stored == set(good_ids)

    # one dead letter per reason, original bytes + key + headers, and the DLQ headers
    dead = await read_all(kafka_bootstrap, s.dlq_topic, 1)
    assert len(dead) == len(bad)
    by_code = {header(d.headers, "es-error-code").decode(): d for d in dead}
    assert set(by_code) == set(INVALID_CODES)
    for offset, (code_, value) in expected_bad.items():
        d = by_code[code_]
        assert d.value == value
        assert d.key == f"key-{code_}".encode()
        assert header(d.headers, "x-trace") == f"trace-{code_}".encode()
        assert header(d.headers, "es-source-topic") == s.topic.encode()
        assert header(d.headers, "es-source-partition") == b"0"
        assert header(d.headers, "es-source-offset") == str(offset).encode()
        assert (header(d.headers, "es-error-message") or b"").strip()
        t = int(header(d.headers, "es-dlq-time"))
        assert abs(t - time.time() * 1000) < 600_000

    # offsets committed only after both writes: the whole topic
    assert await committed(kafka_bootstrap, s.consumer_group, s.topic, 1) == {0: n}
    await r.aclose()


async def test_stored_body_carries_positions_and_reads_back(settings_factory, kafka_bootstrap):
    s = settings_factory(topic_partitions=2)
    src = native(1, user_id="a:b{c}*", type="weird type:{x}", stream_id="order-1")
    await produce(kafka_bootstrap, s.topic, [jmsg(src, es_format="native"), jmsg(native(2, stream_id="order-1"))])
    assert await run_until(s, lambda p: p.totals["stored"] >= 2) == 0
    r = Redis.from_url(s.redis_url)
    tk = KeyLayout(s.key_prefix).tenant("acme")
    ts = src["timestamp"]
    w, day = ts - ts % s.window_ms, day_of(ts)
    [ev] = await read_events(r, tk, ["evt-1"], codec=BodyCodec())
    assert ev is not None and ev.user_id == "a:b{c}*" and ev.type == "weird type:{x}"
    assert ev.global_position in (1, 2) and ev.stream_position in (1, 2)
    u, t = user_part("a:b{c}*"), encode_part("weird type:{x}")
    assert (await stored_ids(r, tk))["evt-1"] == ids_value(ev.global_position, ev.stream_position)
    # the key names and members keys.py computes hold the event; the body is in the user's set
    [(member, score)] = await r.zrange(tk.user_set(u, day), 0, -1, withscores=True)
    assert score == ts and member.startswith(b"evt-1\0\0" + t.encode())
    body = split_member(member)[1].split(b"|", 3)[3]
    assert BodyCodec().event(body, ev.global_position, ev.stream_position, eid="evt-1", ts=ts) == ev
    assert member == body_member("evt-1", t, ev.global_position, ev.stream_position, body)
    assert await r.zscore(tk.type_set(t, type_set_of(ts)), short_member("evt-1", u)) == ts
    assert await r.zscore(tk.types_of_hour(type_set_of(ts)), t) == 0  # the hour's types registry
    g = ev.global_position
    assert await r.hget(tk.seq_block(g // SEQ_BLOCK), str(g)) == seq_value(u, ts) == f"{u}|{ts}".encode()
    assert await r.zscore(tk.seq_blocks, str(g // SEQ_BLOCK)) == g // SEQ_BLOCK
    assert await r.zscore(tk.windows, str(w)) == w
    # the tail announces both new events; the events come from the hot tier by position
    entries = await r.xrange(tk.tail)
    assert sum(entry_count(i, f) for i, f in entries) == 2 and all(set(f) == {b"n"} for _, f in entries)
    assert first_position(*entries[0]) == 1 and parse_entry_id(entries[-1][0]) == 2
    assert b"acme" in await r.smembers(KeyLayout(s.key_prefix).tenants)
    await r.aclose()


async def test_dlq_limit_stops_worker_on_flood_without_committing(settings_factory, kafka_bootstrap):
    s = settings_factory(topic_partitions=1, dlq_max_consecutive=50)
    n = await produce(kafka_bootstrap, s.topic, [(b"not json %d" % i, [], None) for i in range(500)])
    code = await run_until(s, lambda p: False, timeout=60)
    assert code == EXIT_DLQ_LIMIT
    assert await committed(kafka_bootstrap, s.consumer_group, s.topic, 1) == {0: None}
    assert await end_offsets(kafka_bootstrap, s.dlq_topic, 1) == {0: 0}
    assert n == 500


async def test_dlq_cli_list_show_replay(settings_factory, kafka_bootstrap):
    import json

    from typer.testing import CliRunner

    from eventstrata.cli import app

    s = settings_factory(topic_partitions=1)
    msgs = [jmsg(native(1), es_format="native"), (b"{nope", [("x-h", b"1")], b"k1"),
            jmsg({"hello": 1}), ]
    n = await produce(kafka_bootstrap, s.topic, msgs, partition=0)
    assert await run_until(s, lambda p: p.totals["processed"] >= n) == 0
    env = s.to_env()
    runner = CliRunner()

    def cli(*args):
        res = await_free(runner.invoke, app, list(args), env=env)
        assert res.exit_code == 0, res.output
        return res.output

    out = await asyncio.to_thread(cli, "dlq", "list", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["code"] for r in rows] == ["malformed_json", "unknown_format"]
    assert rows[0]["source"] == f"{s.topic}[0]@1"
    shown = json.loads(await asyncio.to_thread(cli, "dlq", "show", str(rows[0]["offset"]), "--json"))
    assert shown["value"] == "{nope" and shown["key"] == "k1" and ["x-h", "1"] in shown["headers"]
    replayed = json.loads(await asyncio.to_thread(cli, "dlq", "replay", "--code", "malformed_json", "--json"))
    assert replayed["replayed"] == 1
    raw = await read_all(kafka_bootstrap, s.topic, 1)
    assert len(raw) == n + 1 and raw[-1].value == b"{nope" and raw[-1].key == b"k1"
    assert [k for k, _ in raw[-1].headers] == ["x-h"]
    # the replay's progress bar counts each acknowledgement
    from eventstrata.ingest.dlq_topic import read_letters, republish

    acks: list[int] = []
    letters = await read_letters(kafka_bootstrap, s.dlq_topic, code="unknown_format")
    assert await republish(kafka_bootstrap, s.topic, letters, max_request_size=1_048_576,
                           on_acked=acks.append) == 1
    assert acks == [1] and len(await read_all(kafka_bootstrap, s.topic, 1)) == n + 2


def await_free(fn, *args, **kw):
    return fn(*args, **kw)
