"""Pure parts of the local stack: config rendering, ports, ApiVersions codec, process records,
the network guard and the CLI's entry loading."""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import pytest
import typer
import yaml

from eventstrata.cli.worker import load_entry, run_entry
from eventstrata.localstack import apiversions
from eventstrata.localstack.devstack import APPS, StackInfo, _describe_exit
from eventstrata.localstack.kafka import (
    min_heap,
    render_log4j2_yaml,
    render_server_properties,
    split_bootstrap,
)
from eventstrata.localstack.ports import free_port, free_ports, port_is_free
from eventstrata.localstack.proc import ProcRef, proc_start_time
from eventstrata.localstack.redis import render_cluster_node_args, render_redis_args


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _props(render_server_properties(port=1111, controller_port=2222, data_dir=tmp_path / "d"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:2222"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:1111,CONTROLLER://127.0.0.1:2222"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1111"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str(tmp_path / "d")
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_server_properties_extra_overrides() -> None:
    props = _props(
        render_server_properties(
            port=1, controller_port=2, data_dir=Path("/d"), extra={"num.partitions": "8"}
        )
    )
    assert props["num.partitions"] == "8"


def test_log4j2_yaml_writes_to_the_state_dir(tmp_path: Path) -> None:
    log = tmp_path / "we ird" / "server.log"
    doc = yaml.safe_load(render_log4j2_yaml(log))
    appender = doc["Configuration"]["Appenders"]["RollingFile"][0]
    assert appender["fileName"] == str(log)
    assert appender["filePattern"].startswith(str(log))
    assert doc["Configuration"]["Loggers"]["Root"]["AppenderRef"][0]["ref"] == appender["name"]


@pytest.mark.parametrize(
    ("heap", "initial"), [("512m", "256m"), ("1g", "512m"), ("64m", "64m"), ("odd", "odd")]
)
def test_min_heap(heap: str, initial: str) -> None:
    assert min_heap(heap) == initial


def test_split_bootstrap() -> None:
    assert split_bootstrap("127.0.0.1:9092,other:1") == ("127.0.0.1", 9092)
    with pytest.raises(ValueError):
        split_bootstrap("nohost")
    with pytest.raises(ValueError):
        split_bootstrap("host:port")


def test_redis_args_have_aof_everysec_and_noeviction(tmp_path: Path) -> None:
    args = render_redis_args(binary="/usr/bin/redis-server", port=7000, data_dir=tmp_path)
    pairs = dict(zip(args[1::2], args[2::2], strict=False))
    assert pairs["--port"] == "7000"
    assert pairs["--bind"] == "127.0.0.1"
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert pairs["--dir"] == str(tmp_path)
    assert pairs["--save"] == ""
    cluster = render_cluster_node_args(binary="redis-server", port=7001, data_dir=tmp_path)
    assert "--cluster-enabled" in cluster
    assert cluster[cluster.index("--cluster-config-file") + 1] == str(tmp_path / "nodes.conf")


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = [*free_ports(5), free_port()]
    assert len(set(ports)) == 6
    assert all(1024 <= p <= 65535 for p in ports)
    assert all(port_is_free(p) for p in ports)


def test_port_is_free_detects_a_listener() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def _frame(correlation_id: int, *, features: list[tuple[str, int, int]]) -> bytes:
    def uv(n: int) -> bytes:
        return apiversions._uvarint(n)

    body = struct.pack(">ih", correlation_id, 0)
    body += uv(3) + struct.pack(">hhh", 0, 0, 12) + b"\x00" + struct.pack(">hhh", 18, 0, 4) + b"\x00"
    body += struct.pack(">i", 0)
    feat = uv(len(features) + 1)
    for name, lo, hi in features:
        feat += uv(len(name) + 1) + name.encode() + struct.pack(">hh", hi, lo) + b"\x00"
    other = struct.pack(">q", 5)
    body += uv(2) + uv(1) + uv(len(other)) + other + uv(2) + uv(len(feat)) + feat
    return body


def test_apiversions_decode_ranges_and_finalized_features() -> None:
    info = apiversions.decode_response(_frame(7, features=[("metadata.version", 27, 27)]), 7)
    assert info.api_ranges == {0: (0, 12), 18: (0, 4)}
    assert info.finalized_features == {"metadata.version": (27, 27)}
    assert info.metadata_version_level == 27


def test_apiversions_decode_errors() -> None:
    with pytest.raises(ValueError, match="correlation"):
        apiversions.decode_response(_frame(7, features=[]), 8)
    with pytest.raises(ValueError, match="truncated"):
        apiversions.decode_response(_frame(7, features=[])[:9], 7)
    with pytest.raises(ValueError, match="error code 35"):
        apiversions.decode_response(struct.pack(">ih", 1, 35), 1)


def test_apiversions_request_is_length_prefixed_v3() -> None:
    req = apiversions.encode_request(42)
    (size,) = struct.unpack(">i", req[:4])
    assert size == len(req) - 4
    assert struct.unpack(">hhi", req[4:12]) == (18, 3, 42)


def test_uvarint_multi_byte() -> None:
    assert apiversions._uvarint(300) == b"\xac\x02"
    assert apiversions._Reader(b"\xac\x02").uvarint() == 300


def test_procref_roundtrip_and_liveness() -> None:
    me = ProcRef("me", os.getpid(), proc_start_time(os.getpid()) or -1, "/dev/null")
    assert ProcRef.from_json(me.to_json()) == me
    assert me.alive()
    assert not ProcRef("recycled", os.getpid(), me.start_time + 1, "").alive()


def test_describe_exit() -> None:
    assert _describe_exit(3) == "exit code 3"
    assert _describe_exit(-9) == "signal SIGKILL"


def test_stack_info_json_has_the_spec_keys() -> None:
    info = StackInfo(
        api="http://127.0.0.1:1",
        kafka="127.0.0.1:2",
        redis="redis://127.0.0.1:3/0",
        topic="events.raw",
        dlq_topic="events.dlq",
        kafka_version="4.1.1",
        state_dir="/s",
    )
    assert {"api", "kafka", "redis", "topic", "dlq_topic"} <= set(info.to_json())


def test_apps_are_the_three_entry_points() -> None:
    assert [(a.module, a.args) for a in APPS] == [
        ("eventstrata.processes.ingest", ("worker", "ingest")),
        ("eventstrata.processes.archive", ("worker", "archive")),
        ("eventstrata.processes.api", ("serve",)),
    ]


def test_missing_entry_module_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(LookupError, match="not available"):
        load_entry("workers.no_such_entry")
    with pytest.raises(typer.Exit) as exc:
        run_entry("workers.no_such_entry")
    assert exc.value.exit_code == 2
    assert "workers.no_such_entry is not available" in capsys.readouterr().err


def test_unit_tests_cannot_reach_the_network() -> None:
    with socket.socket() as sock, pytest.raises(RuntimeError, match="integration"):
        sock.connect(("127.0.0.1", 9))


async def test_unit_tests_cannot_reach_the_network_via_asyncio() -> None:
    import asyncio

    with pytest.raises(RuntimeError, match="integration"):
        await asyncio.open_connection("127.0.0.1", 9)


def test_random_cluster_id_is_a_kafka_style_uuid() -> None:
    import base64

    from eventstrata.localstack.kafka import random_cluster_id

    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16
