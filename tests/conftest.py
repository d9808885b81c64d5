"""Global test guard: a test without the ``integration`` marker cannot open network connections.

Every ``connect``/``connect_ex``/``sendto`` on an AF_INET/AF_INET6 socket raises
``NetworkBlockedError`` (AF_UNIX stays allowed: event loops use socketpairs internally).
Integration tests declare ``pytestmark = pytest.mark.integration`` and get real servers from
``tests/integration/conftest.py``.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest


class NetworkBlockedError(RuntimeError):
    """Raised when a non-integration test tries to reach the network."""


_INET = (socket.AF_INET, socket.AF_INET6)


def _guarded(original: Any, what: str) -> Any:
    def guard(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if self.family in _INET:
            raise NetworkBlockedError(
                f"socket.{what}{args!r} in a test without @pytest.mark.integration: unit tests must not "
                "use the network (move it to tests/integration/ and mark it)"
            )
        return original(self, *args, **kwargs)

    return guard


@pytest.fixture(autouse=True)
def _block_network_outside_integration(request: pytest.FixtureRequest) -> Iterator[None]:
    if request.node.get_closest_marker("integration") is not None:
        yield
        return
    mp = pytest.MonkeyPatch()
    for name in ("connect", "connect_ex", "sendto"):
        mp.setattr(socket.socket, name, _guarded(getattr(socket.socket, name), name))
    try:
        yield
    finally:
        mp.undo()
