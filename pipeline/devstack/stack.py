"""``DevStack``: Kafka, PostgreSQL and Redis for one machine, or the ones given by URL.

Each service is embedded unless its URL is in the environment::

    SEP_KAFKA     bootstrap servers, e.g. "broker1:9092,broker2:9092"
    SEP_POSTGRES  DSN, e.g. "postgresql://sep@db:5432/sep"
    SEP_REDIS     URL, e.g. "redis://cache:6379/0"
    SEP_RPC       JSON-RPC URL of an EVM node, e.g. "http://127.0.0.1:8545"

With ``chain=True`` (``sep up``) the stack also runs a local EVM node (anvil) and makes sure
the Uniswap V3 contracts are deployed and seeded on it (or on the ``SEP_RPC`` node); where
they are is written to ``$SEP_DEPLOYMENT`` (default ``<data>/chain/deployment.json``).

Embedded services keep their data under ``$SEP_DATA`` (default ``./.sep``) and their logs
under ``<data>/logs``. Start-up runs the slow one-off work (the Kafka jar fetch, initdb,
storage format) in parallel threads, spawns each server from the calling thread as soon
as its own preparation is done (so it dies with us, see ``Service.start``), and then
waits for all health checks at once.

Use it as a context manager; ``stop()`` is idempotent and also runs at interpreter exit.
With ``handle_signals=True`` (for ``sep up``) SIGTERM and SIGHUP unwind like Ctrl-C does,
so the ``with`` block stops the services in order.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TypeVar

from pipeline.config import Settings
from pipeline.devstack.chain import ChainService, check_chain
from pipeline.devstack.errors import DevStackError
from pipeline.devstack.kafka import KafkaBroker
from pipeline.devstack.ports import choose_port
from pipeline.devstack.postgres import Postgres
from pipeline.devstack.probes import check_kafka, check_postgres, check_redis
from pipeline.devstack.redis import RedisServer
from pipeline.devstack.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")

ENV_VARS = {
    "kafka": "SEP_KAFKA",
    "postgres": "SEP_POSTGRES",
    "redis": "SEP_REDIS",
    "chain": "SEP_RPC",
}
_CHECKS: dict[str, Callable[[str], Coroutine[Any, Any, None]]] = {
    "kafka": check_kafka,
    "postgres": check_postgres,
    "redis": check_redis,
    "chain": check_chain,
}


@dataclass(frozen=True)
class Ports:
    """Preferred ports; a busy one is replaced by a free one (and reported). 0 = any."""

    kafka: int = 19092
    kafka_controller: int = 19093
    postgres: int = 15432
    redis: int = 16379
    chain: int = 0


DEFAULT_PORTS = Ports(chain=18545)
ANY_PORTS = Ports(0, 0, 0, 0)


def default_data_dir() -> Path:
    return Settings().data_dir


class DevStack:
    """The three backing services of the platform, started and stopped together."""

    def __init__(
        self,
        data_dir: Path | None = None,
        ports: Ports = DEFAULT_PORTS,
        *,
        env: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = print,
        timeout: float = 180.0,
        handle_signals: bool = False,
        chain: bool = False,
    ) -> None:
        self.data_dir = (data_dir or default_data_dir()).resolve()
        self.log_dir = self.data_dir / "logs"
        self.ports = ports
        self.timeout = timeout
        self.handle_signals = handle_signals
        environ = os.environ if env is None else env
        #: the services this stack provides (the chain only when asked for)
        self.wanted = [name for name in ENV_VARS if chain or name != "chain"]
        #: service name -> URL given by the environment (these are not started here)
        self.external = {
            name: environ[ENV_VARS[name]] for name in self.wanted if environ.get(ENV_VARS[name])
        }
        self.chain: ChainService | None = None
        #: the Uniswap V3 deployment file (chain=True); written or checked by start()
        self.deployment_path = Path(
            environ.get("SEP_DEPLOYMENT") or self.data_dir / "chain" / "deployment.json"
        ).resolve()
        self.kafka: KafkaBroker | None = None
        self.postgres: Postgres | None = None
        self.redis: RedisServer | None = None
        #: service name -> seconds from "starting" to healthy, filled by start()
        self.timings: dict[str, float] = {}
        self._progress = progress or (lambda _line: None)
        self._urls: dict[str, str] = {}
        self._old_handlers: dict[int, Any] = {}

    # -- what clients need -------------------------------------------------------------

    @property
    def kafka_bootstrap(self) -> str:
        return self._url("kafka")

    @property
    def postgres_dsn(self) -> str:
        return self._url("postgres")

    @property
    def redis_url(self) -> str:
        return self._url("redis")

    @property
    def rpc_url(self) -> str:
        """The EVM node's JSON-RPC URL (``chain=True`` only)."""
        return self._url("chain")

    def settings(self, data_dir: Path | None = None) -> Settings:
        """``Settings`` pointing the pipeline at this started stack's services.

        ``data_dir`` is where the pipeline keeps its own state (default: the stack's); the
        chain's URL and deployment file only when the stack runs one (``chain=True``).
        """
        chain: dict[str, Any] = {}
        if "chain" in self.wanted:
            chain = {"rpc": self.rpc_url, "deployment": self.deployment_path}
        return Settings(
            kafka=self.kafka_bootstrap,
            postgres=self.postgres_dsn,
            redis=self.redis_url,
            data_dir=data_dir or self.data_dir,
            **chain,
        )

    def _url(self, name: str) -> str:
        try:
            return self._urls[name]
        except KeyError:
            raise DevStackError(f"{name} is not running: call DevStack.start() first") from None

    @property
    def embedded(self) -> list[Service]:
        return [s for s in (self.kafka, self.postgres, self.redis, self.chain) if s is not None]

    # -- life cycle --------------------------------------------------------------------

    def start(self) -> DevStack:
        """Start what is not external and wait until everything is healthy.

        Blocking (seconds; longer on the first run, which fetches the Kafka jars). Call
        it from the main thread: children spawned from another thread cannot be tied to
        our lifetime. From async code, start the stack before entering the event loop.
        """
        if self._urls:
            return self
        self._install_signal_handlers()
        atexit.register(self.stop)
        started = time.monotonic()
        try:
            self._create_services()
            for name in self.wanted:
                if name in self.external:
                    self._say(f"{name}: using {self.external[name]} (from {ENV_VARS[name]})")
                else:
                    self._say(f"{name}: starting…")
            _prepare_then_spawn(self.embedded)
            _run_async(self._wait_all(started))
        except BaseException:
            self.stop()
            raise
        return self

    def _create_services(self) -> None:
        taken: set[int] = set()

        def port(name: str, preferred: int) -> int:
            chosen = choose_port(preferred, taken=taken)
            taken.add(chosen)
            if preferred and chosen != preferred:
                self._say(f"{name}: port {preferred} is busy, using {chosen}")
            return chosen

        if "kafka" not in self.external:
            self.kafka = KafkaBroker(
                self.data_dir / "kafka",
                port("kafka", self.ports.kafka),
                controller_port=port("kafka controller", self.ports.kafka_controller),
                log_dir=self.log_dir,
            )
        if "postgres" not in self.external:
            pg_port = port("postgres", self.ports.postgres)
            self.postgres = Postgres(self.data_dir / "postgres", pg_port, log_dir=self.log_dir)
        if "redis" not in self.external:
            redis_port = port("redis", self.ports.redis)
            self.redis = RedisServer(self.data_dir / "redis", redis_port, log_dir=self.log_dir)
        if "chain" in self.wanted and "chain" not in self.external:
            chain_port = port("chain", self.ports.chain)
            self.chain = ChainService(self.data_dir / "chain", chain_port, log_dir=self.log_dir)

    async def _wait_all(self, started: float) -> None:
        async def one(name: str) -> None:
            service = {s.name: s for s in self.embedded}.get(name)
            if service is not None:
                await service.wait_healthy(self.timeout)
                url = service.url
            else:
                url = self.external[name]
                await _wait_external(name, url, self.timeout)
            if name == "chain":
                await self._deploy_uniswap(url)
            self.timings[name] = time.monotonic() - started
            self._urls[name] = url
            self._say(f"{name}: ready in {self.timings[name]:.1f}s at {url}")

        await asyncio.gather(*(one(name) for name in self.wanted))

    async def _deploy_uniswap(self, rpc_url: str) -> None:
        """Reuse the deployment the node already has, or deploy and seed Uniswap V3 on it."""
        from pipeline.devstack.uniswap import ensure_deployment  # web3 only when asked for

        await asyncio.to_thread(ensure_deployment, rpc_url, self.deployment_path, self._say)

    def stop(self) -> None:
        """Stop the embedded services (external ones are left alone); idempotent."""
        atexit.unregister(self.stop)
        self._shield_signals()
        for service in (self.chain, self.redis, self.postgres, self.kafka):
            if service is not None and service.running:
                service.stop()
                self._say(f"{service.name}: stopped")
        self._urls.clear()
        self._restore_signal_handlers()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------------

    def _say(self, line: str) -> None:
        log.info("%s", line)
        self._progress(line)

    def _install_signal_handlers(self) -> None:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            return

        def unwind(signum: int, _frame: FrameType | None) -> None:
            # SystemExit unwinds through `with DevStack()`, which stops the services.
            raise SystemExit(128 + signum)

        for sig in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, unwind)

    def _shield_signals(self) -> None:
        """While stopping, a repeated signal must not abort the orderly shutdown."""
        if not self._old_handlers or threading.current_thread() is not threading.main_thread():
            return
        for sig in (*self._old_handlers, signal.SIGINT):
            self._old_handlers.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, signal.SIG_IGN)

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers.clear()


