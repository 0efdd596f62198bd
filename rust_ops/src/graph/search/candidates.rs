//! What every search of one query shares ([`Prepared`], built by [`prepare`]): the distances
//! and bounds towards the target, the query's memo of quotes, and each token's candidate edges
//! ([`Cands`]), grouped by the token they lead to and sorted once, best first, as
//! [`super::walk`] tries them.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::bounds::{along, distances, edge_bound, path_bounds, Bound};
use super::quote::{quote_in, quote_out};
use crate::graph::fx::FxHashMap;
use crate::graph::{Adj, GraphPool, RouteGraph};

/// The candidate edges of a token (see [`Prepared::candidates`]).
pub(super) struct Cands {
    /// `(bound, edge)`, the parallel edges (those towards one token) together, each group in
    /// the order of its pool ids (so the legs followed before a leg have smaller ids, see
    /// [`Search::forward`](super::walk)).
    edges: Vec<(Bound, Adj)>,
    /// The groups, best first.
    pub(super) groups: Vec<Group>,
    /// By rate (the order of a token visited with various amounts), or, for the root, by the
    /// bound at the search's amount ([`Cands::at_amount`]).
    pub(super) at: Option<u128>,
    exact_in: bool,
}

/// A group of [`Cands`]: `edges[start..end]`, and the key of its best edge (lowest first).
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    start: u32,
    end: u32,
    pub(super) key: f64,
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

    /// Every edge, the groups in the order of the tokens they lead to.
    pub(super) fn edges(&self) -> &[(Bound, Adj)] {
        &self.edges
    }

    /// The edges of `group`.
    pub(super) fn members(&self, group: &Group) -> &[(Bound, Adj)] {
        &self.edges[group.start as usize..group.end as usize]
    }

    /// Each group's best edge, in the order of the groups.
    pub(super) fn best_edges(&self) -> impl Iterator<Item = (Bound, Adj)> + '_ {
        self.groups.iter().filter_map(|gr| {
            self.members(gr).iter().copied().min_by(|x, y| self.key(x.0).total_cmp(&self.key(y.0)))
        })
    }
}

pub(super) type Candidates = Rc<Cands>;

/// A leg's quote ([`Prepared::quote`]): what it pays or needs and the ticks it crosses, `None`
/// if it cannot.
type LegQuote = Option<(u128, u32)>;

/// The query's quotes, shared by its searches (see [`Prepared::memo`]).
pub(super) struct Memo {
    /// By `(slot, zero_for_one, amount)` ([`Prepared::quote`]), when the query runs several
    /// searches.
    exact: Option<FxHashMap<(u32, bool, u128), LegQuote>>,
    /// Exact-out: the legs into the goal quoted so far, by `(slot, zero_for_one)` then amount
    /// ([`Prepared::remember_into_goal`], [`Prepared::quoted_below`]).
    into_goal: FxHashMap<(u32, bool), BTreeMap<u128, LegQuote>>,
}

impl Memo {
    /// An empty memo; quotes by amount kept only if `exact`.
    pub(super) fn new(exact: bool) -> Rc<RefCell<Self>> {
        let exact = exact.then(FxHashMap::default);
        Rc::new(RefCell::new(Self { exact, into_goal: FxHashMap::default() }))
    }
}

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
pub(super) struct Prepared {
    pub(super) root: u32,
    pub(super) target: u32,
    dist: Vec<u8>,
    /// The tokens at most `max_hops - 2` hops from the target, nearest first.
    order: Vec<u32>,
    /// `level_end[r]`: how many of `order` are at most `r` hops from the target.
    level_end: Vec<usize>,
    pub(super) bounds: Vec<Vec<Bound>>,
    /// `(r, t)`: the candidates of token `t` with `r` hops left after the leg. A map: a query
    /// visits a handful of tokens, and a table of every token for every hop was set up and
    /// dropped per query.
    cands: RefCell<FxHashMap<(usize, u32), Candidates>>,
    exact_in: bool,
    /// The legs quoted so far, `(slot, zero_for_one, amount)` to the quote in the query's
    /// direction, when the query runs several searches (a split): each search avoiding the
    /// pools of the paths found before it quotes mostly the same legs for the same share. And,
    /// exact-out, the legs into the goal quoted so far, by amount, for every query.
    pub(super) memo: Rc<RefCell<Memo>>,
    /// The root's candidates in the order of their bounds for an amount, and the amount: the
    /// split's searches all run for the same share.
    root_at: RefCell<Option<(u128, Candidates)>>,
}

impl Prepared {
    /// The leg of `pool` (in `slot`) in the direction `zero_for_one`, for `amount`: what it
    /// pays (exact-in) or needs (exact-out) and the ticks it crosses, as [`quote_out`] or
    /// [`quote_in`].
    pub(super) fn quote(
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
        let key = (slot, zero_for_one, amount);
        if let Some(exact) = &self.memo.borrow().exact {
            if let Some(&known) = exact.get(&key) {
                return known;
            }
        } else {
            return quote();
        }
        let q = quote();
        if let Some(exact) = &mut self.memo.borrow_mut().exact {
            exact.insert(key, q);
        }
        q
    }

    /// Exact-out: remembers the quote `q` of a leg into the goal for `amount`, for
    /// [`Self::quoted_below`].
    pub(super) fn remember_into_goal(
        &self,
        slot: u32,
        zero_for_one: bool,
        amount: u128,
        q: LegQuote,
    ) {
        let mut memo = self.memo.borrow_mut();
        memo.into_goal.entry((slot, zero_for_one)).or_default().insert(amount, q);
    }

    /// Exact-out: whether a leg into the goal has been quoted in this query.
    pub(super) fn quoted_into_goal(&self) -> bool {
        !self.memo.borrow().into_goal.is_empty()
    }

    /// Exact-out: the quote of a leg into the goal for the largest amount at most `amount` it
    /// was quoted for in this query ([`Self::remember_into_goal`]), if any. Exact-out quotes and
    /// their ticks crossed never fall as the amount grows, and a pool that pays an amount pays
    /// any smaller one (property-tested): the leg needs at least as much for `amount`, crosses
    /// at least as many ticks, and fails if this failed.
    pub(super) fn quoted_below(
        &self,
        slot: u32,
        zero_for_one: bool,
        amount: u128,
    ) -> Option<LegQuote> {
        let memo = self.memo.borrow();
        let known = memo.into_goal.get(&(slot, zero_for_one))?;
        known.range(..=amount).next_back().map(|(_, &q)| q)
    }

    /// The root's candidates (`remaining` hops left after its leg) in the order of their
    /// bounds for `amount` ([`Cands::at_amount`]).
    pub(super) fn root_at(
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
    /// [`Search::forward`](super::walk) and [`Search::backward`](super::walk)), best rate
    /// first. The bound does not depend on the amount or the path, so the list is sorted once
    /// per query and token, however often the token is visited.
    #[allow(clippy::cast_possible_truncation)] // edge counts are far below 2^32
    pub(super) fn candidates(
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
pub(super) fn prepare(
    g: &RouteGraph,
    start: u32,
    goal: u32,
    max_hops: usize,
    exact_in: bool,
    excluded: &[bool],
    memo: Rc<RefCell<Memo>>,
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
