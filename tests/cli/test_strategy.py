"""``sep strategy``: --set values and the listing."""

from __future__ import annotations

import argparse

import pytest

from pipeline.cli.main import build_parser
from pipeline.cli.strategy import parse_setting, render_rows


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount=250", ("amount", "250")),
        ("max_slippage=0.005", ("max_slippage", "0.005")),  # exact: never a float
        ("allowed_venues=[sim, clob_a]", ("allowed_venues", ["sim", "clob_a"])),
        ("max_buys=null", ("max_buys", None)),
        (" asset = WBTC", ("asset", "WBTC")),
    ],
)
def test_settings_read_as_yaml_with_numbers_kept_as_written(
    text: str, expected: tuple[str, object]
) -> None:
    assert parse_setting(text) == expected


@pytest.mark.parametrize("text", ["amount", "=5", "x=[unclosed"])
def test_a_bad_setting_is_a_usage_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_setting(text)


def test_changes_need_a_reason() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["strategy", "disable", "dca"])
    args = build_parser().parse_args(
        ["strategy", "configure", "dca", "--set", "a=1", "--reason", "r"]
    )
    assert (args.action, args.strategy_id, args.set, args.reason) == (
        "configure",
        "dca",
        [("a", "1")],
        "r",
    )


def test_the_listing_says_who_changed_a_strategy() -> None:
    row = {
        "strategyId": "dca",
        "plugin": "dca",
        "enabled": False,
        "source": "control",
        "config": {"b": 1, "a": "2"},
        "changedBy": "ops@desk",
        "reason": "upgrade",
    }
    lines = render_rows([row]).splitlines()
    assert lines[1].split()[:4] == ["dca", "dca", "disabled", "control"]
    assert lines[1].endswith('{"a":"2","b":1}')
    assert lines[2].strip() == "changed by ops@desk: upgrade"
