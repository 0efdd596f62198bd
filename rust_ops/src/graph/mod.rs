//! A live route graph of one chain: tokens are nodes, pools are edges, and the best route for
//! an intent may be split across several paths.
//!
//! Pools are constant-product ([`crate::cp_math`]) or Uniswap V3 ([`crate::v3`], exact, with
//! tick crossing). [`RouteGraph::update_pool`] and [`RouteGraph::remove_pool`] edit the graph
//! in place: pools live in slots found through a hash map, and each token keeps the list of its
//! edges, so a new state for a known pool is a hash lookup and a store, and adding or removing a
//! pool touches the edge lists of its two tokens only.
//!
//! # Search
//!
//! A path is a simple path (no token twice, hence no pool twice) of at most `max_hops` legs.
//! The search is exhaustive in effect, branch and bound in practice: tokens that cannot reach
//! the goal in the hops left are skipped (breadth-first distances from the goal), and an edge
//! is skipped when even an upper bound on what any path through it can yield cannot beat the
//! best path found so far (with a 1e-9 relative margin); only paths strictly worse are cut, so
//! the answer is the exhaustive one (a property test checks it against brute force).
//!
//! The bound is a curve `x ↦ r·x / (1 + r·x / cap)` per pool and direction: `r` the spot
//! rate times `1 - fee` (no trade gets a better rate), `cap` what the pool could pay at most
//! (a constant-product pool's output reserve, where the curve is its exact output; for a V3
//! pool the output reserve of a constant-product pool with its largest range liquidity). Such
//! curves compose into the same shape along a path (`r = r1·r2`, `1/cap = 1/(r2·cap1) +
//! 1/cap2`), and over the paths of at most `h` hops from a token to the goal the best `r` and
//! the best `cap` together bound them all, so the bound sees price impact, not only fees: on a
//! large trade it cuts paths through shallow pools however good their spot price. Edges
//! are tried best bound first: the candidate edges of a token with `r` hops left, sorted by
//! their bound's rate (which does not depend on the amount), are worked out once per query and
//! token and shared by every visit, so a hub reached through many parallel pools is not
//! rescanned (its thousands of edges) on each visit; and when a hub is reached with few hops
//! left, its edges towards the few tokens that can still reach the target are looked up in an
//! index of pools by token pair rather than read from its whole list. The root's candidates,
//! whose amount is known, are tried in the order of their curve at that amount, so the best
//! path tends to be found first and the loop ends at the first edge the curve cuts. Paths
//! through the root (where every search starts) are left out of the bounds. Parallel pools
//! towards one token are compared once quoted: a leg no better than one already followed,
//! with a larger pool id, is not followed (see `search::walk::Search::forward` and `backward` for
//! why the answer is unchanged). A leg that cannot quote
//! the amount (zero reserve, a V3 swap leaving the known tick range, liquidity running out, an
//! output of zero, an amount beyond 128 bits) makes that path unusable for that amount only.
//!
//! Paths are ranked by *value*: for exact-in, `amount_out - gas_price · gas`; for exact-out,
//! `-(amount_in + gas_price · gas)` (`gas_price` is in units of the optimised token: `token_out`
//! for exact-in, `token_in` for exact-out, per gas unit; 0 ignores gas). Ties go to fewer hops,
//! then to the lexicographically smaller sequence of pool ids in trading order, so the answer
//! never depends on the order in which pools were added.
//!
//! # Splits
//!
//! With `max_splits > 1` the intent may be split across up to `max_splits` **pool-disjoint**
//! paths (disjoint, so each path's quote is exact whatever the others do):
//!
//! 1. every path is quoted for an even share `amount / max_splits`, ranked as above, and
//!    paths are taken greedily in that order while they share no pool with those taken
//!    (computed as: the best path, then the best path avoiding its pools, and so on);
//! 2. the amount is cut into [`SPLIT_CHUNKS`] chunks (`amount / SPLIT_CHUNKS`, the first
//!    `amount % SPLIT_CHUNKS` one unit larger, empty ones skipped), and each chunk goes to the
//!    candidate whose value grows most by taking it (water-filling: the path is re-quoted for
//!    its whole new share, so its own price impact and its gas, charged when it is first used,
//!    are counted; ties go to the better-ranked candidate). A chunk no candidate can take ends
//!    the split attempt;
//! 3. the split is returned only if it uses two paths or more and its value is strictly above
//!    the best single route's (or no single route can carry the whole amount). So a split is
//!    never worse than the best single route after gas.
//!
//! # Gas model
//!
//! A documented constant model, in gas units: [`GAS_BASE`] once per route, plus per leg
//! [`GAS_CP_HOP`] for a constant-product pool, or [`GAS_V3_HOP`] plus [`GAS_V3_TICK`] per
//! initialised tick crossed for a V3 pool.
//!
//! # Mid price and impact
//!
//! A path's mid price is the product over its legs of the pools' spot prices before the trade
//! (`token_out` per `token_in`, fee-free): `reserve_out / reserve_in` for a constant-product
//! pool, `sqrtPriceX96² / 2^192` (token1 per token0, inverted for token1 -> token0) for a V3
//! pool; an exact rational in lowest terms. The impact is how much worse the executed rate is
//! than the mid rate, in ppm, rounded down and floored at 0 (fees included). A split route reports the mid price of its first path (the
//! best-ranked) and the impact of its totals against it.

