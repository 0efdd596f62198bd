"""Wiring: the faust App, its agents built from the topology, topics, the worker process."""
