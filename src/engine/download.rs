//! Download of a whole object or of byte ranges, in order, to a sink.
//!
//! Ranges of at most `restore_multipart_chunksize` bytes are fetched with up
//! to `restore_max_concurrent_requests` requests in flight and emitted
//! strictly in order; memory is about `(concurrency + 2) x chunk size`. Each
//! range is complete and checked (length, and the object's size must not
//! change under us) before any of its bytes is handed to the sink, and the
//! first failure stops the output. This matters because gpbackup often
//! cannot see our exit status (`restore_data | gzip -d` masks it): a short
//! stream is detectable, a wrong one is not.
//!
//! The first request is a ranged GET for the first chunk; it also tells the
//! object's size, so a whole-object restore needs no HEAD, and a missing
//! object fails before a single byte is written.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

use tokio::task::JoinHandle;

use super::sink::Sink;
use crate::config::Transfer;
use crate::error::{Error, Result};
use crate::store::{Fetched, Store};

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Whole,
    /// Byte ranges, emitted back to back in this order.
    Ranges(Vec<Range<u64>>),
}

/// Downloads `selection` of `key` into `sink`; returns the bytes written.
pub async fn download(
    store: Arc<dyn Store>,
    key: &str,
    selection: Selection,
    sink: &mut Sink,
    transfer: Transfer,
) -> Result<u64> {
    let chunk = transfer.part_size;
    let (chunks, expected_total) = match selection {
        Selection::Whole => {
            let first = fetch(&*store, key, 0..chunk, None, true).await?;
            let total = first.total_size;
            sink.write(first.data).await?;
            (
                split(std::slice::from_ref(&(chunk.min(total)..total)), chunk),
                Some(total),
            )
        }
        Selection::Ranges(ranges) => (split(&coalesce(&ranges), chunk), None),
    };

    let mut written = sink.written();
    let mut in_flight: VecDeque<JoinHandle<Result<Fetched>>> = VecDeque::new();
    let mut pending = chunks.into_iter();
    let mut total = expected_total;
    loop {
        while in_flight.len() < transfer.concurrency.max(1) {
            let Some(range) = pending.next() else { break };
            let (store, key) = (store.clone(), key.to_string());
            in_flight.push_back(tokio::spawn(async move {
                fetch(&*store, &key, range, total, false).await
            }));
        }
        let Some(next) = in_flight.pop_front() else {
            break;
        };
        let fetched = next
            .await
            .map_err(|e| Error::Storage(format!("download task failed: {e}")))??;
        // Later ranges are checked against the size the first one reported.
        total.get_or_insert(fetched.total_size);
        written += fetched.data.len() as u64;
        sink.write(fetched.data).await?;
    }
    Ok(written)
}

/// Fetches `range` and checks that exactly the expected bytes came back.
/// Only the probe for the first chunk of a whole object may end early (at
/// the object's end); every other range must be there in full.
async fn fetch(
    store: &dyn Store,
    key: &str,
    range: Range<u64>,
    total: Option<u64>,
    may_end_early: bool,
) -> Result<Fetched> {
    let fetched = store.get_range(key, range.clone()).await?;
    if let Some(expected) = total
        && fetched.total_size != expected
    {
        return Err(Error::Integrity(format!(
            "{} changed size during the restore ({expected} then {} bytes)",
            store.url(key),
            fetched.total_size
        )));
    }
    if range.end > fetched.total_size && !may_end_early {
        return Err(Error::Integrity(format!(
            "{} has {} bytes; bytes {}..{} were asked for",
            store.url(key),
            fetched.total_size,
            range.start,
            range.end
        )));
    }
    let want = range.end.min(fetched.total_size) - range.start;
    if fetched.data.len() as u64 != want {
        return Err(Error::Integrity(format!(
            "short read from {}: bytes {}..{} returned {} of {want} bytes",
            store.url(key),
            range.start,
            range.end,
            fetched.data.len()
        )));
    }
    Ok(fetched)
}

/// Joins ranges that touch (`a..b` then `b..c`) and drops empty ones, keeping
/// the order: the output is the concatenation in the order given.
pub fn coalesce(ranges: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut out: Vec<Range<u64>> = Vec::new();
    for r in ranges.iter().filter(|r| !r.is_empty()) {
        match out.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => out.push(r.clone()),
        }
    }
    out
}

/// Cuts ranges into pieces of at most `chunk` bytes.
pub fn split(ranges: &[Range<u64>], chunk: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    for r in ranges {
        let mut start = r.start;
        while start < r.end {
            let end = (start + chunk).min(r.end);
            out.push(start..end);
            start = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_adjacent_ranges_only() {
        assert_eq!(
            coalesce(&[0..10, 10..20, 25..30, 30..31]),
            vec![0..20, 25..31]
        );
        assert_eq!(coalesce(&[0..0, 5..10, 0..0, 10..12]), vec![5..12]);
        // Out-of-order ranges keep their order (the output is a concatenation).
        assert_eq!(coalesce(&[20..30, 0..10, 10..20]), vec![20..30, 0..20]);
        assert_eq!(coalesce(&[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn splits_into_chunks() {
        assert_eq!(
            split(std::slice::from_ref(&(0..25)), 10),
            vec![0..10, 10..20, 20..25]
        );
        assert_eq!(split(&[3..10, 10..10, 12..13], 10), vec![3..10, 12..13]);
        assert_eq!(
            split(std::slice::from_ref(&(0..20)), 10),
            vec![0..10, 10..20]
        );
    }
}
