"""The charts' history endpoints over real PostgreSQL and Redis: prices with fills, P&L and
equity per strategy, intents per state; they agree with /positions and /stats, follow
``since``, and a replay (``sep replay``) leaves every point where it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.cli.replay import run as replay_cli
from pipeline.config import Settings
from pipeline.models.events import Event
from tests.store.lifecycle import TOPOLOGY, lifecycle, rejected, sim_venue
from tests.ui.seed import store_and_project
from tests.ui.server import ServerThread

T0 = 1_700_000_000_000
# (kind, subject, counter, amount, strategy): buys and sells of WETH, one WBTC trade
TRADES = [
    ("ACQUIRE", "WETH", "USDC", "1", "alpha"),
    ("DISPOSE", "WETH", "USDC", "0.5", "beta"),
    ("DISPOSE", "WETH", "USDC", "0.4", "alpha"),
    ("ACQUIRE", "WBTC", "USDC", "0.01", "beta"),
    ("ACQUIRE", "WETH", "USDC", "0.2", "beta"),
]


@pytest.fixture(scope="module")
async def seeded(
    ui_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> list[list[Event]]:
    intents: list[list[Event]] = []
    async with sim_venue(Path(tmp_path_factory.mktemp("sim"))) as sim:
        for i, (kind, subject, counter, amount, strategy) in enumerate(TRADES):
            intents.append(
                await lifecycle(
                    sim,
                    300 + i,
                    kind=kind,
                    subject=subject,
                    counter=counter,
                    amount=amount,
                    strategy=strategy,
                    at_ms=T0 + i * 7_000,
                )
            )
        # One that stops at plan.created: a state other than completed and rejected.
        planned = await lifecycle(sim, 399, strategy="gamma", at_ms=T0 + 60_000)
        intents.append([e for e in planned if e.seq <= 5])
    intents.append(rejected(400, strategy="alpha"))
    await store_and_project(ui_settings, [e for events in intents for e in events])
    return intents


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as c:
        yield c


def fills_of(intents: list[list[Event]]) -> list[Event]:
    return [e for events in intents for e in events if e.topic == "exec.step_filled"]


async def test_prices_mark_every_fill_at_its_price(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    body = (await client.get("/charts/prices")).json()
    weth = [f for f in fills_of(seeded) if "WETH" in (f.payload["assetIn"], f.payload["assetOut"])]
    assert body["market"] == "WETH/USDC"  # the market with the most fills
    assert {m["market"] for m in body["markets"]} == {"WETH/USDC", "WBTC/USDC"}
    assert [f["eventId"] for f in body["fills"]] == [f.event_id for f in weth]
    for shown, fill in zip(body["fills"], weth, strict=True):
        p = fill.payload
        bought = p["assetOut"] == "WETH"
        base, quote = (p["amountOut"], p["amountIn"]) if bought else (p["amountIn"], p["amountOut"])
        assert shown["side"] == ("buy" if bought else "sell")
        assert Decimal(shown["price"]) == pytest.approx(Decimal(quote) / Decimal(base))
        assert shown["amount"] == base
    times = [p["time"] for p in body["points"]]
    assert times == sorted(set(times))  # one point a second, ascending: what the chart takes
    assert {f["time"] for f in body["fills"]} <= set(times)  # every fill sits on the line
    assert all(Decimal(p["value"]) > 1000 for p in body["points"])  # WETH in USDC, not inverted

    wbtc = (await client.get("/charts/prices", params={"market": "WBTC/USDC"})).json()
    assert [f["side"] for f in wbtc["fills"]] == ["buy"]
    none = (
        await client.get("/charts/prices", params={"market": "WETH/USDC", "venue": "nowhere"})
    ).json()
    assert none["points"] == []
    assert none["fills"] == []
    later = (await client.get("/charts/prices", params={"since": body["fills"][-1]["time"]})).json()
    assert [f["eventId"] for f in later["fills"]] == [body["fills"][-1]["eventId"]]


async def test_pnl_ends_where_positions_are(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    body = (await client.get("/charts/pnl")).json()
    assert body["strategies"] == ["alpha", "beta"]  # those with fills
    assert body["strategy"] == "alpha"
    for strategy in ("alpha", "beta"):
        series = (await client.get("/charts/pnl", params={"strategy": strategy})).json()
        [position] = (await client.get("/positions", params={"strategy": strategy})).json()[
            "positions"
        ]
        last = series["points"][-1]
        assert (last["realisedPnl"], last["unrealisedPnl"]) == (
            position["realisedPnl"],
            position["unrealisedPnl"],
        )
        assert Decimal(last["pnl"]) == (
            Decimal(position["realisedPnl"]) + Decimal(position["unrealisedPnl"])
        )
        assert Decimal(last["equity"]) == sum(Decimal(a["marketValue"]) for a in position["assets"])
        times = [p["time"] for p in series["points"]]
        assert times == sorted(set(times))
    # alpha bought 1 WETH then sold 0.4: P&L realised on the sale, none before it.
    alpha = (await client.get("/charts/pnl", params={"strategy": "alpha"})).json()["points"]
    assert alpha[0]["realisedPnl"] == "0"
    assert alpha[-1]["realisedPnl"] != "0"


async def test_states_over_time_end_at_the_dashboard_counts(
    client: httpx.AsyncClient, seeded: list[list[Event]]
) -> None:
    body = (await client.get("/charts/states")).json()
    stats = (await client.get("/stats")).json()
    assert (
        body["points"][-1]["counts"]
        == stats["states"]
        == {"completed": 5, "planned": 1, "risk_rejected": 1}
    )
    assert set(body["states"]) >= {"completed", "planned", "risk_rejected"}
    fine = (await client.get("/charts/states", params={"bucket": 1})).json()
    assert fine["bucketS"] == 1
    assert len(fine["points"]) >= len(TRADES)
    assert all(p["time"] % 1 == 0 for p in fine["points"])
    coarse = (await client.get("/charts/states", params={"bucket": 3600})).json()
    assert all(p["time"] % 3600 == 0 for p in coarse["points"])
    cut = fine["points"][2]["time"]
    assert (await client.get("/charts/states", params={"bucket": 1, "since": cut})).json()[
        "points"
    ] == [p for p in fine["points"] if p["time"] >= cut]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/charts/prices", {"market": "WETH"}),
        ("/charts/prices", {"since": "-1"}),
        ("/charts/pnl", {"strategy": ""}),
        ("/charts/states", {"bucket": "0"}),
        ("/charts/states", {"bucket": "x"}),
    ],
)
async def test_bad_queries_are_named(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"].startswith("query.")


async def snapshot(client: httpx.AsyncClient) -> dict[str, Any]:
    out: dict[str, Any] = {"states": (await client.get("/charts/states")).json()}
    for market in ("WETH/USDC", "WBTC/USDC"):
        out[market] = (await client.get("/charts/prices", params={"market": market})).json()
    for strategy in ("alpha", "beta", "gamma"):
        out[strategy] = (await client.get("/charts/pnl", params={"strategy": strategy})).json()
    return out


async def test_a_replay_moves_no_point(
    client: httpx.AsyncClient, seeded: list[list[Event]], ui_settings: Settings
) -> None:
    before = await snapshot(client)
    assert before["alpha"]["points"]
    assert before["WETH/USDC"]["fills"]
    assert await replay_cli(ui_settings, TOPOLOGY, verify=False, quiet=True) == 0
    assert await snapshot(client) == before
