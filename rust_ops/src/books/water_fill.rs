//! Water-filling one order across a consolidated book and a pool curve: the cheapest units
//! by marginal price, whichever kind of venue quotes them.
//!
//! The pool side is a **cost curve** sampled by the caller (the router's exact quotes for
//! increasing amounts): points `(x, c)`, `c` the quote paid for `x` base units (a buy) or
//! received for them (a sell). Segment `k` of the curve has the marginal price
//! `(c_k − c_{k−1}) / (x_k − x_{k−1})` in quote base units per base unit; `price_num /
//! price_den` turns that into the book's price units (ticks), rounded against the taker (a
//! buy's up, a sell's down). The segments become levels of the pool: made monotone (a router
//! switching paths can bend a curve; a buy's level is never cheaper than the one before, a
//! sell's never dearer), equal prices merged, a level priced 0 ending them, a price beyond
//! `2**64−1` held at it.
//!
//! The fill takes the book's levels and the pool's best first, like a [`sweep`](super::sweep())
//! of the book with the pool as one more venue: at one price the book's venues come first (a
//! child order pays no gas), in the book's venue order. What each venue and the pool took is
//! the split of the order: every venue is filled up to one common marginal price.

use ruint::aliases::U256;

use super::{ConsolidatedBook, Side, SweepError};

/// The result of [`water_fill`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WaterFill {
    /// The taker's side.
    pub side: Side,
    /// The quantity asked for.
    pub requested_qty: u128,
    /// What the book and the pool hold of it together, at most `requested_qty`.
    pub filled_qty: u128,
    /// The pool's share.
    pub pool_qty: u128,
    /// Each book venue's share: `(venue index, qty)`, in the book's venue order, zero left out.
    pub venue_fills: Vec<(usize, u128)>,
    /// The pool curve as levels `(price, size)`, best first.
    pub pool_levels: Vec<(u64, u128)>,
}

/// The pool curve `curve` as levels (see the module docs).
///
/// # Errors
///
/// [`SweepError::CurveOutOfRange`] if `price_num` or `price_den` is 0.
pub fn pool_levels(
    side: Side,
    curve: &[(u128, u128)],
    price_num: u128,
    price_den: u128,
) -> Result<Vec<(u64, u128)>, SweepError> {
    for (field, value) in [("price_num", price_num), ("price_den", price_den)] {
        if value == 0 {
            return Err(SweepError::CurveOutOfRange {
                field: field.to_owned(),
                range: "1..=2**128-1",
                value: "0".into(),
            });
        }
    }
    let mut levels: Vec<(u64, u128)> = Vec::new();
    let (mut x0, mut c0) = (0u128, 0u128);
    for &(x, c) in curve {
        if x <= x0 {
            continue;
        }
        let numerator = U256::from(c.saturating_sub(c0)) * U256::from(price_num);
        let denominator = U256::from(x - x0) * U256::from(price_den);
        let exact = match side {
            Side::Buy => numerator.div_ceil(denominator),
            Side::Sell => numerator / denominator,
        };
        let mut price = u64::try_from(exact).unwrap_or(u64::MAX);
        if let Some(&(last, _)) = levels.last() {
            price = match side {
                Side::Buy => price.max(last),
                Side::Sell => price.min(last),
            };
        }
        if price == 0 {
            break;
        }
        match levels.last_mut() {
            Some(level) if level.0 == price => level.1 += x - x0,
            _ => levels.push((price, x - x0)),
        }
        x0 = x;
        c0 = c;
    }
    Ok(levels)
}

/// Fills up to `qty` from `book`'s side that `side` trades against and from the pool curve,
/// best price first (see the module docs). Asking for more than both hold fills what there is.
///
/// # Errors
///
/// [`SweepError::ZeroQuantity`] if `qty` is 0; those of [`pool_levels`].
pub fn water_fill(
    book: &ConsolidatedBook,
    side: Side,
    qty: u128,
    curve: &[(u128, u128)],
    price_num: u128,
    price_den: u128,
) -> Result<WaterFill, SweepError> {
    if qty == 0 {
        return Err(SweepError::ZeroQuantity);
    }
    let pool = pool_levels(side, curve, price_num, price_den)?;
    let levels = book.side(side.book_side());
    let mut per_venue = vec![0u128; book.venues().len()];
    let (mut i, mut j, mut remaining, mut pool_qty) = (0usize, 0usize, qty, 0u128);
    while remaining > 0 {
        let from_book = match (i < levels.len(), pool.get(j)) {
            (false, None) => break,
            (true, None) => true,
            (false, Some(_)) => false,
            (true, Some(&(price, _))) => match side {
                Side::Buy => levels.price(i) <= price,
                Side::Sell => levels.price(i) >= price,
            },
        };
        if from_book {
            for (venue, size) in levels.parts(i) {
                let take = size.min(remaining);
                per_venue[venue] += take;
                remaining -= take;
                if remaining == 0 {
                    break;
                }
            }
            i += 1;
        } else {
            let take = pool[j].1.min(remaining);
            pool_qty += take;
            remaining -= take;
            j += 1;
        }
    }
    let venue_fills = per_venue.into_iter().enumerate().filter(|&(_, q)| q > 0).collect();
    Ok(WaterFill {
        side,
        requested_qty: qty,
        filled_qty: qty - remaining,
        pool_qty,
        venue_fills,
        pool_levels: pool,
    })
}
