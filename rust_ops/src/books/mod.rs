//! Order books: per-venue L2 books, their aggregation into one consolidated book, and sweeps.
//!
//! Units, all exact integers (money is never a float):
//!
//! - a **price** is a count of price ticks, `1..=2**64-1`; the tick's value (e.g. 0.01 USDC per
//!   ETH) is the caller's convention and must be the same for every book aggregated together;
//! - a **size** or quantity is in integer base units of the traded asset, `1..=2**128-1`;
//! - a **notional** is `Σ price·qty`, in tick·base units (at most 192 bits, held as
//!   [`ruint::aliases::U256`]);
//! - a venue's **fee** is in hundredths of a basis point (1_000_000 = 100 %), the project's unit
//!   for every fee; a venue's fee on a sweep is `ceil(notional·fee / 1e6)` of its own notional,
//!   rounded up, in the venue's favour.
//!
//! Modules: [`book`] (a validated venue book), [`consolidated`] ([`aggregate_books`]),
//! [`mod@sweep`] ([`sweep()`]), [`mod@water_fill`] ([`water_fill()`]: one order over a book
//! and a pool curve), [`error`].

pub mod book;
pub mod consolidated;
pub mod error;
pub mod sweep;
pub mod water_fill;

#[cfg(test)]
mod tests;

pub use book::Book;
pub use consolidated::{aggregate_books, ConsolidatedBook, ConsolidatedSide};
pub use error::{BookError, SweepError};
pub use sweep::{sweep, Fill, Side, Sweep, VenueFill};
pub use water_fill::{pool_levels, water_fill, WaterFill};

/// A side of a book: bids (buy orders, best = highest) or asks (sell orders, best = lowest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BookSide {
    /// Buy orders, best (highest) price first.
    Bids,
    /// Sell orders, best (lowest) price first.
    Asks,
}

impl BookSide {
    /// `"bids"` or `"asks"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Bids => "bids",
            Self::Asks => "asks",
        }
    }

    /// Whether `price` may follow `previous` on this side (strictly worse).
    #[must_use]
    pub fn is_worse(self, price: u64, previous: u64) -> bool {
        match self {
            Self::Bids => price < previous,
            Self::Asks => price > previous,
        }
    }
}
