//! Unit and property tests of the order-book operators.

use proptest::prelude::*;
use ruint::aliases::U256;

use super::*;

fn book(venue: &str, bids: &[(u64, u128)], asks: &[(u64, u128)], fee: u128) -> Book {
    Book::new(venue, bids.to_vec(), asks.to_vec(), fee).expect("valid book")
}

fn u(v: u128) -> U256 {
    U256::from(v)
}

#[test]
fn rejects_malformed_books_with_named_errors() {
    let err = |bids: &[(u64, u128)], asks: &[(u64, u128)], fee: u128| {
        Book::new("v", bids.to_vec(), asks.to_vec(), fee).unwrap_err().code()
    };
    assert_eq!(err(&[(0, 1)], &[], 0), "zero_price");
    assert_eq!(err(&[], &[(5, 0)], 0), "zero_size");
    assert_eq!(err(&[(5, 1), (5, 2)], &[], 0), "duplicate_price");
    assert_eq!(err(&[(5, 1), (6, 2)], &[], 0), "unsorted_levels");
    assert_eq!(err(&[], &[(6, 1), (5, 2)], 0), "unsorted_levels");
    assert_eq!(err(&[], &[], 1_000_000), "fee_out_of_range");
    assert_eq!(err(&[], &[], u128::MAX), "fee_out_of_range");
    assert_eq!(err(&[(5, 1)], &[(5, 1)], 0), "crossed_book");
    assert_eq!(err(&[(6, 1)], &[(5, 1)], 0), "crossed_book");
    // Bids are checked before asks, levels before the fee, the fee before the cross.
    assert_eq!(err(&[(5, 1)], &[(0, 1)], 1_000_000), "zero_price");
    assert_eq!(err(&[(5, 1)], &[(4, 1)], 1_000_000), "fee_out_of_range");
    let e = Book::new("x", vec![(10, 1), (11, 1)], vec![], 0).unwrap_err();
    assert_eq!(e.venue(), "x");
    assert_eq!(
        e.to_string(),
        "venue 'x': bids[1] price 11 follows 10; bids must be best first (strictly decreasing \
         prices)"
    );
}

#[test]
fn aggregation_merges_levels_and_remembers_venues() {
    let a = book("a", &[(100, 5), (99, 1)], &[(101, 2), (103, 4)], 3000);
    let b = book("b", &[(100, 7)], &[(102, 1), (103, 6)], 100);
    let c = aggregate_books(&[a, b]).unwrap();
    assert_eq!(c.venues(), ["b", "a"]); // cheaper fee first
    assert_eq!(c.fees(), [100, 3000]);
    let asks = c.asks();
    assert_eq!(asks.len(), 3);
    assert_eq!((asks.price(2), asks.total(2)), (103, 10));
    assert_eq!(asks.parts(2).collect::<Vec<_>>(), [(0, 6), (1, 4)]);
    assert_eq!(c.bids().price(0), 100);
    assert_eq!(c.bids().parts(0).collect::<Vec<_>>(), [(0, 7), (1, 5)]);
}

#[test]
fn aggregation_errors() {
    let a = book("a", &[], &[(1, 1)], 0);
    let e = aggregate_books(&[a.clone(), a.clone()]).unwrap_err();
    assert_eq!((e.code(), e.venue()), ("duplicate_venue", "a"));
    let big = book("b", &[], &[(1, u128::MAX)], 5);
    let e = aggregate_books(&[a, big]).unwrap_err();
    assert_eq!((e.code(), e.venue()), ("size_overflow", "b"));
    // Sizes whose maxima overflow when added, at prices that never meet: no level overflows.
    let c = book("c", &[], &[(2, u128::MAX)], 0);
    let d = book("d", &[], &[(1, 1), (3, u128::MAX)], 0);
    let agg = aggregate_books(&[c, d]).unwrap();
    let totals: Vec<u128> = (0..3).map(|i| agg.asks().total(i)).collect();
    assert_eq!(totals, [1, u128::MAX, u128::MAX]);
    let e = book("e", &[], &[(1, u128::MAX)], 0);
    let err = aggregate_books(&[e, book("d", &[], &[(1, 1)], 0)]).unwrap_err();
    assert_eq!((err.code(), err.venue()), ("size_overflow", "e"));
    let empty: [Book; 0] = [];
    assert!(aggregate_books(&empty).unwrap().asks().is_empty());
}

