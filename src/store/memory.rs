//! An in-memory [`Store`] for unit tests of the engine and the commands:
//! fast, deterministic, and able to fail chosen requests.
//!
//! It behaves as S3 does where the engine can tell: objects appear only
//! when complete, multipart parts are joined in number order (and must all
//! have been uploaded), ranged reads are clipped to the object, listings
//! are paged in key order, deleting a missing key succeeds. Payloads may be
//! made cold ([`MemoryStore::cold_payloads`]): archived until a restore is
//! requested, then readable. It is never a stand-in for the server tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use super::{
    CredentialSource, DeleteOutcome, Fetched, ListPage, Metadata, MultipartUpload, ObjectClass, ObjectHead, ObjectMeta,
    ObjectState, PartTag, Readiness, RestoreRequested, Storage, Store,
};
use crate::config::RestoreTier;
use crate::error::{Error, Kind, Result};

/// One kind of request, for counting and for failing chosen ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Put,
    StartMultipart,
    PutPart,
    Complete,
    Abort,
    Get,
    Head,
    State,
    Restore,
    List,
    Delete,
}

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    /// The full-object CRC-64/NVME taken when the object was written (as
    /// AWS keeps one), so [`MemoryStore::overwrite`] leaves it stale.
    full_crc64: u64,
    metadata: Metadata,
    class: ObjectClass,
    restored: bool,
    modified: chrono::DateTime<chrono::Utc>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Object>,
    /// Open uploads: id -> (key, metadata, class, parts by number).
    uploads: HashMap<String, (String, Metadata, ObjectClass, BTreeMap<u32, Bytes>)>,
    /// When each open upload was started.
    started: HashMap<String, chrono::DateTime<chrono::Utc>>,
    /// Requests so far, by kind.
    counts: HashMap<Op, u64>,
    /// Failures to inject: (kind of request, its 1-based number among
    /// requests of that kind, the error's kind and message).
    failures: Vec<(Op, u64, Kind, String)>,
}

