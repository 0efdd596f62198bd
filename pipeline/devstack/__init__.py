"""Embedded development stack: a real Kafka broker, PostgreSQL and Redis on one machine.

``DevStack`` starts the three (or uses the ones given by ``SEP_KAFKA``, ``SEP_POSTGRES``,
``SEP_REDIS``); each service class can also be used alone, e.g. to kill and restart a
broker in a crash test.
"""

from pipeline.devstack.errors import (
    DevStackError,
    FetchError,
    ServiceStartError,
    ToolMissingError,
)
from pipeline.devstack.kafka import KafkaBroker
from pipeline.devstack.ports import choose_port, free_port, port_is_free
from pipeline.devstack.postgres import Postgres
from pipeline.devstack.redis import RedisServer
from pipeline.devstack.service import Service
from pipeline.devstack.stack import ANY_PORTS, DEFAULT_PORTS, DevStack, Ports

__all__ = [
    "ANY_PORTS",
    "DEFAULT_PORTS",
    "DevStack",
    "DevStackError",
    "FetchError",
    "KafkaBroker",
    "Ports",
    "Postgres",
    "RedisServer",
    "Service",
    "ServiceStartError",
    "ToolMissingError",
    "choose_port",
    "free_port",
    "port_is_free",
]
