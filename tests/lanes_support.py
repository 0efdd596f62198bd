"""topology.yaml with its priority lanes switched on: they are declared there but off by
default (``lanes.enabled: false``), and the lane tests exercise them as a user would."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.topology.loader import parse_topology
from pipeline.topology.models import Topology

REPO_TOPOLOGY = Path(__file__).resolve().parents[1] / "topology.yaml"


def lanes_on_yaml(path: Path = REPO_TOPOLOGY, dedicated: tuple[str, ...] = ()) -> str:
    """The topology file's text with its lanes enabled (for workers: ``SEP_TOPOLOGY``),
    ``dedicated`` lanes with workers of their own."""
    data = yaml.safe_load(path.read_text())
    data["lanes"]["enabled"] = True
    if dedicated:
        data["lanes"]["dedicated"] = list(dedicated)
    return yaml.safe_dump(data, sort_keys=False)


def lanes_on(path: Path = REPO_TOPOLOGY, dedicated: tuple[str, ...] = ()) -> Topology:
    return parse_topology(lanes_on_yaml(path, dedicated))
