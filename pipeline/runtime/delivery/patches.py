"""Every patch of a library's private API, in one place, checked against the version it was
written for.  ``check()`` refuses to start on any other version: a private API can change in a
patch release, and a silent mismatch here would cost latency or records, not an error.

**The consumer's fetch wait: short while records are buffered, long when everything is idle.**
aiokafka keeps one fetch in flight per broker, covering every partition that has no
unconsumed records.  A partition whose records were just taken is not in that request, so its
next records wait until the in-flight fetch returns: when any of *its* partitions gets data,
or after the fetch's max wait.  A short wait (``SEP_FETCH_MAX_WAIT_MS``, 10 ms) keeps hops
fast but costs a fetch every 10 ms per consumer when nothing happens (measured: two idle
workers made the broker burn 0.19 of a core and each worker 0.14-0.17).  Yet when *no*
partition has buffered records (and none is paused or awaiting an offset reset), the next
request covers every assigned partition, so new data on any of them completes it at once: a
long wait then costs no latency at all.  So the wait is chosen per request: the idle wait
(``SEP_FETCH_IDLE_WAIT_MS``, 500 ms) when the request will cover everything, the short one
otherwise.  aiokafka builds its fetcher inline in ``start`` with no factory to override, so
the fetcher's class is swapped after start (same fields, only behaviour changes).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiokafka
from aiokafka.consumer.fetcher import Fetcher

WRITTEN_FOR = {"aiokafka": ("0.14.",)}
"""Library -> version prefixes these patches were written and tested against."""

FETCH_MAX_WAIT_MS = 10
"""Default busy wait (``Settings.fetch_max_wait_ms``, ``SEP_FETCH_MAX_WAIT_MS``)."""
FETCH_IDLE_WAIT_MS = 500
"""Default idle wait (``Settings.fetch_idle_wait_ms``, ``SEP_FETCH_IDLE_WAIT_MS``)."""


class UnsupportedLibraryVersion(RuntimeError):
    """A patched library is at a version the patches were not written for."""


def check() -> None:
    """Refuse to run on a library version the patches below were not written for."""
    version = aiokafka.__version__
    if not version.startswith(WRITTEN_FOR["aiokafka"]):
        raise UnsupportedLibraryVersion(
            f"aiokafka {version} is installed, but pipeline/runtime/delivery/patches.py was "
            f"written for {', '.join(WRITTEN_FOR['aiokafka'])}x: check the fetcher's private "
            "_get_actions_per_node/_records/_fetch_max_wait_ms, then update WRITTEN_FOR"
        )
    if not hasattr(Fetcher, "_get_actions_per_node"):
        raise UnsupportedLibraryVersion("aiokafka's Fetcher has no _get_actions_per_node")


def covers_every_partition(buffered: bool, states: Iterable[Any]) -> bool:
    """Whether the next fetch request will include every assigned partition.

    ``buffered``: some partition still has fetched records the application has not taken
    (aiokafka leaves it out of the request until they are).  ``states``: the partitions'
    aiokafka states; a paused one, or one without a valid position (awaiting an offset
    reset), is left out too.
    """
    if buffered:
        return False
    return all(state.has_valid_position and not state.paused for state in states)


class AdaptiveWaitFetcher(Fetcher):  # type: ignore[misc]
    """aiokafka's fetcher, choosing each request's max wait (see the module docstring)."""

    busy_wait_ms: int = FETCH_MAX_WAIT_MS
    idle_wait_ms: int = FETCH_IDLE_WAIT_MS

    def _get_actions_per_node(self, assignment: Any) -> Any:
        # Read by the parent when it builds the FetchRequest in this same call.
        everything = covers_every_partition(
            bool(self._records), (assignment.state_value(tp) for tp in assignment.tps)
        )
        self._fetch_max_wait_ms = self.idle_wait_ms if everything else self.busy_wait_ms
        return super()._get_actions_per_node(assignment)


class AdaptiveWaitConsumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
    """An aiokafka consumer whose fetch waits adapt (see the module docstring).

    ``fetch_max_wait_ms`` given by the caller caps the busy wait; ``idle_wait_ms`` is the wait
    of a request that covers every partition.
    """

    def __init__(self, *topics: Any, idle_wait_ms: int = FETCH_IDLE_WAIT_MS, **kwargs: Any) -> None:
        kwargs.setdefault("fetch_max_wait_ms", FETCH_MAX_WAIT_MS)
        self._idle_wait_ms = max(idle_wait_ms, kwargs["fetch_max_wait_ms"])
        super().__init__(*topics, **kwargs)

    async def start(self) -> None:
        await super().start()
        fetcher = self._fetcher
        # The fetch routine is already running, but it looks the method up on every
        # iteration: from its next request on, the waits adapt.  Same fields, same layout:
        # only the class's behaviour changes.
        fetcher.__class__ = AdaptiveWaitFetcher
        fetcher.busy_wait_ms = self._fetch_max_wait_ms
        fetcher.idle_wait_ms = self._idle_wait_ms
