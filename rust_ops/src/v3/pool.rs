//! A Uniswap V3 pool's state and its swap loop (`UniswapV3Pool.swap`), exact to the wei.
//!
//! The loop is the contract's: from the current price it looks for the next initialised tick
//! *within one 256-tick word of the bitmap* (`TickBitmap.nextInitializedTickWithinOneWord`),
//! takes one [`compute_swap_step`] towards it (or towards the price limit if nearer), and on
//! reaching an initialised tick crosses it (`liquidity ± liquidityNet`). Stopping at word
//! boundaries matters: every step rounds, so splitting a swap differently changes the last
//! wei. The bitmap is emulated from the sorted list of initialised ticks.
//!
//! Without tick data (`ticks: None`) the only range where the liquidity is known is the
//! tick-spacing interval holding the price (initialised ticks sit on the spacing grid). A swap
//! that stays strictly inside it is still exact (a step that stops short of its target does
//! not depend on where the target was); one that would reach its edge is refused with
//! [`V3SwapError::RangeExceeded`].

use ruint::aliases::U256;

use super::error::{V3PoolError, V3SwapError};
use super::swap_math::compute_swap_step;
use super::tick_math::{
    sqrt_ratio_at_tick, tick_at_sqrt_ratio, MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK,
};
use crate::error::FEE_DENOMINATOR;

/// Largest tick spacing the factory accepts (`tickSpacing < 16384`).
pub const MAX_TICK_SPACING: i32 = 16_383;

/// A validated Uniswap V3 pool state: `slot0` (price and tick), the active liquidity, the
/// spacing and fee, and optionally every initialised tick with its `liquidityNet`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct V3Pool {
    sqrt_price_x96: U256,
    liquidity: u128,
    tick: i32,
    tick_spacing: i32,
    fee: u32,
    ticks: Option<Vec<(i32, i128)>>,
}

/// The outcome of a swap, as the pool would execute it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SwapResult {
    /// Input taken by the pool, fee included (less than asked for an exact-input swap only if
    /// the price reached its limit).
    pub amount_in_used: U256,
    /// Output paid by the pool (less than asked for an exact-output swap only if the price
    /// reached its limit).
    pub amount_out: U256,
    /// Part of `amount_in_used` that is fee.
    pub fee_amount: U256,
    /// The pool's price afterwards.
    pub sqrt_price_after: U256,
    /// The pool's tick afterwards.
    pub tick_after: i32,
    /// The pool's active liquidity afterwards.
    pub liquidity_after: u128,
    /// Initialised ticks crossed (each costs gas on chain).
    pub ticks_crossed: u32,
}

/// `2^255 - 1`: amounts are `int256` in the contract.
const I256_MAX: U256 = U256::from_limbs([u64::MAX, u64::MAX, u64::MAX, u64::MAX >> 1]);

/// The accepted range of a swap amount.
pub const AMOUNT_RANGE: &str = "0..=2**255-1";

impl V3Pool {
    /// Builds a pool after checking that the state is one a V3 pool can be in.
    ///
    /// `ticks` are the initialised ticks (`liquidityGross > 0`, `liquidityNet` may be 0),
    /// strictly increasing; `None` when they are not known.
    ///
    /// # Errors
    ///
    /// In the order checked: [`V3PoolError::FeeOutOfRange`],
    /// [`V3PoolError::TickSpacingOutOfRange`], [`V3PoolError::SqrtPriceOutOfRange`],
    /// [`V3PoolError::TickMismatch`], then per tick [`V3PoolError::TickNotUsable`],
    /// [`V3PoolError::TicksNotSorted`], [`V3PoolError::LiquidityNetInconsistent`], and last
    /// [`V3PoolError::LiquidityMismatch`].
    pub fn new(
        sqrt_price_x96: U256,
        liquidity: u128,
        tick: i32,
        tick_spacing: i32,
        fee: u32,
        ticks: Option<Vec<(i32, i128)>>,
    ) -> Result<Self, V3PoolError> {
        if fee >= FEE_DENOMINATOR {
            return Err(V3PoolError::FeeOutOfRange { fee });
        }
        if !(1..=MAX_TICK_SPACING).contains(&tick_spacing) {
            return Err(V3PoolError::TickSpacingOutOfRange { tick_spacing });
        }
        let Some(expected) = tick_at_sqrt_ratio(sqrt_price_x96) else {
            let sqrt_price_x96 = sqrt_price_x96.to_string();
            return Err(V3PoolError::SqrtPriceOutOfRange { sqrt_price_x96 });
        };
        let just_crossed_down =
            tick == expected - 1 && sqrt_ratio_at_tick(expected) == Some(sqrt_price_x96);
        if tick != expected && !just_crossed_down {
            return Err(V3PoolError::TickMismatch { tick, expected });
        }
        if let Some(ticks) = &ticks {
            check_ticks(ticks, liquidity, tick, tick_spacing)?;
        }
        Ok(Self { sqrt_price_x96, liquidity, tick, tick_spacing, fee, ticks })
    }

