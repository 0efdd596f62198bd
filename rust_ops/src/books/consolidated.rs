//! The consolidated book: every venue's levels merged by price, remembering who quotes what.
//!
//! The merged levels do not copy sizes: a level's part is a reference (venue rank, level
//! index) into the venue's [`Book`], which the consolidated book keeps alive (books are
//! immutable and shared through [`Arc`]). A part is 8 bytes where a copied `(venue, u128)`
//! was 20, and the merge reads only the venues' prices, so 20 books of 1,000 levels a side
//! merge within the L2 cache. Sizes are read when a level is looked at or swept.

use std::sync::{Arc, Mutex};

use super::{Book, BookError, BookSide};

/// A part of a consolidated level: level `level` of venue `venue`'s side (the venue by its
/// rank in the book's venue order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct Part {
    venue: u32,
    level: u32,
}

impl Part {
    fn new(venue: usize, level: usize) -> Self {
        // A rank is an index into a `Vec<Arc<Book>>` and a level one into a book's side; both
        // stay far below 2**32 (a side of 2**32 levels would take 96 GB).
        let venue = u32::try_from(venue).expect("fewer than 2**32 venues");
        let level = u32::try_from(level).expect("fewer than 2**32 levels a side");
        Self { venue, level }
    }
}

/// The merged levels of one side, best price first, as flat arrays: level `i` has price
/// `prices[i]` and parts `parts[starts[i]..starts[i + 1]]`, in venue order.
///
/// Building one allocates three vectors whatever the number of levels, and a dropped one
/// gives its arrays back to a small pool that the next one built reuses (see `Buffers`):
/// their pages are already mapped, so a new side does not page-fault through fresh memory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct SideLevels {
    prices: Vec<u64>,
    starts: Vec<u32>,
    parts: Vec<Part>,
}

impl SideLevels {
    /// An empty side with room for `levels` levels and `parts` parts, on pooled arrays if any.
    fn with_capacity(levels: usize, parts: usize) -> Self {
        let mut side = Buffers::take();
        side.prices.reserve(levels);
        side.starts.reserve(levels + 1);
        side.parts.reserve(parts);
        side
    }

    /// Opens a level at `price` (its parts are the ones pushed until the next level).
    fn open(&mut self, price: u64) {
        self.prices.push(price);
        self.starts.push(offset32(self.parts.len()));
    }

    /// Closes the last level: pushes the final `starts` sentinel.
    fn close(&mut self) {
        self.starts.push(offset32(self.parts.len()));
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.starts[i] as usize..self.starts[i + 1] as usize
    }

    /// Checks that no level's total size exceeds `2**128-1`, levels best first and parts in
    /// venue order; `sizes` are the venues' sizes on this side, in venue order.
    ///
    /// # Errors
    ///
    /// `Err((venue rank, price))` at the first part whose addition overflows.
    fn check_totals(&self, sizes: &[&[u128]]) -> Result<(), (usize, u64)> {
        for (i, &price) in self.prices.iter().enumerate() {
            let mut total: u128 = 0;
            for part in &self.parts[self.range(i)] {
                let venue = part.venue as usize;
                let size = sizes[venue][part.level as usize];
                total = total.checked_add(size).ok_or((venue, price))?;
            }
        }
        Ok(())
    }
}

/// An offset into a side's parts as stored (there are fewer parts than levels in memory).
fn offset32(offset: usize) -> u32 {
    u32::try_from(offset).expect("fewer than 2**32 parts a side")
}

/// The pool of arrays given back by dropped [`SideLevels`]: at most [`Buffers::KEPT`] sets,
/// each at most [`Buffers::MAX_BYTES`], so the memory it holds stays small and bounded.
/// Pooled arrays are always emptied before reuse; only their capacity is recycled.
struct Buffers;

static POOL: Mutex<Vec<SideLevels>> = Mutex::new(Vec::new());

impl Buffers {
    /// Sets of arrays kept (two per consolidated book).
    const KEPT: usize = 4;
    /// Largest set kept, in bytes of capacity.
    const MAX_BYTES: usize = 4 << 20;

