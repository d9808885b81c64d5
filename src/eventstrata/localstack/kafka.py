"""Real Apache Kafka 4.1.1 for development and tests (README, "Set-up").

Jars come from Maven Central via ``mvn dependency:copy-dependencies`` on ``deploy/kafka/pom.xml``
and are cached outside the repo (``~/.cache/eventstrata/kafka-4.1.1/lib``). A ``KafkaServer`` is a
single-node KRaft broker+controller on free loopback ports, formatted with
``kafka.tools.StorageTool format --standalone`` and run as ``java -cp 'lib/*' kafka.Kafka
server.properties`` with a log4j2 config that keeps its logs in its state dir.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from eventstrata.config import cache_root
from eventstrata.kafkaconn import PLAINTEXT, KafkaSecurity
from eventstrata.localstack import apiversions
from eventstrata.localstack.ports import free_port
from eventstrata.localstack.proc import (
    ProcRef,
    StackError,
    proc_rss_bytes,
    run_blocking,
    spawn,
    stop,
    tail_text,
)

KAFKA_VERSION = "4.1.1"
DEFAULT_HEAP = "512m"
_TOPIC_EXISTS = 36


def jar_dir() -> Path:
    """Where the broker's jars are cached."""
    return cache_root() / f"kafka-{KAFKA_VERSION}" / "lib"


