"""Hostile values for the UI's tests: what a careless or malicious producer can put in a field.

Every one is a string a person never meant to read in full: a 60 KB id, text that flips the
direction of what follows it, characters that take no space, NUL, emoji that are several code
points, and markup that would run if it were ever inserted as HTML.
"""

from __future__ import annotations

from pipeline.ids import new_ulid
from pipeline.models.events import Event, IntentRejected, make_event

INJECTED = "window.__pwned"
"""Set by any of the markup below if it ever runs."""

MARKUP = (
    f'"><img src=x onerror="{INJECTED}=1"><script>{INJECTED}=2</script>'
    f"<b onmouseover={INJECTED}=3>bold</b>"
)
RTL = "\u202eevil.exe\u202c \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u2067rtl\u2069"
ZERO_WIDTH = "a\u200bb\u200cc\u200dd\ufeffe\u2060f"
NUL = "nul\x00byte\x07bell\x1bescape"
EMOJI = "🚀👨‍👩‍👧‍👦🏳️‍🌈" * 40
HUGE = ("x" * 59_990) + "-the-end"  # 60 KB, no space to break on


def _rejected(intent_id: str, *, strategy: str, client: str, reason: str, at_ms: int) -> Event:
    payload = IntentRejected(reason=reason, strategy_id=strategy, client_intent_id=client)
    return make_event(
        "intent.rejected",
        payload,
        correlation_id=intent_id,
        seq=1,
        causation_id=None,
        at_ms=at_ms,
        id_ms=at_ms,
    )


def hostile_rejections(at_ms: int, *, storable: bool) -> list[Event]:
    """Rejections whose every user-supplied field is hostile.

    ``storable``: only what PostgreSQL accepts (no NUL in jsonb, no id too long for an index
    entry); otherwise also the ones a read model, binary-safe, would hold.
    """

    def intent_id() -> str:
        return f"intent-{new_ulid(at_ms)}"

    events = [
        _rejected(intent_id(), strategy=HUGE, client=RTL, reason=MARKUP, at_ms=at_ms),
        _rejected(intent_id(), strategy=MARKUP, client=ZERO_WIDTH, reason=EMOJI, at_ms=at_ms + 1),
        _rejected(
            intent_id(), strategy=RTL + EMOJI, client=MARKUP, reason=RTL * 200, at_ms=at_ms + 2
        ),
    ]
    if not storable:
        events += [
            _rejected(intent_id(), strategy=NUL, client=NUL, reason=NUL + MARKUP, at_ms=at_ms + 3),
            # the id itself: 60 KB, markup, RTL (the read model keys on it; PostgreSQL would not)
            _rejected(
                f"intent-{at_ms}-" + HUGE + RTL + MARKUP,
                strategy=ZERO_WIDTH,
                client=HUGE,
                reason=ZERO_WIDTH * 100,
                at_ms=at_ms + 4,
            ),
        ]
    return events
