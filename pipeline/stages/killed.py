"""What each stage does while a kill switch covers an intent (``control.killed``).

    validate    a new intent of a killed scope   -> risk.rejected  rule "killed"
    plan        an intent not planned yet        -> plan.rejected  reason "killed"
    execute     a step not sent yet              -> exec.step_failed reason "killed: ...",
                                                    exec.failed "step k failed: killed"
                a step already sent              -> left to land; reported as usual

A kill covers a strategy when the global switch or the strategy's own is engaged
(``ControlView.killed``).  Each stage reads its worker's copy of the control topic, so the
switch is in force everywhere within the control feed's delay (docs/kill_switch.md).  The
words of every refusal name the scope, who engaged it and why.
"""

from __future__ import annotations

from pipeline.control.state import ControlView
from pipeline.models.control import KillSwitchChanged
from pipeline.models.events import Event, IntentSubmitted, PlanRejected, RiskRejected, make_event
from pipeline.models.intent import Intent
from pipeline.plugins.venue import StepRejected
from pipeline.stages.base import Output

KILLED = "killed"
"""The rule (validate), reason (plan) and reason code (execute) of a refusal by a kill."""


def kill_of(control: ControlView | None, intent: Intent) -> KillSwitchChanged | None:
    """The engaged kill switch covering the intent's strategy, if any."""
    return None if control is None else control.killed(intent.strategy_id)


def words(kill: KillSwitchChanged) -> str:
    return f"kill switch {kill.scope} engaged by {kill.actor}: {kill.reason}"


def refuse_killed(
    event: Event, control: ControlView | None, topic: str, now_ms: int
) -> list[Output]:
    """Validate's check: ``risk.rejected`` (rule ``killed``) for an intent of a killed scope;
    ``[]`` when no kill covers it (validation goes on)."""
    if control is None or not control.any_killed():
        return []  # no switch engaged anywhere: none covers this intent
    intent = event.payload_as(IntentSubmitted).intent
    kill = kill_of(control, intent)
    if kill is None:
        return []
    rejected = make_event(
        "risk.rejected",
        RiskRejected(rule=KILLED, message=words(kill), limit="trading", actual=kill.scope),
        correlation_id=intent.id,
        seq=event.seq + 1,
        causation_id=event.event_id,
        at_ms=now_ms,
        id_ms=intent.created_at_ms or now_ms,
    )
    return [Output.of_event(topic, rejected)]


def killed_plan(control: ControlView | None, intent: Intent) -> PlanRejected | None:
    """Plan's check: no new plan for an intent of a killed scope."""
    kill = kill_of(control, intent)
    return None if kill is None else PlanRejected(reason=KILLED, detail=words(kill))


def killed_step(control: ControlView | None, intent: Intent, venue: str) -> StepRejected | None:
    """Execute's check, made just before a step would be sent."""
    kill = kill_of(control, intent)
    return None if kill is None else StepRejected(venue, KILLED, words(kill))
