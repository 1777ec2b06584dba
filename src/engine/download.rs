//! Download of a whole object or of byte ranges, in order, to a sink.
//!
//! The object is cut into units fetched with up to
//! `restore_max_concurrent_requests` requests in flight and emitted strictly
//! in order. Each unit is complete and checked (its length; its CRC when the
//! object carries an integrity record, see [`super::integrity`]) before any
//! of its bytes is handed to the sink, and the first failure stops the
//! output. This matters because gpbackup often cannot see our exit status
//! (`restore_data | gzip -d` masks it): a short stream is detectable, a
//! wrong one is not.
//!
//! Units are the stored parts for objects this plugin wrote (a part is the
//! unit its CRC covers) and chunks of `restore_multipart_chunksize` bytes
//! otherwise. Units in flight are bounded by count and by a byte budget of
//! `concurrency x chunk size` (at least one unit), so memory is about
//! `(concurrency + 2) x max(chunk, part)`.
//!
//! The first request is a ranged GET of the first chunk: it also returns the
//! object's size and metadata, so a whole-object restore needs no HEAD, and a
//! missing object fails before a single byte is written.

use std::collections::VecDeque;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::task::JoinHandle;

use super::integrity::{self, META_KEY, Manifest, Record};
use super::sink::Sink;
use super::transform::Transform;
use crate::config::Transfer;
use crate::error::{Error, Kind, Result};
use crate::layout;
use crate::store::glacier::treehash::{self, Hash, TreeHasher};
use crate::store::{Fetched, Store, TREE_HASH_META};

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Whole,
    /// Byte ranges, emitted back to back in this order.
    Ranges(Vec<Range<u64>>),
}

/// A piece of the output: a byte range of the object and, when stored, the
/// CRC it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Unit {
    range: Range<u64>,
    crc: Option<u64>,
}

/// Where the restored bytes go: a writer and its name for messages.
pub struct Output {
    pub writer: Box<dyn Write + Send>,
    pub name: String,
}

/// Downloads `selection` of `key` into `out` through `transform`; returns
/// the stored bytes fetched and written. On failure the verified bytes
/// already queued are still written out (a clean, short stream), then the
/// error is returned.
pub async fn download(
    store: Arc<dyn Store>,
    key: &str,
    selection: Selection,
    out: Output,
    transfer: Transfer,
    transform: &dyn Transform,
) -> Result<u64> {
    let chunk = transfer.part_size;
    let (ranges, writer) = match &selection {
        Selection::Whole => (None, transform.decode(out.writer)?),
        Selection::Ranges(ranges) => {
            let (stored, writer) = transform.decode_ranges(ranges, out.writer)?;
            (Some(stored), writer)
        }
    };
    let mut sink = Sink::new(writer, &out.name);
    let result = async {
        let plan = match ranges {
            // Subsets are checked for length only: stored CRCs cover whole
            // parts, and fetching whole parts would defeat a filtered restore.
            Some(ranges) => Plan {
                units: chunks(&coalesce(&ranges), chunk),
                prefix: Bytes::new(),
                total: None,
                whole_crc: None,
                whole_tree: None,
            },
            None => plan_whole(&*store, key, chunk).await?,
        };
        run(store, key, plan, &mut sink, transfer).await
    }
    .await;
    let finished = sink.finish().await;
    result?;
    finished
}

struct Plan {
    units: Vec<Unit>,
    /// The object's first bytes, already fetched by the probe.
    prefix: Bytes,
    /// The object's size, once known.
    total: Option<u64>,
    /// The whole object's CRC, checked before the last unit is emitted.
    whole_crc: Option<u64>,
    /// The whole object's SHA-256 tree hash, when the store knows it (a
    /// Glacier archive), checked at the same moment.
    whole_tree: Option<Hash>,
}

/// Probes the object and decides its units from its integrity record.
async fn plan_whole(store: &dyn Store, key: &str, chunk: u64) -> Result<Plan> {
    let url = store.url(key);
    let first = store.get_range(key, 0..chunk).await?;
    let total = first.total_size;
    let expect = (chunk.min(total)) as usize;
    if first.data.len() != expect {
        return Err(short_read(&url, &(0..chunk.min(total)), first.data.len()));
    }
    let (units, whole_crc) = match Record::parse(first.meta(META_KEY), &url)? {
        Record::None => (chunks(std::slice::from_ref(&(0..total)), chunk), None),
        Record::Single { size, crc } => {
            if size != total {
                return Err(Error::integrity(format!("{url} has {total} bytes but was stored with {size}")));
            }
            (vec![Unit { range: 0..total, crc: Some(crc) }], Some(crc))
        }
        Record::Manifest => {
            let manifest = load_manifest(store, key).await?;
            if manifest.size != total {
                return Err(Error::integrity(format!(
                    "{url} has {total} bytes but its manifest says {}",
                    manifest.size
                )));
            }
            let mut start = 0;
            let units = manifest
                .parts
                .iter()
                .map(|p| {
                    let unit = Unit { range: start..start + p.size, crc: Some(p.crc) };
                    start += p.size;
                    unit
                })
                .collect();
            (units, Some(manifest.crc))
        }
    };
    let whole_tree = match first.meta(TREE_HASH_META) {
        None => None,
        Some(text) => Some(
            treehash::from_hex(text)
                .ok_or_else(|| Error::integrity(format!("{url} has a damaged tree hash record: {text:?}")))?,
        ),
    };
    Ok(Plan { units, prefix: first.data, total: Some(total), whole_crc, whole_tree })
}

