//! The search behind both route queries: exhaustive depth-first over simple paths, then the
//! water-filling split (see the module docs of [`super`]).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::rc::Rc;

use ruint::aliases::U256;

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

/// An exact-out leg quoted at a visit, before the parallel legs are compared.
#[derive(Debug, Clone, Copy)]
struct Leg {
    slot: u32,
    z: bool,
    need: u128,
    ticks: u32,
    gas: u64,
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
/// reached, nearest first.
fn distances(g: &RouteGraph, goal: u32, depth: usize) -> (Vec<u8>, Vec<u32>) {
    let mut dist = vec![u8::MAX; g.names.len()];
    dist[goal as usize] = 0;
    let mut order = vec![goal];
    let mut from = 0;
    for d in 1..=depth {
        let to = order.len();
        for i in from..to {
            for a in &g.adjacency[order[i] as usize] {
                if dist[a.to as usize] == u8::MAX {
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

/// `bounds[r][t]`: over every path of at most `r` legs between `t` and the target, ignoring
/// the no-revisit rule, the best rate and the best cap: an upper bound on what any completion
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
            for b in &g.adjacency[u as usize] {
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
    visited: Vec<bool>,
    path: Vec<Step>,
    /// Gas of `path`.
    gas: u64,
    best: Option<Quote>,
}

impl Search<'_> {
    fn may_visit(&self, a: &Adj) -> bool {
        !self.visited[a.to as usize] && !self.excluded[a.slot as usize]
    }

    /// Whether every path through edge `a` with `amount` at hand is strictly worse than the
    /// best so far (branch and bound; the float bound carries a 1e-9 relative margin, and a
    /// path is only cut when strictly below, so ties and the optimum are never cut).
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
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
        let below = |most: f64| {
            let most = most * (1.0 + 1e-9) + 1.0;
            most.is_finite() && most < 1e38 && OFFSET + U256::from(most as u128) - cost < best.value
        };
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
    /// goal; visited tokens and excluded pools are the caller's to skip), with their rate
    /// bounds, best first.
    fn candidates(&self, token: u32) -> Candidates {
        self.p.candidates(self.g, token, self.max_hops - self.path.len() - 1, self.exact_in)
    }

    fn forward(&mut self, token: u32, amount: u128) {
        let g = self.g;
        for (bound, a) in self.candidates(token).edges.iter() {
            if !self.may_visit(a) {
                continue;
            }
            match self.prune(a, *bound, amount) {
                Cut::Keep => {}
                Cut::Rest if self.gas_price.is_zero() => break,
                Cut::Rest | Cut::Edge => continue,
            }
            let pool = g.slot_pool(a.slot);
            let Some((out, ticks)) = quote_out(pool, a.zero_for_one, amount) else {
                continue;
            };
            let z = a.zero_for_one;
            let gas = leg_gas(pool, ticks);
            self.gas += gas;
            self.path.push(Step {
                slot: a.slot,
                zero_for_one: z,
                amount_in: amount,
                amount_out: out,
                ticks,
            });
            if a.to == self.goal {
                self.offer();
            } else {
                self.visited[a.to as usize] = true;
                self.forward(a.to, out);
                self.visited[a.to as usize] = false;
            }
            self.path.pop();
            self.gas -= gas;
        }
    }

    /// Exact-out: from `token`, which must receive `amount`, towards the input token.
    ///
    /// The parallel edges towards one token are taken together (at the first of them in the
    /// candidate order): each the bounds keep is quoted, and a leg is dropped when another
    /// costs no more, burns no more gas (when gas counts) and has a smaller pool id. Whatever
    /// completes a path from the next token completes it for both, and costs no more for the
    /// smaller amount (exact-out quotes and their ticks crossed never fall as the amount grows,
    /// and a pool that pays an amount pays any smaller one: property-tested), so the dropped
    /// leg's paths rank after the other's, ties included: the answer is unchanged. With tens
    /// of parallel pools between two hubs this keeps a handful of legs out of each group
    /// instead of trying every combination of them along a path. While no path has been
    /// found, a leg whose token leads nowhere with its amount ends its group: the other legs
    /// need as much or more.
    fn backward(&mut self, token: u32, amount: u128) {
        let g = self.g;
        let c = self.candidates(token);
        let remaining = self.max_hops - self.path.len() - 1;
        // Edges from this index on are cut by their rate alone (gas not counting).
        let mut rest_from = usize::MAX;
        let mut legs: Vec<Leg> = Vec::new();
        for (i, &(_, a)) in c.edges.iter().enumerate() {
            if i >= rest_from {
                break;
            }
            let members = &c.groups[c.group[i] as usize];
            if members[0] as usize != i || self.visited[a.to as usize] {
                continue;
            }
            legs.clear();
            for &k in members.iter() {
                let k = k as usize;
                if k >= rest_from {
                    break;
                }
                let (bound, e) = c.edges[k];
                if self.excluded[e.slot as usize] {
                    continue;
                }
                match self.prune(&e, bound, amount) {
                    Cut::Keep => {}
                    Cut::Rest if self.gas_price.is_zero() => {
                        rest_from = k;
                        break;
                    }
                    Cut::Rest | Cut::Edge => continue,
                }
                // The leg trades a.to -> token: the edge's pool in the opposite direction.
                let z = !e.zero_for_one;
                let pool = g.slot_pool(e.slot);
                if let Some((need, ticks)) = quote_in(pool, z, amount) {
                    legs.push(Leg { slot: e.slot, z, need, ticks, gas: leg_gas(pool, ticks) });
                }
            }
            let gas_counts = !self.gas_price.is_zero();
            let id = |l: &Leg| g.slot_pool(l.slot).pool_id.as_str();
            legs.sort_by(|x, y| {
                x.need.cmp(&y.need).then(x.gas.cmp(&y.gas)).then_with(|| id(x).cmp(id(y)))
            });
            // Sorted so, a leg's dominators come before it; the kept ones are enough to look at
            // (domination is transitive).
            let mut kept = 0;
            for j in 0..legs.len() {
                let l = legs[j];
                let dominated =
                    legs[..kept].iter().any(|p| (!gas_counts || p.gas <= l.gas) && id(p) < id(&l));
                if !dominated {
                    legs[kept] = l;
                    kept += 1;
                }
            }
            let rest = self.p.bounds[remaining][a.to as usize];
            for &l in &legs[..kept] {
                if a.to != self.goal && self.hopeless(rest, l.need, l.gas) {
                    continue;
                }
                self.gas += l.gas;
                self.path.push(Step {
                    slot: l.slot,
                    zero_for_one: l.z,
                    amount_in: l.need,
                    amount_out: amount,
                    ticks: l.ticks,
                });
                let reached = a.to == self.goal || self.best.is_some();
                if a.to == self.goal {
                    self.offer();
                } else {
                    self.visited[a.to as usize] = true;
                    self.backward(a.to, l.need);
                    self.visited[a.to as usize] = false;
                }
                self.path.pop();
                self.gas -= l.gas;
                if !reached && self.best.is_none() {
                    // Nothing completes a path from `a.to` with `l.need` (with no best, only
                    // what cannot be quoted is cut), so nothing does with the larger amounts
                    // of the legs after it.
                    break;
                }
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
        for &(bound, a) in &c.edges {
            if tried == DIVE_WIDTH {
                break;
            }
            if !self.may_visit(&a) || self.prune(&a, bound, amount) != Cut::Keep {
                continue;
            }
            tried += 1;
            let z = !a.zero_for_one;
            let pool = g.slot_pool(a.slot);
            let Some((need, ticks)) = quote_in(pool, z, amount) else {
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
            self.best = Some(q);
        }
    }
}

/// The candidate edges of a token (see [`Prepared::candidates`]).
struct Cands {
    /// `(bound, edge)`, best rate first.
    edges: Vec<(Bound, Adj)>,
    /// `group[i]`: the group of `edges[i]`, the edges towards the same token (exact-out only,
    /// empty for exact-in).
    group: Vec<u32>,
    /// Each group's edges (indices into `edges`, ascending).
    groups: Vec<Vec<u32>>,
}

type Candidates = Rc<Cands>;

/// What every search of one query shares: the distances to the target, the rate bounds, and
/// each token's candidate edges, worked out on first use.
struct Prepared {
    root: u32,
    target: u32,
    dist: Vec<u8>,
    bounds: Vec<Vec<Bound>>,
    /// `cands[r][t]`: the candidates of token `t` with `r` hops left after the leg.
    cands: RefCell<Vec<Vec<Option<Candidates>>>>,
}

impl Prepared {
    /// The edges from `token` towards a token at most `remaining` hops from the target, each
    /// with the bound of the paths through it (the edge's, composed with the best from
    /// there), best rate first. The bound does not depend on the amount or the path, so the
    /// list is sorted once per query and token, however often the token is visited. The
    /// edges are also grouped by the token they lead to (parallel pools), for the exact-out
    /// comparison of parallel legs ([`Search::backward`]).
    #[allow(clippy::cast_possible_truncation)] // edge counts are far below 2^32
    fn candidates(
        &self,
        g: &RouteGraph,
        token: u32,
        remaining: usize,
        exact_in: bool,
    ) -> Candidates {
        if let Some(c) = &self.cands.borrow()[remaining][token as usize] {
            return Rc::clone(c);
        }
        let level = &self.bounds[remaining];
        let mut cands: Vec<(Bound, Adj)> = g.adjacency[token as usize]
            .iter()
            .filter(|a| usize::from(self.dist[a.to as usize]) <= remaining)
            .map(|a| (along(edge_bound(g, a, exact_in), level[a.to as usize], exact_in), *a))
            .collect();
        cands.sort_by(|x, y| y.0.rate.total_cmp(&x.0.rate));
        let mut index: HashMap<u32, u32> = HashMap::new();
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut group = Vec::with_capacity(cands.len());
        // Only the exact-out search takes parallel edges together.
        for (i, (_, a)) in cands.iter().enumerate().filter(|_| !exact_in) {
            let k = *index.entry(a.to).or_insert_with(|| {
                groups.push(Vec::new());
                (groups.len() - 1) as u32
            });
            groups[k as usize].push(i as u32);
            group.push(k);
        }
        let cands: Candidates = Rc::new(Cands { edges: cands, group, groups });
        self.cands.borrow_mut()[remaining][token as usize] = Some(Rc::clone(&cands));
        cands
    }
}

/// The distances and bounds up to `max_hops - 2` hops for every token, and the last level
/// (`max_hops - 1`) for the root's neighbours only: only the root's candidates read it (the
/// root is the only token with that many hops left), and at 10k pools working it out for every
/// token within reach read every edge of the hubs near the target once more per query.
// Distances are at most MAX_HOPS.
#[allow(clippy::cast_possible_truncation)]
fn prepare(g: &RouteGraph, start: u32, goal: u32, max_hops: usize, exact_in: bool) -> Prepared {
    let (root, target) = if exact_in { (start, goal) } else { (goal, start) };
    let depth = max_hops - 1;
    let (mut dist, order) = distances(g, target, depth.saturating_sub(1));
    let mut bounds = path_bounds(g, &dist, &order, depth.saturating_sub(1), exact_in);
    if depth > 0 {
        let prev = &bounds[depth - 1];
        let mut top = prev.clone();
        let mut done = vec![false; g.names.len()];
        for b in &g.adjacency[root as usize] {
            let t = b.to as usize;
            if std::mem::replace(&mut done[t], true) {
                continue;
            }
            for a in &g.adjacency[t] {
                let u = a.to as usize;
                if usize::from(dist[u]) < depth {
                    dist[t] = dist[t].min(depth as u8);
                    let rest = prev[u];
                    if rest.rate > 0.0 {
                        top[t] = top[t].max(along(edge_bound(g, a, exact_in), rest, exact_in));
                    }
                }
            }
        }
        bounds.push(top);
    }
    let cands = RefCell::new(vec![vec![None; g.names.len()]; max_hops]);
    Prepared { root, target, dist, bounds, cands }
}

/// The best path for `amount` avoiding the `excluded` pools.
#[allow(clippy::too_many_arguments)]
fn search_best(
    g: &RouteGraph,
    p: &Prepared,
    excluded: &[bool],
    amount: u128,
    max_hops: usize,
    exact_in: bool,
    gas_price: U256,
) -> Option<Quote> {
    let mut visited = vec![false; g.names.len()];
    visited[p.root as usize] = true;
    let mut s = Search {
        g,
        p,
        goal: p.target,
        max_hops,
        exact_in,
        gas_price,
        excluded,
        visited,
        path: Vec::with_capacity(max_hops),
        gas: 0,
        best: None,
    };
    if exact_in {
        s.forward(p.root, amount);
    } else {
        s.dive(p.root, amount);
        s.backward(p.root, amount);
    }
    s.best
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

/// The best route for the query (arguments checked by the caller).
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
) -> Option<GraphRoute> {
    let gp = U256::from(gas_price);
    let p = prepare(g, start, goal, max_hops, exact_in);
    let none = vec![false; g.slots.len()];
    let single = search_best(g, &p, &none, amount, max_hops, exact_in, gp);
    let split = if max_splits > 1 {
        split(g, &p, amount, max_hops, max_splits, exact_in, gp, single.as_ref())
    } else {
        None
    };
    let quotes = split.or_else(|| single.map(|q| vec![q]))?;
    Some(route(g, &quotes))
}

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
) -> Option<Vec<Quote>> {
    let share = amount / max_splits as u128;
    if share == 0 {
        return None;
    }
    // The greedy pick over all paths ranked for the share (best first, skipping any that
    // shares a pool with one taken) is the same as: the best path, then the best path avoiding
    // its pools, and so on. The latter is what is run, so the bounds prune each search.
    let mut excluded = vec![false; g.slots.len()];
    let mut candidates: Vec<Vec<(u32, bool)>> = Vec::new();
    while candidates.len() < max_splits {
        let Some(q) = search_best(g, p, &excluded, share, max_hops, exact_in, gp) else {
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
