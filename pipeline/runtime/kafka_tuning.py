"""faust hard-codes the consumer's ``fetch_max_wait_ms`` (1500); we lower it.

Why it matters: aiokafka keeps one fetch in flight per broker, covering every partition that
has no unconsumed records.  A partition whose records were just taken is not in that request,
so its next records wait until the in-flight fetch returns: when any of *its* partitions gets
data, or after ``fetch_max_wait_ms``.  With one broker and ~40 partitions at a modest rate,
every stage-to-stage hop paid tens to hundreds of milliseconds for it.  A short wait makes
fetches return and re-include every partition quickly, at the cost of more (cheap, local)
fetch requests when idle.

faust builds the consumer itself with no setting for this, so we swap in a subclass where
faust's driver looks the class up (pinned faust 0.15.3; ``apply`` fails loudly if the module
layout changes).
"""

from __future__ import annotations

import os
from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

FETCH_MAX_WAIT_MS = int(os.environ.get("SEP_FETCH_MAX_WAIT_MS", "10"))


class _ShortWaitConsumer(aiokafka.AIOKafkaConsumer):  # type: ignore[misc]
    def __init__(self, *topics: Any, **kwargs: Any) -> None:
        kwargs["fetch_max_wait_ms"] = min(kwargs.get("fetch_max_wait_ms", 500), FETCH_MAX_WAIT_MS)
        super().__init__(*topics, **kwargs)


class _PatchedModule:
    """``aiokafka`` as faust's driver sees it, with the consumer class replaced."""

    def __getattr__(self, name: str) -> Any:
        if name == "AIOKafkaConsumer":
            return _ShortWaitConsumer
        return getattr(aiokafka, name)


def apply() -> None:
    if not hasattr(faust_aiokafka, "aiokafka"):
        raise RuntimeError("faust's aiokafka driver changed; revisit kafka_tuning.py")
    if not isinstance(faust_aiokafka.aiokafka, _PatchedModule):
        faust_aiokafka.aiokafka = _PatchedModule()
