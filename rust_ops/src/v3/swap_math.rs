//! `SwapMath.computeSwapStep` of Uniswap V3: one step of a swap inside a range of constant
//! liquidity, from the current price towards a target price (the next tick, or the limit).

use ruint::aliases::U256;

use super::full_math::{mul_div, mul_div_rounding_up};
use super::sqrt_price_math::{
    amount0_delta, amount1_delta, next_sqrt_price_from_input, next_sqrt_price_from_output,
};
use crate::error::FEE_DENOMINATOR;

/// What one step does: where the price ends, what goes in (before the fee), what comes out
/// and the fee taken from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwapStep {
    /// Price after the step (the target if it was reached).
    pub sqrt_price_next: U256,
    /// Input consumed, fee excluded, rounded up.
    pub amount_in: U256,
    /// Output paid, rounded down (capped at the remaining output of an exact-output swap).
    pub amount_out: U256,
    /// Fee charged on top of `amount_in`.
    pub fee_amount: U256,
}

/// `computeSwapStep(current, target, liquidity, amountRemaining, feePips)`.
///
/// `exact_in` says the sign of the contract's `amountRemaining` (`remaining` is its absolute
/// value); the direction is `current >= target` (token0 in, price down). `None` where the
/// contract reverts (unreachable for prices between the tick bounds and `fee < 1e6`).
#[must_use]
pub fn compute_swap_step(
    current: U256,
    target: U256,
    liquidity: u128,
    remaining: U256,
    exact_in: bool,
    fee_pips: u32,
) -> Option<SwapStep> {
    let zero_for_one = current >= target;
    let denominator = U256::from(FEE_DENOMINATOR);
    let fee = U256::from(fee_pips);
    let less_fee = denominator - fee;

    // The whole range's amount (only meaningful when the target is reached).
    let mut range_in = U256::ZERO;
    let mut range_out = U256::ZERO;
    let next = if exact_in {
        let remaining_less_fee = mul_div(remaining, less_fee, denominator)?;
        range_in = if zero_for_one {
            amount0_delta(target, current, liquidity, true)?
        } else {
            amount1_delta(current, target, liquidity, true)?
        };
        if remaining_less_fee >= range_in {
            target
        } else {
            next_sqrt_price_from_input(current, liquidity, remaining_less_fee, zero_for_one)?
        }
    } else {
        range_out = if zero_for_one {
            amount1_delta(target, current, liquidity, false)?
        } else {
            amount0_delta(current, target, liquidity, false)?
        };
        if remaining >= range_out {
            target
        } else {
            next_sqrt_price_from_output(current, liquidity, remaining, zero_for_one)?
        }
    };

    let max = next == target;
    let (amount_in, mut amount_out) = if zero_for_one {
        (
            if max && exact_in { range_in } else { amount0_delta(next, current, liquidity, true)? },
            if max && !exact_in {
                range_out
            } else {
                amount1_delta(next, current, liquidity, false)?
            },
        )
    } else {
        (
            if max && exact_in { range_in } else { amount1_delta(current, next, liquidity, true)? },
            if max && !exact_in {
                range_out
            } else {
                amount0_delta(current, next, liquidity, false)?
            },
        )
    };
    if !exact_in && amount_out > remaining {
        amount_out = remaining;
    }
    let fee_amount = if exact_in && next != target {
        // The price stopped short: whatever is left of the input is the fee.
        remaining.checked_sub(amount_in)?
    } else {
        mul_div_rounding_up(amount_in, fee, less_fee)?
    };
    Some(SwapStep { sqrt_price_next: next, amount_in, amount_out, fee_amount })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v3::sqrt_price_math::Q96;

    fn dec(s: &str) -> U256 {
        U256::from_str_radix(s, 10).unwrap()
    }

    fn e18(x: u128) -> U256 {
        U256::from(x) * U256::from(10u128.pow(18))
    }

    #[test]
    fn contract_vectors() {
        // v3-core test/SwapMath.spec.ts.
        let price = Q96; // encodePriceSqrt(1, 1)
        let target = dec("79623317895830914510639640423"); // encodePriceSqrt(101, 100)
        let l = 2 * 10u128.pow(18);

        // Exact amount in that gets capped at the price target in one for zero.
        let s = compute_swap_step(price, target, l, e18(1), true, 600).unwrap();
        assert_eq!(s.amount_in, dec("9975124224178055"));
        assert_eq!(s.fee_amount, dec("5988667735148"));
        assert_eq!(s.amount_out, dec("9925619580021728"));
        assert_eq!(s.sqrt_price_next, target);

        // Exact amount out that gets capped at the price target in one for zero.
        let s = compute_swap_step(price, target, l, e18(1), false, 600).unwrap();
        assert_eq!(s.amount_in, dec("9975124224178055"));
        assert_eq!(s.fee_amount, dec("5988667735148"));
        assert_eq!(s.amount_out, dec("9925619580021728"));
        assert_eq!(s.sqrt_price_next, target);

        // Exact amount in that is fully spent in one for zero.
        let target = dec("250541448375047931186413801569"); // encodePriceSqrt(1000, 100)
        let s = compute_swap_step(price, target, l, e18(1), true, 600).unwrap();
        assert_eq!(s.amount_in, dec("999400000000000000"));
        assert_eq!(s.fee_amount, dec("600000000000000"));
        assert_eq!(s.amount_out, dec("666399946655997866"));
        assert!(s.sqrt_price_next < target);

        // Exact amount out that is fully received in one for zero.
        let s = compute_swap_step(price, target, l, e18(1), false, 600).unwrap();
        assert_eq!(s.amount_in, dec("2000000000000000000"));
        assert_eq!(s.fee_amount, dec("1200720432259356"));
        assert_eq!(s.amount_out, e18(1));
        assert!(s.sqrt_price_next < target);

        // Amount out is capped at the desired amount out.
        let s = compute_swap_step(
            dec("417332158212080721273783715441582"),
            dec("1452870262520218020823638996"),
            159_344_665_391_607_089_467_575_320_103,
            U256::from(1u8),
            false,
            1,
        )
        .unwrap();
        assert_eq!(s.amount_in, dec("1"));
        assert_eq!(s.fee_amount, dec("1"));
        assert_eq!(s.amount_out, dec("1"));
        assert_eq!(s.sqrt_price_next, dec("417332158212080721273783715441581"));

        // Entire input amount taken as fee.
        let s = compute_swap_step(
            dec("2413"),
            dec("79887613182836312"),
            1_985_041_575_832_132_834_610_021_537_970,
            U256::from(10u8),
            true,
            1872,
        )
        .unwrap();
        assert_eq!((s.amount_in, s.fee_amount, s.amount_out), (U256::ZERO, dec("10"), U256::ZERO));
        assert_eq!(s.sqrt_price_next, dec("2413"));
    }
}
