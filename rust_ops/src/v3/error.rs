//! Errors of the V3 math: small, named, each with a stable `code` (as `crate::error`).
//!
//! [`V3PoolError`] is raised in Python as `InvalidV3PoolError`, [`V3SwapError`] as
//! `PoolMathError`, each with `code` copied onto the exception.

use thiserror::Error;

/// A Uniswap V3 pool state that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum V3PoolError {
    /// A value given from outside (Python) does not fit its Solidity type.
    #[error("V3 pool: {field} must be an int in {range}, got {value}")]
    ValueOutOfRange {
        /// Field name (`"ticks[3].liquidity_net"` for a tick's).
        field: String,
        /// The accepted range.
        range: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// `fee` is not below 1_000_000.
    #[error(
        "V3 pool: fee {fee} is outside 0..=999999 (hundredths of a basis point: \
             3000 = 0.30 %)"
    )]
    FeeOutOfRange {
        /// The rejected fee.
        fee: u32,
    },
    /// `tick_spacing` is outside `1..=16383` (the factory's bounds).
    #[error("V3 pool: tick_spacing {tick_spacing} is outside 1..=16383")]
    TickSpacingOutOfRange {
        /// The rejected spacing.
        tick_spacing: i32,
    },
    /// `sqrt_price_x96` is outside `MIN_SQRT_RATIO..MAX_SQRT_RATIO`.
    #[error(
        "V3 pool: sqrt_price_x96 {sqrt_price_x96} is outside MIN_SQRT_RATIO..MAX_SQRT_RATIO \
         (4295128739..1461446703485210103287273052203988822378723970342)"
    )]
    SqrtPriceOutOfRange {
        /// The price (decimal).
        sqrt_price_x96: String,
    },
    /// `tick` is not the tick of `sqrt_price_x96` (nor the one below, which the pool reports
    /// right after crossing a tick downwards).
    #[error(
        "V3 pool: tick {tick} does not match sqrt_price_x96, whose tick is {expected}; read \
         slot0's tick and price together"
    )]
    TickMismatch {
        /// The given tick.
        tick: i32,
        /// `tick_at_sqrt_ratio(sqrt_price_x96)`.
        expected: i32,
    },
    /// An initialised tick is outside `MIN_TICK..=MAX_TICK` or not a multiple of the spacing.
    #[error(
        "V3 pool: ticks[{index}] = {tick} is not a multiple of tick_spacing {tick_spacing} in \
         -887272..=887272"
    )]
    TickNotUsable {
        /// Its index in `ticks`.
        index: usize,
        /// The tick.
        tick: i32,
        /// The pool's spacing.
        tick_spacing: i32,
    },
    /// `ticks` is not strictly increasing.
    #[error(
        "V3 pool: ticks[{index}] = {tick} is not above the tick before it; give the initialised \
         ticks once each, sorted"
    )]
    TicksNotSorted {
        /// Index of the first tick not above its predecessor.
        index: usize,
        /// That tick.
        tick: i32,
    },
    /// The `liquidity_net` values do not describe positions: a running sum leaves
    /// `0..=2**128-1`, or they do not sum to zero.
    #[error(
        "V3 pool: liquidity_net values are inconsistent at tick {tick} (the running sum must \
         stay in 0..=2**128-1 and end at 0); some initialised ticks are missing"
    )]
    LiquidityNetInconsistent {
        /// The tick where it shows (the last one for a nonzero total).
        tick: i32,
    },
    /// `liquidity` differs from the sum of `liquidity_net` of the ticks at or below `tick`.
    #[error(
        "V3 pool: liquidity {liquidity} differs from {expected}, the sum of liquidity_net at or \
         below the current tick; read them at the same block"
    )]
    LiquidityMismatch {
        /// The given liquidity.
        liquidity: u128,
        /// What the ticks say.
        expected: u128,
    },
}

/// A V3 swap that cannot be quoted as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum V3SwapError {
    /// An amount or price limit does not fit its Solidity type.
    #[error("{field} must be an int in {range}, got {value}")]
    ValueOutOfRange {
        /// Argument name.
        field: &'static str,
        /// The accepted range.
        range: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// The price limit is on the wrong side of the price or beyond the bounds (`SPL`).
    #[error(
        "sqrt_price_limit_x96 {limit} must be {} ({sqrt_price_x96}) for zero_for_one={}",
        limit_side(*.zero_for_one),
        if *.zero_for_one { "True" } else { "False" }
    )]
    PriceLimit {
        /// The limit (decimal).
        limit: String,
        /// The pool's price (decimal).
        sqrt_price_x96: String,
        /// The direction asked.
        zero_for_one: bool,
    },
    /// The pool has no tick data and the swap would leave the ticks `[lower, upper)` around
    /// the price, where its liquidity is known to be constant.
    #[error(
        "the swap leaves ticks [{tick_lower}, {tick_upper}), the only range where the pool's \
         liquidity is known without tick data; give the pool its initialised ticks"
    )]
    RangeExceeded {
        /// Lowest tick of the known range.
        tick_lower: i32,
        /// Tick just above the known range.
        tick_upper: i32,
    },
    /// The pool's liquidity runs out (the price reaches its limit) before the whole amount is
    /// swapped.
    #[error(
        "the pool's liquidity runs out: {field} {requested} asked, only {filled} can be swapped"
    )]
    InsufficientLiquidity {
        /// `"amount_in"` or `"amount_out"`.
        field: &'static str,
        /// The amount asked (decimal).
        requested: String,
        /// What the pool can swap (decimal).
        filled: String,
    },
    /// An intermediate exceeds its Solidity type, where the contract would revert.
    #[error("{what} overflows (the pool would revert)")]
    Overflow {
        /// The operation.
        what: &'static str,
    },
}

impl V3PoolError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ValueOutOfRange { .. } => "out_of_range",
            Self::FeeOutOfRange { .. } => "fee_out_of_range",
            Self::TickSpacingOutOfRange { .. } => "tick_spacing_out_of_range",
            Self::SqrtPriceOutOfRange { .. } => "sqrt_price_out_of_range",
            Self::TickMismatch { .. } => "tick_mismatch",
            Self::TickNotUsable { .. } => "tick_not_usable",
            Self::TicksNotSorted { .. } => "ticks_not_sorted",
            Self::LiquidityNetInconsistent { .. } => "liquidity_net_inconsistent",
            Self::LiquidityMismatch { .. } => "liquidity_mismatch",
        }
    }
}

impl V3SwapError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ValueOutOfRange { .. } => "out_of_range",
            Self::PriceLimit { .. } => "price_limit",
            Self::RangeExceeded { .. } => "range_exceeded",
            Self::InsufficientLiquidity { .. } => "insufficient_liquidity",
            Self::Overflow { .. } => "overflow",
        }
    }
}

/// Where a price limit must lie for the direction (the message of [`V3SwapError::PriceLimit`]).
fn limit_side(zero_for_one: bool) -> &'static str {
    if zero_for_one {
        "below the price and above MIN_SQRT_RATIO"
    } else {
        "above the price and below MAX_SQRT_RATIO"
    }
}
