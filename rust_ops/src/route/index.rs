//! The pool graph as the search reads it: tokens interned to dense ids, and every quotable
//! pool as two directed edges in one flat array grouped by source token (compressed sparse
//! rows), with the pool's numbers copied in so the search loop touches one array.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::pool::Pool;

/// A quotable pool seen from one of its tokens: the pool in one direction.
#[derive(Debug, Clone, Copy)]
pub(super) struct Edge {
    pub reserve_in: u128,
    pub reserve_out: u128,
    pub pool: u32,
    pub to: u32,
    pub fee: u32,
    pub zero_for_one: bool,
}

/// Tokens and edges of a pool set.
#[derive(Debug, Clone, Default)]
pub(super) struct Graph {
    tokens: HashMap<String, u32, BuildHasherDefault<FxHasher>>,
    /// Edges leaving token `t` are `edges[offsets[t]..offsets[t + 1]]`, in pool order.
    offsets: Vec<u32>,
    edges: Vec<Edge>,
}

impl Graph {
    // Indices are u32 to keep edges small; four billion pools are not a use case.
    #[allow(clippy::cast_possible_truncation)]
    pub(super) fn new(pools: &[Arc<Pool>]) -> Self {
        let mut tokens: HashMap<String, u32, BuildHasherDefault<FxHasher>> = HashMap::default();
        let mut intern = |t: &str| -> u32 {
            if let Some(&id) = tokens.get(t) {
                return id;
            }
            let id = tokens.len() as u32;
            tokens.insert(t.to_owned(), id);
            id
        };
        let ends: Vec<(u32, u32)> =
            pools.iter().map(|p| (intern(p.token0()), intern(p.token1()))).collect();

        // Count the out-degrees, turn them into offsets, then fill each token's slice.
        let mut offsets = vec![0u32; tokens.len() + 1];
        for (p, &(t0, t1)) in pools.iter().zip(&ends) {
            if p.is_quotable() {
                offsets[t0 as usize + 1] += 1;
                offsets[t1 as usize + 1] += 1;
            }
        }
        for t in 1..offsets.len() {
            offsets[t] += offsets[t - 1];
        }
        let placeholder =
            Edge { reserve_in: 0, reserve_out: 0, pool: 0, to: 0, fee: 0, zero_for_one: false };
        let mut edges = vec![placeholder; offsets[tokens.len()] as usize];
        let mut next = offsets.clone();
        let mut put = |from: u32, edge: Edge| {
            edges[next[from as usize] as usize] = edge;
            next[from as usize] += 1;
        };
        for (i, (p, &(t0, t1))) in pools.iter().zip(&ends).enumerate() {
            if p.is_quotable() {
                let (pool, fee, r0, r1) = (i as u32, p.fee(), p.reserve0(), p.reserve1());
                put(
                    t0,
                    Edge { reserve_in: r0, reserve_out: r1, pool, to: t1, fee, zero_for_one: true },
                );
                put(
                    t1,
                    Edge {
                        reserve_in: r1,
                        reserve_out: r0,
                        pool,
                        to: t0,
                        fee,
                        zero_for_one: false,
                    },
                );
            }
        }
        Self { tokens, offsets, edges }
    }

    /// Dense id of `token`, if any pool names it.
    pub(super) fn token(&self, token: &str) -> Option<u32> {
        self.tokens.get(token).copied()
    }

    /// Number of distinct tokens.
    pub(super) fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Edges leaving `token`.
    pub(super) fn edges(&self, token: u32) -> &[Edge] {
        let t = token as usize;
        &self.edges[self.offsets[t] as usize..self.offsets[t + 1] as usize]
    }
}

/// The Fx hash (rustc's): token names are short and come from our own venues, so a fast
/// non-keyed hash beats SipHash here; interning is most of the cost of building a set.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
