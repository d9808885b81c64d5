"""``eventstrata init`` against the real servers: topics created (idempotently), Redis checked, a
missing S3 bucket created; a server that never answers fails within ``--wait`` naming it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from conftest import S3Archive
from eventstrata.archive.destination import open_destination
from eventstrata.ingest.dlq_topic import topic_partitions
from eventstrata.localstack.ports import free_port

pytestmark = pytest.mark.integration


def _init(settings: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVENTSTRATA_")}
    env.update(settings.to_env())
    return subprocess.run([sys.executable, "-m", "eventstrata", "init", *args], env=env, capture_output=True,
                          text=True, timeout=180, check=False)


def test_init_creates_topics_and_bucket_then_is_idempotent(settings_factory: Any, s3_archive: S3Archive) -> None:
    bucket = f"init-{uuid.uuid4().hex[:10]}"
    s = settings_factory(topic=f"init.{uuid.uuid4().hex[:8]}", dlq_topic=f"init.dlq.{uuid.uuid4().hex[:8]}",
                         topic_partitions=3, archive_uri=f"s3://{bucket}/events", s3_endpoint=s3_archive.endpoint)
    for _ in range(2):
        done = _init(s, "--create-bucket", "--wait", "60")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["kafka topics: ok", "redis: ok", "archive: ok"]
    assert asyncio.run(topic_partitions(s.kafka_bootstrap, s.topic)) == [0, 1, 2]
    assert asyncio.run(topic_partitions(s.kafka_bootstrap, s.dlq_topic)) == [0]
    open_destination(s).check()  # the bucket exists now


def test_init_fails_naming_what_is_unreachable(settings_factory: Any) -> None:
    s = settings_factory(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    done = _init(s, "--wait", "3")
    assert done.returncode == 1
    assert "kafka topics: ok" in done.stdout and "redis failed" in done.stderr