    /// Price, `sqrt(token1/token0)` in Q64.96.
    #[must_use]
    pub fn sqrt_price_x96(&self) -> U256 {
        self.sqrt_price_x96
    }

    /// Active liquidity.
    #[must_use]
    pub fn liquidity(&self) -> u128 {
        self.liquidity
    }

    /// Current tick (`slot0.tick`).
    #[must_use]
    pub fn tick(&self) -> i32 {
        self.tick
    }

    /// Tick spacing.
    #[must_use]
    pub fn tick_spacing(&self) -> i32 {
        self.tick_spacing
    }

    /// Fee in hundredths of a basis point.
    #[must_use]
    pub fn fee(&self) -> u32 {
        self.fee
    }

    /// The initialised ticks with their `liquidityNet`, or `None` without tick data.
    #[must_use]
    pub fn ticks(&self) -> Option<&[(i32, i128)]> {
        self.ticks.as_deref()
    }

    /// Swaps exactly `amount_in` (token0 if `zero_for_one`), price limit the default.
    ///
    /// # Errors
    ///
    /// As [`V3Pool::swap`].
    pub fn swap_exact_in(
        &self,
        zero_for_one: bool,
        amount_in: U256,
    ) -> Result<SwapResult, V3SwapError> {
        self.swap(zero_for_one, true, amount_in, None)
    }

    /// Swaps for exactly `amount_out` (token1 if `zero_for_one`), price limit the default.
    ///
    /// # Errors
    ///
    /// As [`V3Pool::swap`].
    pub fn swap_exact_out(
        &self,
        zero_for_one: bool,
        amount_out: U256,
    ) -> Result<SwapResult, V3SwapError> {
        self.swap(zero_for_one, false, amount_out, None)
    }

    /// Output of spending exactly `amount_in`, all of it.
    ///
    /// # Errors
    ///
    /// As [`V3Pool::swap`], and [`V3SwapError::InsufficientLiquidity`] if the pool cannot take
    /// the whole input.
    pub fn amount_out(&self, zero_for_one: bool, amount_in: U256) -> Result<U256, V3SwapError> {
        let r = self.swap_exact_in(zero_for_one, amount_in)?;
        if r.amount_in_used != amount_in {
            return Err(V3SwapError::InsufficientLiquidity {
                field: "amount_in",
                requested: amount_in.to_string(),
                filled: r.amount_in_used.to_string(),
            });
        }
        Ok(r.amount_out)
    }

    /// Input (fee included) needed to receive exactly `amount_out`.
    ///
    /// # Errors
    ///
    /// As [`V3Pool::swap`], and [`V3SwapError::InsufficientLiquidity`] if the pool cannot pay
    /// the whole output.
    pub fn amount_in(&self, zero_for_one: bool, amount_out: U256) -> Result<U256, V3SwapError> {
        let r = self.swap_exact_out(zero_for_one, amount_out)?;
        if r.amount_out != amount_out {
            return Err(V3SwapError::InsufficientLiquidity {
                field: "amount_out",
                requested: amount_out.to_string(),
                filled: r.amount_out.to_string(),
            });
        }
        Ok(r.amount_in_used)
    }

