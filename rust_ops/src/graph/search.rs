//! The search behind both route queries: exhaustive depth-first over simple paths, then the
//! water-filling split (see the module docs of [`super`]).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::rc::Rc;

use ruint::aliases::U256;

use super::fx::FxHashMap;
use super::{
    Adj, Big, GraphLeg, GraphPath, GraphPool, GraphRoute, PoolKind, RouteGraph, GAS_BASE,
    GAS_CP_HOP, GAS_V3_HOP, GAS_V3_TICK, OFFSET, SPLIT_CHUNKS,
};
use crate::cp_math;

/// One leg of a path under search.
#[derive(Debug, Clone, Copy)]
struct Step {
    slot: u32,
    zero_for_one: bool,
    amount_in: u128,
    amount_out: u128,
    ticks: u32,
}

/// A quoted path: its value (see [`OFFSET`]) and its legs in trading order.
#[derive(Debug, Clone)]
struct Quote {
    value: U256,
    steps: Vec<Step>,
}

/// Edges tried per token by [`Search::dive`].
const DIVE_WIDTH: usize = 2;

/// Exact-in: whether edge `a`'s leg pays at most `most` for `amount`, by its bound (with the
/// search's margins).
#[allow(clippy::cast_precision_loss)]
fn pays_no_more(g: &RouteGraph, a: &Adj, amount: u128, most: u128) -> bool {
    let bound = edge_bound(g, a, true).out(amount as f64) * (1.0 + 1e-9) + 1.0;
    bound <= most as f64 * (1.0 - 1e-12)
}

/// Exact-out: whether edge `a`'s leg (from `a.to`) needs at least `least` to pay `amount`, by its
/// bound (with the search's margins).
#[allow(clippy::cast_precision_loss)]
fn costs_no_less(g: &RouteGraph, a: &Adj, amount: u128, least: u128) -> bool {
    let bound = edge_bound(g, a, false);
    let y = amount as f64;
    if bound.beyond_cap(y) {
        return true;
    }
    let need = bound.need(y).unwrap_or(y / bound.rate) * (1.0 - 1e-9) - 1.0;
    need >= least as f64 * (1.0 + 1e-12)
}

/// Exact-in: whether receiving at most `most` (a float bound, given a 1e-9 relative margin and
/// one unit) less `cost` is strictly worse than `best`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn yields_less(most: f64, cost: U256, best: U256) -> bool {
    let most = most * (1.0 + 1e-9) + 1.0;
    most.is_finite() && most < 1e38 && OFFSET + U256::from(most as u128) - cost < best
}

/// Exact-out: whether paying at least `least` (a float bound, given a 1e-9 relative margin and
/// one unit) plus `cost` is strictly worse than `best`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn costs_more(least: f64, cost: U256, best: U256) -> bool {
    let least = least * (1.0 - 1e-9) - 1.0;
    if least.is_nan() || least <= 0.0 {
        return false;
    }
    let least = if least >= 3.0e38 { u128::MAX } else { least as u128 };
    OFFSET - U256::from(least) - cost < best
}

impl RouteGraph {
    fn slot_pool(&self, slot: u32) -> &GraphPool {
        // Edges only ever name occupied slots.
        &self.slots[slot as usize].as_ref().expect("edge to an empty slot").pool
    }
}

/// Gas of one leg (see the module docs).
fn leg_gas(pool: &GraphPool, ticks: u32) -> u64 {
    match pool.kind {
        PoolKind::ConstantProduct { .. } => GAS_CP_HOP,
        PoolKind::V3(_) => GAS_V3_HOP + GAS_V3_TICK * u64::from(ticks),
    }
}

/// Output of paying exactly `amount_in` into the pool, and the ticks crossed; `None` if the
/// pool cannot take it all or pays nothing.
pub(super) fn quote_out(
    pool: &GraphPool,
    zero_for_one: bool,
    amount_in: u128,
) -> Option<(u128, u32)> {
    match &pool.kind {
        &PoolKind::ConstantProduct { reserve0, reserve1, fee } => {
            let (r_in, r_out) =
                if zero_for_one { (reserve0, reserve1) } else { (reserve1, reserve0) };
            match cp_math::amount_out(r_in, r_out, amount_in, fee) {
                Ok(out) if out > 0 => Some((out, 0)),
                _ => None,
            }
        }
        PoolKind::V3(p) => {
            let r = p.swap_exact_in(zero_for_one, U256::from(amount_in)).ok()?;
            if r.amount_in_used != U256::from(amount_in) {
                return None;
            }
            let out = u128::try_from(r.amount_out).ok()?;
            (out > 0).then_some((out, r.ticks_crossed))
        }
    }
}

/// Least input that makes the pool pay exactly `amount_out`, and the ticks crossed; `None` if
/// it cannot pay it or the input exceeds 128 bits.
pub(super) fn quote_in(
    pool: &GraphPool,
    zero_for_one: bool,
    amount_out: u128,
) -> Option<(u128, u32)> {
    match &pool.kind {
        &PoolKind::ConstantProduct { reserve0, reserve1, fee } => {
            let (r_in, r_out) =
                if zero_for_one { (reserve0, reserve1) } else { (reserve1, reserve0) };
            cp_math::amount_in(r_in, r_out, amount_out, fee).ok().map(|x| (x, 0))
        }
        PoolKind::V3(p) => {
            let r = p.swap_exact_out(zero_for_one, U256::from(amount_out)).ok()?;
            if r.amount_out != U256::from(amount_out) {
                return None;
            }
            Some((u128::try_from(r.amount_in_used).ok()?, r.ticks_crossed))
        }
    }
}

