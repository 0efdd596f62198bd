"""The latest state of every pool, handed out per venue as lists that never change afterwards.

A planner takes a snapshot per batch (hundreds of batches a second, thousands of pools) while
states arrive a few at a time.  Building every venue's list afresh (sorting by pool id) per
batch cost milliseconds at 10,000 pools.  Here a snapshot with nothing new costs a dict copy;
a new state of a known pool is written in place into its venue's list, which is first copied
if it was handed out since it last changed (copy on write).  So a list once handed out never
changes, and a reader can tell an unchanged venue by identity alone
(``pipeline.stages.route_graphs.VenueGraphs.sync`` does).
"""

from __future__ import annotations

from pipeline.models.market import PoolState


class PoolSnapshots:
    """``put`` the states as they arrive; ``pools()`` the latest per venue, sorted by pool id."""

    def __init__(self) -> None:
        self._latest: dict[str, dict[str, PoolState]] = {}
        """venue -> pool id -> its latest state."""
        self._lists: dict[str, list[PoolState]] = {}
        """venue -> its states sorted by pool id: the list ``pools()`` hands out."""
        self._where: dict[str, dict[str, int]] = {}
        """venue -> pool id -> its place in the venue's list."""
        self._shared: set[str] = set()
        """Venues whose current list has been handed out: copied before the next change."""
        self._stale: set[str] = set()
        """Venues with a pool their list does not have yet: rebuilt at the next read."""

    def put(self, state: PoolState) -> None:
        venue, pool = state.venue, state.pool_id
        by_pool = self._latest.setdefault(venue, {})
        known = pool in by_pool
        by_pool[pool] = state
        if not known or venue in self._stale:
            self._stale.add(venue)  # a new pool moves the others' places: rebuild on read
            return
        states = self._lists[venue]
        if venue in self._shared:
            states = self._lists[venue] = list(states)
            self._shared.discard(venue)
        states[self._where[venue][pool]] = state

    def pools(self) -> dict[str, list[PoolState]]:
        """Each venue's latest states, sorted by pool id.  Never modify the lists: the same
        list is handed out again for as long as its venue has nothing new."""
        for venue in self._stale:
            by_pool = self._latest[venue]
            ids = sorted(by_pool)
            self._lists[venue] = [by_pool[p] for p in ids]
            self._where[venue] = {p: i for i, p in enumerate(ids)}
            self._shared.discard(venue)
        self._stale.clear()
        self._shared.update(self._lists)
        return dict(self._lists)
