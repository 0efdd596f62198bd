"""Pipeline metrics the project stage records in Redis, for ``GET /metrics``.

Not a read model: counters here depend on *when* events were applied, so a replay neither
writes nor compares them (``metrics:*`` is outside the replayed key families).

    metrics:lag:{stage}       hash: bucket upper bound (s) | "+Inf" | "sum" | "count"
        how long after an event was stamped by its stage it reached the read model
    metrics:duration:{state}  hash, same shape: intent created -> its terminal event
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any, Final

from pipeline.store.facts import EventFacts
from pipeline.store.projection import STAGE_OF, STATE_OF, TERMINAL_STATES, created_ms

LAG_LABELS: Final = tuple(sorted({*STAGE_OF.values(), "other"}))
"""Every stage a ``metrics:lag`` histogram can be kept for (``add_to``)."""
DURATION_LABELS: Final = tuple(sorted(TERMINAL_STATES))
"""Every terminal state a ``metrics:duration`` histogram can be kept for."""

BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


_LABELS: Final = (*(str(bound) for bound in BUCKETS), "+Inf")
"""The buckets' labels by position: ``_LABELS[bisect_left(BUCKETS, s)]`` is the label of the
first bound ``>= s`` (``+Inf`` past the last)."""


# ARGV: key, field, increment triples; "sum" fields are floats.  One command (and one reply to
# parse) for the whole batch instead of one per bucket.
_INCREMENT = """
for i = 1, #ARGV, 3 do
  if ARGV[i + 1] == 'sum' then
    redis.call('HINCRBYFLOAT', ARGV[i], 'sum', ARGV[i + 2])
  else
    redis.call('HINCRBY', ARGV[i], ARGV[i + 1], ARGV[i + 2])
  end
end
return #ARGV / 3
"""


def add_to(pipe: Any, prefix: str, events: Sequence[EventFacts], now_ms: int) -> None:
    """Queue the batch's histogram updates on a Redis pipeline (the caller executes it: the
    project stage sends them with the batch's read-model script, in one round trip)."""
    counts: dict[tuple[str, str], int] = {}
    sums: dict[str, float] = {}

    def observe(key: str, seconds: float) -> None:
        bucket, total = (key, _LABELS[bisect_left(BUCKETS, seconds)]), (key, "count")
        counts[bucket] = counts.get(bucket, 0) + 1
        counts[total] = counts.get(total, 0) + 1
        sums[key] = sums.get(key, 0.0) + seconds

    # One pass with the bucket found by bisection: this runs for every event project stores
    # (~2 us an event as it was, session 13).  Same counts, same sums in the same order.
    lag_keys: dict[str, str] = {}
    for event in events:
        topic = event.topic
        stamped = event.timestamp.timestamp() * 1000
        key = lag_keys.get(topic)
        if key is None:
            key = lag_keys[topic] = f"{prefix}metrics:lag:{STAGE_OF.get(topic, 'other')}"
        observe(key, max((now_ms - stamped) / 1000, 0.0))
        state = STATE_OF.get(topic)
        if state in TERMINAL_STATES and (created := created_ms(event.correlation_id)):
            observe(f"{prefix}metrics:duration:{state}", max((stamped - created) / 1000, 0.0))
    args: list[object] = []
    for (key, field_name), n in counts.items():
        args += [key, field_name, n]
    args += [part for key, total in sums.items() for part in (key, "sum", repr(total))]
    if args:
        pipe.eval(_INCREMENT, 0, *args)
