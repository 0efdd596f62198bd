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
import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Final, Literal

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

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

log = logging.getLogger(__name__)

CHANGE_STREAM_MAXLEN: Final = 200_000

# One call applies a whole batch, intent by intent.  ARGV = prefix, stream maxlen (0: no
# change stream), '1' to add a strategy whose fills changed to ``positions:dirty``, then per
# intent: its id, created ms, how many events, and one JSON object per event
# (``Projection.to_script_arg``).  Returns, per intent in order, events applied and the
# strategy id whose fills changed or ''.  Every change to ``fills:{s}`` bumps
# ``fills-version[s]``, which ``refresh_positions`` checks before writing positions computed
# from what it read.  (One call per batch rather than per intent: each call is a command to
# send and a reply to parse in redis-py, which cost more than the script's work.)
_APPLY = """
local P, maxlen = ARGV[1], tonumber(ARGV[2])
local mark_dirty = ARGV[3] == '1'

local function guarded(key, guards, field, value, guard)
  local g = redis.call('HGET', guards, field)
  if (not g) or guard > g then
    redis.call('HSET', key, field, value)
    redis.call('HSET', guards, field, guard)
  end
end

local function apply_intent(id, created, first, last)
local ikey, gkey, skey = P..'intent:'..id, P..'intent-guards:'..id, P..'intent-seqs:'..id
local applied, fills_changed = 0, false
for i = first, last do
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
    if touched ~= '' then
      redis.call('HINCRBY', P..'fills-version', sid, 1)
      if mark_dirty then redis.call('SADD', P..'positions:dirty', sid) end
    end
  end
end
return applied, touched
end

local out, i = {}, 4
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  local applied, touched = apply_intent(ARGV[i], tonumber(ARGV[i + 1]), i + 3, i + 2 + n)
  out[#out + 1] = applied
  out[#out + 1] = touched
  i = i + 3 + n
end
return out
"""


# ARGV = prefix, strategy, the fills version the positions were computed from, then asset,
# position JSON pairs.  Writes (replacing the hash) only if the version is unchanged.
_WRITE_POSITIONS = """
local P, sid = ARGV[1], ARGV[2]
if (redis.call('HGET', P..'fills-version', sid) or '0') ~= ARGV[3] then return 0 end
redis.call('DEL', P..'positions:'..sid)
if #ARGV > 3 then redis.call('HSET', P..'positions:'..sid, unpack(ARGV, 4)) end
return 1
"""

PositionsMode = Literal["now", "later", "mark"]

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

    async def apply(self, events: Sequence[Event], *, positions: PositionsMode = "now",
                    also: Callable[[Any], None] | None = None) -> int:
        """Apply events (idempotently, in any order); return how many were new.

        ``positions`` says what happens to the positions of strategies whose fills changed:
        ``"now"`` recomputes them before returning; ``"later"`` only remembers them in
        ``touched`` (a replay recomputes once at the end); ``"mark"`` adds them to the durable
        ``positions:dirty`` set inside the same script, for ``refresh_dirty`` (the project
        stage).  ``also`` may queue more commands on the same pipeline (the project stage's
        metrics): one round trip per batch, which is most of what a small batch costs.
        """
        if not events:
            return 0
        by_intent: dict[str, list[Projection]] = {}
        for event in sorted(events, key=lambda e: (e.correlation_id, e.seq)):
            by_intent.setdefault(event.correlation_id, []).append(
                project(event, self.quote_asset))
        mark = positions == "mark"
        try:
            results = await self._run(by_intent, mark, also)
        except NoScriptError:  # Redis restarted and forgot the script: load it again
            self._sha = None
            results = await self._run(by_intent, mark, also)
        touched = {strategy for _, strategy in results if strategy}
        if positions == "now":
            await self.refresh_positions(touched)
        elif positions == "later":
            self.touched |= touched
        return sum(applied for applied, _ in results)

    async def _run(self, by_intent: dict[str, list[Projection]], mark: bool,
                   also: Callable[[Any], None] | None) -> list[tuple[int, str]]:
        if self._sha is None:
            self._sha = str(await self._redis.script_load(_APPLY))
        args: list[Any] = [self.prefix, self._maxlen, "1" if mark else "0"]
        for intent_id, projections in by_intent.items():
            args += [intent_id, created_ms(intent_id), len(projections)]
            args += [p.to_script_arg() for p in projections]
        pipe = self._redis.pipeline(transaction=False)
        pipe.evalsha(self._sha, 0, *args)
        if also is not None:
            also(pipe)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        if isinstance(results[0], Exception):
            raise results[0]
        for result in results[1:]:
            if isinstance(result, Exception):  # the extras must never hold back the facts
                log.warning("extra read-model command failed", extra={"error": repr(result)})
        flat = results[0]
        return [(int(flat[j]), str(flat[j + 1])) for j in range(0, len(flat), 2)]

    async def refresh_positions(self, strategies: Iterable[str]) -> None:
        """Recompute ``positions:{s}`` from ``fills:{s}`` for every strategy given.

        Two round trips for all of them: read every strategy's fills and fills version, then
        one script per strategy writes its positions only if the version is still the one
        read (another project worker may have added fills meanwhile: a position written from
        a stale read would stay wrong).  Strategies whose version moved are read again.
        """
        pending = sorted(set(strategies))
        for attempt in range(50):
            if not pending:
                return
            pipe = self._redis.pipeline(transaction=False)
            for strategy in pending:
                pipe.hget(self.key("fills-version"), strategy)
                pipe.hgetall(self.key(f"fills:{strategy}"))
            read = await pipe.execute()
            pipe = self._redis.pipeline(transaction=False)
            for i, strategy in enumerate(pending):
                version, raw = read[2 * i] or "0", read[2 * i + 1]
                holdings = holdings_from_fills([orjson.loads(v) for v in raw.values()],
                                               self.quote_asset, self.reference_prices)
                mapping = [part for asset, h in holdings.items() for part in (
                    asset, orjson.dumps(h.to_wire(), option=orjson.OPT_SORT_KEYS))]
                pipe.eval(_WRITE_POSITIONS, 0, self.prefix, strategy, version, *mapping)
            written = await pipe.execute()
            pending = [s for s, ok in zip(pending, written, strict=True) if not int(ok)]
            if pending:
                await asyncio.sleep(0.001 * attempt)
        raise RuntimeError(f"positions of {pending} kept changing while being recomputed")

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