    /// `UniswapV3Pool.swap`: `amount` is the input (`exact_in`) or the output wanted; the
    /// price stops at `sqrt_price_limit_x96` (default `MIN_SQRT_RATIO + 1` going down,
    /// `MAX_SQRT_RATIO - 1` going up), leaving the rest of the amount unswapped. A zero amount
    /// is a swap that does nothing (the contract reverts `AS`).
    ///
    /// # Errors
    ///
    /// [`V3SwapError::ValueOutOfRange`] for an amount of 2^255 or more,
    /// [`V3SwapError::PriceLimit`] for a limit on the wrong side (`SPL`),
    /// [`V3SwapError::RangeExceeded`] without tick data, [`V3SwapError::Overflow`] where the
    /// contract would revert on arithmetic.
    pub fn swap(
        &self,
        zero_for_one: bool,
        exact_in: bool,
        amount: U256,
        sqrt_price_limit_x96: Option<U256>,
    ) -> Result<SwapResult, V3SwapError> {
        if amount > I256_MAX {
            let field = if exact_in { "amount_in" } else { "amount_out" };
            let value = amount.to_string();
            return Err(V3SwapError::ValueOutOfRange { field, range: AMOUNT_RANGE, value });
        }
        let one = U256::from(1u8);
        let p = self.sqrt_price_x96;
        let limit = sqrt_price_limit_x96.unwrap_or(if zero_for_one {
            MIN_SQRT_RATIO + one
        } else {
            MAX_SQRT_RATIO - one
        });
        let limit_ok = if zero_for_one {
            limit < p && limit > MIN_SQRT_RATIO
        } else {
            limit > p && limit < MAX_SQRT_RATIO
        };
        if !limit_ok {
            return Err(V3SwapError::PriceLimit {
                limit: limit.to_string(),
                sqrt_price_x96: p.to_string(),
                zero_for_one,
            });
        }
        let mut state = State {
            remaining: amount,
            calculated: U256::ZERO,
            fee: U256::ZERO,
            sqrt_price: p,
            tick: self.tick,
            liquidity: self.liquidity,
            crossed: 0,
        };
        match &self.ticks {
            Some(ticks) => self.run(&mut state, ticks, zero_for_one, exact_in, limit)?,
            None => self.run_in_range(&mut state, zero_for_one, exact_in, limit)?,
        }
        let done = amount - state.remaining;
        let (amount_in_used, amount_out) =
            if exact_in { (done, state.calculated) } else { (state.calculated, done) };
        Ok(SwapResult {
            amount_in_used,
            amount_out,
            fee_amount: state.fee,
            sqrt_price_after: state.sqrt_price,
            tick_after: state.tick,
            liquidity_after: state.liquidity,
            ticks_crossed: state.crossed,
        })
    }

    /// The contract's loop over the initialised ticks.
    fn run(
        &self,
        s: &mut State,
        ticks: &[(i32, i128)],
        zero_for_one: bool,
        exact_in: bool,
        limit: U256,
    ) -> Result<(), V3SwapError> {
        while !s.remaining.is_zero() && s.sqrt_price != limit {
            let start = s.sqrt_price;
            let (next, initialised) = next_initialized_tick_within_one_word(
                ticks,
                s.tick,
                self.tick_spacing,
                zero_for_one,
            );
            let tick_next = next.clamp(MIN_TICK, MAX_TICK);
            let price_next = sqrt_ratio_at_tick(tick_next).ok_or(overflow("tick"))?;
            let beyond_limit = if zero_for_one { price_next < limit } else { price_next > limit };
            let target = if beyond_limit { limit } else { price_next };
            s.step(target, exact_in, self.fee)?;
            if s.sqrt_price == price_next {
                if let Some(index) = initialised {
                    let net = ticks[index].1;
                    s.liquidity = add_delta(s.liquidity, net, zero_for_one)?;
                    s.crossed += 1;
                }
                s.tick = if zero_for_one { tick_next - 1 } else { tick_next };
            } else if s.sqrt_price != start {
                s.tick = tick_at_sqrt_ratio(s.sqrt_price).ok_or(overflow("price"))?;
            }
        }
        Ok(())
    }

    /// One step towards the edge of the known range (or the limit if nearer); refused if it
    /// reaches the edge, where an unknown tick may change the liquidity.
    fn run_in_range(
        &self,
        s: &mut State,
        zero_for_one: bool,
        exact_in: bool,
        limit: U256,
    ) -> Result<(), V3SwapError> {
        if s.remaining.is_zero() {
            return Ok(());
        }
        let lower = self.tick.div_euclid(self.tick_spacing) * self.tick_spacing;
        let upper = lower + self.tick_spacing;
        let edge = if zero_for_one { lower.max(MIN_TICK) } else { upper.min(MAX_TICK) };
        let edge_price = sqrt_ratio_at_tick(edge).ok_or(overflow("tick"))?;
        let edge_first = if zero_for_one { edge_price >= limit } else { edge_price <= limit };
        let target = if edge_first { edge_price } else { limit };
        let start = s.sqrt_price;
        s.step(target, exact_in, self.fee)?;
        if edge_first && s.sqrt_price == edge_price {
            return Err(V3SwapError::RangeExceeded { tick_lower: lower, tick_upper: upper });
        }
        if s.sqrt_price != start {
            s.tick = tick_at_sqrt_ratio(s.sqrt_price).ok_or(overflow("price"))?;
        }
        Ok(())
    }
}

