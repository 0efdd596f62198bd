//! Pool-level tests: the swap loop on hand-built pools, and properties on random ones.

use proptest::prelude::*;
use ruint::aliases::U256;

use super::pool::next_initialized_tick_within_one_word;
use super::swap_math::compute_swap_step;
use super::*;

fn u(x: u128) -> U256 {
    U256::from(x)
}

/// A pool at `tick`'s price (rounded into the tick) with `positions` `(lower, upper, L)`.
fn pool(tick: i32, spacing: i32, fee: u32, positions: &[(i32, i32, u128)]) -> V3Pool {
    let mut net = std::collections::BTreeMap::<i32, i128>::new();
    let mut liquidity = 0u128;
    for &(lo, hi, l) in positions {
        *net.entry(lo).or_default() += i128::try_from(l).unwrap();
        *net.entry(hi).or_default() -= i128::try_from(l).unwrap();
        if lo <= tick && tick < hi {
            liquidity += l;
        }
    }
    let price = sqrt_ratio_at_tick(tick).unwrap() + u(12345);
    V3Pool::new(price, liquidity, tick, spacing, fee, Some(net.into_iter().collect())).unwrap()
}

#[test]
fn bitmap_lookup_stops_at_word_edges() {
    let ticks = [(-600, 1), (0, 1), (60, 1), (61_440, -3)];
    // Spacing 60: a word is 256 * 60 = 15360 ticks.
    assert_eq!(next_initialized_tick_within_one_word(&ticks, 30, 60, true), (0, Some(1)));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, 0, 60, true), (0, Some(1)));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, -1, 60, true), (-600, Some(0)));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, 0, 60, false), (60, Some(2)));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, 60, 60, false), (15_300, None));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, -601, 60, true), (-15_360, None));
    assert_eq!(next_initialized_tick_within_one_word(&ticks, 15_300, 60, false), (30_660, None));
}

#[test]
fn validation_names_the_problem() {
    let p = sqrt_ratio_at_tick(100).unwrap();
    let new = |p, l, t, s, f, ticks| {
        V3Pool::new(p, l, t, s, f, ticks).map(|_| ()).map_err(|e: V3PoolError| e.code())
    };
    assert_eq!(new(p, 0, 100, 10, 3000, None), Ok(()));
    assert_eq!(new(p, 0, 99, 10, 3000, None), Ok(())); // just crossed tick 100 downwards
    assert_eq!(new(p + u(1), 0, 99, 10, 3000, None), Err("tick_mismatch"));
    assert_eq!(new(p, 0, 100, 10, 1_000_000, None), Err("fee_out_of_range"));
    assert_eq!(new(p, 0, 100, 0, 3000, None), Err("tick_spacing_out_of_range"));
    assert_eq!(new(MAX_SQRT_RATIO, 0, 100, 10, 3000, None), Err("sqrt_price_out_of_range"));
    assert_eq!(new(p, 5, 100, 10, 3000, Some(vec![(0, 5), (15, -5)])), Err("tick_not_usable"));
    assert_eq!(new(p, 5, 100, 10, 3000, Some(vec![(20, 5), (10, -5)])), Err("ticks_not_sorted"));
    assert_eq!(
        new(p, 5, 100, 10, 3000, Some(vec![(0, 5), (200, -4)])),
        Err("liquidity_net_inconsistent")
    );
    assert_eq!(
        new(p, 5, 100, 10, 3000, Some(vec![(0, -5), (200, 5)])),
        Err("liquidity_net_inconsistent")
    );
    assert_eq!(new(p, 4, 100, 10, 3000, Some(vec![(0, 5), (200, -5)])), Err("liquidity_mismatch"));
    assert_eq!(new(p, 5, 100, 10, 3000, Some(vec![(0, 5), (200, -5)])), Ok(()));
}

#[test]
fn one_range_swap_is_one_step() {
    // Liquidity only in [-600, 600): from tick -30 (word -256..0 of spacing units) a small
    // swap down is one computeSwapStep towards -600. (From tick 30 it would stop at tick 0,
    // the word's edge, and round twice.)
    let pool = pool(-30, 60, 3000, &[(-600, 600, 10u128.pow(20))]);
    let step = compute_swap_step(
        pool.sqrt_price_x96(),
        sqrt_ratio_at_tick(-600).unwrap(),
        pool.liquidity(),
        u(10u128.pow(15)),
        true,
        3000,
    )
    .unwrap();
    let r = pool.swap_exact_in(true, u(10u128.pow(15))).unwrap();
    assert_eq!(r.amount_out, step.amount_out);
    assert_eq!(r.amount_in_used, u(10u128.pow(15)));
    assert_eq!(r.sqrt_price_after, step.sqrt_price_next);
    assert_eq!(r.ticks_crossed, 0);
    // A huge one drains the range, crosses -600 (liquidity 0 below) and stops at the limit.
    let r = pool.swap_exact_in(true, u(10u128.pow(30))).unwrap();
    assert!(r.amount_in_used < u(10u128.pow(30)));
    assert_eq!((r.ticks_crossed, r.liquidity_after), (1, 0));
    assert_eq!(r.sqrt_price_after, MIN_SQRT_RATIO + u(1));
    assert_eq!(r.tick_after, MIN_TICK);
    assert_eq!(
        pool.amount_out(true, u(10u128.pow(30))).unwrap_err().code(),
        "insufficient_liquidity"
    );
    // Zero does nothing; a limit on the wrong side is the contract's SPL.
    let r = pool.swap_exact_in(false, U256::ZERO).unwrap();
    assert_eq!((r.amount_out, r.sqrt_price_after), (U256::ZERO, pool.sqrt_price_x96()));
    let err = pool.swap(true, true, u(1), Some(pool.sqrt_price_x96())).unwrap_err();
    assert_eq!(err.code(), "price_limit");
}

