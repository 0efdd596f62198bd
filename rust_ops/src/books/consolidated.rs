//! The consolidated book: every venue's levels merged by price, remembering who quotes what.

use std::borrow::Borrow;
use std::sync::Mutex;

use super::{Book, BookError, BookSide};

/// One side of a [`ConsolidatedBook`], best price first.
///
/// Stored as flat arrays (a level's parts are `parts[starts[i]..starts[i + 1]]`), so building
/// one allocates a handful of vectors whatever the number of levels. A dropped side gives its
/// arrays back to a small pool that the next side built reuses (see `Buffers`): their pages
/// are already mapped, so a new side does not page-fault its way through fresh memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConsolidatedSide {
    prices: Vec<u64>,
    totals: Vec<u128>,
    starts: Vec<usize>,
    /// Venue ranks as `u32`, half the bytes of a `usize` (there are far fewer than `2**32`
    /// venues: each is a distinct `Book` in memory).
    part_venues: Vec<u32>,
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
        let venues = self.part_venues[range.clone()].iter().map(|&v| v as usize);
        venues.zip(self.part_sizes[range].iter().copied())
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
        let mut side = Self::with_capacity(capacity);
        for (price, venue, size) in entries {
            side.push(price, venue, size).map_err(|()| (venue, price))?;
        }
        side.starts.push(side.part_venues.len());
        Ok(side)
    }

    /// An empty side with room for `capacity` levels and parts, on pooled arrays if any.
    fn with_capacity(capacity: usize) -> Self {
        let mut side = Buffers::take();
        side.prices.reserve(capacity);
        side.totals.reserve(capacity);
        side.starts.reserve(capacity + 1);
        side.part_venues.reserve(capacity);
        side.part_sizes.reserve(capacity);
        side
    }

    /// Appends a part: to the last level if it has this price, else as a new level. The
    /// caller pushes the final `starts` sentinel.
    fn push(&mut self, price: u64, venue: usize, size: u128) -> Result<(), ()> {
        match (self.prices.last(), self.totals.last_mut()) {
            (Some(&last), Some(total)) if last == price => {
                *total = total.checked_add(size).ok_or(())?;
            }
            _ => {
                self.prices.push(price);
                self.totals.push(size);
                self.starts.push(self.part_venues.len());
            }
        }
        self.part_venues.push(rank32(venue));
        self.part_sizes.push(size);
        Ok(())
    }
}

/// The pool of arrays given back by dropped [`ConsolidatedSide`]s: at most [`Buffers::KEPT`]
/// sets, each at most [`Buffers::MAX_BYTES`], so the memory it holds stays small and bounded.
/// Pooled arrays are always emptied before reuse; only their capacity is recycled.
struct Buffers;

static POOL: Mutex<Vec<ConsolidatedSide>> = Mutex::new(Vec::new());

impl Buffers {
    /// Sets of arrays kept (two per consolidated book).
    const KEPT: usize = 4;
    /// Largest set kept, in bytes of capacity.
    const MAX_BYTES: usize = 4 << 20;

    /// An empty side, on pooled arrays when there are some.
    fn take() -> ConsolidatedSide {
        let pooled = POOL.lock().ok().and_then(|mut pool| pool.pop());
        pooled.unwrap_or_default()
    }

    /// Gives `side`'s arrays, emptied, back to the pool if it has room and they are not too big.
    fn give(side: &mut ConsolidatedSide) {
        let bytes = side.prices.capacity() * 8
            + side.totals.capacity() * 16
            + side.starts.capacity() * 8
            + side.part_venues.capacity() * 4
            + side.part_sizes.capacity() * 16;
        if bytes == 0 || bytes > Self::MAX_BYTES {
            return;
        }
        let Ok(mut pool) = POOL.lock() else { return };
        if pool.len() < Self::KEPT {
            let mut kept = ConsolidatedSide::default();
            std::mem::swap(&mut kept, side);
            kept.prices.clear();
            kept.totals.clear();
            kept.starts.clear();
            kept.part_venues.clear();
            kept.part_sizes.clear();
            pool.push(kept);
        }
    }
}

impl Drop for ConsolidatedSide {
    fn drop(&mut self) {
        Buffers::give(self);
    }
}

