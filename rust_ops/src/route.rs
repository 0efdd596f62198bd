//! Best-route search over constant-product pools: exhaustive over simple paths.
//!
//! A path visits no token twice (so no pool is used twice either) and has at most `max_hops`
//! legs. Exact-in maximises the output; exact-out minimises the input, computing backwards from
//! the wanted output with the least sufficient input per leg. Ties go to fewer hops, then to the
//! lexicographically smaller sequence of pool ids (in path order), so the answer is a
//! deterministic function of the pool set, never of its order.
//!
//! A route also carries the fee-free mid price of its path (the product of `reserve_out /
//! reserve_in` over its legs, before the trade, in lowest terms) and its price impact: how much
//! worse the executed rate `amount_out / amount_in` is than that mid rate, in parts per million,
//! rounded down and floored at 0. The impact therefore includes the pool fees.

use std::sync::Arc;

use ruint::aliases::U1024;

mod index;
mod search;

use self::index::Graph;
use self::search::{Search, Step};
use crate::error::{InvalidPoolError, RouteQueryError};
use crate::pool::Pool;

/// Longest path searched. Keeps the search bounded and the exact mid price within 1024 bits
/// (6 legs · 128 bits + 128-bit amount + 20 bits of ppm scaling = 916 bits).
pub const MAX_HOPS: usize = 6;

/// Default `max_hops` of the Python API.
pub const DEFAULT_MAX_HOPS: usize = 3;

/// One hop of a route through one pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RouteLeg {
    /// Pool traded against.
    pub pool_id: String,
    /// Venue owning the pool.
    pub venue: String,
    /// Token paid into the pool.
    pub token_in: String,
    /// Token taken out of the pool.
    pub token_out: String,
    /// Amount of `token_in`, base units.
    pub amount_in: u128,
    /// Amount of `token_out`, base units; the next leg's `amount_in`.
    pub amount_out: u128,
}

/// A priced path from `token_in` to `token_out`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The hops, in trading order.
    pub legs: Vec<RouteLeg>,
    /// Spent at the first leg.
    pub amount_in: u128,
    /// Received from the last leg.
    pub amount_out: u128,
    /// Numerator of the fee-free mid price (`token_out` per `token_in`), lowest terms.
    pub mid_price_num: U1024,
    /// Denominator of the fee-free mid price, lowest terms.
    pub mid_price_den: U1024,
    /// Executed rate against the mid rate, parts per million worse, floored at 0.
    pub price_impact_ppm: u32,
}

/// Pools indexed for repeated route queries: tokens interned, the quotable pools as a flat
/// adjacency array, and each pool's rank in pool-id order for tie-breaking.
#[derive(Debug, Clone)]
pub struct PoolSet {
    pools: Vec<Arc<Pool>>,
    graph: Graph,
    rank: Vec<u32>,
}

impl PoolSet {
    /// Indexes `pools`. Pools with a zero reserve are kept (they are listed by [`Self::pools`])
    /// but never routed through.
    ///
    /// # Errors
    ///
    /// [`InvalidPoolError::DuplicatePoolId`] if two pools share an id (the smallest such id).
    // Indices are u32 to keep edges small; four billion pools are not a use case.
    #[allow(clippy::cast_possible_truncation)]
    pub fn new<I, P>(pools: I) -> Result<Self, InvalidPoolError>
    where
        I: IntoIterator<Item = P>,
        P: Into<Arc<Pool>>,
    {
        let pools: Vec<Arc<Pool>> = pools.into_iter().map(Into::into).collect();
        let mut order: Vec<u32> = (0..pools.len() as u32).collect();
        order.sort_by(|&a, &b| pools[a as usize].pool_id().cmp(pools[b as usize].pool_id()));
        let mut rank = vec![0u32; pools.len()];
        for (r, w) in order.iter().enumerate() {
            rank[*w as usize] = r as u32;
        }
        if let Some(w) = order.windows(2).find_map(|w| {
            (pools[w[0] as usize].pool_id() == pools[w[1] as usize].pool_id()).then_some(w[1])
        }) {
            return Err(InvalidPoolError::DuplicatePoolId {
                pool_id: pools[w as usize].pool_id().to_owned(),
            });
        }

        let graph = Graph::new(&pools);
        Ok(Self { pools, graph, rank })
    }

    /// The pools, in the order given.
    #[must_use]
    pub fn pools(&self) -> &[Arc<Pool>] {
        &self.pools
    }

