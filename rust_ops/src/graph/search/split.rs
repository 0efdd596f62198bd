//! The water-filling split (see the module docs of [`crate::graph`]): [`split`] picks
//! pool-disjoint candidate paths by repeated searches ([`super::walk`]), each seeded with a
//! path found before ([`seed`]), then hands out the amount chunk by chunk, re-quoting the
//! paths whole ([`quote_path`]).

use ruint::aliases::U256;

use super::candidates::{prepare, Prepared};
use super::quote::{quote_in, quote_out, rank, value, Quote, Step};
use super::walk::search_best;
use crate::graph::{RouteGraph, OFFSET, SPLIT_CHUNKS};

/// Paths of earlier searches tried as the seed of the next ([`search_best`]): the last found.
const SEEDS: usize = 2;

/// The best of the last [`SEEDS`] `found` paths that avoid the `excluded` pools, quoted for
/// `amount`.
fn seed(
    g: &RouteGraph,
    found: &[Vec<(u32, bool)>],
    excluded: &[bool],
    amount: u128,
    exact_in: bool,
    gas_price: U256,
) -> Option<Quote> {
    found[found.len().saturating_sub(SEEDS)..]
        .iter()
        .filter(|legs| legs.iter().all(|&(slot, _)| !excluded[slot as usize]))
        .filter_map(|legs| quote_path(g, legs, amount, exact_in, gas_price))
        .min_by(|a, b| rank(g, a, b))
}

/// Quotes a fixed path (pools and directions, trading order) for `amount`.
fn quote_path(
    g: &RouteGraph,
    legs: &[(u32, bool)],
    amount: u128,
    exact_in: bool,
    gas_price: U256,
) -> Option<Quote> {
    let mut steps = Vec::with_capacity(legs.len());
    let mut x = amount;
    if exact_in {
        for &(slot, z) in legs {
            let (out, ticks) = quote_out(g.slot_pool(slot), z, x)?;
            steps.push(Step { slot, zero_for_one: z, amount_in: x, amount_out: out, ticks });
            x = out;
        }
    } else {
        for &(slot, z) in legs.iter().rev() {
            let (need, ticks) = quote_in(g.slot_pool(slot), z, x)?;
            steps.push(Step { slot, zero_for_one: z, amount_in: need, amount_out: x, ticks });
            x = need;
        }
        steps.reverse();
    }
    Some(Quote { value: value(g, &steps, exact_in, gas_price), steps })
}

/// Most pools of a target whose bounds the split works out again for each search (see
/// [`split`]).
const LEAF_EDGES: usize = 8;

/// The water-filling split over pool-disjoint paths, if it beats `single` (module docs).
#[allow(clippy::too_many_arguments)]
pub(super) fn split(
    g: &RouteGraph,
    p: &Prepared,
    amount: u128,
    max_hops: usize,
    max_splits: usize,
    exact_in: bool,
    gp: U256,
    single: Option<&Quote>,
    mut found: Vec<Vec<(u32, bool)>>,
    rebound: bool,
) -> Option<Vec<Quote>> {
    let share = amount / max_splits as u128;
    if share == 0 {
        return None;
    }
    // The greedy pick over all paths ranked for the share (best first, skipping any that
    // shares a pool with one taken) is the same as: the best path, then the best path avoiding
    // its pools, and so on. The latter is what is run, so the bounds prune each search; and
    // each starts from the best of the paths found before it that it may take, quoted for
    // the share.
    let mut excluded = vec![false; g.slots.len()];
    let mut candidates: Vec<Vec<(u32, bool)>> = Vec::new();
    while candidates.len() < max_splits {
        let start = seed(g, &found, &excluded, share, exact_in, gp);
        // The bounds and distances again without the pools taken, when the target is a leaf
        // (each path taken ends in one of its few pools): those of the whole graph still count
        // the paths through them, so they cut little once the best paths are excluded, and
        // when no path is left (the leaf's pools all taken) the search only learns it at the
        // last leg of every path over the hubs' parallel pools. A hub target keeps the
        // query's: its pools are many, and working its bounds out again reads them all.
        let fresh;
        let leaf = g.adjacency[p.target as usize].len() <= LEAF_EDGES;
        let p = if candidates.is_empty() || !rebound || !leaf {
            p
        } else {
            let (from, to) = if exact_in { (p.root, p.target) } else { (p.target, p.root) };
            fresh = prepare(g, from, to, max_hops, exact_in, &excluded, p.memo.clone());
            &fresh
        };
        let Some(q) =
            search_best(g, p, &excluded, share, max_hops, exact_in, gp, start, &mut found)
        else {
            break;
        };
        for s in &q.steps {
            excluded[s.slot as usize] = true;
        }
        candidates.push(q.steps.iter().map(|s| (s.slot, s.zero_for_one)).collect());
    }
    if candidates.len() < 2 {
        return None;
    }
    let mut alloc = vec![0u128; candidates.len()];
    let mut current: Vec<Option<Quote>> = vec![None; candidates.len()];
    // Each candidate's quote for its share plus a chunk, `(that amount, quote)`: only the
    // candidate that took the chunk (or a chunk one unit smaller) needs quoting again.
    let mut offers: Vec<Option<(u128, Option<Quote>)>> = vec![None; candidates.len()];
    let (base, rem) = (amount / SPLIT_CHUNKS, amount % SPLIT_CHUNKS);
    for c in 0..SPLIT_CHUNKS {
        let chunk = base + u128::from(c < rem);
        if chunk == 0 {
            continue;
        }
        let mut pick: Option<(usize, U256)> = None;
        for (i, legs) in candidates.iter().enumerate() {
            let want = alloc[i] + chunk;
            if offers[i].as_ref().is_none_or(|(a, _)| *a != want) {
                offers[i] = Some((want, quote_path(g, legs, want, exact_in, gp)));
            }
            let Some((_, Some(q))) = &offers[i] else {
                continue;
            };
            let old = current[i].as_ref().map_or(OFFSET, |q| q.value);
            let gain = q.value + OFFSET - old;
            if pick.as_ref().is_none_or(|p| gain > p.1) {
                pick = Some((i, gain));
            }
        }
        let (i, _) = pick?;
        alloc[i] += chunk;
        current[i] = offers[i].take().and_then(|(_, q)| q);
    }
    let quotes: Vec<Quote> = current.into_iter().flatten().collect();
    if quotes.len() < 2 {
        return None;
    }
    // Totals must fit the result's u128 fields.
    let total = |f: fn(&Quote) -> u128| {
        quotes.iter().fold(U256::ZERO, |acc, q| acc + U256::from(f(q))) <= U256::from(u128::MAX)
    };
    if !total(|q| q.steps[0].amount_in) || !total(|q| q.steps[q.steps.len() - 1].amount_out) {
        return None;
    }
    // Σ(value - OFFSET) > single - OFFSET.
    let sum = quotes.iter().fold(U256::ZERO, |acc, q| acc + q.value);
    let extra = OFFSET * U256::from(quotes.len() - 1);
    match single {
        Some(s) if sum <= s.value + extra => None,
        _ => Some(quotes),
    }
}
