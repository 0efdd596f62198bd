"""PoolSnapshots: per-venue lists sorted by pool id, never modified once handed out."""

from __future__ import annotations

from pipeline.market.snapshots import PoolSnapshots
from pipeline.models.market import PoolState


def state(pool: str, reserve0: int = 10, venue: str = "sim") -> PoolState:
    return PoolState(
        pool_id=pool,
        venue=venue,
        chain_id=1,
        token0="WETH",
        token1="USDC",
        reserve0=reserve0,
        reserve1=reserve0 * 3000,
        fee=3000,
    )


def test_each_venue_holds_its_latest_states_sorted_by_pool_id() -> None:
    book = PoolSnapshots()
    for s in (state("c"), state("a"), state("b", venue="other"), state("a", 11)):
        book.put(s)
    assert book.pools() == {
        "sim": [state("a", 11), state("c")],
        "other": [state("b", venue="other")],
    }


def test_a_venue_with_nothing_new_hands_out_the_same_list_again() -> None:
    book = PoolSnapshots()
    book.put(state("a"))
    book.put(state("b", venue="other"))
    first = book.pools()
    book.put(state("b", 12, venue="other"))
    second = book.pools()
    assert second["sim"] is first["sim"]
    assert second["other"] is not first["other"]


def test_a_list_handed_out_never_changes_and_the_new_state_takes_its_pools_place() -> None:
    book = PoolSnapshots()
    for pool in "abc":
        book.put(state(pool))
    before = book.pools()["sim"]
    kept = list(before)
    book.put(state("b", 20))
    book.put(state("b", 21))  # a second change before the next read: still one new list
    after = book.pools()["sim"]
    assert before == kept
    assert after == [state("a"), state("b", 21), state("c")]
    book.put(state("c", 30))  # `after` has been handed out too: copied again, not modified
    assert after == [state("a"), state("b", 21), state("c")]
    assert book.pools()["sim"] == [state("a"), state("b", 21), state("c", 30)]


def test_a_new_pool_is_placed_in_order() -> None:
    book = PoolSnapshots()
    book.put(state("a"))
    book.put(state("c"))
    handed = book.pools()["sim"]
    book.put(state("b"))
    book.put(state("b", 15))  # known now, but its venue's list is still to be rebuilt
    assert book.pools()["sim"] == [state("a"), state("b", 15), state("c")]
    assert handed == [state("a"), state("c")]
