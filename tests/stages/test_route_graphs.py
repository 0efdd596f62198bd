"""VenueGraphs: the plan stage's graphs follow the pools, in full or by the fast path."""

from __future__ import annotations

from pipeline.models.market import PoolState
from pipeline.stages.route_graphs import VenueGraphs, _replaced


def cp(pool_id: str, r0: int, t0: str = "A", t1: str = "B") -> PoolState:
    return PoolState(
        pool_id=pool_id,
        venue="v",
        chain_id=1,
        token0=t0,
        token1=t1,
        reserve0=r0,
        reserve1=10**6,
        fee=3000,
    )


def out(graphs: VenueGraphs, pools: dict[str, list[PoolState]]) -> int | None:
    route = graphs.sync(pools)["v"].best_route("A", "B", 1000, 3, 1)
    return None if route is None else route.amount_out


def test_fast_path_applies_replaced_states_and_full_path_removes_pools() -> None:
    graphs = VenueGraphs()
    states = [cp("p1", 10**6), cp("p2", 10**6)]
    first = out(graphs, {"v": list(states)})
    assert first is not None
    # Same list shape, states replaced by new states of the same pools (twice the A
    # reserves: A worth half as much B): applied, so less B comes out.
    states[0] = cp("p1", 2 * 10**6)
    states[1] = cp("p2", 2 * 10**6)
    moved = out(graphs, {"v": list(states)})
    assert moved is not None
    assert moved < first
    # Same length, another pool in a place: the full sync removes the one gone.
    states[0] = cp("p3", 10**6, "C", "D")
    graph = graphs.sync({"v": list(states)})["v"]
    assert len(graph) == 2
    assert "p1" not in graph
    assert "p3" in graph
    # Shorter list: p2 gone, only p3 left, and A -> B has no route any more.
    assert out(graphs, {"v": [states[0]]}) is None
    assert len(graphs.sync({"v": [states[0]]})["v"]) == 1


def test_replaced_places_across_stretches() -> None:
    last = [cp(f"p{i}", 10**6 + i) for i in range(600)]
    now = list(last)
    for i in (0, 255, 599):
        now[i] = cp(f"p{i}", 2 * 10**6 + i)
    # A new state equal to the old one, alone in its stretch, changes nothing: not reported.
    now[300] = cp("p300", 10**6 + 300)
    assert _replaced(last, now) == [0, 255, 599]
    now[256] = cp("p256", 3 * 10**6)
    # In a stretch that differs, places are told apart by identity.
    assert _replaced(last, now) == [0, 255, 256, 300, 599]
    assert _replaced(last, list(last)) == []


def test_the_same_sequence_handed_over_again_is_not_looked_at() -> None:
    graphs = VenueGraphs()
    states = [cp("p1", 10**6), cp("p2", 10**6)]
    first = out(graphs, {"v": states})
    # Modified in place and handed over again (what the contract forbids): taken as
    # unchanged, which is what makes a batch with nothing new cost nothing to sync.
    states[:] = [cp("p1", 2 * 10**6), cp("p2", 2 * 10**6)]
    assert out(graphs, {"v": states}) == first
    # A new sequence with the same contents is looked at, and the changes applied.
    moved = out(graphs, {"v": list(states)})
    assert first is not None
    assert moved is not None
    assert moved < first


def test_states_instead_of_the_pools_own_are_routed_on_until_left_out() -> None:
    """The planner's pending flow: adjusted states replace a pool's own for routing only."""
    graphs = VenueGraphs()

    def best(pools: list[PoolState], instead: dict[str, PoolState] | None = None) -> int:
        graph = graphs.sync({"v": pools}, {"v": instead} if instead else None)["v"]
        route = graph.best_route("A", "B", 1000, 3, 1)
        assert route is not None
        return route.amount_out

    own = [cp("p1", 10**6)]
    alone = best(own)
    deeper = cp("p1", 2 * 10**6)  # twice the A: less B for the same A
    assert best(own, {"p1": deeper}) == best([deeper]) < alone
    assert best(own, {"p1": deeper}) < alone  # the same list again: the adjusted state stays
    # The pool's own state moves while adjusted: the adjusted state still wins.
    moved = [cp("p1", 3 * 10**6 // 2)]
    assert best(moved, {"p1": deeper}) == best([deeper])
    # Left out again: back on the pool's own (latest) state.
    assert best(moved) == best([cp("p1", 3 * 10**6 // 2)])
    # An adjusted state of a pool the venue does not have is not routed on.
    assert "p9" not in graphs.sync({"v": moved}, {"v": {"p9": cp("p9", 5)}})["v"]


def test_put_instead_routes_as_sync_with_the_change_added() -> None:
    pools = {"v": [cp("p1", 10**6), cp("p2", 10**6)]}
    instead = {"v": {"p1": cp("p1", 2 * 10**6)}}
    synced, put = VenueGraphs(), VenueGraphs()
    synced.sync(pools, instead)
    put.sync(pools, instead)
    for changed in ({"p2": cp("p2", 3 * 10**6)}, {"p1": cp("p1", 4 * 10**6)}):
        instead = {"v": {**instead["v"], **changed}}
        synced.sync(pools, instead)
        put.put_instead({"v": changed})
        assert put._instead == synced._instead
        assert put._applied == synced._applied
        for amount in (10, 1000, 100_000):
            a = synced.sync(pools, instead)["v"].best_route("A", "B", amount, 3, 1)
            b = put._graphs["v"].best_route("A", "B", amount, 3, 1)
            assert a is not None
            assert b is not None
            assert (a.amount_out, a.paths[0].legs[0].pool_id) == (
                b.amount_out,
                b.paths[0].legs[0].pool_id,
            )
