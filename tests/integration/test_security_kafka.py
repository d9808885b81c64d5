"""Kafka with TLS and SASL, as a managed Kafka is run: a real broker (the fixtures' launcher) with a
``SASL_SSL`` listener whose certificate the test's CA signed, SCRAM users created at format time
and a PLAIN user. Produce (``eventstrata produce``'s publisher), the ingest worker (consumer and
DLQ producer), reading dead letters (``dlq list``, the admin API) and topic creation work through
``EVENTSTRATA_KAFKA_SECURITY_PROTOCOL=SASL_SSL`` and its settings; a wrong password or an
unknown CA fails within seconds with an error that says so, never a hang."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ingest_util import jmsg, native, run_until
from tls_support import Pki, make_pki

from eventstrata.ingest.dlq_topic import read_letters, topic_partitions
from eventstrata.ingest.worker import run_worker
from eventstrata.kafkaconn import KafkaSecurity
from eventstrata.localstack.kafka import KafkaServer, SaslSslListener, create_topics
from eventstrata.localstack.ports import free_port
from eventstrata.produce import Outgoing, publish

pytestmark = pytest.mark.integration

USER, PASSWORD = "alice", "alice-secret"


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Pki]]:
    """(SASL_SSL bootstrap, certificates) of a broker of this module's own."""
    root = tmp_path_factory.mktemp("kafka-sasl")
    pki = make_pki(root / "pki")
    keystore = root / "keystore.pem"  # Kafka's PEM keystore: the private key, then the chain
    keystore.write_bytes(pki.server_key.read_bytes() + pki.server_cert.read_bytes())
    listener = SaslSslListener(port=free_port(), keystore=keystore, users=((USER, PASSWORD),))
    server = KafkaServer(root / "broker", secure=listener)
    server.start()
    try:
        server.wait_ready(timeout=90)
        yield f"127.0.0.1:{listener.port}", pki
    finally:
        server.stop()


def sec(pki: Pki, mechanism: str = "SCRAM-SHA-256", **over: Any) -> KafkaSecurity:
    values: dict[str, Any] = {"protocol": "SASL_SSL", "mechanism": mechanism, "username": USER,
                              "password": PASSWORD, "ca": str(pki.ca)}
    values.update(over)
    return KafkaSecurity(**values)


async def test_produce_ingest_and_dead_letters_over_sasl_ssl(
        secure_kafka: tuple[str, Pki], settings_factory: Any) -> None:
    bootstrap, pki = secure_kafka
    topic, dlq = f"sec.{uuid.uuid4().hex[:8]}", f"sec.dlq.{uuid.uuid4().hex[:8]}"
    security = sec(pki)
    await create_topics(bootstrap, [(topic, 2), (dlq, 1)], security=security)
    s = settings_factory(kafka_bootstrap=bootstrap, topic=topic, dlq_topic=dlq, topic_partitions=2,
                         kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                         kafka_username=USER, kafka_password=PASSWORD, kafka_tls_ca=str(pki.ca))
    assert s.kafka_security() == security
    good = [Outgoing(jmsg(native(i, tenant="sec"))[0]) for i in range(50)]
    bad = [Outgoing(b"{not json")]
    result = await publish(bootstrap, topic, [*good, *bad], security=security)
    assert (result.sent, result.failed) == (51, 0)
    assert await run_until(s, lambda p: p.totals["processed"] >= 51) == 0
    letters = await read_letters(bootstrap, dlq, security=security, timeout_s=20)
    assert [x.value for x in letters] == [b"{not json"]
    # the other mechanisms of the listener work the same way
    for mechanism in ("PLAIN", "SCRAM-SHA-512"):
        assert await topic_partitions(bootstrap, topic, security=sec(pki, mechanism)) == [0, 1]


@pytest.mark.parametrize("wrong", [{"password": "nope"}, {"ca": ""}], ids=["password", "unknown-ca"])
async def test_wrong_credentials_fail_within_seconds(
        secure_kafka: tuple[str, Pki], settings_factory: Any, wrong: dict[str, str]) -> None:
    bootstrap, pki = secure_kafka
    security = sec(pki, **wrong)
    t0 = time.monotonic()
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(publish(bootstrap, "sec.none", [Outgoing(b"{}")], security=security), 60)
    assert not isinstance(info.value, TimeoutError)
    over = {"kafka_password": security.password, "kafka_tls_ca": security.ca}
    s = settings_factory(kafka_bootstrap=bootstrap, topic="sec.none", dlq_topic="sec.none.dlq",
                         kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                         kafka_username=USER, **over)
    with pytest.raises(Exception) as worker_error:
        await asyncio.wait_for(run_worker(s), 60)
    assert not isinstance(worker_error.value, TimeoutError)
    assert time.monotonic() - t0 < 60
    assert "kafka" in str(worker_error.value).lower() or "bootstrap" in str(worker_error.value).lower()