    /// Number of pools.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pools.len()
    }

    /// Whether the set holds no pool.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pools.is_empty()
    }

    /// The route spending exactly `amount_in` of `token_in` that yields the most `token_out`.
    ///
    /// `Ok(None)` when no path of at most `max_hops` quotable pools joins the tokens (unknown
    /// tokens included) or every path yields zero.
    ///
    /// # Errors
    ///
    /// [`RouteQueryError`] if `max_hops` is outside `1..=MAX_HOPS`, the tokens are equal, or
    /// `amount_in` is zero (checked in that order).
    pub fn best_route_exact_in(
        &self,
        token_in: &str,
        token_out: &str,
        amount_in: u128,
        max_hops: usize,
    ) -> Result<Option<Route>, RouteQueryError> {
        check_query(token_in, token_out, amount_in, "amount_in", max_hops)?;
        let (Some(start), Some(goal)) = (self.graph.token(token_in), self.graph.token(token_out))
        else {
            return Ok(None);
        };
        let mut search = Search::new(&self.graph, &self.rank, start, goal, max_hops);
        search.forward(start, amount_in);
        Ok(search.into_best().map(|path| self.route(&path)))
    }

    /// The route yielding exactly `amount_out` of `token_out` that spends the least `token_in`.
    ///
    /// Each leg's input is the least that yields the next leg's input ([`Pool::amount_in`]);
    /// legs whose pool cannot pay the amount out are not used. `Ok(None)` when no path can.
    ///
    /// # Errors
    ///
    /// [`RouteQueryError`] if `max_hops` is outside `1..=MAX_HOPS`, the tokens are equal, or
    /// `amount_out` is zero (checked in that order).
    pub fn best_route_exact_out(
        &self,
        token_in: &str,
        token_out: &str,
        amount_out: u128,
        max_hops: usize,
    ) -> Result<Option<Route>, RouteQueryError> {
        check_query(token_in, token_out, amount_out, "amount_out", max_hops)?;
        let (Some(goal), Some(start)) = (self.graph.token(token_in), self.graph.token(token_out))
        else {
            return Ok(None);
        };
        let mut search = Search::new(&self.graph, &self.rank, start, goal, max_hops);
        search.backward(start, amount_out);
        Ok(search.into_best().map(|path| self.route(&path)))
    }

    /// Turns a path (trading order) into a [`Route`] with mid price and impact.
    fn route(&self, path: &[Step]) -> Route {
        let mut num = U1024::from(1u8);
        let mut den = U1024::from(1u8);
        let legs: Vec<RouteLeg> = path
            .iter()
            .map(|&Step { pool, zero_for_one, amount_in, amount_out }| {
                let p = &self.pools[pool as usize];
                let (r_in, r_out) = p.reserves(zero_for_one);
                num *= U1024::from(r_out);
                den *= U1024::from(r_in);
                let (t_in, t_out) =
                    if zero_for_one { (p.token0(), p.token1()) } else { (p.token1(), p.token0()) };
                RouteLeg {
                    pool_id: p.pool_id().to_owned(),
                    venue: p.venue().to_owned(),
                    token_in: t_in.to_owned(),
                    token_out: t_out.to_owned(),
                    amount_in,
                    amount_out,
                }
            })
            .collect();
        let g = num.gcd(den);
        let (num, den) = (num / g, den / g);
        let amount_in = legs.first().map_or(0, |l| l.amount_in);
        let amount_out = legs.last().map_or(0, |l| l.amount_out);
        let price_impact_ppm = impact_ppm(amount_in, amount_out, num, den);
        Route {
            legs,
            amount_in,
            amount_out,
            mid_price_num: num,
            mid_price_den: den,
            price_impact_ppm,
        }
    }
}

/// `floor(1e6 · (1 - (out/in) / (num/den)))`, floored at 0.
fn impact_ppm(amount_in: u128, amount_out: u128, num: U1024, den: U1024) -> u32 {
    let mid = U1024::from(amount_in) * num; // ≤ 128 + 768 bits
    let exec = U1024::from(amount_out) * den;
    if mid.is_zero() || exec >= mid {
        return 0;
    }
    let ppm = (mid - exec) * U1024::from(1_000_000u32) / mid; // < 1e6
    u32::try_from(ppm).unwrap_or(1_000_000)
}

fn check_query(
    token_in: &str,
    token_out: &str,
    amount: u128,
    field: &'static str,
    max_hops: usize,
) -> Result<(), RouteQueryError> {
    if !(1..=MAX_HOPS).contains(&max_hops) {
        return Err(RouteQueryError::MaxHopsOutOfRange { value: max_hops.to_string() });
    }
    if token_in == token_out {
        return Err(RouteQueryError::SameToken { token: token_in.to_owned() });
    }
    if amount == 0 {
        return Err(RouteQueryError::ZeroAmount { field });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
