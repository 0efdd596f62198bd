"""Port helpers: what counts as busy, and how a busy preferred port is replaced."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from pipeline.devstack.ports import (
    HOST,
    choose_port,
    free_port,
    port_accepts,
    port_is_free,
    wait_port_released,
)


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_listening_port_is_busy_and_accepts(listening: int) -> None:
    assert not port_is_free(listening)
    assert port_accepts(listening)


def test_a_fresh_free_port_is_free() -> None:
    port = free_port()
    assert port_is_free(port)
    assert not port_accepts(port)


def test_choose_port_keeps_a_free_preferred_port() -> None:
    port = free_port()
    assert choose_port(port) == port


def test_choose_port_replaces_a_busy_port(listening: int) -> None:
    chosen = choose_port(listening)
    assert chosen != listening
    assert port_is_free(chosen)


def test_choose_port_skips_ports_already_handed_out() -> None:
    port = free_port()
    assert choose_port(port, taken={port}) != port


def test_wait_port_released_reports_a_port_still_taken(listening: int) -> None:
    assert not wait_port_released(listening, timeout=0.2)
