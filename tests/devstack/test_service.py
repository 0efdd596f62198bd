"""The shared life cycle: refusing a busy port, reporting a server that dies at start."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from pipeline.devstack.errors import ServiceStartError
from pipeline.devstack.ports import HOST, choose_port
from pipeline.devstack.redis import RedisServer


class BrokenRedis(RedisServer):
    """A redis whose config has an unknown directive, so the server exits at once."""

    def config(self) -> str:
        return super().config() + "no-such-directive yes\n"


def test_a_busy_port_is_refused_before_spawning(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen()
        server = RedisServer(tmp_path, sock.getsockname()[1])
        with pytest.raises(ServiceStartError, match="already in use"):
            server.start()
    assert not server.running


@pytest.mark.services
async def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    server = BrokenRedis(tmp_path, choose_port(0))
    server.start()
    try:
        with pytest.raises(ServiceStartError) as info:
            await server.wait_healthy(30)
    finally:
        server.stop()
    assert "exited with code" in str(info.value)
    assert info.value.log_path == server.log_path
    assert "no-such-directive" in str(info.value)  # the log tail names the cause
