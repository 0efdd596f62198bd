"""Market data files: one market record per line, the same records the live topics carry.

The format (``.jsonl``, or ``.jsonl.gz`` compressed), version 1:

    line 1   {"format": "sep.market", "version": 1, "meta": {...}}
             meta is free-form: where the data came from (generator and seed, CSV file,
             recording), for the report; readers ignore what they do not know
    then     {"atMs": 1767225600000, "topic": "sep.market.pools", "key": "sim/sim-weth-usdc-5",
              "value": {<PoolState, camelCase, as on sep.market.pools>}}
             one per market record, in non-decreasing ``atMs`` (event time, ms since the
             epoch); ``topic`` is the live topic the record belongs to
             (``sep.market.pools``; ``sep.market.books`` with a BookSnapshot / BookDelta),
             ``key`` its Kafka key (``venue/pool_id``, ``venue/market_id``), ``value`` its JSON

Because a line holds exactly what the live topic holds, a recording (``sep record``) is a
data file as it stands, and a backtest feeds the values to the strategy runner as the records
it reads in live mode.  Writers emit keys in a fixed order and no insignificant whitespace,
so the same data is the same bytes.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

FORMAT = "sep.market"
VERSION = 1
POOLS_TOPIC = "sep.market.pools"
BOOKS_TOPIC = "sep.market.books"
TOPICS = frozenset({POOLS_TOPIC, BOOKS_TOPIC})


class MarketDataError(Exception):
    """A data file that cannot be read as this format; says the file and line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True, slots=True)
class MarketEvent:
    """One market record at its event time."""

    at_ms: int
    topic: str
    key: bytes
    value: bytes
    """The record's JSON, as the live topic would carry it."""


class _GzipFile(gzip.GzipFile):
    """A gzip stream that closes the file under it too (``GzipFile`` leaves a given one
    open), and names no file in its header: the same data compresses to the same bytes."""

    def __init__(self, path: Path, mode: str) -> None:
        self._raw = path.open(mode + "b")
        super().__init__(filename="", fileobj=self._raw, mode=mode + "b", mtime=0)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


def _open(path: Path, mode: str) -> IO[bytes]:
    if path.suffix == ".gz":
        return _GzipFile(path, mode)  # type: ignore[return-value]
    return path.open(mode + "b")


def event_line(event: MarketEvent) -> bytes:
    value = orjson.loads(event.value)
    return orjson.dumps(
        {"atMs": event.at_ms, "topic": event.topic, "key": event.key.decode(), "value": value}
    )


class MarketWriter:
    """Writes a data file: the header, then events in non-decreasing time (checked)."""

    def __init__(self, path: Path, meta: Mapping[str, Any]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = _open(path, "w")
        self._last = -(2**63)
        self.count = 0
        self._out.write(orjson.dumps({"format": FORMAT, "version": VERSION, "meta": meta}))
        self._out.write(b"\n")

    def write(self, event: MarketEvent) -> None:
        if event.at_ms < self._last:
            raise ValueError(f"event at {event.at_ms} after one at {self._last}: not in time order")
        self._last = event.at_ms
        self._out.write(event_line(event))
        self._out.write(b"\n")
        self.count += 1

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> MarketWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_market(path: Path, meta: Mapping[str, Any], events: Iterable[MarketEvent]) -> int:
    """Write a whole data file; how many events."""
    with MarketWriter(path, meta) as writer:
        for event in events:
            writer.write(event)
        return writer.count


def read_header(path: Path) -> dict[str, Any]:
    with _open(path, "r") as raw:
        first = raw.readline()
    return _header(path, first)


def _header(path: Path, line: bytes) -> dict[str, Any]:
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise MarketDataError(path, 1, f"not a sep.market header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise MarketDataError(path, 1, f'the first line must be {{"format": "{FORMAT}", ...}}')
    if header.get("version") != VERSION:
        raise MarketDataError(
            path, 1, f"format version {header.get('version')!r}; this reader reads {VERSION}"
        )
    meta = header.get("meta", {})
    return meta if isinstance(meta, dict) else {}


def read_market(path: Path) -> Iterator[MarketEvent]:
    """The file's events, in order; ``MarketDataError`` names the line of a bad one."""
    with _open(path, "r") as reader:
        _header(path, reader.readline())
        last = -(2**63)
        for number, line in enumerate(reader, start=2):
            if not line.strip():
                continue
            try:
                item = orjson.loads(line)
                at_ms, topic, key, value = item["atMs"], item["topic"], item["key"], item["value"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise MarketDataError(path, number, f"not a market event: {exc}") from exc
            if not isinstance(at_ms, int) or topic not in TOPICS or not isinstance(key, str):
                raise MarketDataError(
                    path, number, f"atMs must be an integer, topic one of {sorted(TOPICS)}"
                )
            if at_ms < last:
                raise MarketDataError(path, number, f"atMs {at_ms} is before {last}")
            last = at_ms
            yield MarketEvent(at_ms, topic, key.encode(), orjson.dumps(value))


def count_events(path: Path) -> int:
    """How many events the file holds (for a progress bar): its lines but the header."""
    lines = 0
    with _open(path, "r") as raw:
        while chunk := raw.read(1 << 20):
            lines += chunk.count(b"\n")
    return max(lines - 1, 0)


def data_span(path: Path) -> tuple[int, int] | None:
    """The first and last event times of the file (``None``: no event)."""
    first: int | None = None
    last = 0
    for event in read_market(path):
        first = event.at_ms if first is None else first
        last = event.at_ms
    return None if first is None else (first, last)