#[test]
fn sweep_fills_best_first_and_charges_fees() {
    let a = book("a", &[(99, 10)], &[(100, 3), (102, 10)], 3000);
    let b = book("b", &[(98, 10)], &[(100, 2), (101, 1)], 0);
    let c = aggregate_books(&[a, b]).unwrap();
    let s = sweep(&c, Side::Buy, 8).unwrap();
    // b (fee 0) first at 100, then a at 100, then b at 101, then a at 102.
    let fills: Vec<_> = s.fills.iter().map(|f| (f.price, f.qty, f.venue)).collect();
    assert_eq!(fills, [(100, 2, 0), (100, 3, 1), (101, 1, 0), (102, 2, 1)]);
    assert_eq!(s.filled_qty, 8);
    assert_eq!(s.notional, u(200 + 300 + 101 + 204));
    // a: notional 504 at 0.30 %: 1.512 -> 2 (rounded up); b: no fee.
    assert_eq!(s.venue_fills[1].fee, u(2));
    assert_eq!(s.fees, u(2));
    assert_eq!(s.avg_price, Some(101)); // 805 / 8 = 100.625, up for a buy
    assert_eq!(s.worst_price, Some(102));
    let s = sweep(&c, Side::Sell, 8).unwrap();
    // all 8 from a's bid at 99: b's 98 is never reached
    assert_eq!((s.avg_price, s.worst_price, s.notional), (Some(99), Some(99), u(99 * 8)));
    assert_eq!(s.fees, u(3)); // 792 · 0.003 = 2.376 -> 3
}

#[test]
fn sweep_edge_cases() {
    let c = aggregate_books(&[book("a", &[], &[(7, 3)], 0)]).unwrap();
    let s = sweep(&c, Side::Buy, 10).unwrap();
    assert_eq!((s.filled_qty, s.avg_price, s.worst_price), (3, Some(7), Some(7)));
    let s = sweep(&c, Side::Sell, 10).unwrap();
    assert_eq!((s.filled_qty, s.avg_price, s.worst_price), (0, None, None));
    assert!(s.fills.is_empty() && s.venue_fills.is_empty());
    assert_eq!(sweep(&c, Side::Buy, 0).unwrap_err().code(), "zero_quantity");
    assert_eq!(Side::parse("BUY").unwrap_err().code(), "unknown_side");
    assert_eq!(Side::parse("sell"), Ok(Side::Sell));
}

#[test]
fn avg_price_rounds_against_the_taker() {
    let c = aggregate_books(&[book("a", &[(10, 1), (9, 2)], &[(11, 1), (12, 2)], 0)]).unwrap();
    // buy 3: (11 + 24) / 3 = 11.67 -> 12; sell 3: (10 + 18) / 3 = 9.33 -> 9
    assert_eq!(sweep(&c, Side::Buy, 3).unwrap().avg_price, Some(12));
    assert_eq!(sweep(&c, Side::Sell, 3).unwrap().avg_price, Some(9));
}

fn side_levels(max_levels: usize, below: bool) -> impl Strategy<Value = Vec<(u64, u128)>> {
    let offsets = prop::collection::btree_set(0u64..60, 0..=max_levels);
    let sizes = prop::collection::vec(1u128..1_000, max_levels + 1);
    (offsets, sizes).prop_map(move |(offs, sizes)| {
        offs.into_iter()
            .zip(sizes)
            .map(|(o, s)| if below { (99 - o, s) } else { (100 + o, s) })
            .collect::<Vec<_>>()
    })
}

fn books() -> impl Strategy<Value = Vec<Book>> {
    let one = (
        side_levels(8, true),
        side_levels(8, false),
        prop::sample::select(vec![0u128, 100, 3000, 999_999]),
    );
    prop::collection::vec(one, 0..5).prop_map(|venues| {
        venues
            .into_iter()
            .enumerate()
            .map(|(i, (bids, asks, fee))| {
                Book::new(format!("v{i}"), bids, asks, fee).expect("valid")
            })
            .collect()
    })
}

fn depth(c: &ConsolidatedBook, side: Side) -> u128 {
    let s = c.side(side.book_side());
    (0..s.len()).map(|i| s.total(i)).sum()
}

