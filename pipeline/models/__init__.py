"""Wire models (pydantic v2): camelCase on the wire, Decimal money, JSON Schema exportable."""

from pipeline.models.assets import Asset, AssetSpec
from pipeline.models.events import (
    EVENT_TYPES,
    PAYLOAD_TYPES,
    Event,
    FieldError,
    make_event,
)
from pipeline.models.intent import (
    ExecutionStyle,
    Intent,
    IntentConstraints,
    IntentSubmission,
    IntentType,
)
from pipeline.models.market import PoolState
from pipeline.models.plan import ExecutionPlan, ExecutionStep, RouteLeg, StepKind, SwapMode

__all__ = [
    "EVENT_TYPES",
    "PAYLOAD_TYPES",
    "Asset",
    "AssetSpec",
    "Event",
    "ExecutionPlan",
    "ExecutionStep",
    "ExecutionStyle",
    "FieldError",
    "Intent",
    "IntentConstraints",
    "IntentSubmission",
    "IntentType",
    "PoolState",
    "RouteLeg",
    "StepKind",
    "SwapMode",
    "make_event",
]
