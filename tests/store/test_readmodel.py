"""The read models on a real Redis: idempotent, order-insensitive, and what they say."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import orjson
import redis.asyncio as aioredis

from pipeline.models.events import Event
from pipeline.store import namespace
from pipeline.store.changes import ChangeStream, parse_id
from pipeline.store.positions import Ledger, ledger_from_fills
from pipeline.store.readmodel import _WRITE_POSITIONS, SCRIPT_EVENTS, ReadModel, _chunks
from pipeline.store.views import Views
from plugins.sim_venue import SimVenue
from tests.store.conftest import new_read_model
from tests.store.lifecycle import T0, TOPOLOGY, lifecycle, rejected


async def snapshot(redis_url: str, prefix: str) -> dict[str, object]:
    raw = aioredis.from_url(redis_url)
    try:
        return await namespace.dump(raw, prefix)
    finally:
        await raw.aclose()


def views(model: ReadModel) -> Views:
    return Views(
        model.redis,
        model.prefix,
        quote_asset="USDC",
        reference_prices=dict(TOPOLOGY.risk.reference_prices),
    )


async def test_a_completed_intent_is_projected(read_model: ReadModel, sim: SimVenue) -> None:
    events = await lifecycle(sim, 1)
    assert await read_model.apply(events) == 9
    intent_id = events[0].correlation_id
    doc = await views(read_model).intent(intent_id)
    assert doc is not None
    assert doc["state"] == "completed"
    assert (doc["eventCount"], doc["lastSeq"]) == (9, 9)
    assert (doc["type"], doc["asset"], doc["counterAsset"], doc["amount"]) == (
        "DISPOSE",
        "WETH",
        "USDC",
        "1",
    )
    filled = events[7].payload
    assert doc["orderRef"] == filled["orderRef"]
    assert Decimal(doc["amountIn"]) == 1
    assert doc["amountOut"] == events[8].payload["amountOut"]
    assert doc["realisedSlippage"] == events[8].payload["realisedSlippage"]
    assert set(doc["timestamps"]) == {e.topic for e in events}
    plan_id = events[4].payload["plan"]["id"]
    assert doc["planId"] == plan_id
    plan = await views(read_model).plan(plan_id)
    assert plan is not None
    assert (plan["status"], plan["stepCount"], plan["filledSteps"], plan["progress"]) == (
        "completed",
        1,
        1,
        "1.0000",
    )
    assert plan["steps"][0]["orderRef"] == filled["orderRef"]
    stats = await views(read_model).stats()
    assert (stats["intents"], stats["executed"], stats["active"]) == (1, 1, 0)
    assert stats["stages"] == {"ingest": 1, "validate": 2, "prioritise": 1, "plan": 1, "execute": 4}


async def test_applying_twice_or_an_older_event_late_changes_nothing(
    redis_url: str, read_model: ReadModel, sim: SimVenue
) -> None:
    events = await lifecycle(sim, 2)
    await read_model.apply(events)
    before = await snapshot(redis_url, read_model.prefix)
    assert await read_model.apply(events) == 0
    assert await read_model.apply([events[2]]) == 0
    assert await snapshot(redis_url, read_model.prefix) == before
    assert len(await ChangeStream(read_model.redis, read_model.prefix).after("0-0")) == 9


async def test_any_order_gives_the_same_models(redis_url: str, sim: SimVenue) -> None:
    events: list[Event] = []
    for i in range(4):
        events += await lifecycle(
            sim, 10 + i, strategy=f"s{i % 2}", kind=("DISPOSE", "ACQUIRE")[i % 2]
        )
    events += rejected(20)
    in_order = new_read_model(redis_url)
    shuffled = new_read_model(redis_url)
    doubled = new_read_model(redis_url)
    try:
        await in_order.apply(events)  # one batch: each intent's events merged in one pass
        rng = random.Random(5)
        mixed = events[:]
        rng.shuffle(mixed)
        for i in range(0, len(mixed), 3):  # small batches, newer events before older ones
            await shuffled.apply(mixed[i : i + 3])
        for event in reversed(events):  # newest first, each twice in its batch
            await doubled.apply([event, event])
        a = await snapshot(redis_url, in_order.prefix)
        b = await snapshot(redis_url, shuffled.prefix)
        c = await snapshot(redis_url, doubled.prefix)
        assert namespace.diff(a, b) == []
        assert namespace.diff(a, c) == []
        assert len(a) > 20
        counts = await views(in_order).stats()
        assert counts["states"] == {"completed": 4, "risk_rejected": 1}
    finally:
        await in_order.close()
        await shuffled.close()
        await doubled.close()


def test_a_batch_is_cut_into_calls_of_at_most_the_cap_never_inside_an_intent() -> None:
    by_intent = {f"i{n}": [object()] * size for n, size in enumerate([30, 30, 10, 70, 5, 64])}
    chunks = [[(i, len(p)) for i, p in chunk] for chunk in _chunks(by_intent, 64)]  # type: ignore[arg-type]
    assert chunks == [
        [("i0", 30), ("i1", 30)],
        [("i2", 10)],
        [("i3", 70)],  # more than the cap alone: a call of its own, whole
        [("i4", 5)],
        [("i5", 64)],
    ]


async def test_a_batch_of_many_calls_gives_the_models_of_one_intent_at_a_time(
    redis_url: str, sim: SimVenue
) -> None:
    events: list[Event] = []
    for i in range(16):
        events += await lifecycle(sim, 40 + i, strategy=f"s{i % 3}")
    assert len(events) > 2 * SCRIPT_EVENTS  # several script calls in one pipeline
    batched = new_read_model(redis_url)
    alone = new_read_model(redis_url)
    try:
        assert await batched.apply(events) == len(events)
        by_intent: dict[str, list[Event]] = {}
        for event in events:
            by_intent.setdefault(event.correlation_id, []).append(event)
        for one in by_intent.values():
            await alone.apply(one)
        a = await snapshot(redis_url, batched.prefix)
        b = await snapshot(redis_url, alone.prefix)
        assert namespace.diff(a, b) == []
        assert (await views(batched).stats())["states"] == {"completed": 16}
    finally:
        await batched.close()
        await alone.close()


async def test_an_older_state_never_overwrites_a_newer_one(
    read_model: ReadModel, sim: SimVenue
) -> None:
    events = await lifecycle(sim, 3)
    await read_model.apply(events[-1:])  # exec.completed first
    await read_model.apply(events[:-1])
    view = await read_model.intent(events[0].correlation_id)
    assert view["state"] == "completed"
    assert (await read_model.state_counts()) == {"completed": 1}


async def test_positions_from_fills(read_model: ReadModel, sim: SimVenue) -> None:
    sell = await lifecycle(sim, 30, kind="DISPOSE", amount="1", strategy="p")
    buy = await lifecycle(
        sim, 31, kind="ACQUIRE", amount="2", strategy="p", at_ms=1_700_000_060_000
    )
    await read_model.apply(sell + buy)
    got = await views(read_model).positions("p")
    assert len(got) == 1
    assets = {a["asset"]: a for a in got[0]["assets"]}
    sold_for = Decimal(sell[-1].payload["amountOut"])
    paid = Decimal(buy[-1].payload["amountIn"])
    assert Decimal(assets["WETH"]["quantity"]) == 1  # -1 then +2
    assert Decimal(assets["USDC"]["quantity"]) == sold_for - paid
    # Buying 2 closes the 1 short (realising the price move) and opens 1 long at the buy price.
    buy_price = paid / 2
    assert Decimal(assets["WETH"]["realisedPnl"]) == sold_for - buy_price
    assert Decimal(assets["WETH"]["costBasis"]) == buy_price
    # The latest price is the last fill's: the long is worth what it cost.
    assert Decimal(assets["WETH"]["lastPrice"]) == buy_price
    assert Decimal(assets["WETH"]["unrealisedPnl"]) == 0
    assert await views(read_model).strategies() == [{"strategyId": "p", "intents": 2}]


async def test_intents_filtered_and_paginated(read_model: ReadModel, sim: SimVenue) -> None:
    events: list[Event] = []
    for i in range(5):
        events += await lifecycle(
            sim, 40 + i, strategy="a" if i < 3 else "b", at_ms=1_700_000_000_000 + i * 1000
        )
    events += rejected(50, strategy="a")
    await read_model.apply(events)
    v = views(read_model)
    page = await v.intents(state=None, strategy=None, limit=4, offset=0)
    assert (page.total, len(page.items)) == (6, 4)
    created = [i["id"] for i in page.items]
    assert created == sorted(created, reverse=True)  # newest first: ULIDs sort by time
    assert (await v.intents(state="completed", strategy=None, limit=10, offset=0)).total == 5
    both = await v.intents(state="completed", strategy="a", limit=2, offset=2)
    assert (both.total, len(both.items)) == (3, 1)
    rejected_a = await v.intents(state="risk_rejected", strategy="a", limit=10, offset=0)
    assert [i["state"] for i in rejected_a.items] == ["risk_rejected"]
    assert "reason" in rejected_a.items[0]


async def test_dirty_positions_are_refreshed_to_what_an_immediate_refresh_gives(
    read_model: ReadModel, sim: SimVenue
) -> None:
    sell = await lifecycle(sim, 40, kind="DISPOSE", amount="1", strategy="d")
    buy = await lifecycle(
        sim, 41, kind="ACQUIRE", amount="2", strategy="d", at_ms=1_700_000_060_000
    )
    # The project stage's way: the apply script marks the strategy dirty; refresh later.
    await read_model.apply(sell + buy, positions="mark")
    assert await views(read_model).positions("d") == []  # not yet computed
    assert await read_model.pending_positions() == 1
    assert await read_model.refresh_dirty() == 1
    assert await read_model.pending_positions() == 0
    deferred = await views(read_model).positions("d")
    # ...equals what applying with an immediate refresh gives.
    await read_model.refresh_positions(["d"])
    assert deferred == await views(read_model).positions("d")
    assert deferred
    assert deferred[0]["assets"]
    assert await read_model.refresh_dirty() == 0  # nothing left to do


async def test_positions_computed_from_a_stale_read_are_not_written(
    read_model: ReadModel, sim: SimVenue
) -> None:
    sell = await lifecycle(sim, 42, kind="DISPOSE", amount="1", strategy="v")
    await read_model.apply(sell, positions="now")
    redis, key = read_model.redis, read_model.key
    version = await redis.hget(key("fills-version"), "v")
    assert version is not None
    assert int(version) >= 1
    before = await redis.hgetall(key("positions:v"))
    assert before
    # A writer that read version-1 lost a race: its positions are refused.
    ledger = Ledger().dumps()
    stale = await redis.eval(
        _WRITE_POSITIONS, 0, read_model.prefix, "v", str(int(version) - 1), ledger, "WETH", "{}"
    )
    assert stale == 0
    assert await redis.hgetall(key("positions:v")) == before
    fresh = await redis.eval(
        _WRITE_POSITIONS, 0, read_model.prefix, "v", version, ledger, "WETH", "{}"
    )
    assert fresh == 1
    assert await redis.hgetall(key("positions:v")) == {"WETH": "{}"}


async def from_all_fills(redis_url: str, model: ReadModel, strategy: str) -> dict[str, str]:
    """``strategy``'s positions computed from all its fills, in a namespace of their own."""
    fresh = new_read_model(redis_url)
    try:
        fills = await model.redis.hgetall(model.key(f"fills:{strategy}"))
        await fresh.redis.hset(fresh.key(f"fills:{strategy}"), mapping=fills)
        await fresh.refresh_positions([strategy])
        return await fresh.redis.hgetall(fresh.key(f"positions:{strategy}"))
    finally:
        await fresh.close()


