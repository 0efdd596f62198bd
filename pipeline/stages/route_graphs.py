"""The plan stage's route graphs: one ``RouteGraph`` per venue, kept current incrementally.

A step is executed by one venue, so routes are searched per venue and compared.  Each batch
hands over the pools as they are now (published on ``sep.market.pools``, or asked of the
venue); only pools whose state object changed are applied to the graph, and pools a venue
no longer reports are removed.  The market feed keeps an unchanged pool's ``PoolState``
object, so "changed" is an identity check: cheap with thousands of pools.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pipeline import ops
from pipeline.models.market import PoolState
from pipeline.ops.graph import apply_pool_state

log = logging.getLogger(__name__)


class VenueGraphs:
    def __init__(self) -> None:
        self._graphs: dict[str, ops.RouteGraph] = {}
        self._applied: dict[str, dict[str, PoolState]] = {}
        # The list each venue's graph was last synced to: most batches see the same list
        # with a few states replaced in place, found by identity without reading any field.
        self._last: dict[str, list[PoolState]] = {}
        # The sequence object each venue was last synced from: handed over again, it is
        # taken as unchanged without a look (the market feed's snapshots never change once
        # handed out; see pipeline.market.snapshots).
        self._given: dict[str, Sequence[PoolState]] = {}

    def sync(self, pools: Mapping[str, Sequence[PoolState]]) -> Mapping[str, ops.RouteGraph]:
        """Bring every venue's graph to ``pools``; return the graphs by venue.

        A venue's sequence handed over again (the very same object) is taken as unchanged:
        never modify a sequence after handing it over; pass a new one.
        """
        for venue, states in pools.items():
            if states is self._given.get(venue):
                continue
            applied = self._applied.setdefault(venue, {})
            graph = self._graphs.get(venue)
            if graph is None and states:
                graph = self._graphs[venue] = ops.RouteGraph(states[0].chain_id)
            if graph is None:
                continue
            last = self._last.get(venue)
            if last is None or len(last) != len(states) or not self._moved(
                    graph, applied, venue, last, states):
                self._full(graph, applied, venue, states)
            self._last[venue] = list(states)
            self._given[venue] = states
        return self._graphs

    def _moved(self, graph: ops.RouteGraph, applied: dict[str, PoolState], venue: str,
               last: list[PoolState], states: Sequence[PoolState]) -> bool:
        """The fast path: ``states`` is ``last`` with some states replaced by new states of
        the same pools, at the same places; applies those. False (nothing applied) if any
        place now holds another pool: the caller then syncs in full."""
        now = list(states)
        changed = [(last[i], now[i]) for i in _replaced(last, now)]
        if any(old.pool_id != new.pool_id for old, new in changed):
            return False
        for _, state in changed:
            self._apply(graph, applied, venue, state)
        return True

    def _full(self, graph: ops.RouteGraph, applied: dict[str, PoolState], venue: str,
              states: Sequence[PoolState]) -> None:
        seen: set[str] = set()
        for state in states:
            seen.add(state.pool_id)
            if applied.get(state.pool_id) is not state:
                self._apply(graph, applied, venue, state)
        for gone in set(applied) - seen:
            graph.remove_pool(gone)
            del applied[gone]

    @staticmethod
    def _apply(graph: ops.RouteGraph, applied: dict[str, PoolState], venue: str,
               state: PoolState) -> None:
        try:
            apply_pool_state(graph, state)
        except (ValueError, ops.RustOpsError) as exc:
            # One bad pool (reserves beyond 2**128, another chain's pool) must not stop
            # every plan: it is left out of the routing.
            log.warning("pool left out of routing", extra={
                "pool": state.pool_id, "venue": venue, "error": str(exc)})
            graph.remove_pool(state.pool_id)
        applied[state.pool_id] = state


def _replaced(last: list[PoolState], now: list[PoolState]) -> list[int]:
    """The places (ascending) where ``now`` holds another state than ``last`` (same length).

    Equal stretches are skipped by comparing lists, in C: identity first, so an unchanged pool
    is never compared field by field; only the stretches that differ are looked at one place
    at a time. At 10k pools a batch without a new state costs one pass (tens of microseconds,
    against ~0.5 ms for a Python loop). A new state equal to the one it replaces may count as
    unchanged (when nothing else in its stretch moved): the graph would hold the same.
    """
    if last == now:
        return []
    found: list[int] = []
    for lo in range(0, len(now), _STRETCH):
        hi = lo + _STRETCH
        if last[lo:hi] != now[lo:hi]:
            found += [i for i in range(lo, min(hi, len(now))) if last[i] is not now[i]]
    return found


# Places compared together by ``_replaced``.
_STRETCH = 256
