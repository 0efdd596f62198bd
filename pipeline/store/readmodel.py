"""The read models in Redis, maintained from events alone.

Keys (under an optional prefix, so replays and tests can use their own namespace):
    intent:{id}             hash: state, stateSeq, lastSeq, eventCount, at:<event type>,
                            strategyId, pair, amounts, planId, orderRef, fill:<step>, reason…
    intent-seqs:{id}        bitmap of the seqs applied, while some below lastSeq are not (a
                            gap); without a gap, the seqs applied are 1..lastSeq.  What
                            makes applying twice a no-op.
    intent-guards:{id}      hash: field -> seq of the event that wrote it, for fields written
                            above a gap (order-insensitivity; see the apply script)
    plan:{id}               hash: steps (JSON), status, step:<id>:status|orderRef|amountIn…
    plan-guards:{id}        as intent-guards, for the plan
    fills:{strategy}        hash: step id -> fill (JSON); positions are computed from it
    positions:{strategy}    hash: asset -> {quantity, costBasis, realisedPnl} (JSON)
    positions-state:{s}     the strategy's ledger (``positions.Ledger``): exact holdings after
                            every fill, which ``refresh_positions`` folds new fills into
    fills-new:{strategy}    list: the fills' steps added since that ledger was written ('!':
                            a fill changed, the ledger must be computed from all fills again)
    prices / prices-guards  hash: asset -> latest fill price in the quote asset
    intents                 sorted set of intent ids by creation time (from the id)
    intents:state:{state}   the same, per current state
    strategy-intents:{s}    the same, per strategy
    strategies              hash: strategy id -> intents seen
    stats:states            hash: intents per state
    stats:events            hash: events per event type
    stats:stages            hash: events per stage
    changes                 stream of applied changes, an entry per intent and call, each
                            change with its own id (the UI tails it, resuming from an id;
                            see changes.py)

Applying a batch is a few calls of one Lua script, each atomic in Redis: a seq already applied
changes nothing, and every field is guarded by the seq of the event that wrote it, so events of
one intent may arrive in any order (they do: project consumes several topics) and still land on
the same state.  *Which* fields an event writes, and the winner per field among an intent's
events of the batch, are decided in Python (``projection.py``); the script compares guards.
Keys are built inside the script from the prefix (single-node Redis; not cluster-safe).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from itertools import chain
from operator import attrgetter
from typing import Any, Final, Literal

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from pipeline.store.facts import EventFacts
from pipeline.store.positions import Ledger, ledger_from_fills
from pipeline.store.projection import (
    STAGE_OF,
    STATE_OF,
    TERMINAL_STATES,
    Merged,
    Projection,
    created_ms,
    merge,
    project,
)

log = logging.getLogger(__name__)

CHANGE_STREAM_MAXLEN: Final = 100_000
"""Entries the change stream keeps (about: ``MAXLEN ~``).  An entry holds one intent's changes
of one script call: ~2 in the pipeline (an intent is applied in ~4.4 calls), so this keeps
about as many changes as 200,000 entries of one change each did."""

# One call applies a whole batch, intent by intent.  ARGV = prefix, stream maxlen (0: no
# change stream), '1' to add a strategy whose fills changed to ``positions:dirty``, the
# call's prices (JSON: asset, price, ..., then their guards), then two arguments per intent
# (``_intent_args``): a JSON array, already merged in Python (``projection.merge``):
#     id, created ms, strategy or '', #events, #fields, #fills, #plans,
#     per event, by seq: seq, type, stage, state or '', length of its change
#         (seq is a number: a string would be converted (twice, strtod) at each use in
#         Lua, and it is one only as a BITFIELD offset, while the intent has a gap)
#     per field: field, value             (the merged winners; the fills last)
#     per field: its guard                (in the same order)
#     per plan: plan id, #fields, then field, value per field, then guard per field
# and the events' changes ('' without a change stream): a JSON array of each event's
# change-stream element, '[[seq,"type","event id",ms,{fields}],...]', which the script stores
# as it is when every event is new (the usual case), else cuts out the new ones' elements.
# The state after each change, which only the script knows, goes beside it (``changes.py``).
# (Raw, not in the JSON array: it holds the fields' JSON again, and cjson would unescape it
# all a second time.)
# Returns the events applied, then every strategy whose fills changed.  Every change to
# ``fills:{s}`` bumps ``fills-version[s]``, which ``refresh_positions`` checks before writing
# positions computed from what it read.
#
# What it costs (issue 11, `sep bench readmodel`): decoding every event as a JSON object and
# merging fields in Lua was most of the script's own time, and each write costs Redis ~1-6 us
# with the AOF (a redis.call itself ~0.2 us).  So Python merges each intent's fields (one flat
# array to decode, one per intent: redis-py encodes each argument in Python, ~1 us apiece)
# and the script compares guards; the writes that commute between intents (state counts and
# indexes, strategy indexes, fills, prices, stats) are gathered and made once per call and
# key.  27 % less Redis CPU an intent than one JSON object per event (bench/RESULTS.md).
# Then (issue 11, session 11) what events arriving in order need not write: no guards and no
# seq bitmap while an intent has no gap, one change-stream entry per intent and call, the
# fields written as they come; ~25 % less again (captured calls replayed, main vs branch).
# Where the rest goes (session 12, callgrind on the replayed calls, 2,000 intents): ~3/4 of
# Redis' instructions are in the script (the commands it calls ~1/4 of that, cjson ~1/5,
# making Lua strings ~1/7: each is hashed byte by byte, ARGV included), ~1/7 the append-only
# file's copy of its writes.  So the script makes no string it can pass through as given.
# (A few calls per batch rather than one per intent: each call is a command to send and a
# reply to parse.  Not one call per batch either: see SCRIPT_EVENTS.)
_APPLY = """
local P, maxlen = ARGV[1], tonumber(ARGV[2])
local mark_dirty = ARGV[3] == '1'
local topic_counts, stage_counts, state_counts = {}, {}, {}
local state_adds, state_removes, new_intents = {}, {}, {}
local strategy_adds, strategy_fills = {}, {}
local total = 0

