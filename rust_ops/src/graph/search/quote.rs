//! Quoting: a leg of one pool for an amount (exact-in or exact-out) and its gas, the value of
//! a quoted path, and the order paths rank in. Shared by the search ([`super::walk`]), the
//! split ([`super::split`](mod@super::split)) and the result ([`super::assemble`]).

use std::cmp::Ordering;

use ruint::aliases::U256;

use crate::cp_math;
use crate::graph::{GraphPool, PoolKind, RouteGraph, GAS_CP_HOP, GAS_V3_HOP, GAS_V3_TICK, OFFSET};

/// One leg of a path under search.
#[derive(Debug, Clone, Copy)]
pub(super) struct Step {
    pub(super) slot: u32,
    pub(super) zero_for_one: bool,
    pub(super) amount_in: u128,
    pub(super) amount_out: u128,
    pub(super) ticks: u32,
}

/// A quoted path: its value (see [`OFFSET`]) and its legs in trading order.
#[derive(Debug, Clone)]
pub(super) struct Quote {
    pub(super) value: U256,
    pub(super) steps: Vec<Step>,
}

impl RouteGraph {
    pub(super) fn slot_pool(&self, slot: u32) -> &GraphPool {
        // Edges only ever name occupied slots.
        &self.slots[slot as usize].as_ref().expect("edge to an empty slot").pool
    }
}

/// Gas of one leg (see the module docs).
pub(super) fn leg_gas(pool: &GraphPool, ticks: u32) -> u64 {
    match pool.kind {
        PoolKind::ConstantProduct { .. } => GAS_CP_HOP,
        PoolKind::V3(_) => GAS_V3_HOP + GAS_V3_TICK * u64::from(ticks),
    }
}

/// Output of paying exactly `amount_in` into the pool, and the ticks crossed; `None` if the
/// pool cannot take it all or pays nothing.
pub(in crate::graph) fn quote_out(
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
pub(in crate::graph) fn quote_in(
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
pub(super) fn value(g: &RouteGraph, steps: &[Step], exact_in: bool, gas_price: U256) -> U256 {
    let gas: u64 = steps.iter().map(|s| leg_gas(g.slot_pool(s.slot), s.ticks)).sum();
    let cost = gas_price * U256::from(gas);
    if exact_in {
        OFFSET + U256::from(steps[steps.len() - 1].amount_out) - cost
    } else {
        OFFSET - U256::from(steps[0].amount_in) - cost
    }
}

/// `Less` if `a` ranks before `b`: higher value, then fewer hops, then smaller pool ids.
pub(super) fn rank(g: &RouteGraph, a: &Quote, b: &Quote) -> Ordering {
    b.value.cmp(&a.value).then(a.steps.len().cmp(&b.steps.len())).then_with(|| {
        let ids = |q: &Quote| {
            q.steps.iter().map(|s| g.slot_pool(s.slot).pool_id.as_str()).collect::<Vec<_>>()
        };
        ids(a).cmp(&ids(b))
    })
}
