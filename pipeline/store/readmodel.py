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
# from what it read.  (A few calls per batch rather than one per intent: each call is a
# command to send and a reply to parse in redis-py, which cost more than the script's work.
# Not one call per batch either: see SCRIPT_EVENTS.)
_APPLY = """
local P, maxlen = ARGV[1], tonumber(ARGV[2])
local mark_dirty = ARGV[3] == '1'
local topic_counts, stage_counts = {}, {}

-- Writes each field of ``values`` whose guard beats the stored one, plus ``extra`` (field,
-- value pairs written unconditionally): one HMGET of the guards, one HSET of the winners and
-- ``extra``, one HSET of the winners' guards.  Returns the fields of ``values`` written.
local function write_guarded(key, guards, values, value_guards, extra)
  local fields = {}
  for f in pairs(values) do fields[#fields + 1] = f end
  local kv, gv, written = extra or {}, {}, {}
  if #fields > 0 then
    local stored = redis.call('HMGET', guards, unpack(fields))
    for j, f in ipairs(fields) do
      local g = value_guards[f]
      if (not stored[j]) or g > stored[j] then
        kv[#kv + 1] = f; kv[#kv + 1] = values[f]
        gv[#gv + 1] = f; gv[#gv + 1] = g
        written[#written + 1] = f
      end
    end
  end
  if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
  if #gv > 0 then redis.call('HSET', guards, unpack(gv)) end
  return written
end

-- Keeps, per field, the value of the highest guard seen (what applying in order would leave).
local function offer(values, value_guards, fields, guard)
  for f, v in pairs(fields) do
    local g = value_guards[f]
    if (not g) or guard > g then values[f] = v; value_guards[f] = guard end
  end
end

-- One intent's events of this batch are merged here first and written with a few calls per
-- intent: each redis.call from Lua costs ~2-3 us of Redis CPU beyond the command itself, and
-- a call per field and event (~380 per intent) was most of Redis' CPU in the pipeline.
local function apply_intent(id, created, first, last)
local ikey, gkey = P..'intent:'..id, P..'intent-guards:'..id
local now = redis.call('HMGET', ikey, 'state', 'stateSeq', 'lastSeq', 'strategyId', 'eventCount')
local old_state, known_strategy, seen_before = now[1], now[4], now[3]
local state, state_seq = now[1], tonumber(now[2] or '0')
local last_seq, event_count = tonumber(now[3] or '0'), tonumber(now[5] or '0')

-- The seq bitmap says which events are new: one BITFIELD sets them all and returns the old
-- bits (a seq twice in the batch is new only the first time).
local events, bits = {}, {}
for i = first, last do
  local e = cjson.decode(ARGV[i])
  events[#events + 1] = e
  bits[#bits + 1] = 'SET'; bits[#bits + 1] = 'u1'; bits[#bits + 1] = e.seq; bits[#bits + 1] = 1
end
local was = redis.call('BITFIELD', P..'intent-seqs:'..id, unpack(bits))

local applied, fills_changed, state_moved = 0, false, false
local values, value_guards, plans, prices, price_guards = {}, {}, {}, {}, {}
for k, e in ipairs(events) do
  if was[k] == 0 then
    applied = applied + 1
    local guard = string.format('%010d', e.seq)
    offer(values, value_guards, e.intent, guard)
    for f in pairs(e.intent) do
      if string.sub(f, 1, 5) == 'fill:' then fills_changed = true end
    end
    if e.plan then
      local plan = plans[e.plan]
      if not plan then plan = {{}, {}}; plans[e.plan] = plan end
      offer(plan[1], plan[2], e.planFields, guard)
    end
    if e.prices then offer(prices, price_guards, e.prices, e.priceGuard) end
    if e.seq > last_seq then last_seq = e.seq end
    if e.state ~= '' and e.seq > state_seq then
      state, state_seq, state_moved = e.state, e.seq, true
    end
    topic_counts[e.topic] = (topic_counts[e.topic] or 0) + 1
    stage_counts[e.stage] = (stage_counts[e.stage] or 0) + 1
    if maxlen > 0 then
      redis.call('XADD', P..'changes', 'MAXLEN', '~', maxlen, '*', 'intentId', id,
                 'seq', e.seq, 'topic', e.topic, 'state', state or '',
                 'eventId', e.eventId, 'ms', e.ms, 'data', e.data)
    end
  end
end
if applied == 0 then return 0, '' end

local extra = {'lastSeq', last_seq, 'eventCount', event_count + applied}
if state_moved then
  extra[#extra + 1] = 'state'; extra[#extra + 1] = state
  extra[#extra + 1] = 'stateSeq'; extra[#extra + 1] = state_seq
end
local written = write_guarded(ikey, gkey, values, value_guards, extra)
for plan_id, plan in pairs(plans) do
  write_guarded(P..'plan:'..plan_id, P..'plan-guards:'..plan_id, plan[1], plan[2])
end
write_guarded(P..'prices', P..'prices-guards', prices, price_guards)
if state ~= old_state then
  if old_state then
    -- A count at zero is removed, so the same final states give the same hash
    -- whatever states the intents passed through on the way.
    if redis.call('HINCRBY', P..'stats:states', old_state, -1) == 0 then
      redis.call('HDEL', P..'stats:states', old_state)
    end
    redis.call('ZREM', P..'intents:state:'..old_state, id)
  end
  redis.call('HINCRBY', P..'stats:states', state, 1)
  redis.call('ZADD', P..'intents:state:'..state, created, id)
end
if not seen_before then redis.call('ZADD', P..'intents', created, id) end

-- The strategy may become known after the fills (events of one intent arrive in any order):
-- when it becomes known, all the intent's fills are copied into the strategy's; after that,
-- only the fills this batch wrote.
local fills = {}
local sid = known_strategy or values['strategyId']
if not sid then return applied, '' end
if not known_strategy then
  if redis.call('ZADD', P..'strategy-intents:'..sid, created, id) == 1 then
    redis.call('HINCRBY', P..'strategies', sid, 1)
  end
  local all = redis.call('HGETALL', ikey)
  for j = 1, #all, 2 do
    if string.sub(all[j], 1, 5) == 'fill:' then fills[string.sub(all[j], 6)] = all[j + 1] end
  end
elseif fills_changed then
  for _, f in ipairs(written) do
    if string.sub(f, 1, 5) == 'fill:' then fills[string.sub(f, 6)] = values[f] end
  end
end
local steps, wanted = {}, {}
for step, fill in pairs(fills) do steps[#steps + 1] = step; wanted[#wanted + 1] = fill end
if #steps == 0 then return applied, '' end
local have = redis.call('HMGET', P..'fills:'..sid, unpack(steps))
local changed = {}
for j, step in ipairs(steps) do
  if have[j] ~= wanted[j] then changed[#changed + 1] = step; changed[#changed + 1] = wanted[j] end
end
if #changed == 0 then return applied, '' end
redis.call('HSET', P..'fills:'..sid, unpack(changed))
redis.call('HINCRBY', P..'fills-version', sid, 1)
if mark_dirty then redis.call('SADD', P..'positions:dirty', sid) end
return applied, sid
end

local out, i = {}, 4
while i <= #ARGV do
  local n = tonumber(ARGV[i + 2])
  local applied, touched = apply_intent(ARGV[i], tonumber(ARGV[i + 1]), i + 3, i + 2 + n)
  out[#out + 1] = applied
  out[#out + 1] = touched
  i = i + 3 + n
end
for topic, n in pairs(topic_counts) do redis.call('HINCRBY', P..'stats:events', topic, n) end
for stage, n in pairs(stage_counts) do redis.call('HINCRBY', P..'stats:stages', stage, n) end
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

SCRIPT_EVENTS: Final = 64
"""Events per call of the apply script, at most (an intent's events are never split).

Redis runs one command at a time, and a script is one command: a project batch of 400
events in one call held every other client for ~10-50 ms (Redis' slow log, at 300 intents/s
on 2 cores), and ingest's dedupe claims waited behind it on every submitted intent.  Calls
of at most 64 events (~1-3 ms each), sent in one pipeline, let Redis serve the others
between them, for the same single round trip."""

PositionsMode = Literal["now", "later", "mark"]

POSITIONS_DIRTY = "positions:dirty"
"""Set of strategies whose ``positions:{s}`` is older than their fills (project stage)."""


class ReadModel:
    """Writes (``apply``) and the flat per-intent reads the tests use; ``views`` reads the rest."""

    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str = "",
        *,
        quote_asset: str = "USDC",
        reference_prices: dict[str, Decimal] | None = None,
        change_stream: bool = True,
    ) -> None:
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

    async def apply(
        self,
        events: Sequence[Event],
        *,
        positions: PositionsMode = "now",
        also: Callable[[Any], None] | None = None,
    ) -> int:
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
            by_intent.setdefault(event.correlation_id, []).append(project(event, self.quote_asset))
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

    async def _run(
        self, by_intent: dict[str, list[Projection]], mark: bool, also: Callable[[Any], None] | None
    ) -> list[tuple[int, str]]:
        if self._sha is None:
            self._sha = str(await self._redis.script_load(_APPLY))
        head: list[Any] = [self.prefix, self._maxlen, "1" if mark else "0"]
        pipe = self._redis.pipeline(transaction=False)
        calls = 0
        for chunk in _chunks(by_intent, SCRIPT_EVENTS):
            args = list(head)
            for intent_id, projections in chunk:
                args += [intent_id, created_ms(intent_id), len(projections)]
                args += [p.to_script_arg() for p in projections]
            pipe.evalsha(self._sha, 0, *args)
            calls += 1
        if also is not None:
            also(pipe)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for result in results[:calls]:
            if isinstance(result, Exception):
                raise result
        for result in results[calls:]:
            if isinstance(result, Exception):  # the extras must never hold back the facts
                log.warning("extra read-model command failed", extra={"error": repr(result)})
        return [
            (int(flat[j]), str(flat[j + 1]))
            for flat in results[:calls]
            for j in range(0, len(flat), 2)
        ]

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
                holdings = holdings_from_fills(
                    [orjson.loads(v) for v in raw.values()], self.quote_asset, self.reference_prices
                )
                mapping = [
                    part
                    for asset, h in holdings.items()
                    for part in (asset, orjson.dumps(h.to_wire(), option=orjson.OPT_SORT_KEYS))
                ]
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


def _chunks(
    by_intent: dict[str, list[Projection]], max_events: int
) -> Iterable[list[tuple[str, list[Projection]]]]:
    """The intents in order, grouped into runs of at most ``max_events`` events (an intent
    with more is a run of its own)."""
    chunk: list[tuple[str, list[Projection]]] = []
    events = 0
    for item in by_intent.items():
        if chunk and events + len(item[1]) > max_events:
            yield chunk
            chunk, events = [], 0
        chunk.append(item)
        events += len(item[1])
    if chunk:
        yield chunk


__all__ = ["CHANGE_STREAM_MAXLEN", "STAGE_OF", "STATE_OF", "TERMINAL_STATES", "ReadModel"]