/// The swap's running state (`SwapState` in the contract, amounts unsigned).
struct State {
    /// Amount still to swap (input for exact-in, output for exact-out).
    remaining: U256,
    /// Amount on the other side so far (output for exact-in, input with fees for exact-out).
    calculated: U256,
    fee: U256,
    sqrt_price: U256,
    tick: i32,
    liquidity: u128,
    crossed: u32,
}

impl State {
    fn step(&mut self, target: U256, exact_in: bool, fee: u32) -> Result<(), V3SwapError> {
        let step = compute_swap_step(
            self.sqrt_price,
            target,
            self.liquidity,
            self.remaining,
            exact_in,
            fee,
        )
        .ok_or(overflow("swap step"))?;
        self.sqrt_price = step.sqrt_price_next;
        let paid = step.amount_in.checked_add(step.fee_amount).ok_or(overflow("amount in"))?;
        let (spent, got) = if exact_in { (paid, step.amount_out) } else { (step.amount_out, paid) };
        self.remaining = self.remaining.checked_sub(spent).ok_or(overflow("amount remaining"))?;
        self.calculated = self.calculated.checked_add(got).ok_or(overflow("amount"))?;
        if self.calculated > I256_MAX {
            return Err(overflow("amount"));
        }
        self.fee = self.fee.checked_add(step.fee_amount).ok_or(overflow("fee"))?;
        Ok(())
    }
}

fn overflow(what: &'static str) -> V3SwapError {
    V3SwapError::Overflow { what }
}

/// `LiquidityMath.addDelta` with the sign of `liquidityNet` flipped when crossing downwards.
fn add_delta(liquidity: u128, net: i128, downwards: bool) -> Result<u128, V3SwapError> {
    let delta = if downwards { net.checked_neg() } else { Some(net) };
    delta.and_then(|d| liquidity.checked_add_signed(d)).ok_or(overflow("liquidity"))
}

/// `TickBitmap.nextInitializedTickWithinOneWord` over the sorted initialised ticks: the next
/// initialised tick at or below `tick` (`lte`) or above it, looking no further than the
/// 256-spacing word that holds the start; the word's last tick otherwise. Returns the tick and
/// the index of the initialised tick, if it is one.
#[must_use]
pub fn next_initialized_tick_within_one_word(
    ticks: &[(i32, i128)],
    tick: i32,
    tick_spacing: i32,
    lte: bool,
) -> (i32, Option<usize>) {
    let compressed = tick.div_euclid(tick_spacing);
    if lte {
        let word_start = (compressed >> 8) << 8;
        let at = ticks.partition_point(|&(t, _)| t <= compressed * tick_spacing);
        match at.checked_sub(1) {
            Some(i) if ticks[i].0 >= word_start * tick_spacing => (ticks[i].0, Some(i)),
            _ => (word_start * tick_spacing, None),
        }
    } else {
        let from = compressed + 1;
        let word_end = ((from >> 8) << 8) + 255;
        let at = ticks.partition_point(|&(t, _)| t < from * tick_spacing);
        match ticks.get(at) {
            Some(&(t, _)) if t <= word_end * tick_spacing => (t, Some(at)),
            _ => (word_end * tick_spacing, None),
        }
    }
}

/// Checks the ticks one by one, then the active liquidity against them.
fn check_ticks(
    ticks: &[(i32, i128)],
    liquidity: u128,
    tick: i32,
    tick_spacing: i32,
) -> Result<(), V3PoolError> {
    let mut running: u128 = 0;
    let mut active: u128 = 0;
    for (index, &(t, net)) in ticks.iter().enumerate() {
        if !(MIN_TICK..=MAX_TICK).contains(&t) || t % tick_spacing != 0 {
            return Err(V3PoolError::TickNotUsable { index, tick: t, tick_spacing });
        }
        if index > 0 && t <= ticks[index - 1].0 {
            return Err(V3PoolError::TicksNotSorted { index, tick: t });
        }
        running = running
            .checked_add_signed(net)
            .ok_or(V3PoolError::LiquidityNetInconsistent { tick: t })?;
        if t <= tick {
            active = running;
        }
    }
    if running != 0 {
        let tick = ticks.last().map_or(0, |&(t, _)| t);
        return Err(V3PoolError::LiquidityNetInconsistent { tick });
    }
    if active != liquidity {
        return Err(V3PoolError::LiquidityMismatch { liquidity, expected: active });
    }
    Ok(())
}