/// The value of a path (trading order), see [`OFFSET`].
fn value(g: &RouteGraph, steps: &[Step], exact_in: bool, gas_price: U256) -> U256 {
    let gas: u64 = steps.iter().map(|s| leg_gas(g.slot_pool(s.slot), s.ticks)).sum();
    let cost = gas_price * U256::from(gas);
    if exact_in {
        OFFSET + U256::from(steps[steps.len() - 1].amount_out) - cost
    } else {
        OFFSET - U256::from(steps[0].amount_in) - cost
    }
}

/// `Less` if `a` ranks before `b`: higher value, then fewer hops, then smaller pool ids.
fn rank(g: &RouteGraph, a: &Quote, b: &Quote) -> Ordering {
    b.value.cmp(&a.value).then(a.steps.len().cmp(&b.steps.len())).then_with(|| {
        let ids = |q: &Quote| {
            q.steps.iter().map(|s| g.slot_pool(s.slot).pool_id.as_str()).collect::<Vec<_>>()
        };
        ids(a).cmp(&ids(b))
    })
}

/// Hops from every token to `goal`, up to `depth` (`u8::MAX` beyond), and the tokens
/// reached, nearest first, over paths that do not pass through `root` (the search starts there,
/// so no path comes back to it): `root` is left unreached, which keeps the paths through it out
/// of the bounds built on these distances, and its edges out of every token's candidates.
/// The `excluded` pools are not walked.
fn distances(
    g: &RouteGraph,
    goal: u32,
    depth: usize,
    root: u32,
    excluded: &[bool],
) -> (Vec<u8>, Vec<u32>) {
    let mut dist = vec![u8::MAX; g.names.len()];
    dist[goal as usize] = 0;
    let mut order = vec![goal];
    let mut from = 0;
    for d in 1..=depth {
        let to = order.len();
        for i in from..to {
            for a in &g.adjacency[order[i] as usize] {
                if dist[a.to as usize] == u8::MAX && a.to != root && !excluded[a.slot as usize] {
                    // depth <= MAX_HOPS, far below u8::MAX.
                    dist[a.to as usize] = u8::try_from(d).unwrap_or(u8::MAX - 1);
                    order.push(a.to);
                }
            }
        }
        from = to;
    }
    (dist, order)
}

/// An upper bound on a leg's or a path's output: `x ↦ rate·x / (1 + rate·x·inv_cap)` (see
/// the module docs of [`super`]); `rate == 0` for no path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Bound {
    rate: f64,
    inv_cap: f64,
    /// The most the leg or path can pay out, whatever goes in.
    most: f64,
}

impl Bound {
    pub(super) const NONE: Self = Self { rate: 0.0, inv_cap: f64::INFINITY, most: 0.0 };
    const IDENTITY: Self = Self { rate: 1.0, inv_cap: 0.0, most: f64::INFINITY };

    /// A leg's bound.
    pub(super) fn new(rate: f64, inv_cap: f64, most: f64) -> Self {
        Self { rate, inv_cap, most }
    }

    /// The bound of `self` followed by `then`: the same curve shape, composed.
    fn then(self, then: Self) -> Self {
        if self.rate <= 0.0 || then.rate <= 0.0 {
            return Self::NONE;
        }
        Self {
            rate: self.rate * then.rate,
            inv_cap: self.inv_cap / then.rate + then.inv_cap,
            most: then.most.min(then.out(self.most)),
        }
    }

    /// A bound on both `self` and `other`: the better rate and the better cap.
    fn max(self, other: Self) -> Self {
        Self {
            rate: self.rate.max(other.rate),
            inv_cap: self.inv_cap.min(other.inv_cap),
            most: self.most.max(other.most),
        }
    }

    /// Most output for `x` in.
    pub(super) fn out(self, x: f64) -> f64 {
        let rx = self.rate * x;
        if rx.is_infinite() {
            1.0 / self.inv_cap
        } else if rx > 0.0 {
            rx / (1.0 + rx * self.inv_cap)
        } else {
            0.0
        }
    }

    /// Whether no input at all yields `y`: the curve stays below its cap, or `y` is more than
    /// the legs can pay out (with a 1e-9 margin for the float).
    pub(super) fn beyond_cap(self, y: f64) -> bool {
        y * self.inv_cap > 1.0 + 1e-9 || y > self.most * (1.0 + 1e-9) + 1.0
    }

    /// Least input that could yield `y`, or `None` when the curve is too close to its cap
    /// (`y·inv_cap > 0.999`) for the float to be trusted (the caller falls back on the rate).
    pub(super) fn need(self, y: f64) -> Option<f64> {
        let room = 1.0 - y * self.inv_cap;
        (self.rate > 0.0 && room >= 1e-3).then(|| y / (self.rate * room))
    }
}

/// The bound of the leg an edge stands for: exact-in walks edges forwards, exact-out backwards
/// (the edge at `t` towards `u` is then the leg `u -> t`).
pub(super) fn edge_bound(g: &RouteGraph, a: &Adj, exact_in: bool) -> Bound {
    let z = usize::from(if exact_in { a.zero_for_one } else { !a.zero_for_one });
    g.legs[a.slot as usize][z]
}

/// A path's bound: the edge's leg then the rest (exact-in: towards the goal), or the rest
/// then the edge's leg (exact-out: the rest leads from the input token to the edge).
fn along(edge: Bound, rest: Bound, exact_in: bool) -> Bound {
    if exact_in {
        edge.then(rest)
    } else {
        rest.then(edge)
    }
}

