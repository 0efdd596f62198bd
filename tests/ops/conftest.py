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


@pytest.fixture(params=list(IMPLS), scope="session")
def ops(request: pytest.FixtureRequest) -> ModuleType:
    """The implementation under test."""
    return IMPLS[request.param]


def outcome(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a call does: its result, or the error's class name, code, message, pool id."""
    try:
        return ("ok", call())
    except rust_ops.RustOpsError as exc:
        return ("error", type(exc).__name__, exc.code, str(exc), getattr(exc, "pool_id", None))
    except TypeError:
        return ("TypeError",)


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
