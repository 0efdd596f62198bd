"""Shared fixtures for the operator tests: both implementations, and a way to compare them.

Every behavioural test takes ``ops`` and runs twice, against the compiled operators
(``pipeline.ops``, id ``rust``) and against the pure-Python twin (``pipeline.ops.twin``, id
``python``). Agreement tests call both directly and compare :func:`outcome` values.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

import pipeline.ops as rust_ops
from pipeline.ops import twin

IMPLS: dict[str, ModuleType] = {"rust": rust_ops, "python": twin}

ROUTE_FIELDS = (
    "legs",
    "amount_in",
    "amount_out",
    "mid_price_num",
    "mid_price_den",
    "price_impact_ppm",
)
LEG_FIELDS = ("pool_id", "venue", "token_in", "token_out", "amount_in", "amount_out")


@pytest.fixture(params=list(IMPLS), scope="session")
def ops(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test."""
    return IMPLS[request.param]


def _plain(value: Any) -> Any:
    """A route (or leg, or int, or None) as nested tuples, comparable across implementations."""
    if hasattr(value, "price_impact_ppm"):
        return tuple(
            tuple(_plain(leg) for leg in value.legs) if f == "legs" else getattr(value, f)
            for f in ROUTE_FIELDS
        )
    if hasattr(value, "token_in"):
        return tuple(getattr(value, f) for f in LEG_FIELDS)
    return value


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call does: its plain result, or the error's class name, code, message, pool id."""
    try:
        return ("ok", _plain(call()))
    except rust_ops.RustOpsError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc), getattr(exc, "pool_id", None))
    except TypeError:
        return ("TypeError",)


@pytest.fixture(scope="session")
def plain() -> Callable[[Any], Any]:
    """Routes and legs as nested tuples of their fields, comparable across implementations."""
    return _plain


@pytest.fixture(scope="session")
def compare() -> Callable[[Callable[[ModuleType], Any]], tuple[Any, ...]]:
    """``compare(lambda m: m.amount_out(...))`` asserts both implementations agree; returns
    the common outcome."""

    def run(call: Callable[[ModuleType], Any]) -> tuple[Any, ...]:
        rust = outcome(lambda: call(rust_ops))
        python = outcome(lambda: call(twin))
        assert rust == python
        return rust

    return run
