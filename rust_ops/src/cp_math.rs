//! Constant-product (Uniswap V2-style) pool math in integer base units, exact.
//!
//! Fees are in hundredths of a basis point, Uniswap V3's unit: `fee = 3000` is 0.30 % and the
//! denominator is [`FEE_DENOMINATOR`] (1e6). With `g = 1e6 - fee`:
//!
//! ```text
//! amount_out = floor(amount_in·g·reserve_out / (reserve_in·1e6 + amount_in·g))
//! amount_in  = ceil(amount_out·reserve_in·1e6 / ((reserve_out - amount_out)·g))
//! ```
//!
//! `amount_out` is Uniswap V2's `getAmountOut` with the fee unit widened. `amount_in` is the
//! *least* input whose `amount_out` reaches the wanted output; V2's `getAmountIn` instead adds 1
//! to the floor, which overshoots by one unit whenever the division is exact.
//!
//! Inputs are `u128`; the products reach 2^276. Realistic values take a 256-bit path
//! ([`crate::muldiv`]); the rest is computed in 320 bits ([`U320`]), exact either way.

use ruint::aliases::U320;

use crate::error::{PoolMathError, FEE_DENOMINATOR};
use crate::muldiv::mul_div_rem;

/// Output of a constant-product swap of `amount_in` (floor-rounded, in the pool's favour).
///
/// `amount_in = 0` yields 0. The result is always below `reserve_out`.
///
/// # Errors
///
/// [`PoolMathError::FeeOutOfRange`] if `fee >= 1_000_000`, then
/// [`PoolMathError::ZeroReserve`] if either reserve is zero.
pub fn amount_out(
    reserve_in: u128,
    reserve_out: u128,
    amount_in: u128,
    fee: u32,
) -> Result<u128, PoolMathError> {
    let g = check(reserve_in, reserve_out, fee)?;
    // Hot path: operands within 128 bits (reserves up to ~2^108), a 256-bit product.
    if let Some(in_with_fee) = amount_in.checked_mul(g) {
        let den = reserve_in.checked_mul(u128::from(FEE_DENOMINATOR));
        if let Some(den) = den.and_then(|d| d.checked_add(in_with_fee)) {
            // The quotient is below reserve_out, so it always fits.
            if let Some((q, _)) = mul_div_rem(in_with_fee, reserve_out, den) {
                return Ok(q);
            }
        }
    }
    // Bounds: in_with_fee < 2^148, num < 2^276, den < 2^150.
    let in_with_fee = U320::from(amount_in) * U320::from(g);
    let num = in_with_fee * U320::from(reserve_out);
    let den = U320::from(reserve_in) * U320::from(FEE_DENOMINATOR) + in_with_fee;
    // num / den < reserve_out, so it always fits; saturating only to stay panic-free.
    Ok(u128::try_from(num / den).unwrap_or(u128::MAX))
}

/// Least input for which [`amount_out`] yields at least `amount_out` (ceil-rounded inverse).
///
/// `amount_out = 0` needs 0.
///
/// # Errors
///
/// In this order: [`PoolMathError::FeeOutOfRange`] if `fee >= 1_000_000`;
/// [`PoolMathError::ZeroReserve`] if either reserve is zero;
/// [`PoolMathError::InsufficientLiquidity`] if `amount_out >= reserve_out`;
/// [`PoolMathError::InputOverflow`] if the needed input exceeds `u128::MAX`.
pub fn amount_in(
    reserve_in: u128,
    reserve_out: u128,
    amount_out: u128,
    fee: u32,
) -> Result<u128, PoolMathError> {
    let g = check(reserve_in, reserve_out, fee)?;
    if amount_out >= reserve_out {
        return Err(PoolMathError::InsufficientLiquidity { amount_out, reserve_out });
    }
    // x·g·(R_out - y) >= y·R_in·1e6  <=>  floor(x·g·R_out / (R_in·1e6 + x·g)) >= y,
    // so the least x is the ceiling of y·R_in·1e6 / ((R_out - y)·g).
    let overflow = PoolMathError::InputOverflow { amount_out, reserve_out };
    let scaled_in = reserve_in.checked_mul(u128::from(FEE_DENOMINATOR));
    let den = (reserve_out - amount_out).checked_mul(g);
    if let (Some(scaled_in), Some(den)) = (scaled_in, den) {
        // Hot path: a 256-bit product; a quotient beyond 128 bits is an overflow either way.
        let (q, r) = mul_div_rem(amount_out, scaled_in, den).ok_or(overflow.clone())?;
        return if r == 0 { Ok(q) } else { q.checked_add(1).ok_or(overflow) };
    }
    // Bounds: num < 2^276, 0 < den < 2^148.
    let num = U320::from(amount_out) * U320::from(reserve_in) * U320::from(FEE_DENOMINATOR);
    let den = U320::from(reserve_out - amount_out) * U320::from(g);
    u128::try_from(num.div_ceil(den)).map_err(|_| overflow)
}