use std::collections::HashMap;
use std::sync::Arc;

use ruint::aliases::U256;
use ruint::Uint;

mod fx;
mod search;
#[cfg(test)]
mod tests;

use crate::error::{InvalidPoolError, RouteQueryError, FEE_DENOMINATOR};
use crate::pool::Pool;
use crate::v3::{sqrt_ratio_at_tick, V3Pool, MAX_TICK, MIN_TICK};

/// Longest path searched. Keeps the search bounded and the exact mid price within [`Big`].
pub const MAX_HOPS: usize = 6;

/// Default `max_hops` of the Python API.
pub const DEFAULT_MAX_HOPS: usize = 3;

/// Most parallel paths one route may be split across.
pub const MAX_SPLITS: usize = 8;

/// Chunks the amount is cut into when splitting.
pub const SPLIT_CHUNKS: u128 = 20;

/// Gas of a route, once: the transaction's base cost.
pub const GAS_BASE: u64 = 21_000;
/// Gas of a constant-product leg.
pub const GAS_CP_HOP: u64 = 60_000;
/// Gas of a V3 leg, before tick crossings.
pub const GAS_V3_HOP: u64 = 100_000;
/// Gas of each initialised tick a V3 leg crosses.
pub const GAS_V3_TICK: u64 = 25_000;

/// Wide enough for a mid price over [`MAX_HOPS`] V3 legs (320 bits each) times a 128-bit
/// amount times 1e6: 6·320 + 128 + 20 = 2068 bits.
pub type Big = Uint<2240, 35>;

/// The state of one pool, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PoolKind {
    /// A constant-product pool; fee in hundredths of a basis point.
    ConstantProduct {
        /// Reserve of token0.
        reserve0: u128,
        /// Reserve of token1.
        reserve1: u128,
        /// Fee, `< 1_000_000`.
        fee: u32,
    },
    /// A Uniswap V3 pool, exact.
    V3(Arc<V3Pool>),
}

/// A pool as the graph holds it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphPool {
    /// Unique id (the address on chain).
    pub pool_id: String,
    /// Venue (plugin name) owning the pool.
    pub venue: String,
    /// First token.
    pub token0: String,
    /// Second token.
    pub token1: String,
    /// The state.
    pub kind: PoolKind,
}

impl GraphPool {
    /// A constant-product pool from a validated [`Pool`].
    #[must_use]
    pub fn constant_product(pool: &Pool) -> Self {
        Self {
            pool_id: pool.pool_id().to_owned(),
            venue: pool.venue().to_owned(),
            token0: pool.token0().to_owned(),
            token1: pool.token1().to_owned(),
            kind: PoolKind::ConstantProduct {
                reserve0: pool.reserve0(),
                reserve1: pool.reserve1(),
                fee: pool.fee(),
            },
        }
    }

