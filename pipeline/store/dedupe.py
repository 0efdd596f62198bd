"""Who owns a dedupe key: the first intent id to claim ``(strategy_id, client_intent_id)``.

Dedupe must hold whatever partition a duplicate arrives on (kcat's CRC32, Java's murmur2
and our client all place one key differently), so it cannot live in a partition-local
table: every ingest worker and ``POST /intents`` ask one store.

    claim([(key, candidate id), ...]) -> [owner id, ...]

The owner is the candidate if the key was free (or already held by that same id), the
earlier id otherwise.  Claiming again with the owner's own id is harmless and answers that
id: a redelivered record derives the same id from itself and is processed again, with
identical events, while a *different* record with the same key is a duplicate.

Redis keys: ``{prefix}dedupe:{key}`` -> intent id, expiring after ``ttl_s`` (a duplicate
older than that is a new intent; ``SEP_DEDUPE_TTL_S``, 7 days by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import orjson
import redis.asyncio as aioredis

KEY_FAMILY: Final = "dedupe:"

# One call claims a whole batch, in order, atomically: KEYS are the dedupe keys, ARGV[1] the
# TTL in seconds, ARGV[i + 1] key i's candidate.  Returns each key's owner.  Two claims of one
# key in a batch: the first wins and the second is answered the first's id.  (A key expiring
# between SET and GET cannot happen inside a script; the second SET only guards against it.)
_CLAIM = """
local ttl = ARGV[1]
local owners = {}
for i, key in ipairs(KEYS) do
  local candidate = ARGV[i + 1]
  if redis.call('SET', key, candidate, 'NX', 'EX', ttl) then
    owners[i] = candidate
  else
    local owner = redis.call('GET', key)
    if not owner then
      redis.call('SET', key, candidate, 'EX', ttl)
      owner = candidate
    end
    owners[i] = owner
  end
end
return owners
"""

# KEYS[1] the dedupe key, ARGV[1] the id that must own it.  Deletes only its own claim.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def dedupe_key(strategy_id: str, client_intent_id: str) -> str:
    """The pair as a JSON array: one key per pair, whatever characters the ids hold."""
    return orjson.dumps([strategy_id, client_intent_id]).decode()


class DedupeStore(Protocol):
    """Where ingest and ``POST /intents`` claim dedupe keys (one store for all partitions)."""

    async def claim(self, claims: Sequence[tuple[str, str]]) -> list[str]:
        """Claim each (dedupe key, candidate intent id) in order, in one round trip.

        Returns each key's owner: the candidate if it won, the earlier intent id otherwise.
        """
        ...

    async def release(self, key: str, intent_id: str) -> None:
        """Drop ``key`` if ``intent_id`` owns it: a claim whose record was never produced
        must not make a retry of the same submission a 'duplicate' of nothing."""
        ...


class RedisDedupeStore:
    """The store every worker shares: one Lua call per batch of claims."""

    def __init__(
        self, client: aioredis.Redis, prefix: str, ttl_s: float, *, owns_client: bool = False
    ) -> None:
        if ttl_s < 1:
            raise ValueError(f"dedupe TTL must be at least 1 s, got {ttl_s}")
        self._client = client
        self._prefix = prefix + KEY_FAMILY
        self._ttl_s = str(int(ttl_s))
        self._owns_client = owns_client
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def connect(cls, url: str, prefix: str, ttl_s: float) -> RedisDedupeStore:
        """A store on its own connection pool, closed by ``close``."""
        return cls(aioredis.from_url(url), prefix, ttl_s, owns_client=True)

    async def claim(self, claims: Sequence[tuple[str, str]]) -> list[str]:
        if not claims:
            return []
        keys = [self._prefix + key for key, _ in claims]
        owners = await self._claim(keys=keys, args=[self._ttl_s, *(c for _, c in claims)])
        return [o.decode() if isinstance(o, bytes) else str(o) for o in owners]

    async def release(self, key: str, intent_id: str) -> None:
        await self._release(keys=[self._prefix + key], args=[intent_id])

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MemoryDedupeStore:
    """The same contract in a dict, with the same expiry: unit tests and in-process runs
    (the backtest runtime passes its deterministic clock)."""

    def __init__(self, ttl_s: float, clock: Callable[[], int] = _now_ms) -> None:
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._owners: dict[str, tuple[str, int]] = {}
        """key -> (owner id, expiry in clock ms)"""

    def owner(self, key: str) -> str | None:
        held = self._owners.get(key)
        return held[0] if held is not None and held[1] > self._clock() else None

    async def claim(self, claims: Sequence[tuple[str, str]]) -> list[str]:
        owners = []
        for key, candidate in claims:
            owner = self.owner(key)
            if owner is None:
                self._owners[key] = (candidate, self._clock() + self._ttl_ms)
                owner = candidate
            owners.append(owner)
        return owners

    async def release(self, key: str, intent_id: str) -> None:
        if self.owner(key) == intent_id:
            del self._owners[key]