-- The change stream: one entry per intent and call, holding its new events' changes, under
-- an id chosen here so that each change has its own id: an entry of k changes takes k
-- consecutive ids of one millisecond and is stored under the last (ms-(s+k-1)); change j is
-- ms-(s+j) (``changes.py``).  A reader resuming after any change id gets the rest of its
-- entry and everything after, like one entry per change, at one XADD per intent and call
-- (an XADD ~6 us with the AOF, the biggest write here).  The next free id: the stream's last
-- generated id or the clock, once per call (the script runs alone, so nothing else adds).
local next_ms, next_seq
local function change_id(k)
  if not next_ms then
    local t = redis.call('TIME')
    next_ms, next_seq = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), 0
    local info = redis.pcall('XINFO', 'STREAM', P..'changes')
    if type(info) == 'table' and not info.err then
      for f = 1, #info, 2 do
        if info[f] == 'last-generated-id' then
          local ms, seq = string.match(info[f + 1], '^(%d+)-(%d+)$')
          ms, seq = tonumber(ms), tonumber(seq)
          if ms >= next_ms then next_ms, next_seq = ms, seq + 1 end
          break
        end
      end
    end
  end
  local last = next_seq + k - 1
  next_seq = last + 1
  return string.format('%d-%d', next_ms, last)
end

