//! `SqrtPriceMath` of Uniswap V3: the next price after adding or taking an amount at constant
//! liquidity, and the amounts between two prices, each rounded the contract's way.
//!
//! Rounding always favours the pool: the price moves *at least* as far as the amount pays for
//! when the trader takes out, *at most* as far as an input pays for; amounts owed to the pool
//! round up, amounts paid out round down. Functions return `None` where the contract reverts.

use ruint::aliases::U256;

use super::full_math::{div_rounding_up, mul_div, mul_div_rounding_up};

/// `2^96`, one in Q64.96.
pub const Q96: U256 = U256::from_limbs([0, 1 << 32, 0, 0]);
/// `2^160 - 1`, the largest `uint160`.
const U160_MAX: U256 = U256::from_limbs([u64::MAX, u64::MAX, u32::MAX as u64, 0]);

/// `getNextSqrtPriceFromAmount0RoundingUp`: the price after `amount` of token0 is added
/// (`add`) or removed, rounded up. `liquidity · 2^96 / (liquidity · 2^96 / p ± amount)`.
#[must_use]
pub fn next_sqrt_price_from_amount0_rounding_up(
    sqrt_p: U256,
    liquidity: u128,
    amount: U256,
    add: bool,
) -> Option<U256> {
    if amount.is_zero() {
        return Some(sqrt_p);
    }
    let numerator1 = U256::from(liquidity) << 96usize;
    let product = amount.checked_mul(sqrt_p);
    if add {
        if let Some(product) = product {
            if let Some(denominator) = numerator1.checked_add(product) {
                return mul_div_rounding_up(numerator1, sqrt_p, denominator);
            }
        }
        // The product overflowed: the less precise `L / (L/p + amount)` form.
        div_rounding_up(numerator1, (numerator1 / sqrt_p).checked_add(amount)?)
    } else {
        let product = product?;
        if numerator1 <= product {
            return None;
        }
        let next = mul_div_rounding_up(numerator1, sqrt_p, numerator1 - product)?;
        (next <= U160_MAX).then_some(next)
    }
}

/// `getNextSqrtPriceFromAmount1RoundingDown`: the price after `amount` of token1 is added
/// (`add`) or removed, rounded down. `p ± amount · 2^96 / liquidity`.
#[must_use]
pub fn next_sqrt_price_from_amount1_rounding_down(
    sqrt_p: U256,
    liquidity: u128,
    amount: U256,
    add: bool,
) -> Option<U256> {
    let liquidity = U256::from(liquidity);
    let small = amount <= U160_MAX;
    if add {
        let quotient =
            if small { (amount << 96usize) / liquidity } else { mul_div(amount, Q96, liquidity)? };
        let next = sqrt_p.checked_add(quotient)?;
        (next <= U160_MAX).then_some(next)
    } else {
        let quotient = if small {
            div_rounding_up(amount << 96usize, liquidity)?
        } else {
            mul_div_rounding_up(amount, Q96, liquidity)?
        };
        (sqrt_p > quotient).then(|| sqrt_p - quotient)
    }
}

/// `getNextSqrtPriceFromInput`: the price after `amount_in` is paid in (token0 when
/// `zero_for_one`, which lowers the price; token1 otherwise). `None` for a zero price or
/// liquidity, or a price beyond `uint160`.
#[must_use]
pub fn next_sqrt_price_from_input(
    sqrt_p: U256,
    liquidity: u128,
    amount_in: U256,
    zero_for_one: bool,
) -> Option<U256> {
    if sqrt_p.is_zero() || liquidity == 0 {
        return None;
    }
    if zero_for_one {
        next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_in, true)
    } else {
        next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_in, true)
    }
}

/// `getNextSqrtPriceFromOutput`: the price after `amount_out` is taken out (token1 when
/// `zero_for_one`, token0 otherwise). `None` when the liquidity cannot pay it.
#[must_use]
pub fn next_sqrt_price_from_output(
    sqrt_p: U256,
    liquidity: u128,
    amount_out: U256,
    zero_for_one: bool,
) -> Option<U256> {
    if sqrt_p.is_zero() || liquidity == 0 {
        return None;
    }
    if zero_for_one {
        next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_out, false)
    } else {
        next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_out, false)
    }
}

/// `getAmount0Delta` (unsigned): token0 between two prices,
/// `L · 2^96 · (b - a) / b / a`, rounded up or down. `None` if the lower price is zero.
#[must_use]
pub fn amount0_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    if a.is_zero() {
        return None;
    }
    let numerator1 = U256::from(liquidity) << 96usize;
    let numerator2 = b - a;
    if round_up {
        div_rounding_up(mul_div_rounding_up(numerator1, numerator2, b)?, a)
    } else {
        Some(mul_div(numerator1, numerator2, b)? / a)
    }
}

