"""``topology.yaml`` as data: pydantic models with ``extra="forbid"``, everything by name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.breakers.config import BreakersSpec
from pipeline.models.assets import Asset
from pipeline.topology.lanes import LanesSpec, expand


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")]
    partitions: Annotated[int, Field(ge=1, le=1024)]
    retention_ms: Annotated[int, Field(ge=-1)] = 7 * 24 * 3600 * 1000
    cleanup_policy: Literal["delete", "compact"] = "delete"
    """``compact`` keeps the latest record per key (market state); ``delete`` ages records out."""
    key: str
    """What the records are keyed by (documentation and co-partitioning checks)."""
    description: str = ""


class BatchSpec(Strict):
    """How many records a stage takes at once, and how long it waits to fill a batch.

    ``within_ms: 0`` takes whatever is queued when the stage is ready, without waiting for
    more: under load the queue fills while the previous batch is processed, so batches still
    grow, and at low rates no record waits for company.
    """

    max: Annotated[int, Field(ge=1, le=100_000)] = 500
    within_ms: Annotated[int, Field(ge=0, le=60_000)] = 5


class StageSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z_]+$")]
    function: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.]+:[A-Za-z0-9_]+$")]
    """``module:callable`` building the stage's processor (see ``pipeline.stages``)."""
    inputs: Annotated[tuple[str, ...], Field(min_length=1)]
    outputs: tuple[str, ...] = ()
    concurrency: Annotated[int, Field(ge=1, le=64)] = 1
    batch: BatchSpec = BatchSpec()
    niceness: Annotated[int, Field(ge=0, le=19)] = 0
    """How much lower the CPU priority (``os.nice``) of a process that runs only stages this
    nice or nicer is: the least niceness of its stages (``placement.process_niceness``).

    For a stage off the execution path (project: the event store and read models), in
    processes of its own (a layout, ``sep up --layout``): while the cores are short, the
    operating system runs the stages that plan and execute first, and the one behind catches
    up in larger, cheaper batches.  A process that also runs a stage of niceness 0 (the
    identical workers of the default layout) keeps the default priority."""
    singleton: bool = False
    """Run by exactly one process, which reads every partition of the stage's inputs.

    For a stage that must see every record (the strategy runner: every market update and
    every fill of its strategies' intents).  Workers running every stage leave it out; it
    runs in a worker of its own (``sep worker --stages <name>``, which ``sep up`` starts),
    in a consumer group of its own whose assignor hands every partition to one member:
    start a second one and it waits as a hot standby (``pipeline.runtime.delivery.singleton``).
    A singleton is never fused (it would drag its chain into one process)."""
    description: str = ""

    @property
    def events_topic(self) -> str:
        """Where the stage's events go: its first declared output (a stage that declares
        none, like project, has no events to write)."""
        if not self.outputs:
            raise ValueError(f"stage {self.name!r} declares no outputs")
        return self.outputs[0]


PositiveDecimal = Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[Decimal, Field(gt=0, le=1, allow_inf_nan=False)]


class StrategyLimits(Strict):
    """The per-strategy risk rules (``pipeline.risk``); a rule left out is not checked.

    ``risk.limits`` gives every strategy's, ``risk.strategies.<id>`` overrides some of them
    for one strategy, and the control topic (``risk.limits_changed``, ``sep risk limits
    set``) overrides both at run time.  Money is in ``risk.quote_asset``.
    """

    capital: PositiveDecimal | None = None
    """Equity the strategy was given: concentration and drawdown are shares of
    ``capital + realised + unrealised P&L``."""
    max_position: PositiveDecimal | None = None
    """Largest position in one asset (its absolute value at the mark price)."""
    max_concentration: Fraction | None = None
    """Largest share of the strategy's equity in one asset."""
    max_open_intents: Annotated[int, Field(ge=0)] | None = None
    """Intents accepted and not finished (completed, failed, expired or not plannable)."""
    max_daily_notional: PositiveDecimal | None = None
    """Traded today (UTC, fills) plus what open intents may still trade, plus the intent."""
    reduce_at_loss: PositiveDecimal | None = None
    """Loss since the breaker's epoch began (``pipeline.risk.breakers``) that moves the
    strategy to REDUCING."""
    halt_at_loss: PositiveDecimal | None = None
    """... and to HALTED."""
    reduce_at_drawdown: Fraction | None = None
    """Fall from the epoch's peak equity, as a share of it, that moves it to REDUCING."""
    halt_at_drawdown: Fraction | None = None