async def garble(model: ReadModel, strategy: str, fills: dict[str, str]) -> None:
    """Overwrite ``fills`` with other amounts, as no writer would (not listed as new, no new
    version): a refresh that read them would compute other positions."""
    garbled = {step: orjson.loads(raw) | {"amountOut": "12345"} for step, raw in fills.items()}
    await model.redis.hset(
        model.key(f"fills:{strategy}"),
        mapping={step: orjson.dumps(f).decode() for step, f in garbled.items()},
    )


async def test_a_fill_written_without_being_listed_makes_a_refresh_read_all(
    redis_url: str, read_model: ReadModel, sim: SimVenue
) -> None:
    """A writer that adds a fill without listing it (an older version, mid-upgrade) leaves
    more fills than the ledger and its list account for: the refresh reads them all."""
    redis, key = read_model.redis, read_model.key
    await read_model.apply(await lifecycle(sim, 85, strategy="quiet"), positions="now")
    other = await lifecycle(sim, 86, kind="ACQUIRE", strategy="quiet", at_ms=T0 + 1000)
    step = next(str(e.payload["stepId"]) for e in other if e.topic == "exec.step_filled")
    await read_model.apply(other, positions="now")
    raw = await redis.hget(key("fills:quiet"), step)
    assert raw is not None
    # As an unlisting writer would leave it: the fill there, the ledger before it.
    await redis.hdel(key("fills:quiet"), step)
    await redis.delete(key("positions-state:quiet"))
    await read_model.refresh_positions(["quiet"])
    await redis.hset(key("fills:quiet"), step, raw)
    await redis.hincrby(key("fills-version"), "quiet", 1)
    await read_model.refresh_positions(["quiet"])
    assert await redis.hgetall(key("positions:quiet")) == await from_all_fills(
        redis_url, read_model, "quiet"
    )


