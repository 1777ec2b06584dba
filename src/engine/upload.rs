//! Upload of a stream (stdin or a local file) of unknown length.
//!
//! A blocking reader fills one part at a time while earlier parts upload.
//! Memory is a byte budget `B = (concurrency + 1) x first part size` (the
//! parts in flight plus the one being filled) shared through a semaphore, of
//! which one part may take at most half: when parts grow (see
//! [`super::plan`]), fewer fit in flight, and once a part is larger than
//! `B / 2` exactly two exist at a time (one on the wire, one filling). So
//! buffers never exceed `max(B, 2 x current part size)`: 56 MiB with the
//! defaults for the first 21 GiB of a stream (8 and 16 MiB parts), 64 MiB up
//! to 49 GiB, and so on. A stream that fits in one part is one PutObject.
//! Every part is held until the service acknowledges it, so a failed
//! request is retried with the same bytes without restarting the stream,
//! and any failure aborts the multipart upload so nothing appears at the key.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::integrity::{self, META_KEY, Manifest, PartSum, Record};
use super::journal;
use super::plan::{MAX_PARTS, PartPlan};
use super::transform::Transform;
use crate::config::Transfer;
use crate::error::{Error, Result};
use crate::layout;
use crate::store::{MultipartUpload, ObjectClass, PartTag, Store};

/// The budget is counted in KiB so that it fits the semaphore's u32 permits.
const UNIT: u64 = 1024;

/// Where the bytes come from, for messages ("stdin", a file name).
pub struct Source {
    pub reader: Box<dyn Read + Send>,
    pub name: String,
}

struct Part {
    data: Bytes,
    crc: u64,
    _budget: OwnedSemaphorePermit,
}

struct Reader {
    source: Option<Source>,
    plan: PartPlan,
    budget: Arc<Semaphore>,
    budget_units: u32,
    total: u64,
    /// Size and CRC of every part read so far, in order.
    sums: Vec<PartSum>,
}

impl Reader {
    /// Reads part `number` in full, or what is left before EOF.
    async fn next(&mut self, number: u32) -> Result<Part> {
        let size = self.plan.size(number);
        // At most half the budget per part: one part can always be filling
        // while another is on the wire, however large parts have grown.
        let units = (size.div_ceil(UNIT) as u32).min(self.budget_units / 2).max(1);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(units)
            .await
            .map_err(|_| Error::local("upload buffer pool closed"))?;
        let mut source = self.source.take().expect("reader used after failure");
        // The CRC is computed here, on the blocking thread, while earlier
        // parts are on the wire.
        let (source, result) = tokio::task::spawn_blocking(move || {
            // A buffer an acknowledged part left behind, when there is one
            // (no fresh pages to fault in: see `store::buffers`).
            let mut buf = crate::store::buffers::take(size as usize);
            let result = (&mut source.reader).take(size).read_to_end(&mut buf).map(|_| {
                let crc = integrity::crc64(&buf);
                (buf, crc)
            });
            (source, result)
        })
        .await
        .map_err(|e| Error::local(format!("reader thread failed: {e}")))?;
        let (buf, crc) = result.map_err(|e| Error::io(format!("reading {}", source.name), e))?;
        self.source = Some(source);
        self.total += buf.len() as u64;
        if !buf.is_empty() {
            self.sums.push(PartSum { size: buf.len() as u64, crc });
        }
        Ok(Part { data: crate::store::buffers::freeze(buf), crc, _budget: permit })
    }
}

