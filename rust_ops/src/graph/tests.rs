use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use ruint::aliases::U256;

use super::*;
use crate::v3::sqrt_ratio_at_tick;

fn cp(id: &str, t0: &str, t1: &str, r0: u128, r1: u128, fee: u128) -> GraphPool {
    let p = Pool::new(id.into(), "sim".into(), t0.into(), t1.into(), r0, r1, fee).unwrap();
    GraphPool::constant_product(&p)
}

/// A V3 pool at `tick` with `positions` `(lower, upper, L)`, or without tick data.
fn v3(
    id: &str,
    t0: &str,
    t1: &str,
    tick: i32,
    positions: &[(i32, i32, u128)],
    known: bool,
) -> GraphPool {
    let mut net = BTreeMap::<i32, i128>::new();
    let mut liquidity = 0u128;
    for &(lo, hi, l) in positions {
        *net.entry(lo).or_default() += i128::try_from(l).unwrap();
        *net.entry(hi).or_default() -= i128::try_from(l).unwrap();
        if lo <= tick && tick < hi {
            liquidity += l;
        }
    }
    let price = sqrt_ratio_at_tick(tick).unwrap() + U256::from(1u8);
    let ticks = known.then(|| net.into_iter().collect());
    let pool = V3Pool::new(price, liquidity, tick, 60, 3000, ticks).unwrap();
    GraphPool::v3(id.into(), "uni".into(), t0.into(), t1.into(), Arc::new(pool)).unwrap()
}

fn graph(pools: impl IntoIterator<Item = GraphPool>) -> RouteGraph {
    let mut g = RouteGraph::new(1);
    for p in pools {
        g.update_pool(p);
    }
    g
}

/// Whether the index of pools by token pair holds exactly each token's edges.
fn pairs_match_edges(g: &RouteGraph) -> bool {
    let mut from_edges: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    for (t, edges) in g.adjacency.iter().enumerate() {
        for a in edges {
            from_edges.entry((u32::try_from(t).unwrap(), a.to)).or_default().push(a.slot);
        }
    }
    let mut from_pairs: BTreeMap<(u32, u32), Vec<u32>> = BTreeMap::new();
    for (&(t, u), edges) in &g.pairs {
        assert!(edges.iter().all(|a| a.to == u));
        from_pairs.insert((t, u), edges.iter().map(|a| a.slot).collect());
    }
    for v in from_edges.values_mut().chain(from_pairs.values_mut()) {
        v.sort_unstable();
    }
    from_edges == from_pairs
}

fn ids(r: &GraphRoute) -> Vec<Vec<&str>> {
    r.paths.iter().map(|p| p.legs.iter().map(|l| l.pool_id.as_str()).collect()).collect()
}

const E18: u128 = 1_000_000_000_000_000_000;

#[test]
fn two_hops_and_gas() {
    let g = graph([
        cp("direct", "A", "C", 1_000, 1_000, 3000),
        cp("ab", "A", "B", 1_000_000, 1_000_000, 3000),
        cp("bc", "B", "C", 1_000_000, 1_000_000, 3000),
    ]);
    let r = g.best_route("A", "C", 1000, 3, 1, 0).unwrap().unwrap();
    assert_eq!(ids(&r), [["ab", "bc"]]);
    assert_eq!((r.amount_in, r.amount_out, r.price_impact_ppm), (1000, 992, 8000));
    assert_eq!(r.gas, GAS_BASE + 2 * GAS_CP_HOP);
    assert_eq!(r.paths[0].legs[1].gas, GAS_CP_HOP);
    // Gas priced at 1 unit of C per 100k gas... priced high enough, the direct pool wins:
    // 992 - 120000·p < 499 - 60000·p  <=>  p > 493/60000.
    let r = g.best_route("A", "C", 1000, 3, 1, 1).unwrap().unwrap();
    assert_eq!(ids(&r), [["direct"]]);
    let r = g.best_route("A", "C", 1000, 1, 1, 0).unwrap().unwrap();
    assert_eq!((ids(&r), r.amount_out), (vec![vec!["direct"]], 499));
}

