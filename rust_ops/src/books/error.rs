//! Errors of the order-book operators: small, named, each with a stable `code` (as
//! `crate::error`).
//!
//! [`BookError`] is raised in Python as `InvalidBookError` (with `venue`), [`SweepError`] as
//! `SweepError`, each with `code` copied onto the exception.

use std::fmt;

use super::BookSide;

/// A venue's book, or a set of books, that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BookError {
    /// A price, size or fee given from outside (Python) does not fit its type.
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
    ZeroPrice {
        /// The venue.
        venue: String,
        /// The side holding the level.
        side: BookSide,
        /// Index of the level.
        index: usize,
    },
    /// A level's size is zero (an empty level must be left out, not listed).
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
    FeeOutOfRange {
        /// The venue.
        venue: String,
        /// The rejected fee.
        fee: u128,
    },
    /// The venue's best bid is at or above its best ask.
    CrossedBook {
        /// The venue.
        venue: String,
        /// Best bid.
        bid: u64,
        /// Best ask.
        ask: u64,
    },
    /// Two books given to one aggregation come from the same venue.
    DuplicateVenue {
        /// The venue named twice (the smallest such name).
        venue: String,
    },
    /// The consolidated size at one price exceeds `2**128-1`.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepError {
    /// `side` is neither `"buy"` nor `"sell"`.
    UnknownSide {
        /// The side as given.
        side: String,
    },
    /// The quantity is outside `0..=2**128-1`.
    ValueOutOfRange {
        /// The value as the caller wrote it (decimal).
        value: String,
    },
    /// The quantity is zero.
    ZeroQuantity,
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

impl fmt::Display for BookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ValueOutOfRange { venue, field, range, value } => {
                write!(f, "venue '{venue}': {field} must be an int in {range}, got {value}")
            }
            Self::ZeroPrice { venue, side, index } => {
                write!(f, "venue '{venue}': {}[{index}] has price 0; prices are positive", side.name())
            }
            Self::ZeroSize { venue, side, index, price } => write!(
                f,
                "venue '{venue}': {}[{index}] at price {price} has size 0; leave empty levels out",
                side.name()
            ),
            Self::DuplicatePrice { venue, side, index, price } => write!(
                f,
                "venue '{venue}': {}[{index}] repeats price {price}; merge the sizes into one level",
                side.name()
            ),
            Self::UnsortedLevels { venue, side, index, price, previous } => {
                let (name, order) = match side {
                    BookSide::Asks => ("asks", "increasing"),
                    BookSide::Bids => ("bids", "decreasing"),
                };
                write!(
                    f,
                    "venue '{venue}': {name}[{index}] price {price} follows {previous}; \
                     {name} must be best first (strictly {order} prices)"
                )
            }
            Self::FeeOutOfRange { venue, fee } => write!(
                f,
                "venue '{venue}': fee {fee} is outside 0..=999999 \
                 (hundredths of a basis point: 3000 = 0.30 %)"
            ),
            Self::CrossedBook { venue, bid, ask } => write!(
                f,
                "venue '{venue}': book is crossed, best bid {bid} is not below best ask {ask}"
            ),
            Self::DuplicateVenue { venue } => write!(
                f,
                "venue '{venue}' has more than one book; give one book per venue"
            ),
            Self::SizeOverflow { venue, side, price } => write!(
                f,
                "venue '{venue}': the consolidated size of {} at price {price} exceeds 2**128-1",
                side.name()
            ),
        }
    }
}

impl SweepError {
    /// Stable machine-readable reason, copied onto the Python exception as `code`.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSide { .. } => "unknown_side",
            Self::ValueOutOfRange { .. } => "out_of_range",
            Self::ZeroQuantity => "zero_quantity",
        }
    }
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownSide { side } => {
                write!(f, "side must be 'buy' or 'sell', got '{side}'")
            }
            Self::ValueOutOfRange { value } => {
                write!(f, "qty must be an int in 0..=2**128-1, got {value}")
            }
            Self::ZeroQuantity => write!(f, "qty must be positive, got 0"),
        }
    }
}

impl std::error::Error for BookError {}
impl std::error::Error for SweepError {}
