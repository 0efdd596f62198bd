"""The read models in Redis, maintained from events alone.

Keys (under an optional prefix, so replays and tests can use their own namespace):
    intent:{id}             hash: state, stateSeq, lastSeq, eventCount, at:<event type>,
                            strategyId, pair, amounts, planId, orderRef, fill:<step>, reason…
    intent-seqs:{id}        bitmap of the seqs applied (what makes applying twice a no-op)
    intent-guards:{id}      hash: field -> seq of the event that wrote it (order-insensitivity)
    plan:{id}               hash: steps (JSON), status, step:<id>:status|orderRef|amountIn…
    plan-guards:{id}        as intent-guards, for the plan
    fills:{strategy}        hash: step id -> fill (JSON); positions are computed from it
    positions:{strategy}    hash: asset -> {quantity, costBasis, realisedPnl} (JSON)
    prices / prices-guards  hash: asset -> latest fill price in the quote asset
    intents                 sorted set of intent ids by creation time (from the id)
    intents:state:{state}   the same, per current state
    strategy-intents:{s}    the same, per strategy
    strategies              hash: strategy id -> intents seen
    stats:states            hash: intents per state
    stats:events            hash: events per event type
    stats:stages            hash: events per stage
    changes                 stream of applied changes (the UI tails it, resuming from an id)

Applying one intent's events is one Lua script, atomic in Redis: a seq already applied changes
nothing, and every field is guarded by the seq of the event that wrote it, so events of one
intent may arrive in any order (they do: project consumes several topics) and still land on
the same state.  *Which* fields an event writes is decided in Python (``projection.py``).
Keys are built inside the script from the prefix (single-node Redis; not cluster-safe).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Final

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, WatchError

from pipeline.models.events import Event
from pipeline.store.positions import holdings_from_fills
from pipeline.store.projection import (
    STAGE_OF,
    STATE_OF,
    TERMINAL_STATES,
    Projection,
    created_ms,
    project,
)

CHANGE_STREAM_MAXLEN: Final = 200_000

# ARGV = prefix, intent id, created ms, stream maxlen (0: no change stream), then one JSON
# object per event (``Projection.to_script_arg``).  Returns {events applied, strategy id whose
# fills changed or ''}.
_APPLY = """
local P, id, created, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local ikey, gkey, skey = P..'intent:'..id, P..'intent-guards:'..id, P..'intent-seqs:'..id
local applied, fills_changed = 0, false

local function guarded(key, guards, field, value, guard)
  local g = redis.call('HGET', guards, field)
  if (not g) or guard > g then
    redis.call('HSET', key, field, value)
    redis.call('HSET', guards, field, guard)
  end
end

for i = 5, #ARGV do
  local e = cjson.decode(ARGV[i])
  if redis.call('SETBIT', skey, e.seq, 1) == 0 then
    applied = applied + 1
    local guard = string.format('%010d', e.seq)
    for f, v in pairs(e.intent) do
      guarded(ikey, gkey, f, v, guard)
      if string.sub(f, 1, 5) == 'fill:' then fills_changed = true end
    end
    if e.plan then
      for f, v in pairs(e.planFields) do
        guarded(P..'plan:'..e.plan, P..'plan-guards:'..e.plan, f, v, guard)
      end
    end
    if e.prices then
      for asset, price in pairs(e.prices) do
        guarded(P..'prices', P..'prices-guards', asset, price, e.priceGuard)
      end
    end
    redis.call('HINCRBY', ikey, 'eventCount', 1)
    if e.seq > tonumber(redis.call('HGET', ikey, 'lastSeq') or '0') then
      redis.call('HSET', ikey, 'lastSeq', e.seq)
    end
    if e.state ~= '' then
      local state_seq = tonumber(redis.call('HGET', ikey, 'stateSeq') or '0')
      if e.seq > state_seq then
        local old = redis.call('HGET', ikey, 'state')
        redis.call('HSET', ikey, 'state', e.state, 'stateSeq', e.seq)
        if old then
          -- A count at zero is removed, so the same final states give the same hash
          -- whatever states the intents passed through on the way.
          if redis.call('HINCRBY', P..'stats:states', old, -1) == 0 then
            redis.call('HDEL', P..'stats:states', old)
          end
          redis.call('ZREM', P..'intents:state:'..old, id)
        end
        redis.call('HINCRBY', P..'stats:states', e.state, 1)
        redis.call('ZADD', P..'intents:state:'..e.state, created, id)
      end
    end
    redis.call('HINCRBY', P..'stats:events', e.topic, 1)
    redis.call('HINCRBY', P..'stats:stages', e.stage, 1)
    redis.call('ZADD', P..'intents', created, id)
    if maxlen > 0 then
      redis.call('XADD', P..'changes', 'MAXLEN', '~', maxlen, '*', 'intentId', id,
                 'seq', e.seq, 'topic', e.topic, 'state', redis.call('HGET', ikey, 'state') or '',
                 'eventId', e.eventId, 'ms', e.ms, 'data', e.data)
    end
  end
end

-- The strategy may become known after the fills (events of one intent arrive in any order):
-- whichever comes second copies the intent's fills into the strategy's.
local sid = redis.call('HGET', ikey, 'strategyId')
local touched = ''
if sid then
  if redis.call('ZADD', P..'strategy-intents:'..sid, created, id) == 1 then
    redis.call('HINCRBY', P..'strategies', sid, 1)
    fills_changed = true
  end
  if fills_changed then
    local all = redis.call('HGETALL', ikey)
    for j = 1, #all, 2 do
      if string.sub(all[j], 1, 5) == 'fill:' then
        local step = string.sub(all[j], 6)
        if redis.call('HGET', P..'fills:'..sid, step) ~= all[j + 1] then
          redis.call('HSET', P..'fills:'..sid, step, all[j + 1])
          touched = sid
        end
      end
    end
  end
