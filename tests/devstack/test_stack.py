"""DevStack: external URLs win, busy ports are replaced, signals stop everything."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.devstack import ANY_PORTS, DevStack, DevStackError, Ports
from pipeline.devstack.ports import HOST, choose_port, port_is_free

pytestmark = pytest.mark.services


def external_env(services: DevStack, *, without: str = "") -> dict[str, str]:
    env = {
        "SEP_KAFKA": services.kafka_bootstrap,
        "SEP_POSTGRES": services.postgres_dsn,
        "SEP_REDIS": services.redis_url,
    }
    env.pop(without, None)
    return env


def test_urls_before_start_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(DevStackError, match="not running"):
        _ = DevStack(tmp_path, env={}, progress=None).kafka_bootstrap


def test_services_given_by_url_are_used_not_started(services: DevStack, tmp_path: Path) -> None:
    lines: list[str] = []
    with DevStack(tmp_path, env=external_env(services), progress=lines.append) as stack:
        assert stack.embedded == []
        assert stack.kafka_bootstrap == services.kafka_bootstrap
        assert stack.postgres_dsn == services.postgres_dsn
        assert stack.redis_url == services.redis_url
    assert f"kafka: using {services.kafka_bootstrap} (from SEP_KAFKA)" in lines
    assert not any(line.endswith("stopped") for line in lines)
    assert list(tmp_path.iterdir()) == []  # nothing embedded, nothing written


def test_an_unreachable_external_service_is_a_named_error(
    services: DevStack, tmp_path: Path
) -> None:
    env = external_env(services) | {"SEP_REDIS": f"redis://{HOST}:{choose_port(0)}/0"}
    stack = DevStack(tmp_path, env=env, progress=None, timeout=1)
    with pytest.raises(DevStackError, match="SEP_REDIS"):
        stack.start()


def test_a_busy_preferred_port_is_replaced_and_said(services: DevStack, tmp_path: Path) -> None:
    lines: list[str] = []
    env = external_env(services, without="SEP_REDIS")
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with DevStack(tmp_path, Ports(redis=busy), env=env, progress=lines.append) as stack:
            assert stack.redis is not None
            port = stack.redis.port
            assert port != busy
            assert stack.redis_url == f"redis://{HOST}:{port}/0"
            assert (tmp_path / "logs" / "redis.log").is_file()
    assert f"redis: port {busy} is busy, using {port}" in lines
    assert "redis: stopped" in lines
    assert port_is_free(port)


def test_sigterm_stops_the_services_in_order(services: DevStack, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from pipeline.devstack import ANY_PORTS, DevStack
        with DevStack(Path({str(tmp_path)!r}), ANY_PORTS, handle_signals=True) as stack:
            print("READY", stack.redis.port, flush=True)
            time.sleep(120)
        """
    )
    # Redis embedded in the child even when this session's Redis came from SEP_REDIS.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SEP_")}
    env = inherited | external_env(services, without="SEP_REDIS")
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            if line.startswith("READY"):
                port = int(line.split()[1])
                break
        assert port is not None, "the child stack never became ready"
        assert not port_is_free(port)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 128 + signal.SIGTERM
    assert "redis: stopped" in rest
    assert port_is_free(port)


def test_any_ports_means_free_ports() -> None:
    assert Ports(0, 0, 0, 0) == ANY_PORTS