async fn load_manifest(store: &dyn Store, key: &str) -> Result<Manifest> {
    let manifest_key = layout::manifest_key(key);
    let url = store.url(&manifest_key);
    // 10,000 parts take about 400 KiB; anything near this limit is not ours.
    let fetched = store.get_range(&manifest_key, 0..(16 << 20)).await.map_err(|e| {
        if e.is(Kind::NotFound) {
            Error::integrity(format!("{url} is missing: {} cannot be verified, so it is not restored", store.url(key)))
        } else {
            e
        }
    })?;
    let text = std::str::from_utf8(&fetched.data)
        .map_err(|_| Error::integrity(format!("manifest {url} is damaged: not text")))?;
    Manifest::parse(text, &url)
}

/// Fetches, checks and emits the plan's units in order.
async fn run(store: Arc<dyn Store>, key: &str, plan: Plan, sink: &mut Sink, transfer: Transfer) -> Result<()> {
    let url = store.url(key);
    let budget = (transfer.concurrency as u64).saturating_mul(transfer.part_size);
    let mut in_flight: VecDeque<(u64, JoinHandle<Result<Bytes>>)> = VecDeque::new();
    let mut in_flight_bytes = 0u64;
    let mut pending = plan.units.into_iter().peekable();
    let mut running_crc: Option<u64> = None;
    let mut running_tree = plan.whole_tree.map(|_| TreeHasher::new());
    let mut emitted_len = 0u64;
    let mut held: Option<Bytes> = None;
    loop {
        while let Some(next) = pending.peek() {
            let len = next.range.end - next.range.start;
            let fits =
                in_flight.is_empty() || (in_flight.len() < transfer.concurrency && in_flight_bytes + len <= budget);
            if !fits {
                break;
            }
            let unit = pending.next().expect("peeked");
            let (store, key, prefix, total) = (store.clone(), key.to_string(), plan.prefix.clone(), plan.total);
            in_flight_bytes += len;
            in_flight
                .push_back((len, tokio::spawn(async move { fetch_unit(&*store, &key, unit, prefix, total).await })));
        }
        let Some((len, next)) = in_flight.pop_front() else { break };
        in_flight_bytes -= len;
        let data = next.await.map_err(|e| Error::service(format!("download task failed: {e}")))??;
        if plan.whole_crc.is_some() || plan.whole_tree.is_some() {
            let crc = integrity::crc64(&data);
            running_crc = Some(match running_crc {
                None => crc,
                Some(acc) => integrity::combine(acc, crc, data.len() as u64),
            });
            if let Some(hasher) = running_tree.as_mut() {
                hasher.update(&data);
            }
            // Hold one unit back: the last is written only after the whole
            // object's CRC has been checked.
            if let Some(previous) = held.replace(data) {
                emitted_len += previous.len() as u64;
                sink.write(previous).await?;
            }
            if pending.peek().is_none() && in_flight.is_empty() {
                let got = running_crc.unwrap_or_else(|| integrity::crc64(b""));
                if plan.whole_crc.is_some_and(|whole| got != whole) {
                    return Err(Error::integrity(format!(
                        "{url}: whole-object checksum mismatch after {emitted_len} bytes"
                    )));
                }
                if let (Some(whole), Some(hasher)) = (plan.whole_tree, running_tree.take())
                    && hasher.finish() != whole
                {
                    return Err(Error::integrity(format!(
                        "{url}: whole-archive tree hash mismatch after {emitted_len} bytes"
                    )));
                }
            }
        } else {
            sink.write(data).await?;
        }
    }
    if let Some(last) = held.take() {
        sink.write(last).await?;
    }
    Ok(())
}

/// Fetches one unit (using the probe's bytes where they cover it) and checks
/// its length and CRC.
async fn fetch_unit(store: &dyn Store, key: &str, unit: Unit, prefix: Bytes, total: Option<u64>) -> Result<Bytes> {
    let Range { start, end } = unit.range.clone();
    let have = prefix.len() as u64;
    let data = if end <= have {
        prefix.slice(start as usize..end as usize)
    } else if start < have {
        let rest = fetch(store, key, have..end, total).await?;
        let mut buf = BytesMut::with_capacity((end - start) as usize);
        buf.extend_from_slice(&prefix[start as usize..]);
        buf.extend_from_slice(&rest.data);
        buf.freeze()
    } else if start == end {
        Bytes::new()
    } else {
        fetch(store, key, start..end, total).await?.data
    };
    if let Some(crc) = unit.crc
        && integrity::crc64(&data) != crc
    {
        return Err(Error::integrity(format!(
            "{}: bytes {start}..{end} do not match their stored checksum; nothing of them was written",
            store.url(key)
        )));
    }
    Ok(data)
}

