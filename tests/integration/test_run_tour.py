"""`make run` as a new user meets it: `eventstrata dev up --tour` brings up the ingest worker, the
archiver and the API (against the session's real Kafka and Redis), seeds the demo tenant through
Kafka, and prints curl commands. Every printed command must work exactly as printed, and every
process must expose its Prometheus series.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

EXPECTED_SERIES = {
    "api": ["eventstrata_api_request_seconds", "eventstrata_query_tier_seconds", "eventstrata_tail_subscribers"],
    "ingest": ["eventstrata_ingest_consumed_total", "eventstrata_ingest_stored_total",
               "eventstrata_ingest_dead_lettered_total", "eventstrata_ingest_batch_seconds",
               "eventstrata_ingest_commit_seconds", "eventstrata_ingest_redis_round_trips_total",
               "eventstrata_ingest_consumer_lag"],
    "archive": ["eventstrata_archive_events_written", "eventstrata_archive_pass_seconds",
                "eventstrata_archive_watermark_age_seconds"],
}


def _cli() -> list[str]:
    return [sys.executable, "-m", "eventstrata"]


@pytest.fixture
def tour_stack(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, object], str, dict[str, str]]]:
    tag = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "EVENTSTRATA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVENTSTRATA_REDIS_URL": redis_url,
        "EVENTSTRATA_KEY_PREFIX": f"tour{tag}",
        "EVENTSTRATA_TOPIC": f"tour.{tag}.raw",
        "EVENTSTRATA_DLQ_TOPIC": f"tour.{tag}.dlq",
        "EVENTSTRATA_CONSUMER_GROUP": f"tour-{tag}",
        "EVENTSTRATA_STATE_DIR": str(tmp_path / "state"),
        "EVENTSTRATA_ARCHIVE_URI": str(tmp_path / "archive"),
        "EVENTSTRATA_API_PORT": "0",
        "EVENTSTRATA_ARCHIVE_INTERVAL": "2s",
        "EVENTSTRATA_ARCHIVE_GRACE": "1s",
        "EVENTSTRATA_TAIL_HEARTBEAT": "1s",
    }
    up = subprocess.run([*_cli(), "dev", "up", "--detach", "--json", "--tour"], env=env, check=False, capture_output=True,
                        text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        first, _, tour = up.stdout.partition("\n")
        yield json.loads(first), tour, env
    finally:
        down = subprocess.run([*_cli(), "dev", "down"], env=env, check=False, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stderr


def _curl_commands(tour: str) -> list[str]:
    return [line.strip() for line in tour.splitlines() if line.strip().startswith("curl ")]


def test_tour_commands_work_as_printed_and_every_process_has_metrics(
    tour_stack: tuple[dict[str, object], str, dict[str, str]],
) -> None:
    info, tour, env = tour_stack
    assert shutil.which("curl"), "curl is needed to run the tour as printed"
    api = str(info["api"])
    assert re.match(r"^http://127\.0\.0\.1:\d+$", api)
    assert f"API:      {api}" in tour
    key = re.search(r"API key:\s+(\S+)", tour)
    assert key is not None
    assert f"console:  {api}/console " in tour
    console = httpx.get(api + "/", follow_redirects=True, timeout=30)
    assert console.status_code == 200 and str(console.url) == api + "/console"
    assert '<main id="main"' in console.text
    me = httpx.get(api + "/v1/tenant", headers={"Authorization": f"Bearer {key.group(1)}"}, timeout=30).json()
    assert me["tenant"] == "demo" and "admin" in me["scopes"]  # the console's every view works with it

    # Both tiers hold demo data once the archiver has made a pass (interval 2 s, grace 1 s).
    deadline = time.monotonic() + 90
    while True:
        status = subprocess.run([*_cli(), "archive", "status", "--json"], env=env, check=False, capture_output=True,
                                text=True, timeout=60)
        assert status.returncode == 0, status.stderr
        rows = [r for r in json.loads(status.stdout) if r["tenant"] == "demo"]
        if rows and rows[0]["files"] > 0 and rows[0]["hot_windows"] > 0:
            break
        assert time.monotonic() < deadline, f"archiver never archived the demo tenant: {status.stdout}"
        time.sleep(1)

    commands = _curl_commands(tour)
    assert len(commands) == 6, tour
    for cmd in commands:
        if "/v1/tail" in cmd:
            # a live tail never ends by itself: read it for 3 s, expect the stream's heartbeat
            proc = subprocess.run(["timeout", "3", "bash", "-c", cmd], check=False, capture_output=True, text=True)
            assert proc.returncode == 124, (cmd, proc.returncode, proc.stderr)
            assert "heartbeat" in proc.stdout, proc.stdout[:500]
            continue
        proc = subprocess.run(["bash", "-c", cmd + " -w '\\n%{http_code}'"], check=False, capture_output=True, text=True,
                              timeout=30)
        body, _, code = proc.stdout.rpartition("\n")
        assert proc.returncode == 0 and code == "200", (cmd, code, body[:500])
        doc = json.loads(body)
        items = doc.get("events") if isinstance(doc, dict) else None
        if items is None and isinstance(doc, dict):
            items = doc.get("results")
        assert items, (cmd, body[:500])

    # The user timeline reaches into the archive: walk it to the end and find cold events.
    headers = {"Authorization": f"Bearer {key.group(1)}"}
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        stamps: list[str] = []
        cursor = None
        while True:
            params = {"user_id": "user-000", "limit": "1000", **({"cursor": cursor} if cursor else {})}
            page = client.get("/v1/events", params=params).json()
            stamps += [e["timestamp"] for e in page["events"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert stamps == sorted(stamps, reverse=True)
        assert stamps[-1] < time.strftime("%Y-%m-%d", time.gmtime(time.time() - 8 * 86400))

    metrics = info["metrics"]
    assert isinstance(metrics, dict) and set(metrics) == {"api", "ingest", "archive"}
    for proc_name, series in EXPECTED_SERIES.items():
        text = httpx.get(metrics[proc_name], timeout=10).text
        missing = [s for s in series if s not in text]
        assert not missing, (proc_name, missing)