/// A venue rank as stored in a side.
fn rank32(rank: usize) -> u32 {
    u32::try_from(rank).expect("fewer than 2**32 venues")
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
        merge_side(&ordered, side).map_err(|(rank, price)| BookError::SizeOverflow {
            venue: ordered[rank].venue().to_owned(),
            side,
            price,
        })
    };
    let bids = merge(BookSide::Bids)?;
    let asks = merge(BookSide::Asks)?;
    let venues = ordered.iter().map(|b| b.venue().to_owned()).collect();
    let fees = ordered.iter().map(|b| b.fee()).collect();
    Ok(ConsolidatedBook::from_parts(venues, fees, bids, asks))
}

/// Merges the venues' sides (each already best first), `ordered` in venue order: by buckets
/// when the prices are dense (the usual case: one tick grid, levels a few ticks apart; a
/// venue bitmask per tick for up to [`MASK_VENUES`] venues, a counting sort beyond), by a
/// k-way merge otherwise. All give the same side.
fn merge_side(ordered: &[&Book], side: BookSide) -> Result<ConsolidatedSide, (usize, u64)> {
    let levels: Vec<&[(u64, u128)]> = ordered.iter().map(|b| b.side(side)).collect();
    let count: usize = levels.iter().map(|l| l.len()).sum();
    let ends = levels.iter().flat_map(|l| l.first().into_iter().chain(l.last())).map(|e| e.0);
    let (lo, hi) = ends.fold((u64::MAX, 0), |(lo, hi), p| (lo.min(p), hi.max(p)));
    let dense = count > 0 && hi - lo < DENSE_SPAN.saturating_mul(count as u64);
    if dense && levels.len() <= MASK_VENUES {
        mask_merge(&levels, side, lo, hi, count)
    } else if dense {
        Ok(bucket_merge(&levels, side, lo, hi, count)).and_then(|side| side.with_totals())
    } else {
        kway_merge(&levels, side, count)
    }
}

/// Bucket merge when `hi - lo < DENSE_SPAN · count`: one bucket per tick.
pub(crate) const DENSE_SPAN: u64 = 8;

/// Most venues [`mask_merge`] handles: one bit of a `u64` each.
pub(crate) const MASK_VENUES: usize = 64;

/// Ticks [`mask_merge`] marks and then emits at a time.
const MASK_WINDOW: usize = 256;

/// The dense merge for at most [`MASK_VENUES`] venues, a window of [`MASK_WINDOW`] ticks at a
/// time (so the levels it reads twice are still in cache the second time): mark, per tick,
/// which venues quote it (one bit per venue rank), then walk the window's ticks best first
/// and, within a tick, the set bits lowest first (venue order), taking each venue's next level
/// (a venue's levels come in tick order, so its next untaken level is the one at this tick).
/// The side is written in order, totals included, so an overflow is found at the same part as
/// by [`ConsolidatedSide::with_totals`].
pub(crate) fn mask_merge(
    levels: &[&[(u64, u128)]],
    side: BookSide,
    lo: u64,
    hi: u64,
    count: usize,
) -> Result<ConsolidatedSide, (usize, u64)> {
    debug_assert!(levels.len() <= MASK_VENUES);
    // Bucket 0 is the best price, as in `bucket_merge`; the span fits in memory.
    #[allow(clippy::cast_possible_truncation)]
    let bucket = |price: u64| match side {
        BookSide::Bids => (hi - price) as usize,
        BookSide::Asks => (price - lo) as usize,
    };
    let price_of = |b: usize| match side {
        BookSide::Bids => hi - b as u64,
        BookSide::Asks => lo + b as u64,
    };
    #[allow(clippy::cast_possible_truncation)]
    let span = (hi - lo) as usize + 1;
    let mut out = ConsolidatedSide::with_capacity(count);
    let mut masks = [0u64; MASK_WINDOW];
    let mut marked = [0usize; MASK_VENUES];
    let mut taken = [0usize; MASK_VENUES];
    let mut start = 0;
    while start < span {
        let end = start + MASK_WINDOW.min(span - start);
        for (rank, l) in levels.iter().enumerate() {
            let bit = 1u64 << rank;
            let next = &mut marked[rank];
            while let Some(&(price, _)) = l.get(*next) {
                let b = bucket(price);
                if b >= end {
                    break;
                }
                masks[b - start] |= bit;
                *next += 1;
            }
        }
        for (offset, slot) in masks[..end - start].iter_mut().enumerate() {
            let mut rest = std::mem::take(slot);
            if rest == 0 {
                continue;
            }
            let price = price_of(start + offset);
            out.prices.push(price);
            out.starts.push(out.part_venues.len());
            let mut total: u128 = 0;
            while rest != 0 {
                let rank = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                let size = levels[rank][taken[rank]].1;
                taken[rank] += 1;
                total = total.checked_add(size).ok_or((rank, price))?;
                out.part_venues.push(rank32(rank));
                out.part_sizes.push(size);
            }
            out.totals.push(total);
        }
        start = end;
    }
    out.starts.push(out.part_venues.len());
    Ok(out)
}

