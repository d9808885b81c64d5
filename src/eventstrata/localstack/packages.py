"""Debian packages the local stack and the tests need (``redis-server``; ``chromium`` for the
console's browser tests), installed with apt-get when missing and we are root."""

from __future__ import annotations

import os
import shutil
import subprocess

from eventstrata.config import child_env
from eventstrata.localstack.proc import StackError


def ensure_debian_package(package: str, binaries: tuple[str, ...], *, install: bool = True) -> str:
    """Path of ``binaries[0]``, once every one of ``binaries`` is on ``PATH``; installs
    ``package`` with ``apt-get`` when one is missing, ``install`` is true and we are root.
    Blocks (apt-get). Raises ``StackError`` with install instructions otherwise."""
    hint = f"install it with `sudo apt-get install -y {package}` (Debian/Ubuntu)"
    if all(shutil.which(b) for b in binaries):
        return str(shutil.which(binaries[0]))
    if not install or os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"{binaries[0]} is not installed; {hint}")
    env = child_env({"DEBIAN_FRONTEND": "noninteractive"})
    for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"`{' '.join(cmd)}` failed (exit {result.returncode}): {result.stderr[-2000:]}")
    if not all(shutil.which(b) for b in binaries):
        raise StackError(f"{binaries[0]} still missing after apt-get; {hint}")
    return str(shutil.which(binaries[0]))


def ensure_chromium_installed(*, install: bool = True) -> str:
    """Path of Debian's ``chromium`` (the console's end-to-end tests drive it headless)."""
    return ensure_debian_package("chromium", ("chromium",), install=install)
