//! Kafka's `FetchResponse` v11 parsed in one pass, leaving out the partitions a consumer
//! has nothing to do with (no records, no error, no aborted transactions).
//!
//! A worker's consumer holds every partition of its stage groups' topics (28 on two workers)
//! and, while records flow, fetches a few hundred times a second, each response listing every
//! partition, most of them empty. aiokafka parses it field by field in Python (~150 us for 28
//! partitions), then visits every partition again. Here the parse is one loop over the bytes
//! and the empty partitions are never built. The layout (all integers big-endian):
//!
//! ```text
//! throttle_time_ms i32, error_code i16, session_id i32,
//! [topic: string (i16 length), [partition i32, error_code i16, high_watermark i64,
//!     last_stable_offset i64, log_start_offset i64,
//!     aborted_transactions: nullable [producer_id i64, first_offset i64],
//!     preferred_read_replica i32, records: nullable bytes (i32 length)]]
//! ```

/// One partition of a response, as aiokafka's `FetchResponse_v11` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// The partition.
    pub partition: i32,
    /// Kafka's error code (0: none).
    pub error_code: i16,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// The last stable offset.
    pub last_stable_offset: i64,
    /// The log start offset.
    pub log_start_offset: i64,
    /// `(producer_id, first_offset)` of each aborted transaction; `None` when null.
    pub aborted: Option<Vec<(i64, i64)>>,
    /// The preferred read replica (-1: none).
    pub preferred_read_replica: i32,
    /// The record batches' bytes, as sent; `None` when null.
    pub records: Option<Vec<u8>>,
}

impl FetchedPartition {
    /// Whether a consumer has anything to do with it: records, an error, or aborted
    /// transactions to skip.
    #[must_use]
    pub fn matters(&self) -> bool {
        self.error_code != 0
            || self.records.as_ref().is_some_and(|r| !r.is_empty())
            || self.aborted.as_ref().is_some_and(|a| !a.is_empty())
    }
}

/// A parsed response: its header fields and, per topic, the partitions kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The response's own error code.
    pub error_code: i16,
    /// The fetch session (0: none).
    pub session_id: i32,
    /// `(topic, partitions)`, in the response's order; a topic whose partitions were all
    /// left out is left out too.
    pub topics: Vec<(String, Vec<FetchedPartition>)>,
}

/// Why a buffer is not a `FetchResponse` v11.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchParseError {
    /// The buffer ends inside a field.
    #[error("fetch response truncated at byte {0}")]
    Truncated(usize),
    /// A length is negative where only null (-1) or a size is allowed.
    #[error("fetch response has a bad length {length} at byte {at}")]
    BadLength {
        /// The length read.
        length: i64,
        /// Where it was read.
        at: usize,
    },
    /// A topic name is not UTF-8.
    #[error("fetch response has a topic name that is not UTF-8 at byte {0}")]
    BadTopic(usize),
    /// Bytes are left after the last topic.
    #[error("fetch response has {0} bytes after its end")]
    Trailing(usize),
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FetchParseError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or(FetchParseError::Truncated(self.at))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FetchParseError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn i16(&mut self) -> Result<i16, FetchParseError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, FetchParseError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, FetchParseError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// An array's length: `None` for null (-1).
    fn count(&mut self) -> Result<Option<usize>, FetchParseError> {
        let at = self.at;
        match self.i32()? {
            -1 => Ok(None),
            n => usize::try_from(n)
                .map(Some)
                .map_err(|_| FetchParseError::BadLength { length: n.into(), at }),
        }
    }
}

