"""The pipeline declared as data (``topology.yaml``), validated."""

from pipeline.topology.loader import TopologyError, load_topology, parse_topology
from pipeline.topology.models import BatchSpec, StageSpec, TopicSpec, Topology

__all__ = [
    "BatchSpec",
    "StageSpec",
    "TopicSpec",
    "Topology",
    "TopologyError",
    "load_topology",
    "parse_topology",
]
