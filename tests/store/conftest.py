from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pipeline.store.readmodel import ReadModel
from plugins.sim_venue import SimVenue
from tests.store.lifecycle import TOPOLOGY, sim_venue


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimVenue]:
    async with sim_venue(tmp_path) as venue:
        yield venue


def new_read_model(redis_url: str, prefix: str | None = None) -> ReadModel:
    return ReadModel.connect(
        redis_url,
        prefix or f"t-{uuid.uuid4().hex[:8]}:",
        quote_asset=TOPOLOGY.risk.quote_asset,
        reference_prices=dict(TOPOLOGY.risk.reference_prices),
    )


@pytest.fixture
async def read_model(redis_url: str) -> AsyncIterator[ReadModel]:
    model = new_read_model(redis_url)
    try:
        yield model
    finally:
        await model.close()