async def test_a_refresh_folds_in_only_the_new_fills(
    redis_url: str, read_model: ReadModel, sim: SimVenue
) -> None:
    """After the first refresh, later ones read only the fills added since: fills garbled in
    ``fills:{s}`` behind the ledger's back change nothing, and the positions equal what all
    the fills give."""
    redis, key = read_model.redis, read_model.key
    older = []
    for i in range(3):
        older += await lifecycle(sim, 90 + i, strategy="inc", at_ms=T0 + i * 1000)
    await read_model.apply(older, positions="mark")
    assert await read_model.refresh_dirty() == 1
    assert await redis.llen(key("fills-new:inc")) == 0  # all in the ledger
    before = await redis.hgetall(key("fills:inc"))
    newer = []
    for i in range(3, 5):
        newer += await lifecycle(sim, 90 + i, strategy="inc", at_ms=T0 + i * 1000)
    await read_model.apply(newer, positions="mark")
    assert await redis.llen(key("fills-new:inc")) == 2
    all_fills = await redis.hgetall(key("fills:inc"))
    # What a refresh reading only the new fills sees the same whatever the old ones say.
    await garble(read_model, "inc", before)
    assert await read_model.refresh_dirty() == 1
    await redis.hset(key("fills:inc"), mapping=all_fills)
    assert await redis.hgetall(key("positions:inc")) == await from_all_fills(
        redis_url, read_model, "inc"
    )