/// A counting sort on the price: count the parts per tick, turn counts into offsets, then
/// scatter the parts venue by venue (so a price's parts come out in venue order). Linear in
/// levels plus ticks, no comparison sort. Totals are left to [`ConsolidatedSide::with_totals`].
pub(crate) fn bucket_merge(
    levels: &[&[(u64, u128)]],
    side: BookSide,
    lo: u64,
    hi: u64,
    count: usize,
) -> ConsolidatedSide {
    // Bucket 0 is the best price: the highest bid, the lowest ask. The span fits in memory
    // (it is below DENSE_SPAN · count), so the casts do not truncate.
    #[allow(clippy::cast_possible_truncation)]
    let bucket = |price: u64| match side {
        BookSide::Bids => (hi - price) as usize,
        BookSide::Asks => (price - lo) as usize,
    };
    let price_of = |b: usize| match side {
        BookSide::Bids => hi - b as u64,
        BookSide::Asks => lo + b as u64,
    };
    #[allow(clippy::cast_possible_truncation)]
    let mut next = vec![0usize; (hi - lo) as usize + 1];
    for l in levels {
        for &(price, _) in *l {
            next[bucket(price)] += 1;
        }
    }
    let mut out = Buffers::take();
    let mut offset = 0;
    for (b, slot) in next.iter_mut().enumerate() {
        let n = *slot;
        if n > 0 {
            out.prices.push(price_of(b));
            out.starts.push(offset);
        }
        *slot = offset;
        offset += n;
    }
    out.starts.push(offset);
    out.part_venues.resize(count, 0);
    out.part_sizes.resize(count, 0);
    for (rank, l) in levels.iter().enumerate() {
        for &(price, size) in *l {
            let slot = &mut next[bucket(price)];
            out.part_venues[*slot] = rank32(rank);
            out.part_sizes[*slot] = size;
            *slot += 1;
        }
    }
    out
}

impl ConsolidatedSide {
    /// Fills `totals` from the parts, best level first, parts in venue order.
    pub(crate) fn with_totals(mut self) -> Result<Self, (usize, u64)> {
        self.totals.clear();
        self.totals.reserve(self.prices.len());
        for (i, &price) in self.prices.iter().enumerate() {
            let mut total: u128 = 0;
            for j in self.starts[i]..self.starts[i + 1] {
                let venue = self.part_venues[j] as usize;
                total = total.checked_add(self.part_sizes[j]).ok_or((venue, price))?;
            }
            self.totals.push(total);
        }
        Ok(self)
    }
}

/// A k-way merge: each step scans the venues' next prices for the best one, then takes that
/// price from every venue quoting it, in venue order. `O(levels out · venues + levels in)`.
pub(crate) fn kway_merge(
    levels: &[&[(u64, u128)]],
    side: BookSide,
    count: usize,
) -> Result<ConsolidatedSide, (usize, u64)> {
    const DONE: u64 = u64::MAX;
    // Smaller keys are better. Bids: key = MAX - price (prices are >= 1, so keys stay below
    // DONE).
    let key = |price: u64| match side {
        BookSide::Bids => u64::MAX - price,
        BookSide::Asks => price,
    };
    let mut cursor = vec![0usize; levels.len()];
    let mut heads: Vec<u64> =
        levels.iter().map(|l| l.first().map_or(DONE, |&(p, _)| key(p))).collect();
    let mut out = ConsolidatedSide::with_capacity(count);
    loop {
        let best = heads.iter().copied().min().unwrap_or(DONE);
        if best == DONE {
            break;
        }
        for (rank, head) in heads.iter_mut().enumerate() {
            if *head == best {
                let (price, size) = levels[rank][cursor[rank]];
                out.push(price, rank, size).map_err(|()| (rank, price))?;
                cursor[rank] += 1;
                *head = levels[rank].get(cursor[rank]).map_or(DONE, |&(p, _)| key(p));
            }
        }
    }
    out.starts.push(out.part_venues.len());
    Ok(out)
}
