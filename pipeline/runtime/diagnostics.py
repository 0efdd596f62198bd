"""What a worker is doing, for when intents stop moving (``kill -USR1 <pid>``).

The dump answers the questions a stall raises: which partitions this worker owns, what the
ledger would commit, how many fetch batches are in flight, how many records wait for each
stage group, and how long since each group last finished a batch.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pipeline.runtime import gc_tuning

log = logging.getLogger(__name__)


def log_state(runtime: Any) -> None:
    """Log the runtime's snapshot as one JSON line (never raises: diagnostics only)."""
    try:
        state = runtime.snapshot()
        state["gc"] = dict(gc_tuning.STATS)
        log.warning("worker state %s", json.dumps(state, default=str))
    except Exception:  # pragma: no cover - a diagnostic must never take the worker down
        log.exception("could not dump the worker state")
