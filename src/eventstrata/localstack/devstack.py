"""``eventstrata dev up/down/status``: the local stack as one supervised unit.

State lives in ``EVENTSTRATA_STATE_DIR`` (default ``.eventstrata/``):
``stack.json`` (what runs, by pid + start time, and the endpoints), ``pids/<name>.pid``,
``logs/<name>.log``, ``kafka/`` and ``redis/`` (broker and Redis data, kept across restarts),
``dev.lock`` (held while a ``dev up`` is starting or supervising).

``up`` starts Redis and Kafka unless ``EVENTSTRATA_REDIS_URL`` / ``EVENTSTRATA_KAFKA_BOOTSTRAP``
name existing servers, creates the raw and DLQ topics, then starts every app process whose entry
module exists (``eventstrata.processes.ingest``, ``.archive``, ``.api``) with the settings
passed as ``EVENTSTRATA_*`` variables. ``down`` stops only what ``up`` recorded, by pid, and deletes no
data.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from eventstrata.config import Settings, child_env
from eventstrata.localstack.kafka import (
    KafkaServer,
    broker_version,
    create_topics,
    jars_present,
    kafka_answers,
    kafka_reachable,
    wait_kafka_ready,
)
from eventstrata.localstack.ports import free_port, port_is_free
from eventstrata.localstack.proc import (
    ProcRef,
    StackError,
    proc_start_time,
    run_blocking,
    spawn,
    stop,
    tail_text,
)
from eventstrata.localstack.redis import RedisServer, redis_answers, wait_redis_ready

STATE_FILE = "stack.json"


def read_state_file(state_dir: Path) -> dict[str, Any] | None:
    """The state a `dev up` of ``state_dir`` recorded, or None when there is none (or the file
    is unreadable or not a JSON object). Never raises."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recorded_endpoints(state_dir: Path) -> dict[str, str]:
    """The endpoints a `dev up` of ``state_dir`` recorded (``kafka``, ``redis``, ``api``, ...:
    the string entries of its ``StackInfo``); empty when there are none. Never raises."""
    info = (read_state_file(state_dir) or {}).get("info")
    if not isinstance(info, dict):
        return {}
    return {k: v for k, v in info.items() if isinstance(v, str)}


@dataclass(frozen=True, slots=True)
class AppProcess:
    """An app process `dev up` starts when its entry module exists."""

    name: str
    module: str
    args: tuple[str, ...]


APPS: tuple[AppProcess, ...] = (
    AppProcess("ingest", "eventstrata.processes.ingest", ("worker", "ingest")),
    AppProcess("archive", "eventstrata.processes.archive", ("worker", "archive")),
    AppProcess("api", "eventstrata.processes.api", ("serve",)),
)


@dataclass(frozen=True, slots=True)
class StackInfo:
    """Endpoints of a running stack (the JSON `dev up --detach --json` prints)."""

    api: str | None
    kafka: str
    redis: str
    topic: str
    dlq_topic: str
    kafka_version: str
    state_dir: str
    metrics: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "kafka": self.kafka,
            "redis": self.redis,
            "topic": self.topic,
            "dlq_topic": self.dlq_topic,
            "kafka_version": self.kafka_version,
            "state_dir": self.state_dir,
            "metrics": self.metrics,
        }


class AlreadyRunning(StackError):
    """`dev up` while a stack of this state dir runs."""


class _Interrupted(BaseException):
    """SIGINT/SIGTERM received by a supervising `dev up`."""


def app_available(app: AppProcess) -> bool:
    """True when the app's entry module can be imported (others build them over time)."""
    try:
        return importlib.util.find_spec(app.module) is not None
    except ModuleNotFoundError:
        return False


def app_argv(app: AppProcess) -> list[str]:
    return [sys.executable, "-m", "eventstrata", *app.args]


