"""The control plane: commands every worker obeys (kill switch, risk limits, strategies).

Carried on the compacted topic ``sep.control``: one record per change, keyed by what it
controls (``keys``), so a worker starting up reads the latest of each and is in force at
once.  ``state`` is the pure view, ``feed`` follows the topic, ``publish`` writes a change.
"""
