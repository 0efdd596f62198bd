"""Pure-Python twin of every Rust operator: same names, same fields, same results.

Used only by the tests (which hold both implementations to identical results, errors and reprs
included) and by the benchmarks (which report the Rust speed-up as a ratio). The runtime never
imports it: ``pipeline.ops`` has no Python fallback.

The modules mirror ``rust_ops/src``, one for one; read the Rust module for the why:

========================  ==============================================================
``twin.error``            ``error.rs``: the fee unit, the named errors and their codes
``twin.cp_math``          ``cp_math.rs``: exact constant-product math
``twin.pool``             ``pool.rs``: a validated constant-product ``Pool``
``twin.v3``               ``v3/``: exact Uniswap V3 math, ``V3Pool``
``twin.graph``            ``graph/``: ``RouteGraph`` (``graph.model``: its data,
                          ``graph.search``: ``search/``)
``twin.books``            ``books/``: order books, their aggregation, sweeps
``twin.partition``        ``partition.rs``: Kafka's default partitioner
``twin.fetch``            ``fetch.rs``: a Kafka fetch response parsed, empty partitions left out
``twin.convert``          ``python/convert.rs``: what the bindings accept
========================  ==============================================================

The twin raises the compiled module's own exception classes, so ``except PoolMathError``
catches either implementation.
"""

from pipeline._rust_ops import InvalidPoolError, PoolMathError, RouteQueryError, RustOpsError
from pipeline.ops.twin.books import (
    Book,
    ConsolidatedBook,
    InvalidBookError,
    Sweep,
    SweepError,
    WaterFill,
    aggregate_books,
    sweep,
    water_fill,
)
from pipeline.ops.twin.cp_math import amount_in, amount_out
from pipeline.ops.twin.error import FEE_DENOMINATOR
from pipeline.ops.twin.fetch import decode_fetch_v11
from pipeline.ops.twin.graph import (
    GAS_BASE,
    GAS_CP_HOP,
    GAS_V3_HOP,
    GAS_V3_TICK,
    MAX_HOPS,
    MAX_SPLITS,
    GraphLeg,
    GraphPath,
    GraphRoute,
    RouteGraph,
)
from pipeline.ops.twin.partition import kafka_partition
from pipeline.ops.twin.pool import Pool
from pipeline.ops.twin.v3 import (
    MAX_SQRT_RATIO,
    MAX_TICK,
    MIN_SQRT_RATIO,
    MIN_TICK,
    InvalidV3PoolError,
    V3Pool,
    V3SwapResult,
    sqrt_ratio_at_tick,
    tick_at_sqrt_ratio,
    v3_amount_in,
    v3_amount_out,
)

__all__ = [
    "FEE_DENOMINATOR",
    "GAS_BASE",
    "GAS_CP_HOP",
    "GAS_V3_HOP",
    "GAS_V3_TICK",
    "MAX_HOPS",
    "MAX_SPLITS",
    "MAX_SQRT_RATIO",
    "MAX_TICK",
    "MIN_SQRT_RATIO",
    "MIN_TICK",
    "Book",
    "ConsolidatedBook",
    "GraphLeg",
    "GraphPath",
    "GraphRoute",
    "InvalidBookError",
    "InvalidPoolError",
    "InvalidV3PoolError",
    "Pool",
    "PoolMathError",
    "RouteGraph",
    "RouteQueryError",
    "RustOpsError",
    "Sweep",
    "SweepError",
    "V3Pool",
    "V3SwapResult",
    "WaterFill",
    "aggregate_books",
    "amount_in",
    "amount_out",
    "decode_fetch_v11",
    "kafka_partition",
    "sqrt_ratio_at_tick",
    "sweep",
    "tick_at_sqrt_ratio",
    "v3_amount_in",
    "v3_amount_out",
    "water_fill",
]
