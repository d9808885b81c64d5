"""The oracle: events are produced to Kafka and stored by a real ingest worker; then, for
hypothesis-generated filter combinations, every page walk through the HTTP API equals the brute
force over the produced events (EventFilter.matches + sort by (time, id)) —
order, content and totals — over a dataset split across both tiers (real Redis + real Parquet
via the real archiver), with several tenants, odd user ids and many equal timestamps.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from query_support import (
    DAY_MS,
    GROUPS,
    NAMES,
    REALMS,
    ROLES,
    TYPES,
    USERS,
    QueryStack,
    assert_rejected_within,
    brute_force,
    expected_json,
    make_events,
    walk,
)

from conftest import S3Archive
from eventstrata.query.filters import EventFilter

pytestmark = pytest.mark.integration

TENANTS = ("tA", "tB", "tC")


@pytest.fixture(scope="module", params=["single", "cluster-sharded-s3"])
def stack(request: pytest.FixtureRequest, redis_url: str, kafka_bootstrap: str, topic_factory: Any,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[QueryStack, dict[str, str], int]]:
    """The dataset on a single Redis with the archive in a local directory, and on the 3-master
    Cluster with every tenant's hot data spread over 6 shards (reads fan out over them and
    merge) and the archive in an S3 bucket (SeaweedFS; cold reads through the local copies)."""
    if request.param == "single":
        s = QueryStack(redis_url, tmp_path_factory.mktemp("oracle"))
    else:
        s3: S3Archive = request.getfixturevalue("s3_archive")
        s = QueryStack(request.getfixturevalue("redis_cluster_url"), tmp_path_factory.mktemp("oracle"),
                       redis_cluster=True, hot_shards=6, archive_uri=s3.uri(f"oracle-{uuid.uuid4().hex[:8]}"),
                       s3_endpoint=s3.endpoint)
    s.start()
    now = int(time.time() * 1000)
    # every event goes through Kafka and a real ingest worker
    events = [e for i, t in enumerate(TENANTS)
              for e in make_events(t, 300, start_ms=now - 6 * DAY_MS, span_ms=6 * DAY_MS, seed=10 + i)]
    s.ingest(events, bootstrap=kafka_bootstrap, topic=topic_factory(4))
    s.archive(now)  # hot retention 2d: ~2/3 of every tenant goes to Parquet
    keys = {t: s.create_key(t) for t in TENANTS}
    yield s, keys, now
    s.stop()


def test_dataset_spans_both_tiers(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, _, now = stack
    for t in TENANTS:
        w = s.watermark(t)
        evs = s.snapshot(t)
        assert now - 3 * DAY_MS < w < now - DAY_MS
        assert sum(e.timestamp < w for e in evs) > 80
        assert sum(e.timestamp >= w for e in evs) > 40


def _filters(now: int) -> st.SearchStrategy[dict[str, Any]]:
    users = [u for u in USERS if u is not None]
    times = st.integers(now - 7 * DAY_MS, now + 1000)
    return st.fixed_dictionaries({}, optional={
        "user_id": st.lists(st.sampled_from(users), min_size=1, max_size=3, unique=True),
        "type": st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True),
        "exclude_type": st.lists(st.sampled_from(TYPES), min_size=1, max_size=2, unique=True),
        "name": st.lists(st.sampled_from([n for n in NAMES if n]), min_size=1, max_size=1),
        "source": st.sampled_from(["web", "app"]),
        "session_id": st.sampled_from(["s1", "s2"]),
        "stream_id": st.sampled_from(["st-1", "st-2"]),
        "transaction_id": st.just("tx1"),
        "is_conversion": st.booleans(),
        "realm": st.lists(st.sampled_from(REALMS), min_size=1, max_size=2, unique=True),
        "group": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True),
        "role": st.lists(st.sampled_from(ROLES), min_size=1, max_size=1),
        "data.plan": st.sampled_from(["pro", "free", "5", 5]),
        "data.n": st.sampled_from([1, 2, 5, "1"]),
        "data.nested.k": st.sampled_from(["a", "b"]),
        "data.nested.deep.x": st.booleans(),
        "metadata.src": st.sampled_from(["web", "ios"]),
        "metadata.v": st.sampled_from([1, 2]),
        "since": times,
        "until": times,
    })


def _to_filter(spec: dict[str, Any]) -> EventFilter:
    data = tuple((tuple(k.split(".")[1:]), v) for k, v in spec.items() if k.startswith("data."))
    meta = tuple((tuple(k.split(".")[1:]), v) for k, v in spec.items() if k.startswith("metadata."))
    return EventFilter(
        user_ids=tuple(spec.get("user_id", ())), types=tuple(spec.get("type", ())),
        exclude_types=tuple(spec.get("exclude_type", ())), names=tuple(spec.get("name", ())),
        source=spec.get("source"), session_id=spec.get("session_id"), stream_id=spec.get("stream_id"),
        transaction_id=spec.get("transaction_id"), is_conversion=spec.get("is_conversion"),
        realms=tuple(spec.get("realm", ())), groups=tuple(spec.get("group", ())),
        roles=tuple(spec.get("role", ())), data_eq=data, metadata_eq=meta,
        since_ms=spec.get("since"), until_ms=spec.get("until"),
    )


def _to_query(spec: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in spec.items():
        if isinstance(v, list):
            out.extend((k, x) for x in v)
        elif isinstance(v, bool):
            out.append((k, "true" if v else "false"))
        elif k.startswith(("data.", "metadata.")):
            # Strings go quoted when they would otherwise parse as JSON ("5" vs 5).
            out.append((k, f'"{v}"' if isinstance(v, str) and v.isdigit() else str(v)))
        else:
            out.append((k, str(v)))
    return out


def _to_body(spec: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for k, v in spec.items():
        if k.startswith(("data.", "metadata.")):
            root, _, path = k.partition(".")
            body.setdefault(root, {})[path] = v
        else:
            body[k] = v
    return body


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_oracle_page_walks(stack: tuple[QueryStack, dict[str, str], int], data: st.DataObject) -> None:
    s, keys, now = stack
    tenant = data.draw(st.sampled_from(TENANTS))
    spec = data.draw(_filters(now))
    if "since" in spec and "until" in spec and spec["until"] <= spec["since"]:
        spec["since"], spec["until"] = spec["until"], spec["since"] + 1
    order = data.draw(st.sampled_from(["desc", "asc"]))
    limit = data.draw(st.sampled_from([3, 7, 17, 50, 1000]))
    use_post = data.draw(st.booleans())
    flt = _to_filter(spec)
    expected = brute_force(s.snapshot(tenant), flt, order)
    with httpx.Client(base_url=s.base_url, timeout=30) as client:
        if use_post:
            body = {**_to_body(spec), "order": order, "limit": limit, "include_total": True}
            got, total, pages = walk(client, keys[tenant], body=body)
        else:
            params = [*_to_query(spec), ("order", order), ("limit", str(limit)), ("include_total", "true")]
            got, total, pages = walk(client, keys[tenant], params)
        assert [e["id"] for e in got] == [e.id for e in expected]
        assert got == [expected_json(e) for e in expected]
        assert total == len(expected)
        assert pages <= len(expected) // limit + 1 + (1 if len(expected) % limit == 0 else 0)
        count = client.get("/v1/events/count", params=_to_query(spec),
                           headers={"Authorization": f"Bearer {keys[tenant]}"})
        assert count.status_code == 200, count.text
        assert count.json()["count"] == len(expected)


def test_get_by_id_both_tiers(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    w = s.watermark("tA")
    evs = s.snapshot("tA")
    cold = [e for e in evs if e.timestamp < w][:5]
    hot = [e for e in evs if e.timestamp >= w][:5]
    assert cold and hot
    with httpx.Client(base_url=s.base_url) as client:
        for e in cold + hot:
            r = client.get(f"/v1/events/{httpx.URL(path=e.id).raw_path.decode()}",
                           headers={"Authorization": f"Bearer {keys['tA']}"})
            assert r.status_code == 200, r.text
            assert r.json() == expected_json(e)


def test_count_buckets_match_brute_force(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, now = stack
    since, until = now - 4 * DAY_MS, now
    with httpx.Client(base_url=s.base_url) as client:
        for extra in ([], [("type", "view")], [("data.plan", "pro")]):
            r = client.get("/v1/events/count", params=[("since", str(since)), ("until", str(until)),
                                                        ("bucket", "1d"), *extra],
                           headers={"Authorization": f"Bearer {keys['tB']}"})
            assert r.status_code == 200, r.text
            doc = r.json()
            flt = _to_filter({"since": since, "until": until,
                              **{k: ([v] if k == "type" else v) for k, v in extra}})
            exp = brute_force(s.snapshot("tB"), flt, "asc")
            assert doc["count"] == len(exp)
            per: dict[int, int] = {}
            for e in exp:
                per[e.timestamp - e.timestamp % DAY_MS] = per.get(e.timestamp - e.timestamp % DAY_MS, 0) + 1
            assert [b["count"] for b in doc["buckets"]] == [per.get(b, 0) for b in
                                                            range(since - since % DAY_MS, until, DAY_MS)]


def test_sort_gpos_walk(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    evs = s.snapshot("tC")
    for order in ("asc", "desc"):
        exp = sorted(evs, key=lambda e: (e.global_position, e.id), reverse=order == "desc")
        with httpx.Client(base_url=s.base_url) as client:
            got, _, _ = walk(client, keys["tC"], body={"sort": "gpos", "order": order, "limit": 37})
        assert [e["id"] for e in got] == [e.id for e in exp]


def test_offset_paging(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    exp = brute_force(s.snapshot("tA"), EventFilter(types=("view", "click")), "desc")
    with httpx.Client(base_url=s.base_url) as client:
        for offset in (0, 7, len(exp) - 3, len(exp) + 5):
            r = client.get("/v1/events", params=[("type", "view"), ("type", "click"), ("offset", str(offset)),
                                                  ("limit", "10")],
                           headers={"Authorization": f"Bearer {keys['tA']}"})
            assert r.status_code == 200, r.text
            assert [e["id"] for e in r.json()["events"]] == [e.id for e in exp[offset:offset + 10]]
        r = client.get("/v1/events", params={"offset": "10001"}, headers={"Authorization": f"Bearer {keys['tA']}"})
        assert r.status_code == 400




def test_sort_spos_walk(stack: tuple[QueryStack, dict[str, str], int]) -> None:
    s, keys, _ = stack
    evs = [e for e in s.snapshot("tB") if e.stream_id == "st-1"]
    for order in ("asc", "desc"):
        exp = sorted(evs, key=lambda e: (e.stream_position if e.stream_position is not None else -1,
                                         e.timestamp, e.id), reverse=order == "desc")
        with httpx.Client(base_url=s.base_url) as client:
            got, _, _ = walk(client, keys["tB"], body={"sort": "spos", "order": order, "limit": 11,
                                                       "stream_id": "st-1"})
        assert [e["id"] for e in got] == [e.id for e in exp]
        assert [e["stream_position"] for e in got] == [e.stream_position for e in exp]


def test_keys_cli(stack: tuple[QueryStack, dict[str, str], int], monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from eventstrata.cli import app

    s, keys, _ = stack
    for k, v in s.settings.to_env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("EVENTSTRATA_API_KEY", raising=False)
    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--tenant", "cliT", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["tenant"] == "cliT" and doc["key"].startswith("es_")
    lookup = doc["key"].split("_")[1]
    r = runner.invoke(app, ["keys", "list", "--tenant", "cliT", "--json"])
    rows = json.loads(r.output)
    assert [(x["lookup"], x["revoked"]) for x in rows] == [(lookup, False)]
    assert doc["key"] not in r.output
    with httpx.Client(base_url=s.base_url) as c:
        assert c.get("/v1/events", headers={"Authorization": f"Bearer {doc['key']}"}).status_code == 200
        assert runner.invoke(app, ["keys", "revoke", lookup]).exit_code == 0
        assert_rejected_within(c, doc["key"], s.settings.api_key_cache_ms / 1000 + 0.5)
    assert json.loads(runner.invoke(app, ["keys", "list", "--tenant", "cliT", "--json"]).output)[0]["revoked"]
    assert runner.invoke(app, ["keys", "revoke", "nosuchkk"]).exit_code == 1
    table = runner.invoke(app, ["query", "--tenant", "tB", "type=view", "limit=5"])
    assert table.exit_code == 0 and "view" in table.output and "time (UTC)" in table.output, table.output
    r = runner.invoke(app, ["query", "--tenant", "tB", "type=view", "limit=5", "--json"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.output.splitlines() if x.strip()]
    assert len(lines) == 5 and all(x["type"] == "view" for x in lines)
    # remote mode: the same query through the API with tB's key (the tenant is the key's)
    remote = runner.invoke(app, ["query", "--api", s.base_url, "--key", keys["tB"], "type=view", "limit=5",
                                 "--json"])
    assert remote.exit_code == 0, remote.output
    assert [json.loads(x) for x in remote.output.splitlines() if x.strip()] == lines
    local_count = runner.invoke(app, ["query", "--tenant", "tB", "type=view", "--count"]).output.strip()
    assert int(local_count) > 0
    assert runner.invoke(app, ["count", "--tenant", "tB", "type=view"]).output.strip() == local_count
    monkeypatch.setenv("EVENTSTRATA_API_URL", s.base_url)
    monkeypatch.setenv("EVENTSTRATA_API_KEY", keys["tB"])
    assert runner.invoke(app, ["query", "type=view", "--count"]).output.strip() == local_count
    assert runner.invoke(app, ["count", "type=view"]).output.strip() == local_count
    refused = runner.invoke(app, ["query", "--key", "es_aaaaaaaa_" + "x" * 43, "type=view"])
    assert refused.exit_code == 1 and "401 unauthorized" in refused.output