local function append(t, k, a, b)
  local list = t[k]
  if not list then list = {}; t[k] = list end
  list[#list + 1] = a
  list[#list + 1] = b
end

-- Writes each field (a[at..]: n field, value pairs, then their n guards) whose guard beats
-- the stored one, plus ``extra`` (field, value pairs written unconditionally): at most one
-- HMGET of the guards, one HSET of the winners and ``extra``, one HSET of the winners'
-- guards.  Returns the fields written (0-based), nil for all.  ``floor``: a seq no stored
-- guard exceeds (the intent's lastSeq: every guard is the seq of an applied event), so a
-- guard above it wins unread; events mostly arrive in order, and then nothing is read.  nil:
-- read every guard.  ``old``: seqs applied before this call (nil: none); a field of theirs
-- is skipped, since the stored value is theirs or a later event's.  ``unguarded``: write no
-- guards (the intent's seqs are gap-free after this call; see apply_intent).  ``fresh``:
-- every guard is new and above ``floor``, and ``unguarded``: every field is written, as it
-- comes (the usual case: no per-field work in Lua).
local function write_guarded(key, guards, a, at, n, extra, floor, old, unguarded, fresh)
  local kv = extra or {}
  if fresh then
    for i = at, at + 2 * n - 1 do kv[#kv + 1] = a[i] end
    if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
    return nil
  end
  local at_guards, gv, written = at + 2 * n, {}, {}
  local fields, unread, stored, skip = {}, {}, {}, {}
  for k = 0, n - 1 do
    local g = a[at_guards + k]
    if old and old[tonumber(g)] then
      skip[k] = true
    elseif floor and tonumber(g) > floor then
      unread[k] = true
    else
      fields[#fields + 1] = a[at + 2 * k]
    end
  end
  if #fields > 0 then stored = redis.call('HMGET', guards, unpack(fields)) end
  local r = 0
  for k = 0, n - 1 do
    if not skip[k] then
      local j, g = at + 2 * k, a[at_guards + k]
      local s = false
      if not unread[k] then r = r + 1; s = stored[r] end
      if (not s) or g > s then
        kv[#kv + 1] = a[j]; kv[#kv + 1] = a[j + 1]
        if not unguarded then gv[#gv + 1] = a[j]; gv[#gv + 1] = g end
        written[#written + 1] = k
      end
    end
  end
  if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
  if #gv > 0 then redis.call('HSET', guards, unpack(gv)) end
  return written
end

-- Adds ``counts`` (field -> delta) to the hash ``key`` with one HMGET and one HSET rather
-- than an HINCRBY per field (a call's counts span ~20 fields of three hashes); with
-- ``drop_zero``, a field that reaches zero is removed.
local function add_counts(key, counts, drop_zero)
  local fields, deltas = {}, {}
  for f, n in pairs(counts) do
    if n ~= 0 then fields[#fields + 1] = f; deltas[#deltas + 1] = n end
  end
  if #fields == 0 then return end
  local have = redis.call('HMGET', key, unpack(fields))
  local kv, gone = {}, {}
  for k, f in ipairs(fields) do
    local n = tonumber(have[k] or '0') + deltas[k]
    if drop_zero and n == 0 then
      gone[#gone + 1] = f
    else
      kv[#kv + 1] = f; kv[#kv + 1] = n
    end
  end
  if #kv > 0 then redis.call('HSET', key, unpack(kv)) end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
end

local function apply_intent(a, change_text)
local id, created, strategy = a[1], a[2], a[3]
local n_events, n_fields, n_fills, n_plans = a[4], a[5], a[6], a[7]
local at_events = 8
local at_fields = at_events + 5 * n_events

local ikey, gkey = P..'intent:'..id, P..'intent-guards:'..id
local now = redis.call('HMGET', ikey, 'state', 'stateSeq', 'lastSeq', 'strategyId', 'eventCount')
local old_state, known_strategy, seen_before = now[1], now[4], now[3]
local state, state_seq = now[1], tonumber(now[2] or '0')
local last_seq, event_count = tonumber(now[3] or '0'), tonumber(now[5] or '0')
local floor = last_seq  -- no stored guard of this intent (or its plans) is above it

-- Which events are new.  Only new events count, move the state and go to the change stream.
-- While every seq up to lastSeq is applied (eventCount == lastSeq: seqs are >= 1, each
-- counted once), the new ones are those above lastSeq: nothing to read.  Otherwise the seq
-- bitmap says: one BITFIELD sets the batch's bits and returns the old ones.  The bitmap is
-- kept only while there is a gap (it is written whole when one opens): events mostly arrive
-- in order, and then an intent has none (a BITFIELD of 4 arguments an event, AOF included).
local gap_free = event_count == last_seq
local was = {}
if gap_free then
  for k = 0, n_events - 1 do
    was[k + 1] = a[at_events + 5 * k] <= last_seq and 1 or 0
  end
else
  local bits = {}
  for k = 0, n_events - 1 do
    local b = #bits
    bits[b + 1] = 'SET'; bits[b + 2] = 'u1'; bits[b + 3] = a[at_events + 5 * k]; bits[b + 4] = '1'
  end
  was = redis.call('BITFIELD', P..'intent-seqs:'..id, unpack(bits))
end

-- The changes are stored as the JSON text they came in, unless some event is old: every Lua
-- string made is hashed byte by byte (Redis' Lua), and cutting and joining the texts here
-- was ~a quarter of the script's CPU (issue 11, session 12).
local applied, state_moved, old, states, at_change = 0, false, {}, {}, 2
local cut = {}  -- the new events' elements, if some event is old
for k = 0, n_events - 1 do
  local e = at_events + 5 * k
  if was[k + 1] ~= 0 then
    old[a[e]] = true
  else
    local seq, topic, stage, to = a[e], a[e + 1], a[e + 2], a[e + 3]
    applied = applied + 1
    if seq > last_seq then last_seq = seq end
    if to ~= '' and seq > state_seq then state, state_seq, state_moved = to, seq, true end
    topic_counts[topic] = (topic_counts[topic] or 0) + 1
    stage_counts[stage] = (stage_counts[stage] or 0) + 1
    states[applied] = state or ''
    cut[applied] = {at_change, at_change + a[e + 4] - 1}
  end
  at_change = at_change + a[e + 4] + 1
end
if applied == 0 then return end
if maxlen > 0 then
  local text = change_text
  if applied < n_events then
    local parts = {}
    for k, range in ipairs(cut) do parts[k] = string.sub(change_text, range[1], range[2]) end
    text = '['..table.concat(parts, ',')..']'
  end
  -- States are plain names: joined, they are a JSON array without escaping.
  redis.call('XADD', P..'changes', 'MAXLEN', '~', maxlen, change_id(applied), 'intentId', id,
             'changes', text, 'states', '["'..table.concat(states, '","')..'"]')
end
total = total + applied

local extra = {'lastSeq', last_seq, 'eventCount', event_count + applied}
if state_moved then
  extra[#extra + 1] = 'state'; extra[#extra + 1] = state
  extra[#extra + 1] = 'stateSeq'; extra[#extra + 1] = state_seq
end
-- A guard only matters while its field's writer is above the intent's gap-free prefix of
-- seqs: an event still to come has a seq above that prefix, and must learn whether it is
-- older than the writer.  When every seq up to lastSeq is applied (eventCount == lastSeq:
-- seqs are >= 1, each counted once), that prefix is every event: no guard is written.
-- Events mostly arrive in order, so most calls write none; a guard left stale by such a
-- write is below the field's writer and so below any seq still to come (it still loses).
local unguarded = event_count + applied == last_seq
if gap_free and not unguarded then  -- a gap opens: the bitmap, from seq 1
  local bits = {}
  for seq = 1, floor do
    local b = #bits
    bits[b + 1] = 'SET'; bits[b + 2] = 'u1'; bits[b + 3] = seq; bits[b + 4] = '1'
  end
  for k = 0, n_events - 1 do
    if was[k + 1] == 0 then
      local b = #bits
      bits[b + 1] = 'SET'; bits[b + 2] = 'u1'; bits[b + 3] = a[at_events + 5 * k]
      bits[b + 4] = '1'
    end
  end
  redis.call('BITFIELD', P..'intent-seqs:'..id, unpack(bits))
end
-- Every event new and above lastSeq, and no gap: every field wins, unread, unguarded.
local fresh = unguarded and applied == n_events and a[at_events] > floor
local written = write_guarded(
  ikey, gkey, a, at_fields, n_fields, extra, floor, old, unguarded, fresh)
local j = at_fields + 3 * n_fields
for _ = 1, n_plans do
  local plan, n = a[j], a[j + 1]
  -- A plan is its intent's: its guards are seqs of the intent's events too.
  write_guarded(
    P..'plan:'..plan, P..'plan-guards:'..plan, a, j + 2, n, nil, floor, old, unguarded, fresh)
  j = j + 2 + 3 * n
end
if state ~= old_state then
  if old_state then
    state_counts[old_state] = (state_counts[old_state] or 0) - 1
    local ids = state_removes[old_state]
    if not ids then ids = {}; state_removes[old_state] = ids end
    ids[#ids + 1] = id
  end
  state_counts[state] = (state_counts[state] or 0) + 1
  append(state_adds, state, created, id)
end
if not seen_before then
  new_intents[#new_intents + 1] = created; new_intents[#new_intents + 1] = id
end

-- The strategy may become known after the fills (events of one intent arrive in any order):
-- when it becomes known, all the intent's fills are copied into the strategy's; after that,
-- only the fills this call wrote.  (Known now and never seen before: this call's fills are
-- all of them.)
local sid = known_strategy or (strategy ~= '' and strategy) or nil
if not sid then return end
if not known_strategy then append(strategy_adds, sid, created, id) end
local fills = strategy_fills[sid]
if not fills then fills = {}; strategy_fills[sid] = fills end
if known_strategy or not seen_before then
  local first_fill = n_fields - n_fills
  if not written then  -- all of them
    written = {}
    for k = first_fill, n_fields - 1 do written[#written + 1] = k end
  end
  for _, k in ipairs(written) do
    if k >= first_fill then
      local f = at_fields + 2 * k
      fills[string.sub(a[f], 6)] = a[f + 1]
    end
  end
else
  local all = redis.call('HGETALL', ikey)
  for f = 1, #all, 2 do
    if string.sub(all[f], 1, 5) == 'fill:' then fills[string.sub(all[f], 6)] = all[f + 1] end
  end
end
end

for i = 5, #ARGV, 2 do apply_intent(cjson.decode(ARGV[i]), ARGV[i + 1]) end
if total == 0 then return {0} end

-- What commutes between intents, once per call and key.  A state count at zero is removed,
-- so the same final states give the same hash whatever states the intents passed through.
local prices = cjson.decode(ARGV[4])
write_guarded(P..'prices', P..'prices-guards', prices, 1, #prices / 3)
add_counts(P..'stats:states', state_counts, true)
add_counts(P..'stats:events', topic_counts, false)
add_counts(P..'stats:stages', stage_counts, false)
for st, ids in pairs(state_removes) do redis.call('ZREM', P..'intents:state:'..st, unpack(ids)) end
for st, members in pairs(state_adds) do
  redis.call('ZADD', P..'intents:state:'..st, unpack(members))
end
if #new_intents > 0 then redis.call('ZADD', P..'intents', unpack(new_intents)) end
for sid, members in pairs(strategy_adds) do
  local added = redis.call('ZADD', P..'strategy-intents:'..sid, unpack(members))
  if added > 0 then redis.call('HINCRBY', P..'strategies', sid, added) end
end
local out = {total}
for sid, fills in pairs(strategy_fills) do
  local steps, wanted = {}, {}
  for step, fill in pairs(fills) do steps[#steps + 1] = step; wanted[#wanted + 1] = fill end
  if #steps > 0 then
    local have = redis.call('HMGET', P..'fills:'..sid, unpack(steps))
    local changed, added = {}, {}
    for k, step in ipairs(steps) do
      if have[k] ~= wanted[k] then
        changed[#changed + 1] = step; changed[#changed + 1] = wanted[k]
        -- For refresh_positions: a new step to fold in, or '!' (a fill it may have folded
        -- in already changed: only a computation from all fills is right).
        added[#added + 1] = have[k] and '!' or step
      end
    end
    if #changed > 0 then
      redis.call('HSET', P..'fills:'..sid, unpack(changed))
      redis.call('RPUSH', P..'fills-new:'..sid, unpack(added))
      redis.call('HINCRBY', P..'fills-version', sid, 1)
      if mark_dirty then redis.call('SADD', P..'positions:dirty', sid) end
      out[#out + 1] = sid
    end
  end
end
return out
"""


# ARGV = prefix, strategy.  What ``refresh_positions`` needs of one strategy, in one call:
# {fills version, positions ledger ('' if none), '1' if only a computation from all fills will
# do ('0' if the new fills can be folded into the ledger), how many fills there are, the new
# fills (when '0')}.  All
# fills are read by the caller itself (HGETALL): a script's reply is built on Lua's stack,
# which holds some thousands of values, and a strategy has any number of fills.  So are new
# fills beyond NEW_FILLS_AT_MOST.
_READ_POSITIONS = """
local P, sid = ARGV[1], ARGV[2]
local version = redis.call('HGET', P..'fills-version', sid) or '0'
local ledger = redis.call('GET', P..'positions-state:'..sid)
if not ledger then return {version, '', '1', 0} end
local held = redis.call('HLEN', P..'fills:'..sid)
local new = redis.call('LRANGE', P..'fills-new:'..sid, 0, %d)
if #new == 0 then return {version, ledger, '0', held} end
if #new > %d then return {version, ledger, '1', held} end
for _, step in ipairs(new) do
  if step == '!' then return {version, ledger, '1', held} end
end
local out = redis.call('HMGET', P..'fills:'..sid, unpack(new))
for i = #out, 1, -1 do out[i + 4] = out[i] end
out[1], out[2], out[3], out[4] = version, ledger, '0', held
return out
"""

NEW_FILLS_AT_MOST: Final = 2000
"""New fills ``_READ_POSITIONS`` hands over; more, and the caller reads all fills."""

_READ_POSITIONS = _READ_POSITIONS % (NEW_FILLS_AT_MOST, NEW_FILLS_AT_MOST)

# ARGV = prefix, strategy, the fills version the positions were computed from, the ledger
# (``positions.Ledger.dumps``), then asset, position JSON pairs.  Writes (replacing the hash)
# only if the version is unchanged; then every fill listed as new is in the ledger.
_WRITE_POSITIONS = """
local P, sid = ARGV[1], ARGV[2]
if (redis.call('HGET', P..'fills-version', sid) or '0') ~= ARGV[3] then return 0 end
redis.call('DEL', P..'positions:'..sid)
if #ARGV > 4 then redis.call('HSET', P..'positions:'..sid, unpack(ARGV, 5)) end
redis.call('SET', P..'positions-state:'..sid, ARGV[4])
redis.call('DEL', P..'fills-new:'..sid)
return 1
"""

SCRIPT_EVENTS: Final = 64
"""Events per call of the apply script, at most (an intent's events are never split).

Redis runs one command at a time, and a script is one command: a project batch of 400
events in one call held every other client for ~10-50 ms (Redis' slow log, at 300 intents/s
on 2 cores), and ingest's dedupe claims waited behind it on every submitted intent.  Calls
of at most 64 events (~1-3 ms each), sent in one pipeline, let Redis serve the others
between them, for the same single round trip."""

_BY_INTENT_SEQ: Final = attrgetter("correlation_id", "seq")

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
        events: Sequence[EventFacts],
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
        for event in sorted(events, key=_BY_INTENT_SEQ):
            by_intent.setdefault(event.correlation_id, []).append(project(event, self.quote_asset))
        mark = positions == "mark"
        try:
            results = await self._run(by_intent, mark, also)
        except NoScriptError:  # Redis restarted and forgot the script: load it again
            self._sha = None
            results = await self._run(by_intent, mark, also)
        # Each call's reply: the events it applied, then the strategies whose fills changed.
        touched = {str(strategy) for reply in results for strategy in reply[1:]}
        if positions == "now":
            await self.refresh_positions(touched)
        elif positions == "later":
            self.touched |= touched
        return sum(int(reply[0]) for reply in results)

    async def _run(
        self, by_intent: dict[str, list[Projection]], mark: bool, also: Callable[[Any], None] | None
    ) -> list[Any]:
        if self._sha is None:
            self._sha = str(await self._redis.script_load(_APPLY))
        head: list[Any] = [self.prefix, self._maxlen, "1" if mark else "0"]
        changes = self._maxlen > 0
        pipe = self._redis.pipeline(transaction=False)
        calls = 0
        for chunk in _chunks(by_intent, SCRIPT_EVENTS):
            merged = [(intent_id, merge(projections)) for intent_id, projections in chunk]
            args = [*head, _prices_arg(m for _, m in merged)]
            for intent_id, m in merged:
                args += _intent_args(intent_id, m, changes)
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
        return results[:calls]

    async def refresh_positions(self, strategies: Iterable[str]) -> None:
        """Bring ``positions:{s}`` up to ``fills:{s}`` for every strategy given.

        Incremental: ``positions-state:{s}`` keeps each strategy's ledger (its holdings up to
        its last fill, ``positions.Ledger``) and ``fills-new:{s}`` lists the fills added since
        it was written, so a refresh reads only those and folds them in, however long the
        history.  It reads all the fills, as before, when there is no ledger yet (a fresh
        read model, a replay), when a fill already there changed, when a new fill sorts
        before the ledger's settled ones (it arrived more than ``positions.SETTLE_AFTER``
        late), or when the fills held are not the ledger's and the listed ones (a writer that
        did not list its fills).

        Two round trips for all of them in the usual case: read every strategy's fills version,
        ledger and new fills, then one script per strategy writes its positions and ledger only
        if the version is still the one read (another project worker may have added fills
        meanwhile: a position written from a stale read would stay wrong).  Strategies whose
        version moved are read again.
        """
        pending = sorted(set(strategies))
        quote, reference = self.quote_asset, self.reference_prices
        for attempt in range(50):
            if not pending:
                return
            pipe = self._redis.pipeline(transaction=False)
            for strategy in pending:
                pipe.eval(_READ_POSITIONS, 0, self.prefix, strategy)
            reads: list[list[Any]] = await pipe.execute()
            ledgers: dict[str, Ledger] = {}
            for strategy, (_, raw, everything, held, *new) in zip(pending, reads, strict=True):
                if everything == "1" or None in new:
                    continue
                ledger = Ledger.loads(raw)
                # Every fill held is in the ledger or listed as new, or the ledger missed one.
                if ledger.count + len(new) != int(held):
                    continue
                if ledger.fold((orjson.loads(f) for f in new), quote, reference):
                    ledgers[strategy] = ledger
            recompute = [s for s in pending if s not in ledgers]
            if recompute:
                pipe = self._redis.pipeline(transaction=False)
                for strategy in recompute:
                    pipe.hvals(self.key(f"fills:{strategy}"))
                for strategy, fills in zip(recompute, await pipe.execute(), strict=True):
                    ledger = ledger_from_fills(map(orjson.loads, fills), quote, reference)
                    ledgers[strategy] = ledger
            pipe = self._redis.pipeline(transaction=False)
            for strategy, read in zip(pending, reads, strict=True):
                ledger = ledgers[strategy]
                mapping = [
                    part
                    for asset, h in ledger.positions(quote).items()
                    for part in (asset, orjson.dumps(h.to_wire(), option=orjson.OPT_SORT_KEYS))
                ]
                pipe.eval(
                    _WRITE_POSITIONS, 0, self.prefix, strategy, read[0], ledger.dumps(), *mapping
                )
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


def _intent_args(intent_id: str, merged: Merged, changes: bool) -> tuple[bytes, bytes]:
    """One intent's arguments of the apply script: a flat JSON array and its events' changes
    (layout above ``_APPLY``)."""
    # Per intent and call of every batch (issue 11, session 13): the lists are extended from
    # the dicts' views in C rather than field by field.  ``merge`` inserts a field's guard
    # when it inserts the field, so ``guards`` iterates in ``intent``'s order.
    intent, guards, events = merged.intent, merged.intent_guards, merged.events
    out: list[Any] = [
        intent_id,
        str(created_ms(intent_id)),  # cached: ``created_ms``
        merged.strategy,
        len(events),
        len(intent),
        0,  # the fills, counted below
        len(merged.plans),
    ]
    texts: list[bytes] = []
    if changes:  # the state after it goes beside it (the script knows it)
        for p in events:
            text = orjson.dumps([p.seq, p.topic, p.event_id, p.ms, p.intent])
            texts.append(text)
            out += (p.seq, p.topic, p.stage, p.state, len(text))
    else:
        for p in events:
            out += (p.seq, p.topic, p.stage, p.state, 0)
    fills = [f for f in intent if f.startswith("fill:")]
    if fills:  # the fills go last
        out[5] = len(fills)
        out.extend(chain.from_iterable(kv for kv in intent.items() if kv[0] not in fills))
        out.extend(chain.from_iterable((f, intent[f]) for f in fills))
        out.extend(guards[f] for f in intent if f not in fills)
        out.extend(guards[f] for f in fills)
    else:
        out.extend(chain.from_iterable(intent.items()))
        out.extend(guards.values())
    for plan_id, (values, value_guards) in merged.plans.items():
        out += (plan_id, len(values))
        out.extend(chain.from_iterable(values.items()))
        out.extend(value_guards.values())
    return orjson.dumps(out), (b"[" + b",".join(texts) + b"]") if changes else b""


def _prices_arg(merged: Iterable[Merged]) -> bytes:
    """The call's prices, the highest guard per asset (asset, price, guard, ...).  Offering a
    price whose event was applied before changes nothing: its guard ties or loses."""
    best: dict[str, tuple[str, str]] = {}
    for m in merged:
        for asset, (price, guard) in m.prices.items():
            held = best.get(asset)
            if held is None or guard > held[1]:
                best[asset] = (price, guard)
    pairs = [part for asset, (price, _) in best.items() for part in (asset, price)]
    return orjson.dumps(pairs + [guard for _, guard in best.values()])


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
