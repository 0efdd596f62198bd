//! Sweeping a consolidated book: take `qty` at the best prices, level by level.

use ruint::aliases::U256;

use std::sync::Arc;

use super::consolidated::aggregate_ordered;
use super::{Book, BookSide, ConsolidatedBook, SweepError};
use crate::error::FEE_DENOMINATOR;

/// The taker's side: a buy sweeps the asks (lowest first), a sell sweeps the bids (highest
/// first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Take liquidity from the asks.
    Buy,
    /// Take liquidity from the bids.
    Sell,
}

impl Side {
    /// `"buy"` or `"sell"` (exactly, lower case).
    ///
    /// # Errors
    ///
    /// [`SweepError::UnknownSide`] for anything else.
    pub fn parse(side: &str) -> Result<Self, SweepError> {
        match side {
            "buy" => Ok(Self::Buy),
            "sell" => Ok(Self::Sell),
            _ => Err(SweepError::UnknownSide { side: side.to_owned() }),
        }
    }

    /// `"buy"` or `"sell"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }

    /// The side of the book this side takes from.
    #[must_use]
    pub fn book_side(self) -> BookSide {
        match self {
            Self::Buy => BookSide::Asks,
            Self::Sell => BookSide::Bids,
        }
    }
}

/// One piece of a sweep: `qty` taken at `price` from venue index `venue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fill {
    /// Level price (ticks).
    pub price: u64,
    /// Quantity taken (base units), positive.
    pub qty: u128,
    /// Index into [`ConsolidatedBook::venues`].
    pub venue: usize,
}

/// What a sweep took from one venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VenueFill {
    /// Index into [`ConsolidatedBook::venues`].
    pub venue: usize,
    /// Quantity taken (base units), positive.
    pub qty: u128,
    /// `Σ price·qty` of this venue's fills (tick·base units).
    pub notional: U256,
    /// `ceil(notional·fee / 1_000_000)`: the venue's fee, rounded up.
    pub fee: U256,
}

/// The result of [`sweep`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sweep {
    /// The taker's side.
    pub side: Side,
    /// The quantity asked for.
    pub requested_qty: u128,
    /// The quantity filled: `min(requested_qty, depth of the swept side)`.
    pub filled_qty: u128,
    /// `Σ price·qty` over all fills (tick·base units), fees excluded.
    pub notional: U256,
    /// `Σ` of the venues' fees.
    pub fees: U256,
    /// `notional / filled_qty` rounded against the taker: up for a buy, down for a sell.
    /// `None` if nothing was filled.
    pub avg_price: Option<u64>,
    /// Price of the last (worst) level touched; `None` if nothing was filled.
    pub worst_price: Option<u64>,
    /// The fills, best price first; within a price, in the book's venue order.
    pub fills: Vec<Fill>,
    /// Per-venue totals, in the book's venue order, venues with no fill left out.
    pub venue_fills: Vec<VenueFill>,
}

/// Takes up to `qty` from the side of `book` that `side` trades against, best price first and,
/// within a price, venues in the book's order (cheapest fee first). Asking for more than the
/// book holds fills what there is.
///
/// # Errors
///
/// [`SweepError::ZeroQuantity`] if `qty` is 0.
pub fn sweep(book: &ConsolidatedBook, side: Side, qty: u128) -> Result<Sweep, SweepError> {
    if qty == 0 {
        return Err(SweepError::ZeroQuantity);
    }
    let levels = book.side(side.book_side());
    let mut per_venue = vec![(0u128, U256::ZERO); book.venues().len()];
    let mut fills = Vec::new();
    let mut remaining = qty;
    'levels: for i in 0..levels.len() {
        let price = levels.price(i);
        for (venue, size) in levels.parts(i) {
            if remaining == 0 {
                break 'levels;
            }
            let take = size.min(remaining);
            remaining -= take;
            fills.push(Fill { price, qty: take, venue });
            let slot = &mut per_venue[venue];
            slot.0 += take;
            slot.1 += U256::from(price) * U256::from(take);
        }
    }
    let filled_qty = qty - remaining;
    let denominator = U256::from(FEE_DENOMINATOR);
    let venue_fills: Vec<VenueFill> = per_venue
        .iter()
        .enumerate()
        .filter(|(_, &(q, _))| q > 0)
        .map(|(venue, &(qty, notional))| {
            let fee = (notional * U256::from(book.fees()[venue])).div_ceil(denominator);
            VenueFill { venue, qty, notional, fee }
        })
        .collect();
    let notional = venue_fills.iter().map(|f| f.notional).fold(U256::ZERO, |a, b| a + b);
    let fees = venue_fills.iter().map(|f| f.fee).fold(U256::ZERO, |a, b| a + b);
    let avg_price = (filled_qty > 0).then(|| {
        let filled = U256::from(filled_qty);
        let avg = match side {
            Side::Buy => notional.div_ceil(filled),
            Side::Sell => notional / filled,
        };
        // Between the best and worst fill price, so it fits.
        u64::try_from(avg).unwrap_or(u64::MAX)
    });
    let worst_price = fills.last().map(|f| f.price);
    Ok(Sweep {
        side,
        requested_qty: qty,
        filled_qty,
        notional,
        fees,
        avg_price,
        worst_price,
        fills,
        venue_fills,
    })
}

impl ConsolidatedBook {
    /// The book left after `done` (a sweep of this very book): its fills taken out, emptied
    /// parts and levels removed. The venues' books are rebuilt with what is left (those the
    /// sweep did not touch are shared as they are) and merged again.
    ///
    /// # Panics
    ///
    /// Never for a sweep of this book (sizes only shrink, so no level total can overflow).
    #[must_use]
    pub fn after(&self, done: &Sweep) -> Self {
        let swept = done.side.book_side();
        // What the sweep took from each venue: a venue's fills come in its level order.
        let mut taken: Vec<Vec<(u64, u128)>> = vec![Vec::new(); self.books().len()];
        for f in &done.fills {
            taken[f.venue].push((f.price, f.qty));
        }
        let books = self.books().iter().zip(taken).map(|(book, taken)| {
            if taken.is_empty() {
                return Arc::clone(book);
            }
            let mut taken = taken.into_iter().peekable();
            let rest: Vec<(u64, u128)> = book
                .levels(swept)
                .filter_map(|(price, size)| {
                    let qty = taken.next_if(|t| t.0 == price).map_or(0, |t| t.1);
                    (size > qty).then_some((price, size - qty))
                })
                .collect();
            let (bids, asks) = match swept {
                BookSide::Bids => (rest, book.asks().collect()),
                BookSide::Asks => (book.bids().collect(), rest),
            };
            Arc::new(Book::trusted(book.venue().to_owned(), &bids, &asks, book.fee()))
        });
        aggregate_ordered(books.collect()).expect("sizes only shrink, so no total overflows")
    }
}
