use proptest::prelude::*;

use super::*;

fn pool(id: &str, t0: &str, t1: &str, r0: u128, r1: u128, fee: u128) -> Pool {
    Pool::new(id.into(), "sim".into(), t0.into(), t1.into(), r0, r1, fee).unwrap()
}

fn ids(route: &Route) -> Vec<&str> {
    route.legs.iter().map(|l| l.pool_id.as_str()).collect()
}

#[test]
fn two_hops_beat_a_thin_direct_pool() {
    let set = PoolSet::new([
        pool("direct", "A", "C", 1_000, 1_000, 3000),
        pool("ab", "A", "B", 1_000_000, 1_000_000, 3000),
        pool("bc", "B", "C", 1_000_000, 1_000_000, 3000),
    ])
    .unwrap();
    let r = set.best_route_exact_in("A", "C", 1000, 3).unwrap().unwrap();
    assert_eq!(ids(&r), ["ab", "bc"]);
    // 1000 -> 996 (see cp_math) -> 992.
    assert_eq!((r.amount_in, r.legs[0].amount_out, r.amount_out), (1000, 996, 992));
    assert_eq!((r.mid_price_num, r.mid_price_den), (U1024::from(1u8), U1024::from(1u8)));
    // 1 - 992/1000 = 0.008.
    assert_eq!(r.price_impact_ppm, 8000);
    // One hop only: the direct pool it is (1000 into 1000/1000 yields 499).
    let r = set.best_route_exact_in("A", "C", 1000, 1).unwrap().unwrap();
    assert_eq!((ids(&r), r.amount_out), (vec!["direct"], 499));
}

#[test]
fn exact_out_computes_backwards() {
    let set = PoolSet::new([
        pool("ab", "A", "B", 1_000_000, 1_000_000, 3000),
        pool("bc", "B", "C", 1_000_000, 1_000_000, 3000),
    ])
    .unwrap();
    let r = set.best_route_exact_out("A", "C", 992, 3).unwrap().unwrap();
    assert_eq!(ids(&r), ["ab", "bc"]);
    // 992 of C needs 996 of B, which needs 1000 of A.
    assert_eq!(r.legs[1].amount_in, 996);
    assert_eq!(r.legs[0].amount_out, 996);
    assert_eq!((r.amount_in, r.amount_out), (1000, 992));
    // Token order on the legs follows the trade, not the pool.
    assert_eq!((r.legs[0].token_in.as_str(), r.legs[0].token_out.as_str()), ("A", "B"));
    // More than the pool holds: no route.
    assert_eq!(set.best_route_exact_out("A", "C", 1_000_000, 3).unwrap(), None);
}

#[test]
fn ties_go_to_fewer_hops_then_smaller_ids() {
    // Three identical pools between A and B: every route ties on amount and hops.
    let set = PoolSet::new([
        pool("z", "A", "B", 1000, 1000, 0),
        pool("y", "A", "B", 1000, 1000, 0),
        pool("x", "B", "A", 1000, 1000, 0),
    ])
    .unwrap();
    let r = set.best_route_exact_in("A", "B", 10, 3).unwrap().unwrap();
    assert_eq!(ids(&r), ["x"]);
    let r = set.best_route_exact_out("A", "B", 10, 3).unwrap().unwrap();
    assert_eq!(ids(&r), ["x"]);
}

#[test]
fn unknown_tokens_and_empty_pools_give_no_route() {
    let set = PoolSet::new([pool("p", "A", "B", 0, 1000, 3000)]).unwrap();
    assert_eq!(set.best_route_exact_in("A", "B", 10, 3).unwrap(), None);
    assert_eq!(set.best_route_exact_in("A", "Q", 10, 3).unwrap(), None);
    assert_eq!(set.best_route_exact_out("Q", "B", 10, 3).unwrap(), None);
    // Output rounds to zero: no route either.
    let set = PoolSet::new([pool("p", "A", "B", 1_000_000, 1, 3000)]).unwrap();
    assert_eq!(set.best_route_exact_in("A", "B", 1, 3).unwrap(), None);
}