class BreakerLimits(Strict):
    """The global breaker: loss and drawdown of every strategy's equity together."""

    reduce_at_loss: PositiveDecimal | None = None
    halt_at_loss: PositiveDecimal | None = None
    reduce_at_drawdown: Fraction | None = None
    halt_at_drawdown: Fraction | None = None


class RiskLimits(Strict):
    max_notional: Annotated[Decimal, Field(gt=0)]
    """Largest intent, in units of ``quote_asset``."""
    max_slippage: Annotated[Decimal, Field(gt=0, le=1)]
    min_time_window_ms: Annotated[int, Field(ge=1)] = 1_000
    max_time_window_ms: Annotated[int, Field(ge=1)] = 24 * 3600 * 1000
    quote_asset: str = "USDC"
    reference_prices: dict[str, Decimal]
    """Price of one unit of each asset in ``quote_asset``, used for notional checks.

    Marks come from the market (``pipeline.risk.prices``: pool states); a reference price
    is used for an asset no pool prices, and for a stale mark when ``stale_prices`` says so.
    """
    price_max_age_ms: Annotated[int, Field(ge=1)] = 30_000
    """A market price read longer ago than this is stale (``stale_prices`` decides)."""
    stale_prices: Literal["reject", "reference"] = "reject"
    """A stale mark: ``reject`` refuses the intent (rule ``stale_price``), ``reference``
    values it at its reference price instead."""
    price_refresh_ms: Annotated[int, Field(ge=0)] = 200
    """Pool states are read at most this often for marks (a venue without a market feed is
    asked directly, like the planner does)."""
    evaluate_interval_ms: Annotated[int, Field(ge=50)] = 500
    """How often each worker marks the strategies to market for the breakers."""
    breaker_reset: Literal["manual", "utc_day"] = "utc_day"
    """When a tripped breaker goes back to NORMAL by itself: ``utc_day`` at the next UTC
    midnight (a new epoch, the day's equity as its baseline), ``manual`` only by
    ``sep risk reset`` / ``POST /risk/reset``."""
    limits: StrategyLimits = StrategyLimits()
    """Every strategy's rules."""
    strategies: dict[str, StrategyLimits] = Field(default_factory=dict)
    """Per strategy id: the rules that differ from ``limits``."""
    global_: Annotated[BreakerLimits, Field(alias="global")] = BreakerLimits()
    """The breaker over all strategies together."""


class PluginUse(Strict):
    enabled: bool = True
    config: dict[str, Any] = Field(default_factory=dict)
    """Validated by the plugin's own config model, with errors naming this YAML path."""
    plugin: Annotated[str, Field(min_length=1)] | None = None
    """What it is an instance of, when the key is not that name (strategies only: two
    ``dca`` strategies with their own ids, ``dca-weth: {plugin: dca, config: ...}``)."""

    def plugin_name(self, key: str) -> str:
        return self.plugin or key


class PluginsSpec(Strict):
    """What the pipeline uses of the installed plugins, each by the name its plugin
    registers (``sep plugins`` lists them)."""

    venues: dict[str, PluginUse] = Field(default_factory=dict)
    strategies: dict[str, PluginUse] = Field(default_factory=dict)
    risk_checks: dict[str, PluginUse] = Field(default_factory=dict)
    """Run by the validate stage after the built-in ``risk`` limits."""


