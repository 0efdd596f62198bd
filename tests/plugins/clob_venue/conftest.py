"""Fixtures for the clob venue tests (helpers in ``clob_support``).

(No ``__init__.py``: a ``tests/plugins`` package would shadow the real ``plugins`` package.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from clob_support import ASSETS, Clock, OpenVenue, clob_config

from pipeline.plugins.venue import VenueContext
from plugins.clob_venue import ClobVenue


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def context(tmp_path: Path) -> VenueContext:
    return VenueContext(data_dir=tmp_path / "venues" / "clob_a", assets=ASSETS)


@pytest.fixture
async def open_venue(context: VenueContext, clock: Clock) -> AsyncIterator[OpenVenue]:
    """``await open_venue(**config overrides)``: a started venue on the test clock, stopped at
    teardown.  Several calls are several processes (or restarts) on one ledger."""
    opened: list[ClobVenue] = []

    async def _open(**overrides: Any) -> ClobVenue:
        venue = ClobVenue("clob_a", clob_config(**overrides), context, clock_ms=clock)
        await venue.start()
        opened.append(venue)
        return venue

    yield _open
    for venue in opened:
        await venue.stop()