async def test_late_fills_fold_in_while_recent_and_recompute_after(
    redis_url: str, read_model: ReadModel, sim: SimVenue
) -> None:
    redis, key = read_model.redis, read_model.key
    first = await lifecycle(sim, 95, strategy="late", at_ms=T0 + 60_000)
    first += await lifecycle(sim, 97, kind="ACQUIRE", strategy="late", at_ms=T0 + 70_000)
    await read_model.apply(first, positions="now")  # the first fill settled, the second recent
    settled = await redis.hgetall(key("fills:late"))
    # A fill between the two, 2 s before the newest: folded in without reading the others.
    between = await lifecycle(sim, 98, kind="ACQUIRE", strategy="late", at_ms=T0 + 68_000)
    await read_model.apply(between, positions="mark")
    everything = await redis.hgetall(key("fills:late"))
    await garble(read_model, "late", settled)
    assert await read_model.refresh_dirty() == 1
    await redis.hset(key("fills:late"), mapping=everything)
    assert await redis.hgetall(key("positions:late")) == await from_all_fills(
        redis_url, read_model, "late"
    )
    # A fill from before the settled one: only all the fills place it.
    late = await lifecycle(sim, 96, kind="ACQUIRE", amount="2", strategy="late", at_ms=T0)
    await read_model.apply(late, positions="now")
    assert await redis.llen(key("fills-new:late")) == 0
    positions = await redis.hgetall(key("positions:late"))
    assert positions == await from_all_fills(redis_url, read_model, "late")
    # (Traded in the order they arrived, the fills would give other positions.)
    fills = sorted(
        (orjson.loads(f) for f in (await redis.hgetall(key("fills:late"))).values()),
        key=lambda f: f["time"],
    )
    arrived = ledger_from_fills(fills[1:], "USDC", {})
    arrived.recent, arrived.watermark = [], None
    arrived.settled = arrived.current
    arrived.fold(fills[:1], "USDC", {})
    assert arrived.positions("USDC") != ledger_from_fills(fills, "USDC", {}).positions("USDC")
    # A fill already in the ledger changes: listed as '!', and recomputed from all fills.
    step, raw = next(iter((await redis.hgetall(key("fills:late"))).items()))
    changed = orjson.loads(raw) | {"amountOut": "7"}
    script = """redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('RPUSH', KEYS[2], '!')
return redis.call('HINCRBY', KEYS[3], ARGV[3], 1)"""
    await redis.eval(
        script,
        3,
        key("fills:late"),
        key("fills-new:late"),
        key("fills-version"),
        step,
        orjson.dumps(changed).decode(),
        "late",
    )
    await read_model.refresh_positions(["late"])
    assert await redis.hgetall(key("positions:late")) == await from_all_fills(
        redis_url, read_model, "late"
    )
    assert await redis.hgetall(key("positions:late")) != positions