/// `bounds[r][t]`: over every path of at most `r` legs between `t` and the target that does not
/// pass through the root (otherwise ignoring the no-revisit rule; `order` is without the root,
/// see [`distances`]), the best rate and the best cap: an upper bound on what any completion
/// of a path at `t` can yield (exact-in), or, inverted, a lower bound on what it costs
/// (exact-out).
///
/// Worked out from the tokens `r - 1` hops away outwards (each of their edges extends their
/// paths by one leg), so only the edges of tokens nearer the target are read: a leaf target's
/// two hubs rather than every token within two hops (the max is the same in any order).
fn path_bounds(
    g: &RouteGraph,
    dist: &[u8],
    order: &[u32],
    depth: usize,
    exact_in: bool,
    excluded: &[bool],
) -> Vec<Vec<Bound>> {
    let mut bounds = vec![vec![Bound::NONE; g.names.len()]];
    bounds[0][order[0] as usize] = Bound::IDENTITY;
    for r in 1..=depth {
        let prev = &bounds[r - 1];
        let mut next = prev.clone();
        for &u in order {
            if usize::from(dist[u as usize]) >= r {
                break;
            }
            let rest = prev[u as usize];
            if rest.rate <= 0.0 {
                continue;
            }
            for b in g.adjacency[u as usize].iter().filter(|b| !excluded[b.slot as usize]) {
                // The edge at `b.to` towards `u`.
                let a = Adj { slot: b.slot, to: u, zero_for_one: !b.zero_for_one };
                let t = b.to as usize;
                next[t] = next[t].max(along(edge_bound(g, &a, exact_in), rest, exact_in));
            }
        }
        bounds.push(next);
    }
    bounds
}

/// What [`Search::prune`] concludes about an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    /// Worth trying.
    Keep,
    /// Cut by its bound's curve.
    Edge,
    /// Cut by its bound's rate alone: so is every later candidate (rates only fall along
    /// them), when gas does not count.
    Rest,
}

/// Depth-first search state, for one direction and one amount.
struct Search<'a> {
    g: &'a RouteGraph,
    p: &'a Prepared,
    goal: u32,
    max_hops: usize,
    exact_in: bool,
    gas_price: U256,
    /// Pools not to use (slots), for the split's disjoint candidates.
    excluded: &'a [bool],
    /// The root's candidates, in the order of their bounds for the search's amount.
    root: Candidates,
    visited: Vec<bool>,
    path: Vec<Step>,
    /// Gas of `path`.
    gas: u64,
    best: Option<Quote>,
    /// Exact-in: whether a quote has failed since the flag was last cleared (see
    /// [`Search::forward`]).
    failed: bool,
    /// The paths that were the best so far in turn (pools and directions, trading order).
    found: Vec<Vec<(u32, bool)>>,
}

