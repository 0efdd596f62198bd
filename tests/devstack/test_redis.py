"""redis-server: set/get, persistence across a restart, the binary lookup."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from pipeline.devstack import redis as devstack_redis
from pipeline.devstack.errors import ToolMissingError
from pipeline.devstack.ports import choose_port, port_is_free
from pipeline.devstack.redis import RedisServer, find_redis_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    node = RedisServer(tmp_path / "redis", choose_port(0))
    try:
        yield node
    finally:
        node.stop()


async def test_set_then_get(redis_url: str) -> None:
    key = f"devstack:{uuid.uuid4().hex}"
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.set(key, "intent-1")
        assert await client.get(key) == b"intent-1"
        await client.delete(key)
    finally:
        await client.aclose()


def test_sep_redis_server_must_be_an_executable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SEP_REDIS_SERVER", str(tmp_path / "no-such-redis-server"))
    with pytest.raises(ToolMissingError) as info:
        find_redis_server()
    assert "SEP_REDIS_SERVER" in str(info.value)


def test_sep_redis_server_wins_over_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("SEP_REDIS_SERVER", str(fake))
    assert find_redis_server() == fake


def test_missing_binary_without_install_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SEP_REDIS_SERVER", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(devstack_redis, "DEBIAN_REDIS", tmp_path / "redis-server")
    with pytest.raises(ToolMissingError) as info:
        find_redis_server(install=False)
    assert "apt-get install -y redis-server" in str(info.value)


@pytest.mark.services
async def test_restart_keeps_keys(server: RedisServer) -> None:
    server.start()
    await server.wait_healthy(30)
    client = aioredis.Redis.from_url(server.url)
    try:
        await client.set("survives", "restart")
    finally:
        await client.aclose()
    server.stop()  # SIGTERM: redis flushes the append-only file before exiting

    server.start()
    await server.wait_healthy(30)
    client = aioredis.Redis.from_url(server.url)
    try:
        assert await client.get("survives") == b"restart"
    finally:
        await client.aclose()


@pytest.mark.services
async def test_stop_frees_the_port(server: RedisServer) -> None:
    server.start()
    await server.wait_healthy(30)
    assert not port_is_free(server.port)
    server.stop()
    assert port_is_free(server.port)