class DevStack:
    """The local stack of one state dir. Methods block; messages go to ``out`` (stderr by default,
    so ``--json`` output on stdout stays machine-readable)."""

    def __init__(self, settings: Settings, *, out: TextIO | None = None, apps: bool = True) -> None:
        self.state_dir = settings.state_dir.resolve()
        self.start_apps = apps
        archive = settings.archive_uri
        if archive == str(settings.state_dir / "archive"):  # the default: follows the state dir
            archive = str(self.state_dir / "archive")
        self.settings = replace(settings, state_dir=self.state_dir, archive_uri=archive)
        self.out = out or sys.stderr
        self._popens: dict[str, subprocess.Popen[bytes]] = {}
        self._refs: list[ProcRef] = []
        self._kafka: KafkaServer | None = None
        self._redis: RedisServer | None = None

    # ----- state -------------------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    def read_state(self) -> dict[str, Any] | None:
        """The recorded state, or None when no stack was recorded (or the file is unreadable)."""
        return read_state_file(self.state_dir)

    def _write_state(self, info: StackInfo | None, *, supervisor: bool) -> None:
        me = {"pid": os.getpid(), "start_time": proc_start_time(os.getpid())} if supervisor else None
        data = {
            "version": 1,
            "supervisor": me,
            "info": info.to_json() if info else None,
            "processes": [r.to_json() for r in self._refs],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_file)
        pid_dir = self.state_dir / "pids"
        pid_dir.mkdir(exist_ok=True)
        for ref in self._refs:
            (pid_dir / f"{ref.name}.pid").write_text(f"{ref.pid}\n")

    def _clear_state(self, refs: list[ProcRef]) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        for ref in refs:
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / "pids" / f"{ref.name}.pid").unlink()

    @staticmethod
    def _recorded(state: dict[str, Any] | None) -> tuple[ProcRef | None, list[ProcRef]]:
        if not state:
            return None, []
        sup = state.get("supervisor")
        supervisor = ProcRef("supervisor", int(sup["pid"]), int(sup["start_time"] or -1), "") if sup else None
        return supervisor, [ProcRef.from_json(p) for p in state.get("processes", [])]

    def running_processes(self) -> list[ProcRef]:
        """Recorded processes (supervisor included) that are still alive."""
        supervisor, refs = self._recorded(self.read_state())
        return [r for r in ([supervisor] if supervisor else []) + refs if r.alive()]

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / "dev.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise AlreadyRunning(
                    f"another `eventstrata dev up` is starting or supervising the stack in {self.state_dir}; "
                    "stop it with `eventstrata dev down`"
                ) from None
            yield

    # ----- up ----------------------------------------------------------------------------------------
    def up(self, *, detach: bool, on_ready: Callable[[StackInfo], None]) -> int:
        """Start the stack; call ``on_ready`` once Kafka, Redis (and the API, when started) answer.

        Detached: return 0 leaving the processes running. Foreground: supervise until Ctrl-C /
        SIGTERM (stop everything, return 0) or until a child dies (report it, stop the rest,
        return 1). Raises ``AlreadyRunning`` / ``StackError`` (after stopping what it started)."""
        with self._lock():
            alive = self.running_processes()
            if alive:
                raise AlreadyRunning(
                    f"the stack in {self.state_dir} is already running (pids "
                    f"{', '.join(f'{r.name}={r.pid}' for r in alive)}); use `eventstrata dev status` "
                    "or `eventstrata dev down`"
                )
            previous = {"int": signal.getsignal(signal.SIGINT), "term": signal.getsignal(signal.SIGTERM)}
            signal.signal(signal.SIGINT, _raise_interrupted)
            signal.signal(signal.SIGTERM, _raise_interrupted)
            try:
                info = self._start_all()
                self._write_state(info, supervisor=not detach)
                on_ready(info)
                if detach:
                    return 0
                return self._supervise(info)
            except _Interrupted:
                self._say("eventstrata dev: stopping (signal received)")
                self._stop_started()
                return 0
            except BaseException:
                self._stop_started()
                raise
            finally:
                signal.signal(signal.SIGINT, previous["int"])
                signal.signal(signal.SIGTERM, previous["term"])

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def _remember(self, popen: subprocess.Popen[bytes], ref: ProcRef) -> None:
        self._popens[ref.name] = popen
        self._refs.append(ref)
        self._write_state(None, supervisor=True)

    def _ports(self, name: str, count: int) -> list[int]:
        """Ports used last time by ``name`` when still free (stable endpoints across restarts)."""
        path = self.state_dir / name / "ports.json"
        try:
            old = [int(p) for p in json.loads(path.read_text())]
            if len(old) == count and all(port_is_free(p) for p in old):
                return old
        except (FileNotFoundError, ValueError, TypeError):
            pass
        ports = [free_port() for _ in range(count)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ports))
        return ports

    def _start_all(self) -> StackInfo:
        s = self.settings
        redis_url = s.redis_url
        if not redis_url:
            (port,) = self._ports("redis", 1)
            self._redis = RedisServer(self.state_dir / "redis", port=port)
            self._redis.start()
            assert self._redis.popen is not None and self._redis.ref is not None
            self._remember(self._redis.popen, self._redis.ref)
        bootstrap = s.kafka_bootstrap
        if not bootstrap:
            kport, cport = self._ports("kafka", 2)
            self._kafka = KafkaServer(self.state_dir / "kafka", port=kport, controller_port=cport)
            fetching = "" if jars_present() else " (fetching its jars from Maven Central first)"
            self._say(f"eventstrata dev: starting Kafka on {self._kafka.bootstrap}{fetching}")
            self._kafka.start()
            assert self._kafka.popen is not None and self._kafka.ref is not None
            self._remember(self._kafka.popen, self._kafka.ref)
        if self._redis is not None:
            self._redis.wait_ready(timeout=30.0)
            redis_url = self._redis.url
            self._say(f"eventstrata dev: Redis {self._redis.version} ready at {redis_url}")
        else:
            wait_redis_ready(redis_url, timeout=30.0)
            self._say(f"eventstrata dev: using existing Redis {redis_url}")
        if self._kafka is not None:
            self._kafka.wait_ready(timeout=90.0)
            bootstrap = self._kafka.bootstrap
            version = broker_version(bootstrap, log_file=self._kafka.log_file)
            self._say(
                f"eventstrata dev: Kafka {version} ready at {bootstrap} in {self._kafka.ready_seconds:.1f} s "
                f"(RSS {self._kafka.rss_mib():.0f} MiB)"
            )
        else:
            wait_kafka_ready(bootstrap, timeout=30.0)
            version = broker_version(bootstrap)
            self._say(f"eventstrata dev: using existing Kafka {bootstrap} ({version})")
        run_blocking(create_topics(bootstrap, [(s.topic, s.topic_partitions), (s.dlq_topic, 1)],
                                   security=s.kafka_security()))
        self._say(
            f"eventstrata dev: topics {s.topic} ({s.topic_partitions} partitions) and {s.dlq_topic} ready"
        )
        api_port = s.api_port or free_port(s.api_host)
        app_settings = replace(s, kafka_bootstrap=bootstrap, redis_url=redis_url, api_port=api_port)
        env = child_env(app_settings.to_env())
        api_url: str | None = None
        metrics: dict[str, str] = {}
        for app in APPS if self.start_apps else ():
            if not app_available(app):
                self._say(
                    f"eventstrata dev: {app.name}: entry module {app.module} not present yet, not started"
                )
                continue
            app_env = env
            if app.name != "api":  # workers serve Prometheus metrics on a port of their own
                port = free_port("127.0.0.1")
                app_env = child_env(replace(app_settings, metrics_port=port).to_env())
                metrics[app.name] = f"http://127.0.0.1:{port}/metrics"
            popen, ref = spawn(
                app.name, app_argv(app), log=self.state_dir / "logs" / f"{app.name}.log", env=app_env
            )
            self._remember(popen, ref)
            self._say(f"eventstrata dev: started {app.name} (pid {ref.pid}, log {ref.log})")
            if app.name == "api":
                api_url = f"http://{s.api_host}:{api_port}"
                metrics["api"] = f"{api_url}/metrics"
        if api_url is not None:
            self._wait_http(api_url, self._popens["api"], Path(self._refs[-1].log))
        self._check_apps_alive(grace=1.0)
        return StackInfo(
            api=api_url,
            kafka=bootstrap,
            redis=redis_url,
            topic=s.topic,
            dlq_topic=s.dlq_topic,
            kafka_version=version,
            state_dir=str(self.state_dir),
            metrics=metrics,
        )

    @staticmethod
    def _wait_http(url: str, popen: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if popen.poll() is not None:
                raise StackError(
                    f"the API process exited with code {popen.returncode} while starting; "
                    f"last lines of {log}:\n{tail_text(log)}"
                )
            try:
                httpx.get(url + "/", timeout=2.0)
                return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise StackError(f"the API at {url} did not answer within {timeout:.0f} s; see {log}")
            time.sleep(0.2)

    def _check_apps_alive(self, *, grace: float) -> None:
        """An app that dies right after starting fails `up` (with its log) instead of passing."""
        apps = [r for r in self._refs if r.name in {a.name for a in APPS}]
        if not apps:
            return
        time.sleep(grace)
        for ref in apps:
            code = self._popens[ref.name].poll()
            if code is not None:
                raise StackError(
                    f"{ref.name} (pid {ref.pid}) exited with {_describe_exit(code)} right after starting; "
                    f"last lines of {ref.log}:\n{tail_text(ref.log)}"
                )

    def _supervise(self, info: StackInfo) -> int:
        """Watch the children until one dies (report + stop all, 1) or a signal arrives (0).
        Existing servers (not ours) are probed every 5 s; losing one is reported, not fatal."""
        external: dict[str, Callable[[], bool]] = {}
        if self._redis is None:
            external[f"existing Redis {info.redis}"] = lambda: redis_answers(info.redis)
        if self._kafka is None:
            external[f"existing Kafka {info.kafka}"] = lambda: kafka_reachable(info.kafka)
        healthy = dict.fromkeys(external, True)
        next_probe = time.monotonic() + 5.0
        try:
            while True:
                for ref in self._refs:
                    popen = self._popens[ref.name]
                    code = popen.poll()
                    if code is not None:
                        self._say(
                            f"eventstrata dev: ERROR: {ref.name} (pid {ref.pid}) exited unexpectedly with "
                            f"{_describe_exit(code)}; stopping the stack.\n"
                            f"last lines of {ref.log}:\n{tail_text(ref.log)}"
                        )
                        self._stop_started()
                        return 1
                if external and time.monotonic() >= next_probe:
                    for name, probe in external.items():
                        ok = probe()
                        if ok != healthy[name]:
                            state = "answers again" if ok else "STOPPED ANSWERING (apps will retry)"
                            self._say(f"eventstrata dev: WARNING: {name} {state}")
                            healthy[name] = ok
                    next_probe = time.monotonic() + 5.0
                time.sleep(0.25)
        except _Interrupted:
            self._say("eventstrata dev: stopping (signal received)")
            self._stop_started()
            return 0

    def _stop_started(self) -> None:
        """Stop what this process started, apps first, in reverse order; ignores further signals."""
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for ref in reversed(self._refs):
            killed = stop(ref, timeout=30.0, popen=self._popens.get(ref.name))
            self._say(
                f"eventstrata dev: stopped {ref.name} (pid {ref.pid}){' with SIGKILL' if killed else ''}"
            )
        self._clear_state(self._refs)
        self._refs = []

    # ----- down / status ------------------------------------------------------------------------------
    def down(self, *, timeout: float = 60.0) -> list[str]:
        """Stop what ``up`` recorded, by pid (the supervisor first, which stops its children), then
        remove the state and pid files (data and logs are kept). Returns the names stopped."""
        supervisor, refs = self._recorded(self.read_state())
        stopped: list[str] = []
        if supervisor is not None and supervisor.alive():
            os.kill(supervisor.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while supervisor.alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            stopped.append(f"supervisor({supervisor.pid})")
        for ref in reversed(refs):
            if ref.alive():
                stop(ref, timeout=30.0)
                stopped.append(f"{ref.name}({ref.pid})")
        self._clear_state(refs)
        return stopped

    def status(self) -> dict[str, Any]:
        """Recorded endpoints, per-process liveness, and whether Kafka and Redis answer now."""
        state = self.read_state()
        supervisor, refs = self._recorded(state)
        info = (state or {}).get("info") or {}
        procs = [{"name": r.name, "pid": r.pid, "alive": r.alive(), "log": r.log} for r in refs]
        kafka = info.get("kafka")
        redis_url = info.get("redis")
        kafka_ok = bool(kafka) and kafka_answers(str(kafka))
        redis_ok = bool(redis_url) and redis_answers(str(redis_url))
        running = bool(state) and bool(info) and all(p["alive"] for p in procs) and kafka_ok and redis_ok
        return {
            "running": running,
            "state_dir": str(self.state_dir),
            "supervisor_pid": supervisor.pid if supervisor and supervisor.alive() else None,
            **{k: info.get(k) for k in ("api", "kafka", "redis", "topic", "dlq_topic", "kafka_version")},
            "kafka_answers": kafka_ok,
            "redis_answers": redis_ok,
            "processes": procs,
        }


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signum)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"