#[test]
fn errors_and_unknown_tokens() {
    let g = graph([cp("ab", "A", "B", 100, 100, 0)]);
    let code = |r: Result<Option<GraphRoute>, RouteQueryError>| r.unwrap_err().code();
    assert_eq!(code(g.best_route("A", "B", 1, 0, 1, 0)), "max_hops_out_of_range");
    assert_eq!(code(g.best_route("A", "B", 1, 3, 0, 0)), "max_splits_out_of_range");
    assert_eq!(code(g.best_route("A", "B", 1, 3, 9, 0)), "max_splits_out_of_range");
    assert_eq!(code(g.best_route("A", "A", 1, 3, 1, 0)), "same_token");
    assert_eq!(code(g.best_route_exact_out("A", "B", 0, 3, 1, 0)), "zero_amount");
    assert_eq!(g.best_route("A", "Z", 1, 3, 1, 0), Ok(None));
    assert_eq!(
        RouteQueryError::MaxSplitsOutOfRange { value: "9".into() }.to_string(),
        "max_splits must be in 1..=8, got 9"
    );
}

#[test]
fn update_in_place_relink_and_remove() {
    let mut g = graph([cp("ab", "A", "B", 100, 100, 0), cp("bc", "B", "C", 100, 100, 0)]);
    assert_eq!(g.len(), 2);
    let r = g.best_route("A", "C", 10, 3, 1, 0).unwrap().unwrap();
    assert_eq!((r.paths[0].legs[0].amount_out, r.amount_out), (9, 8));
    g.update_pool(cp("ab", "A", "B", 1000, 1000, 0));
    assert_eq!(g.len(), 2);
    let r = g.best_route("A", "C", 10, 3, 1, 0).unwrap().unwrap();
    assert_eq!((r.paths[0].legs[0].amount_out, r.amount_out), (9, 8));
    // Re-linked to other tokens: no route A -> C any more.
    g.update_pool(cp("ab", "A", "D", 1000, 1000, 0));
    assert_eq!(g.best_route("A", "C", 10, 3, 1, 0), Ok(None));
    assert!(g.remove_pool("bc"));
    assert!(!g.remove_pool("bc"));
    assert_eq!(g.len(), 1);
    assert_eq!(g.pool("ab").unwrap().token1, "D");
    assert_eq!(g.best_route("D", "B", 10, 3, 1, 0), Ok(None));
}

#[test]
fn v3_out_of_range_is_unusable_not_an_error() {
    // Without tick data the V3 pool quotes only inside [0, 60): small amounts go through it,
    // large ones fall back to the (worse) constant-product pool.
    let l = 10 * E18;
    let g = graph([
        v3("v3", "A", "B", 30, &[(-600, 600, l)], false),
        cp("cp", "A", "B", E18, E18, 10_000),
    ]);
    let small = g.best_route("A", "B", 1000, 3, 1, 0).unwrap().unwrap();
    assert_eq!(ids(&small), [["v3"]]);
    assert_eq!(small.paths[0].legs[0].kind, "concentrated");
    assert_eq!(small.gas, GAS_BASE + GAS_V3_HOP);
    let big = g.best_route("A", "B", E18 / 10, 3, 1, 0).unwrap().unwrap();
    assert_eq!(ids(&big), [["cp"]]);
    // With its ticks the pool crosses them and gas counts them.
    let g = graph([v3("v3", "A", "B", 30, &[(-600, 600, l), (0, 120, l)], true)]);
    let r = g.best_route("A", "B", E18 / 10, 3, 1, 0).unwrap().unwrap();
    let leg = &r.paths[0].legs[0];
    assert!(leg.ticks_crossed >= 1);
    assert_eq!(leg.gas, GAS_V3_HOP + GAS_V3_TICK * u64::from(leg.ticks_crossed));
    let back = g.best_route_exact_out("A", "B", r.amount_out, 3, 1, 0).unwrap().unwrap();
    assert!(back.amount_in <= r.amount_in);
}

#[test]
fn mid_price_of_v3_is_the_squared_sqrt_price() {
    let g = graph([v3("v3", "A", "B", 0, &[(-600, 600, E18)], true)]);
    let r = g.best_route("A", "B", 1000, 1, 1, 0).unwrap().unwrap();
    // tick 0 price + 1: sqrtP = 2^96 + 1, price (2^96+1)^2 / 2^192, lowest terms (odd num).
    let sp = (Big::from(1u8) << 96) + Big::from(1u8);
    assert_eq!((r.mid_price_num, r.mid_price_den), (sp * sp, Big::from(1u8) << 192));
    let r = g.best_route("B", "A", 1000, 1, 1, 0).unwrap().unwrap();
    assert_eq!((r.mid_price_den, r.mid_price_num), (sp * sp, Big::from(1u8) << 192));
}