/// Validates fee and reserves; returns `g = 1e6 - fee`.
fn check(reserve_in: u128, reserve_out: u128, fee: u32) -> Result<u128, PoolMathError> {
    if fee >= FEE_DENOMINATOR {
        return Err(PoolMathError::FeeOutOfRange { fee: u128::from(fee) });
    }
    if reserve_in == 0 || reserve_out == 0 {
        return Err(PoolMathError::ZeroReserve { reserve_in, reserve_out });
    }
    Ok(u128::from(FEE_DENOMINATOR - fee))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const E18: u128 = 1_000_000_000_000_000_000;

    /// Reference: the formula in 320 bits with no fast path.
    fn amount_out_wide(ri: u128, ro: u128, ai: u128, fee: u32) -> u128 {
        let g = U320::from(FEE_DENOMINATOR - fee);
        let aw = U320::from(ai) * g;
        let r = aw * U320::from(ro) / (U320::from(ri) * U320::from(FEE_DENOMINATOR) + aw);
        u128::try_from(r).unwrap()
    }

    /// Reference: the least input in 320 bits with no fast path.
    fn amount_in_wide(ri: u128, ro: u128, y: u128, fee: u32) -> Option<u128> {
        let num = U320::from(y) * U320::from(ri) * U320::from(FEE_DENOMINATOR);
        let den = U320::from(ro - y) * U320::from(FEE_DENOMINATOR - fee);
        u128::try_from(num.div_ceil(den)).ok()
    }

    #[test]
    fn known_values() {
        // 1000 in, 0.30 %: 997000·1_000_000 / (1_000_000·1e6 + 997000) = 996.006…
        assert_eq!(amount_out(1_000_000, 1_000_000, 1000, 3000), Ok(996));
        // No fee: 100·200 / (100 + 100) = 100 exactly.
        assert_eq!(amount_out(100, 200, 100, 0), Ok(100));
        // Uniswap V2 getAmountOut(1e18, 100e18, 100e18) with 0.3 % = 987158034397061298.
        assert_eq!(amount_out(100 * E18, 100 * E18, E18, 3000), Ok(987_158_034_397_061_298));
        assert_eq!(amount_out(5, 5, 0, 3000), Ok(0));
        // The inverse of the first example: 996 needs 1000? 999 gives 995.0…, 1000 gives 996.
        assert_eq!(amount_in(1_000_000, 1_000_000, 996, 3000), Ok(1000));
        assert_eq!(amount_out(1_000_000, 1_000_000, 999, 3000), Ok(995));
        // Exact division: 100 out of (100, 200) with no fee needs exactly 100 (V2 would say 101).
        assert_eq!(amount_in(100, 200, 100, 0), Ok(100));
        assert_eq!(amount_in(100, 200, 0, 0), Ok(0));
    }

    #[test]
    fn huge_reserves_are_exact() {
        let m = u128::MAX;
        // (m-1)·… would overflow 256 bits without the 320-bit intermediate.
        assert_eq!(amount_out(m, m, m, 0), Ok(m / 2));
        assert_eq!(amount_out(m, m, m, 3000), Ok(amount_out_wide(m, m, m, 3000)));
        assert_eq!(
            amount_in(m, m, m - 1, 0),
            Err(PoolMathError::InputOverflow { amount_out: m - 1, reserve_out: m })
        );
        // y = 1 from (1, m): needs ceil(1·1·1e6 / ((m-1)·g)) = 1.
        assert_eq!(amount_in(1, m, 1, 3000), Ok(1));
    }

    #[test]
    fn errors_in_order() {
        assert_eq!(
            amount_out(0, 0, 1, 1_000_000),
            Err(PoolMathError::FeeOutOfRange { fee: 1_000_000 })
        );
        assert_eq!(
            amount_out(0, 5, 1, 3000),
            Err(PoolMathError::ZeroReserve { reserve_in: 0, reserve_out: 5 })
        );
        assert_eq!(
            amount_in(5, 0, 1, 3000),
            Err(PoolMathError::ZeroReserve { reserve_in: 5, reserve_out: 0 })
        );
        assert_eq!(
            amount_in(5, 5, 5, 3000),
            Err(PoolMathError::InsufficientLiquidity { amount_out: 5, reserve_out: 5 })
        );
        assert_eq!(
            amount_in(5, 5, 5, 3000).unwrap_err().to_string(),
            "amount_out 5 is not below reserve_out 5: the pool cannot pay it out"
        );
    }

    fn reserve() -> impl Strategy<Value = u128> {
        prop_oneof![1..1_000u128, 1..u128::from(u64::MAX), 1..=u128::MAX]
    }

    fn amount() -> impl Strategy<Value = u128> {
        prop_oneof![0..1_000u128, 0..u128::from(u64::MAX), 0..=u128::MAX]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_path_matches_wide(ri in reserve(), ro in reserve(), ai in amount(), fee in 0..1_000_000u32) {
            prop_assert_eq!(amount_out(ri, ro, ai, fee).unwrap(), amount_out_wide(ri, ro, ai, fee));
        }

        #[test]
        fn amount_in_fast_path_matches_wide(
            (ri, ro, y) in (reserve(), reserve(), amount()).prop_map(|(ri, ro, y)| (ri, ro, y % ro)),
            fee in 0..1_000_000u32,
        ) {
            prop_assert_eq!(amount_in(ri, ro, y, fee).ok(), amount_in_wide(ri, ro, y, fee));
        }

        #[test]
        fn output_below_reserve(ri in reserve(), ro in reserve(), ai in amount(), fee in 0..1_000_000u32) {
            prop_assert!(amount_out(ri, ro, ai, fee).unwrap() < ro);
        }

        #[test]
        fn monotone_in_amount_and_fee(
            ri in reserve(), ro in reserve(), a in amount(), b in amount(), fee in 0..999_999u32,
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(amount_out(ri, ro, lo, fee).unwrap() <= amount_out(ri, ro, hi, fee).unwrap());
            // A higher fee never pays more.
            prop_assert!(amount_out(ri, ro, hi, fee + 1).unwrap() <= amount_out(ri, ro, hi, fee).unwrap());
        }

        #[test]
        fn amount_in_is_least_sufficient_input(
            ri in reserve(), ro in reserve(), y in amount(), fee in 0..1_000_000u32,
        ) {
            match amount_in(ri, ro, y, fee) {
                Ok(x) => {
                    prop_assert!(y < ro);
                    prop_assert!(amount_out(ri, ro, x, fee).unwrap() >= y);
                    if x > 0 {
                        prop_assert!(amount_out(ri, ro, x - 1, fee).unwrap() < y);
                    }
                }
                Err(PoolMathError::InsufficientLiquidity { .. }) => prop_assert!(y >= ro),
                Err(PoolMathError::InputOverflow { .. }) => {
                    // Even the largest input cannot buy y.
                    prop_assert!(amount_out(ri, ro, u128::MAX, fee).unwrap() < y);
                }
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }

        #[test]
        fn round_trip_never_gains(ri in reserve(), ro in reserve(), x in amount(), fee in 0..1_000_000u32) {
            // Buying back what x bought never costs more than x.
            let y = amount_out(ri, ro, x, fee).unwrap();
            prop_assert!(amount_in(ri, ro, y, fee).unwrap() <= x);
        }
    }
}