impl Search<'_> {
    fn may_visit(&self, a: &Adj) -> bool {
        !self.visited[a.to as usize] && !self.excluded[a.slot as usize]
    }

    /// Whether every path through edge `a` with `amount` at hand is strictly worse than the
    /// best so far (branch and bound; the float bound carries a 1e-9 relative margin, and a
    /// path is only cut when strictly below, so ties and the optimum are never cut).
    #[allow(clippy::cast_precision_loss)]
    fn prune(&self, a: &Adj, bound: Bound, amount: u128) -> Cut {
        if !self.exact_in && bound.beyond_cap(amount as f64) {
            // No path through the edge can deliver the amount, whatever it costs.
            return Cut::Edge;
        }
        let Some(best) = &self.best else {
            return Cut::Keep;
        };
        let g = self.g;
        let min_gas = leg_gas(g.slot_pool(a.slot), 0);
        let cost = self.gas_price * U256::from(self.gas + min_gas);
        let x = amount as f64;
        let below = |most: f64| yields_less(most, cost, best.value);
        let above = |least: f64| costs_more(least, cost, best.value);
        if self.exact_in {
            if below(x * bound.rate) {
                Cut::Rest
            } else if below(bound.out(x)) {
                Cut::Edge
            } else {
                Cut::Keep
            }
        } else {
            if bound.rate.is_nan() || bound.rate <= 0.0 {
                return Cut::Keep;
            }
            if above(x / bound.rate) {
                Cut::Rest
            } else if bound.need(x).is_some_and(above) {
                Cut::Edge
            } else {
                Cut::Keep
            }
        }
    }

    /// The edges that may be taken from `token` (those towards a token close enough to the
    /// goal; visited tokens and excluded pools are the caller's to skip), with their bounds,
    /// best first.
    fn candidates(&self, token: u32) -> Candidates {
        if self.path.is_empty() {
            return Rc::clone(&self.root);
        }
        self.p.candidates(self.g, token, self.max_hops - self.path.len() - 1, self.exact_in)
    }

    /// Whether the candidates from `group` on are all cut, by their rate (at most
    /// `cut_rate`, in candidates sorted by rate) or, at the root, by their bounds for the
    /// search's amount (they are in the order of those bounds); gas not counting.
    fn group_out_of_reach(&self, c: &Cands, group: &Group, cut_rate: f64) -> bool {
        let key = group.key;
        if c.at.is_none() {
            return -key <= cut_rate;
        }
        let Some(best) = &self.best else {
            return false;
        };
        if !self.gas_price.is_zero() {
            return false;
        }
        if self.exact_in {
            yields_less(-key, U256::ZERO, best.value)
        } else {
            costs_more(key, U256::ZERO, best.value)
        }
    }

    /// Whether edge `a` (of `bound`) is worth quoting for `amount`, after the bounds
    /// ([`Self::prune`]); an edge cut by its rate alone cuts every edge of no better rate when
    /// gas does not count (`cut_rate` raised to it).
    fn admit(&self, a: &Adj, bound: Bound, amount: u128, cut_rate: &mut f64) -> bool {
        if bound.rate <= *cut_rate || self.excluded[a.slot as usize] {
            return false;
        }
        match self.prune(a, bound, amount) {
            Cut::Keep => true,
            Cut::Rest => {
                if self.gas_price.is_zero() {
                    *cut_rate = bound.rate;
                }
                false
            }
            Cut::Edge => false,
        }
    }

    /// Takes the leg `step` (of `gas`) towards `to`: the path is offered if it reaches the
    /// goal, searched on from `to` otherwise.
    fn follow(&mut self, step: Step, to: u32, gas: u64) {
        self.gas += gas;
        self.path.push(step);
        if to == self.goal {
            self.offer();
        } else {
            self.visited[to as usize] = true;
            if self.exact_in {
                self.forward(to, step.amount_out);
            } else {
                self.backward(to, step.amount_in);
            }
            self.visited[to as usize] = false;
        }
        self.path.pop();
        self.gas -= gas;
    }

    /// Exact-in: from `token`, holding `amount`, towards the goal.
    ///
    /// The parallel edges towards one token are tried one after the other, in the order of
    /// their pool ids. When gas does not count, a leg is not followed when one followed before
    /// it (so with a smaller pool id) pays at least as much and met no failed quote in its
    /// search, nor quoted when its bound shows it cannot pay more: a completion from
    /// the next token that holds with the smaller amount then held with the larger one too (a
    /// quote can fail as the amount grows: a V3 pool leaving its known ticks), and yields no less
    /// with it (exact-in quotes never fall as the amount grows: property-tested), while the
    /// bounds that cut a completion there cut it for less; so the leg's paths rank after the
    /// other's, ties included. With tens of parallel pools between two hubs, most are then
    /// neither quoted nor followed.
    fn forward(&mut self, token: u32, amount: u128) {
        let g = self.g;
        let c = self.candidates(token);
        let remaining = self.max_hops - self.path.len() - 1;
        let gas_counts = !self.gas_price.is_zero();
        // Edges at or below this rate are cut by their rate alone (gas not counting).
        let mut cut_rate = f64::NEG_INFINITY;
        for group in &c.groups {
            let members = c.members(group);
            let to = members[0].1.to;
            if self.group_out_of_reach(&c, group, cut_rate) {
                break;
            }
            if self.visited[to as usize] {
                continue;
            }
            // The most a leg of the group paid whose search met no failed quote.
            let mut clean: Option<u128> = None;
            let rest = self.p.bounds[remaining][to as usize];
            for &(bound, e) in members {
                if !self.admit(&e, bound, amount, &mut cut_rate) {
                    continue;
                }
                if !gas_counts && clean.is_some_and(|most| pays_no_more(g, &e, amount, most)) {
                    continue;
                }
                #[allow(clippy::cast_precision_loss)] // against a bound with a wide margin
                if amount as f64 > g.takes[e.slot as usize][usize::from(e.zero_for_one)] {
                    // More than the pool can take: the quote would fail.
                    self.failed = true;
                    continue;
                }
                let pool = g.slot_pool(e.slot);
                let Some((out, ticks)) = self.p.quote(pool, e.slot, e.zero_for_one, amount) else {
                    self.failed = true;
                    continue;
                };
                if !gas_counts && clean.is_some_and(|most| most >= out) {
                    continue;
                }
                let gas = leg_gas(pool, ticks);
                if to != self.goal && self.hopeless_in(rest, out, gas) {
                    continue;
                }
                let failed_before = std::mem::replace(&mut self.failed, false);
                let z = e.zero_for_one;
                let step = Step {
                    slot: e.slot,
                    zero_for_one: z,
                    amount_in: amount,
                    amount_out: out,
                    ticks,
                };
                self.follow(step, to, gas);
                if !self.failed {
                    clean = clean.max(Some(out));
                }
                self.failed |= failed_before;
            }
        }
    }

    /// Exact-out: from `token`, which must receive `amount`, towards the input token.
    ///
    /// The parallel edges towards one token are tried one after the other, in the order of
    /// their pool ids, and a leg is not followed when one followed before it (so with a smaller
    /// pool id) costs no more and burns no more gas (when gas counts), nor quoted when gas does
    /// not count and its bound shows it cannot cost less. Whatever completes a path from the next token
    /// completes it for both, and costs no more for the smaller amount (exact-out quotes and
    /// their ticks crossed never fall as the amount grows, and a pool that pays an amount pays
    /// any smaller one: property-tested), so the leg's paths rank after the other's, ties
    /// included: the answer is unchanged. With tens of parallel pools between two hubs, most
    /// are then neither quoted nor followed. While no path has been found, a leg whose token leads
    /// nowhere with its amount rules out the legs that need as much or more.
    fn backward(&mut self, token: u32, amount: u128) {
        let g = self.g;
        let c = self.candidates(token);
        let remaining = self.max_hops - self.path.len() - 1;
        let gas_counts = !self.gas_price.is_zero();
        // Edges at or below this rate are cut by their rate alone (gas not counting).
        let mut cut_rate = f64::NEG_INFINITY;
        // The legs of a group followed: what they need, their gas.
        let mut followed: Vec<(u128, u64)> = Vec::new();
        for group in &c.groups {
            let members = c.members(group);
            let to = members[0].1.to;
            if self.group_out_of_reach(&c, group, cut_rate) {
                break;
            }
            if self.visited[to as usize] {
                continue;
            }
            followed.clear();
            // The least amount found to lead nowhere from `to`.
            let mut dead = u128::MAX;
            let rest = self.p.bounds[remaining][to as usize];
            for &(bound, e) in members {
                if !self.admit(&e, bound, amount, &mut cut_rate) {
                    continue;
                }
                let least = followed.iter().map(|f| f.0).min();
                if !gas_counts && least.is_some_and(|least| costs_no_less(g, &e, amount, least)) {
                    continue;
                }
                // The leg trades to -> token: the edge's pool in the opposite direction.
                let z = !e.zero_for_one;
                let pool = g.slot_pool(e.slot);
                let Some((need, ticks)) = self.p.quote(pool, e.slot, z, amount) else {
                    continue;
                };
                let gas = leg_gas(pool, ticks);
                if need >= dead
                    || followed.iter().any(|&(n, gs)| n <= need && (!gas_counts || gs <= gas))
                    || (to != self.goal && self.hopeless(rest, need, gas))
                {
                    continue;
                }
                let reached = to == self.goal || self.best.is_some();
                let step = Step {
                    slot: e.slot,
                    zero_for_one: z,
                    amount_in: need,
                    amount_out: amount,
                    ticks,
                };
                self.follow(step, to, gas);
                if !reached && self.best.is_none() {
                    // Nothing completes a path from `to` with `need` (with no best, only what
                    // cannot be quoted is cut), so nothing does with more.
                    dead = dead.min(need);
                }
                followed.push((need, gas));
            }
        }
    }

    /// Exact-out: a first path, cheaply, before [`Self::backward`]: at each token the first
    /// [`DIVE_WIDTH`] edges the bounds keep, in candidate order, the first path completed
    /// taken. It is one of the paths searched, so it only seeds the best: the groups of parallel
    /// legs, which are quoted whole, are then cut by the bounds from the start. Whether a path
    /// was found.
    fn dive(&mut self, token: u32, amount: u128) -> bool {
        let g = self.g;
        let c = self.candidates(token);
        let mut tried = 0;
        for (bound, a) in c.best_edges() {
            if tried == DIVE_WIDTH {
                break;
            }
            if !self.may_visit(&a) || self.prune(&a, bound, amount) != Cut::Keep {
                continue;
            }
            tried += 1;
            let z = !a.zero_for_one;
            let pool = g.slot_pool(a.slot);
            let Some((need, ticks)) = self.p.quote(pool, a.slot, z, amount) else {
                continue;
            };
            let gas = leg_gas(pool, ticks);
            self.gas += gas;
            self.path.push(Step {
                slot: a.slot,
                zero_for_one: z,
                amount_in: need,
                amount_out: amount,
                ticks,
            });
            let found = if a.to == self.goal {
                self.offer();
                true
            } else {
                self.visited[a.to as usize] = true;
                let found = self.dive(a.to, need);
                self.visited[a.to as usize] = false;
                found
            };
            self.path.pop();
            self.gas -= gas;
            if found {
                return true;
            }
        }
        false
    }

    /// Exact-out: whether every completion from a token that must receive `need`, after a leg
    /// of `gas`, costs strictly more than the best so far (`rest` the bound of the
    /// completions, as [`Self::prune`] with the leg's exact quote instead of its bound).
    #[allow(clippy::cast_precision_loss)]
    fn hopeless(&self, rest: Bound, need: u128, gas: u64) -> bool {
        let Some(best) = &self.best else {
            return false;
        };
        if rest.rate.is_nan() || rest.rate <= 0.0 {
            return false;
        }
        let y = need as f64;
        let cost = self.gas_price * U256::from(self.gas + gas);
        costs_more(y / rest.rate, cost, best.value)
            || rest.need(y).is_some_and(|least| costs_more(least, cost, best.value))
    }

    /// Exact-in: whether every completion from a token that receives `have`, after a leg of
    /// `gas`, yields strictly less than the best so far (`rest` the bound of the completions, as
    /// [`Self::prune`] with the leg's exact quote instead of its bound).
    #[allow(clippy::cast_precision_loss)]
    fn hopeless_in(&self, rest: Bound, have: u128, gas: u64) -> bool {
        let Some(best) = &self.best else {
            return false;
        };
        let cost = self.gas_price * U256::from(self.gas + gas);
        yields_less(rest.out(have as f64), cost, best.value)
    }

    fn offer(&mut self) {
        let mut steps = self.path.clone();
        if !self.exact_in {
            steps.reverse();
        }
        let q = Quote { value: value(self.g, &steps, self.exact_in, self.gas_price), steps };
        let wins = match &self.best {
            None => true,
            Some(b) => q.value >= b.value && rank(self.g, &q, b) == Ordering::Less,
        };
        if wins {
            self.found.push(q.steps.iter().map(|s| (s.slot, s.zero_for_one)).collect());
            self.best = Some(q);
        }
    }
}

