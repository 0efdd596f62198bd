//! The search behind both route queries: exhaustive depth-first over simple paths, then the
//! water-filling split (see the module docs of [`super`]).
//!
//! [`best`] answers a query: it prepares what the query's searches share ([`candidates`]),
//! runs the depth-first search ([`walk`]) for the best single path, tries the split
//! ([`split`](mod@split)) and builds the result ([`assemble`]). The legs are quoted and paths
//! ranked in [`quote`]; the bounds that prune the search are in [`bounds`].

use ruint::aliases::U256;

use super::{GraphRoute, RouteGraph};

mod assemble;
mod bounds;
mod candidates;
mod quote;
mod split;
mod walk;

use self::assemble::route;
use self::candidates::{prepare, Memo};
use self::split::split;
use self::walk::search_best;

pub(super) use self::bounds::Bound;
// Only the graph's tests call these from outside the search.
#[cfg(test)]
pub(super) use self::bounds::edge_bound;
#[cfg(test)]
pub(super) use self::quote::{quote_in, quote_out};

/// The best route for the query (arguments checked by the caller). Unless `rebound`, the
/// split's later searches run on the whole graph's bounds (the same answer, found with less
/// pruning: for the tests; see [`split`](fn@split)).
#[allow(clippy::too_many_arguments)]
pub(super) fn best(
    g: &RouteGraph,
    start: u32,
    goal: u32,
    amount: u128,
    max_hops: usize,
    max_splits: usize,
    gas_price: u128,
    exact_in: bool,
    rebound: bool,
) -> Option<GraphRoute> {
    let gp = U256::from(gas_price);
    let none = vec![false; g.slots.len()];
    let memo = Memo::new(max_splits > 1);
    let p = prepare(g, start, goal, max_hops, exact_in, &none, memo);
    let mut found = Vec::new();
    let single = search_best(g, &p, &none, amount, max_hops, exact_in, gp, None, &mut found);
    let split = if max_splits > 1 {
        split(g, &p, amount, max_hops, max_splits, exact_in, gp, single.as_ref(), found, rebound)
    } else {
        None
    };
    let quotes = split.or_else(|| single.map(|q| vec![q]))?;
    Some(route(g, &quotes))
}
