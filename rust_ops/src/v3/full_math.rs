//! `FullMath` and `UnsafeMath` of Uniswap V3: `a·b/d` over 256-bit words with a 512-bit
//! intermediate, rounded down or up exactly as the contracts round.
//!
//! Where the contract `require`s (a quotient beyond 2^256, a zero divisor) these return
//! `None`; the callers turn that into a named error instead of a panic.

use ruint::aliases::{U256, U512};

/// `floor(a·b / d)`: `FullMath.mulDiv`. `None` if `d == 0` or the quotient exceeds 256 bits.
#[must_use]
#[inline]
pub fn mul_div(a: U256, b: U256, d: U256) -> Option<U256> {
    mul_div_rem(a, b, d).map(|(q, _)| q)
}

/// `ceil(a·b / d)`: `FullMath.mulDivRoundingUp`. `None` as [`mul_div`], or if the rounded
/// quotient is `2^256`.
#[must_use]
#[inline]
pub fn mul_div_rounding_up(a: U256, b: U256, d: U256) -> Option<U256> {
    let (q, r) = mul_div_rem(a, b, d)?;
    if r.is_zero() {
        Some(q)
    } else {
        q.checked_add(U256::from(1u8))
    }
}

/// `ceil(x / y)`: `UnsafeMath.divRoundingUp`. `None` if `y == 0` (the contract would return 0
/// there, but no caller reaches that: every divisor is a positive price or liquidity).
#[must_use]
#[inline]
pub fn div_rounding_up(x: U256, y: U256) -> Option<U256> {
    if y.is_zero() {
        return None;
    }
    let (q, r) = x.div_rem(y);
    // q < 2^256 - 1 whenever r > 0 (y > 1), so the increment cannot overflow.
    Some(if r.is_zero() { q } else { q + U256::from(1u8) })
}

/// `(floor(a·b / d), a·b mod d)`, the 512-bit product only when it does not fit in 256 bits.
fn mul_div_rem(a: U256, b: U256, d: U256) -> Option<(U256, U256)> {
    if d.is_zero() {
        return None;
    }
    match a.checked_mul(b) {
        Some(p) => Some(p.div_rem(d)),
        None => {
            let wide: U512 = a.widening_mul(b);
            let (q, r) = wide.div_rem(U512::from(d));
            Some((
                U256::checked_from_limbs_slice(q.as_limbs())?,
                U256::from_limbs_slice(&r.as_limbs()[..4]),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(x: u128) -> U256 {
        U256::from(x)
    }

    #[test]
    fn contract_vectors() {
        // From v3-core test/FullMath.spec.ts.
        let q128 = U256::from(1u8) << 128;
        assert_eq!(mul_div(q128, u(500), U256::ZERO), None);
        assert_eq!(mul_div(q128, q128, U256::from(1u8)), None);
        assert_eq!(mul_div(U256::MAX, U256::MAX, U256::MAX), Some(U256::MAX));
        assert_eq!(mul_div(q128, q128 * u(50) / u(100), q128 * u(150) / u(100)), Some(q128 / u(3)));
        assert_eq!(
            mul_div(q128, q128 * u(35), q128 * u(8)),
            Some(U256::from_str_radix("4375", 10).unwrap() * q128 / u(1000))
        );
        assert_eq!(mul_div(q128, q128 * u(1000), q128 * u(3000)), Some(q128 / u(3)));
        assert_eq!(
            mul_div_rounding_up(q128, q128 * u(1000), q128 * u(3000)),
            Some(q128 / u(3) + u(1))
        );
        // Rounding up overflows when the floor is already 2^256 - 1.
        let a = U256::from_str_radix("535006138814359", 10).unwrap();
        let b = U256::from_str_radix(
            "432862656469423142931042426214547535783388063929571229938474969",
            10,
        )
        .unwrap();
        assert_eq!(mul_div_rounding_up(a, b, u(2)), None);
        assert_eq!(mul_div_rounding_up(U256::MAX, U256::MAX, U256::MAX - u(1)), None);
        assert_eq!(div_rounding_up(u(7), u(2)), Some(u(4)));
        assert_eq!(div_rounding_up(u(8), u(2)), Some(u(4)));
        assert_eq!(div_rounding_up(u(8), U256::ZERO), None);
    }

    fn word() -> impl Strategy<Value = U256> {
        (any::<[u64; 4]>(), 0..256usize).prop_map(|(l, s)| U256::from_limbs(l) >> s)
    }

    proptest! {
        #[test]
        fn floor_and_ceil_bracket_the_product(a in word(), b in word(), d in word()) {
            prop_assume!(!d.is_zero());
            let wide: U512 = a.widening_mul(b);
            let (q, r) = wide.div_rem(U512::from(d));
            match mul_div(a, b, d) {
                Some(x) => prop_assert_eq!(U512::from(x), q),
                None => prop_assert!(q > U512::from(U256::MAX)),
            }
            if let Some(up) = mul_div_rounding_up(a, b, d) {
                let expect = if r.is_zero() { q } else { q + U512::from(1u8) };
                prop_assert_eq!(U512::from(up), expect);
            }
        }
    }
}
