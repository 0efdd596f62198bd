"""The risk feed's fetch gathering: the default is what the feed always used, and a longer
wait gathers proportionally more bytes (fewer fetches at any rate)."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.risk.feed import GATHER_WAIT_MS, gathering
from pipeline.runtime.delivery.patches import Gathering


def test_the_default_gathering_is_64_kib_or_25_ms() -> None:
    assert gathering() == Gathering(min_bytes=64 * 1024, wait_ms=25)
    assert Settings().risk_feed_wait_ms == GATHER_WAIT_MS


def test_a_longer_wait_gathers_proportionally_more() -> None:
    assert gathering(50) == Gathering(min_bytes=128 * 1024, wait_ms=50)
    assert gathering(100).min_bytes == 4 * gathering().min_bytes
