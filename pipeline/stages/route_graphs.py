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
        # The pools routed on another state than their own (``sync``'s ``instead``), and
        # where each pool is in its venue's last list (to go back to its own state).
        self._instead: dict[str, set[str]] = {}
        self._where: dict[str, dict[str, int]] = {}

    def sync(
        self,
        pools: Mapping[str, Sequence[PoolState]],
        instead: Mapping[str, Mapping[str, PoolState]] | None = None,
    ) -> Mapping[str, ops.RouteGraph]:
        """Bring every venue's graph to ``pools``; return the graphs by venue.

        A venue's sequence handed over again (the very same object) is taken as unchanged:
        never modify a sequence after handing it over; pass a new one.

        ``instead``: by venue and pool id, states to route on in place of the pools' own (the
        planner's pending flow applied to them: ``pending_flow.py``), compared by identity; a
        pool left out again is routed on its own state again.  Kept apart from ``pools`` so
        that a few adjusted pools cost a few applications, not a pass over every pool.
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
            if (
                last is None
                or len(last) != len(states)
                or not self._moved(graph, applied, venue, last, states)
            ):
                self._full(graph, applied, venue, states)
            self._last[venue] = list(states)
            self._given[venue] = states
        self._put_instead(instead or {})
        return self._graphs

    def put_instead(self, changed: Mapping[str, Mapping[str, PoolState]]) -> None:
        """Route ``changed`` pools on the given states instead of their own, the others as
        they are: what ``sync(pools, instead)`` does when ``pools`` is the last one given and
        ``instead`` the last one with ``changed`` in it (``PendingFlow.adjusted_touched``)."""
        for venue, wanted in changed.items():
            graph, applied = self._graphs.get(venue), self._applied.get(venue)
            if graph is None or applied is None:
                continue
            kept = self._instead.setdefault(venue, set())
            for pool_id, state in wanted.items():
                if pool_id in applied:
                    if applied[pool_id] is not state:
                        self._apply(graph, applied, venue, state)
                    kept.add(pool_id)

    def _put_instead(self, instead: Mapping[str, Mapping[str, PoolState]]) -> None:
        for venue in set(self._instead) | set(instead):
            graph, applied = self._graphs.get(venue), self._applied.get(venue)
            if graph is None or applied is None:
                continue
            wanted = instead.get(venue, {})
            for pool_id in self._instead.get(venue, set()) - wanted.keys():
                own = self._own_state(venue, pool_id)
                if own is not None and applied.get(pool_id) is not own:
                    self._apply(graph, applied, venue, own)
            for pool_id, state in wanted.items():
                if pool_id in applied and applied[pool_id] is not state:
                    self._apply(graph, applied, venue, state)
            self._instead[venue] = {pool_id for pool_id in wanted if pool_id in applied}

    def _own_state(self, venue: str, pool_id: str) -> PoolState | None:
        """The state ``pool_id`` has in the venue's list as last synced."""
        last = self._last.get(venue, [])
        where = self._where.get(venue, {})
        place = where.get(pool_id)
        if place is None or place >= len(last) or last[place].pool_id != pool_id:
            where = self._where[venue] = {state.pool_id: i for i, state in enumerate(last)}
            place = where.get(pool_id)
        return None if place is None else last[place]

    def _moved(
        self,
        graph: ops.RouteGraph,
        applied: dict[str, PoolState],
        venue: str,
        last: list[PoolState],
        states: Sequence[PoolState],
    ) -> bool:
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

    def _full(
        self,
        graph: ops.RouteGraph,
        applied: dict[str, PoolState],
        venue: str,
        states: Sequence[PoolState],
    ) -> None:
        seen: set[str] = set()
        for state in states:
            seen.add(state.pool_id)
            if applied.get(state.pool_id) is not state:
                self._apply(graph, applied, venue, state)
        for gone in set(applied) - seen:
            graph.remove_pool(gone)
            del applied[gone]

    @staticmethod
    def _apply(
        graph: ops.RouteGraph, applied: dict[str, PoolState], venue: str, state: PoolState
    ) -> None:
        try:
            apply_pool_state(graph, state)
        except (ValueError, ops.RustOpsError) as exc:
            # One bad pool (reserves beyond 2**128, another chain's pool) must not stop
            # every plan: it is left out of the routing.
            log.warning(
                "pool left out of routing",
                extra={"pool": state.pool_id, "venue": venue, "error": str(exc)},
            )
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
