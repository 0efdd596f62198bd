"""Build the faust App. Only this: agents are wired in ``pipeline.runtime.agents``.

The settings here are the ones that made the pipeline fast and restartable on one machine
(see the README's performance notes): short session timeouts so a restarted worker joins in
about a second, frequent commits so a crash replays little, raw bytes in and out so faust's
codec machinery stays off the hot path (stages decode with pydantic-core themselves).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import faust

from pipeline.config import Settings
from pipeline.runtime import kafka_tuning, offsets
from pipeline.topology.models import Topology


def group_id(topology: Topology, stages: Sequence[str] | None = None) -> str:
    """The consumer group (faust app id) of a worker running ``stages``.

    Workers running every stage share the topology's app id.  A worker running a subset
    (a process layout such as "project in its own process") gets a group of its own: faust's
    assignor assumes every member of a group runs the same agents, and a separate group
    still receives every record of the topics it reads.
    """
    if stages is None or set(stages) == {s.name for s in topology.stages}:
        return topology.app.id
    ordered = [s.name for s in topology.stages if s.name in stages]
    return f"{topology.app.id}-{'-'.join(ordered)}"


def build_app(
    topology: Topology,
    settings: Settings,
    app_class: type[faust.App] = faust.App,
    stages: Sequence[str] | None = None,
    **overrides: Any,
) -> faust.App:
    kafka_tuning.apply()
    offsets.install()
    options: dict[str, Any] = {
        "broker": f"kafka://{settings.kafka.replace(',', ';kafka://')}",
        "store": "memory://",
        "key_serializer": "raw",
        "value_serializer": "raw",
        "web_enabled": False,
        "datadir": str(settings.data_dir / "faust"),
        "consumer_auto_offset_reset": "earliest",
        # Join a group in ~1 s instead of tens of seconds after a restart.
        "broker_session_timeout": 6.0,
        "broker_heartbeat_interval": 0.5,
        "broker_rebalance_timeout": 20.0,
        "broker_request_timeout": 30.0,
        # Commit acked offsets often: a crash replays at most this much (idempotently).
        "broker_commit_interval": 3.0,
        "broker_commit_every": 2000,
        "broker_max_poll_records": 2000,
        "stream_buffer_maxsize": 8192,
        "producer_linger_ms": int(os.environ.get("SEP_PRODUCER_LINGER_MS", "1")),
        "producer_max_batch_size": 256 * 1024,
        "producer_acks": -1,
        "topic_partitions": max(t.partitions for t in topology.topics),
        "topic_allow_declare": True,
        "table_standby_replicas": 0,
    }
    options.update(overrides)
    return app_class(group_id(topology, stages), **options)
