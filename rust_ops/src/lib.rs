//! Hot numeric operators of the Strategy Execution Platform, exposed to Python as
//! `pipeline._rust_ops` (re-exported by `pipeline.ops`).
//!
//! Plain Rust logic lives in the top-level modules and knows nothing of Python:
//!
//! - [`books`]: per-venue L2 order books, their aggregation into a consolidated book, sweeps
//!   with per-venue fees;
//! - [`cp_math`]: exact constant-product pool math in integer base units;
//! - [`pool`]: a validated constant-product [`pool::Pool`];
//! - [`error`]: the named errors, each with a stable code;
//! - [`fetch`]: Kafka's `FetchResponse` v11 parsed in one pass, empty partitions left out;
//! - [`graph`]: a live [`graph::RouteGraph`] of constant-product and V3 pools, incremental
//!   updates, multi-hop best routes split across pool-disjoint paths, gas-aware;
//! - [`muldiv`]: 128-bit `a·b/d` with a 256-bit intermediate, the hot path of the math;
//! - [`partition`]: Kafka's default partitioner (`murmur2`), to place records as producers do;
//! - [`v3`]: exact Uniswap V3 concentrated-liquidity math (tick math, swap steps, the pool's
//!   swap loop with tick crossing), equal to the contracts to the wei.
//!
//! `python` (feature `python`) holds the `PyO3` bindings only. Every operator has a pure-Python
//! twin in `pipeline/ops/twin/`, module for module, that the tests hold to identical results.
#![deny(unsafe_code)]

pub mod books;
pub mod cp_math;
pub mod error;
pub mod fetch;
pub mod graph;
pub mod muldiv;
pub mod partition;
pub mod pool;
#[cfg(feature = "python")]
pub mod python;
pub mod v3;