/// The store. Cloning shares the contents.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    page_size: Option<usize>,
    cold_payloads: bool,
    next_id: Arc<AtomicU64>,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Listings return at most `n` objects per page.
    pub fn page_size(mut self, n: usize) -> MemoryStore {
        self.page_size = Some(n.max(1));
        self
    }

    /// Payloads are archived until a restore is requested.
    pub fn cold_payloads(mut self) -> MemoryStore {
        self.cold_payloads = true;
        self
    }

    /// The `nth` request of kind `op` (1-based, counted from now on) fails
    /// with an error of `kind`.
    pub fn fail(&self, op: Op, nth: u64, kind: Kind) {
        let mut state = self.lock();
        let at = state.counts.get(&op).copied().unwrap_or(0) + nth;
        state.failures.push((op, at, kind, format!("injected failure of {op:?} request {at}")));
    }

    /// How many requests of kind `op` were made.
    pub fn count(&self, op: Op) -> u64 {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    /// The stored bytes of `key`, if any.
    pub fn object(&self, key: &str) -> Option<Bytes> {
        self.lock().objects.get(key).map(|o| o.data.clone())
    }

    /// Every key stored, in order.
    pub fn keys(&self) -> Vec<String> {
        self.lock().objects.keys().cloned().collect()
    }

    /// Replaces the stored bytes of `key` (to damage an object).
    pub fn overwrite(&self, key: &str, data: Bytes) {
        if let Some(object) = self.lock().objects.get_mut(key) {
            object.data = data;
        }
    }

    /// Dates the last write of `key` (its LastModified) at `when`.
    pub fn set_modified(&self, key: &str, when: chrono::DateTime<chrono::Utc>) {
        if let Some(object) = self.lock().objects.get_mut(key) {
            object.modified = when;
        }
    }

    /// Dates the start of every open upload at `when`.
    pub fn set_uploads_started(&self, when: chrono::DateTime<chrono::Utc>) {
        for started in self.lock().started.values_mut() {
            *started = when;
        }
    }

    /// The open uploads.
    pub fn open_upload_count(&self) -> usize {
        self.lock().uploads.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("memory store lock")
    }

    /// Counts a request and fails it when a failure was injected for it.
    fn request(&self, op: Op) -> Result<std::sync::MutexGuard<'_, State>> {
        let mut state = self.lock();
        let n = state.counts.entry(op).or_default();
        *n += 1;
        let n = *n;
        if let Some(i) = state.failures.iter().position(|(o, at, _, _)| *o == op && *at == n) {
            let (_, _, kind, message) = state.failures.remove(i);
            return Err(Error::new(kind, message));
        }
        Ok(state)
    }

    fn is_cold(&self, object: &Object) -> bool {
        self.cold_payloads && object.class == ObjectClass::Payload && !object.restored
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn url(&self, key: &str) -> String {
        format!("memory://{key}")
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
        let mut state = self.request(Op::Put)?;
        state.objects.insert(
            key.to_string(),
            Object {
                full_crc64: crc_fast::crc64_nvme(&data),
                data,
                metadata: metadata.clone(),
                class,
                restored: false,
                modified: chrono::Utc::now(),
            },
        );
        Ok(())
    }

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        let mut state = self.request(Op::StartMultipart)?;
        let id = format!("upload-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        state.uploads.insert(id.clone(), (key.to_string(), metadata.clone(), class, BTreeMap::new()));
        state.started.insert(id.clone(), chrono::Utc::now());
        Ok(Box::new(MemoryUpload { store: self.clone(), id }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        let state = self.request(Op::Get)?;
        let object =
            state.objects.get(key).ok_or_else(|| Error::not_found(format!("{} does not exist", self.url(key))))?;
        if self.is_cold(object) {
            return Err(Error::archived(format!("{} is archived and has not been restored", self.url(key))));
        }
        let size = object.data.len() as u64;
        let end = range.end.min(size);
        let start = range.start.min(end);
        Ok(Fetched {
            data: object.data.slice(start as usize..end as usize),
            total_size: size,
            metadata: object.metadata.clone(),
            etag: Some(format!("{:016x}", crc_fast::crc64_nvme(&object.data))),
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectHead> {
        let state = self.request(Op::Head)?;
        let object =
            state.objects.get(key).ok_or_else(|| Error::not_found(format!("{} does not exist", self.url(key))))?;
        Ok(ObjectHead {
            size: object.data.len() as u64,
            metadata: object.metadata.clone(),
            etag: Some(format!("{:016x}", crc_fast::crc64_nvme(&object.data))),
            full_crc64: Some(object.full_crc64),
        })
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        let state = self.request(Op::State)?;
        let object =
            state.objects.get(key).ok_or_else(|| Error::not_found(format!("{} does not exist", self.url(key))))?;
        let cold = self.cold_payloads && object.class == ObjectClass::Payload;
        let readiness = match (cold, object.restored) {
            (false, _) => Readiness::Ready,
            (true, false) => Readiness::Archived,
            (true, true) => Readiness::Restored { until: None },
        };
        let class = if cold { "DEEP_ARCHIVE" } else { "STANDARD" };
        Ok(ObjectState { readiness, storage: Storage::Class { class: class.to_string(), archive_tier: None } })
    }

    async fn request_restore(&self, key: &str, _tier: RestoreTier, _days: u32) -> Result<RestoreRequested> {
        let mut state = self.request(Op::Restore)?;
        let cold_payloads = self.cold_payloads;
        let object =
            state.objects.get_mut(key).ok_or_else(|| Error::not_found(format!("memory://{key} does not exist")))?;
        if !cold_payloads || object.class != ObjectClass::Payload || object.restored {
            return Ok(RestoreRequested::AlreadyReadable);
        }
        object.restored = true;
        Ok(RestoreRequested::Started)
    }

    async fn credentials_source(&self) -> Result<CredentialSource> {
        Ok(CredentialSource::Static { access_key_id: "memory".to_string() })
    }

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        let state = self.request(Op::List)?;
        let limit = limit.unwrap_or(1000).min(self.page_size.unwrap_or(1000));
        let after = next.unwrap_or_default();
        let mut objects: Vec<ObjectMeta> = state
            .objects
            .range::<String, _>((std::ops::Bound::Excluded(&after), std::ops::Bound::Unbounded))
            .filter(|(k, _)| k.starts_with(prefix))
            .take(limit + 1)
            .map(|(k, o)| ObjectMeta {
                key: k.clone(),
                size: o.data.len() as u64,
                cold: self.is_cold(o),
                last_modified: Some(o.modified),
            })
            .collect();
        let next = (objects.len() > limit).then(|| {
            objects.truncate(limit);
            objects.last().map(|o| o.key.clone()).unwrap_or_default()
        });
        Ok(ListPage { objects, next })
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteOutcome> {
        let mut state = self.request(Op::Delete)?;
        for key in keys {
            state.objects.remove(key);
        }
        Ok(DeleteOutcome::default())
    }

    async fn abort_upload(&self, _key: &str, upload_id: &str) -> Result<()> {
        let mut state = self.request(Op::Abort)?;
        state.uploads.remove(upload_id);
        state.started.remove(upload_id);
        Ok(())
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<super::OpenUpload>>> {
        let state = self.request(Op::List)?;
        Ok(Some(
            state
                .uploads
                .iter()
                .filter(|(_, (key, ..))| key.starts_with(prefix))
                .map(|(id, (key, ..))| super::OpenUpload {
                    key: key.clone(),
                    upload_id: id.clone(),
                    initiated: state.started.get(id).copied(),
                })
                .collect(),
        ))
    }
}

struct MemoryUpload {
    store: MemoryStore,
    id: String,
}

#[async_trait]
impl MultipartUpload for MemoryUpload {
    fn upload_id(&self) -> String {
        self.id.clone()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let mut state = self.store.request(Op::PutPart)?;
        let upload =
            state.uploads.get_mut(&self.id).ok_or_else(|| Error::not_found(format!("no upload {}", self.id)))?;
        let etag = format!("{:016x}", crc_fast::crc64_nvme(&data));
        upload.3.insert(number, data);
        Ok(PartTag { number, etag: Some(etag), checksum: None })
    }

    async fn complete(&self, parts: Vec<PartTag>) -> Result<()> {
        let mut state = self.store.request(Op::Complete)?;
        let (key, metadata, class, stored) =
            state.uploads.remove(&self.id).ok_or_else(|| Error::not_found(format!("no upload {}", self.id)))?;
        let mut numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        numbers.sort_unstable();
        if numbers != stored.keys().copied().collect::<Vec<_>>() {
            return Err(Error::service(format!("upload {}: the parts named are not the parts uploaded", self.id)));
        }
        let mut data = BytesMut::new();
        for part in stored.values() {
            data.extend_from_slice(part);
        }
        let data = data.freeze();
        state.started.remove(&self.id);
        let full_crc64 = crc_fast::crc64_nvme(&data);
        let modified = chrono::Utc::now();
        state.objects.insert(key, Object { full_crc64, data, metadata, class, restored: false, modified });
        Ok(())
    }

    async fn abort(&self) -> Result<()> {
        let mut state = self.store.request(Op::Abort)?;
        state.uploads.remove(&self.id);
        state.started.remove(&self.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn injected_failures_hit_the_chosen_request() {
        let store = MemoryStore::new();
        store.fail(Op::Put, 2, Kind::Transient);
        let none = Vec::new();
        let put = |k: &'static str| store.put(k, Bytes::from_static(b"x"), &none, ObjectClass::Metadata);
        assert!(put("a").await.is_ok());
        assert!(put("b").await.unwrap_err().is(Kind::Transient));
        assert!(put("c").await.is_ok());
        assert_eq!(store.keys(), vec!["a", "c"]);
        assert_eq!(store.count(Op::Put), 3);
    }
}
