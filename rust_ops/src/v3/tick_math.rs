//! `TickMath` of Uniswap V3: the Q64.96 square-root price at a tick and the tick of a price.
//!
//! [`sqrt_ratio_at_tick`] is the contract's bit-by-bit product of Q128.128 constants
//! (`sqrt(1.0001)^-2^i`), inverted for positive ticks and rounded *up* to Q64.96.
//! [`tick_at_sqrt_ratio`] returns what the contract's `getTickAtSqrtRatio` is specified (and
//! was fuzzed) to return, the greatest tick whose ratio is at or below the price; it gets
//! there from a floating-point estimate corrected with exact [`sqrt_ratio_at_tick`] checks,
//! so the answer never depends on the float.

use ruint::aliases::U256;

use crate::muldiv::mul_wide;

/// Lowest tick, `-887272`: the price `1.0001^MIN_TICK` is about `2^-128`.
pub const MIN_TICK: i32 = -887_272;
/// Highest tick, `887272`.
pub const MAX_TICK: i32 = -MIN_TICK;
/// `sqrt_ratio_at_tick(MIN_TICK)`, the lowest Q64.96 price a pool can have.
pub const MIN_SQRT_RATIO: U256 = U256::from_limbs([4_295_128_739, 0, 0, 0]);
/// `sqrt_ratio_at_tick(MAX_TICK)` (1461446703485210103287273052203988822378723970342); prices
/// are always strictly below it.
pub const MAX_SQRT_RATIO: U256 =
    U256::from_limbs([0x5d95_1d52_6398_8d26, 0xefd1_fc6a_5064_8849, 0xfffd_8963, 0]);

/// `sqrt(1.0001)^-(2^i)` in Q128.128 for bits 1..=19 of `|tick|`, as in `TickMath.sol`.
const RATIOS: [u128; 19] = [
    0xfff9_7272_373d_4132_59a4_6990_580e_213a,
    0xfff2_e50f_5f65_6932_ef12_357c_f3c7_fdcc,
    0xffe5_caca_7e10_e4e6_1c36_24ea_a094_1cd0,
    0xffcb_9843_d60f_6159_c9db_5883_5c92_6644,
    0xff97_3b41_fa98_c081_472e_6896_dfb2_54c0,
    0xff2e_a164_66c9_6a38_43ec_78b3_26b5_2861,
    0xfe5d_ee04_6a99_a2a8_11c4_61f1_969c_3053,
    0xfcbe_86c7_900a_88ae_dcff_c83b_479a_a3a4,
    0xf987_a725_3ac4_1317_6f2b_074c_f781_5e54,
    0xf339_2b08_22b7_0005_940c_7a39_8e4b_70f3,
    0xe715_9475_a2c2_9b74_43b2_9c7f_a6e8_89d9,
    0xd097_f3bd_fd20_22b8_845a_d8f7_92aa_5825,
    0xa9f7_4646_2d87_0fdf_8a65_dc1f_90e0_61e5,
    0x70d8_69a1_56d2_a1b8_90bb_3df6_2baf_32f7,
    0x31be_135f_97d0_8fd9_8123_1505_542f_cfa6,
    0x09aa_508b_5b7a_84e1_c677_de54_f3e9_9bc9,
    0x005d_6af8_dedb_8119_6699_c329_225e_e604,
    0x0000_2216_e584_f5fa_1ea9_2604_1bed_fe98,
    0x0000_0000_048a_1703_91f7_dc42_444e_8fa2,
];
/// `sqrt(1.0001)^-1` in Q128.128, the start value when bit 0 of `|tick|` is set.
const RATIO_BIT0: u128 = 0xfffc_b933_bd6f_ad37_aa2d_162d_1a59_4001;

/// `sqrt(1.0001^tick) · 2^96`, rounded up: `TickMath.getSqrtRatioAtTick`.
///
/// Returns `None` when `tick` is outside `MIN_TICK..=MAX_TICK` (the contract's `T` revert).
#[must_use]
pub fn sqrt_ratio_at_tick(tick: i32) -> Option<U256> {
    let abs = tick.unsigned_abs();
    if abs > MAX_TICK.unsigned_abs() {
        return None;
    }
    // `ratio` is below 2^128 except at the start (exactly 2^128 when bit 0 is clear), so the
    // Q128.128 products are the high halves of 128x128-bit multiplications.
    let mut ratio: Option<u128> = (abs & 1 != 0).then_some(RATIO_BIT0);
    for (i, &c) in RATIOS.iter().enumerate() {
        if abs & (2 << i) != 0 {
            ratio = Some(match ratio {
                Some(r) => mul_wide(r, c).0,
                None => c, // (2^128 · c) >> 128
            });
        }
    }
    let ratio = match ratio {
        Some(r) if tick > 0 => U256::MAX / U256::from(r),
        Some(r) => U256::from(r),
        None => U256::from(1u8) << 128,
    };
    // Q128.128 -> Q64.96, rounding up so that tick_at_sqrt_ratio(sqrt_ratio_at_tick(t)) == t.
    let round = u8::from(ratio.as_limbs()[0] & 0xffff_ffff != 0);
    Some((ratio >> 32) + U256::from(round))
}