    /// A V3 pool between two tokens.
    ///
    /// # Errors
    ///
    /// [`InvalidPoolError::SameToken`] if `token0 == token1`.
    pub fn v3(
        pool_id: String,
        venue: String,
        token0: String,
        token1: String,
        pool: Arc<V3Pool>,
    ) -> Result<Self, InvalidPoolError> {
        if token0 == token1 {
            return Err(InvalidPoolError::SameToken { pool_id, token: token0 });
        }
        Ok(Self { pool_id, venue, token0, token1, kind: PoolKind::V3(pool) })
    }

    /// `"constant_product"` or `"concentrated"`, as `PoolState.kind`.
    #[must_use]
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PoolKind::ConstantProduct { .. } => "constant_product",
            PoolKind::V3(_) => "concentrated",
        }
    }
}

/// One hop of a graph route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphLeg {
    /// Pool traded against.
    pub pool_id: String,
    /// Venue owning the pool.
    pub venue: String,
    /// `"constant_product"` or `"concentrated"`.
    pub kind: &'static str,
    /// Token paid in.
    pub token_in: String,
    /// Token taken out.
    pub token_out: String,
    /// Whether `token_in` is the pool's token0.
    pub zero_for_one: bool,
    /// Amount of `token_in`, base units.
    pub amount_in: u128,
    /// Amount of `token_out`, base units.
    pub amount_out: u128,
    /// Initialised ticks crossed (0 for a constant-product pool).
    pub ticks_crossed: u32,
    /// Gas of the leg ([`GAS_CP_HOP`], or [`GAS_V3_HOP`] + [`GAS_V3_TICK`] per tick).
    pub gas: u64,
    /// The pool's fee, hundredths of a basis point.
    pub fee: u32,
}

/// One path of a graph route.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphPath {
    /// Legs in trading order.
    pub legs: Vec<GraphLeg>,
    /// Spent at the first leg.
    pub amount_in: u128,
    /// Received from the last leg.
    pub amount_out: u128,
    /// Numerator of the fee-free mid price (`token_out` per `token_in`), lowest terms.
    pub mid_price_num: Big,
    /// Denominator of the mid price.
    pub mid_price_den: Big,
    /// Executed rate against the mid rate, ppm worse, floored at 0.
    pub price_impact_ppm: u32,
    /// Sum of the legs' gas.
    pub gas: u64,
}

/// The answer to a route query: one path, or several pool-disjoint paths in parallel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphRoute {
    /// The paths, best-ranked first.
    pub paths: Vec<GraphPath>,
    /// Total spent.
    pub amount_in: u128,
    /// Total received.
    pub amount_out: u128,
    /// Mid price of the first path.
    pub mid_price_num: Big,
    /// Denominator of the mid price.
    pub mid_price_den: Big,
    /// Totals against the mid price, ppm worse, floored at 0.
    pub price_impact_ppm: u32,
    /// [`GAS_BASE`] plus every path's gas.
    pub gas: u64,
}

/// A token's edge: the pool in `slot`, towards token `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Adj {
    pub slot: u32,
    pub to: u32,
    pub zero_for_one: bool,
}

/// A pool in its slot, with its interned tokens.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub pool: GraphPool,
    pub t0: u32,
    pub t1: u32,
}

/// A pool's legs' bounds for the search, indexed by `zero_for_one` (never for a result): the
/// spot rate net of the fee ([`spot_rates`]), `1 / cap` (the leg pays at most
/// `r·x / (1 + r·x / cap)` for `x` in, [`spot_caps`]) and the most it pays out
/// ([`spot_most`]).
fn leg_bounds(kind: &PoolKind) -> [search::Bound; 2] {
    let (rate, inv_cap, most) = (spot_rates(kind), spot_caps(kind), spot_most(kind));
    [0, 1].map(|z| search::Bound::new(rate[z], inv_cap[z], most[z]))
}

