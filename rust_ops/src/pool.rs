//! A constant-product pool as the router sees it.

use crate::cp_math;
use crate::error::{InvalidPoolError, PoolMathError, FEE_DENOMINATOR};

/// A constant-product pool between `token0` and `token1`, reserves in integer base units and
/// `fee` in hundredths of a basis point. Immutable; a new state is a new `Pool`.
///
/// Zero reserves are allowed (an empty pool exists on chain) but such a pool never quotes and
/// the router skips it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pool {
    pool_id: String,
    venue: String,
    token0: String,
    token1: String,
    reserve0: u128,
    reserve1: u128,
    fee: u32,
}

impl Pool {
    /// Builds a pool after checking it.
    ///
    /// # Errors
    ///
    /// [`InvalidPoolError::FeeOutOfRange`] if `fee >= 1_000_000`, then
    /// [`InvalidPoolError::SameToken`] if `token0 == token1`.
    pub fn new(
        pool_id: String,
        venue: String,
        token0: String,
        token1: String,
        reserve0: u128,
        reserve1: u128,
        fee: u128,
    ) -> Result<Self, InvalidPoolError> {
        let fee = match u32::try_from(fee) {
            Ok(f) if f < FEE_DENOMINATOR => f,
            _ => return Err(InvalidPoolError::FeeOutOfRange { pool_id, fee }),
        };
        if token0 == token1 {
            return Err(InvalidPoolError::SameToken { pool_id, token: token0 });
        }
        Ok(Self { pool_id, venue, token0, token1, reserve0, reserve1, fee })
    }

    /// Unique id of the pool (its address on chain, or the sim venue's name for it).
    #[must_use]
    pub fn pool_id(&self) -> &str {
        &self.pool_id
    }

    /// Venue (plugin name) that owns the pool.
    #[must_use]
    pub fn venue(&self) -> &str {
        &self.venue
    }

    /// First token of the pair.
    #[must_use]
    pub fn token0(&self) -> &str {
        &self.token0
    }

    /// Second token of the pair.
    #[must_use]
    pub fn token1(&self) -> &str {
        &self.token1
    }

    /// Reserve of `token0`, base units.
    #[must_use]
    pub fn reserve0(&self) -> u128 {
        self.reserve0
    }

    /// Reserve of `token1`, base units.
    #[must_use]
    pub fn reserve1(&self) -> u128 {
        self.reserve1
    }

    /// Fee in hundredths of a basis point (3000 = 0.30 %).
    #[must_use]
    pub fn fee(&self) -> u32 {
        self.fee
    }

    /// Whether the pool can quote at all (both reserves non-zero).
    #[must_use]
    pub fn is_quotable(&self) -> bool {
        self.reserve0 != 0 && self.reserve1 != 0
    }

    /// `(reserve_in, reserve_out)` for a swap in the given direction.
    #[must_use]
    pub fn reserves(&self, zero_for_one: bool) -> (u128, u128) {
        if zero_for_one {
            (self.reserve0, self.reserve1)
        } else {
            (self.reserve1, self.reserve0)
        }
    }

    /// Output of swapping `amount_in` of token0 (`zero_for_one`) or token1.
    ///
    /// # Errors
    ///
    /// As [`cp_math::amount_out`]: [`PoolMathError::ZeroReserve`] on an empty pool.
    pub fn amount_out(&self, zero_for_one: bool, amount_in: u128) -> Result<u128, PoolMathError> {
        let (r_in, r_out) = self.reserves(zero_for_one);
        cp_math::amount_out(r_in, r_out, amount_in, self.fee)
    }

    /// Least input of token0 (`zero_for_one`) or token1 that yields `amount_out`.
    ///
    /// # Errors
    ///
    /// As [`cp_math::amount_in`]: zero reserve, insufficient liquidity, input overflow.
    pub fn amount_in(&self, zero_for_one: bool, amount_out: u128) -> Result<u128, PoolMathError> {
        let (r_in, r_out) = self.reserves(zero_for_one);
        cp_math::amount_in(r_in, r_out, amount_out, self.fee)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(t0: &str, t1: &str, fee: u128) -> Result<Pool, InvalidPoolError> {
        Pool::new("p".into(), "sim".into(), t0.into(), t1.into(), 10, 20, fee)
    }

    #[test]
    fn validates() {
        assert!(pool("A", "B", 999_999).is_ok());
        assert_eq!(
            pool("A", "B", 1_000_000).unwrap_err().to_string(),
            "pool 'p': fee 1000000 is outside 0..=999999 (hundredths of a basis point: 3000 = 0.30 %)"
        );
        assert_eq!(pool("A", "A", 3000).unwrap_err().code(), "same_token");
        // The fee is checked first.
        assert_eq!(pool("A", "A", u128::MAX).unwrap_err().code(), "fee_out_of_range");
    }

    #[test]
    fn directions() {
        let p = pool("A", "B", 0).unwrap();
        assert_eq!(p.reserves(true), (10, 20));
        assert_eq!(p.amount_out(true, 10), Ok(10));
        assert_eq!(p.amount_out(false, 20), Ok(5));
        assert_eq!(p.amount_in(true, 10), Ok(10));
    }
}