/// Uploads everything `source` yields, through `transform`, to `key`,
/// stored as `class` says; returns the byte count stored. The integrity
/// manifest of a multipart object is always [`ObjectClass::Metadata`]:
/// every restore reads it first, so it must stay readable while the
/// payload is archived.
pub async fn upload(
    store: Arc<dyn Store>,
    key: &str,
    source: Source,
    transfer: Transfer,
    class: ObjectClass,
    transform: &dyn Transform,
) -> Result<u64> {
    let source = Source { reader: transform.encode(key, source.reader)?, name: source.name };
    let said: Vec<(String, String)> =
        transform.metadata().into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    // A vault takes parts of exactly one size; S3 lets them grow.
    let (plan, part_size) = match store.fixed_part_size(class) {
        Some(size) => (PartPlan::fixed(size), size),
        None => (PartPlan::new(transfer.part_size), transfer.part_size),
    };
    let budget_units = ((transfer.concurrency as u64 + 1) * part_size).div_ceil(UNIT);
    let budget_units = budget_units.min(u64::from(u32::MAX)).min(Semaphore::MAX_PERMITS as u64) as u32;
    let mut reader = Reader {
        source: Some(source),
        plan,
        budget: Arc::new(Semaphore::new(budget_units as usize)),
        budget_units,
        total: 0,
        sums: Vec::new(),
    };

    let first = reader.next(1).await?;
    if (first.data.len() as u64) < plan.size(1) {
        return put_single(&*store, key, first, class, said).await;
    }
    let second = reader.next(2).await?;
    if second.data.is_empty() {
        return put_single(&*store, key, first, class, said).await;
    }

    let id = layout::new_upload_id();
    let mut metadata = vec![(META_KEY.to_string(), Record::manifest(&id))];
    metadata.extend(said);
    let upload: Arc<dyn MultipartUpload> = Arc::from(store.start_multipart(key, &metadata, class).await?);
    let note = journal::record(&store.url(key), key, &upload.upload_id());
    let manifest_key = layout::manifest_key_of(key, Some(&id));
    let result =
        finish_multipart(&*store, &manifest_key, &upload, &mut reader, [first, second], transfer.concurrency).await;
    journal::forget(note);
    result
}

async fn finish_multipart(
    store: &dyn Store,
    manifest_key: &str,
    upload: &Arc<dyn MultipartUpload>,
    reader: &mut Reader,
    first_two: [Part; 2],
    concurrency: usize,
) -> Result<u64> {
    let parts = match upload_parts(upload, reader, first_two, concurrency).await {
        Ok(parts) => parts,
        Err(e) => return Err(abort_after(&**upload, e).await),
    };
    // The manifest goes first: once the object is complete, its manifest
    // must already be there for a restore to verify it. It is this upload's
    // own, so removing it after a failure touches no earlier version's.
    let manifest = Manifest::new(std::mem::take(&mut reader.sums));
    let stored = async {
        store.put(manifest_key, Bytes::from(manifest.to_text()), &Vec::new(), ObjectClass::Metadata).await?;
        upload.complete(parts).await
    };
    match stored.await {
        Ok(()) => Ok(reader.total),
        Err(e) => {
            let _ = store.delete_many(&[manifest_key.to_string()]).await;
            Err(abort_after(&**upload, e).await)
        }
    }
}

/// A stream that fits in one part: one request, its CRC in the metadata
/// (with what the transform says of it).
async fn put_single(
    store: &dyn Store,
    key: &str,
    part: Part,
    class: ObjectClass,
    said: Vec<(String, String)>,
) -> Result<u64> {
    let size = part.data.len() as u64;
    let mut metadata = vec![(META_KEY.to_string(), Record::single(size, part.crc))];
    metadata.extend(said);
    store.put(key, part.data, &metadata, class).await?;
    Ok(size)
}

/// The parts in order: the two already read, then the rest of the stream
/// as uploads make room, until a short or empty part ends it.
struct Parts<'a> {
    reader: &'a mut Reader,
    ready: Vec<Part>,
    number: u32,
    ended: bool,
}

impl Parts<'_> {
    async fn next(&mut self) -> Result<Option<(u32, Part)>> {
        if self.ended {
            return Ok(None);
        }
        let part = match self.ready.pop() {
            Some(part) => part,
            None => self.reader.next(self.number + 1).await?,
        };
        if part.data.is_empty() {
            self.ended = true;
            return Ok(None);
        }
        if self.number == MAX_PARTS {
            let option = if self.reader.plan.is_fixed() { "vault_part_size" } else { "backup_multipart_chunksize" };
            return Err(Error::local(format!("the stream is larger than {MAX_PARTS} parts can hold; raise {option}")));
        }
        self.number += 1;
        // A part shorter than planned is the stream's last.
        self.ended = (part.data.len() as u64) < self.reader.plan.size(self.number);
        Ok(Some((self.number, part)))
    }
}

