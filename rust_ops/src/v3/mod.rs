//! Exact Uniswap V3 concentrated-liquidity math: the contracts' integer arithmetic, ported
//! function by function so that a quote equals `QuoterV2`'s to the wei.
//!
//! - [`full_math`]: `FullMath.mulDiv` / `mulDivRoundingUp` (512-bit intermediate);
//! - [`tick_math`]: `TickMath`, ticks <-> Q64.96 square-root prices;
//! - [`sqrt_price_math`]: `SqrtPriceMath`, next price and amount deltas with the contracts'
//!   rounding (always in the pool's favour);
//! - [`swap_math`]: one step of a swap, `SwapMath.computeSwapStep`;
//! - [`pool`]: a validated [`V3Pool`] and the pool's swap loop (`UniswapV3Pool.swap`), exact
//!   input and exact output, both directions, crossing initialised ticks;
//! - [`error`]: the named errors.
//!
//! Units are the contracts': prices are `sqrtPriceX96 = sqrt(token1/token0) · 2^96` (within
//! `uint160`), liquidity is `uint128`, fees are hundredths of a basis point, amounts are
//! integer base units. `zero_for_one` means token0 in, token1 out (the price goes down).
//! Everything is carried in `ruint`'s `U256` where the contract uses `uint256`, so there is no
//! float anywhere on the result path.

pub mod error;
pub mod full_math;
pub mod pool;
pub mod sqrt_price_math;
pub mod swap_math;
#[cfg(test)]
mod tests;
pub mod tick_math;

pub use error::{V3PoolError, V3SwapError};
pub use pool::{SwapResult, V3Pool};
pub use tick_math::{
    sqrt_ratio_at_tick, tick_at_sqrt_ratio, MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK,
};
