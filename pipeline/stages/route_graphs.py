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

    def sync(self, pools: Mapping[str, Sequence[PoolState]]) -> Mapping[str, ops.RouteGraph]:
        """Bring every venue's graph to ``pools``; return the graphs by venue."""
        for venue, states in pools.items():
            applied = self._applied.setdefault(venue, {})
            graph = self._graphs.get(venue)
            if graph is None and states:
                graph = self._graphs[venue] = ops.RouteGraph(states[0].chain_id)
            if graph is None:
                continue
            seen: set[str] = set()
            for state in states:
                seen.add(state.pool_id)
                if applied.get(state.pool_id) is state:
                    continue
                try:
                    apply_pool_state(graph, state)
                except (ValueError, ops.RustOpsError) as exc:
                    # One bad pool (reserves beyond 2**128, another chain's pool) must not
                    # stop every plan: it is left out of the routing.
                    log.warning("pool left out of routing", extra={
                        "pool": state.pool_id, "venue": venue, "error": str(exc)})
                    graph.remove_pool(state.pool_id)
                applied[state.pool_id] = state
            for gone in set(applied) - seen:
                graph.remove_pool(gone)
                del applied[gone]
        return self._graphs
