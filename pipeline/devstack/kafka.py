"""A real Apache Kafka 3.9 broker: one KRaft node that is both broker and controller.

Kafka 3.9 is the last line that keeps the older protocol versions aiokafka still uses
(4.0 dropped them, aio-libs/aiokafka#1085). The jars come from Maven (see kafka_dist);
the data dir holds ``server.properties``, ``log4j.properties``, the cluster id and the
KRaft log dir, and is reused across restarts: it is formatted only once.

Layout of ``data_dir``::

    server.properties  log4j.properties  cluster.id
    kraft/             meta.properties, __cluster_metadata-0/, topic partitions
"""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

from pipeline import limits
from pipeline.config import Settings
from pipeline.devstack.errors import ServiceStartError, ToolMissingError
from pipeline.devstack.kafka_dist import ensure_kafka_jars
from pipeline.devstack.ports import HOST, port_accepts
from pipeline.devstack.probes import check_kafka
from pipeline.devstack.service import Service

log = logging.getLogger(__name__)

HEAP = "-Xmx768m"


def jvm_options() -> list[str]:
    """Garbage collector and other JVM flags for the embedded broker (``SEP_KAFKA_JVM_OPTS``)."""
    return Settings().kafka_jvm_opts.split()


def new_cluster_id() -> str:
    """A Kafka Uuid string: 16 random bytes, url-safe base64 without padding.

    Kafka's own ``Uuid.randomUuid`` re-draws ids starting with '-' (they read as CLI flags).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


class KafkaBroker(Service):
    """Single-node KRaft Kafka on ``127.0.0.1:port``, controller on ``controller_port``."""

    name = "kafka"

    def __init__(
        self,
        data_dir: Path,
        port: int,
        controller_port: int | None = None,
        log_dir: Path | None = None,
    ) -> None:
        super().__init__(data_dir, port, log_dir)
        self.controller_port = controller_port if controller_port is not None else port + 1
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return self.bootstrap

    def ports(self) -> list[int]:
        return [self.port, self.controller_port]

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "kraft"

    def server_properties(self) -> str:
        """Broker config for one dev node and fast tests (rewritten on every start,
        so a restart on other ports works; the static voter list keeps that legal)."""
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                # Static quorum (not --standalone's dynamic one): endpoints are config, not
                # stored in the metadata log, so the ports may change between runs.
                f"controller.quorum.voters=1@{HOST}:{self.controller_port}",
                f"listeners=PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://{HOST}:{self.port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.log_dirs}",
                "num.partitions=4",
                # pipeline/limits.py: what the broker accepts, above what we produce.
                f"message.max.bytes={limits.BROKER_MAX_MESSAGE_BYTES}",
                "default.replication.factor=1",
                "min.insync.replicas=1",
                "offsets.topic.replication.factor=1",
                # 50 partitions by default: creating them delays the first group join.
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "transaction.state.log.num.partitions=10",
                # Join a group at once instead of waiting 3 s for more members.
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                # After a kill -9 the controller rejects the restarted broker's registration
                # (DUPLICATE_BROKER_REGISTRATION) until the old lease expires: 9 s by default,
                # a third of every crash test. Heartbeats are loopback, in-process; 4 s is ample.
                "broker.session.timeout.ms=4000",
                "broker.heartbeat.interval.ms=1000",
                # Two cores: fewer threads than the defaults (3 network, 8 io).
                "num.network.threads=2",
                "num.io.threads=4",
                # The log cleaner (compacted changelog topics) reserves 128 MiB of heap by default.
                "log.cleaner.dedupe.buffer.size=33554432",
                "",
            ]
        )

    def log4j_properties(self) -> str:
        # To stdout, which Service.start sends to <log_dir>/kafka.log: one file holds the
        # server's log and anything the JVM itself prints (bad flags, OOM), in order.
        return "\n".join(
            [
                "log4j.rootLogger=INFO, stdout",
                "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
                "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
                "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
                # The controller and request loggers are chatty at INFO and say little we need.
                "log4j.logger.kafka.request.logger=WARN",
                "log4j.logger.org.apache.kafka.controller=WARN",
                "log4j.logger.state.change.logger=WARN",
                "",
            ]
        )

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise ToolMissingError(
                "java", "install a JDK 17+ (Debian: apt-get install -y default-jdk)"
            )
        return java

    def _java_argv(self, main: str, *args: str, heap: str = HEAP) -> list[str]:
        assert self._libs is not None
        return [
            self._java(), heap, *jvm_options(),
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
            "-cp", f"{self._libs}/*", main, *args,
        ]  # fmt: skip

    def setup(self) -> None:
        """Fetch jars (cached), write configs, and format the storage once."""
        self._libs = ensure_kafka_jars()
        (self.data_dir / "server.properties").write_text(self.server_properties())
        (self.data_dir / "log4j.properties").write_text(self.log4j_properties())
        if (self.log_dirs / "meta.properties").exists():
            return  # formatted before: reformatting would refuse (or wipe the cluster id)
        id_file = self.data_dir / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        argv = self._java_argv(
            "kafka.tools.StorageTool", "format",
            "-t", id_file.read_text().strip(),
            "-c", str(self.data_dir / "server.properties"),
            heap="-Xmx256m",
        )  # fmt: skip
        log.info("kafka: formatting %s", self.log_dirs)
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            with self.log_path.open("a") as out:
                out.write(result.stdout + result.stderr)
            raise ServiceStartError(self.name, "formatting the storage failed", self.log_path)

    def command(self) -> list[str]:
        return self._java_argv("kafka.Kafka", str(self.data_dir / "server.properties"))

    async def probe(self) -> None:
        if not port_accepts(self.port):
            # Cheap pre-check: aiokafka logs an ERROR line per refused connection.
            raise ConnectionRefusedError(f"nothing listens on {self.bootstrap} yet")
        await check_kafka(self.bootstrap)