    /// An empty side, on pooled arrays when there are some.
    fn take() -> SideLevels {
        let pooled = POOL.lock().ok().and_then(|mut pool| pool.pop());
        pooled.unwrap_or_default()
    }

    /// Gives `side`'s arrays, emptied, back to the pool if it has room and they are not too big.
    fn give(side: &mut SideLevels) {
        let bytes =
            side.prices.capacity() * 8 + side.starts.capacity() * 4 + side.parts.capacity() * 8;
        if bytes == 0 || bytes > Self::MAX_BYTES {
            return;
        }
        let Ok(mut pool) = POOL.lock() else { return };
        if pool.len() < Self::KEPT {
            let mut kept = SideLevels::default();
            std::mem::swap(&mut kept, side);
            kept.prices.clear();
            kept.starts.clear();
            kept.parts.clear();
            pool.push(kept);
        }
    }
}

impl Drop for SideLevels {
    fn drop(&mut self) {
        Buffers::give(self);
    }
}

/// One side of a [`ConsolidatedBook`], best price first: a view of its merged levels that
/// reads the sizes from the venues' books.
#[derive(Debug, Clone, Copy)]
pub struct ConsolidatedSide<'a> {
    books: &'a [Arc<Book>],
    side: BookSide,
    levels: &'a SideLevels,
}

impl<'a> ConsolidatedSide<'a> {
    /// Number of price levels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.levels.prices.len()
    }

    /// Whether the side has no level.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.levels.prices.is_empty()
    }

    /// Price of level `i`.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    #[must_use]
    pub fn price(&self, i: usize) -> u64 {
        self.levels.prices[i]
    }

    /// Total size at level `i` (the sum of its parts; [`aggregate_books`] checked it fits).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    #[must_use]
    pub fn total(&self, i: usize) -> u128 {
        self.parts(i).map(|(_, size)| size).sum()
    }

    /// The parts of level `i`: `(venue index, size)`, in the book's venue order (the order in
    /// which a sweep fills them).
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn parts(&self, i: usize) -> impl ExactSizeIterator<Item = (usize, u128)> + 'a {
        let (books, side) = (self.books, self.side);
        self.levels.parts[self.levels.range(i)].iter().map(move |p| {
            let venue = p.venue as usize;
            (venue, books[venue].sizes(side)[p.level as usize])
        })
    }
}

/// Per-venue books merged into one: at each price, the total size and how much of it each
/// venue quotes.
///
/// Venues are ordered by `(fee, venue name)`, cheapest first; within a level, parts follow that
/// order, which is the order a sweep fills them in. The consolidated book may be crossed (one
/// venue's bid above another's ask): that is a market fact, not an error. It holds the venues'
/// books (shared, not copied) and refers to their levels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsolidatedBook {
    books: Vec<Arc<Book>>,
    venues: Vec<String>,
    fees: Vec<u32>,
    bids: SideLevels,
    asks: SideLevels,
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

    /// The venues' books, parallel to [`Self::venues`].
    #[must_use]
    pub fn books(&self) -> &[Arc<Book>] {
        &self.books
    }

    /// Bids, highest price first.
    #[must_use]
    pub fn bids(&self) -> ConsolidatedSide<'_> {
        self.side(BookSide::Bids)
    }

    /// Asks, lowest price first.
    #[must_use]
    pub fn asks(&self) -> ConsolidatedSide<'_> {
        self.side(BookSide::Asks)
    }

    /// The given side.
    #[must_use]
    pub fn side(&self, side: BookSide) -> ConsolidatedSide<'_> {
        ConsolidatedSide { books: &self.books, side, levels: self.side_levels(side) }
    }

    pub(crate) fn side_levels(&self, side: BookSide) -> &SideLevels {
        match side {
            BookSide::Bids => &self.bids,
            BookSide::Asks => &self.asks,
        }
    }
}

