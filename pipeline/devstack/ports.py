"""Port helpers: is a port free, pick a free one, wait until a stopped service releases one."""

from __future__ import annotations

import errno
import socket
import time

HOST = "127.0.0.1"


def port_is_free(port: int, host: str = HOST) -> bool:
    """True if nothing listens on ``host:port`` and we could bind it right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR matches what the servers themselves do, so a port held only by
        # TIME_WAIT sockets of a previous run counts as free (the server can bind it).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def free_port(host: str = HOST) -> int:
    """A port the kernel considers free now (there is an unavoidable race until it is bound)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def choose_port(preferred: int, host: str = HOST, taken: set[int] | None = None) -> int:
    """``preferred`` if it is free (and not already handed out), else a free one; 0 means any."""
    taken = taken if taken is not None else set()
    if preferred and preferred not in taken and port_is_free(preferred, host):
        return preferred
    while True:
        port = free_port(host)
        if port not in taken:
            return port


def port_accepts(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """True if a TCP connect to ``host:port`` succeeds (someone is listening)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port_released(port: int, timeout: float, host: str = HOST) -> bool:
    """Poll until nothing accepts connections on the port; False if still taken at timeout."""
    deadline = time.monotonic() + timeout
    while port_accepts(port, host):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
