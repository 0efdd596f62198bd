"""faust hard-codes the consumer's ``fetch_max_wait_ms`` (1500); we have it use ours.

Ours (``runtime.fetch_wait.AdaptiveWaitConsumer``) waits 10 ms while some partition has
buffered records and 500 ms when the next fetch covers every partition (why: see that
module).  faust builds the consumer itself with no setting for this, so we swap in our class
where faust's driver looks the class up (pinned faust 0.15.3; ``apply`` fails loudly if the
module layout changes).
"""

from __future__ import annotations

from typing import Any

import aiokafka
from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.runtime.fetch_wait import AdaptiveWaitConsumer


class _PatchedModule:
    """``aiokafka`` as faust's driver sees it, with the consumer class replaced."""

    def __getattr__(self, name: str) -> Any:
        if name == "AIOKafkaConsumer":
            return AdaptiveWaitConsumer
        return getattr(aiokafka, name)


def apply() -> None:
    if not hasattr(faust_aiokafka, "aiokafka"):
        raise RuntimeError("faust's aiokafka driver changed; revisit kafka_tuning.py")
    if not isinstance(faust_aiokafka.aiokafka, _PatchedModule):
        faust_aiokafka.aiokafka = _PatchedModule()
