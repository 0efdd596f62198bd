"""``PoolState``s into a :class:`~pipeline.ops.RouteGraph`: build one, keep it up to date.

A ``constant_product`` state becomes a constant-product edge (its reserves and fee). A
``concentrated`` state with its exact V3 fields becomes a V3 edge with exact math
(:func:`pipeline.ops.v3.v3_pool`; without ``ticks`` it quotes only inside its current
tick-spacing interval, and larger amounts rule that path out). A ``concentrated`` state
without the V3 fields falls back to its virtual reserves as a constant-product edge.

The graph is per chain: a state of another chain is refused with ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from pipeline.models.market import PoolState
from pipeline.ops import RouteGraph
from pipeline.ops.v3 import v3_pool

__all__ = ["apply_pool_state", "graph_from_pool_states", "has_v3_state"]


class _Graph(Protocol):
    """``RouteGraph`` of either implementation (the compiled one or the twin's)."""

    @property
    def chain_id(self) -> int: ...
    def update_cp_pool(
        self,
        pool_id: str,
        venue: str,
        token0: str,
        token1: str,
        reserve0: int,
        reserve1: int,
        fee: int,
    ) -> None: ...
    def update_v3_pool(
        self, pool_id: str, venue: str, token0: str, token1: str, pool: Any
    ) -> None: ...


def has_v3_state(state: PoolState) -> bool:
    """Whether ``state`` carries the exact V3 fields (else it is priced as constant-product)."""
    return (
        state.kind == "concentrated"
        and state.sqrt_price_x96 is not None
        and state.liquidity is not None
        and state.tick is not None
        and state.tick_spacing is not None
    )


def apply_pool_state(graph: _Graph, state: PoolState, v3_factory: Any = None) -> None:
    """Adds ``state``'s pool to ``graph`` or replaces its previous state, in place.

    ``v3_factory`` builds the V3 pool (``pipeline.ops.twin.V3Pool`` for the twin's graph);
    the compiled ``V3Pool`` by default.

    Raises:
        ValueError: ``state`` is of another chain than ``graph``.
        InvalidPoolError, InvalidV3PoolError: the state cannot be a pool.
    """
    if state.chain_id != graph.chain_id:
        raise ValueError(
            f"pool {state.pool_id!r} is on chain {state.chain_id}, the graph on "
            f"chain {graph.chain_id}"
        )
    if has_v3_state(state):
        pool = v3_pool(state) if v3_factory is None else v3_pool(state, v3_factory)
        graph.update_v3_pool(state.pool_id, state.venue, state.token0, state.token1, pool)
    else:
        graph.update_cp_pool(
            state.pool_id,
            state.venue,
            state.token0,
            state.token1,
            state.reserve0,
            state.reserve1,
            state.fee,
        )


def graph_from_pool_states(states: Iterable[PoolState], chain_id: int | None = None) -> RouteGraph:
    """A graph of ``states`` (all of one chain: ``chain_id``, or the first state's; 0 if none).

    Raises:
        ValueError: states of more than one chain.
    """
    states = list(states)
    if chain_id is None:
        chain_id = states[0].chain_id if states else 0
    graph = RouteGraph(chain_id)
    for state in states:
        apply_pool_state(graph, state)
    return graph
