"""Every process logs JSON lines when its stderr is not a terminal: the API (its access log
included), the ingest worker and the archiver, each started as operators start them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"time", "level", "logger", "message"}


def _start(module: str, env: dict[str, str], out: Path, err: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, cwd=ROOT,
                            stdout=out.open("wb"), stderr=err.open("wb"))


def _wait_for(what: Callable[[], bool], seconds: float, label: str) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, f"timed out waiting for {label}"
        time.sleep(0.1)


def _json_lines(err: Path) -> list[dict[str, object]]:
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    assert lines, f"{err.name}: no log lines"
    records = []
    for line in lines:
        d = json.loads(line)  # a line that is not JSON fails here, naming itself
        assert set(d) >= REQUIRED, line
        records.append(d)
    return records


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        raise


def test_the_api_the_ingest_worker_and_the_archiver_log_json_lines(settings_factory, tmp_path: Path) -> None:
    s = settings_factory()
    env = {**os.environ, **s.to_env(), "EVENTSTRATA_LOG_LEVEL": "INFO"}

    out, err = tmp_path / "api.out", tmp_path / "api.err"
    api = _start("eventstrata.processes.api", env, out, err)
    try:
        _wait_for(lambda: "listening on" in out.read_text(), 60, "the API to listen")
        url = out.read_text().split("listening on", 1)[1].split()[0]
        statuses: list[int] = []

        def answered() -> bool:  # the socket is bound before the server accepts connections
            try:
                statuses.append(httpx.get(f"{url}/v1/events", timeout=10).status_code)
            except httpx.TransportError:
                return False
            return True

        _wait_for(answered, 60, "the API to answer")
        assert statuses == [401]
        _wait_for(lambda: '"request"' in err.read_text(), 10, "the access log line")
    finally:
        _stop(api)
    records = _json_lines(err)
    access = [r for r in records if r["message"] == "request"]
    assert access and access[0]["status"] == 401 and access[0]["request_id"]

    out, err = tmp_path / "ingest.out", tmp_path / "ingest.err"
    ingest = _start("eventstrata.processes.ingest", env, out, err)
    try:
        _wait_for(lambda: "partitions assigned" in err.read_text(), 90, "the worker's assignment")
    finally:
        _stop(ingest)
    assert any("ingest worker stopped" in str(r["message"]) for r in _json_lines(err))

    out, err = tmp_path / "archive.out", tmp_path / "archive.err"
    archiver = _start("eventstrata.processes.archive", env, out, err, "--once")
    assert archiver.wait(timeout=120) == 0
    assert _json_lines(err)