end
return {applied, touched}
"""


POSITIONS_DIRTY = "positions:dirty"
"""Set of strategies whose ``positions:{s}`` is older than their fills (project stage)."""


class ReadModel:
    """Writes (``apply``) and the flat per-intent reads the tests use; ``views`` reads the rest."""

    def __init__(self, client: aioredis.Redis, prefix: str = "", *, quote_asset: str = "USDC",
                 reference_prices: dict[str, Decimal] | None = None,
                 change_stream: bool = True) -> None:
        self._redis = client
        self.prefix = prefix
        self._sha: str | None = None
        self.quote_asset = quote_asset
        self.reference_prices = reference_prices or {}
        self._maxlen = CHANGE_STREAM_MAXLEN if change_stream else 0
        self.touched: set[str] = set()
        """Strategies whose positions await ``refresh_positions`` (see ``apply``)."""

    @classmethod
    def connect(cls, url: str, prefix: str = "", **options: Any) -> ReadModel:
        return cls(aioredis.from_url(url, decode_responses=True), prefix, **options)

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def close(self) -> None:
        await self._redis.aclose()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    async def apply(self, events: Sequence[Event], *, positions: bool = True) -> int:
        """Apply events (idempotently, in any order); return how many were new.

        Positions of the strategies whose fills changed are recomputed before returning
        (``positions=False``: only remembered in ``touched``, for a replay to do once at the end).
        """
        if not events:
            return 0
        by_intent: dict[str, list[Projection]] = {}
        for event in sorted(events, key=lambda e: (e.correlation_id, e.seq)):
            by_intent.setdefault(event.correlation_id, []).append(
                project(event, self.quote_asset))
        try:
            results = await self._run(by_intent)
        except NoScriptError:  # Redis restarted and forgot the script: load it again
            self._sha = None
            results = await self._run(by_intent)
        touched = {str(r[1]) for r in results if r[1]}
        if positions:
            await self.refresh_positions(touched)
        else:
            self.touched |= touched
        return sum(int(r[0]) for r in results)

    async def _run(self, by_intent: dict[str, list[Projection]]) -> list[Any]:
        if self._sha is None:
            self._sha = str(await self._redis.script_load(_APPLY))
        pipe = self._redis.pipeline(transaction=False)
        for intent_id, projections in by_intent.items():
            pipe.evalsha(self._sha, 0, self.prefix, intent_id, created_ms(intent_id),
                         self._maxlen, *(p.to_script_arg() for p in projections))
        results: list[Any] = await pipe.execute()
        return results

    async def refresh_positions(self, strategies: Iterable[str]) -> None:
        """Recompute ``positions:{s}`` from ``fills:{s}``.

        Optimistic (WATCH): two project workers may add fills of one strategy at once; a
        position written from a stale read would stay wrong, so a changed read retries.
        """
        for strategy in sorted(strategies):
            fills_key, key = self.key(f"fills:{strategy}"), self.key(f"positions:{strategy}")
            for attempt in range(50):
                async with self._redis.pipeline(transaction=True) as pipe:
                    try:
                        await pipe.watch(fills_key)
                        raw = await pipe.hgetall(fills_key)
                        fills = [orjson.loads(v) for v in raw.values()]
                        holdings = holdings_from_fills(fills, self.quote_asset,
                                                       self.reference_prices)
                        pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
                        pipe.delete(key)
                        if holdings:
                            pipe.hset(key, mapping={
                                asset: orjson.dumps(h.to_wire(), option=orjson.OPT_SORT_KEYS)
                                for asset, h in holdings.items()})
                        await pipe.execute()
                        break
                    except WatchError:
                        await asyncio.sleep(0.001 * attempt)

    async def mark_dirty(self, strategies: Iterable[str]) -> None:
        """Remember (durably, in Redis) that these strategies' positions need recomputing."""
        names = sorted(strategies)
        if names:
            await self._redis.sadd(self.key(POSITIONS_DIRTY), *names)

    async def refresh_dirty(self, count: int = 64) -> int:
        """Recompute up to ``count`` strategies marked dirty; return how many.

        ``SPOP`` hands each strategy to one project worker; a fill that lands meanwhile marks
        it dirty again, so it is recomputed once more rather than left stale.
        """
        popped: Any = await self._redis.spop(self.key(POSITIONS_DIRTY), count)
        if not popped:
            return 0
        names = [str(n) for n in popped]
        try:
            await self.refresh_positions(names)
        except BaseException:
            await self._redis.sadd(self.key(POSITIONS_DIRTY), *names)
            raise
        return len(names)

    async def pending_positions(self) -> int:
        """How many strategies' positions are still to be recomputed."""
        return int(await self._redis.scard(self.key(POSITIONS_DIRTY)))

    async def intent(self, intent_id: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self.key(f"intent:{intent_id}"))
        return {str(k): str(v) for k, v in raw.items()}

    async def state_counts(self) -> dict[str, int]:
        raw = await self._redis.hgetall(self.key("stats:states"))
        return {str(state): int(n) for state, n in raw.items() if int(n)}

    async def intent_ids(self) -> list[str]:
        ids = await self._redis.zrange(self.key("intents"), 0, -1)
        return [str(i) for i in ids]


__all__ = ["CHANGE_STREAM_MAXLEN", "STAGE_OF", "STATE_OF", "TERMINAL_STATES", "ReadModel"]
