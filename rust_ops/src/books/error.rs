//! Errors of the order-book operators: small, named, each with a stable `code` (as
//! `crate::error`).
//!
//! [`BookError`] is raised in Python as `InvalidBookError` (with `venue`), [`SweepError`] as
//! `SweepError`, each with `code` copied onto the exception.

use thiserror::Error;

use super::BookSide;

/// A venue's book, or a set of books, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BookError {
    /// A price, size or fee given from outside (Python) does not fit its type.
    #[error("venue '{venue}': {field} must be an int in {range}, got {value}")]
    ValueOutOfRange {
        /// The venue.
        venue: String,
        /// Field name, e.g. `"bids[3].price"` or `"fee"`.
        field: String,
        /// The accepted range.
        range: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// A level's price is zero.
    #[error("venue '{venue}': {}[{index}] has price 0; prices are positive", .side.name())]
    ZeroPrice {
        /// The venue.
        venue: String,
        /// The side holding the level.
        side: BookSide,
        /// Index of the level.
        index: usize,
    },
    /// A level's size is zero (an empty level must be left out, not listed).
    #[error(
        "venue '{venue}': {}[{index}] at price {price} has size 0; leave empty levels out",
        .side.name()
    )]
    ZeroSize {
        /// The venue.
        venue: String,
        /// The side holding the level.
        side: BookSide,
        /// Index of the level.
        index: usize,
        /// Its price.
        price: u64,
    },
    /// Two levels of one side share a price.
    #[error(
        "venue '{venue}': {}[{index}] repeats price {price}; merge the sizes into one level",
        .side.name()
    )]
    DuplicatePrice {
        /// The venue.
        venue: String,
        /// The side holding the levels.
        side: BookSide,
        /// Index of the second level.
        index: usize,
        /// The repeated price.
        price: u64,
    },
    /// Levels are not best first: bids strictly decreasing, asks strictly increasing.
    #[error(
        "venue '{venue}': {name}[{index}] price {price} follows {previous}; {name} must be best \
         first (strictly {order} prices)",
        name = .side.name(),
        order = order(*.side)
    )]
    UnsortedLevels {
        /// The venue.
        venue: String,
        /// The side holding the levels.
        side: BookSide,
        /// Index of the first level out of order.
        index: usize,
        /// Its price.
        price: u64,
        /// The price of the level before it.
        previous: u64,
    },
    /// The fee is not below `FEE_DENOMINATOR` (1_000_000).
    #[error(
        "venue '{venue}': fee {fee} is outside 0..=999999 (hundredths of a basis point: \
         3000 = 0.30 %)"
    )]
    FeeOutOfRange {
        /// The venue.
        venue: String,
        /// The rejected fee.
        fee: u128,
    },
    /// The venue's best bid is at or above its best ask.
    #[error("venue '{venue}': book is crossed, best bid {bid} is not below best ask {ask}")]
    CrossedBook {
        /// The venue.
        venue: String,
        /// Best bid.
        bid: u64,
        /// Best ask.
        ask: u64,
    },
    /// Two books given to one aggregation come from the same venue.
    #[error("venue '{venue}' has more than one book; give one book per venue")]
    DuplicateVenue {
        /// The venue named twice (the smallest such name).
        venue: String,
    },
    /// The consolidated size at one price exceeds `2**128-1`.
    #[error(
        "venue '{venue}': the consolidated size of {} at price {price} exceeds 2**128-1",
        .side.name()
    )]
    SizeOverflow {
        /// The venue whose size did not fit.
        venue: String,
        /// The side of the level.
        side: BookSide,
        /// The level's price.
        price: u64,
    },
}

/// A sweep that cannot be carried out as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SweepError {
    /// `side` is neither `"buy"` nor `"sell"`.
    #[error("side must be 'buy' or 'sell', got '{side}'")]
    UnknownSide {
        /// The side as given.
        side: String,
    },
    /// The quantity is outside `0..=2**128-1`.
    #[error("qty must be an int in 0..=2**128-1, got {value}")]
    ValueOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// The quantity is zero.
    #[error("qty must be positive, got 0")]
    ZeroQuantity,
    /// A pool curve's value is out of range ([`super::water_fill()`]).
    #[error("{field} must be an int in {range}, got {value}")]
    CurveOutOfRange {
        /// What is out of range (`curve[3].x`, `price_den`, ...).
        field: String,
        /// The range it must be in.
        range: &'static str,
        /// The value as the caller wrote it (decimal).
        value: String,
    },
}

impl BookError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::ValueOutOfRange { .. } => "out_of_range",
            Self::ZeroPrice { .. } => "zero_price",
            Self::ZeroSize { .. } => "zero_size",
            Self::DuplicatePrice { .. } => "duplicate_price",
            Self::UnsortedLevels { .. } => "unsorted_levels",
            Self::FeeOutOfRange { .. } => "fee_out_of_range",
            Self::CrossedBook { .. } => "crossed_book",
            Self::DuplicateVenue { .. } => "duplicate_venue",
            Self::SizeOverflow { .. } => "size_overflow",
        }
    }

    /// The venue the error is about.
    #[must_use]
    pub fn venue(&self) -> &str {
        match self {
            Self::ValueOutOfRange { venue, .. }
            | Self::ZeroPrice { venue, .. }
            | Self::ZeroSize { venue, .. }
            | Self::DuplicatePrice { venue, .. }
            | Self::UnsortedLevels { venue, .. }
            | Self::FeeOutOfRange { venue, .. }
            | Self::CrossedBook { venue, .. }
            | Self::DuplicateVenue { venue }
            | Self::SizeOverflow { venue, .. } => venue,
        }
    }
}

impl SweepError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSide { .. } => "unknown_side",
            Self::ValueOutOfRange { .. } | Self::CurveOutOfRange { .. } => "out_of_range",
            Self::ZeroQuantity => "zero_quantity",
        }
    }
}

/// How a side's prices run, best first (the message of [`BookError::UnsortedLevels`]).
fn order(side: BookSide) -> &'static str {
    match side {
        BookSide::Asks => "increasing",
        BookSide::Bids => "decreasing",
    }
}
