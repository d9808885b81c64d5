"""The remote CLI's administration through ``/v1/admin`` (a real API in this process, real
Kafka, the real ingest worker, Redis): ``keys``, ``dlq list|show`` and ``archive status`` with
an admin key, run with Redis and Kafka addresses that point nowhere (the CLI only knows the
API), each acting on the admin key's tenant only."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from api_support import closed_port, serving
from ingest_util import jmsg, native, produce, run_until
from typer.testing import CliRunner

from eventstrata.auth import ApiKeys
from eventstrata.cli import app
from eventstrata.client import AsyncClient
from eventstrata.config import Settings
from eventstrata.redisconn import connect_redis

pytestmark = pytest.mark.integration


async def _keys(settings: Settings) -> dict[str, str]:
    redis: Any = connect_redis(settings)
    try:
        keys = ApiKeys(redis, settings.layout())
        return {"admin": await keys.create("acme", scopes=("read", "admin")),
                "reader": await keys.create("acme", scopes=("read",)),
                "other": await keys.create("globex", scopes=("read", "admin"))}
    finally:
        await redis.aclose()


async def _cli(url: str, key: str, *args: str) -> Any:
    """The CLI in remote mode, with Redis and Kafka settings that reach nothing."""
    nowhere = {"EVENTSTRATA_REDIS_URL": f"redis://127.0.0.1:{closed_port()}/0",
               "EVENTSTRATA_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}",
               "EVENTSTRATA_API_URL": url, "EVENTSTRATA_API_KEY": key}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=nowhere)


async def test_remote_keys_dead_letters_and_archive_status_of_the_key_tenant(settings_factory) -> None:
    s = settings_factory(topic_partitions=1, api_key_cache_ms=0)
    keys = await _keys(s)
    bad = [
        (b"{oops", [("es-tenant", b"acme")], None),                      # malformed_json, acme by header
        jmsg({**native(1), "type": None}, es_format="native"),           # missing_field, acme by body
        jmsg({**native(2, tenant="globex"), "type": None}, es_format="native"),  # globex's
        (b"{nobody", [], None),                                          # names no tenant
    ]
    n = await produce(s.kafka_bootstrap, s.topic, [jmsg(native(0), es_format="native"), *bad], partition=0)
    await run_until(s, lambda p: p.totals["processed"] >= n and p.totals["dead_lettered"] >= len(bad))

    async with serving(s) as url:
        # dead letters: the tenant's two, counted by code; another tenant's one is not found
        listed = await _cli(url, keys["admin"], "dlq", "list", "--json")
        assert listed.exit_code == 0, listed.output
        letters = [orjson.loads(line) for line in listed.output.splitlines()]
        assert [(x["offset"], x["code"], x["tenant"]) for x in letters] == [
            (0, "malformed_json", "acme"), (1, "missing_field", "acme")]
        shown = await _cli(url, keys["admin"], "dlq", "show", "0", "--partition", "0", "--json")
        assert shown.exit_code == 0, shown.output
        assert orjson.loads(shown.output)["value"] == "{oops"
        hidden = await _cli(url, keys["admin"], "dlq", "show", "2", "--json")
        assert hidden.exit_code == 1 and "404 not_found" in hidden.output
        async with AsyncClient(url, keys["admin"]) as es:
            got = await es.dead_letters(code="missing_field", limit=5)
            assert [x["offset"] for x in got.letters] == [1]
            assert got.counts == {"malformed_json": 1, "missing_field": 1}

        # archive status of the key's tenant: nothing archived yet, the event's window is hot
        status = await _cli(url, keys["admin"], "archive", "status", "--json")
        assert status.exit_code == 0, status.output
        (row,) = orjson.loads(status.output)
        assert (row["tenant"], row["watermark_ms"], row["files"]) == ("acme", 0, 0) and row["hot_windows"] >= 1

        # keys: create a read key, list the tenant's keys only, revoke it
        made = await _cli(url, keys["admin"], "keys", "create", "--scope", "read", "--json")
        assert made.exit_code == 0, made.output
        new = orjson.loads(made.output)
        assert new["tenant"] == "acme" and new["scopes"] == ["read"]
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {new['key']}"}) as c:
            assert (await c.get("/v1/events")).json()["events"][0]["id"] == "evt-0"
            listing = await _cli(url, keys["admin"], "keys", "list", "--json")
            assert listing.exit_code == 0, listing.output
            rows = orjson.loads(listing.output)
            assert {r["tenant"] for r in rows} == {"acme"} and len(rows) == 3
            assert {tuple(r["scopes"]) for r in rows} == {("read", "admin"), ("read",)}
            revoked = await _cli(url, keys["admin"], "keys", "revoke", new["key"])
            assert revoked.exit_code == 0 and revoked.output.strip() == "revoked"
            assert (await c.get("/v1/events")).status_code == 401

        # another tenant's key cannot be revoked (not found) and keeps working
        globex_lookup = keys["other"].split("_")[1]
        foreign = await _cli(url, keys["admin"], "keys", "revoke", globex_lookup)
        assert foreign.exit_code == 1 and "404 not_found" in foreign.output
        async with AsyncClient(url, keys["other"]) as es:
            assert [k.tenant for k in await es.api_keys()] == ["globex"]
            assert (await es.dead_letters()).counts == {"missing_field": 1}

        # the tenant is the key's; a key without the admin scope is refused
        named = await _cli(url, keys["admin"], "keys", "create", "--tenant", "globex")
        assert named.exit_code == 2 and "--tenant" in named.output
        refused = await _cli(url, keys["reader"], "keys", "list")
        assert refused.exit_code == 1 and "403 forbidden" in refused.output
        async with httpx.AsyncClient(base_url=url) as c:
            bad_scope = await c.post("/v1/admin/keys", content=b'{"scopes": ["root"]}',
                                     headers={"Authorization": f"Bearer {keys['admin']}"})
            assert bad_scope.status_code == 400 and bad_scope.json()["error"]["code"] == "invalid_body"



async def test_dead_letters_answer_503_while_kafka_is_unreachable(settings_factory) -> None:
    s = settings_factory(topic="unused.admin", dlq_topic="unused.admin.dlq",
                         kafka_bootstrap=f"127.0.0.1:{closed_port()}")
    admin = (await _keys(s))["admin"]
    async with serving(s) as url, httpx.AsyncClient(base_url=url, timeout=60) as c:
        r = await c.get("/v1/admin/dead-letters", headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert (await c.get("/v1/admin/archive", headers={"Authorization": f"Bearer {admin}"})).status_code == 200