#[test]
fn query_errors() {
    let set = PoolSet::new([pool("p", "A", "B", 10, 10, 0)]).unwrap();
    let err = |r: Result<Option<Route>, RouteQueryError>| r.unwrap_err().code();
    assert_eq!(err(set.best_route_exact_in("A", "B", 1, 0)), "max_hops_out_of_range");
    assert_eq!(err(set.best_route_exact_in("A", "B", 1, MAX_HOPS + 1)), "max_hops_out_of_range");
    assert_eq!(err(set.best_route_exact_in("A", "A", 1, 3)), "same_token");
    assert_eq!(err(set.best_route_exact_out("A", "B", 0, 3)), "zero_amount");
    let dup = PoolSet::new([
        pool("q", "A", "B", 1, 1, 0),
        pool("p", "A", "B", 1, 1, 0),
        pool("q", "B", "C", 1, 1, 0),
        pool("p", "C", "D", 1, 1, 0),
    ]);
    assert_eq!(dup.unwrap_err(), InvalidPoolError::DuplicatePoolId { pool_id: "p".into() });
}

#[test]
fn huge_reserves_over_max_hops() {
    let m = u128::MAX;
    let tokens = ["T0", "T1", "T2", "T3", "T4", "T5", "T6"];
    let pools: Vec<Pool> = (0..MAX_HOPS)
        .map(|i| pool(&format!("p{i}"), tokens[i], tokens[i + 1], m - i as u128, m / 3, 1))
        .collect();
    let set = PoolSet::new(pools).unwrap();
    let r = set.best_route_exact_in("T0", "T6", m, MAX_HOPS).unwrap().unwrap();
    assert_eq!(r.legs.len(), MAX_HOPS);
    assert!(r.price_impact_ppm > 0 && r.price_impact_ppm < 1_000_000);
    let r = set.best_route_exact_out("T0", "T6", 1, MAX_HOPS).unwrap().unwrap();
    assert_eq!(r.amount_out, 1);
}

/// Random small graphs over tokens A..E.
fn graph() -> impl Strategy<Value = Vec<Pool>> {
    let reserve = prop_oneof![0..10u128, 1..1_000_000u128, 1..=u128::MAX];
    prop::collection::vec((0..5u8, 1..5u8, reserve.clone(), reserve, 0..20_000u128), 1..12)
        .prop_map(|specs| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (a, d, r0, r1, fee))| {
                    let t = |k: u8| ((b'A' + k % 5) as char).to_string();
                    pool(&format!("p{i:02}"), &t(a), &t(a + d), r0, r1, fee)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn exact_in_route_is_consistent_and_order_free(
        pools in graph(), amount in 1..=u128::MAX, hops in 1..=4usize,
    ) {
        let set = PoolSet::new(pools.clone()).unwrap();
        let route = set.best_route_exact_in("A", "E", amount, hops).unwrap();
        let mut reversed = pools.clone();
        reversed.reverse();
        let again = PoolSet::new(reversed).unwrap().best_route_exact_in("A", "E", amount, hops).unwrap();
        prop_assert_eq!(&route, &again);
        // No single quotable pool joining the tokens does better.
        for p in pools.iter().filter(|p| p.is_quotable()) {
            let direct = match (p.token0(), p.token1()) {
                ("A", "E") => p.amount_out(true, amount).unwrap(),
                ("E", "A") => p.amount_out(false, amount).unwrap(),
                _ => continue,
            };
            prop_assert!(route.as_ref().map_or(0, |r| r.amount_out) >= direct);
        }
        if let Some(r) = route {
            prop_assert!(r.legs.len() <= hops);
            prop_assert_eq!(r.amount_in, amount);
            prop_assert!(r.price_impact_ppm < 1_000_000);
            for w in r.legs.windows(2) {
                prop_assert_eq!(w[0].amount_out, w[1].amount_in);
                prop_assert_eq!(&w[0].token_out, &w[1].token_in);
            }
        }
    }

    #[test]
    fn exact_out_route_delivers(pools in graph(), amount in 1..1_000_000u128, hops in 1..=4usize) {
        let set = PoolSet::new(pools).unwrap();
        if let Some(r) = set.best_route_exact_out("A", "E", amount, hops).unwrap() {
            prop_assert_eq!(r.amount_out, amount);
            // Replaying the legs forwards from amount_in delivers at least every leg's output.
            let mut have = r.amount_in;
            for leg in &r.legs {
                let p = set.pools().iter().find(|p| p.pool_id() == leg.pool_id).unwrap();
                prop_assert!(have >= leg.amount_in);
                have = p.amount_out(p.token0() == leg.token_in, have).unwrap();
                prop_assert!(have >= leg.amount_out);
            }
            // And the exact-in search for that input finds at least as much.
            let fwd = set.best_route_exact_in("A", "E", r.amount_in, hops).unwrap().unwrap();
            prop_assert!(fwd.amount_out >= amount);
        }
    }
}