/// The rates of a pool for the search's bounds: `[token0 per token1, token1 per token0]`, the
/// spot rate times `1 - fee`. No trade gets more: a constant-product pool pays
/// `x·γ·r_out / (r_in + x·γ) <= x·γ·r_out / r_in` for `x` in (`γ = 1 - fee`), and a V3 pool takes
/// its fee off the input and then only moves the price against the taker.
fn spot_rates(kind: &PoolKind) -> [f64; 2] {
    #[allow(clippy::cast_precision_loss)] // bounds only, with a wide margin
    match kind {
        &PoolKind::ConstantProduct { reserve0, reserve1, fee } => {
            if reserve0 == 0 || reserve1 == 0 {
                [0.0, 0.0]
            } else {
                let (r0, r1) = (reserve0 as f64, reserve1 as f64);
                let gamma = after_fee(fee);
                [r0 / r1 * gamma, r1 / r0 * gamma]
            }
        }
        PoolKind::V3(p) => {
            let limbs = p.sqrt_price_x96().into_limbs();
            let sp = limbs[0] as f64 / 2f64.powi(96)
                + limbs[1] as f64 / 2f64.powi(32)
                + limbs[2] as f64 * 2f64.powi(32);
            let price = sp * sp;
            let gamma = after_fee(p.fee());
            [gamma / price, price * gamma]
        }
    }
}

/// `1 / cap` of a pool's legs, `[token0 out, token1 out]`: with `r` its rate (as
/// [`spot_rates`]), no trade of `x` gets more than `r·x / (1 + r·x / cap)`.
///
/// A constant-product pool pays exactly `γ·x·r_out / (r_in + γ·x)`, which is that curve with
/// `cap = r_out`. A V3 pool pays at most what a constant-product pool with its largest range
/// liquidity `L` everywhere would (more liquidity only moves the price less): virtual reserves
/// `L / √P` of token0 and `L·√P` of token1, so `cap = L·√P` for token1 out, `L / √P` for token0.
fn spot_caps(kind: &PoolKind) -> [f64; 2] {
    #[allow(clippy::cast_precision_loss)] // bounds only, with a wide margin
    match kind {
        &PoolKind::ConstantProduct { reserve0, reserve1, .. } => {
            [1.0 / reserve0 as f64, 1.0 / reserve1 as f64]
        }
        PoolKind::V3(p) => {
            // Every range's liquidity is a running sum of the nets (checked by `V3Pool::new`).
            let mut most = p.liquidity() as f64;
            let mut running = 0.0f64;
            for &(_, net) in p.ticks().unwrap_or_default() {
                running += net as f64;
                most = most.max(running);
            }
            // A float sum of a few nets: a relative error far below the search's 1e-9 margin,
            // covered once more here.
            let most = most * (1.0 + 1e-12);
            let limbs = p.sqrt_price_x96().into_limbs();
            let sp = limbs[0] as f64 / 2f64.powi(96)
                + limbs[1] as f64 / 2f64.powi(32)
                + limbs[2] as f64 * 2f64.powi(32);
            [sp / most, 1.0 / (most * sp)]
        }
    }
}

/// The most a pool can pay out, `[token0 out, token1 out]`: an upper bound, for the exact-out
/// search to cut amounts no path delivers. A constant-product pool pays less than its output
/// reserve. A V3 pool pays at most what its ranges hold from the price to the end of the known
/// ticks (`L·Δ√P` of token1 going down, `L·Δ(1/√P)` of token0 going up, the swap's outputs
/// being these rounded down); without tick data, what the current range holds up to the edge
/// of its tick spacing (the swap refuses to reach it). Unbounded when liquidity remains beyond
/// the last known tick. The float sums carry a 1e-9 relative margin, and an absolute one of
/// 1e-12 of the largest virtual reserve per range for the subtraction of close prices.
fn spot_most(kind: &PoolKind) -> [f64; 2] {
    #[allow(clippy::cast_precision_loss)] // bounds only, with a wide margin
    match kind {
        &PoolKind::ConstantProduct { reserve0, reserve1, .. } => [reserve0 as f64, reserve1 as f64],
        PoolKind::V3(p) => [v3_most(p, false, false), v3_most(p, true, false)],
    }
}

