//! A venue's L2 book, validated once at construction.

use super::{BookError, BookSide};
use crate::error::FEE_DENOMINATOR;

/// One venue's L2 book: price levels with sizes on both sides and the venue's taker fee.
///
/// Invariants (checked by [`Book::new`]): prices and sizes are positive; bids strictly
/// decreasing and asks strictly increasing (best first, no repeated price); the best bid is
/// below the best ask; `fee < 1_000_000`. Either side may be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Book {
    venue: String,
    bids: Vec<(u64, u128)>,
    asks: Vec<(u64, u128)>,
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
        Ok(Self { venue, bids, asks, fee })
    }

    /// The venue's name, unique within an aggregation.
    #[must_use]
    pub fn venue(&self) -> &str {
        &self.venue
    }

    /// Bid levels `(price, size)`, highest price first.
    #[must_use]
    pub fn bids(&self) -> &[(u64, u128)] {
        &self.bids
    }

    /// Ask levels `(price, size)`, lowest price first.
    #[must_use]
    pub fn asks(&self) -> &[(u64, u128)] {
        &self.asks
    }

    /// The levels of `side`.
    #[must_use]
    pub fn side(&self, side: BookSide) -> &[(u64, u128)] {
        match side {
            BookSide::Bids => &self.bids,
            BookSide::Asks => &self.asks,
        }
    }

    /// Taker fee in hundredths of a basis point.
    #[must_use]
    pub fn fee(&self) -> u32 {
        self.fee
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
