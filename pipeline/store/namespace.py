"""A read-model namespace (key prefix) as a whole: list, dump, compare, swap, drop.

What ``sep replay`` needs: rebuild into a fresh prefix, compare it with the live one, and make
it live in one atomic step.  Only the replayed key families are touched; the change stream and
the metrics belong to the live namespace and survive a swap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis

# Patterns are literal after the prefix, so prefix "" never matches "replay-x:intent:…".
FAMILIES: Final = (
    "intent:*",
    "plan:*",
    "fills:*",
    "positions:*",
    "prices",
    "prices-guards",
    "intents",
    "intents:state:*",
    "strategy-intents:*",
    "strategies",
    "stats:*",
)
# Rebuilt and swapped with the models but not compared: ``fills-version`` counts changes to
# each strategy's fills (a concurrency token for recomputing positions), and how many changes
# a replay makes depends on how its batches fell, not on the facts.  Likewise the seq bitmaps
# and field guards of intents and plans: they are written only while an intent's events
# arrive out of order (see readmodel.py), so which exist depends on the order, not on the
# facts (``lastSeq`` and ``eventCount`` in ``intent:{id}`` say what was applied).
# And the positions' ledgers and lists of new fills: how far a ledger has folded depends on
# when positions were last refreshed (what they hold is compared, as ``positions:*``).
TOKENS: Final = (
    "fills-version",
    "intent-seqs:*",
    "intent-guards:*",
    "plan-guards:*",
    "positions-state:*",
    "fills-new:*",
)

# KEYS: the fresh keys then the live keys they replace, then live keys to delete.
# ARGV[1]: how many renames.  Atomic: readers see the old models or the new, never a mix.
_SWAP = """
local n = tonumber(ARGV[1])
for i = 2 * n + 1, #KEYS do redis.call('UNLINK', KEYS[i]) end
for i = 1, n do redis.call('RENAME', KEYS[i], KEYS[n + i]) end
return n
"""


@dataclass(frozen=True)
class Difference:
    key: str
    """The key without its prefix."""
    what: str

    def __str__(self) -> str:
        return f"{self.key}: {self.what}"


async def keys(
    client: aioredis.Redis, prefix: str, families: Iterable[str] = FAMILIES
) -> list[str]:
    """Every replayed key under ``prefix`` (of ``families``), without the prefix, sorted."""
    found: set[str] = set()
    for family in families:
        async for key in client.scan_iter(match=_escape(prefix) + family, count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.add(name[len(prefix) :])
    return sorted(found)


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


async def dump(client: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Key (without prefix) -> comparable value.  ``client`` must not decode responses:
    the seq bitmaps are binary strings."""
    names = await keys(client, prefix)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.type(prefix + name)
    types = [t.decode() if isinstance(t, bytes) else str(t) for t in await pipe.execute()]
    pipe = client.pipeline(transaction=False)
    for name, kind in zip(names, types, strict=True):
        key = prefix + name
        if kind == "hash":
            pipe.hgetall(key)
        elif kind == "zset":
            pipe.zrange(key, 0, -1, withscores=True)
        elif kind == "string":
            pipe.get(key)
        elif kind == "set":
            pipe.smembers(key)
        else:
            pipe.type(key)
    values = await pipe.execute()
    out: dict[str, Any] = {}
    for name, kind, value in zip(names, types, values, strict=True):
        out[name] = dict(value) if kind == "zset" else value
    return out


def diff(live: dict[str, Any], rebuilt: dict[str, Any]) -> list[Difference]:
    """Every difference, key by key and field by field."""
    out: list[Difference] = []
    for name in sorted(set(live) | set(rebuilt)):
        if name not in rebuilt:
            out.append(Difference(name, "only in live"))
        elif name not in live:
            out.append(Difference(name, "only in rebuilt"))
        elif live[name] != rebuilt[name]:
            a, b = live[name], rebuilt[name]
            if isinstance(a, dict) and isinstance(b, dict):
                for field in sorted(set(a) | set(b), key=str):
                    if a.get(field) != b.get(field):
                        out.append(
                            Difference(
                                name,
                                f"{_text(field)}: live {_text(a.get(field))}"
                                f" != rebuilt {_text(b.get(field))}",
                            )
                        )
            else:
                out.append(Difference(name, f"live {_text(a)} != rebuilt {_text(b)}"))
    return out


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return repr(value.decode())
        except UnicodeDecodeError:
            return value.hex()
    return repr(value)


async def swap(client: aioredis.Redis, fresh: str, live: str) -> int:
    """Make the ``fresh`` namespace the ``live`` one, atomically; return keys moved."""
    new = await keys(client, fresh, FAMILIES + TOKENS)
    old = await keys(client, live, FAMILIES + TOKENS)
    stale = sorted(set(old) - set(new))
    result = await client.eval(
        _SWAP,
        2 * len(new) + len(stale),
        *(fresh + n for n in new),
        *(live + n for n in new),
        *(live + n for n in stale),
        len(new),
    )
    return int(result)


async def drop(client: aioredis.Redis, prefix: str, extra: Iterable[str] = ("changes",)) -> None:
    """Delete a namespace's replayed keys (and ``extra`` names under it)."""
    names = [prefix + n for n in await keys(client, prefix, FAMILIES + TOKENS)]
    names += [prefix + n for n in extra]
    for i in range(0, len(names), 1000):
        await client.unlink(*names[i : i + 1000])