/// `getAmount1Delta` (unsigned): token1 between two prices, `L · (b - a) / 2^96`, rounded up
/// or down.
#[must_use]
pub fn amount1_delta(a: U256, b: U256, liquidity: u128, round_up: bool) -> Option<U256> {
    let (a, b) = if a > b { (b, a) } else { (a, b) };
    let liquidity = U256::from(liquidity);
    if round_up {
        mul_div_rounding_up(liquidity, b - a, Q96)
    } else {
        mul_div(liquidity, b - a, Q96)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::tick_math::{MAX_SQRT_RATIO, MIN_SQRT_RATIO};
    use proptest::prelude::*;

    fn e18(x: u128) -> U256 {
        U256::from(x) * U256::from(10u128.pow(18))
    }

    fn dec(s: &str) -> U256 {
        U256::from_str_radix(s, 10).unwrap()
    }

    /// `encodePriceSqrt(reserve1, reserve0)` of the v3-core tests, for the vectors below.
    const ONE: U256 = Q96;

    #[test]
    fn contract_vectors() {
        // v3-core test/SqrtPriceMath.spec.ts.
        let l = 10u128.pow(18);
        // getNextSqrtPriceFromInput: zero amount keeps the price.
        assert_eq!(next_sqrt_price_from_input(ONE, l, U256::ZERO, true), Some(ONE));
        assert_eq!(next_sqrt_price_from_input(ONE, l, U256::ZERO, false), Some(ONE));
        // 0.1 of token1 in at price 1, liquidity 1: 1.1 in Q64.96.
        let tenth = e18(1) / U256::from(10u8);
        assert_eq!(
            next_sqrt_price_from_input(ONE, l, tenth, false),
            Some(dec("87150978765690771352898345369"))
        );
        assert_eq!(
            next_sqrt_price_from_input(ONE, l, tenth, true),
            Some(dec("72025602285694852357767227579"))
        );
        // Amount in of token0 past 2^96 causes the overflow fallback, still not zero.
        assert_eq!(
            next_sqrt_price_from_input(ONE, 1, U256::from(1u8) << 255, true).map(|p| p.is_zero()),
            Some(false)
        );
        // Output: cannot take out everything.
        assert_eq!(next_sqrt_price_from_output(ONE, 1, U256::from(4u8), false), None);
        assert_eq!(
            next_sqrt_price_from_output(ONE, l, tenth, false),
            Some(dec("88031291682515930659493278152"))
        );
        assert_eq!(
            next_sqrt_price_from_output(ONE, l, tenth, true),
            Some(dec("71305346262837903834189555302"))
        );
        // getAmount0Delta / getAmount1Delta between 1 and 1.21 (sqrt 1.1), liquidity 1e18.
        let p121 = dec("87150978765690771352898345369");
        assert_eq!(amount0_delta(ONE, p121, l, true), Some(dec("90909090909090910")));
        assert_eq!(amount0_delta(ONE, p121, l, false), Some(dec("90909090909090909")));
        assert_eq!(amount1_delta(ONE, p121, l, true), Some(dec("100000000000000000")));
        assert_eq!(amount1_delta(ONE, p121, l, false), Some(dec("99999999999999999")));
        assert_eq!(amount0_delta(ONE, ONE, l, true), Some(U256::ZERO));
        assert_eq!(amount0_delta(U256::ZERO, ONE, l, true), None);
    }

    fn price() -> impl Strategy<Value = U256> {
        (any::<[u64; 3]>()).prop_map(|l| {
            let span = MAX_SQRT_RATIO - MIN_SQRT_RATIO;
            MIN_SQRT_RATIO + U256::from_limbs([l[0], l[1], l[2], 0]) % span
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn input_never_pays_for_more_than_it_gives(
            p in price(), l in 1u128..=u128::MAX, amount in any::<u128>(), zfo in any::<bool>()
        ) {
            let amount = U256::from(amount);
            if let Some(next) = next_sqrt_price_from_input(p, l, amount, zfo) {
                let moved_right_way = if zfo { next <= p } else { next >= p };
                prop_assert!(moved_right_way);
                // Paying `amount` moves the price no further than `amount` pays for.
                let needed = if zfo {
                    amount0_delta(next, p, l, true)
                } else {
                    amount1_delta(p, next, l, true)
                };
                if let Some(needed) = needed {
                    prop_assert!(needed <= amount);
                }
            }
        }

        #[test]
        fn output_moves_the_price_far_enough(
            p in price(), l in 1u128..=u128::MAX, amount in any::<u128>(), zfo in any::<bool>()
        ) {
            let amount = U256::from(amount);
            if let Some(next) = next_sqrt_price_from_output(p, l, amount, zfo) {
                let moved_right_way = if zfo { next <= p } else { next >= p };
                prop_assert!(moved_right_way);
                let paid = if zfo {
                    amount1_delta(next, p, l, false)
                } else {
                    amount0_delta(p, next, l, false)
                };
                prop_assert!(paid.unwrap() >= amount);
            }
        }

        #[test]
        fn rounding_up_is_floor_or_floor_plus_one(a in price(), b in price(), l in any::<u128>()) {
            let (d0, u0) = (amount0_delta(a, b, l, false).unwrap(), amount0_delta(a, b, l, true).unwrap());
            prop_assert!(u0 >= d0 && u0 - d0 <= U256::from(1u8));
            let (d1, u1) = (amount1_delta(a, b, l, false).unwrap(), amount1_delta(a, b, l, true).unwrap());
            prop_assert!(u1 >= d1 && u1 - d1 <= U256::from(1u8));
        }
    }
}
