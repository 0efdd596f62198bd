//! Errors of the operators: small, named, each with a stable `code` and a message a person can
//! act on. The Python bindings map each family onto one exception class
//! (`PoolMathError`, `InvalidPoolError`, `RouteQueryError`, all under `RustOpsError`) and copy
//! the code onto the exception, so the pure-Python twin can raise the very same thing.

use std::fmt;

pub use crate::v3::error::{V3PoolError, V3SwapError};

/// Largest accepted `fee`, exclusive: fees are in hundredths of a basis point (1e6 = 100 %).
pub const FEE_DENOMINATOR: u32 = 1_000_000;

/// Pool arithmetic that cannot be carried out on the given numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolMathError {
    /// One of the reserves is zero: the pool has no price and cannot quote.
    ZeroReserve {
        /// Reserve of the token going in.
        reserve_in: u128,
        /// Reserve of the token coming out.
        reserve_out: u128,
    },
    /// The fee is not below [`FEE_DENOMINATOR`].
    FeeOutOfRange {
        /// The rejected fee.
        fee: u128,
    },
    /// An exact-output quote asked for the whole reserve or more.
    InsufficientLiquidity {
        /// The requested output.
        amount_out: u128,
        /// What the pool holds of the output token.
        reserve_out: u128,
    },
    /// The input needed for an exact-output quote does not fit in 128 bits.
    InputOverflow {
        /// The requested output.
        amount_out: u128,
        /// What the pool holds of the output token.
        reserve_out: u128,
    },
    /// A value given from outside (Python) is not an unsigned 128-bit integer.
    ValueOutOfRange {
        /// Argument name.
        field: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

/// A pool definition that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidPoolError {
    /// The fee is not below [`FEE_DENOMINATOR`].
    FeeOutOfRange {
        /// The pool.
        pool_id: String,
        /// The rejected fee.
        fee: u128,
    },
    /// `token0` and `token1` are the same token.
    SameToken {
        /// The pool.
        pool_id: String,
        /// The token named twice.
        token: String,
    },
    /// A reserve or fee given from outside is not an unsigned 128-bit integer.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteQueryError {
    /// `token_in` equals `token_out`.
    SameToken {
        /// The token named twice.
        token: String,
    },
    /// The amount to spend or to receive is zero.
    ZeroAmount {
        /// `"amount_in"` or `"amount_out"`.
        field: &'static str,
    },
    /// `max_hops` is outside `1..=MAX_HOPS`.
    MaxHopsOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// `max_splits` is outside `1..=MAX_SPLITS` ([`crate::graph::MAX_SPLITS`]).
    MaxSplitsOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// The amount given from outside is not an unsigned 128-bit integer.
    ValueOutOfRange {
        /// Argument name.
        field: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

/// Any error of this crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpsError {
    /// See [`PoolMathError`].
    PoolMath(PoolMathError),
    /// See [`InvalidPoolError`].
    InvalidPool(InvalidPoolError),
    /// See [`RouteQueryError`].
    RouteQuery(RouteQueryError),
    /// See [`V3PoolError`].
    V3Pool(V3PoolError),
    /// See [`V3SwapError`].
    V3Swap(V3SwapError),
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

impl fmt::Display for PoolMathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroReserve { reserve_in, reserve_out } => write!(
                f,
                "pool has a zero reserve (reserve_in={reserve_in}, reserve_out={reserve_out}) \
                 and cannot quote"
            ),
            Self::FeeOutOfRange { fee } => {
                write!(f, "fee {fee} is outside 0..=999999 ({FEE_HINT})")
            }
            Self::InsufficientLiquidity { amount_out, reserve_out } => write!(
                f,
                "amount_out {amount_out} is not below reserve_out {reserve_out}: \
                 the pool cannot pay it out"
            ),
            Self::InputOverflow { amount_out, reserve_out } => write!(
                f,
                "the input needed for amount_out {amount_out} against reserve_out \
                 {reserve_out} exceeds 2**128-1"
            ),
            Self::ValueOutOfRange { field, value } => {
                write!(f, "{field} must be an int in {U128_RANGE}, got {value}")
            }
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

impl fmt::Display for InvalidPoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FeeOutOfRange { pool_id, fee } => {
                write!(f, "pool '{pool_id}': fee {fee} is outside 0..=999999 ({FEE_HINT})")
            }
            Self::SameToken { pool_id, token } => {
                write!(f, "pool '{pool_id}': token0 and token1 are both '{token}'")
            }
            Self::ValueOutOfRange { pool_id, field, value } => {
                write!(f, "pool '{pool_id}': {field} must be an int in {U128_RANGE}, got {value}")
            }
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

impl fmt::Display for RouteQueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SameToken { token } => {
                write!(f, "token_in and token_out are both '{token}'; nothing to route")
            }
            Self::ZeroAmount { field } => write!(f, "{field} must be positive, got 0"),
            Self::MaxHopsOutOfRange { value } => {
                write!(f, "max_hops must be in 1..={}, got {value}", crate::graph::MAX_HOPS)
            }
            Self::MaxSplitsOutOfRange { value } => {
                write!(f, "max_splits must be in 1..={}, got {value}", crate::graph::MAX_SPLITS)
            }
            Self::ValueOutOfRange { field, value } => {
                write!(f, "{field} must be an int in {U128_RANGE}, got {value}")
            }
        }
    }
}

impl fmt::Display for OpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PoolMath(e) => e.fmt(f),
            Self::InvalidPool(e) => e.fmt(f),
            Self::RouteQuery(e) => e.fmt(f),
            Self::V3Pool(e) => e.fmt(f),
            Self::V3Swap(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for PoolMathError {}
impl std::error::Error for InvalidPoolError {}
impl std::error::Error for RouteQueryError {}
impl std::error::Error for OpsError {}

impl From<PoolMathError> for OpsError {
    fn from(e: PoolMathError) -> Self {
        Self::PoolMath(e)
    }
}

impl From<InvalidPoolError> for OpsError {
    fn from(e: InvalidPoolError) -> Self {
        Self::InvalidPool(e)
    }
}

impl From<RouteQueryError> for OpsError {
    fn from(e: RouteQueryError) -> Self {
        Self::RouteQuery(e)
    }
}

impl From<V3PoolError> for OpsError {
    fn from(e: V3PoolError) -> Self {
        Self::V3Pool(e)
    }
}

impl From<V3SwapError> for OpsError {
    fn from(e: V3SwapError) -> Self {
        Self::V3Swap(e)
    }
}