/// The most a pool takes in, `[token1 in, token0 in]` (indexed by `zero_for_one`): an upper
/// bound, for the exact-in search to pass over a leg that cannot take its amount without
/// quoting it (a V3 quote that runs out of known liquidity walks the empty ticks to the end of
/// the price range before it fails). Unbounded for a constant-product pool. A V3 pool takes
/// at most what takes its price to the end of the known ticks (`L·Δ(1/√P)` of token0 going
/// down, `L·Δ√P` of token1 going up, plus the fee); without tick data, what takes it to the
/// edge of its tick spacing. Margins as [`spot_most`], wider (1e-6, and 1,000 units for the
/// rounding of each step).
fn spot_takes(kind: &PoolKind) -> [f64; 2] {
    match kind {
        PoolKind::ConstantProduct { .. } => [f64::INFINITY; 2],
        PoolKind::V3(p) => [false, true].map(|z| {
            let takes = v3_most(p, z, true) / after_fee(p.fee());
            if takes.is_nan() {
                f64::INFINITY
            } else {
                takes * (1.0 + 1e-6) + 1e3
            }
        }),
    }
}

/// What a V3 pool holds in the direction of the swap: token1 if `zero_for_one` (price going
/// down), token0 otherwise (see [`spot_most`]); or, with `input`, what it takes in to get there
/// before the fee (token0 going down, token1 going up).
#[allow(clippy::cast_precision_loss)] // bounds only, with a wide margin
fn v3_most(p: &V3Pool, zero_for_one: bool, input: bool) -> f64 {
    let sqrt_at = |t: i32| sqrt_ratio_at_tick(t).map(x96_f64);
    // Liquidity `l` between the prices `near` and `far` pays this much (or takes, `input`).
    let held = |l: u128, near: f64, far: f64| {
        let l = l as f64;
        let amount = match (zero_for_one, input) {
            (true, false) => l * (near - far),
            (false, false) => l * (1.0 / near - 1.0 / far),
            (true, true) => l * (1.0 / far - 1.0 / near),
            (false, true) => l * (far - near),
        };
        amount.max(0.0)
    };
    let sp = x96_f64(p.sqrt_price_x96());
    let mut liquidity = p.liquidity();
    let mut most_l = liquidity;
    let mut total = 0.0f64;
    let mut ranges = 1.0f64;
    match p.ticks() {
        None => {
            let lower = p.tick().div_euclid(p.tick_spacing()) * p.tick_spacing();
            let edge = if zero_for_one { lower } else { lower + p.tick_spacing() };
            let Some(far) = sqrt_at(edge.clamp(MIN_TICK, MAX_TICK)) else {
                return f64::INFINITY;
            };
            total = held(liquidity, sp, far);
        }
        Some(ticks) => {
            // The swap crosses the ticks at or below its tick going down, above it going up.
            let split = ticks.partition_point(|&(t, _)| t <= p.tick());
            let crossed: Box<dyn Iterator<Item = &(i32, i128)>> = if zero_for_one {
                Box::new(ticks[..split].iter().rev())
            } else {
                Box::new(ticks[split..].iter())
            };
            let mut near = sp;
            for &(t, net) in crossed {
                let Some(far) = sqrt_at(t) else {
                    return f64::INFINITY;
                };
                total += held(liquidity, near, far);
                ranges += 1.0;
                near = far;
                let delta = if zero_for_one { net.checked_neg() } else { Some(net) };
                let Some(next) = delta.and_then(|d| liquidity.checked_add_signed(d)) else {
                    return f64::INFINITY;
                };
                liquidity = next;
                most_l = most_l.max(liquidity);
            }
            if liquidity > 0 {
                return f64::INFINITY;
            }
        }
    }
    let virtual_reserve = most_l as f64 * if zero_for_one == input { 1.0 / sp } else { sp };
    total * (1.0 + 1e-9) + virtual_reserve * 1e-12 * ranges + 1.0
}

/// A Q64.96 number as a float (bounds only).
#[allow(clippy::cast_precision_loss)]
fn x96_f64(x: U256) -> f64 {
    let limbs = x.into_limbs();
    limbs[0] as f64 / 2f64.powi(96)
        + limbs[1] as f64 / 2f64.powi(32)
        + limbs[2] as f64 * 2f64.powi(32)
}

/// `1 - fee` as a float (`fee` in hundredths of a basis point).
fn after_fee(fee: u32) -> f64 {
    f64::from(FEE_DENOMINATOR - fee.min(FEE_DENOMINATOR)) / f64::from(FEE_DENOMINATOR)
}