async def _wait_external(name: str, url: str, budget: float) -> None:
    """Give an external service the same budget as an embedded one (it may be starting)."""
    deadline = time.monotonic() + budget
    while True:
        try:
            await asyncio.wait_for(_CHECKS[name](url), timeout=10)
            return
        except Exception as exc:
            if time.monotonic() > deadline:
                var = ENV_VARS[name]
                raise DevStackError(f"{name} at {url} ({var}) is not reachable: {exc!r}") from exc
        await asyncio.sleep(0.5)


def _prepare_then_spawn(services: list[Service]) -> None:
    """Run the slow one-off work concurrently; spawn each server as soon as it is ready.

    ``prepare`` runs in worker threads, but ``start`` (the spawn) stays in the calling
    thread: a child's parent-death signal is tied to the thread that forked it.
    """
    if not services:
        return
    with concurrent.futures.ThreadPoolExecutor(len(services)) as pool:
        pending = {pool.submit(s.prepare): s for s in services}
        for future in concurrent.futures.as_completed(pending):
            future.result()  # re-raise a failed prepare; start() then stops the rest
            pending[future].start()


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private event loop in a helper thread.

    Works whether or not the caller's thread already runs a loop (pytest-asyncio keeps a
    session loop, ``sep up`` may run one), and never replaces the caller's loop.
    """
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
