"""Child processes the stack owns: start, liveness by (pid, start time), stop by pid.

A process is identified by its pid plus its start time from ``/proc/<pid>/stat`` so that a
recycled pid is never mistaken for (and never signalled as) one of ours. Zombies count as
exited.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class StackError(RuntimeError):
    """A component of the local stack could not be fetched, started or reached; the message
    says what and how to fix it."""


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion and return its result, blocking the caller.

    Works whether or not the calling thread already runs an event loop (then the coroutine
    runs on a private thread with its own loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of ``pid``, or None when it does not exist / is a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = stat[stat.rfind(")") + 2 :].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def proc_rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (0 when gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


@dataclass(frozen=True, slots=True)
class ProcRef:
    """A process started by the stack: enough to find it again from another process."""

    name: str
    pid: int
    start_time: int
    log: str

    def alive(self) -> bool:
        """True while this very process (same pid and start time) runs (not a zombie)."""
        return proc_start_time(self.pid) == self.start_time

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "pid": self.pid, "start_time": self.start_time, "log": self.log}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ProcRef:
        return ProcRef(str(data["name"]), int(data["pid"]), int(data["start_time"]), str(data["log"]))


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[subprocess.Popen[bytes], ProcRef]:
    """Start ``argv`` in its own session (Ctrl-C on the terminal does not hit it directly; we stop
    it in order), stdout+stderr appended to ``log``. Raises ``StackError`` if it cannot start."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    start = proc_start_time(popen.pid)
    return popen, ProcRef(name, popen.pid, start if start is not None else -1, str(log))


def stop(ref: ProcRef, *, timeout: float = 20.0, popen: subprocess.Popen[bytes] | None = None) -> bool:
    """SIGTERM the process group of ``ref`` (only if it is still the same process), wait up to
    ``timeout`` s, then SIGKILL. Blocks. Returns True when it had to be killed."""
    if not ref.alive():
        _reap(popen)
        return False
    _signal_group(ref, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(popen)
        if not ref.alive():
            return False
        time.sleep(0.05)
    _signal_group(ref, signal.SIGKILL)
    for _ in range(100):
        _reap(popen)
        if not ref.alive():
            break
        time.sleep(0.05)
    return True


def _signal_group(ref: ProcRef, sig: signal.Signals) -> None:
    try:
        if os.getpgid(ref.pid) == ref.pid:
            os.killpg(ref.pid, sig)
        else:
            os.kill(ref.pid, sig)
    except ProcessLookupError:
        pass


def _reap(popen: subprocess.Popen[bytes] | None) -> None:
    if popen is not None:
        popen.poll()


def tail_text(path: Path | str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file ('' when missing), for error messages."""
    try:
        data = Path(path).read_bytes()[-20_000:]
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])