/// Tokens and pools of one chain, editable in place, for best-route queries.
#[derive(Debug, Clone, Default)]
pub struct RouteGraph {
    chain_id: u64,
    tokens: HashMap<String, u32>,
    names: Vec<String>,
    adjacency: Vec<Vec<Adj>>,
    /// The edges from one token to another, `(from, to)`: the parallel pools between them. A
    /// search that reaches a hub with a few hops left only wants its edges towards the few
    /// tokens that can still reach the target, not its thousands of others.
    pairs: fx::FxHashMap<(u32, u32), Vec<Adj>>,
    slots: Vec<Option<Slot>>,
    /// The bounds of each slot's legs ([`leg_bounds`]), apart from the slots: the search reads
    /// them for thousands of edges per query, and a dense array keeps that off the pools.
    legs: Vec<[search::Bound; 2]>,
    /// The most each slot's legs take in ([`spot_takes`]).
    takes: Vec<[f64; 2]>,
    free: Vec<u32>,
    ids: HashMap<String, u32>,
}

impl RouteGraph {
    /// An empty graph for chain `chain_id`.
    #[must_use]
    pub fn new(chain_id: u64) -> Self {
        Self { chain_id, ..Self::default() }
    }

    /// The chain the graph describes.
    #[must_use]
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Number of pools.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the graph holds no pool.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The pool with id `pool_id`.
    #[must_use]
    pub fn pool(&self, pool_id: &str) -> Option<&GraphPool> {
        let slot = *self.ids.get(pool_id)?;
        self.slots[slot as usize].as_ref().map(|s| &s.pool)
    }

    /// Every pool, in no particular order.
    pub fn pools(&self) -> impl Iterator<Item = &GraphPool> {
        self.slots.iter().flatten().map(|s| &s.pool)
    }

    /// The edges from `from` to `to` (the parallel pools between the two tokens).
    pub(crate) fn pair(&self, from: u32, to: u32) -> &[Adj] {
        self.pairs.get(&(from, to)).map_or(&[], Vec::as_slice)
    }

    // Indices are u32 to keep edges small; four billion tokens or pools are not a use case.
    #[allow(clippy::cast_possible_truncation)]
    fn intern(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.tokens.get(token) {
            return id;
        }
        let id = self.names.len() as u32;
        self.tokens.insert(token.to_owned(), id);
        self.names.push(token.to_owned());
        self.adjacency.push(Vec::new());
        id
    }

