"""The market data format: written and read back, time order enforced, bad lines named."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.backtest.data import (
    POOLS_TOPIC,
    MarketDataError,
    MarketEvent,
    count_events,
    read_header,
    read_market,
    write_market,
)

EVENTS = [
    MarketEvent(1000, POOLS_TOPIC, b"sim/a", b'{"poolId":"a","reserve0":"5"}'),
    MarketEvent(1000, POOLS_TOPIC, b"sim/b", b'{"poolId":"b","reserve0":"6"}'),
    MarketEvent(2000, "sep.market.books", b"clob_a/WETH-USDC", b'{"kind":"snapshot"}'),
]


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_events_round_trip_and_the_same_data_is_the_same_bytes(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert write_market(path, {"source": "test"}, EVENTS) == 3
    assert list(read_market(path)) == EVENTS
    assert read_header(path) == {"source": "test"}
    assert count_events(path) == 3
    again = tmp_path / f"again-{name}"
    write_market(again, {"source": "test"}, EVENTS)
    assert path.read_bytes() == again.read_bytes()


def test_the_writer_refuses_events_out_of_time_order(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in time order"):
        write_market(tmp_path / "x.jsonl", {}, [EVENTS[2], EVENTS[0]])


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (['{"format": "other"}'], 1, "first line"),
        (['{"format": "sep.market", "version": 9}'], 1, "version 9"),
        (['{"format": "sep.market", "version": 1}', "not json"], 2, "not a market event"),
        (
            [
                '{"format": "sep.market", "version": 1}',
                '{"atMs": 5, "topic": "sep.market.pools", "key": "k", "value": {}}',
                '{"atMs": 4, "topic": "sep.market.pools", "key": "k", "value": {}}',
            ],
            3,
            "before 5",
        ),
        (
            [
                '{"format": "sep.market", "version": 1}',
                '{"atMs": 5, "topic": "sep.intents", "key": "k", "value": {}}',
            ],
            2,
            "topic one of",
        ),
    ],
)
def test_a_bad_file_names_its_line(
    tmp_path: Path, lines: list[str], line: int, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MarketDataError, match=message) as caught:
        list(read_market(path))
    assert caught.value.line == line