proptest! {
    #[test]
    fn aggregation_preserves_size_per_price_and_venue(books in books()) {
        let c = aggregate_books(&books).unwrap();
        for side in [BookSide::Bids, BookSide::Asks] {
            let levels = c.side(side);
            let mut seen = Vec::new();
            for i in 0..levels.len() {
                if i > 0 {
                    prop_assert!(side.is_worse(levels.price(i), levels.price(i - 1)));
                }
                let parts: Vec<_> = levels.parts(i).collect();
                prop_assert_eq!(parts.iter().map(|p| p.1).sum::<u128>(), levels.total(i));
                prop_assert!(parts.windows(2).all(|w| w[0].0 < w[1].0));
                seen.extend(parts.iter().map(|&(v, s)| (c.venues()[v].clone(), levels.price(i), s)));
            }
            let mut given: Vec<_> = books.iter().flat_map(|b| {
                b.levels(side).map(|(p, s)| (b.venue().to_owned(), p, s))
            }).collect();
            seen.sort();
            given.sort();
            prop_assert_eq!(seen, given);
        }
    }

    #[test]
    fn sweep_never_fills_more_than_available_and_goes_best_first(
        books in books(), buy in any::<bool>(), qty in 1u128..20_000,
    ) {
        let side = if buy { Side::Buy } else { Side::Sell };
        let c = aggregate_books(&books).unwrap();
        let s = sweep(&c, side, qty).unwrap();
        prop_assert_eq!(s.filled_qty, qty.min(depth(&c, side)));
        prop_assert_eq!(s.fills.iter().map(|f| f.qty).sum::<u128>(), s.filled_qty);
        prop_assert_eq!(s.venue_fills.iter().map(|f| f.qty).sum::<u128>(), s.filled_qty);
        for w in s.fills.windows(2) {
            prop_assert!(w[0].price == w[1].price || side.book_side().is_worse(w[1].price, w[0].price));
        }
        if let (Some(avg), Some(first)) = (s.avg_price, s.fills.first()) {
            let worst = s.worst_price.unwrap();
            prop_assert_eq!(worst, s.fills.last().unwrap().price);
            prop_assert!(avg >= first.price.min(worst) && avg <= first.price.max(worst));
        }
        let left = c.after(&s);
        prop_assert_eq!(depth(&left, side), depth(&c, side) - s.filled_qty);
    }

    #[test]
    fn sweeping_in_two_parts_equals_sweeping_once(
        books in books(), buy in any::<bool>(), q1 in 1u128..5_000, q2 in 1u128..5_000,
    ) {
        let side = if buy { Side::Buy } else { Side::Sell };
        let c = aggregate_books(&books).unwrap();
        let once = sweep(&c, side, q1 + q2).unwrap();
        let first = sweep(&c, side, q1).unwrap();
        let second = sweep(&c.after(&first), side, q2).unwrap();
        prop_assert_eq!(first.filled_qty + second.filled_qty, once.filled_qty);
        prop_assert_eq!(first.notional + second.notional, once.notional);
        // The fills are the same once a level split across the two parts is joined again.
        let mut joined: Vec<Fill> = Vec::new();
        for f in first.fills.iter().chain(&second.fills) {
            match joined.last_mut() {
                Some(l) if l.price == f.price && l.venue == f.venue => l.qty += f.qty,
                _ => joined.push(*f),
            }
        }
        prop_assert_eq!(joined, once.fills);
        // Each venue's fee is rounded up once per sweep, so two sweeps pay at most one unit
        // more per venue.
        let fees = first.fees + second.fees;
        prop_assert!(fees >= once.fees && fees <= once.fees + U256::from(c.venues().len()));
    }
}

proptest! {
    #[test]
    fn bucket_and_kway_merges_agree(books in books(), spread in 1u64..1_000_000) {
        // Spread the prices apart so the dense bucket path is not the one aggregate takes.
        let spread_side =
            |l: &mut dyn Iterator<Item = (u64, u128)>| l.map(|(p, s)| (p * spread, s)).collect();
        let books: Vec<Book> = books
            .iter()
            .map(|b| {
                let (bids, asks) = (spread_side(&mut b.bids()), spread_side(&mut b.asks()));
                Book::new(b.venue(), bids, asks, u128::from(b.fee())).unwrap()
            })
            .collect();
        let c = aggregate_books(&books).unwrap();
        let mut ordered: Vec<&Book> = books.iter().collect();
        ordered.sort_by(|a, b| (a.fee(), a.venue()).cmp(&(b.fee(), b.venue())));
        for side in [BookSide::Bids, BookSide::Asks] {
            let levels: Vec<&[u64]> = ordered.iter().map(|b| b.prices(side)).collect();
            let count = levels.iter().map(|l| l.len()).sum();
            let kway = consolidated::kway_merge(&levels, side, count);
            prop_assert_eq!(&kway, c.side_levels(side));
            let ends = levels.iter().flat_map(|l| l.first().into_iter().chain(l.last()));
            if let (Some(&lo), Some(&hi)) = (ends.clone().min(), ends.max()) {
                if hi - lo < 1 << 22 {
                    let bucket = consolidated::bucket_merge(&levels, side, lo, hi, count);
                    prop_assert_eq!(&bucket, &kway);
                    if levels.len() <= consolidated::MASK_VENUES {
                        let mask = consolidated::mask_merge(&levels, side, lo, hi, count);
                        prop_assert_eq!(mask, kway);
                    }
                }
            }
        }
    }
}