Mode = Literal["live", "paper", "backtest"]
MODES: tuple[Mode, ...] = ("live", "paper", "backtest")
MODE_NOTES: dict[str, str] = {
    "live": " (venues as configured: a chain venue sends real transactions)",
    "paper": " (paper twins fill at live market data; nothing is sent)",
}
"""What each mode means, as ``sep up`` and ``sep status`` print it after its name."""


class AppSpec(Strict):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "sep"
    mode: Mode = "live"
    """``live``: every venue as configured (a chain venue signs and sends real
    transactions).  ``paper``: each live venue (``VenueSpec.live``) is replaced by a paper
    twin of the same name, the sim venue's fill model on that venue's pools as its market
    data publishes them; nothing is sent (docs/paper.md).  ``backtest``: set by
    ``sep backtest`` (``pipeline.backtest.setup``)."""


class TopologyReferenceError(ValueError):
    """Names in the topology that do not resolve. ``problems`` holds (yaml_path, message).

    Raised by ``Topology``'s validator, so pydantic reports it at the root; the loader
    unpacks ``problems`` to report each at its own path.
    """

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _duplicates(section: str, field: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """A problem at each repeat of a name, by index (the name no longer says which item)."""
    first: dict[str, int] = {}
    problems = []
    for i, name in enumerate(names):
        if name in first:
            problems.append(
                (
                    f"{section}[{i}].{field}",
                    f"{section[:-1]} {field}s must be unique: {name!r} is also "
                    f"{section}[{first[name]}]",
                )
            )
        else:
            first[name] = i
    return problems


def reference_problems(topology: Topology) -> list[tuple[str, str]]:
    """Every name that does not resolve or is used twice, each with its YAML path."""
    topic_names = [t.name for t in topology.topics]
    problems = _duplicates("topics", "name", topic_names)
    stage_names = [s.name for s in topology.stages]
    problems += _duplicates("stages", "name", stage_names)
    # Symbols are the router's and the plans' names for assets, so they must be unique
    # across chains too (USDC on Arbitrum needs its own symbol, e.g. USDC.arb).
    symbols = [a.symbol for a in topology.assets]
    problems += _duplicates("assets", "symbol", symbols)
    # A misspelt split topic is closest to the split topic's own name, not to a lane's.
    hint_names = topic_names + ([topology.lanes.split] if topology.lanes else [])
    for j, stage in enumerate(topology.stages):
        where = f"stages[{stage.name if stage_names.count(stage.name) == 1 else j}]"
        for field, refs in (("inputs", stage.inputs), ("outputs", stage.outputs)):
            for i, ref in enumerate(refs):
                if ref not in topic_names:
                    problems.append(
                        (
                            f"{where}.{field}[{i}]",
                            f"stage {stage.name!r} names unknown topic {ref!r}"
                            f"{_hint(ref, hint_names)}",
                        )
                    )
    problems += fusion_problems(topology)
    problems += singleton_problems(topology)
    problems += lanes_problems(topology)
    for section in ("venues", "risk_checks"):
        for name, use in getattr(topology.plugins, section).items():
            if use.plugin is not None:
                problems.append(
                    (
                        f"plugins.{section}.{name}.plugin",
                        "only strategies name their plugin (a venue or a risk check is "
                        "the name its plugin registers)",
                    )
                )
    venues = list(topology.plugins.venues)
    for venue in topology.breakers.venues:
        if venue not in venues:
            problems.append(
                (
                    f"breakers.venues.{venue}",
                    f"breakers.venues names unknown venue {venue!r}{_hint(venue, venues)}",
                )
            )
    for symbol in topology.risk.reference_prices:
        if symbol not in symbols:
            problems.append(
                (
                    f"risk.reference_prices.{symbol}",
                    f"risk.reference_prices names unknown asset {symbol!r}{_hint(symbol, symbols)}",
                )
            )
    problems += risk_problems(topology.risk)
    return problems


def risk_problems(risk: RiskLimits) -> list[tuple[str, str]]:
    """Rules that contradict each other once a strategy's overrides are applied (a REDUCING
    threshold must come before its HALTED one; drawdown and concentration need capital)."""
    problems: list[tuple[str, str]] = []
    scopes: list[tuple[str, BaseModel, BaseModel | None]] = [
        ("risk.limits", risk.limits, None),
        ("risk.global", risk.global_, None),
    ]
    scopes += [(f"risk.strategies.{s}", risk.limits, own) for s, own in risk.strategies.items()]
    for where, base, own in scopes:
        merged = {**base.model_dump(exclude_none=True)}
        if own is not None:
            merged.update(own.model_dump(exclude_none=True))
        for reduce, halt in (
            ("reduce_at_loss", "halt_at_loss"),
            ("reduce_at_drawdown", "halt_at_drawdown"),
        ):
            if reduce in merged and halt in merged and merged[reduce] >= merged[halt]:
                problems.append(
                    (
                        f"{where}.{reduce}",
                        f"{reduce} ({merged[reduce]}) must be below {halt} ({merged[halt]}): "
                        "REDUCING comes before HALTED",
                    )
                )
        if isinstance(base, StrategyLimits) and "capital" not in merged:
            for rule in ("max_concentration", "reduce_at_drawdown", "halt_at_drawdown"):
                if rule in merged:
                    problems.append((f"{where}.{rule}", f"{rule} needs a capital to be a share of"))
    return problems


def fusion_problems(topology: Topology) -> list[tuple[str, str]]:
    """A fused chain must name known stages, each once, each reading exactly one topic the
    previous one writes (it may read others from Kafka too), with equal partition counts
    (co-partitioned: the in-memory hand-over keeps every record on the partition number its
    topic copy gets)."""
    stages: dict[str, StageSpec] = {}
    for spec in topology.stages:
        stages.setdefault(spec.name, spec)  # a repeat is reported at its own path
    partitions = {t.name: t.partitions for t in topology.topics}
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, chain in enumerate(topology.fusion):
        where = f"fusion[{i}]"
        if len(chain) < 2:
            problems.append((where, "a fused chain needs at least two stages"))
            continue
        for j, name in enumerate(chain):
            if name not in stages:
                problems.append((f"{where}[{j}]", f"unknown stage {name!r}{_hint(name, stages)}"))
            elif name in seen:
                problems.append((f"{where}[{j}]", f"stage {name!r} is in two fused chains"))
            seen.add(name)
        for j in range(1, len(chain)):
            before, after = stages.get(chain[j - 1]), stages.get(chain[j])
            if before is None or after is None:
                continue
            handed = [t for t in after.inputs if t in before.outputs]
            if len(handed) != 1:
                problems.append(
                    (
                        f"{where}[{j}]",
                        f"{after.name!r} must read exactly one topic "
                        f"that {before.name!r} writes to be fused after it",
                    )
                )
                continue
            source = stages[chain[0]].inputs[0] if chain[0] in stages else handed[0]
            for topic in after.inputs:
                if source not in partitions or topic not in partitions:
                    continue  # an unknown topic is reported at the stage's own path
                if partitions[source] != partitions[topic]:
                    problems.append(
                        (
                            f"{where}[{j}]",
                            f"{source!r} and {topic!r} must have "
                            "the same partition count to be fused",
                        )
                    )
    return problems


def lanes_problems(topology: Topology) -> list[tuple[str, str]]:
    """The split and submit topics must be declared (their lane topics copy them);
    scheduled stages exist."""
    lanes = topology.lanes
    if lanes is None:
        return []
    topic_names = {t.name for t in topology.topics}
    problems = []
    if not all(t in topic_names for t in lanes.topics):
        problems.append(
            (
                "lanes.split",
                f"lanes split unknown topic {lanes.split!r}{_hint(lanes.split, topic_names)}",
            )
        )
    if lanes.submit is not None and not all(t in topic_names for t in lanes.submit_topics):
        problems.append(
            (
                "lanes.submit",
                f"lanes submit unknown topic {lanes.submit!r}{_hint(lanes.submit, topic_names)}",
            )
        )
    stage_names = [s.name for s in topology.stages]
    for i, name in enumerate(lanes.scheduled):
        if name not in stage_names:
            problems.append(
                (f"lanes.scheduled[{i}]", f"unknown stage {name!r}{_hint(name, stage_names)}")
            )
    return problems


def singleton_problems(topology: Topology) -> list[tuple[str, str]]:
    """A singleton stage is never fused (see ``StageSpec.singleton``)."""
    singles = {s.name for s in topology.stages if s.singleton}
    return [
        (f"fusion[{i}][{j}]", f"stage {name!r} is a singleton; it runs alone, never fused")
        for i, chain in enumerate(topology.fusion)
        for j, name in enumerate(chain)
        if name in singles
    ]


class PrioritySpec(Strict):
    """How the prioritise stage scores intents (``pipeline.priority``)."""

    scorer: Literal["model", "rule"] = "rule"
    """``model``: the ONNX priority model; ``rule``: the transparent weighted sum
    (``pipeline.stages.prioritise.score_intent``), also the fallback when no model is set."""
    model: Annotated[str, Field(min_length=1)] = "priority.onnx"
    """The model file: a path, or a name in ``pipeline/priority/models``."""
    min_time_left_ms: Annotated[int, Field(ge=0)] = 250
    """An intent with less of its window left than this when prioritised is expired there,
    with the reason, instead of being planned and sent too late (0: never)."""


class Topology(Strict):
    app: AppSpec = AppSpec()
    topics: Annotated[tuple[TopicSpec, ...], Field(min_length=1)]
    stages: Annotated[tuple[StageSpec, ...], Field(min_length=1)]
    assets: Annotated[tuple[Asset, ...], Field(min_length=1)]
    risk: RiskLimits
    plugins: PluginsSpec = PluginsSpec()
    breakers: BreakersSpec = BreakersSpec()
    """Venue circuit breakers' thresholds (``pipeline.breakers.config``)."""
    priority: PrioritySpec = PrioritySpec()
    fusion: tuple[tuple[str, ...], ...] = ()
    """Chains of neighbouring, co-keyed stages run as one pass in one worker (each writes
    its declared topics still; the next stage gets its records in memory).  See
    ``pipeline.runtime.delivery.groups``."""
    lanes: LanesSpec | None = None
    """Priority lanes: one topic split by lane (``pipeline.topology.lanes``); None: one
    topic, arrival order."""

    @model_validator(mode="before")
    @classmethod
    def _expand_lanes(cls, data: Any) -> Any:
        return expand(data)

    @model_validator(mode="after")
    def _references_resolve(self) -> Topology:
        problems = reference_problems(self)
        if problems:
            raise TopologyReferenceError(problems)
        return self

    def with_mode(self, mode: Mode) -> Topology:
        """This topology in ``mode`` (``sep up --mode``, ``SEP_MODE``): the rest unchanged."""
        if mode == self.app.mode:
            return self
        return self.model_copy(update={"app": self.app.model_copy(update={"mode": mode})})

    @property
    def singleton_stages(self) -> tuple[str, ...]:
        """The stages that run in a process of their own (``StageSpec.singleton``)."""
        return tuple(s.name for s in self.stages if s.singleton)

    def topic(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise KeyError(name)

    def stage(self, name: str) -> StageSpec:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def asset(self, symbol: str) -> Asset:
        for asset in self.assets:
            if asset.symbol == symbol:
                return asset
        raise KeyError(symbol)
