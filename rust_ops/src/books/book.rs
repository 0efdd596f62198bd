//! A venue's L2 book, validated once at construction.

use super::{BookError, BookSide};
use crate::error::FEE_DENOMINATOR;

/// One side of a [`Book`], stored as parallel arrays (prices apart from sizes, so a merge that
/// only compares prices reads 8 bytes a level, not 32), with its largest size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct Levels {
    prices: Vec<u64>,
    sizes: Vec<u128>,
    max_size: u128,
}

impl Levels {
    fn new(levels: &[(u64, u128)]) -> Self {
        Self {
            prices: levels.iter().map(|l| l.0).collect(),
            sizes: levels.iter().map(|l| l.1).collect(),
            max_size: levels.iter().map(|l| l.1).max().unwrap_or(0),
        }
    }
}

/// One venue's L2 book: price levels with sizes on both sides and the venue's taker fee.
///
/// Invariants (checked by [`Book::new`]): prices and sizes are positive; bids strictly
/// decreasing and asks strictly increasing (best first, no repeated price); the best bid is
/// below the best ask; `fee < 1_000_000`. Either side may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Book {
    venue: String,
    bids: Levels,
    asks: Levels,
    fee: u32,
}

impl Book {
    /// A validated book; levels are `(price, size)`, best first.
    ///
    /// # Errors
    ///
    /// [`BookError`], checked in this order: every bid level then every ask level
    /// (`zero_price`, `zero_size`, `duplicate_price`, `unsorted_levels`), then
    /// `fee_out_of_range`, then `crossed_book`.
    pub fn new(
        venue: impl Into<String>,
        bids: Vec<(u64, u128)>,
        asks: Vec<(u64, u128)>,
        fee: u128,
    ) -> Result<Self, BookError> {
        let venue = venue.into();
        check_side(&venue, BookSide::Bids, &bids)?;
        check_side(&venue, BookSide::Asks, &asks)?;
        let fee = match u32::try_from(fee) {
            Ok(f) if f < FEE_DENOMINATOR => f,
            _ => return Err(BookError::FeeOutOfRange { venue, fee }),
        };
        if let (Some(&(bid, _)), Some(&(ask, _))) = (bids.first(), asks.first()) {
            if bid >= ask {
                return Err(BookError::CrossedBook { venue, bid, ask });
            }
        }
        Ok(Self::trusted(venue, &bids, &asks, fee))
    }

    /// A book from levels known to satisfy the invariants (a valid book's levels, some taken
    /// out or made smaller but not emptied).
    pub(crate) fn trusted(
        venue: String,
        bids: &[(u64, u128)],
        asks: &[(u64, u128)],
        fee: u32,
    ) -> Self {
        Self { venue, bids: Levels::new(bids), asks: Levels::new(asks), fee }
    }

    /// The venue's name, unique within an aggregation.
    #[must_use]
    pub fn venue(&self) -> &str {
        &self.venue
    }

    /// Bid levels `(price, size)`, highest price first.
    pub fn bids(&self) -> impl ExactSizeIterator<Item = (u64, u128)> + '_ {
        self.levels(BookSide::Bids)
    }

    /// Ask levels `(price, size)`, lowest price first.
    pub fn asks(&self) -> impl ExactSizeIterator<Item = (u64, u128)> + '_ {
        self.levels(BookSide::Asks)
    }

    /// The levels `(price, size)` of `side`, best first.
    pub fn levels(&self, side: BookSide) -> impl ExactSizeIterator<Item = (u64, u128)> + '_ {
        let l = self.side(side);
        l.prices.iter().copied().zip(l.sizes.iter().copied())
    }

    /// The prices of `side`'s levels, best first.
    #[must_use]
    pub fn prices(&self, side: BookSide) -> &[u64] {
        &self.side(side).prices
    }

    /// The sizes of `side`'s levels, parallel to [`Self::prices`].
    #[must_use]
    pub fn sizes(&self, side: BookSide) -> &[u128] {
        &self.side(side).sizes
    }

    /// The largest size on `side` (0 if it is empty).
    #[must_use]
    pub fn max_size(&self, side: BookSide) -> u128 {
        self.side(side).max_size
    }

    /// Taker fee in hundredths of a basis point.
    #[must_use]
    pub fn fee(&self) -> u32 {
        self.fee
    }

    fn side(&self, side: BookSide) -> &Levels {
        match side {
            BookSide::Bids => &self.bids,
            BookSide::Asks => &self.asks,
        }
    }
}

fn check_side(venue: &str, side: BookSide, levels: &[(u64, u128)]) -> Result<(), BookError> {
    let venue = || venue.to_owned();
    let mut previous: Option<u64> = None;
    for (index, &(price, size)) in levels.iter().enumerate() {
        if price == 0 {
            return Err(BookError::ZeroPrice { venue: venue(), side, index });
        }
        if size == 0 {
            return Err(BookError::ZeroSize { venue: venue(), side, index, price });
        }
        if let Some(previous) = previous {
            if price == previous {
                return Err(BookError::DuplicatePrice { venue: venue(), side, index, price });
            }
            if !side.is_worse(price, previous) {
                let venue = venue();
                return Err(BookError::UnsortedLevels { venue, side, index, price, previous });
            }
        }
        previous = Some(price);
    }
    Ok(())
}