STATE_ORDER = ["", "submitted", "accepted", "prioritised", "planned", "executing", "completed"]


async def test_duplicates_and_disorder_in_one_call_and_across_calls(
    redis_url: str, sim: SimVenue
) -> None:
    """Each intent's fields are merged in Python whatever was applied before: a call holding
    old and new events of an intent, out of order and twice, lands on the in-order models,
    counts each event once and streams each event once, its state never moving back."""
    events: list[Event] = []
    for i in range(3):
        events += await lifecycle(sim, 60 + i, strategy=f"m{i % 2}")
    in_order = new_read_model(redis_url)
    mixed = new_read_model(redis_url)
    try:
        assert await in_order.apply(events) == 27
        by_seq = {(e.correlation_id, e.seq): e for e in events}
        ids = sorted({e.correlation_id for e in events})

        def pick(*seqs: int) -> list[Event]:
            return [by_seq[(i, s)] for i in ids for s in seqs]

        applied = await mixed.apply(pick(7, 2, 7, 5))  # later seqs first, one twice
        applied += await mixed.apply(pick(5, 1, 9, 2, 9))  # old (5, 2) and new, repeated
        applied += await mixed.apply(pick(8, 3, 4, 6, 1, 7))
        assert applied == 27
        assert await mixed.apply(events + events[::-1]) == 0
        a = await snapshot(redis_url, in_order.prefix)
        b = await snapshot(redis_url, mixed.prefix)
        assert namespace.diff(a, b) == []
        changes = await ChangeStream(mixed.redis, mixed.prefix).after("0-0")
        assert sorted((c["intentId"], c["seq"]) for c in changes) == sorted(by_seq)
        for intent_id in ids:
            states = [c["state"] for c in changes if c["intentId"] == intent_id]
            ranks = [STATE_ORDER.index(s) for s in states]  # '': no state yet
            assert ranks == sorted(ranks), states
            assert states[-1] == "completed"
        sent = {(c["intentId"], c["seq"]): c for c in changes}
        for (intent_id, seq), event in by_seq.items():
            change = sent[(intent_id, seq)]
            assert (change["topic"], change["eventId"]) == (event.topic, event.event_id)
    finally:
        await in_order.close()
        await mixed.close()


async def test_fills_reach_a_strategy_learned_after_them(redis_url: str, sim: SimVenue) -> None:
    events = await lifecycle(sim, 70, strategy="late")
    assert "strategyId" not in events[-2].payload  # the fill does not say the strategy
    first = new_read_model(redis_url)
    later = new_read_model(redis_url)
    try:
        await first.apply(events, positions="mark")
        # The execution events first (no strategy known yet), the rest in a later call.
        await later.apply(events[5:], positions="mark")
        assert await later.redis.hgetall(later.key("fills:late")) == {}
        await later.apply(events[:5], positions="mark")
        fills = await later.redis.hgetall(later.key("fills:late"))
        assert fills == await first.redis.hgetall(first.key("fills:late"))
        assert len(fills) == 1
        assert await later.pending_positions() == 1
        a = await snapshot(redis_url, first.prefix)
        b = await snapshot(redis_url, later.prefix)
        assert namespace.diff(a, b) == []
    finally:
        await first.close()
        await later.close()


