//! The result of a query: the chosen quotes made into a [`GraphRoute`], each path with its
//! legs, mid price, price impact and gas.

use super::quote::{leg_gas, Quote, Step};
use crate::graph::{Big, GraphLeg, GraphPath, GraphRoute, PoolKind, RouteGraph, GAS_BASE};

/// The result for the chosen quotes.
pub(super) fn route(g: &RouteGraph, quotes: &[Quote]) -> GraphRoute {
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