/// Merges per-venue books into one consolidated book (see [`ConsolidatedBook`]), which keeps
/// the books (`Book`s are turned into [`Arc`]s; pass `Arc`s to share them). No books give an
/// empty book.
///
/// # Errors
///
/// [`BookError::DuplicateVenue`] if two books share a venue name (the smallest such name is
/// reported); [`BookError::SizeOverflow`] if the total size at one price exceeds `2**128-1`
/// (bids are merged before asks, levels best first, parts in venue order).
pub fn aggregate_books<B>(books: &[B]) -> Result<ConsolidatedBook, BookError>
where
    B: Clone + Into<Arc<Book>>,
{
    let mut books: Vec<Arc<Book>> = books.iter().cloned().map(Into::into).collect();
    let mut names: Vec<&str> = books.iter().map(|b| b.venue()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(BookError::DuplicateVenue { venue: w[0].to_owned() });
    }
    books.sort_by(|a, b| (a.fee(), a.venue()).cmp(&(b.fee(), b.venue())));
    aggregate_ordered(books)
}

/// [`aggregate_books`] of books with distinct venues, already in venue order.
pub(crate) fn aggregate_ordered(books: Vec<Arc<Book>>) -> Result<ConsolidatedBook, BookError> {
    let merge = |side: BookSide| -> Result<SideLevels, BookError> {
        let overflow = |(rank, price): (usize, u64)| BookError::SizeOverflow {
            venue: books[rank].venue().to_owned(),
            side,
            price,
        };
        let prices: Vec<&[u64]> = books.iter().map(|b| b.prices(side)).collect();
        let levels = merge_side(&prices, side);
        // A level holds at most one part per venue, so if the venues' largest sizes add up
        // without overflow no total can overflow (always so for real books), and the sizes
        // need not be read at all.
        let bound = books.iter().try_fold(0u128, |sum, b| sum.checked_add(b.max_size(side)));
        if bound.is_none() {
            let sizes: Vec<&[u128]> = books.iter().map(|b| b.sizes(side)).collect();
            levels.check_totals(&sizes).map_err(overflow)?;
        }
        Ok(levels)
    };
    let bids = merge(BookSide::Bids)?;
    let asks = merge(BookSide::Asks)?;
    let venues = books.iter().map(|b| b.venue().to_owned()).collect();
    let fees = books.iter().map(|b| b.fee()).collect();
    Ok(ConsolidatedBook { books, venues, fees, bids, asks })
}

/// Merges the venues' sides (their prices, each best first), in venue order: by buckets when
/// the prices are dense (the usual case: one tick grid, levels a few ticks apart; a venue
/// bitmask per tick for up to [`MASK_VENUES`] venues, a counting sort beyond), by a k-way
/// merge otherwise. All give the same side.
fn merge_side(levels: &[&[u64]], side: BookSide) -> SideLevels {
    let count: usize = levels.iter().map(|l| l.len()).sum();
    let ends = levels.iter().flat_map(|l| l.first().into_iter().chain(l.last())).copied();
    let (lo, hi) = ends.fold((u64::MAX, 0), |(lo, hi), p| (lo.min(p), hi.max(p)));
    let dense = count > 0 && hi - lo < DENSE_SPAN.saturating_mul(count as u64);
    if dense && levels.len() <= MASK_VENUES {
        mask_merge(levels, side, lo, hi, count)
    } else if dense {
        bucket_merge(levels, side, lo, hi, count)
    } else {
        kway_merge(levels, side, count)
    }
}

/// Bucket merge when `hi - lo < DENSE_SPAN · count`: one bucket per tick.
pub(crate) const DENSE_SPAN: u64 = 8;

/// Most venues [`mask_merge`] handles: one bit of a `u64` each.
pub(crate) const MASK_VENUES: usize = 64;

/// Ticks [`mask_merge`] marks and then emits at a time.
const MASK_WINDOW: usize = 256;

/// Bucket 0 is the best price: the highest bid, the lowest ask. Callers keep the span below
/// `DENSE_SPAN · count`, so it fits in memory and the casts do not truncate.
#[allow(clippy::cast_possible_truncation)]
fn bucket_of(side: BookSide, lo: u64, hi: u64, price: u64) -> usize {
    match side {
        BookSide::Bids => (hi - price) as usize,
        BookSide::Asks => (price - lo) as usize,
    }
}

fn price_of(side: BookSide, lo: u64, hi: u64, bucket: usize) -> u64 {
    match side {
        BookSide::Bids => hi - bucket as u64,
        BookSide::Asks => lo + bucket as u64,
    }
}