def pom_path() -> Path:
    """``deploy/kafka/pom.xml`` of this checkout. Raises ``StackError`` when it is not there."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "deploy" / "kafka" / "pom.xml"
        if candidate.is_file():
            return candidate
    raise StackError("deploy/kafka/pom.xml not found: run eventstrata from a checkout of the repository")


def jars_present(lib: Path | None = None) -> bool:
    lib = lib or jar_dir()
    return (lib / ".complete").is_file() and (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file()


def fetch_jars(*, quiet: bool = True) -> Path:
    """Make sure the broker's jars are cached; download them with Maven when missing.

    Blocks (first run: ~10 s on a fast network). Safe to call concurrently from several
    processes (file lock). Raises ``StackError`` when Java/Maven are missing or Maven fails."""
    lib = jar_dir()
    if jars_present(lib):
        return lib
    for tool, pkg in (("java", "openjdk-17-jre-headless"), ("mvn", "maven")):
        if shutil.which(tool) is None:
            raise StackError(f"`{tool}` is not installed; install it (e.g. `apt-get install -y {pkg}`)")
    lib.parent.mkdir(parents=True, exist_ok=True)
    with (lib.parent / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jars_present(lib):
            return lib
        tmp = Path(tempfile.mkdtemp(prefix="lib.", dir=lib.parent))
        cmd = ["mvn", "-B", "dependency:copy-dependencies", f"-DoutputDirectory={tmp}"]
        if quiet:
            cmd.insert(1, "-q")
        result = subprocess.run(cmd, cwd=pom_path().parent, capture_output=quiet, text=True, check=False)
        if result.returncode != 0 or not (tmp / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            detail = (result.stdout or "")[-2000:] + (result.stderr or "")[-2000:] if quiet else ""
            raise StackError(
                f"fetching Kafka {KAFKA_VERSION} jars with Maven failed (exit {result.returncode})\n{detail}"
            )
        (tmp / ".complete").write_text(KAFKA_VERSION + "\n")
        if lib.exists():
            shutil.rmtree(lib)
        tmp.rename(lib)
    return lib


def render_server_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    node_id: int = 1,
    extra: Mapping[str, str] | None = None,
) -> str:
    """``server.properties`` of a single-node KRaft broker+controller on loopback (pure)."""
    props: dict[str, str] = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "4",
        "auto.create.topics.enable": "true",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "log.retention.hours": "168",
        "message.max.bytes": "1048588",
    }
    props.update(extra or {})
    return "".join(f"{k}={v}\n" for k, v in props.items())


def render_log4j2_yaml(log_file: Path, *, level: str = "INFO") -> str:
    """A log4j2 YAML config: everything to ``log_file`` (rolled at 50 MB, 3 kept), nothing to stdout."""
    fname = json.dumps(str(log_file))
    pattern = json.dumps(str(log_file) + ".%i")
    return f"""Configuration:
  name: eventstrata-kafka
  Appenders:
    RollingFile:
      - name: File
        fileName: {fname}
        filePattern: {pattern}
        PatternLayout:
          pattern: "[%d] %p %m (%c)%n"
        SizeBasedTriggeringPolicy:
          size: "50MB"
        DefaultRolloverStrategy:
          max: 3
  Loggers:
    Root:
      level: {level}
      AppenderRef:
        - ref: File
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
"""


def split_bootstrap(bootstrap: str) -> tuple[str, int]:
    """First ``host:port`` of a bootstrap list. Raises ``ValueError`` when malformed."""
    first = bootstrap.split(",", maxsplit=1)[0].strip()
    host, sep, port = first.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"not a host:port bootstrap address: {bootstrap!r}")
    return host, int(port)


async def _metadata_ok(bootstrap: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), 10.0)
        await asyncio.wait_for(admin.describe_cluster(), 10.0)
    finally:
        await admin.close()


def kafka_answers(bootstrap: str) -> bool:
    """One real ApiVersions exchange plus one metadata request (aiokafka). Blocks ≤ ~20 s."""
    try:
        apiversions.probe(*split_bootstrap(bootstrap), timeout=3.0)
        run_blocking(_metadata_ok(bootstrap))
    except Exception:
        return False
    return True


def kafka_reachable(bootstrap: str) -> bool:
    """One ApiVersions exchange with the first bootstrap address (blocks ≤ 3 s)."""
    try:
        apiversions.probe(*split_bootstrap(bootstrap), timeout=3.0)
    except (OSError, ValueError):
        return False
    return True


def wait_kafka_ready(
    bootstrap: str,
    *,
    timeout: float = 60.0,
    popen: subprocess.Popen[bytes] | None = None,
    log_file: Path | None = None,
) -> float:
    """Block until the broker answers a metadata request; returns the seconds waited.

    Raises ``StackError`` on timeout or when ``popen`` (the broker we started) exits first."""
    t0 = time.monotonic()
    while True:
        if popen is not None and popen.poll() is not None:
            raise StackError(
                f"the Kafka broker exited with code {popen.returncode} while starting"
                + (f"; last lines of {log_file}:\n{tail_text(log_file)}" if log_file else "")
            )
        try:
            apiversions.probe(*split_bootstrap(bootstrap), timeout=2.0)
            run_blocking(_metadata_ok(bootstrap))
            return time.monotonic() - t0
        except (TimeoutError, OSError, ValueError, Exception) as exc:
            if time.monotonic() - t0 > timeout:
                raise StackError(
                    f"Kafka at {bootstrap} did not answer within {timeout:.0f} s ({exc!r})"
                ) from exc
        time.sleep(0.2)


async def create_topics(bootstrap: str, topics: Iterable[tuple[str, int]], *, timeout: float = 30.0,
                        security: KafkaSecurity = PLAINTEXT, replication: int = 1) -> None:
    """Create each ``(name, partitions)`` topic (``replication`` copies) unless it exists, then wait
    until every partition has a leader. Raises ``StackError`` on any other broker error or timeout."""
    wanted = dict(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **security.options())
    try:
        await admin.start()
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=replication) for name, n in wanted.items()],
            timeout_ms=int(timeout * 1000),
        )
        for entry in response.topic_errors:
            name, code = entry[0], entry[1]
            if code not in (0, _TOPIC_EXISTS):
                raise StackError(f"creating topic {name!r} failed: error code {code} {entry[2:]!r}")
        deadline = time.monotonic() + timeout
        while True:
            described = await admin.describe_topics(list(wanted))
            ready = all(
                t.get("error_code", 0) == 0
                and t.get("partitions")
                and all(p.get("leader", -1) >= 0 for p in t["partitions"])
                for t in described
            )
            if ready and len(described) == len(wanted):
                return
            if time.monotonic() > deadline:
                raise StackError(
                    f"topics {sorted(wanted)} have no leaders after {timeout:.0f} s: {described!r}"
                )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


_VERSION_LINE = re.compile(r"Kafka version: (\S+)")


def broker_version(bootstrap: str, *, log_file: Path | None = None) -> str:
    """The version the broker reports: its release from its own startup log (``Kafka version:
    4.1.1``, when we have the log) plus the ``metadata.version`` feature level it reports in
    ApiVersions. Blocks ≤ 3 s. Raises ``StackError`` when the broker does not answer."""
    try:
        info = apiversions.probe(*split_bootstrap(bootstrap), timeout=3.0)
    except (OSError, ValueError) as exc:
        raise StackError(f"Kafka at {bootstrap} did not answer ApiVersions: {exc}") from exc
    level = info.metadata_version_level
    proto = (
        f"metadata.version level {level}, {len(info.api_ranges)} APIs"
        if level is not None
        else (f"{len(info.api_ranges)} APIs")
    )
    release = None
    if log_file is not None:
        for path in sorted(log_file.parent.glob(log_file.name + "*")):
            match = _VERSION_LINE.search(path.read_text(errors="replace"))
            if match:
                release = match.group(1)
                break
    return f"{release} ({proto})" if release else f"unknown release ({proto})"


@dataclass(frozen=True, slots=True)
class SaslSslListener:
    """A second listener, ``SASL_SSL`` on ``port``, as a managed Kafka offers: TLS with the PEM
    ``keystore`` (private key, then certificate chain) and SASL PLAIN / SCRAM-SHA-256 /
    SCRAM-SHA-512 for ``users`` (name → password; the SCRAM credentials are written at format
    time, PLAIN's into the listener's JAAS line). The PLAINTEXT listener stays for the broker's
    own traffic."""

    port: int
    keystore: Path
    users: tuple[tuple[str, str], ...]

    def properties(self) -> dict[str, str]:
        """The broker settings of this listener (pure)."""
        plain = " ".join(f'user_{u}="{p}"' for u, p in self.users)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        return {
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain};",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore),
        }

    def format_args(self) -> list[str]:
        """``StorageTool format`` arguments that create the SCRAM users."""
        out: list[str] = []
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            for u, p in self.users:
                out += ["--add-scram", f"{mech}=[name={u},password={p}]"]
        return out


class KafkaServer:
    """One single-node KRaft broker owned by this process, with its files under ``state_dir``.

    ``start`` and ``wait_ready`` block; ``stop`` stops it by pid (SIGTERM, then SIGKILL)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        port: int | None = None,
        controller_port: int | None = None,
        heap: str = DEFAULT_HEAP,
        secure: SaslSslListener | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.secure = secure
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self.heap = heap
        self.data_dir = self.state_dir / "data"
        self.config_file = self.state_dir / "server.properties"
        self.log4j_file = self.state_dir / "log4j2.yaml"
        self.log_file = self.state_dir / "logs" / "server.log"
        self.stdout_log = self.state_dir / "logs" / "stdout.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.ref: ProcRef | None = None
        self.ready_seconds = 0.0
        self._started_at = 0.0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, lib: Path, main: str, *args: str, jvm: tuple[str, ...] = ()) -> list[str]:
        return ["java", *jvm, f"-Dlog4j2.configurationFile={self.log4j_file}", "-cp", f"{lib}/*", main, *args]

    def start(self) -> None:
        """Fetch jars if needed, render config, format storage on first use, start the JVM."""
        lib = fetch_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        extra: dict[str, str] = {}
        if self.secure is not None:
            p, sp, cp = self.port, self.secure.port, self.controller_port
            extra = {
                "listeners": (f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{sp},"
                              f"CONTROLLER://127.0.0.1:{cp}"),
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{p},SASL_SSL://127.0.0.1:{sp}",
                "listener.security.protocol.map":
                    "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                **self.secure.properties(),
            }
        self.config_file.write_text(
            render_server_properties(
                port=self.port, controller_port=self.controller_port, data_dir=self.data_dir, extra=extra
            )
        )
        self.log4j_file.write_text(render_log4j2_yaml(self.log_file))
        if not (self.data_dir / "meta.properties").is_file():
            cluster_id = random_cluster_id()
            fmt = subprocess.run(
                self._java(
                    lib,
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster_id,
                    "-c",
                    str(self.config_file),
                    *(self.secure.format_args() if self.secure is not None else ()),
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise StackError(f"kafka StorageTool format failed: {fmt.stdout[-2000:]}{fmt.stderr[-2000:]}")
        self._started_at = time.monotonic()
        self.popen, self.ref = spawn(
            "kafka",
            self._java(
                lib,
                "kafka.Kafka",
                str(self.config_file),
                jvm=(
                    f"-Xms{min_heap(self.heap)}",
                    f"-Xmx{self.heap}",
                    "-XX:+UseG1GC",
                    "-Djava.awt.headless=true",
                ),
            ),
            log=self.stdout_log,
            cwd=self.state_dir,
        )

    def wait_ready(self, *, timeout: float = 90.0) -> None:
        """Block until the broker answers a metadata request. Raises ``StackError``."""
        wait_kafka_ready(self.bootstrap, timeout=timeout, popen=self.popen, log_file=self.log_file)
        self.ready_seconds = time.monotonic() - self._started_at

    def rss_mib(self) -> float:
        return proc_rss_bytes(self.ref.pid) / 2**20 if self.ref else 0.0

    def stop(self) -> None:
        """Stop the broker (controlled shutdown on SIGTERM; SIGKILL after 30 s). Blocks."""
        if self.ref is not None:
            stop(self.ref, timeout=30.0, popen=self.popen)


def random_cluster_id() -> str:
    """A KRaft cluster id like ``kafka-storage random-uuid`` prints: 16 random bytes, URL-safe
    base64 without padding, never starting with ``-`` (saves a JVM start per fresh broker)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def min_heap(heap: str) -> str:
    """Initial heap: half of ``heap`` (e.g. 512m -> 256m) (pure)."""
    match = re.fullmatch(r"(\d+)([mMgG])", heap)
    if not match:
        return heap
    value = int(match.group(1)) * (1024 if match.group(2).lower() == "g" else 1)
    return f"{max(value // 2, 64)}m"
