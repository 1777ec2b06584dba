//! Download of a whole object or of byte ranges, in order, to a writer.
//!
//! The object is cut into units ([`plan`]) fetched with up to
//! `restore_max_concurrent_requests` requests in flight and emitted strictly
//! in order. Each unit is complete and checked ([`fetch`]: its length, the
//! object's size and version; its CRC when the object carries an integrity
//! record, see [`super::integrity`]) before any of its bytes is handed to the
//! sink, and the first failure stops the output. This matters because
//! gpbackup often cannot see our exit status (`restore_data | gzip -d`
//! masks it): a short stream is detectable, a wrong one is not.
//!
//! Units are the stored parts for objects this plugin wrote (a part is the
//! unit its CRC covers) and chunks of `restore_multipart_chunksize` bytes
//! otherwise. Units in flight are bounded by count and by a byte budget of
//! `concurrency x chunk size` (at least one unit), so memory is about
//! `(concurrency + 2) x max(chunk, part)`.

use std::collections::VecDeque;
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::integrity;
use super::sink::Sink;
use super::transform::{Head, Transform};
use crate::config::Transfer;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::glacier::treehash::TreeHasher;

mod fetch;
mod plan;

use plan::Plan;
pub use plan::coalesce;

/// What to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    Whole,
    /// Byte ranges, emitted back to back in this order.
    Ranges(Vec<Range<u64>>),
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
    let url = store.url(key);
    let (ranges, writer) = match &selection {
        Selection::Whole => (None, transform.decode_at(key, out.writer).map_err(|e| e.context(&url))?),
        Selection::Ranges(ranges) => {
            let head = head(&*store, key, transform).await?;
            let (stored, writer) =
                transform.decode_ranges(key, ranges, head, out.writer).map_err(|e| e.context(&url))?;
            (Some(stored), writer)
        }
    };
    let mut sink = Sink::new(writer, &out.name);
    let result = async {
        let records = plan::Records { verify: transfer.verify, required: transform.requires_record() };
        let plan = match ranges {
            Some(ranges) => plan::ranges(&*store, key, ranges, chunk, records).await?,
            None => plan::whole(&*store, key, chunk, records).await?,
        };
        run(store, key, plan, &mut sink, transfer).await
    }
    .await;
    let finished = sink.finish().await;
    result?;
    finished
}

/// The object's first bytes, as many as the transform asks to see before
/// it maps a filtered restore's ranges (none for most transforms).
async fn head(store: &dyn Store, key: &str, transform: &dyn Transform) -> Result<Option<Head>> {
    let mut head: Option<Head> = None;
    loop {
        let seen = head.as_ref().map_or(&[][..], |h| &h.data[..]);
        let need = transform.ranged_prefix(seen).map_err(|e| e.context(&store.url(key)))?;
        let whole = head.as_ref().is_some_and(|h| h.data.len() as u64 >= h.total);
        if need == 0 || whole || (head.is_some() && need <= seen.len() as u64) {
            return Ok(head);
        }
        let fetched = store.get_range(key, 0..need).await?;
        head = Some(Head { data: fetched.data, total: fetched.total_size });
    }
}

/// Fetches, checks and emits the plan's units in order.
async fn run(store: Arc<dyn Store>, key: &str, plan: Plan, sink: &mut Sink, transfer: Transfer) -> Result<()> {
    let url = store.url(key);
    let budget = (transfer.concurrency as u64).saturating_mul(transfer.part_size);
    let mut in_flight: VecDeque<(u64, JoinHandle<Result<fetch::Checked>>)> = VecDeque::new();
    let mut in_flight_bytes = 0u64;
    let mut pending = plan.units.peekable();
    let mut running_crc: Option<u64> = None;
    let mut running_tree = plan.whole_tree.map(|_| TreeHasher::new());
    let mut emitted_len = 0u64;
    let mut held: Option<Bytes> = None;
    let expect = fetch::Expect { total: plan.total, etag: plan.etag.clone() };
    loop {
        while let Some(next) = pending.peek() {
            let len = next.range.end - next.range.start;
            let fits = in_flight.is_empty()
                || (in_flight.len() < transfer.concurrency && in_flight_bytes.saturating_add(len) <= budget);
            if !fits {
                break;
            }
            let unit = pending.next().expect("peeked");
            let (store, key, prefix, expect) = (store.clone(), key.to_string(), plan.prefix.clone(), expect.clone());
            in_flight_bytes += len;
            in_flight
                .push_back((len, tokio::spawn(async move { fetch::unit(&*store, &key, unit, prefix, &expect).await })));
        }
        let Some((len, next)) = in_flight.pop_front() else { break };
        in_flight_bytes -= len;
        let (data, verified) = next.await.map_err(|e| Error::local(format!("download task failed: {e}")))??;
        if plan.whole_crc.is_some() || plan.whole_tree.is_some() {
            // A unit checked against its stored CRC is not hashed twice.
            let crc = verified.unwrap_or_else(|| integrity::crc64(&data));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::transform::Identity;
    use crate::engine::upload::{Source, upload};
    use crate::error::Kind;
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

    const TRANSFER: Transfer = Transfer { part_size: 5 << 20, concurrency: 3, verify: crate::config::Verify::Strict };

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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_manifest_is_refused_unless_verify_available_then_the_service_checksum_decides() {
        let store = MemoryStore::new();
        let bytes = stored(&store, "k", 13 << 20).await;
        let manifest: Vec<String> = store.keys().into_iter().filter(|k| k.ends_with(".gpbackup_manifest")).collect();
        assert_eq!(manifest.len(), 1);
        store.delete_many(&manifest).await.unwrap();

        // Strict (the default): nothing written, and the error names the remedy.
        let (result, written) = get(&store, "k", Selection::Whole).await;
        let error = result.unwrap_err();
        assert!(error.is(Kind::Integrity) && error.to_string().contains("verify: available"), "{error}");
        assert!(written.is_empty());

        // Available: restored, checked against the stored full-object CRC.
        let available = Transfer { verify: crate::config::Verify::Available, ..TRANSFER };
        let fetch = |store: &MemoryStore| {
            let (store, out) = (store.clone(), Shared::default());
            async move {
                let output = Output { writer: Box::new(out.clone()), name: "t".into() };
                let result = download(Arc::new(store), "k", Selection::Whole, output, available, &Identity).await;
                let written = out.0.lock().unwrap().clone();
                (result, written)
            }
        };
        let (result, written) = fetch(&store).await;
        assert_eq!(result.unwrap(), bytes.len() as u64);
        assert!(written == bytes);

        // Damaged after it was stored: the service's checksum no longer
        // matches, and the last unit is never written.
        let mut damaged = bytes.clone();
        damaged[(13 << 20) - 1] ^= 1;
        store.overwrite("k", damaged.into());
        let (result, written) = fetch(&store).await;
        assert!(result.unwrap_err().is(Kind::Integrity));
        assert!(written.len() < bytes.len() && written[..] == bytes[..written.len()]);
    }
}