/// The candidate edges of a token (see [`Prepared::candidates`]).
struct Cands {
    /// `(bound, edge)`, the parallel edges (those towards one token) together, each group in
    /// the order of its pool ids (so the legs followed before a leg have smaller ids, see
    /// [`Search::forward`]).
    edges: Vec<(Bound, Adj)>,
    /// The groups, best first.
    groups: Vec<Group>,
    /// By rate (the order of a token visited with various amounts), or, for the root, by the
    /// bound at the search's amount ([`Cands::at_amount`]).
    at: Option<u128>,
    exact_in: bool,
}

/// A group of [`Cands`]: `edges[start..end]`, and the key of its best edge (lowest first).
#[derive(Debug, Clone, Copy)]
struct Group {
    start: u32,
    end: u32,
    key: f64,
}

/// The root's order of its candidates for `amount`: lowest first, the least a path through the
/// edge could cost (exact-out), or minus the most it could yield (exact-in); a bound the float
/// cannot give (NaN) first, so that it is never passed over.
#[allow(clippy::cast_precision_loss)]
fn root_key(bound: Bound, amount: u128, exact_in: bool) -> f64 {
    let x = amount as f64;
    let key = if exact_in {
        -bound.out(x)
    } else if bound.beyond_cap(x) {
        f64::INFINITY
    } else {
        bound.need(x).unwrap_or(x / bound.rate)
    };
    if key.is_nan() {
        f64::NEG_INFINITY
    } else {
        key
    }
}

