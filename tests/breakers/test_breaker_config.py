"""The ``breakers:`` section: defaults, per-venue overrides, which failures count, and
errors that name their YAML path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline.breakers.config import BreakersSpec, reason_code
from pipeline.topology.loader import DEFAULT_PATH, TopologyError, parse_topology


def test_a_venue_override_replaces_only_what_it_names() -> None:
    spec = BreakersSpec.model_validate(
        {"failures": 4, "cooldown_ms": 5000, "venues": {"sim": {"probes": 3}}}
    )
    sim, other = spec.policy("sim"), spec.policy("uniswap_v3")
    assert (sim.failures, sim.cooldown_ms, sim.probes) == (4, 5000, 3)
    assert (other.failures, other.cooldown_ms, other.probes) == (4, 5000, 1)


@pytest.mark.parametrize(
    ("reason", "counts"),
    [
        ("reverted: STF", True),
        ("unavailable: connection refused", True),
        ("receipt_timeout: 0xab not mined after 30s", True),
        ("slippage: would receive 1 base units", False),
        ("expired: the window closed at 5 before the step was sent", False),
        ("killed: kill switch global engaged", False),
    ],
)
def test_which_step_failures_count(reason: str, counts: bool) -> None:
    assert BreakersSpec().policy("sim").counts(reason) is counts


def test_reason_code_is_the_text_before_the_first_colon() -> None:
    assert reason_code("unavailable: a: b") == "unavailable"
    assert reason_code("reverted") == "reverted"


def _with(breakers: object) -> str:
    data = yaml.safe_load(Path(DEFAULT_PATH).read_text())
    data["breakers"] = breakers
    return yaml.safe_dump(data)


def test_the_repository_topology_declares_breakers() -> None:
    topology = parse_topology(Path(DEFAULT_PATH).read_text())
    assert topology.breakers.enabled
    assert topology.breakers.policy("uniswap_v3").failures >= 1
    assert set(topology.breakers.venues) <= set(topology.plugins.venues)


@pytest.mark.parametrize(
    ("breakers", "path", "words"),
    [
        ({"failures": 0}, "breakers.failures", "greater than or equal to 1"),
        ({"cooldown_ms": "soon"}, "breakers.cooldown_ms", "valid integer"),
        ({"venues": {"sim": {"probes": 0}}}, "breakers.venues.sim.probes", "greater than"),
        ({"venues": {"sim": {"typo": 1}}}, "breakers.venues.sim.typo", "Extra inputs"),
        ({"venues": {"simm": {"failures": 2}}}, "breakers.venues.simm", "did you mean 'sim'"),
    ],
)
def test_errors_name_the_yaml_path(breakers: object, path: str, words: str) -> None:
    with pytest.raises(TopologyError) as caught:
        parse_topology(_with(breakers))
    assert any(p == path and words in m for p, m in caught.value.problems), caught.value.problems
