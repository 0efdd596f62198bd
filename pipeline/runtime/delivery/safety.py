"""Processing a batch so that nothing is lost and one bad record cannot stall a stage."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from pipeline.stages.base import Emit, Record, StageProcessor
from pipeline.stages.rejections import dead_letter

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.1, 0.5, 2.0)
MAX_BACKOFF_S = 10.0


class FailureCounter:
    """How often each stage's batches failed (for health and metrics)."""

    def __init__(self) -> None:
        self.failures: dict[str, int] = {}
        self.dead_letters: dict[str, int] = {}
        self.failing_since: dict[str, float] = {}
        """stage -> when its current run of failures began (absent: last batch was fine)."""


async def process_safely(
    processor: StageProcessor,
    records: Sequence[Record],
    emit: Emit,
    counter: FailureCounter | None = None,
) -> None:
    """Process a batch; retry a failing one; then isolate and dead-letter what still fails.

    A failing batch is retried (outputs are idempotent, so re-emitting is harmless).  If it
    keeps failing, each record is processed alone and the ones that still fail go to the
    dead-letter topic with the error.  Processors whose failures are infrastructure (the
    project stage: PostgreSQL or Redis away) set ``retry_forever`` (a bool, or a function of
    the error) and are retried until the dependency is back, because dead-lettering would drop
    facts from the store; an error the data itself causes is not retried forever, or one
    poison record would stop the stage for good.  Cancellation (a stop that ran out of time)
    is not an error: it propagates, and the batch is not settled, so it is redelivered.
    """
    attempt = 0
    loop = asyncio.get_running_loop()
    name = processor.name
    while True:
        try:
            await processor.process(records, emit)
            if counter is not None:
                counter.failing_since.pop(name, None)
            return
        except Exception as exc:
            if counter is not None:
                counter.failures[name] = counter.failures.get(name, 0) + 1
                counter.failing_since.setdefault(name, loop.time())
            retry = getattr(processor, "retry_forever", False)
            forever = bool(retry(exc) if callable(retry) else retry)
            if not forever and attempt >= len(RETRY_DELAYS_S):
                break
            delay = min(
                MAX_BACKOFF_S,
                RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]
                * (2 ** max(0, attempt - len(RETRY_DELAYS_S) + 1)),
            )
            log.warning(
                "stage batch failed, retrying",
                exc_info=True,
                extra={
                    "stage": name,
                    "records": len(records),
                    "attempt": attempt + 1,
                    "retry_in_s": delay,
                    "error": repr(exc),
                },
            )
            attempt += 1
            await asyncio.sleep(delay)
    for record in records:
        try:
            await processor.process([record], emit)
        except Exception as exc:
            reason = f"{name} failed: {exc!r}"
            log.error(
                "record dead-lettered",
                extra={
                    "stage": name,
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "key": record.key,
                    "reason": reason,
                },
            )
            if counter is not None:
                counter.dead_letters[name] = counter.dead_letters.get(name, 0) + 1
            key = f"dl-{name}-{record.topic}-{record.partition}-{record.offset}"
            await emit(
                dead_letter(
                    key,
                    record.value,
                    reason=reason,
                    errors=(),
                    source=f"{record.topic}/{record.partition}/{record.offset}",
                    correlation_id="",
                )
            )
