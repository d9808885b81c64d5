"""Free loopback TCP ports."""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_handed_out: set[int] = set()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` and it can be bound now (never blocks)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free on ``host``, never the same one twice in this process.

    There is an unavoidable race between this call and the server binding it; launchers
    detect a failed bind by the server exiting and report it.
    """
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise OSError("no free port found after 100 attempts")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free ports (see ``free_port``)."""
    return [free_port(host) for _ in range(count)]


def free_cluster_port(host: str = "127.0.0.1") -> int:
    """A free port P <= 55535 whose Redis Cluster bus port P+10000 is free too."""
    for _ in range(200):
        port = free_port(host)
        if port <= 55535 and port_is_free(port + 10000, host):
            with _lock:
                _handed_out.add(port + 10000)
            return port
    raise OSError("no free Redis Cluster port pair found after 200 attempts")