#[test]
fn without_ticks_the_known_range_is_the_spacing_interval() {
    let with = pool(30, 60, 500, &[(-6000, 6000, 10u128.pow(22))]);
    let without = V3Pool::new(with.sqrt_price_x96(), with.liquidity(), 30, 60, 500, None).unwrap();
    let small = u(10u128.pow(16));
    assert_eq!(with.swap_exact_in(true, small), without.swap_exact_in(true, small));
    assert_eq!(with.swap_exact_out(false, small), without.swap_exact_out(false, small));
    let err = without.swap_exact_in(true, u(10u128.pow(21))).unwrap_err();
    assert_eq!(err, V3SwapError::RangeExceeded { tick_lower: 0, tick_upper: 60 });
    assert!(with.swap_exact_in(true, u(10u128.pow(21))).is_ok());
}

/// Random pools: 1-4 positions on the spacing grid around the price.
fn random_pool() -> impl Strategy<Value = V3Pool> {
    let fees =
        prop_oneof![Just((100u32, 1i32)), Just((500, 10)), Just((3000, 60)), Just((10_000, 200))];
    (
        fees,
        -2000i32..2000,
        prop::collection::vec((1i32..3000, 1i32..3000, 1u128..(1u128 << 100)), 1..5),
    )
        .prop_map(|((fee, spacing), tick, raw)| {
            let positions: Vec<_> = raw
                .into_iter()
                .map(|(below, above, l)| {
                    let lo = (tick - below).div_euclid(spacing) * spacing;
                    let hi = (tick + above).div_euclid(spacing) * spacing + spacing;
                    (lo, hi, l)
                })
                .collect();
            pool(tick, spacing, fee, &positions)
        })
}

fn amount() -> impl Strategy<Value = U256> {
    (1u32..110, any::<u128>()).prop_map(|(bits, x)| U256::from(x >> (128 - bits)) + u(1))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_500))]

    #[test]
    fn the_state_after_a_swap_is_a_valid_pool(pool in random_pool(), zfo in any::<bool>(), x in amount(), exact_in in any::<bool>()) {
        let r = pool.swap(zfo, exact_in, x, None).unwrap();
        let after = V3Pool::new(r.sqrt_price_after, r.liquidity_after, r.tick_after,
                                pool.tick_spacing(), pool.fee(), pool.ticks().map(<[_]>::to_vec));
        prop_assert!(after.is_ok(), "{:?}", after);
        let moved_right_way = if zfo { r.sqrt_price_after <= pool.sqrt_price_x96() } else { r.sqrt_price_after >= pool.sqrt_price_x96() };
        prop_assert!(moved_right_way);
        prop_assert!(r.fee_amount <= r.amount_in_used);
    }

    #[test]
    fn more_in_never_gives_less_out(pool in random_pool(), zfo in any::<bool>(), x in amount(), y in amount()) {
        let (a, b) = (x.min(y), x.max(y));
        let (ra, rb) = (pool.swap_exact_in(zfo, a).unwrap(), pool.swap_exact_in(zfo, b).unwrap());
        prop_assert!(ra.amount_out <= rb.amount_out);
        let (ra, rb) = (pool.swap_exact_out(zfo, a).unwrap(), pool.swap_exact_out(zfo, b).unwrap());
        prop_assert!(ra.amount_in_used <= rb.amount_in_used);
    }

    #[test]
    fn exact_in_and_exact_out_agree(pool in random_pool(), zfo in any::<bool>(), x in amount()) {
        // Spending what an exact-output swap asks for yields at least that output...
        if let Ok(needed) = pool.amount_in(zfo, x) {
            let out = pool.amount_out(zfo, needed).unwrap();
            prop_assert!(out >= x, "in {} gives {} < {}", needed, out, x);
        }
        // ...and asking for what an exact-input swap gives never costs more than its input.
        if let Ok(out) = pool.amount_out(zfo, x) {
            if !out.is_zero() {
                let needed = pool.amount_in(zfo, out).unwrap();
                prop_assert!(needed <= x, "out {} needs {} > {}", out, needed, x);
            }
        }
    }

    #[test]
    fn without_ticks_either_exact_or_refused(pool in random_pool(), zfo in any::<bool>(), x in amount(), exact_in in any::<bool>()) {
        let bare = V3Pool::new(pool.sqrt_price_x96(), pool.liquidity(), pool.tick(),
                               pool.tick_spacing(), pool.fee(), None).unwrap();
        match bare.swap(zfo, exact_in, x, None) {
            Ok(r) => prop_assert_eq!(r, pool.swap(zfo, exact_in, x, None).unwrap()),
            Err(e) => prop_assert_eq!(e.code(), "range_exceeded"),
        }
    }
}
