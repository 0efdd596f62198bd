//! The exhaustive depth-first search behind both route queries.

use super::index::Graph;
use crate::cp_math;

/// One leg of a path under search: the pool, its direction and the amounts.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub pool: u32,
    pub zero_for_one: bool,
    pub amount_in: u128,
    pub amount_out: u128,
}

/// Search state shared by both directions.
pub(super) struct Search<'a> {
    graph: &'a Graph,
    rank: &'a [u32],
    goal: u32,
    max_hops: usize,
    visited: Vec<bool>,
    /// Current path, in search order.
    path: Vec<Step>,
    /// Best path so far, in trading order, with the amount being optimised.
    best: Option<(u128, Vec<Step>)>,
}

impl<'a> Search<'a> {
    /// A search from `start` towards `goal`; `rank` orders pools by id for tie-breaking.
    pub(super) fn new(
        graph: &'a Graph,
        rank: &'a [u32],
        start: u32,
        goal: u32,
        max_hops: usize,
    ) -> Self {
        let mut visited = vec![false; graph.token_count()];
        visited[start as usize] = true;
        Self {
            graph,
            rank,
            goal,
            max_hops,
            visited,
            path: Vec::with_capacity(max_hops),
            best: None,
        }
    }

    /// The winning path in trading order, if any.
    pub(super) fn into_best(self) -> Option<Vec<Step>> {
        self.best.map(|(_, path)| path)
    }

    /// Whether an edge to `to` may be taken now. The last allowed leg must reach the goal, so
    /// the others are skipped before any arithmetic (most edges are on the last level).
    fn may_visit(&self, to: u32) -> bool {
        !self.visited[to as usize] && (to == self.goal || self.path.len() + 1 < self.max_hops)
    }

    /// Exact-in: extends the path from `token` holding `amount`.
    pub(super) fn forward(&mut self, token: u32, amount: u128) {
        let graph = self.graph;
        for e in graph.edges(token) {
            if !self.may_visit(e.to) {
                continue;
            }
            // Edges are quotable, so this cannot fail; a zero output ends the path usefully.
            let out = match cp_math::amount_out(e.reserve_in, e.reserve_out, amount, e.fee) {
                Ok(out) if out > 0 => out,
                _ => continue,
            };
            let step = Step {
                pool: e.pool,
                zero_for_one: e.zero_for_one,
                amount_in: amount,
                amount_out: out,
            };
            self.path.push(step);
            if e.to == self.goal {
                self.offer(out, |best, new| new > best, false);
            } else {
                self.visited[e.to as usize] = true;
                self.forward(e.to, out);
                self.visited[e.to as usize] = false;
            }
            self.path.pop();
        }
    }

    /// Exact-out: extends the path backwards from `token`, which must receive `amount`.
    pub(super) fn backward(&mut self, token: u32, amount: u128) {
        let graph = self.graph;
        for e in graph.edges(token) {
            if !self.may_visit(e.to) {
                continue;
            }
            // The leg trades e.to -> token: the pool in the opposite direction, so the edge's
            // reserve_out is the leg's reserve_in. Err: the pool cannot pay `amount` out, or the
            // input would exceed u128; either way not a usable leg.
            let Ok(need) = cp_math::amount_in(e.reserve_out, e.reserve_in, amount, e.fee) else {
                continue;
            };
            let step = Step {
                pool: e.pool,
                zero_for_one: !e.zero_for_one,
                amount_in: need,
                amount_out: amount,
            };
            self.path.push(step);
            if e.to == self.goal {
                self.offer(need, |best, new| new < best, true);
            } else {
                self.visited[e.to as usize] = true;
                self.backward(e.to, need);
                self.visited[e.to as usize] = false;
            }
            self.path.pop();
        }
    }

    /// Keeps the current path if it beats the best one: `better` on the optimised amount, then
    /// fewer hops, then smaller pool-id sequence. `reversed`: the path is held goal-first.
    fn offer(&mut self, amount: u128, better: fn(u128, u128) -> bool, reversed: bool) {
        if let Some((best_amount, best_path)) = &self.best {
            let wins = if amount != *best_amount {
                better(*best_amount, amount)
            } else if self.path.len() != best_path.len() {
                self.path.len() < best_path.len()
            } else {
                let rank = |s: &Step| self.rank[s.pool as usize];
                let best = best_path.iter().map(rank);
                if reversed {
                    self.path.iter().rev().map(rank).lt(best)
                } else {
                    self.path.iter().map(rank).lt(best)
                }
            };
            if !wins {
                return;
            }
        }
        let mut path = self.path.clone();
        if reversed {
            path.reverse();
        }
        self.best = Some((amount, path));
    }
}