/// Uploads every part, `concurrency` at a time; the first failure stops
/// the stream at once (the parts in flight are dropped).
async fn upload_parts(
    upload: &Arc<dyn MultipartUpload>,
    reader: &mut Reader,
    [first, second]: [Part; 2],
    concurrency: usize,
) -> Result<Vec<PartTag>> {
    let parts = Parts { reader, ready: vec![second, first], number: 0, ended: false };
    futures::stream::try_unfold(parts, |mut parts| async move { Ok(parts.next().await?.map(|item| (item, parts))) })
        .map_ok(|(number, part): (u32, Part)| {
            let upload = upload.clone();
            async move {
                // The budget is held until the service has the part.
                let Part { data, _budget, .. } = part;
                upload.put_part(number, data).await
            }
        })
        .try_buffer_unordered(concurrency)
        .try_collect()
        .await
}

/// Aborts the upload after `err`; the original error is what gets reported.
async fn abort_after(upload: &dyn MultipartUpload, err: Error) -> Error {
    if let Err(abort_err) = upload.abort().await {
        log::warn!("could not abort the failed multipart upload: {abort_err}");
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::transform::Identity;
    use crate::error::Kind;
    use crate::size::MIB;
    use crate::store::memory::{MemoryStore, Op};

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect()
    }

    async fn up(store: &MemoryStore, key: &str, bytes: Vec<u8>) -> Result<u64> {
        let source = Source { reader: Box::new(std::io::Cursor::new(bytes)), name: "test".to_string() };
        let transfer = Transfer { part_size: 5 * MIB, concurrency: 3, verify: crate::config::Verify::Strict };
        upload(Arc::new(store.clone()), key, source, transfer, ObjectClass::Payload, &Identity).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_streams_are_one_put_with_their_crc() {
        let store = MemoryStore::new();
        assert_eq!(up(&store, "k", data(1000)).await.unwrap(), 1000);
        assert_eq!(store.count(Op::Put), 1);
        assert_eq!(store.count(Op::StartMultipart), 0);
        assert_eq!(store.object("k").unwrap(), data(1000));
        // A stream of exactly one part is one put too.
        assert_eq!(up(&store, "one", data(5 << 20)).await.unwrap(), 5 << 20);
        assert_eq!((store.count(Op::Put), store.count(Op::StartMultipart)), (2, 0));
        // And an empty one.
        assert_eq!(up(&store, "empty", Vec::new()).await.unwrap(), 0);
        assert_eq!(store.object("empty").unwrap().len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn long_streams_are_multipart_with_a_manifest() {
        let store = MemoryStore::new();
        let bytes = data(12 * 1024 * 1024 + 17);
        assert_eq!(up(&store, "big", bytes.clone()).await.unwrap(), bytes.len() as u64);
        assert_eq!(store.count(Op::PutPart), 3);
        assert_eq!(store.object("big").unwrap(), bytes);
        let manifest_key = store.keys().into_iter().find(|k| layout::manifest_owner(k).is_some()).expect("a manifest");
        assert_eq!(layout::manifest_owner(&manifest_key).unwrap().0, "big");
        let manifest = store.object(&manifest_key).unwrap();
        let manifest = Manifest::parse(std::str::from_utf8(&manifest).unwrap(), "m").unwrap();
        assert_eq!((manifest.size, manifest.crc), (bytes.len() as u64, integrity::crc64(&bytes)));
        assert_eq!(store.open_upload_count(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_part_aborts_and_leaves_nothing() {
        let store = MemoryStore::new();
        store.fail(Op::PutPart, 2, Kind::Service);
        let err = up(&store, "big", data(16 << 20)).await.unwrap_err();
        assert!(err.is(Kind::Service), "{err}");
        assert_eq!(store.count(Op::Abort), 1);
        assert_eq!(store.open_upload_count(), 0);
        assert!(store.keys().is_empty(), "{:?}", store.keys());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_completion_removes_the_new_manifest() {
        let store = MemoryStore::new();
        store.fail(Op::Complete, 1, Kind::Service);
        assert!(up(&store, "big", data(11 << 20)).await.is_err());
        assert!(store.keys().is_empty(), "{:?}", store.keys());
        assert_eq!(store.open_upload_count(), 0);
    }
}