    /// Adds `pool`, or replaces the state of the pool with its id. A new state between the same
    /// tokens (the common case: reserves or price moved) is stored in place; a pool whose
    /// tokens changed is re-linked.
    // Slots are u32, as token ids.
    #[allow(clippy::cast_possible_truncation)]
    pub fn update_pool(&mut self, pool: GraphPool) {
        if let Some(&slot) = self.ids.get(&pool.pool_id) {
            if let Some(s) = self.slots[slot as usize].as_mut() {
                if s.pool.token0 == pool.token0 && s.pool.token1 == pool.token1 {
                    self.legs[slot as usize] = leg_bounds(&pool.kind);
                    self.takes[slot as usize] = spot_takes(&pool.kind);
                    s.pool = pool;
                    return;
                }
            }
            let id = pool.pool_id.clone();
            self.remove_pool(&id);
        }
        let t0 = self.intern(&pool.token0);
        let t1 = self.intern(&pool.token1);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                self.legs.push([search::Bound::NONE; 2]);
                self.takes.push([0.0; 2]);
                (self.slots.len() - 1) as u32
            }
        };
        self.ids.insert(pool.pool_id.clone(), slot);
        for (from, to, zero_for_one) in [(t0, t1, true), (t1, t0, false)] {
            let edge = Adj { slot, to, zero_for_one };
            self.adjacency[from as usize].push(edge);
            self.pairs.entry((from, to)).or_default().push(edge);
        }
        self.legs[slot as usize] = leg_bounds(&pool.kind);
        self.takes[slot as usize] = spot_takes(&pool.kind);
        self.slots[slot as usize] = Some(Slot { pool, t0, t1 });
    }

    /// Removes the pool with id `pool_id`; whether there was one.
    pub fn remove_pool(&mut self, pool_id: &str) -> bool {
        let Some(slot) = self.ids.remove(pool_id) else {
            return false;
        };
        if let Some(s) = self.slots[slot as usize].take() {
            for (from, to) in [(s.t0, s.t1), (s.t1, s.t0)] {
                let edges = &mut self.adjacency[from as usize];
                if let Some(i) = edges.iter().position(|a| a.slot == slot) {
                    edges.swap_remove(i);
                }
                if let Some(edges) = self.pairs.get_mut(&(from, to)) {
                    edges.retain(|a| a.slot != slot);
                    if edges.is_empty() {
                        self.pairs.remove(&(from, to));
                    }
                }
            }
        }
        self.free.push(slot);
        true
    }

    /// The route spending exactly `amount_in` of `token_in` that is worth the most
    /// `token_out` after gas, over paths of at most `max_hops` legs, split across at most
    /// `max_splits` pool-disjoint paths (see the module docs). `gas_price` is in `token_out`
    /// base units per gas unit (0 ignores gas).
    ///
    /// `Ok(None)` when no path (unknown tokens included) can carry the amount.
    ///
    /// # Errors
    ///
    /// [`RouteQueryError`] if `max_hops` is outside `1..=MAX_HOPS`, `max_splits` outside
    /// `1..=MAX_SPLITS`, the tokens are equal, or the amount is zero (checked in that order).
    pub fn best_route(
        &self,
        token_in: &str,
        token_out: &str,
        amount_in: u128,
        max_hops: usize,
        max_splits: usize,
        gas_price: u128,
    ) -> Result<Option<GraphRoute>, RouteQueryError> {
        check_query(token_in, token_out, amount_in, "amount_in", max_hops, max_splits)?;
        let (Some(&start), Some(&goal)) = (self.tokens.get(token_in), self.tokens.get(token_out))
        else {
            return Ok(None);
        };
        Ok(search::best(self, start, goal, amount_in, max_hops, max_splits, gas_price, true, true))
    }

    /// The route receiving exactly `amount_out` of `token_out` that costs the least
    /// `token_in` after gas (`gas_price` in `token_in` base units per gas unit); otherwise as
    /// [`Self::best_route`]. Each leg's input is the least that yields the next leg's input.
    ///
    /// # Errors
    ///
    /// As [`Self::best_route`], with `amount_out`.
    pub fn best_route_exact_out(
        &self,
        token_in: &str,
        token_out: &str,
        amount_out: u128,
        max_hops: usize,
        max_splits: usize,
        gas_price: u128,
    ) -> Result<Option<GraphRoute>, RouteQueryError> {
        check_query(token_in, token_out, amount_out, "amount_out", max_hops, max_splits)?;
        let (Some(&start), Some(&goal)) = (self.tokens.get(token_in), self.tokens.get(token_out))
        else {
            return Ok(None);
        };
        Ok(search::best(
            self, start, goal, amount_out, max_hops, max_splits, gas_price, false, true,
        ))
    }
}

fn check_query(
    token_in: &str,
    token_out: &str,
    amount: u128,
    field: &'static str,
    max_hops: usize,
    max_splits: usize,
) -> Result<(), RouteQueryError> {
    if !(1..=MAX_HOPS).contains(&max_hops) {
        return Err(RouteQueryError::MaxHopsOutOfRange { value: max_hops.to_string() });
    }
    if !(1..=MAX_SPLITS).contains(&max_splits) {
        return Err(RouteQueryError::MaxSplitsOutOfRange { value: max_splits.to_string() });
    }
    if token_in == token_out {
        return Err(RouteQueryError::SameToken { token: token_in.to_owned() });
    }
    if amount == 0 {
        return Err(RouteQueryError::ZeroAmount { field });
    }
    Ok(())
}

/// `2^200`: values are carried as `OFFSET + amount_out - cost` (exact-in) or
/// `OFFSET - amount_in - cost` (exact-out), positive since amounts are below `2^128` and costs
/// below `2^192`, so one unsigned comparison ranks both.
pub(crate) const OFFSET: U256 = U256::from_limbs([0, 0, 0, 1 << 8]);