/// The greatest tick whose [`sqrt_ratio_at_tick`] is at or below `sqrt_price_x96`:
/// `TickMath.getTickAtSqrtRatio`.
///
/// Returns `None` unless `MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO` (the `R` revert).
#[must_use]
pub fn tick_at_sqrt_ratio(sqrt_price_x96: U256) -> Option<i32> {
    if sqrt_price_x96 < MIN_SQRT_RATIO || sqrt_price_x96 >= MAX_SQRT_RATIO {
        return None;
    }
    // log_{sqrt(1.0001)}(p / 2^96); f64 keeps ~15 digits, so the estimate is off by at most one
    // or two ticks, which the exact checks below fix.
    let log2 = f64::from(sqrt_price_x96).log2() - 96.0;
    let estimate = (log2 * std::f64::consts::LN_2 / 1.0001f64.ln() * 2.0).floor();
    // The cast saturates; the clamp keeps the first checks in range.
    #[allow(clippy::cast_possible_truncation)]
    let mut tick = (estimate as i32).clamp(MIN_TICK, MAX_TICK - 1);
    let ratio = |t: i32| sqrt_ratio_at_tick(t).unwrap_or(U256::MAX);
    while tick > MIN_TICK && ratio(tick) > sqrt_price_x96 {
        tick -= 1;
    }
    while tick < MAX_TICK && ratio(tick + 1) <= sqrt_price_x96 {
        tick += 1;
    }
    Some(tick)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dec(s: &str) -> U256 {
        U256::from_str_radix(s, 10).unwrap()
    }

    #[test]
    fn bounds_are_the_contract_constants() {
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK), Some(MIN_SQRT_RATIO));
        assert_eq!(sqrt_ratio_at_tick(MAX_TICK), Some(MAX_SQRT_RATIO));
        assert_eq!(MAX_SQRT_RATIO, dec("1461446703485210103287273052203988822378723970342"));
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK - 1), None);
        assert_eq!(sqrt_ratio_at_tick(MAX_TICK + 1), None);
        assert_eq!(sqrt_ratio_at_tick(0), Some(U256::from(1u8) << 96));
    }

    #[test]
    fn contract_vectors() {
        // v3-core test/TickMath.spec.ts: min tick + 1, max tick - 1.
        assert_eq!(sqrt_ratio_at_tick(MIN_TICK + 1), Some(dec("4295343490")));
        assert_eq!(
            sqrt_ratio_at_tick(MAX_TICK - 1),
            Some(dec("1461373636630004318706518188784493106690254656249"))
        );
        // Ticks of well-known prices; 1.0001^tick * 2^96 squared-root in Q64.96.
        assert_eq!(sqrt_ratio_at_tick(1), Some(dec("79232123823359799118286999568")));
        assert_eq!(sqrt_ratio_at_tick(-1), Some(dec("79224201403219477170569942574")));
        assert_eq!(tick_at_sqrt_ratio(MIN_SQRT_RATIO), Some(MIN_TICK));
        assert_eq!(tick_at_sqrt_ratio(dec("4295343490")), Some(MIN_TICK + 1));
        assert_eq!(tick_at_sqrt_ratio(MAX_SQRT_RATIO - U256::from(1u8)), Some(MAX_TICK - 1));
        assert_eq!(
            tick_at_sqrt_ratio(dec("1461373636630004318706518188784493106690254656249")),
            Some(MAX_TICK - 1)
        );
        assert_eq!(tick_at_sqrt_ratio(MIN_SQRT_RATIO - U256::from(1u8)), None);
        assert_eq!(tick_at_sqrt_ratio(MAX_SQRT_RATIO), None);
        assert_eq!(tick_at_sqrt_ratio(U256::from(1u8) << 96), Some(0));
        assert_eq!(tick_at_sqrt_ratio((U256::from(1u8) << 96) - U256::from(1u8)), Some(-1));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn ratio_is_strictly_increasing(t in MIN_TICK..MAX_TICK) {
            prop_assert!(sqrt_ratio_at_tick(t).unwrap() < sqrt_ratio_at_tick(t + 1).unwrap());
        }

        #[test]
        fn tick_round_trips(t in MIN_TICK..=MAX_TICK) {
            let p = sqrt_ratio_at_tick(t).unwrap();
            if t < MAX_TICK {
                prop_assert_eq!(tick_at_sqrt_ratio(p), Some(t));
            }
            if t > MIN_TICK {
                prop_assert_eq!(tick_at_sqrt_ratio(p - U256::from(1u8)), Some(t - 1));
            }
        }

        #[test]
        fn tick_brackets_any_price(limbs in any::<[u64; 3]>()) {
            let span = MAX_SQRT_RATIO - MIN_SQRT_RATIO;
            let p = MIN_SQRT_RATIO + U256::from_limbs([limbs[0], limbs[1], limbs[2], 0]) % span;
            let t = tick_at_sqrt_ratio(p).unwrap();
            prop_assert!(sqrt_ratio_at_tick(t).unwrap() <= p);
            prop_assert!(sqrt_ratio_at_tick(t + 1).unwrap() > p);
        }
    }
}
