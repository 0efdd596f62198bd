"""Session fixtures for the whole test suite: the real backing services, started lazily.

Contract (fixture names are stable; other test packages rely on them):

``services``         a started :class:`pipeline.devstack.DevStack` (session scope): real
                     Kafka 3.9, PostgreSQL and Redis on free ports in a temporary data dir,
                     or the external ones named by ``SEP_KAFKA`` / ``SEP_POSTGRES`` /
                     ``SEP_REDIS``. Started by the first test that asks for it, stopped at
                     session end. Nothing starts for tests that don't ask.
``kafka_bootstrap``  ``"127.0.0.1:PORT"`` (str)
``postgres_dsn``     ``"postgresql://postgres@127.0.0.1:PORT/sep"`` (str; database exists)
``redis_url``        ``"redis://127.0.0.1:PORT/0"`` (str)

The services are shared by the session, so tests isolate themselves by name: unique
topic names, tables or schemas, and key prefixes (or a Redis db number). Tests that kill
or restart a service start their own instance (see ``tests/devstack``).

Every test that uses one of these fixtures gets the ``services`` marker automatically, so
``pytest -m "not services"`` runs only the tests that need nothing.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pipeline.devstack import DevStack

SERVICE_FIXTURES = frozenset({"services", "kafka_bootstrap", "postgres_dsn", "redis_url"})

# The running stack, if any, for the start-up timings in the terminal summary.
_started: list[DevStack] = []


def _progress(line: str) -> None:
    # Fixture output is captured per test; stderr of the real process shows it live
    # (with -s) and the summary below repeats the timings in every run.
    print(f"[devstack] {line}", file=sys.__stderr__, flush=True)


def services_tmpdir(prefix: str) -> Path:
    """A fresh temporary directory *outside* pytest's basetemp.

    As root, PostgreSQL runs as a dedicated system user that must traverse every
    directory above its data. pytest keeps ``/tmp/pytest-of-<user>`` at mode 0700 and
    re-applies that whenever another pytest session starts, which breaks a running
    server's data path; ``/tmp`` itself is world-traversable.
    """
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def services() -> Iterator[DevStack]:
    # Imported here so that collecting and running pure unit tests imports none of it.
    from pipeline.devstack import ANY_PORTS, DevStack

    data_dir = services_tmpdir("sep-services-")
    stack = DevStack(data_dir, ANY_PORTS, progress=_progress)
    try:
        stack.start()
        _started.append(stack)
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: DevStack) -> str:
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_dsn(services: DevStack) -> str:
    return services.postgres_dsn


@pytest.fixture(scope="session")
def redis_url(services: DevStack) -> str:
    return services.redis_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for stack in _started:
        for name, seconds in stack.timings.items():
            where = "external" if name in stack.external else "embedded"
            terminalreporter.write_line(f"devstack: {name} ({where}) ready in {seconds:.1f}s")


# --- the dev chain ----------------------------------------------------------------------
# ``chain``  a :class:`pipeline.devstack.uniswap.DevChain` (session scope): anvil on a free
#            port with the real Uniswap V3 contracts deployed and seeded, or the node named by
#            ``SEP_RPC`` (deployment file ``SEP_DEPLOYMENT``; deployed there if missing).
#            Fields: ``rpc_url``, ``deployment_path``, ``deployment`` (addresses, pools,
#            trader). Shared by the session: assert on changes, not on absolute balances.
SERVICE_FIXTURES = SERVICE_FIXTURES | frozenset({"chain"})

if TYPE_CHECKING:
    from pipeline.devstack.uniswap import DevChain


@pytest.fixture(scope="session")
def chain() -> Iterator[DevChain]:
    from pipeline.devstack.uniswap import dev_chain

    data_dir = services_tmpdir("sep-chain-")
    try:
        with dev_chain(data_dir, progress=_progress) as node:
            yield node
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
