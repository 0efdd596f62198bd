"""The faust tables each stage keeps, by stage name.

Declared here, not only where each stage builds its table, so that ``ensure_topics`` can
create their changelog topics before any worker starts: a changelog topic that faust creates
at start-up is subscribed to before the broker's metadata has it, and a worker's first
minute then went to waiting for it (table writes queued behind the missing topic, commits
with them).  Ingest keeps none: its dedupe keys live in Redis (``pipeline.store.dedupe``),
since a duplicate may arrive on any partition.
"""

from __future__ import annotations

VALIDATE_DECISIONS = "sep-validate-decisions"
PRIORITISE_DECISIONS = "sep-prioritise-decisions"
PLAN_DECISIONS = "sep-plan-decisions"
EXECUTE_OPENINGS = "sep-execute-openings"
STRATEGY_INTENTS = "sep-strategy-runner-intents"
STRATEGY_STATE = "sep-strategy-runner-state"

STAGE_TABLES: dict[str, tuple[str, ...]] = {
    "validate": (VALIDATE_DECISIONS,),
    "prioritise": (PRIORITISE_DECISIONS,),
    "plan": (PLAN_DECISIONS,),
    "execute": (EXECUTE_OPENINGS,),
    "strategy_runner": (STRATEGY_INTENTS, STRATEGY_STATE),
}


def changelog_topic(group: str, table: str) -> str:
    """The name faust gives ``table``'s changelog in consumer group (app id) ``group``."""
    return f"{group}-{table}-changelog"
