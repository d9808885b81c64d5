"""Pure helpers of the benchmark harness: statistics, dataset shape, parsing of tool output."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from eventstrata.model import FORMATS
from eventstrata_bench import openloop, scen_remote
from eventstrata_bench.baseline_pg import copy_lines
from eventstrata_bench.dataset import DAY_MS, DatasetSpec, ZipfSampler, generate, load_sample_fn
from eventstrata_bench.infra import BenchError
from eventstrata_bench.machine import machine_tag, parse_cpu_model, parse_mem_total_kib, parse_proc_stat_cpu
from eventstrata_bench.profile import summarize_collapsed
from eventstrata_bench.results import Metric, Run, Target, markdown_table, render_markdown
from eventstrata_bench.scen_reads import Row, api_requests, build_targets, lua_script, parse_wrk
from eventstrata_bench.stats import percentile, summarize, zipf_weights


def test_percentile_matches_linear_interpolation() -> None:
    data = [float(x) for x in range(1, 101)]  # 1..100
    assert percentile(data, 50) == pytest.approx(50.5)
    assert percentile(data, 99) == pytest.approx(99.01)
    assert percentile(data, 0) == 1.0
    assert percentile(data, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0  # unsorted input


def test_percentile_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_counts_samples() -> None:
    s = summarize([1, 2, 3, 4, 100])
    assert s.count == 5
    assert s.p50 == 3
    assert s.maximum == 100
    assert s.minimum == 1
    assert s.mean == pytest.approx(22)
    assert s.p99 > 90


def test_zipf_weights_are_normalized_and_long_tailed() -> None:
    w = zipf_weights(1000, 1.0)
    assert sum(w) == pytest.approx(1.0)
    assert w == sorted(w, reverse=True)
    assert w[0] / w[99] == pytest.approx(100.0)


def test_zipf_sampler_prefers_low_ranks() -> None:
    rng = random.Random(1)
    z = ZipfSampler(1000, 1.0)
    counts = Counter(z.draw(rng) for _ in range(20_000))
    assert all(0 <= k < 1000 for k in counts)
    assert counts[0] > counts[10] > counts[500]


def test_dataset_shape() -> None:
    now = 1_763_900_000_000
    spec = DatasetSpec(events=2_000, users_per_tenant=300, span_days=90)
    events = list(generate(spec, now, load_sample_fn()))
    assert len(events) == 2_000
    assert {e.tenant for e in events} == set(spec.tenants)
    tenants = Counter(e.tenant for e in events)
    assert tenants["acme"] > tenants["umbrella"]
    assert all(now - 90 * DAY_MS <= e.ts_ms < now for e in events)
    # 90 days of history of which the last 7 are hot: roughly 7/90 of the events
    hot = sum(1 for e in events if e.ts_ms >= now - 7 * DAY_MS)
    assert 0.04 < hot / len(events) < 0.12
    users = Counter(e.user_id for e in events)
    top = users.most_common(1)[0][1]
    assert top > 10 * (len(events) / len(users))  # long-tailed activity
    if load_sample_fn() is not None:
        assert {e.fmt for e in events} == set(FORMATS)
    mean = sum(len(e.value) for e in events) / len(events)
    assert 400 < mean < 900
    assert all(("es-tenant", e.tenant.encode()) in e.headers for e in events)
    # deterministic for one spec
    again = list(generate(spec, now, load_sample_fn()))
    assert [e.value for e in again[:50]] == [e.value for e in events[:50]]


def test_proc_stat_parse_handles_spaces_in_comm() -> None:
    fields = ["S"] + ["0"] * 10 + ["250", "150"] + ["0"] * 30
    text = "1234 (python worker (x)) " + " ".join(fields)
    assert parse_proc_stat_cpu(text) == pytest.approx(400 / __import__("os").sysconf("SC_CLK_TCK"))


def test_machine_text_parsers() -> None:
    assert parse_cpu_model("processor: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert parse_cpu_model("") == "unknown"
    assert parse_mem_total_kib("MemTotal:       24000000 kB\nMemFree: 1 kB\n") == 24_000_000
    assert machine_tag("my host/1") == "my-host-1"


def test_target_and_markdown() -> None:
    m = Metric("1 ingest", "events/s", "events/s", 60_000.0, "total", 1_000_000, target=Target(">=", 50_000))
    miss = Metric("2 freshness", "p99", "ms", 150.0, "p99", 300, target=Target("<=", 100))
    assert m.met is True
    assert miss.met is False
    table = markdown_table([m, miss])
    assert "| 60,000 |" in table and "**no**" in table and "1,000,000" in table
    run = Run("2026-01-01T00:00:00Z", "full", {"cores": 2, "cpu_model": "X", "ram_gib": 24, "tag": "vm"},
              [m, miss], missing={"tail": "API missing"})
    text = render_markdown(run)
    assert "2 cores" in text and "API missing" in text


def test_copy_lines_escape() -> None:
    line = next(iter(copy_lines([("t", "i\td", None, "x", 5, '{"a":"b\\\\c\\n"}')])))
    assert line == 't\ti\\td\t\\N\tx\t5\t{"a":"b\\\\\\\\c\\\\n"}\n'


def test_wrk_output_parse_and_script() -> None:
    out = "Running 10s test\nBENCH_SUMMARY 20000 10000000 3 1\nBENCH_P 1.25 8.5\nBENCH_Q 0.5 1.0 2.0\n"
    r = parse_wrk(out)
    assert r.requests == 20_000 and r.seconds == 10.0 and r.rps == 2_000
    assert (r.p50_ms, r.p99_ms, r.bad_status, r.socket_errors) == (1.25, 8.5, 3, 1)
    assert r.quantiles_ms == (0.5, 1.0, 2.0)
    script = lua_script([('/v1/events?user_id=a"b', "acme")], {"acme": "k\\1"})
    assert '"/v1/events?user_id=a\\"b"' in script and '"k\\\\1"' in script


def test_read_targets_from_rows() -> None:
    now = 10 * 3_600_000
    rows = [Row("acme", f"id{i}", f"u{i % 7}", "click" if i % 3 else "buy", now - i * 60_000) for i in range(500)]
    t = build_targets(rows, now, heavy=3, random_users=2, n_ids=50)
    assert len(t.users) == 5 and len(t.ids) == 50
    assert all(tenant == "acme" for tenant, _ in t.users)
    assert {ty for _, ty, _ in t.types_hour} == {"click", "buy"}
    reqs = api_requests(t)
    assert reqs["get by id"][0][0].startswith("/v1/events/id")
    assert "limit=50" in reqs["user newest 50"][0][0]


def test_random_user_targets_have_a_full_page() -> None:
    now = 10 * 3_600_000
    # user k has 10 * k events: u5.. have at least 50
    rows = [Row("acme", f"id{k}-{j}", f"u{k}", "click", now - j * 1000) for k in range(1, 13) for j in range(10 * k)]
    t = build_targets(rows, now, heavy=2, random_users=20, n_ids=5, page=50)
    users = [u for _, u in t.users]
    assert users[:2] == ["u12", "u11"]  # the most active first
    assert sorted(users[2:], key=lambda u: int(u[1:])) == [f"u{k}" for k in range(5, 11)]


def test_profile_summary() -> None:
    text = "main (w.py:1);run (eventstrata/x.py:3);hot (eventstrata/y.py:9) 30\nmain (w.py:1);idle (sel.py:2) 10\n"
    s = summarize_collapsed(text)
    assert "40 samples" in s
    assert "75.0%  hot (eventstrata/y.py)" in s


def test_probe_sample_events_are_canonical_and_in_their_time_span() -> None:
    from eventstrata.model import FORMATS
    from eventstrata_bench.probes import sample_events

    now = 1_767_225_600_000
    live = sample_events(100, now, live=True, tenants=("t0", "t1"))
    assert len(live) == 100
    assert all(now - 600_000 <= e.timestamp < now for e in live)
    assert {e.tenant for e in live} == {"t0", "t1"}
    assert {e.format for e in live} == set(FORMATS)
    backfill = sample_events(100, now, live=False)
    assert min(e.timestamp for e in backfill) < now - 600_000
    assert sample_events(20, now, live=False) == backfill[:20]  # deterministic


# -- open loop (vegeta) ---------------------------------------------------------------------------

VEGETA_REPORT = (
    '{"latencies":{"total":10378014,"mean":2075602,"50th":1309784,"90th":5172839,"95th":5172839,'
    '"99th":5172839,"max":5172839,"min":900349},"bytes_in":{"total":0,"mean":0},"requests":5,'
    '"rate":6.253248797246999,"throughput":0,"success":0,"status_codes":{"0":5},'
    '"errors":["Get \\"http://127.0.0.1:1/x\\": connect: connection refused"]}'
)  # vegeta v12.12.0 `report -type=json` of a run against a closed port


def test_parse_vegeta_report_converts_ns_to_ms() -> None:
    r = openloop.parse_report(VEGETA_REPORT)
    assert r.requests == 5 and r.success == 0.0 and r.throughput == 0.0
    assert r.p50_ms == pytest.approx(1.309784) and r.p99_ms == pytest.approx(5.172839)
    assert r.rate == pytest.approx(6.2532, rel=1e-4)
    assert r.errors == ('Get "http://127.0.0.1:1/x": connect: connection refused',)
    with pytest.raises(BenchError):
        openloop.parse_report('{"requests": 3}')
    with pytest.raises(BenchError):
        openloop.parse_report("not json")


def test_vegeta_targets_carry_each_tenants_key_in_a_fixed_shuffled_order() -> None:
    reqs = [(f"/v1/events?user_id=u{i}", "a" if i % 2 else "b") for i in range(20)]
    text = openloop.targets_text("http://127.0.0.1:9", reqs, {"a": "ka", "b": "kb"})
    blocks = text.split("\n\n")[:-1]
    assert len(blocks) == 20 and text.endswith("\n\n")
    got = set()
    for b in blocks:
        line, auth = b.split("\n")
        path = line.removeprefix("GET http://127.0.0.1:9")
        tenant = dict(reqs)[path]
        assert auth == f"Authorization: Bearer k{tenant}"
        got.add(path)
    assert got == {p for p, _ in reqs}
    assert [b.split("\n")[0] for b in blocks] != [f"GET http://127.0.0.1:9{p}" for p, _ in reqs]
    assert openloop.targets_text("http://127.0.0.1:9", reqs, {"a": "ka", "b": "kb"}) == text


def test_makefile_builds_the_vegeta_version_the_harness_names() -> None:
    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert f"VEGETA_MODULE := {openloop.VEGETA_MODULE}" in makefile


def test_the_baselines_and_targets_name_the_same_hot_queries() -> None:
    """Every hot read kind is measured on the product, PostgreSQL directly and PostgreSQL over
    HTTP, and has a direct-ratio target: one list of kinds (``baseline_pg.QUERIES``)."""
    from eventstrata_bench.baseline_pg import QUERIES
    from eventstrata_bench.runner import DIRECT_RATIO_TARGETS
    from eventstrata_bench.scen_reads import ReadTargets, pg_params

    kinds = set(QUERIES)
    assert set(DIRECT_RATIO_TARGETS) == kinds
    assert set(api_requests(ReadTargets())) == kinds and set(pg_params(ReadTargets())) == kinds


async def test_pg_http_baseline_rejects_a_request_without_a_known_key() -> None:
    import httpx

    from eventstrata_bench.baseline_pg_http import create_app

    app = create_app("host=127.0.0.1 port=1", {"k1": "acme"}, 1)  # no lifespan: no pool opened
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "k1"}):
            for path in ("/v1/events?user_id=u", "/v1/events/count?user_id=u", "/v1/events/e1"):
                assert (await client.get(path, headers=headers)).status_code == 401
        assert (await client.get("/healthz")).status_code == 200


def test_kept_results_hold_series_summaries_and_the_raw_samples_go_compressed_beside_them(tmp_path: Path) -> None:
    import gzip
    import json

    from eventstrata_bench.results import replot, series_summary, write_outputs

    values = [float(v) for v in range(1, 101)]
    assert series_summary(values) == {"n": 100, "min": 1.0, "max": 100.0, "p1": 2.0, "p25": 26.0,
                                      "p50": 51.0, "p75": 76.0, "p99": 100.0}
    run = Run(started="2026-12-06T00:00:00Z", mode="quick", machine={"tag": "vm"})
    run.add_series("reads", "ours: user", values)
    paths = write_outputs(run, tmp_path)
    kept = json.loads(paths[0].read_text())
    assert kept["series"] == {"reads": {"ours: user": series_summary(values)}}
    assert json.loads(gzip.decompress(paths[1].read_bytes())) == {"reads": {"ours: user": values}}
    assert paths[1].parent.name == "raw"
    assert [p.name for p in replot(paths[0], tmp_path / "again")] == ["reads.png"]


def test_http_ingest_bodies_are_whole_ndjson_batches_of_every_format() -> None:
    spec = DatasetSpec(events=250, tenants=("acme",), tenant_weights=(1.0,), users_per_tenant=50)
    events = list(generate(spec, 1_800_000_000_000, load_sample_fn()))
    bodies = scen_remote.ingest_bodies(events, 100)
    assert len(bodies) == 2  # the partial last batch is dropped
    lines = [orjson.loads(line) for body in bodies for line in body.split(b"\n")]
    assert len(lines) == 200 and {x["format"] for x in lines} == set(FORMATS)
    assert all(set(x) == {"format", "event"} and isinstance(x["event"], dict) for x in lines)