impl Cands {
    /// `edges` in groups, ordered by their best edge's key ([`Self::key`]).
    #[allow(clippy::cast_possible_truncation)] // edge counts are far below 2^32
    fn grouped(
        g: &RouteGraph,
        mut edges: Vec<(Bound, Adj)>,
        at: Option<u128>,
        exact_in: bool,
    ) -> Self {
        edges.sort_unstable_by_key(|e| (e.1.to, e.1.slot));
        // Pool ids are unique: a total order, whatever the order the edges came in.
        let id = |e: &(Bound, Adj)| g.slot_pool(e.1.slot).pool_id.as_str();
        let mut groups = Vec::new();
        let mut start = 0;
        for i in 1..=edges.len() {
            if i == edges.len() || edges[i].1.to != edges[start].1.to {
                if i - start > 1 {
                    edges[start..i].sort_unstable_by(|x, y| id(x).cmp(id(y)));
                }
                groups.push(Group { start: start as u32, end: i as u32, key: 0.0 });
                start = i;
            }
        }
        Self { edges, groups, at, exact_in }.keyed()
    }

    /// The groups keyed by their best edge ([`Self::key`]) and sorted so (ties in the order
    /// of the tokens they lead to).
    fn keyed(mut self) -> Self {
        for i in 0..self.groups.len() {
            let members = self.members(&self.groups[i]);
            let key = members.iter().map(|e| self.key(e.0)).fold(f64::INFINITY, f64::min);
            self.groups[i].key = key;
        }
        self.groups.sort_unstable_by(|x, y| x.key.total_cmp(&y.key).then(x.start.cmp(&y.start)));
        self
    }

    /// The order of the edges: minus the rate, or the root's key for its amount.
    fn key(&self, bound: Bound) -> f64 {
        match self.at {
            None => -bound.rate,
            Some(amount) => root_key(bound, amount, self.exact_in),
        }
    }

    /// The same edges for the root, in the order of their bounds for `amount`: the root is
    /// the one token whose amount is known when its candidates are sorted, and the curve (which
    /// sees price impact) finds the good paths first where the rate alone can rank a thin pool
    /// first, and can end the loop once the best path is found.
    fn at_amount(&self, amount: u128) -> Self {
        let (edges, groups) = (self.edges.clone(), self.groups.clone());
        Self { edges, groups, at: Some(amount), exact_in: self.exact_in }.keyed()
    }

    /// The edges of `group`.
    fn members(&self, group: &Group) -> &[(Bound, Adj)] {
        &self.edges[group.start as usize..group.end as usize]
    }

    /// Each group's best edge, in the order of the groups.
    fn best_edges(&self) -> impl Iterator<Item = (Bound, Adj)> + '_ {
        self.groups.iter().filter_map(|gr| {
            self.members(gr).iter().copied().min_by(|x, y| self.key(x.0).total_cmp(&self.key(y.0)))
        })
    }
}

type Candidates = Rc<Cands>;

/// Quotes by `(slot, zero_for_one, amount)` (see [`Prepared::quote`]).
type Memo = RefCell<FxHashMap<(u32, bool, u128), Option<(u128, u32)>>>;

/// Pair lookups worth one step of a scan of a token's edges: a hash lookup costs about this
/// many of the scan's steps.
const LOOKUP_COST: usize = 8;

/// Calls `f` on each edge from `token` towards a token at most `r` hops from the target.
/// `near`, when given, lists those tokens (nearest first); if they are fewer than the token's
/// edges (a hub with a leaf target), the edges towards them are looked up pair by pair rather
/// than the token's thousands of edges read.
fn each_edge_towards(
    g: &RouteGraph,
    token: u32,
    near: Option<&[u32]>,
    dist: &[u8],
    r: usize,
    f: impl FnMut(&Adj),
) {
    let edges = &g.adjacency[token as usize];
    match near {
        Some(near) if near.len() * LOOKUP_COST < edges.len() => {
            near.iter().flat_map(|&u| g.pair(token, u)).for_each(f);
        }
        _ => edges.iter().filter(|a| usize::from(dist[a.to as usize]) <= r).for_each(f),
    }
}

/// What every search of one query shares: the distances to the target, the rate bounds, and
/// each token's candidate edges, worked out on first use.
struct Prepared {
    root: u32,
    target: u32,
    dist: Vec<u8>,
    /// The tokens at most `max_hops - 2` hops from the target, nearest first.
    order: Vec<u32>,
    /// `level_end[r]`: how many of `order` are at most `r` hops from the target.
    level_end: Vec<usize>,
    bounds: Vec<Vec<Bound>>,
    /// `(r, t)`: the candidates of token `t` with `r` hops left after the leg. A map: a query
    /// visits a handful of tokens, and a table of every token for every hop was set up and
    /// dropped per query.
    cands: RefCell<FxHashMap<(usize, u32), Candidates>>,
    exact_in: bool,
    /// The legs quoted so far, `(slot, zero_for_one, amount)` to the quote in the query's
    /// direction, when the query runs several searches (a split): each search avoiding the
    /// pools of the paths found before it quotes mostly the same legs for the same share.
    memo: Option<Rc<Memo>>,
    /// The root's candidates in the order of their bounds for an amount, and the amount: the
    /// split's searches all run for the same share.
    root_at: RefCell<Option<(u128, Candidates)>>,
}

