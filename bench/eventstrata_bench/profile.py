"""Sampling profiles of a running process with py-spy, summarized as text (top frames)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

_LINE_NO = re.compile(r":\d+\)$")


def py_spy_path() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def summarize_collapsed(text: str, top: int = 12) -> str:
    """Summarize py-spy ``--format raw`` (collapsed stacks: ``f1;f2;...;fn count``) output:
    the top self-time frames and the top inclusive frames of eventstrata/workers code. Pure."""
    self_t: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or " " not in line:
            continue
        stack, _, count_s = line.rpartition(" ")
        try:
            count = int(count_s)
        except ValueError:
            continue
        frames = [_LINE_NO.sub(")", f.strip()) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        total += count
        self_t[frames[-1]] += count
        for f in set(frames):
            if "eventstrata/" in f or "workers/" in f:
                incl[f] += count
    if total == 0:
        return "(no samples)"
    out = [f"{total} samples (idle included: waiting frames count); self time:"]
    out += [f"  {100.0 * c / total:5.1f}%  {f}" for f, c in self_t.most_common(top)]
    out.append("inclusive time, product frames (entry-point wrappers above 97% omitted):")
    wide = [(f, c) for f, c in incl.most_common() if c < 0.97 * total][:top]
    out += [f"  {100.0 * c / total:5.1f}%  {f}" for f, c in wide]
    return "\n".join(out)


def record(pid: int, seconds: float, out: Path) -> str:
    """Sample ``pid`` for ``seconds`` (100 Hz, non-blocking) and return the summary. Blocks.
    Returns an explanation instead when py-spy is missing or fails."""
    exe = py_spy_path()
    if exe is None:
        return "py-spy not installed"
    proc = subprocess.run(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "100",
            "--nonblocking",
            "--idle",
            "--format",
            "raw",
            "--output",
            str(out),
        ],
        capture_output=True,
        timeout=seconds + 60,
        check=False,
    )
    if proc.returncode != 0 or not out.exists():
        return f"py-spy failed: {proc.stderr.decode(errors='replace')[-400:]}"
    return summarize_collapsed(out.read_text(errors="replace"))
