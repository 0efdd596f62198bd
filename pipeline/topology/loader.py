"""Load ``topology.yaml`` into ``Topology``; every error names its YAML path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipeline.config import Settings
from pipeline.topology.models import MODES, Topology, TopologyReferenceError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "topology.yaml"


class TopologyError(Exception):
    """``topology.yaml`` is unreadable or invalid. ``problems`` holds (yaml_path, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path or '<root>'}: {message}" for path, message in problems)
        super().__init__(f"{source} is invalid:\n{lines}")


def yaml_path(loc: tuple[int | str, ...], data: Any) -> str:
    """Turn a pydantic error location into a YAML path, naming list items by their ``name``.

    ``("stages", 2, "batch", "max")`` becomes ``stages[plan].batch.max`` when the third stage
    is called ``plan``: a person can find that in the file.
    """
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(item, int):
            named = None
            if isinstance(node, list) and 0 <= item < len(node):
                candidate = node[item]
                if isinstance(candidate, dict):
                    named = (
                        candidate.get("name")
                        or candidate.get("symbol")
                        or candidate.get("pool_id")
                        or candidate.get("id")
                    )
                node = candidate
            else:
                node = None
            parts.append(f"[{named}]" if named else f"[{item}]")
        else:
            node = node.get(item) if isinstance(node, dict) else None
            parts.append(f".{item}" if parts else str(item))
    return "".join(parts)


def parse_topology(text: str, source: str = "topology.yaml") -> Topology:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise TopologyError(source, [(where, f"not valid YAML: {exc}")]) from exc
    if not isinstance(data, dict):
        raise TopologyError(source, [("", "the top level must be a mapping")])
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        for error in exc.errors():
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, TopologyReferenceError):
                problems += cause.problems  # one root error that holds each reference's path
            else:
                problems.append((yaml_path(error["loc"], data), error["msg"]))
        raise TopologyError(source, problems) from exc


def load_topology(path: Path | str | None = None) -> Topology:
    """Load the topology from ``path``, ``$SEP_TOPOLOGY`` or the repository's ``topology.yaml``,
    in the mode ``$SEP_MODE`` names if set (``sep up --mode`` sets it for its whole stack, so
    the workers, the UI and ``sep status`` agree)."""
    settings = Settings()
    chosen = Path(path or settings.topology or DEFAULT_PATH)
    try:
        text = chosen.read_text()
    except OSError as exc:
        raise TopologyError(str(chosen), [("", f"cannot read: {exc.strerror}")]) from exc
    return in_mode(parse_topology(text, str(chosen)), settings.mode)


def in_mode(topology: Topology, mode: str) -> Topology:
    """``topology`` in ``mode`` ('' keeps its own); an unknown mode names ``SEP_MODE``."""
    if not mode:
        return topology
    for known in MODES:
        if mode == known:
            return topology.with_mode(known)
    raise TopologyError("SEP_MODE", [("", f"unknown mode {mode!r}; one of {', '.join(MODES)}")])
