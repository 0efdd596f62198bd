//! The consolidated book: every venue's levels merged by price, remembering who quotes what.

use std::borrow::Borrow;
use std::cmp::Reverse;

use super::{Book, BookError, BookSide};

/// One side of a [`ConsolidatedBook`], best price first.
///
/// Stored as flat arrays (a level's parts are `parts[starts[i]..starts[i + 1]]`), so building
/// one allocates a handful of vectors whatever the number of levels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConsolidatedSide {
    prices: Vec<u64>,
    totals: Vec<u128>,
    starts: Vec<usize>,
    part_venues: Vec<usize>,
    part_sizes: Vec<u128>,
}

impl ConsolidatedSide {
    /// Number of price levels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.prices.len()
    }

    /// Whether the side has no level.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// Price of level `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    #[must_use]
    pub fn price(&self, i: usize) -> u64 {
        self.prices[i]
    }

    /// Total size at level `i` (the sum of its parts).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    #[must_use]
    pub fn total(&self, i: usize) -> u128 {
        self.totals[i]
    }

    /// The parts of level `i`: `(venue index, size)`, in the book's venue order (the order in
    /// which a sweep fills them).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn parts(&self, i: usize) -> impl ExactSizeIterator<Item = (usize, u128)> + '_ {
        let range = self.starts[i]..self.starts[i + 1];
        self.part_venues[range.clone()].iter().copied().zip(self.part_sizes[range].iter().copied())
    }

    /// A side from `(price, venue index, size)` entries already in book order (best price
    /// first, parts of one price in venue order). Sizes at one price are summed.
    ///
    /// # Errors
    ///
    /// `Err((venue index, price))` if a level's total exceeds `2**128-1`.
    pub(crate) fn from_entries(
        entries: impl IntoIterator<Item = (u64, usize, u128)>,
        capacity: usize,
    ) -> Result<Self, (usize, u64)> {
        let mut side = Self {
            prices: Vec::with_capacity(capacity),
            totals: Vec::with_capacity(capacity),
            starts: Vec::with_capacity(capacity + 1),
            part_venues: Vec::with_capacity(capacity),
            part_sizes: Vec::with_capacity(capacity),
        };
        for (price, venue, size) in entries {
            match (side.prices.last(), side.totals.last_mut()) {
                (Some(&last), Some(total)) if last == price => {
                    *total = total.checked_add(size).ok_or((venue, price))?;
                }
                _ => {
                    side.prices.push(price);
                    side.totals.push(size);
                    side.starts.push(side.part_venues.len());
                }
            }
            side.part_venues.push(venue);
            side.part_sizes.push(size);
        }
        side.starts.push(side.part_venues.len());
        Ok(side)
    }
}

/// Per-venue books merged into one: at each price, the total size and how much of it each
/// venue quotes.
///
/// Venues are ordered by `(fee, venue name)`, cheapest first; within a level, parts follow that
/// order, which is the order a sweep fills them in. The consolidated book may be crossed (one
/// venue's bid above another's ask): that is a market fact, not an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsolidatedBook {
    venues: Vec<String>,
    fees: Vec<u32>,
    bids: ConsolidatedSide,
    asks: ConsolidatedSide,
}

impl ConsolidatedBook {
    /// Venue names, in fill order (`(fee, name)` ascending).
    #[must_use]
    pub fn venues(&self) -> &[String] {
        &self.venues
    }

    /// Each venue's fee (hundredths of a basis point), parallel to [`Self::venues`].
    #[must_use]
    pub fn fees(&self) -> &[u32] {
        &self.fees
    }

    /// Bids, highest price first.
    #[must_use]
    pub fn bids(&self) -> &ConsolidatedSide {
        &self.bids
    }

    /// Asks, lowest price first.
    #[must_use]
    pub fn asks(&self) -> &ConsolidatedSide {
        &self.asks
    }

    /// The given side.
    #[must_use]
    pub fn side(&self, side: BookSide) -> &ConsolidatedSide {
        match side {
            BookSide::Bids => &self.bids,
            BookSide::Asks => &self.asks,
        }
    }

    pub(crate) fn from_parts(
        venues: Vec<String>,
        fees: Vec<u32>,
        bids: ConsolidatedSide,
        asks: ConsolidatedSide,
    ) -> Self {
        Self { venues, fees, bids, asks }
    }
}

/// Merges per-venue books into one consolidated book (see [`ConsolidatedBook`]). No books give
/// an empty book.
///
/// # Errors
///
/// [`BookError::DuplicateVenue`] if two books share a venue name (the smallest such name is
/// reported); [`BookError::SizeOverflow`] if the total size at one price exceeds `2**128-1`
/// (bids are merged before asks, levels best first, parts in venue order).
pub fn aggregate_books<B: Borrow<Book>>(books: &[B]) -> Result<ConsolidatedBook, BookError> {
    let books: Vec<&Book> = books.iter().map(Borrow::borrow).collect();
    let mut names: Vec<&str> = books.iter().map(|b| b.venue()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(BookError::DuplicateVenue { venue: w[0].to_owned() });
    }
    let mut ordered = books;
    ordered.sort_by(|a, b| (a.fee(), a.venue()).cmp(&(b.fee(), b.venue())));
    let merge = |side: BookSide| -> Result<ConsolidatedSide, BookError> {
        let count = ordered.iter().map(|b| b.side(side).len()).sum();
        let mut entries: Vec<(u64, usize, u128)> = Vec::with_capacity(count);
        for (rank, book) in ordered.iter().enumerate() {
            entries.extend(book.side(side).iter().map(|&(price, size)| (price, rank, size)));
        }
        // A stable sort: every venue's levels are already sorted runs (which the sort merges),
        // and equal prices keep the venues' order.
        match side {
            BookSide::Bids => entries.sort_by_key(|e| Reverse(e.0)),
            BookSide::Asks => entries.sort_by_key(|e| e.0),
        }
        ConsolidatedSide::from_entries(entries, count).map_err(|(rank, price)| {
            BookError::SizeOverflow { venue: ordered[rank].venue().to_owned(), side, price }
        })
    };
    let bids = merge(BookSide::Bids)?;
    let asks = merge(BookSide::Asks)?;
    let venues = ordered.iter().map(|b| b.venue().to_owned()).collect();
    let fees = ordered.iter().map(|b| b.fee()).collect();
    Ok(ConsolidatedBook::from_parts(venues, fees, bids, asks))
}