#[test]
fn splits_across_parallel_pools_when_it_pays() {
    let g = graph([
        cp("p1", "A", "B", 1000 * E18, 1000 * E18, 3000),
        cp("p2", "A", "B", 1000 * E18, 1000 * E18, 3000),
    ]);
    let single = g.best_route("A", "B", 100 * E18, 3, 1, 0).unwrap().unwrap();
    let split = g.best_route("A", "B", 100 * E18, 3, 2, 0).unwrap().unwrap();
    assert_eq!(ids(&split), [["p1"], ["p2"]]);
    assert_eq!(split.paths[0].amount_in, 50 * E18);
    assert!(split.amount_out > single.amount_out);
    assert_eq!(split.amount_in, 100 * E18);
    assert_eq!(split.gas, GAS_BASE + 2 * GAS_CP_HOP);
    // Gas worth more than the gain: no split.
    let gain = split.amount_out - single.amount_out;
    let price = gain / u128::from(GAS_CP_HOP) + 1;
    let r = g.best_route("A", "B", 100 * E18, 3, 2, price).unwrap().unwrap();
    assert_eq!(ids(&r), [["p1"]]);
    // Exact out splits too.
    let out = g.best_route_exact_out("A", "B", 90 * E18, 3, 2, 0).unwrap().unwrap();
    let one = g.best_route_exact_out("A", "B", 90 * E18, 3, 1, 0).unwrap().unwrap();
    assert_eq!(out.paths.len(), 2);
    assert_eq!(out.amount_out, 90 * E18);
    assert!(out.amount_in < one.amount_in);
}

#[test]
fn split_carries_what_no_single_path_can() {
    // Two V3 pools without tick data: each can take a little; together they take more.
    let l = 1000 * E18;
    let g = graph([
        v3("v1", "A", "B", 30, &[(-600, 600, l)], false),
        v3("v2", "A", "B", 30, &[(-600, 600, l)], false),
    ]);
    let mut amount = E18;
    while g.best_route("A", "B", amount, 1, 1, 0).unwrap().is_some() {
        amount *= 2;
    }
    let r = g.best_route("A", "B", amount, 1, 2, 0).unwrap();
    if let Some(r) = r {
        assert_eq!(r.paths.len(), 2);
        assert_eq!(r.amount_in, amount);
    }
}

fn arb_pools() -> impl Strategy<Value = Vec<(u8, u8, u128, u128, u32)>> {
    prop::collection::vec((0u8..6, 0u8..6, 1u128..1_000_000, 1u128..1_000_000, 0u32..3), 1..14)
}

