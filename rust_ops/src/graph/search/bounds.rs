//! The bounds that prune the search: [`Bound`], the curve bounding a leg's or a path's output
//! (per pool and direction, composed along paths), the distances and per-hop bounds from every
//! token to the target, and the tests of a bound against the best path so far (with the
//! search's float margins). Read by [`super::candidates`] and [`super::walk`].

use ruint::aliases::U256;

use crate::graph::{Adj, RouteGraph, OFFSET};

/// Exact-in: whether edge `a`'s leg pays at most `most` for `amount`, by its bound (with the
/// search's margins).
#[allow(clippy::cast_precision_loss)]
pub(super) fn pays_no_more(g: &RouteGraph, a: &Adj, amount: u128, most: u128) -> bool {
    let bound = edge_bound(g, a, true).out(amount as f64) * (1.0 + 1e-9) + 1.0;
    bound <= most as f64 * (1.0 - 1e-12)
}

/// Exact-out: whether edge `a`'s leg (from `a.to`) needs at least `least` to pay `amount`, by its
/// bound (with the search's margins).
#[allow(clippy::cast_precision_loss)]
pub(super) fn costs_no_less(g: &RouteGraph, a: &Adj, amount: u128, least: u128) -> bool {
    let bound = edge_bound(g, a, false);
    let y = amount as f64;
    if bound.beyond_cap(y) {
        return true;
    }
    let need = bound.need(y).unwrap_or(y / bound.rate) * (1.0 - 1e-9) - 1.0;
    need >= least as f64 * (1.0 + 1e-12)
}

/// Exact-out: the least a leg or path of `bound` can need to pay at least `y` (a float
/// bound, given a 1e-9 relative margin and one unit, at least 0), `None` if no input pays
/// `y`; 0 where the bound says nothing (no rate, or `y` not positive).
#[must_use]
pub(super) fn least_in(bound: Bound, y: f64) -> Option<f64> {
    if y.is_nan() || y <= 0.0 {
        return Some(0.0);
    }
    if bound.beyond_cap(y) {
        return None;
    }
    if bound.rate.is_nan() || bound.rate <= 0.0 {
        return Some(0.0);
    }
    let least = bound.need(y).unwrap_or(y / bound.rate) * (1.0 - 1e-9) - 1.0;
    Some(if least > 0.0 { least } else { 0.0 })
}

/// Exact-in: whether receiving at most `most` (a float bound, given a 1e-9 relative margin and
/// one unit) less `cost` is strictly worse than `best`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn yields_less(most: f64, cost: U256, best: U256) -> bool {
    let most = most * (1.0 + 1e-9) + 1.0;
    most.is_finite() && most < 1e38 && OFFSET + U256::from(most as u128) - cost < best
}

/// Exact-out: whether paying at least `least` (a float bound, given a 1e-9 relative margin and
/// one unit) plus `cost` is strictly worse than `best`.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(super) fn costs_more(least: f64, cost: U256, best: U256) -> bool {
    let least = least * (1.0 - 1e-9) - 1.0;
    if least.is_nan() || least <= 0.0 {
        return false;
    }
    let least = if least >= 3.0e38 { u128::MAX } else { least as u128 };
    OFFSET - U256::from(least) - cost < best
}

/// Hops from every token to `goal`, up to `depth` (`u8::MAX` beyond), and the tokens
/// reached, nearest first, over paths that do not pass through `root` (the search starts there,
/// so no path comes back to it): `root` is left unreached, which keeps the paths through it out
/// of the bounds built on these distances, and its edges out of every token's candidates.
/// The `excluded` pools are not walked.
pub(super) fn distances(
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
/// the module docs of [`crate::graph`]); `rate == 0` for no path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(in crate::graph) struct Bound {
    pub(super) rate: f64,
    inv_cap: f64,
    /// The most the leg or path can pay out, whatever goes in.
    most: f64,
}

impl Bound {
    pub(in crate::graph) const NONE: Self = Self { rate: 0.0, inv_cap: f64::INFINITY, most: 0.0 };
    const IDENTITY: Self = Self { rate: 1.0, inv_cap: 0.0, most: f64::INFINITY };

    /// A leg's bound.
    pub(in crate::graph) fn new(rate: f64, inv_cap: f64, most: f64) -> Self {
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
    pub(super) fn max(self, other: Self) -> Self {
        Self {
            rate: self.rate.max(other.rate),
            inv_cap: self.inv_cap.min(other.inv_cap),
            most: self.most.max(other.most),
        }
    }

    /// Most output for `x` in.
    pub(in crate::graph) fn out(self, x: f64) -> f64 {
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
    pub(in crate::graph) fn beyond_cap(self, y: f64) -> bool {
        y * self.inv_cap > 1.0 + 1e-9 || y > self.most * (1.0 + 1e-9) + 1.0
    }

    /// Least input that could yield `y`, or `None` when the curve is too close to its cap
    /// (`y·inv_cap > 0.999`) for the float to be trusted (the caller falls back on the rate).
    pub(in crate::graph) fn need(self, y: f64) -> Option<f64> {
        let room = 1.0 - y * self.inv_cap;
        (self.rate > 0.0 && room >= 1e-3).then(|| y / (self.rate * room))
    }
}

/// The bound of the leg an edge stands for: exact-in walks edges forwards, exact-out backwards
/// (the edge at `t` towards `u` is then the leg `u -> t`).
pub(in crate::graph) fn edge_bound(g: &RouteGraph, a: &Adj, exact_in: bool) -> Bound {
    let z = usize::from(if exact_in { a.zero_for_one } else { !a.zero_for_one });
    g.legs[a.slot as usize][z]
}

/// A path's bound: the edge's leg then the rest (exact-in: towards the goal), or the rest
/// then the edge's leg (exact-out: the rest leads from the input token to the edge).
pub(super) fn along(edge: Bound, rest: Bound, exact_in: bool) -> Bound {
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
pub(super) fn path_bounds(
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