/// Fetches `range` and checks that exactly its bytes came back and that the
/// object has the size it had when the restore began.
async fn fetch(store: &dyn Store, key: &str, range: Range<u64>, total: Option<u64>) -> Result<Fetched> {
    let fetched = store.get_range(key, range.clone()).await?;
    let url = store.url(key);
    if let Some(expected) = total
        && fetched.total_size != expected
    {
        return Err(Error::integrity(format!(
            "{url} changed size during the restore ({expected} then {} bytes)",
            fetched.total_size
        )));
    }
    if range.end > fetched.total_size {
        return Err(Error::integrity(format!(
            "{url} has {} bytes; bytes {}..{} were asked for",
            fetched.total_size, range.start, range.end
        )));
    }
    if fetched.data.len() as u64 != range.end - range.start {
        return Err(short_read(&url, &range, fetched.data.len()));
    }
    Ok(fetched)
}

fn short_read(url: &str, range: &Range<u64>, got: usize) -> Error {
    Error::integrity(format!("short read from {url}: bytes {}..{} returned {got} bytes", range.start, range.end))
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

/// Cuts ranges into units of at most `chunk` bytes, without checksums.
fn chunks(ranges: &[Range<u64>], chunk: u64) -> Vec<Unit> {
    split(ranges, chunk).into_iter().map(|range| Unit { range, crc: None }).collect()
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
        assert_eq!(coalesce(&[0..10, 10..20, 25..30, 30..31]), vec![0..20, 25..31]);
        assert_eq!(coalesce(&[0..0, 5..10, 0..0, 10..12]), vec![5..12]);
        // Out-of-order ranges keep their order (the output is a concatenation).
        assert_eq!(coalesce(&[20..30, 0..10, 10..20]), vec![20..30, 0..20]);
        assert_eq!(coalesce(&[]), Vec::<Range<u64>>::new());
    }

    #[test]
    fn splits_into_chunks() {
        assert_eq!(split(std::slice::from_ref(&(0..25)), 10), vec![0..10, 10..20, 20..25]);
        assert_eq!(split(&[3..10, 10..10, 12..13], 10), vec![3..10, 12..13]);
        assert_eq!(split(std::slice::from_ref(&(0..20)), 10), vec![0..10, 10..20]);
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;
    use crate::engine::transform::Identity;
    use crate::engine::upload::{Source, upload};
    use crate::store::ObjectClass;
    use crate::store::memory::MemoryStore;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const TRANSFER: Transfer = Transfer { part_size: 5 << 20, concurrency: 3 };

    async fn stored(store: &MemoryStore, key: &str, len: usize) -> Vec<u8> {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let source = Source { reader: Box::new(std::io::Cursor::new(bytes.clone())), name: "t".into() };
        upload(Arc::new(store.clone()), key, source, TRANSFER, ObjectClass::Payload, &Identity).await.unwrap();
        bytes
    }

    async fn get(store: &MemoryStore, key: &str, selection: Selection) -> (Result<u64>, Vec<u8>) {
        let out = Shared::default();
        let output = Output { writer: Box::new(out.clone()), name: "t".into() };
        let result = download(Arc::new(store.clone()), key, selection, output, TRANSFER, &Identity).await;
        let written = out.0.lock().unwrap().clone();
        (result, written)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_whole_and_in_ranges() {
        let store = MemoryStore::new();
        let bytes = stored(&store, "k", 13 << 20).await;
        let (result, written) = get(&store, "k", Selection::Whole).await;
        assert_eq!(result.unwrap(), bytes.len() as u64);
        assert!(written == bytes);
        let ranges = vec![0..0, 10..20, 20..30, (6 << 20)..(11 << 20)];
        let (result, written) = get(&store, "k", Selection::Ranges(ranges.clone())).await;
        let expected: Vec<u8> = ranges.iter().flat_map(|r| bytes[r.start as usize..r.end as usize].to_vec()).collect();
        assert_eq!(result.unwrap(), expected.len() as u64);
        assert!(written == expected);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_damaged_part_is_never_written() {
        let store = MemoryStore::new();
        let bytes = stored(&store, "k", 13 << 20).await;
        let mut damaged = bytes.clone();
        damaged[(7 << 20) + 3] ^= 1;
        store.overwrite("k", damaged.into());
        let (result, written) = get(&store, "k", Selection::Whole).await;
        assert!(result.unwrap_err().is(Kind::Integrity));
        // The output stops at a part boundary before the damage.
        assert!(written.len() % (5 << 20) == 0 && written.len() < (7 << 20), "{}", written.len());
        assert!(written[..] == bytes[..written.len()]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_object_writes_nothing() {
        let (result, written) = get(&MemoryStore::new(), "nope", Selection::Whole).await;
        assert!(result.unwrap_err().is(Kind::NotFound));
        assert!(written.is_empty());
    }
}
