"""What every benchmark prints the same way: the machine it ran on, percentiles, and the shape
of a throughput and a latency figure (a module of helpers, not a benchmark: ``sep bench``
lists only modules whose name does not start with ``_``)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import NotRequired, TypedDict


async def pace(sent: int, rate: float | None, t0: float) -> None:
    """After the ``sent``-th record of a load generator: wait until it is due at ``rate``
    records/s from loop time ``t0``; flat out (``rate`` None), let the loop run now and then
    so the producer's sender gets to send."""
    if rate is not None:
        await asyncio.sleep(max(0.0, t0 + sent / rate - asyncio.get_running_loop().time()))
    elif sent % 1000 == 0:
        await asyncio.sleep(0)


@cache
def machine() -> str:
    """One line: cores, CPU model, OS and Python, e.g. ``2 cores, AMD EPYC 7B13, x86_64
    Linux 6.1.0, Python 3.11.7``.  Figures from different machines do not compare; this line
    says which machine a result came from."""
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:  # not Linux: platform.processor() is the best there is
        pass
    return (
        f"{os.cpu_count()} cores, {cpu}, {platform.machine()} {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def pct(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN for no values (printed as ``nan``, never
    a made-up 0)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Throughput(TypedDict):
    """Intents flat out: produced as fast as possible, timed from the first send until the
    last one finished."""

    intents: int
    seconds: float
    intents_per_s: float
    completed: int
    cpu_ms_per_intent: dict[str, float]
    """CPU milliseconds per intent by process group (see ``bench._cpu``)."""
    cpu_ms_per_intent_total: float
    """Sum over our own groups: every group but ``other`` (processes that are not this run's)."""
    cores_busy: float
    broker_jit_cores: NotRequired[float]
    """Of a core, what the broker's JIT compiler took during the run (``bench._cpu``): above
    ~0.05 the broker was still warming up."""
    outcomes: NotRequired[dict[str, int]]
    """The pipeline's: intents by terminal event (exec.completed, exec.failed, ...)."""


class Steady(TypedDict):
    """Latency at a steady rate: submit -> a stage's output, percentiles in milliseconds."""

    rate: float
    intents: int
    plan_p50_ms: float
    plan_p99_ms: float
    completed_p50_ms: float
    completed_p99_ms: float
    hops_ms: NotRequired[dict[str, dict[str, float]]]
    """The pipeline's: each hop between stages (``bench.pipeline.HOPS``), p50 and p99."""
    cpu_ms_per_intent: NotRequired[dict[str, float]]
    """The pipeline's: CPU by process group from the first send until every intent finished."""
    cpu_ms_per_intent_total: NotRequired[float]
    cores_busy: NotRequired[float]


def cpu_figures(
    seconds_by_group: dict[str, float], intents: int, window: float
) -> tuple[dict[str, float], float, float]:
    """CPU seconds by group over ``window`` wall seconds -> (ms per intent by group, ms per
    intent of ours, cores busy)."""
    per_intent = {group: round(s * 1000 / intents, 3) for group, s in seconds_by_group.items()}
    ours = sum(s for group, s in seconds_by_group.items() if group != "other")
    return per_intent, round(ours * 1000 / intents, 3), round(ours / window, 2)


def json_line(figures: dict[str, object]) -> str:
    """The closing JSON line: a figure that could not be measured is ``null``, not ``NaN``
    (which strict JSON parsers refuse)."""

    def clean(value: object) -> object:
        if isinstance(value, float) and value != value:  # NaN is the one value unequal to itself
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return json.dumps(clean(figures))
