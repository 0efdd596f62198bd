"""Venue circuit breakers: a venue that keeps failing is routed around, then probed.

``machine`` is the state machine (pure), ``config`` the ``breakers:`` section of the
topology, ``book`` the states as a worker knows them from the control topic,
``execution`` execute's failure counting and ``planning`` the planner's admission of
intents and probes.  docs/kill_switch.md describes the whole (with the kill switch).
"""