impl Prepared {
    /// The leg of `pool` (in `slot`) in the direction `zero_for_one`, for `amount`: what it
    /// pays (exact-in) or needs (exact-out) and the ticks it crosses, as [`quote_out`] or
    /// [`quote_in`].
    fn quote(
        &self,
        pool: &GraphPool,
        slot: u32,
        zero_for_one: bool,
        amount: u128,
    ) -> Option<(u128, u32)> {
        let quote = || {
            if self.exact_in {
                quote_out(pool, zero_for_one, amount)
            } else {
                quote_in(pool, zero_for_one, amount)
            }
        };
        let Some(memo) = &self.memo else {
            return quote();
        };
        let key = (slot, zero_for_one, amount);
        if let Some(&known) = memo.borrow().get(&key) {
            return known;
        }
        let q = quote();
        memo.borrow_mut().insert(key, q);
        q
    }

    /// The root's candidates (`remaining` hops left after its leg) in the order of their
    /// bounds for `amount` ([`Cands::at_amount`]).
    fn root_at(
        &self,
        g: &RouteGraph,
        amount: u128,
        remaining: usize,
        exact_in: bool,
    ) -> Candidates {
        if let Some((at, c)) = &*self.root_at.borrow() {
            if *at == amount {
                return Rc::clone(c);
            }
        }
        let c = Rc::new(self.candidates(g, self.root, remaining, exact_in).at_amount(amount));
        *self.root_at.borrow_mut() = Some((amount, Rc::clone(&c)));
        c
    }

    /// The tokens at most `r` hops from the target, if `order` holds them all (it does not
    /// for the root's `max_hops - 1`).
    fn near(&self, r: usize) -> Option<&[u32]> {
        self.level_end.get(r).map(|&n| &self.order[..n])
    }

    /// The edges from `token` towards a token at most `remaining` hops from the target, each
    /// with the bound of the paths through it (the edge's, composed with the best from
    /// there), grouped by the token they lead to (parallel pools, quoted together by
    /// [`Search::forward`] and [`Search::backward`]), best rate first. The bound does not
    /// depend on the amount or the path, so the list is sorted once per query and token,
    /// however often the token is visited.
    #[allow(clippy::cast_possible_truncation)] // edge counts are far below 2^32
    fn candidates(
        &self,
        g: &RouteGraph,
        token: u32,
        remaining: usize,
        exact_in: bool,
    ) -> Candidates {
        if let Some(c) = self.cands.borrow().get(&(remaining, token)) {
            return Rc::clone(c);
        }
        let level = &self.bounds[remaining];
        let mut edges: Vec<(Bound, Adj)> = Vec::new();
        each_edge_towards(g, token, self.near(remaining), &self.dist, remaining, |a| {
            edges.push((along(edge_bound(g, a, exact_in), level[a.to as usize], exact_in), *a));
        });
        let cands: Candidates = Rc::new(Cands::grouped(g, edges, None, exact_in));
        self.cands.borrow_mut().insert((remaining, token), Rc::clone(&cands));
        cands
    }
}

/// The distances and bounds up to `max_hops - 2` hops for every token, and the last level
/// (`max_hops - 1`) for the root's neighbours only: only the root's candidates read it (the
/// root is the only token with that many hops left), and at 10k pools working it out for every
/// token within reach read every edge of the hubs near the target once more per query. Paths
/// through the `excluded` pools are left out (the split's later searches cannot take them);
/// `memo` holds the query's quotes, shared by its searches.
// Distances are at most MAX_HOPS.
#[allow(clippy::cast_possible_truncation)]
fn prepare(
    g: &RouteGraph,
    start: u32,
    goal: u32,
    max_hops: usize,
    exact_in: bool,
    excluded: &[bool],
    memo: Option<Rc<Memo>>,
) -> Prepared {
    let (root, target) = if exact_in { (start, goal) } else { (goal, start) };
    let depth = max_hops - 1;
    let (mut dist, order) = distances(g, target, depth.saturating_sub(1), root, excluded);
    let level_end: Vec<usize> = (0..depth)
        .map(|r| order.partition_point(|&t| usize::from(dist[t as usize]) <= r))
        .collect();
    let mut bounds = path_bounds(g, &dist, &order, depth.saturating_sub(1), exact_in, excluded);
    if depth > 0 {
        let prev = &bounds[depth - 1];
        let mut top = prev.clone();
        let mut done = vec![false; g.names.len()];
        for b in &g.adjacency[root as usize] {
            let t = b.to as usize;
            if std::mem::replace(&mut done[t], true) {
                continue;
            }
            // `order` is every token less than `depth` hops from the target.
            let mut reaches = false;
            each_edge_towards(g, b.to, Some(&order), &dist, depth - 1, |a| {
                if excluded[a.slot as usize] {
                    return;
                }
                reaches = true;
                let rest = prev[a.to as usize];
                if rest.rate > 0.0 {
                    top[t] = top[t].max(along(edge_bound(g, a, exact_in), rest, exact_in));
                }
            });
            if reaches {
                dist[t] = dist[t].min(depth as u8);
            }
        }
        bounds.push(top);
    }
    let cands = RefCell::new(FxHashMap::default());
    let root_at = RefCell::new(None);
    Prepared { root, target, dist, order, level_end, bounds, cands, exact_in, memo, root_at }
}

