//! Errors of the operators: small, named, each with a stable `code` and a message a person can
//! act on. The Python bindings map each family onto one exception class
//! (`PoolMathError`, `InvalidPoolError`, `RouteQueryError`, all under `RustOpsError`) and copy
//! the code onto the exception, so the pure-Python twin can raise the very same thing.

use thiserror::Error;

pub use crate::v3::error::{V3PoolError, V3SwapError};

/// Largest accepted `fee`, exclusive: fees are in hundredths of a basis point (1e6 = 100 %).
pub const FEE_DENOMINATOR: u32 = 1_000_000;

/// Pool arithmetic that cannot be carried out on the given numbers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PoolMathError {
    /// One of the reserves is zero: the pool has no price and cannot quote.
    #[error(
        "pool has a zero reserve (reserve_in={reserve_in}, reserve_out={reserve_out}) and \
         cannot quote"
    )]
    ZeroReserve {
        /// Reserve of the token going in.
        reserve_in: u128,
        /// Reserve of the token coming out.
        reserve_out: u128,
    },
    /// The fee is not below [`FEE_DENOMINATOR`].
    #[error("fee {fee} is outside 0..=999999 ({FEE_HINT})")]
    FeeOutOfRange {
        /// The rejected fee.
        fee: u128,
    },
    /// An exact-output quote asked for the whole reserve or more.
    #[error(
        "amount_out {amount_out} is not below reserve_out {reserve_out}: the pool cannot pay \
         it out"
    )]
    InsufficientLiquidity {
        /// The requested output.
        amount_out: u128,
        /// What the pool holds of the output token.
        reserve_out: u128,
    },
    /// The input needed for an exact-output quote does not fit in 128 bits.
    #[error(
        "the input needed for amount_out {amount_out} against reserve_out {reserve_out} \
         exceeds 2**128-1"
    )]
    InputOverflow {
        /// The requested output.
        amount_out: u128,
        /// What the pool holds of the output token.
        reserve_out: u128,
    },
    /// A value given from outside (Python) is not an unsigned 128-bit integer.
    #[error("{field} must be an int in {U128_RANGE}, got {value}")]
    ValueOutOfRange {
        /// Argument name.
        field: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

/// A pool definition that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidPoolError {
    /// The fee is not below [`FEE_DENOMINATOR`].
    #[error("pool '{pool_id}': fee {fee} is outside 0..=999999 ({FEE_HINT})")]
    FeeOutOfRange {
        /// The pool.
        pool_id: String,
        /// The rejected fee.
        fee: u128,
    },
    /// `token0` and `token1` are the same token.
    #[error("pool '{pool_id}': token0 and token1 are both '{token}'")]
    SameToken {
        /// The pool.
        pool_id: String,
        /// The token named twice.
        token: String,
    },
    /// A reserve or fee given from outside is not an unsigned 128-bit integer.
    #[error("pool '{pool_id}': {field} must be an int in {U128_RANGE}, got {value}")]
    ValueOutOfRange {
        /// The pool.
        pool_id: String,
        /// Field name.
        field: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

/// A route query that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RouteQueryError {
    /// `token_in` equals `token_out`.
    #[error("token_in and token_out are both '{token}'; nothing to route")]
    SameToken {
        /// The token named twice.
        token: String,
    },
    /// The amount to spend or to receive is zero.
    #[error("{field} must be positive, got 0")]
    ZeroAmount {
        /// `"amount_in"` or `"amount_out"`.
        field: &'static str,
    },
    /// `max_hops` is outside `1..=MAX_HOPS`.
    #[error("max_hops must be in 1..={}, got {value}", crate::graph::MAX_HOPS)]
    MaxHopsOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// `max_splits` is outside `1..=MAX_SPLITS` ([`crate::graph::MAX_SPLITS`]).
    #[error("max_splits must be in 1..={}, got {value}", crate::graph::MAX_SPLITS)]
    MaxSplitsOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// The amount given from outside is not an unsigned 128-bit integer.
    #[error("{field} must be an int in {U128_RANGE}, got {value}")]
    ValueOutOfRange {
        /// Argument name.
        field: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpsError {
    /// See [`PoolMathError`].
    #[error(transparent)]
    PoolMath(#[from] PoolMathError),
    /// See [`InvalidPoolError`].
    #[error(transparent)]
    InvalidPool(#[from] InvalidPoolError),
    /// See [`RouteQueryError`].
    #[error(transparent)]
    RouteQuery(#[from] RouteQueryError),
    /// See [`V3PoolError`].
    #[error(transparent)]
    V3Pool(#[from] V3PoolError),
    /// See [`V3SwapError`].
    #[error(transparent)]
    V3Swap(#[from] V3SwapError),
}

const U128_RANGE: &str = "0..=2**128-1";
const FEE_HINT: &str = "hundredths of a basis point: 3000 = 0.30 %";

impl PoolMathError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ZeroReserve { .. } => "zero_reserve",
            Self::FeeOutOfRange { .. } => "fee_out_of_range",
            Self::InsufficientLiquidity { .. } => "insufficient_liquidity",
            Self::InputOverflow { .. } => "input_overflow",
            Self::ValueOutOfRange { .. } => "out_of_range",
        }
    }
}

impl InvalidPoolError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::FeeOutOfRange { .. } => "fee_out_of_range",
            Self::SameToken { .. } => "same_token",
            Self::ValueOutOfRange { .. } => "out_of_range",
        }
    }

    /// The pool the error is about.
    #[must_use]
    pub fn pool_id(&self) -> &str {
        match self {
            Self::FeeOutOfRange { pool_id, .. }
            | Self::SameToken { pool_id, .. }
            | Self::ValueOutOfRange { pool_id, .. } => pool_id,
        }
    }
}

impl RouteQueryError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::SameToken { .. } => "same_token",
            Self::ZeroAmount { .. } => "zero_amount",
            Self::MaxHopsOutOfRange { .. } => "max_hops_out_of_range",
            Self::MaxSplitsOutOfRange { .. } => "max_splits_out_of_range",
            Self::ValueOutOfRange { .. } => "out_of_range",
        }
    }
}
