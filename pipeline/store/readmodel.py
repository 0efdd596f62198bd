"""The intent read model in Redis, maintained from events alone.

Keys (under an optional prefix, so replays and tests can use their own namespace):
    intent:{id}        hash: state, stateSeq, lastSeq, eventCount, at:<event type>, details
    intent-seqs:{id}   bitmap of the seqs applied (what makes applying twice a no-op)
    intents            sorted set of intent ids by first-seen time
    stats:states       hash: intents per state
    changes            stream of applied changes (the UI tails it, resuming from an id)

Applying an event is one Lua script, atomic in Redis: a seq already applied changes nothing,
and the state only moves forward in seq, so events of one intent may arrive in any order
(they do: project consumes several topics) and still land on the same state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from pipeline.models.events import Event

STATE_OF: Final[dict[str, str | None]] = {
    "intent.submitted": "submitted",
    "intent.rejected": "rejected",
    "risk.approved": None,
    "risk.rejected": "risk_rejected",
    "intent.accepted": "accepted",
    "intent.prioritised": "prioritised",
    "plan.created": "planned",
    "plan.rejected": "plan_rejected",
    "exec.started": "executing",
    "exec.step_submitted": "executing",
    "exec.step_filled": "executing",
    "exec.step_failed": "executing",
    "exec.completed": "completed",
    "exec.failed": "failed",
    "intent.expired": "expired",
    "intent.cancelled": "cancelled",
}
TERMINAL_STATES: Final = frozenset(
    {"rejected", "risk_rejected", "plan_rejected", "completed", "failed", "expired", "cancelled"}
)
CHANGE_STREAM_MAXLEN: Final = 200_000

# One call per intent per batch: ARGV = intent id, stream maxlen, then for each event
# seq, state ('' if the event does not move the state), topic, epoch ms, n, and n field/value
# strings for the intent's hash.  Returns how many events were new.
_APPLY = """
local id, maxlen = ARGV[1], ARGV[2]
local i, applied = 3, 0
while i <= #ARGV do
  local seq, state, topic, ms = tonumber(ARGV[i]), ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local nfields = tonumber(ARGV[i + 4])
  local first, last = i + 5, i + 4 + 2 * nfields
  i = last + 1
  if redis.call('SETBIT', KEYS[2], seq, 1) == 0 then
    applied = applied + 1
    if nfields > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, first, last)) end
    redis.call('HINCRBY', KEYS[1], 'eventCount', 1)
    if state ~= '' then
      local state_seq = tonumber(redis.call('HGET', KEYS[1], 'stateSeq') or '0')
      if seq > state_seq then
        local old = redis.call('HGET', KEYS[1], 'state')
        redis.call('HSET', KEYS[1], 'state', state, 'stateSeq', seq)
        if old then redis.call('HINCRBY', KEYS[3], old, -1) end
        redis.call('HINCRBY', KEYS[3], state, 1)
      end
    end
    local last_seq = tonumber(redis.call('HGET', KEYS[1], 'lastSeq') or '0')
    if seq > last_seq then redis.call('HSET', KEYS[1], 'lastSeq', seq) end
    redis.call('ZADD', KEYS[4], 'NX', ms, id)
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', maxlen, '*', 'intent', id, 'seq', seq,
               'topic', topic, 'state', redis.call('HGET', KEYS[1], 'state') or '')
  end