/// The best path for `amount` avoiding the `excluded` pools, starting from `seed` (a path of
/// the search's, quoted for `amount`: the answer is the same, found with a best to cut by from
/// the start); and the paths that were the best so far in turn (`found`, appended).
#[allow(clippy::too_many_arguments)]
fn search_best(
    g: &RouteGraph,
    p: &Prepared,
    excluded: &[bool],
    amount: u128,
    max_hops: usize,
    exact_in: bool,
    gas_price: U256,
    seed: Option<Quote>,
    found: &mut Vec<Vec<(u32, bool)>>,
) -> Option<Quote> {
    let mut visited = vec![false; g.names.len()];
    visited[p.root as usize] = true;
    let root = p.root_at(g, amount, max_hops - 1, exact_in);
    let mut s = Search {
        g,
        p,
        root,
        goal: p.target,
        max_hops,
        exact_in,
        gas_price,
        excluded,
        visited,
        path: Vec::with_capacity(max_hops),
        gas: 0,
        best: seed,
        failed: false,
        found: std::mem::take(found),
    };
    if exact_in {
        s.forward(p.root, amount);
    } else {
        s.dive(p.root, amount);
        s.backward(p.root, amount);
    }
    *found = s.found;
    s.best
}

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

/// The best route for the query (arguments checked by the caller). Unless `rebound`, the
/// split's later searches run on the whole graph's bounds (the same answer, found with less
/// pruning: for the tests; see [`split`]).
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
    let memo = (max_splits > 1).then(|| Rc::new(RefCell::new(FxHashMap::default())));
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

/// Most pools of a target whose bounds the split works out again for each search (see
/// [`split`]).
const LEAF_EDGES: usize = 8;

/// The water-filling split over pool-disjoint paths, if it beats `single` (module docs).
#[allow(clippy::too_many_arguments)]
fn split(
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

/// The result for the chosen quotes.
fn route(g: &RouteGraph, quotes: &[Quote]) -> GraphRoute {
    let paths: Vec<GraphPath> = quotes.iter().map(|q| path(g, &q.steps)).collect();
    let amount_in = paths.iter().map(|p| p.amount_in).sum();
    let amount_out = paths.iter().map(|p| p.amount_out).sum();
    let (num, den) = (paths[0].mid_price_num, paths[0].mid_price_den);
    GraphRoute {
        amount_in,
        amount_out,
        mid_price_num: num,
        mid_price_den: den,
        price_impact_ppm: impact_ppm(amount_in, amount_out, num, den),
        gas: GAS_BASE + paths.iter().map(|p| p.gas).sum::<u64>(),
        paths,
    }
}

/// One path's legs, mid price, impact and gas.
fn path(g: &RouteGraph, steps: &[Step]) -> GraphPath {
    let mut num = Big::from(1u8);
    let mut den = Big::from(1u8);
    let q192 = Big::from(1u8) << 192;
    let legs: Vec<GraphLeg> = steps
        .iter()
        .map(|s| {
            let p = g.slot_pool(s.slot);
            match &p.kind {
                &PoolKind::ConstantProduct { reserve0, reserve1, .. } => {
                    let (r_in, r_out) =
                        if s.zero_for_one { (reserve0, reserve1) } else { (reserve1, reserve0) };
                    num *= Big::from(r_out);
                    den *= Big::from(r_in);
                }
                PoolKind::V3(v) => {
                    let sp = Big::from(v.sqrt_price_x96());
                    let p2 = sp * sp;
                    if s.zero_for_one {
                        num *= p2;
                        den *= q192;
                    } else {
                        num *= q192;
                        den *= p2;
                    }
                }
            }
            let (t_in, t_out) =
                if s.zero_for_one { (&p.token0, &p.token1) } else { (&p.token1, &p.token0) };
            GraphLeg {
                pool_id: p.pool_id.clone(),
                venue: p.venue.clone(),
                kind: p.kind_name(),
                token_in: t_in.clone(),
                token_out: t_out.clone(),
                zero_for_one: s.zero_for_one,
                amount_in: s.amount_in,
                amount_out: s.amount_out,
                ticks_crossed: s.ticks,
                gas: leg_gas(p, s.ticks),
                fee: match &p.kind {
                    &PoolKind::ConstantProduct { fee, .. } => fee,
                    PoolKind::V3(v) => v.fee(),
                },
            }
        })
        .collect();
    let gcd = num.gcd(den);
    let (num, den) = if gcd.is_zero() { (num, den) } else { (num / gcd, den / gcd) };
    let amount_in = legs[0].amount_in;
    let amount_out = legs[legs.len() - 1].amount_out;
    GraphPath {
        amount_in,
        amount_out,
        mid_price_num: num,
        mid_price_den: den,
        price_impact_ppm: impact_ppm(amount_in, amount_out, num, den),
        gas: legs.iter().map(|l| l.gas).sum(),
        legs,
    }
}

/// `floor(1e6 · (1 - (out/in) / (num/den)))`, floored at 0.
fn impact_ppm(amount_in: u128, amount_out: u128, num: Big, den: Big) -> u32 {
    let mid = Big::from(amount_in) * num;
    let exec = Big::from(amount_out) * den;
    if mid.is_zero() || exec >= mid {
        return 0;
    }
    let ppm = (mid - exec) * Big::from(1_000_000u32) / mid;
    u32::try_from(ppm).unwrap_or(1_000_000)
}