/// The dense merge for at most [`MASK_VENUES`] venues, a window of [`MASK_WINDOW`] ticks at a
/// time: mark, per tick, which venues quote it (one bit per venue rank), then walk the
/// window's ticks best first and, within a tick, the set bits lowest first (venue order),
/// taking each venue's next level (a venue's levels come in tick order, so its next untaken
/// level is the one at this tick).
pub(crate) fn mask_merge(
    levels: &[&[u64]],
    side: BookSide,
    lo: u64,
    hi: u64,
    count: usize,
) -> SideLevels {
    debug_assert!(levels.len() <= MASK_VENUES);
    let span = bucket_of(BookSide::Asks, lo, hi, hi) + 1;
    let mut out = SideLevels::with_capacity(count.min(span), count);
    let mut masks = [0u64; MASK_WINDOW];
    let mut marked = [0usize; MASK_VENUES];
    let mut taken = [0usize; MASK_VENUES];
    let mut start = 0;
    while start < span {
        let end = start + MASK_WINDOW.min(span - start);
        for (rank, l) in levels.iter().enumerate() {
            let bit = 1u64 << rank;
            let next = &mut marked[rank];
            while let Some(&price) = l.get(*next) {
                let b = bucket_of(side, lo, hi, price);
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
            out.open(price_of(side, lo, hi, start + offset));
            while rest != 0 {
                let rank = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                out.parts.push(Part::new(rank, taken[rank]));
                taken[rank] += 1;
            }
        }
        start = end;
    }
    out.close();
    out
}

/// A counting sort on the price: count the parts per tick, turn counts into offsets, then
/// scatter the parts venue by venue (so a price's parts come out in venue order). Linear in
/// levels plus ticks, no comparison sort.
pub(crate) fn bucket_merge(
    levels: &[&[u64]],
    side: BookSide,
    lo: u64,
    hi: u64,
    count: usize,
) -> SideLevels {
    let mut next = vec![0usize; bucket_of(BookSide::Asks, lo, hi, hi) + 1];
    for l in levels {
        for &price in *l {
            next[bucket_of(side, lo, hi, price)] += 1;
        }
    }
    let mut out = SideLevels::with_capacity(count, count);
    let mut offset = 0;
    for (b, slot) in next.iter_mut().enumerate() {
        let n = *slot;
        if n > 0 {
            out.prices.push(price_of(side, lo, hi, b));
            out.starts.push(offset32(offset));
        }
        *slot = offset;
        offset += n;
    }
    out.starts.push(offset32(offset));
    out.parts.resize(count, Part::default());
    for (rank, l) in levels.iter().enumerate() {
        for (level, &price) in l.iter().enumerate() {
            let slot = &mut next[bucket_of(side, lo, hi, price)];
            out.parts[*slot] = Part::new(rank, level);
            *slot += 1;
        }
    }
    out
}

/// A k-way merge: each step scans the venues' next prices for the best one, then takes that
/// price from every venue quoting it, in venue order. `O(levels out · venues + levels in)`.
pub(crate) fn kway_merge(levels: &[&[u64]], side: BookSide, count: usize) -> SideLevels {
    const DONE: u64 = u64::MAX;
    // Smaller keys are better. Bids: key = MAX - price (prices are >= 1, so keys stay below
    // DONE).
    let key = |price: u64| match side {
        BookSide::Bids => u64::MAX - price,
        BookSide::Asks => price,
    };
    let mut cursor = vec![0usize; levels.len()];
    let mut heads: Vec<u64> = levels.iter().map(|l| l.first().map_or(DONE, |&p| key(p))).collect();
    let mut out = SideLevels::with_capacity(count, count);
    loop {
        let best = heads.iter().copied().min().unwrap_or(DONE);
        if best == DONE {
            break;
        }
        let mut opened = false;
        for (rank, head) in heads.iter_mut().enumerate() {
            if *head == best {
                let level = cursor[rank];
                if !opened {
                    out.open(levels[rank][level]);
                    opened = true;
                }
                out.parts.push(Part::new(rank, level));
                cursor[rank] += 1;
                *head = levels[rank].get(cursor[rank]).map_or(DONE, |&p| key(p));
            }
        }
    }
    out.close();
    out
}
