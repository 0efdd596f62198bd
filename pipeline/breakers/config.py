"""The ``breakers:`` section of ``topology.yaml``: when a venue's circuit breaker opens.

    breakers:
      failures: 3            # consecutive counted failures one execute worker sees -> open
      cooldown_ms: 30000     # open this long, then half-open for probes
      probes: 1              # intents a half-open round lets through
      ignore_reasons: [slippage, expired, killed, price_limit]
      venues:                # per venue, any of the four fields above
        uniswap_v3: {failures: 5, cooldown_ms: 60000}

Which failures count: every ``exec.step_failed`` whose reason code (the text before the
first ``:``) is not in ``ignore_reasons``.  The defaults leave out what the intent, the
market or an operator caused rather than the venue: a price that moved past the intent's
slippage (on a chain that is a revert too, ``slippage``), a window that closed, a kill.
Everything else counts: refusals, reverts, timeouts (``receipt_timeout``) and a venue that
stayed unreachable through the retries (``unavailable``).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_IGNORED = ("slippage", "expired", "killed", "price_limit")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BreakerPolicy(_Strict):
    """The thresholds of one venue's breaker."""

    failures: Annotated[int, Field(ge=1, le=1000)] = 3
    cooldown_ms: Annotated[int, Field(ge=100, le=86_400_000)] = 30_000
    probes: Annotated[int, Field(ge=1, le=100)] = 1
    ignore_reasons: tuple[Annotated[str, Field(min_length=1)], ...] = DEFAULT_IGNORED

    def counts(self, reason: str) -> bool:
        """Whether a step failure with this ``exec.step_failed`` reason counts against it."""
        return reason_code(reason) not in self.ignore_reasons


class VenueOverride(_Strict):
    """A venue's own thresholds; what is left out comes from the section's defaults."""

    failures: Annotated[int, Field(ge=1, le=1000)] | None = None
    cooldown_ms: Annotated[int, Field(ge=100, le=86_400_000)] | None = None
    probes: Annotated[int, Field(ge=1, le=100)] | None = None
    ignore_reasons: tuple[Annotated[str, Field(min_length=1)], ...] | None = None


class BreakersSpec(BreakerPolicy):
    """``breakers:``: the defaults (the fields of ``BreakerPolicy``) and per-venue overrides."""

    enabled: bool = True
    """``false``: no breaker ever opens (failures are not counted, nothing is published)."""
    venues: dict[str, VenueOverride] = Field(default_factory=dict)

    def policy(self, venue: str) -> BreakerPolicy:
        base = BreakerPolicy(
            failures=self.failures,
            cooldown_ms=self.cooldown_ms,
            probes=self.probes,
            ignore_reasons=self.ignore_reasons,
        )
        override = self.venues.get(venue)
        if override is None:
            return base
        return base.model_copy(update=override.model_dump(exclude_none=True))


def reason_code(reason: str) -> str:
    """``"unavailable: connection refused"`` -> ``"unavailable"`` (execute writes a failed
    step's reason as ``code: detail``)."""
    return reason.partition(":")[0].strip()
