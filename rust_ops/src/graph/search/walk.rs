//! One depth-first search over simple paths, for one direction and one amount: [`Search`],
//! which branches on each token's candidate edges ([`super::candidates`]) and cuts by the
//! bounds ([`super::bounds`]), and [`search_best`], which runs it. The single route and each
//! of the split's disjoint paths are found here.

use std::cmp::Ordering;
use std::rc::Rc;

use ruint::aliases::U256;

use super::bounds::{
    costs_more, costs_no_less, edge_bound, least_in, pays_no_more, yields_less, Bound,
};
use super::candidates::{Candidates, Cands, Group, Prepared};
use super::quote::{leg_gas, rank, value, Quote, Step};
use crate::graph::{Adj, GraphPool, RouteGraph, OFFSET};

/// Edges tried per token by [`Search::dive`].
const DIVE_WIDTH: usize = 2;

/// Most candidate edges of a token [`Search::goal_legs_rule_out`] reads.
const GOAL_LOOKAHEAD_EDGES: usize = 8;

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
                if to != self.goal && self.goal_legs_rule_out(&e, amount, remaining) {
                    continue;
                }
                // The leg trades to -> token: the edge's pool in the opposite direction.
                let z = !e.zero_for_one;
                let pool = g.slot_pool(e.slot);
                if to == self.goal && self.loses_into_goal(pool, e.slot, z, amount) {
                    continue;
                }
                let Some((need, ticks)) = self.quote_back(&e, amount) else {
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
            let Some((need, ticks)) = self.quote_back(&a, amount) else {
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

    /// Exact-out: the leg of edge `a` (from `a.to` to the token, the edge's pool in the
    /// opposite direction) quoted for `amount` out; a leg into the goal remembered for
    /// [`Self::loses_into_goal`] and [`Self::goal_legs_rule_out`].
    fn quote_back(&self, a: &Adj, amount: u128) -> Option<(u128, u32)> {
        let z = !a.zero_for_one;
        let q = self.p.quote(self.g.slot_pool(a.slot), a.slot, z, amount);
        if a.to == self.goal {
            self.p.remember_into_goal(a.slot, z, amount, q);
        }
        q
    }

    /// Exact-out: whether the leg into the goal of `pool` (in `slot`, direction `z`) for
    /// `amount` is known, unquoted, to fail or to make the path strictly worse than the best
    /// so far, by its quote for a smaller amount ([`Prepared::quoted_below`]: it needs at least
    /// that much for `amount` and crosses at least as many ticks, or fails too). Such a leg is
    /// passed over as [`Self::backward`] would pass over its failed quote, or offer the path
    /// and not take it; and the legs after it in its group that it would have ruled out are no
    /// better, so are not taken either: the answer is unchanged. In a split's later searches,
    /// a leaf target's few pools are quoted this way for hundreds of slightly different
    /// amounts, through the parallel routes between the hubs.
    fn loses_into_goal(&self, pool: &GraphPool, slot: u32, z: bool, amount: u128) -> bool {
        match self.p.quoted_below(slot, z, amount) {
            None => false,
            Some(None) => true,
            Some(Some((need, ticks))) => self.best.as_ref().is_some_and(|best| {
                let cost = self.gas_price * U256::from(self.gas + leg_gas(pool, ticks));
                OFFSET - U256::from(need) - cost < best.value
            }),
        }
    }

    /// Exact-out: whether every path through edge `a` (towards `a.to`, not the goal, from a
    /// token that must receive `amount`, `remaining` hops left after its leg) is known, before
    /// its leg is quoted, to fail or to cost strictly more than the best so far. Looks at most
    /// two legs ahead, to the legs into the goal, and only through tokens of few candidates
    /// ([`GOAL_LOOKAHEAD_EDGES`]): the legs before those by their bounds, each leg into the
    /// goal by its quote for a smaller amount ([`Prepared::quoted_below`]) or its bound. Such
    /// an edge is passed over as [`Self::backward`] would follow it and find nothing better;
    /// the legs after it in its group that it would have ruled out need as much or more, so
    /// find nothing better either: the answer is unchanged. In a split's later searches for a
    /// leaf target, the bound of its pools (a V3 pool's, from its largest liquidity) is far
    /// below what they cost once a trade leaves their narrow ranges, and hundreds of paths
    /// through the leaves next to the root were quoted leg by leg, only to lose at the
    /// target's pool.
    fn goal_legs_rule_out(&self, a: &Adj, amount: u128, remaining: usize) -> bool {
        let Some(best) = &self.best else {
            return false;
        };
        if remaining == 0 || !self.p.quoted_into_goal() {
            return false;
        }
        let g = self.g;
        #[allow(clippy::cast_precision_loss)] // a float bound, with its margins
        let Some(y) = least_in(edge_bound(g, a, false), amount as f64) else {
            return false;
        };
        let c = self.p.candidates(g, a.to, remaining - 1, false);
        if c.edges().len() > GOAL_LOOKAHEAD_EDGES {
            return false;
        }
        // The least any completion from `a.to` costs: input plus the gas price of its legs.
        let mut least: Option<U256> = None;
        for (_, b) in c.edges() {
            if self.excluded[b.slot as usize] {
                continue;
            }
            let cost = if b.to == self.goal {
                self.goal_leg_least(b, y)
            } else {
                let Some(cost) = self.through_least(b, y, remaining - 1) else {
                    return false;
                };
                cost
            };
            if let Some(cost) = cost {
                least = Some(least.map_or(cost, |l| l.min(cost)));
            }
        }
        let gas = self.gas + leg_gas(g.slot_pool(a.slot), 0);
        least.is_none_or(|l| OFFSET - l - self.gas_price * U256::from(gas) < best.value)
    }

    /// Exact-out, for [`Self::goal_legs_rule_out`]: the least a completion through edge `b`
    /// (from a token that must receive at least `y`, `remaining` hops left after its leg) then
    /// a leg into the goal costs, input plus the gas price of both legs (`Some(None)` if none
    /// can pay); `None` if that is more than two legs or more than
    /// [`GOAL_LOOKAHEAD_EDGES`] candidates to read.
    fn through_least(&self, b: &Adj, y: f64, remaining: usize) -> Option<Option<U256>> {
        if remaining != 1 {
            return None;
        }
        let g = self.g;
        let c = self.p.candidates(g, b.to, 0, false);
        if c.edges().len() > GOAL_LOOKAHEAD_EDGES {
            return None;
        }
        let Some(y) = least_in(edge_bound(g, b, false), y) else {
            return Some(None);
        };
        let mut least: Option<U256> = None;
        for (_, d) in c.edges() {
            if d.to != self.goal {
                return None;
            }
            if self.excluded[d.slot as usize] {
                continue;
            }
            if let Some(cost) = self.goal_leg_least(d, y) {
                least = Some(least.map_or(cost, |l| l.min(cost)));
            }
        }
        let gas = self.gas_price * U256::from(leg_gas(g.slot_pool(b.slot), 0));
        Some(least.map(|l| l + gas))
    }

    /// Exact-out: the least the leg into the goal of edge `d` costs (input plus the gas price
    /// of the leg) to pay at least `y`: by its quote for the largest amount at most `y`
    /// quoted in this query ([`Prepared::quoted_below`]), or its bound; `None` if it cannot.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // floored lower bounds
    fn goal_leg_least(&self, d: &Adj, y: f64) -> Option<U256> {
        let pool = self.g.slot_pool(d.slot);
        let (need, gas) = match self.p.quoted_below(d.slot, !d.zero_for_one, y as u128) {
            Some(None) => return None,
            Some(Some((need, ticks))) => (need, leg_gas(pool, ticks)),
            None => (least_in(edge_bound(self.g, d, false), y)? as u128, leg_gas(pool, 0)),
        };
        Some(U256::from(need) + self.gas_price * U256::from(gas))
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

/// The best path for `amount` avoiding the `excluded` pools, starting from `seed` (a path of
/// the search's, quoted for `amount`: the answer is the same, found with a best to cut by from
/// the start); and the paths that were the best so far in turn (`found`, appended).
#[allow(clippy::too_many_arguments)]
pub(super) fn search_best(
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
