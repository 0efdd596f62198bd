"""Rust operators for the hot numeric work: exact pool math and best-route search.

Uniswap V3 pools: ``V3Pool`` (exact concentrated-liquidity math, tick crossing included),
``v3_amount_out``/``v3_amount_in``; ``pipeline.ops.v3.v3_pool`` builds one from a ``PoolState``.

Route graph: ``RouteGraph`` (tokens as nodes, constant-product and V3 pools as edges, updated in
place; ``best_route``/``best_route_exact_out`` over multi-hop paths, split across pool-disjoint
paths when that pays after gas) -> ``GraphRoute``/``GraphPath``/``GraphLeg``;
``pipeline.ops.graph`` builds one from ``PoolState``s; twin in ``pipeline.ops.twin.graph``.

Order books: ``Book`` (one venue's L2 book), ``aggregate_books`` (-> ``ConsolidatedBook``),
``sweep`` (-> ``Sweep``), ``water_fill`` (-> ``WaterFill``: one order over a book and a pool
curve, by marginal price); twin in ``pipeline.ops.twin.books``.

Kafka's default partitioner: ``kafka_partition(key, partitions)`` (murmur2), where the runtime
places records itself; twin in ``pipeline.ops.twin.partition`` (aiokafka's own hash).

A Kafka ``FetchResponse`` v11 body parsed in one pass, its empty partitions left out:
``decode_fetch_v11(data, keep_empty=False)`` (``runtime/delivery/patches.py`` makes it
aiokafka's decoder); twin in ``pipeline.ops.twin.fetch`` (aiokafka's own parse, filtered).

Import them from here; the compiled module ``pipeline._rust_ops`` is private and documented by
``pipeline/_rust_ops.pyi``. There is no silent fallback to Python: without the built extension
this import fails, naming the command that builds it. ``pipeline.ops.twin`` holds a pure-Python
twin of every operator for the tests and benchmarks only.
"""

try:
    from pipeline._rust_ops import (
        FEE_DENOMINATOR,
        GAS_BASE,
        GAS_CP_HOP,
        GAS_V3_HOP,
        GAS_V3_TICK,
        MAX_HOPS,
        MAX_SPLITS,
        MAX_SQRT_RATIO,
        MAX_TICK,
        MIN_SQRT_RATIO,
        MIN_TICK,
        Book,
        ConsolidatedBook,
        GraphLeg,
        GraphPath,
        GraphRoute,
        InvalidBookError,
        InvalidPoolError,
        InvalidV3PoolError,
        Pool,
        PoolMathError,
        RouteGraph,
        RouteQueryError,
        RustOpsError,
        Sweep,
        SweepError,
        V3Pool,
        V3SwapResult,
        WaterFill,
        aggregate_books,
        amount_in,
        amount_out,
        decode_fetch_v11,
        kafka_partition,
        sqrt_ratio_at_tick,
        sweep,
        tick_at_sqrt_ratio,
        v3_amount_in,
        v3_amount_out,
        water_fill,
    )
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        f"pipeline._rust_ops is missing or stale ({exc}); build it with `pip install -e .` "
        "or `maturin develop --release` in the repository root"
    ) from exc

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