async def test_state_counts_moved_in_one_call_keep_no_zeros(
    read_model: ReadModel, sim: SimVenue
) -> None:
    """Counts are summed per call: intents leaving and entering the same states in one call
    leave exact counts, and a state nobody is in any more is no field at all."""
    a = await lifecycle(sim, 80)
    b = await lifecycle(sim, 81)
    await read_model.apply(a[:1] + b[:3])  # a submitted, b accepted
    raw = await read_model.redis.hgetall(read_model.key("stats:states"))
    assert raw == {"submitted": "1", "accepted": "1"}
    await read_model.apply(a[1:3] + b[3:5])  # a -> accepted, b -> planned: one call
    raw = await read_model.redis.hgetall(read_model.key("stats:states"))
    assert raw == {"accepted": "1", "planned": "1"}
    assert await read_model.redis.zrange(read_model.key("intents:state:accepted"), 0, -1) == [
        a[0].correlation_id
    ]
    assert await read_model.redis.zrange(read_model.key("intents:state:submitted"), 0, -1) == []
    await read_model.apply(a[3:] + b[5:])
    raw = await read_model.redis.hgetall(read_model.key("stats:states"))
    assert raw == {"completed": "2"}


async def test_random_orders_and_redeliveries_land_on_the_in_order_models(
    redis_url: str, sim: SimVenue
) -> None:
    """Guards and seq bitmaps exist only while an intent has a gap: gaps opening and closing
    again and again (random batches, events redelivered in later calls) still give the
    in-order models, each event counted and streamed once."""
    events: list[Event] = []
    for i in range(4):
        events += await lifecycle(sim, 90 + i, strategy=f"r{i % 2}")
    # Each event its own time: a field several events write (updatedAt) then tells which won.
    events = [
        e.model_copy(update={"timestamp": e.timestamp + timedelta(milliseconds=e.seq)})
        for e in events
    ]
    in_order = new_read_model(redis_url)
    try:
        await in_order.apply(events)
        a = await snapshot(redis_url, in_order.prefix)
        for seed in range(6):
            rng = random.Random(seed)
            mixed = new_read_model(redis_url)
            try:
                pending, seen, applied = events[:], [], 0
                rng.shuffle(pending)
                while pending:
                    batch = pending[: rng.randint(1, 6)]
                    del pending[: len(batch)]
                    again = rng.sample(seen, min(len(seen), rng.randint(0, 3)))
                    applied += await mixed.apply(batch + again)
                    seen += batch
                assert applied == len(events)
                assert namespace.diff(a, await snapshot(redis_url, mixed.prefix)) == [], seed
                changes = await ChangeStream(mixed.redis, mixed.prefix).after("0-0")
                assert sorted((c["intentId"], c["seq"]) for c in changes) == sorted(
                    (e.correlation_id, e.seq) for e in events
                )
            finally:
                await mixed.close()
    finally:
        await in_order.close()


async def test_a_reader_resumes_after_any_change_even_inside_an_entry(
    read_model: ReadModel, sim: SimVenue
) -> None:
    """An intent's changes of one call are one stream entry; each change still has its own
    id, and reading after any of them gives exactly the changes that follow."""
    await read_model.apply(await lifecycle(sim, 95))
    await read_model.apply(await lifecycle(sim, 96))
    stream = ChangeStream(read_model.redis, read_model.prefix)
    assert await read_model.redis.xlen(stream.key) == 2  # one entry per intent and call
    changes = await stream.after("0-0")
    ids = [c["id"] for c in changes]
    assert len(ids) == 18
    assert len(set(ids)) == 18
    assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)
    assert ids[-1] == await stream.head()
    assert await stream.first_id() == ids[0]
    for k, last_seen in enumerate(ids):
        assert await stream.after(last_seen) == changes[k + 1 :]
        assert await stream.tail(last_seen, 1) == changes[k + 1 :]
    assert [c["seq"] for c in changes] == list(range(1, 10)) * 2
    assert changes[0]["state"] == "submitted"
    assert changes[8]["state"] == "completed"


async def test_an_old_event_beside_a_new_one_leaves_the_newer_fields(
    redis_url: str, read_model: ReadModel, sim: SimVenue
) -> None:
    """Events applied in order leave no guards; an old event redelivered with a new one of
    the same intent must still not write over what a later event wrote (the step's status
    "filled", by seq 8, against "submitted", by seq 7)."""
    events = await lifecycle(sim, 97)
    await read_model.apply(events[:8])
    await read_model.apply([events[6], events[8]])  # seq 7 again, with seq 9
    alone = new_read_model(redis_url)
    try:
        await alone.apply(events)
        a = await snapshot(redis_url, alone.prefix)
        assert namespace.diff(a, await snapshot(redis_url, read_model.prefix)) == []
    finally:
        await alone.close()
