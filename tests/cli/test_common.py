"""The helpers the subcommands share: durations, venue options, the topology's errors."""

from __future__ import annotations

import argparse

import pytest

from pipeline.cli.common import UserError, check_venues, parse_duration_ms, venue_names
from pipeline.topology import load_topology

TOPOLOGY = load_topology()


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("300000", 300_000),
        ("250ms", 250),
        ("90s", 90_000),
        ("5m", 300_000),
        (" 1h ", 3_600_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "5 m", "1.5s", "-3s", "5d"])
def test_a_bad_duration_says_what_would_do(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=r"try 30s, 5m, 1h"):
        parse_duration_ms(text)


def test_venue_names_repeated_or_comma_separated() -> None:
    assert venue_names(None) is None
    assert venue_names(["sim"]) == ["sim"]
    assert venue_names(["sim,uniswap_v3"]) == ["sim", "uniswap_v3"]
    assert venue_names(["uniswap_v3", " sim , uniswap_v3", "sim"]) == ["uniswap_v3", "sim"]


def test_an_empty_venue_option_is_an_error() -> None:
    with pytest.raises(UserError, match="without a venue name"):
        venue_names([" , "])


def test_known_venues_pass_unknown_ones_are_named_with_the_choices() -> None:
    assert check_venues(TOPOLOGY, None) is None
    assert check_venues(TOPOLOGY, ["sim", "uniswap_v3"]) == ["sim", "uniswap_v3"]
    with pytest.raises(
        UserError,
        match=r"unknown venue 'simm'; the topology's venues: "
        r"uniswap_v3, sim",
    ):
        check_venues(TOPOLOGY, ["sim", "simm"])


def test_a_disabled_venue_is_named_as_disabled() -> None:
    data = TOPOLOGY.model_dump(by_alias=True)
    data["plugins"]["venues"]["uniswap_v3"]["enabled"] = False
    topology = type(TOPOLOGY).model_validate(data)
    with pytest.raises(UserError, match=r"'uniswap_v3' is disabled.*enabled venues: sim$"):
        check_venues(topology, ["uniswap_v3"])
