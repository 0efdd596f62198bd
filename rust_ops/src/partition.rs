//! Kafka's default partitioner: which partition a record with a given key goes to.
//!
//! The Java client, aiokafka and this platform all place a keyed record on
//! `(murmur2(key) & 0x7fffffff) % partitions`, with Kafka's own variant of `MurmurHash2`
//! (seed `0x9747b28c`). The runtime places every record itself (fused stages hand records to
//! the next stage in memory on the partition their topic copy gets), and aiokafka's
//! pure-Python hash cost ~12 µs a key, about a tenth of an intent's delivery cost.

/// Kafka's `murmur2` of `data` (a signed 32-bit result, as Java computes it).
#[must_use]
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h: u32 = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    i32::from_ne_bytes(h.to_ne_bytes())
}

/// The partition of a record keyed `key` on a topic of `partitions` partitions.
///
/// # Panics
///
/// Never: `partitions` of 0 is treated as 1.
#[must_use]
pub fn partition_for(key: &[u8], partitions: u32) -> u32 {
    let positive = u32::from_ne_bytes(murmur2(key).to_ne_bytes()) & 0x7fff_ffff;
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_java_clients_known_values() {
        // From Kafka's own UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58_897_971);
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn partitions_are_in_range() {
        for n in 1..50_u32 {
            assert!(partition_for(b"intent-01ABC", n) < n);
        }
        assert_eq!(partition_for(b"x", 0), 0);
    }
}
