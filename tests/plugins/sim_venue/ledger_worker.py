"""A worker process for the ledger concurrency test (run as a script, not collected).

    python ledger_worker.py DATA_DIR CONFIG_JSON ASSETS_JSON WORKER FILLS GO_FILE

Opens its own SimVenue on the shared data directory, signals readiness by creating
``ready-<WORKER>`` next to ``GO_FILE``, waits for ``GO_FILE`` so that all workers start
trading at once, then fills ``FILLS`` EXACT_IN swaps alternating direction on pool ``p``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from pipeline.models import Asset, ExecutionStep, RouteLeg, SwapMode
from pipeline.plugins.venue import VenueContext
from plugins.sim_venue import SimVenue, SimVenueConfig


def swap(worker: int, index: int) -> ExecutionStep:
    sell_weth = (worker + index) % 2 == 0
    token_in, token_out = ("WETH", "USDC") if sell_weth else ("USDC", "WETH")
    amount = Decimal("1.5") if sell_weth else Decimal("4000")
    leg = RouteLeg(
        pool_id="p", venue="sim", token_in=token_in, token_out=token_out, amount_in=0, amount_out=0
    )
    return ExecutionStep(
        step_id=f"w{worker}-{index}-{token_in}",
        venue="sim",
        mode=SwapMode.EXACT_IN,
        legs=(leg,),
        asset_in=token_in,
        asset_out=token_out,
        amount_in=amount,
        min_out=Decimal(0),
        amount_out=Decimal(0),
        max_in=amount,
    )


def barrier(go: Path, worker: int) -> None:
    (go.parent / f"ready-{worker}").touch()
    while not go.exists():
        time.sleep(0.001)


async def main(
    data_dir: str, config_json: str, assets_json: str, worker: int, fills: int, go_file: str
) -> None:
    assets = {a.symbol: a for a in (Asset.model_validate(x) for x in json.loads(assets_json))}
    venue = SimVenue(
        SimVenueConfig.model_validate_json(config_json),
        VenueContext(data_dir=Path(data_dir), assets=assets),
    )
    await venue.start()
    await asyncio.to_thread(barrier, Path(go_file), worker)
    for index in range(fills):
        submission = await venue.submit(swap(worker, index))
        await venue.wait_receipt(submission, timeout_s=60)
    await venue.stop()


if __name__ == "__main__":
    data_dir, config_json, assets_json, worker, fills, go_file = sys.argv[1:]
    asyncio.run(main(data_dir, config_json, assets_json, int(worker), int(fills), go_file))