#[test]
fn water_fill_takes_book_levels_and_pool_segments_by_marginal_price() {
    let a = book("a", &[], &[(100, 10), (103, 10)], 0);
    let b = book("b", &[], &[(101, 5)], 0);
    let merged = aggregate_books(&[a, b]).unwrap();
    // Pool: 10 units for 1000 (100 a unit: a tie with a, which goes first), the next 10 for
    // 1020 (102), then 10 for 1100 (110).
    let curve = [(10u128, 1000u128), (20, 2020), (30, 3120)];
    let done = water_fill(&merged, Side::Buy, 32, &curve, 1, 1).unwrap();
    assert_eq!(done.pool_levels, vec![(100, 10), (102, 10), (110, 10)]);
    // 100: a 10 then the pool 10; 101: b 5; 102: the pool 7.
    assert_eq!(done.venue_fills, vec![(0, 10), (1, 5)]);
    assert_eq!((done.pool_qty, done.filled_qty), (17, 32));
    let all = water_fill(&merged, Side::Buy, 1000, &curve, 1, 1).unwrap();
    assert_eq!((all.filled_qty, all.pool_qty), (55, 30));
    assert_eq!(
        water_fill(&merged, Side::Buy, 0, &curve, 1, 1).unwrap_err().code(),
        "zero_quantity"
    );
    let err = water_fill(&merged, Side::Buy, 1, &curve, 1, 0).unwrap_err();
    assert_eq!(err.to_string(), "price_den must be an int in 1..=2**128-1, got 0");
}

#[test]
fn pool_levels_round_against_the_taker_and_stay_monotone() {
    // 3 units for 10: 3.33 a unit, a buy's 4 and a sell's 3; then a bend (1 for 2 units: a
    // buy's level stays at 4, a sell's ends at 0); a point not beyond the last is skipped;
    // then 19 for 2 units.
    let curve = [(3u128, 10u128), (5, 11), (5, 50), (7, 30)];
    assert_eq!(pool_levels(Side::Buy, &curve, 1, 1).unwrap(), vec![(4, 5), (10, 2)]);
    assert_eq!(pool_levels(Side::Sell, &curve, 1, 1).unwrap(), vec![(3, 3)]);
    // A sell's segment worth less than a price unit ends the levels; a huge price is held.
    assert_eq!(pool_levels(Side::Sell, &[(1, 5), (2, 5)], 1, 1).unwrap(), vec![(5, 1)]);
    let huge = pool_levels(Side::Buy, &[(1, u128::MAX)], u128::MAX, 1).unwrap();
    assert_eq!(huge, vec![(u64::MAX, 1)]);
}

proptest! {
    /// The split is a sweep of the book with the pool's levels as one more venue, last at a
    /// price: the same shares as merging and sweeping.
    #[test]
    fn water_fill_equals_a_sweep_with_the_pool_as_a_venue(
        asks in proptest::collection::btree_map(1u64..200, 1u128..50, 1..8),
        curve in proptest::collection::vec((1u128..20, 0u128..4000), 1..8),
        qty in 1u128..400,
        buy in any::<bool>(),
    ) {
        let levels: Vec<(u64, u128)> = asks.into_iter().collect();
        let side = if buy { Side::Buy } else { Side::Sell };
        let (bids, asks): (Vec<_>, Vec<_>) = if buy {
            (vec![], levels)
        } else {
            (levels.into_iter().rev().collect(), vec![])
        };
        let merged = aggregate_books(&[book("a", &bids, &asks, 0)]).unwrap();
        let mut x = 0;
        let points: Vec<(u128, u128)> =
            curve.iter().map(|&(dx, c)| { x += dx; (x, c) }).collect();
        let done = water_fill(&merged, side, qty, &points, 1, 1).unwrap();
        let (pb, pa) = if buy {
            (vec![], done.pool_levels.clone())
        } else {
            (done.pool_levels.clone(), vec![])
        };
        let with_pool = if done.pool_levels.is_empty() {
            aggregate_books(&[book("a", &bids, &asks, 0)]).unwrap()
        } else {
            aggregate_books(&[book("a", &bids, &asks, 0), book("~pool", &pb, &pa, 0)]).unwrap()
        };
        let swept = sweep(&with_pool, side, qty).unwrap();
        prop_assert_eq!(done.filled_qty, swept.filled_qty);
        let pool = swept.venue_fills.iter().filter(|f| with_pool.venues()[f.venue] == "~pool");
        prop_assert_eq!(done.pool_qty, pool.map(|f| f.qty).sum::<u128>());
    }
}
