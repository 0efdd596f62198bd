"""Loading plugins: the built-ins first, then the installed ``sep`` entry points, then
``check_pending`` -- each entry point on its own, so one that fails does not stop the rest.

A plugin *fails to load* when importing it raises, when it implements a hook no spec declares
(a misspelt ``sep_register_venuez``), or when one of its register hooks raises or registers
something else than its spec (each hook is called once here, a dry run).  It is then left out
and recorded in ``SepPluginManager.failures`` with its entry point and distribution: ``sep
plugins`` shows it, the worker logs it, and a topology that names something only it could
provide fails to start with it in the message (``pipeline.plugins.manager``).  A built-in
that fails to load is a bug of ours and raises.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from dataclasses import dataclass
from typing import Any, TypeVar

import pluggy

from pipeline.config import Settings
from pipeline.plugins import hookspecs
from pipeline.plugins.market import MarketSourceSpec
from pipeline.plugins.risk import RiskCheckSpec
from pipeline.plugins.strategy import StrategySpec
from pipeline.plugins.venue import VenueSpec

log = logging.getLogger(__name__)

BUILTIN_PLUGINS: tuple[str, ...] = (
    "plugins.sim_venue",
    "plugins.uniswap_v3",
    "plugins.clob_venue",
    "plugins.strategies.dca",
    "plugins.strategies.momentum",
)
"""Built-in plugins are ordinary plugins, registered through the same manager, first."""

DISTRIBUTION = "strategy-execution-platform"
"""The distribution the built-ins ship in (``[project] name`` in ``pyproject.toml``)."""

T = TypeVar("T")

SPEC_TYPES: dict[str, type[Any]] = {
    "sep_register_venues": VenueSpec,
    "sep_register_strategies": StrategySpec,
    "sep_register_risk_checks": RiskCheckSpec,
    "sep_register_market_sources": MarketSourceSpec,
}
"""Each register hook and the spec its ``register`` takes."""


class PluginError(Exception):
    """A plugin misbehaved (two plugins registering one name, a spec of the wrong type...)."""


@dataclass(frozen=True)
class Origin:
    """Where a plugin came from: its distribution and, unless built in, its entry point."""

    distribution: str | None
    version: str | None
    entry_point: str | None = None
    """``name = module`` as declared in the distribution's ``sep`` entry-point group."""

    def __str__(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "unknown"
        return f"{dist}, entry point {self.entry_point}" if self.entry_point else dist


@dataclass(frozen=True)
class LoadFailure:
    name: str
    """The entry point's name (what the plugin would have been registered as)."""
    origin: Origin
    error: str

    def __str__(self) -> str:
        return f"plugin {self.name!r} ({self.origin}) failed to load: {self.error}"


class SepPluginManager(pluggy.PluginManager):
    """pluggy's manager with the ``sep`` hookspecs, each plugin's origin, and the entry
    points that failed to load."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, Origin] = {}
        self.failures: list[LoadFailure] = []

    def load_entry_points(self, group: str = hookspecs.PROJECT) -> int:
        """Register every plugin of the installed entry-point ``group`` that loads; record
        the others.  Like pluggy's ``load_setuptools_entrypoints``, but one plugin's failure
        does not abort the rest.  Returns how many were registered."""
        loaded = 0
        for dist in importlib.metadata.distributions():
            for ep in dist.entry_points:
                if ep.group != group or self.get_plugin(ep.name) or self.is_blocked(ep.name):
                    continue
                origin = Origin(dist.metadata["name"], dist.version, f"{ep.name} = {ep.value}")
                try:
                    self.register(ep.load(), name=ep.name)
                except Exception as exc:
                    self.failures.append(LoadFailure(ep.name, origin, _describe(exc)))
                    continue
                try:
                    self.check_pending()  # the plugins before passed: a failure is this one's
                    dry_run(self, ep.name)
                except Exception as exc:
                    self.unregister(name=ep.name)
                    self.failures.append(LoadFailure(ep.name, origin, _describe(exc)))
                    continue
                self.origins[ep.name] = origin
                loaded += 1
        return loaded


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def dry_run(pm: pluggy.PluginManager, plugin_name: str) -> None:
    """Call each register hook of one plugin and check what it registers."""
    for hook, spec_type in SPEC_TYPES.items():
        for impl in getattr(pm.hook, hook).get_hookimpls():
            if impl.plugin_name == plugin_name:
                registered(impl, spec_type)


def registered(impl: pluggy.HookImpl, spec_type: type[T]) -> list[T]:
    """What one plugin's implementation of a register hook registers, type-checked."""
    collected: list[object] = []
    impl.function(register=collected.append)
    specs: list[T] = []
    for spec in collected:
        if not isinstance(spec, spec_type):
            raise PluginError(
                f"plugin {impl.plugin_name!r}: {impl.function.__name__} registered {spec!r}, "
                f"not a {spec_type.__name__}"
            )
        specs.append(spec)
    return specs


def builtin_origin() -> Origin:
    try:
        return Origin(DISTRIBUTION, importlib.metadata.version(DISTRIBUTION))
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        return Origin(None, None)


def make_plugin_manager(*, load_entrypoints: bool | None = None) -> SepPluginManager:
    """A manager with the built-ins and (outside pytest) the installed ``sep`` entry points.

    Under pytest installed plugins are not loaded, so tests stay hermetic (STYLE rule 4);
    ``SEP_NO_PLUGINS=1`` leaves them out elsewhere.
    """
    pm = SepPluginManager()
    origin = builtin_origin()
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
        pm.origins[name] = origin
    pm.check_pending()  # a built-in's misspelt hook fails loudly, never blamed on another
    if load_entrypoints is None:
        load_entrypoints = "pytest" not in sys.modules and Settings().load_plugins
    if load_entrypoints:
        pm.load_entry_points()
    pm.check_pending()
    for failure in pm.failures:
        log.warning("%s", failure, extra={"plugin": failure.name})
    return pm
