"""Write a control change: the next seq of its key, produced to ``sep.control`` and
acknowledged by every in-sync replica before the caller hears it is done.

Two publishers changing one key at the same instant can both pick the same seq; every reader
then keeps the one it read first (``ControlState.apply``), which is the one the broker
ordered first: the loser's change is lost, not half-applied.  Operators acting on one
switch at once is rare enough for that; the change that won is in the audit trail.
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaProducer

from pipeline.codec import encode_event, encode_key
from pipeline.control.feed import ControlFeed
from pipeline.control.keys import TOPIC
from pipeline.models.base import WireModel
from pipeline.models.events import Event, make_event


def control_event(key: str, event_type: str, payload: WireModel, seq: int, at_ms: int) -> Event:
    """The event of one change of ``key`` (its id is a function of the key, seq and time)."""
    return make_event(
        event_type,
        payload,
        correlation_id=key,
        seq=seq,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )


async def publish_change(
    bootstrap: str,
    key: str,
    event_type: str,
    payload: WireModel,
    *,
    topic: str = TOPIC,
    feed: ControlFeed | None = None,
) -> Event:
    """Publish one change; returns its event once the broker has it.

    ``feed``: a started feed of the topic to take the key's last seq from (a long-running
    process like the API keeps one); without it, the topic is read once to find it.
    """
    own_feed = feed is None
    if feed is None:
        feed = ControlFeed(bootstrap, topic)
        await feed.start()
    try:
        event = control_event(
            key, event_type, payload, feed.state.seq(key) + 1, time.time_ns() // 1_000_000
        )
    finally:
        if own_feed:
            await feed.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, encode_event(event), key=encode_key(key))
    finally:
        await producer.stop()
    return event
