"""Facts about the machine and per-process CPU accounting read from /proc (Linux)."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of /proc/cpuinfo text ("unknown" when absent). Pure."""
    for line in cpuinfo.splitlines():
        if line.lower().startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def parse_mem_total_kib(meminfo: str) -> int:
    """``MemTotal`` in KiB from /proc/meminfo text (0 when absent). Pure."""
    m = re.search(r"^MemTotal:\s+(\d+)\s+kB", meminfo, re.MULTILINE)
    return int(m.group(1)) if m else 0


def machine_tag(hostname: str) -> str:
    """A file-name-safe machine tag derived from the host name. Pure."""
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "-", hostname).strip("-.")
    return tag[:40] or "machine"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine_info() -> dict[str, Any]:
    """Cores, RAM, CPU model, OS, Python and the host tag. Reads /proc; never raises."""
    host = socket.gethostname()
    return {
        "hostname": host,
        "tag": machine_tag(host),
        "cores": os.cpu_count() or 0,
        "ram_gib": round(parse_mem_total_kib(_read("/proc/meminfo")) / 1024 / 1024, 1),
        "cpu_model": parse_cpu_model(_read("/proc/cpuinfo")),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def parse_proc_stat_cpu(stat_text: str) -> float:
    """utime + stime in seconds from the text of /proc/<pid>/stat. Pure.

    The command name (field 2) may contain spaces and parentheses; fields are counted after
    the last ``)``.
    """
    rest = stat_text[stat_text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime is field 14, stime field 15.
    utime = int(rest[11])
    stime = int(rest[12])
    return (utime + stime) / _CLK_TCK


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (``/proc/<pid>/task/*/children``); [] once it is gone."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(k) for k in (task / "children").read_text().split()]
    except OSError:
        return []
    return sorted(out)


def spawned_children(pid: int) -> list[int]:
    """The children of ``pid`` started by multiprocessing's spawn (a multi-process ``eventstrata
    serve``'s API processes), not its other children (multiprocessing's resource tracker)."""
    out = []
    for k in child_pids(pid):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{k}/cmdline").read_bytes():
                out.append(k)
    return out


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` itself (not its children).

    Raises ``OSError`` when the process is gone.
    """
    return parse_proc_stat_cpu(Path(f"/proc/{pid}/stat").read_text())


@dataclass(slots=True)
class CpuMeter:
    """Measures CPU% of a set of processes over an interval: ``start()`` then ``stop()``."""

    pids: tuple[int, ...]
    _t0: float = 0.0
    _c0: tuple[float, ...] = ()

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._c0 = tuple(_cpu_or_zero(p) for p in self.pids)

    def stop(self) -> tuple[float, ...]:
        """Per-pid CPU percent of one core since ``start`` (a process that exited counts 0)."""
        wall = time.monotonic() - self._t0
        c1 = tuple(_cpu_or_zero(p) for p in self.pids)
        return tuple(
            100.0 * max(0.0, b - a) / wall if wall > 0 else 0.0 for a, b in zip(self._c0, c1, strict=True)
        )


def _cpu_or_zero(pid: int) -> float:
    try:
        return process_cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return 0.0