/// Parses a `FetchResponse` v11 body (after the response header). With `keep_empty`, every
/// partition is kept (what aiokafka's own parse returns); without, only those that
/// [`FetchedPartition::matters`].
///
/// # Errors
///
/// [`FetchParseError`] when the bytes are not a complete v11 response.
pub fn parse_fetch_v11(data: &[u8], keep_empty: bool) -> Result<FetchResponse, FetchParseError> {
    let mut r = Reader { data, at: 0 };
    let throttle_time_ms = r.i32()?;
    let error_code = r.i16()?;
    let session_id = r.i32()?;
    let mut topics = Vec::new();
    for _ in 0..r.count()?.unwrap_or(0) {
        let at = r.at;
        let length = r.i16()?;
        let name_length = usize::try_from(length)
            .map_err(|_| FetchParseError::BadLength { length: length.into(), at })?;
        let name = std::str::from_utf8(r.take(name_length)?)
            .map_err(|_| FetchParseError::BadTopic(at))?
            .to_owned();
        let mut partitions = Vec::new();
        for _ in 0..r.count()?.unwrap_or(0) {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let high_watermark = r.i64()?;
            let last_stable_offset = r.i64()?;
            let log_start_offset = r.i64()?;
            let aborted = match r.count()? {
                None => None,
                Some(n) => {
                    let mut pairs = Vec::with_capacity(n.min(1024));
                    for _ in 0..n {
                        pairs.push((r.i64()?, r.i64()?));
                    }
                    Some(pairs)
                }
            };
            let preferred_read_replica = r.i32()?;
            let records = match r.count()? {
                None => None,
                Some(n) => Some(r.take(n)?.to_vec()),
            };
            let fetched = FetchedPartition {
                partition,
                error_code,
                high_watermark,
                last_stable_offset,
                log_start_offset,
                aborted,
                preferred_read_replica,
                records,
            };
            if keep_empty || fetched.matters() {
                partitions.push(fetched);
            }
        }
        if keep_empty || !partitions.is_empty() {
            topics.push((name, partitions));
        }
    }
    if r.at != data.len() {
        return Err(FetchParseError::Trailing(data.len() - r.at));
    }
    Ok(FetchResponse { throttle_time_ms, error_code, session_id, topics })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(
        out: &mut Vec<u8>,
        p: i32,
        error: i16,
        records: Option<&[u8]>,
        aborted: Option<&[(i64, i64)]>,
    ) {
        out.extend(p.to_be_bytes());
        out.extend(error.to_be_bytes());
        out.extend(100_i64.to_be_bytes());
        out.extend(99_i64.to_be_bytes());
        out.extend(0_i64.to_be_bytes());
        match aborted {
            None => out.extend((-1_i32).to_be_bytes()),
            Some(pairs) => {
                out.extend(i32::try_from(pairs.len()).unwrap().to_be_bytes());
                for (a, b) in pairs {
                    out.extend(a.to_be_bytes());
                    out.extend(b.to_be_bytes());
                }
            }
        }
        out.extend((-1_i32).to_be_bytes());
        match records {
            None => out.extend((-1_i32).to_be_bytes()),
            Some(bytes) => {
                out.extend(i32::try_from(bytes.len()).unwrap().to_be_bytes());
                out.extend(bytes);
            }
        }
    }

    fn response() -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(0_i32.to_be_bytes());
        out.extend(0_i16.to_be_bytes());
        out.extend(7_i32.to_be_bytes());
        out.extend(2_i32.to_be_bytes());
        for (name, parts) in [("a", 0..3), ("bb", 0..2)] {
            out.extend(i16::try_from(name.len()).unwrap().to_be_bytes());
            out.extend(name.as_bytes());
            out.extend(i32::try_from(parts.len()).unwrap().to_be_bytes());
            for p in parts {
                match (name, p) {
                    ("a", 1) => partition(&mut out, p, 0, Some(b"xyz"), Some(&[])),
                    ("a", 2) => partition(&mut out, p, 1, None, None),
                    _ => partition(&mut out, p, 0, Some(b""), Some(&[])),
                }
            }
        }
        out
    }

    #[test]
    fn keeps_every_partition_when_asked() {
        let parsed = parse_fetch_v11(&response(), true).unwrap();
        assert_eq!(parsed.session_id, 7);
        assert_eq!(parsed.topics.len(), 2);
        assert_eq!(parsed.topics[0].1.len(), 3);
        assert_eq!(parsed.topics[1].1.len(), 2);
        assert_eq!(parsed.topics[0].1[1].records.as_deref(), Some(&b"xyz"[..]));
    }

    #[test]
    fn leaves_out_partitions_with_nothing_to_do() {
        let parsed = parse_fetch_v11(&response(), false).unwrap();
        assert_eq!(parsed.topics.len(), 1, "topic bb had only empty partitions");
        let kept: Vec<i32> = parsed.topics[0].1.iter().map(|p| p.partition).collect();
        assert_eq!(kept, vec![1, 2], "records in 1, an error in 2");
    }

    #[test]
    fn refuses_truncated_and_trailing_bytes() {
        let whole = response();
        for cut in 0..whole.len() {
            assert!(parse_fetch_v11(&whole[..cut], true).is_err(), "cut at {cut}");
        }
        let mut longer = whole;
        longer.push(0);
        assert_eq!(parse_fetch_v11(&longer, true), Err(FetchParseError::Trailing(1)));
    }
}