fn build(spec: &[(u8, u8, u128, u128, u32)]) -> Vec<GraphPool> {
    spec.iter()
        .enumerate()
        .filter(|(_, s)| s.0 != s.1)
        .map(|(i, &(a, b, r0, r1, f))| {
            cp(
                &format!("p{i:02}"),
                &format!("T{a}"),
                &format!("T{b}"),
                r0,
                r1,
                [0u128, 500, 3000][f as usize],
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With one split and no gas, the constant-product graph finds the path that enumerating
    /// every simple path finds, both ways.
    #[test]
    fn agrees_with_brute_force(spec in arb_pools(), amount in 1u128..100_000, hops in 1usize..4) {
        let g = graph(build(&spec));
        for (a, b) in [("T0", "T1"), ("T2", "T5"), ("T3", "T0")] {
            let r = g.best_route(a, b, amount, hops, 1, 0).unwrap();
            let r = r.map(|r| (ids(&r)[0].iter().map(|x| (*x).to_owned()).collect::<Vec<_>>(), r.amount_out));
            prop_assert_eq!(r, brute(&g, a, b, amount, hops, 0, true));
            let r = g.best_route_exact_out(a, b, amount, hops, 1, 0).unwrap();
            let r = r.map(|r| (ids(&r)[0].iter().map(|x| (*x).to_owned()).collect::<Vec<_>>(), r.amount_in));
            prop_assert_eq!(r, brute(&g, a, b, amount, hops, 0, false));
        }
    }

    /// Editing a graph in place gives the answers of a graph built from the final pools.
    #[test]
    fn incremental_equals_rebuilt(spec in arb_pools(), edits in arb_pools(), removals in prop::collection::vec(0usize..14, 0..5), amount in 1u128..100_000) {
        let mut g = graph(build(&spec));
        let mut last: BTreeMap<String, GraphPool> = build(&spec).into_iter().map(|p| (p.pool_id.clone(), p)).collect();
        for p in build(&edits) {
            last.insert(p.pool_id.clone(), p.clone());
            g.update_pool(p);
        }
        for i in removals {
            let id = format!("p{i:02}");
            prop_assert_eq!(g.remove_pool(&id), last.remove(&id).is_some());
        }
        prop_assert!(pairs_match_edges(&g));
        // Rebuilt in reverse id order: answers must not depend on insertion order.
        let rebuilt = graph(last.into_values().rev());
        prop_assert_eq!(g.len(), rebuilt.len());
        for (a, b) in [("T0", "T1"), ("T2", "T5"), ("T4", "T3")] {
            for splits in [1, 3] {
                prop_assert_eq!(g.best_route(a, b, amount, 3, splits, 0).unwrap(), rebuilt.best_route(a, b, amount, 3, splits, 0).unwrap());
                prop_assert_eq!(g.best_route_exact_out(a, b, amount, 3, splits, 0).unwrap(), rebuilt.best_route_exact_out(a, b, amount, 3, splits, 0).unwrap());
            }
        }
    }

    /// The split's later searches, on bounds without the pools taken, find what they find on
    /// the whole graph's bounds: the same route, to the unit.
    #[test]
    fn split_rebound_changes_nothing(spec in arb_pools(), amount in 1u128..300_000, splits in 2usize..5, gas_price in 0u128..2) {
        let g = graph(build(&spec));
        for (a, b) in [("T0", "T1"), ("T2", "T5"), ("T4", "T3")] {
            let (Some(&s), Some(&t)) = (g.tokens.get(a), g.tokens.get(b)) else { continue };
            for exact_in in [true, false] {
                let run = |rebound| search::best(&g, s, t, amount, 3, splits, gas_price, exact_in, rebound);
                prop_assert_eq!(run(true), run(false));
            }
        }
    }

    /// A split is never worse than the best single route after gas, and respects its limits.
    #[test]
    fn split_never_worse(spec in arb_pools(), amount in 1u128..300_000, splits in 2usize..5, gas_price in 0u128..2) {
        let g = graph(build(&spec));
        let value = |r: &GraphRoute| i128::try_from(r.amount_out).unwrap() - i128::try_from(u128::from(r.gas) * gas_price).unwrap();
        let one = g.best_route("T0", "T1", amount, 3, 1, gas_price).unwrap();
        let many = g.best_route("T0", "T1", amount, 3, splits, gas_price).unwrap();
        if let Some(one) = &one {
            let many = many.as_ref().unwrap();
            prop_assert!(value(many) >= value(one));
        }
        if let Some(many) = many {
            prop_assert!(many.paths.len() <= splits);
            prop_assert_eq!(many.amount_in, amount);
            let mut seen = std::collections::HashSet::new();
            for p in &many.paths {
                prop_assert!(p.legs.len() <= 3);
                for l in &p.legs {
                    prop_assert!(seen.insert(l.pool_id.clone()));
                }
            }
        }
    }
}

/// A pool on `A`/`B` for the bound test: constant-product, or V3 with three positions around
/// the price (ticks known), or V3 without tick data.
fn bound_pool(kind: u8, r0: u128, r1: u128, tick: i32, fee: u32) -> GraphPool {
    match kind {
        0 => cp("p", "A", "B", r0, r1, u128::from(fee)),
        _ => {
            let l = r0;
            let positions = [
                (tick - 600, tick + 600, l),
                (tick - 60, tick + 120, l / 3 + 1),
                (tick - 6000, tick + 3000, l / 7 + 1),
            ];
            let positions: Vec<_> = positions
                .iter()
                .map(|&(lo, hi, l)| (lo.div_euclid(60) * 60, hi.div_euclid(60) * 60 + 60, l))
                .collect();
            v3("p", "A", "B", tick, &positions, kind == 1)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The search's per-pool bound holds: no trade gets more out than `bound.out(x)`, none
    /// gets `y` out for less than `bound.need(y)` nor beyond the cap (the pruning is exact
    /// only if it does).
    #[test]
    fn pool_bounds_hold(
        kind in 0u8..3,
        r0 in 1_000u128..10u128.pow(24),
        r1 in 1_000u128..10u128.pow(24),
        tick in -50_000i32..50_000,
        fee in prop::sample::select(vec![0u32, 100, 500, 3000, 10_000]),
        mantissa in 1u128..1_000,
        scale in 0u32..12,
        zero_for_one in any::<bool>(),
    ) {
        // From a billionth of the pool's depth to beyond it.
        let amount = (r0.min(r1) / 10u128.pow(scale) * mantissa / 100).max(1);
        let g = graph([bound_pool(kind, r0, r1, tick, fee)]);
        let pool = g.pool("p").unwrap();
        let adj = g.adjacency[g.tokens["A"] as usize][0];
        // The edge from A is the leg A -> B (zero_for_one); reversed it is B -> A.
        let a = if zero_for_one { adj } else { Adj { zero_for_one: false, ..adj } };
        let bound = search::edge_bound(&g, &a, true);
        #[allow(clippy::cast_precision_loss)]
        let x = amount as f64;
        if let Some((out, _)) = search::quote_out(pool, zero_for_one, amount) {
            #[allow(clippy::cast_precision_loss)]
            let out = out as f64;
            prop_assert!(out <= bound.out(x) * (1.0 + 1e-12) + 1.0, "out {} > bound {}", out, bound.out(x));
        }
        if let Some((need, _)) = search::quote_in(pool, zero_for_one, amount) {
            prop_assert!(!bound.beyond_cap(x), "{} out quoted, beyond the cap", amount);
            if let Some(least) = bound.need(x) {
                #[allow(clippy::cast_precision_loss)]
                let need = need as f64;
                prop_assert!(need >= least * (1.0 - 1e-12) - 1.0, "need {} < bound {}", need, least);
            }
        }
    }
}

/// A pool as [`bound_pool`] (kind, reserves or liquidity, tick, fee), an amount's mantissa and
/// scale, a step to a larger amount, and a direction.
#[allow(clippy::type_complexity)]
fn arb_quote_case() -> impl Strategy<Value = (u8, u128, u128, i32, u32, u128, u32, u128, bool)> {
    (
        0u8..3,
        1_000u128..10u128.pow(24),
        1_000u128..10u128.pow(24),
        -50_000i32..50_000,
        prop::sample::select(vec![0u32, 100, 500, 3000, 10_000]),
        1u128..1_000,
        0u32..12,
        1u128..1_000,
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// What the exact-out search's comparison of parallel legs rests on: a pool that pays an
    /// amount pays any smaller one, for no more input and no more ticks crossed (to the wei,
    /// around every tick boundary and at all it can pay, as well as at random amounts); and
    /// no amount it pays is beyond its bound's cap.
    #[test]
    fn exact_out_quotes_are_monotone(
        (kind, r0, r1, tick, fee, mantissa, scale, step, zero_for_one) in arb_quote_case(),
    ) {
        let g = graph([bound_pool(kind, r0, r1, tick, fee)]);
        let pool = g.pool("p").unwrap();
        let mut amounts = vec![(r0.min(r1) / 10u128.pow(scale) * mantissa / 100).max(1)];
        if let PoolKind::V3(v) = &pool.kind {
            // All the pool can pay.
            if let Ok(r) = v.swap(zero_for_one, false, U256::from(u128::MAX), None) {
                amounts.push(u128::try_from(r.amount_out).unwrap_or(u128::MAX));
            }
            // The output that takes the price exactly to each known tick in the direction.
            for &(t, _) in v.ticks().unwrap_or_default() {
                let limit = sqrt_ratio_at_tick(t).unwrap();
                let towards = if zero_for_one { limit < v.sqrt_price_x96() } else { limit > v.sqrt_price_x96() };
                if towards {
                    if let Ok(r) = v.swap(zero_for_one, false, U256::from(u128::MAX), Some(limit)) {
                        amounts.push(u128::try_from(r.amount_out).unwrap_or(u128::MAX));
                    }
                }
            }
        }
        let adj = g.adjacency[g.tokens["A"] as usize][0];
        let bound = search::edge_bound(&g, &Adj { zero_for_one, ..adj }, true);
        for y in amounts {
            #[allow(clippy::cast_precision_loss)]
            let beyond = bound.beyond_cap(y as f64);
            prop_assert!(beyond.then(|| search::quote_in(pool, zero_for_one, y)).flatten().is_none(), "{} out quoted, beyond the cap", y);
            for (small, large) in [(y.saturating_sub(1), y), (y, y.saturating_add(1)), (y, y.saturating_add(step * y / 1000 + 1))] {
                if small == 0 || small == large {
                    continue;
                }
                if let Some((need, ticks)) = search::quote_in(pool, zero_for_one, large) {
                    let lesser = search::quote_in(pool, zero_for_one, small);
                    prop_assert!(lesser.is_some(), "pays {} but not {}", large, small);
                    let (less, fewer) = lesser.unwrap();
                    prop_assert!(less <= need, "{} out costs {}, {} out costs {}", small, less, large, need);
                    prop_assert!(fewer <= ticks, "{} out crosses {} ticks, {} out {}", small, fewer, large, ticks);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// What the exact-in search's comparison of parallel legs rests on: when a pool takes two
    /// amounts, it pays no less for the larger (to the wei, and across tick boundaries).
    #[test]
    fn exact_in_quotes_are_monotone(
        (kind, r0, r1, tick, fee, mantissa, scale, step, zero_for_one) in arb_quote_case(),
    ) {
        let g = graph([bound_pool(kind, r0, r1, tick, fee)]);
        let pool = g.pool("p").unwrap();
        let x = (r0.max(r1) / 10u128.pow(scale) * mantissa / 100).max(1);
        for (small, large) in [(x.saturating_sub(1), x), (x, x.saturating_add(1)), (x, x.saturating_add(step * x / 100 + 1))] {
            if small == 0 || small == large {
                continue;
            }
            if let (Some((less, _)), Some((more, _))) = (search::quote_out(pool, zero_for_one, small), search::quote_out(pool, zero_for_one, large)) {
                prop_assert!(less <= more, "{} in pays {}, {} in pays {}", small, less, large, more);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The most a leg takes in bounds what the pool can take: all of it, to the end of its
    /// known liquidity, and a quote for more fails.
    #[test]
    fn takes_bounds_what_a_pool_takes(
        (kind, r0, r1, tick, fee, _, _, _, zero_for_one) in arb_quote_case(),
    ) {
        let g = graph([bound_pool(kind, r0, r1, tick, fee)]);
        let pool = g.pool("p").unwrap();
        let takes = g.takes[0][usize::from(zero_for_one)];
        if let PoolKind::V3(v) = &pool.kind {
            if let Ok(r) = v.swap(zero_for_one, true, U256::from(u128::MAX), None) {
                let used = u128::try_from(r.amount_in_used).unwrap_or(u128::MAX);
                #[allow(clippy::cast_precision_loss)]
                let used = used as f64;
                prop_assert!(used <= takes, "took {} of {}", used, takes);
            }
        }
        if takes < 1e38 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let more = (takes * (1.0 + 1e-12)) as u128 + 1;
            prop_assert!(search::quote_out(pool, zero_for_one, more).is_none(), "{} in quoted, beyond {}", more, takes);
        }
    }
}

/// Pools of the exact-out brute-force test: `(token a, token b, kind, liquidity, tick, fee)`,
/// constant-product (`kind` 0) or V3 with narrow positions around a price near 1 (so that
/// trades cross ticks and the bounds are loose), tokens `T0` to `T4`.
fn arb_mixed_pools() -> impl Strategy<Value = Vec<(u8, u8, u8, u128, i32, u32)>> {
    prop::collection::vec(
        (0u8..5, 0u8..5, 0u8..3, 10_000u128..10_000_000, -300i32..300, 0u32..3),
        2..16,
    )
}

fn build_mixed(spec: &[(u8, u8, u8, u128, i32, u32)]) -> Vec<GraphPool> {
    spec.iter()
        .enumerate()
        .filter(|(_, s)| s.0 != s.1)
        .map(|(i, &(a, b, kind, l, tick, fee))| {
            let (id, t0, t1) = (format!("p{i:02}"), format!("T{a}"), format!("T{b}"));
            if kind == 0 {
                let r1 = l + l * u128::try_from(tick + 300).unwrap() / 30_000;
                return cp(&id, &t0, &t1, l, r1, [0u128, 500, 3000][fee as usize]);
            }
            let positions = [(tick - 120, tick + 60, l), (tick - 600, tick + 600, l / 4 + 1)];
            let positions: Vec<_> = positions
                .iter()
                .map(|&(lo, hi, l)| (lo.div_euclid(60) * 60, hi.div_euclid(60) * 60 + 60, l))
                .collect();
            v3(&id, &t0, &t1, tick, &positions, true)
        })
        .collect()
}

/// The best single path by enumeration of every simple path: `(pool ids, amount out)` for
/// exact-in, ranked by output less gas; `(pool ids, amount in)` for exact-out, ranked by input
/// plus gas; then by hops, then pool ids.
fn brute(
    g: &RouteGraph,
    from: &str,
    to: &str,
    amount: u128,
    hops: usize,
    gas_price: u128,
    exact_in: bool,
) -> Option<(Vec<String>, u128)> {
    fn walk<'a>(
        g: &'a RouteGraph,
        at: &str,
        to: &str,
        hops: usize,
        path: &mut Vec<(&'a GraphPool, bool)>,
        seen: &mut Vec<String>,
        out: &mut Vec<Vec<(&'a GraphPool, bool)>>,
    ) {
        if at == to {
            out.push(path.clone());
            return;
        }
        if path.len() == hops {
            return;
        }
        for p in g.pools() {
            let (z, next) = if p.token0 == at {
                (true, &p.token1)
            } else if p.token1 == at {
                (false, &p.token0)
            } else {
                continue;
            };
            if seen.contains(next) {
                continue;
            }
            seen.push(next.clone());
            path.push((p, z));
            walk(g, next, to, hops, path, seen, out);
            path.pop();
            seen.pop();
        }
    }
    let mut paths = Vec::new();
    walk(g, from, to, hops, &mut Vec::new(), &mut vec![from.to_owned()], &mut paths);
    // Ranked by `cost`: exact-out's input plus gas, exact-in's output less gas as an offset
    // from 2^200 so that it stays unsigned (lower is better either way).
    let mut best: Option<(U256, usize, Vec<String>, u128)> = None;
    'paths: for path in paths {
        let (mut x, mut gas) = (amount, 0u64);
        let legs: Vec<_> =
            if exact_in { path.iter().collect() } else { path.iter().rev().collect() };
        for &&(p, z) in &legs {
            let quoted =
                if exact_in { search::quote_out(p, z, x) } else { search::quote_in(p, z, x) };
            let Some((next, ticks)) = quoted else {
                continue 'paths;
            };
            gas += match p.kind {
                PoolKind::ConstantProduct { .. } => GAS_CP_HOP,
                PoolKind::V3(_) => GAS_V3_HOP + GAS_V3_TICK * u64::from(ticks),
            };
            x = next;
        }
        let gas_cost = U256::from(gas_price) * U256::from(gas);
        let cost = if exact_in {
            (U256::from(1u8) << 200) + gas_cost - U256::from(x)
        } else {
            U256::from(x) + gas_cost
        };
        let key = (cost, path.len(), path.iter().map(|(p, _)| p.pool_id.clone()).collect(), x);
        if best.as_ref().is_none_or(|b| (&key.0, key.1, &key.2) < (&b.0, b.1, &b.2)) {
            best = Some(key);
        }
    }
    best.map(|(_, _, ids, x)| (ids, x))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Exact-out over constant-product and V3 pools whose trades cross ticks, with and without
    /// gas: the search (its bounds, and the legs into the goal ruled out by their quotes for
    /// smaller amounts) finds the path that enumerating every path finds.
    #[test]
    fn exact_out_agrees_with_brute_force(
        spec in arb_mixed_pools(),
        amounts in prop::collection::vec(1u128..3_000_000, 1..4),
        gas_price in prop::sample::select(vec![0u128, 1, 20]),
    ) {
        let g = graph(build_mixed(&spec));
        for (a, b) in [("T0", "T1"), ("T2", "T4"), ("T3", "T0")] {
            for &amount in &amounts {
                let r = g.best_route_exact_out(a, b, amount, 3, 1, gas_price).unwrap();
                let r = r.map(|r| (ids(&r)[0].iter().map(|x| (*x).to_owned()).collect::<Vec<_>>(), r.amount_in));
                prop_assert_eq!(r, brute(&g, a, b, amount, 3, gas_price, false));
            }
        }
    }
}