end
return applied
"""


def _details(event: Event) -> dict[str, str]:
    """The fields an event contributes to its intent's hash (flat strings)."""
    p = event.payload
    out: dict[str, str] = {f"at:{event.topic}": event.timestamp.isoformat()}
    if event.topic == "intent.submitted":
        intent = p["intent"]
        out |= {
            "strategyId": intent["strategyId"],
            "type": intent["type"],
            "asset": intent["assets"][0]["asset"]["symbol"],
            "amount": str(intent["assets"][0].get("amount", "")),
            "counterAsset": intent["assets"][1]["asset"]["symbol"],
        }
        if "clientIntentId" in intent:
            out["clientIntentId"] = intent["clientIntentId"]
    elif event.topic == "intent.rejected":
        out["reason"] = p["reason"]
        if p.get("strategyId"):
            out["strategyId"] = p["strategyId"]
    elif event.topic == "risk.rejected":
        out |= {"reason": f"{p['rule']}: {p['message']}", "riskRule": p["rule"]}
    elif event.topic == "intent.prioritised":
        out |= {"priority": str(p["priority"]), "lane": p["lane"]}
    elif event.topic == "plan.created":
        out |= {"planId": p["plan"]["id"], "estimatedOut": p["plan"]["estimatedOut"]}
    elif event.topic == "plan.rejected":
        out["reason"] = f"{p['reason']}: {p['detail']}"
    elif event.topic == "exec.step_submitted":
        out["orderRef"] = p["orderRef"]
    elif event.topic == "exec.completed":
        out |= {
            "amountIn": p["amountIn"],
            "amountOut": p["amountOut"],
            "realisedSlippage": p["realisedSlippage"],
        }
    elif event.topic in ("exec.failed", "exec.step_failed"):
        out["reason"] = p["reason"]
    elif event.topic == "intent.expired":
        out["reason"] = f"window closed at {p['deadlineMs']} (seen at {p['observedAtMs']})"
    return out


class ReadModel:
    def __init__(self, client: aioredis.Redis, prefix: str = "") -> None:
        self._redis = client
        self._prefix = prefix
        self._sha: str | None = None

    @classmethod
    def connect(cls, url: str, prefix: str = "") -> ReadModel:
        return cls(aioredis.from_url(url, decode_responses=True), prefix)

    async def close(self) -> None:
        await self._redis.aclose()

    def key(self, name: str) -> str:
        return f"{self._prefix}{name}"

    async def apply(self, events: Sequence[Event]) -> int:
        """Apply events (idempotently, in any order); return how many were new."""
        if not events:
            return 0
        by_intent: dict[str, list[Any]] = {}
        for event in sorted(events, key=lambda e: (e.correlation_id, e.seq)):
            details = _details(event)
            args = by_intent.setdefault(event.correlation_id, [])
            args += [
                event.seq,
                STATE_OF.get(event.topic) or "",
                event.topic,
                int(event.timestamp.timestamp() * 1000),
                len(details),
            ]
            args += [item for pair in details.items() for item in pair]
        try:
            results = await self._run(by_intent)
        except NoScriptError:  # Redis restarted and forgot the script: load it again
            self._sha = None
            results = await self._run(by_intent)
        return sum(int(r) for r in results)

    async def _run(self, by_intent: dict[str, list[Any]]) -> list[Any]:
        if self._sha is None:
            self._sha = str(await self._redis.script_load(_APPLY))
        stats, index, changes = self.key("stats:states"), self.key("intents"), self.key("changes")
        pipe = self._redis.pipeline(transaction=False)
        for intent_id, args in by_intent.items():
            pipe.evalsha(
                self._sha,
                5,
                self.key(f"intent:{intent_id}"),
                self.key(f"intent-seqs:{intent_id}"),
                stats,
                index,
                changes,
                intent_id,
                CHANGE_STREAM_MAXLEN,
                *args,
            )
        results: list[Any] = await pipe.execute()
        return results

    async def intent(self, intent_id: str) -> dict[str, str]:
        raw = await self._redis.hgetall(self.key(f"intent:{intent_id}"))
        return {str(k): str(v) for k, v in raw.items()}

    async def state_counts(self) -> dict[str, int]:
        raw = await self._redis.hgetall(self.key("stats:states"))
        return {str(state): int(n) for state, n in raw.items() if int(n)}

    async def intent_ids(self) -> list[str]:
        ids = await self._redis.zrange(self.key("intents"), 0, -1)
        return [str(i) for i in ids]
