//! Proving a backup's objects sound without restoring it.
//!
//! Without `deep`, every object is looked up (HEAD; archived objects too)
//! and checked against its integrity record ([`crate::record`]): the size a
//! single-request object was stored with; for a multipart object, that its
//! manifest is there, consistent, of the object's size, and lists as many
//! parts as the service's ETag says it has. No payload byte is read.
//! Objects without a record (the Go plugin's, or put by hand) are checked
//! for presence and size.
//!
//! With `deep`, every object is then read through the restore's own
//! verified download ([`crate::engine::download`]) into a sink that
//! discards, recomputing each part's CRC-64, the whole object's, and a vault
//! archive's SHA-256 tree hash. Objects are read in parallel under one
//! budget of `restore_max_concurrent_requests` permits: a small object (one
//! range) takes one, a larger one all of them, so memory stays what one
//! `restore_data` uses. Archived objects are not read: they need `thaw`.
//! With keys that decrypt, an encrypted object is read as a restore reads
//! it (every tag, its binding and signature judged); without, its
//! ciphertext is checked against its record ([`Sealed::Closed`]).

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::config::Transfer;
use crate::engine::download::{Output, Selection, download};
use crate::engine::integrity::{META_KEY, Manifest, Record};
use crate::engine::transform::{AGE_MAGIC, Identity, Stored, Transform};
use crate::error::{Error, Kind};
use crate::layout;
use crate::store::{ObjectMeta, Storage, Store, TREE_HASH_META};

/// Lookups in flight in a shallow check.
const CONCURRENCY: usize = 16;
/// The largest manifest read (10,000 parts take about 400 KiB).
const MANIFEST_MAX: u64 = 16 << 20;

/// How an object was proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Its integrity record, and, deep, its bytes against it.
    Record { parts: usize, read: bool, tree_hash: bool },
    /// No integrity record: present with its size (deep: read whole).
    Present { read: bool },
}

/// What is wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flaw {
    /// Its bytes, size or records do not agree.
    Damaged(String),
    /// Archived: not readable until thawed (deep only).
    NeedsThaw(Storage),
    /// Gone since the listing.
    Missing,
    /// The service failed the check itself.
    Failed(String),
}

/// Whether a deep read found the object encrypted, and opened it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sealed {
    /// Not encrypted, or not read.
    #[default]
    Plain,
    /// Encrypted and decrypted: as the keys' [`crate::engine::transform::Proves`] says.
    Opened,
    /// Encrypted, and no key here decrypts it: its ciphertext was checked.
    Closed,
}

#[derive(Debug, Clone)]
pub struct Checked {
    pub key: String,
    pub size: u64,
    pub outcome: std::result::Result<Proof, Flaw>,
    /// Archived with no readable copy (a restore would need `thaw`).
    pub needs_thaw: Option<Storage>,
    /// What a deep read found of its encryption.
    pub sealed: Sealed,
}

/// Progress of a check: objects and bytes done.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub bytes: u64,
}

/// The objects a check covers: everything listed but the plugin's own
/// sidecars (checked with their objects).
pub fn checked_objects(listing: &[ObjectMeta]) -> Vec<ObjectMeta> {
    listing.iter().filter(|o| !layout::is_sidecar(&o.key)).cloned().collect()
}

/// Checks `objects`; with `deep`, reads them with these transfer settings.
/// Encrypted objects are not decrypted: see [`verify_with`].
pub async fn verify(
    store: &Arc<dyn Store>,
    objects: Vec<ObjectMeta>,
    deep: Option<Transfer>,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Vec<Checked> {
    verify_with(store, objects, deep, &Identity, progress).await
}

/// [`verify`], a deep read decrypting with `keys` when they decrypt.
pub async fn verify_with(
    store: &Arc<dyn Store>,
    objects: Vec<ObjectMeta>,
    deep: Option<Transfer>,
    keys: &dyn Transform,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Vec<Checked> {
    let total = objects.len();
    let permits = deep.map_or(1, |t| t.concurrency.max(1));
    let budget = Arc::new(Semaphore::new(permits));
    let lanes = if deep.is_some() { permits } else { CONCURRENCY };
    let mut checks = futures::stream::iter(objects)
        .map(|object| {
            let (store, budget) = (store.clone(), budget.clone());
            async move { check(&store, object, deep, &budget, keys).await }
        })
        .buffer_unordered(lanes);
    let mut out = Vec::with_capacity(total);
    let mut bytes = 0;
    while let Some(checked) = checks.next().await {
        bytes += checked.size;
        out.push(checked);
        progress(Progress { done: out.len(), total, bytes });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

async fn check(
    store: &Arc<dyn Store>,
    object: ObjectMeta,
    deep: Option<Transfer>,
    budget: &Semaphore,
    keys: &dyn Transform,
) -> Checked {
    let mut checked = Checked {
        key: object.key.clone(),
        size: object.size,
        outcome: Err(Flaw::Missing),
        needs_thaw: None,
        sealed: Sealed::Plain,
    };
    if object.cold {
        match store.object_state(&object.key).await {
            Ok(state) if !state.readiness.readable() => checked.needs_thaw = Some(state.storage),
            Ok(_) => {}
            Err(e) => {
                checked.outcome = Err(flaw(e));
                return checked;
            }
        }
    }
    let proof = match shallow(&**store, &object).await {
        Ok(proof) => proof,
        Err(flaw) => {
            checked.outcome = Err(flaw);
            return checked;
        }
    };
    checked.outcome = match (deep, &checked.needs_thaw) {
        (None, _) => Ok(proof),
        (Some(_), Some(storage)) => Err(Flaw::NeedsThaw(storage.clone())),
        (Some(transfer), None) => match read(store, &object, transfer, budget, keys).await {
            Ok(sealed) => {
                checked.sealed = sealed;
                Ok(match proof {
                    Proof::Record { parts, tree_hash, .. } => Proof::Record { parts, read: true, tree_hash },
                    Proof::Present { .. } => Proof::Present { read: true },
                })
            }
            Err(flaw) => Err(flaw),
        },
    };
    checked
}

/// The lookup checks (see the module doc).
async fn shallow(store: &dyn Store, object: &ObjectMeta) -> std::result::Result<Proof, Flaw> {
    let url = store.url(&object.key);
    let head = store.head(&object.key).await.map_err(flaw)?;
    if head.size != object.size {
        return Err(Flaw::Damaged(format!("listed with {} bytes, but a lookup says {}", object.size, head.size)));
    }
    let tree_hash = match head.meta(TREE_HASH_META) {
        Some(hash) if crate::store::glacier::treehash::from_hex(hash).is_none() => {
            return Err(Flaw::Damaged(format!("its catalog entry has a damaged tree hash {hash:?}")));
        }
        Some(_) => true,
        None => false,
    };
    let record = Record::parse(head.meta(META_KEY), &url).map_err(|e| Flaw::Damaged(e.message().to_string()))?;
    let parts = match &record {
        Record::None => return Ok(Proof::Present { read: false }),
        Record::Single { size, .. } if *size != head.size => {
            return Err(Flaw::Damaged(format!("{} bytes stored, but its integrity record says {size}", head.size)));
        }
        Record::Single { .. } => 1,
        Record::Manifest { .. } => {
            let key = record.manifest_key(&object.key).unwrap_or_default();
            let fetched = store.get_range(&key, 0..MANIFEST_MAX).await.map_err(|e| match e.kind() {
                Kind::NotFound => Flaw::Damaged(format!(
                    "its integrity manifest {} is missing (a restore needs `verify: available`)",
                    store.url(&key)
                )),
                _ => flaw(e),
            })?;
            let text = std::str::from_utf8(&fetched.data)
                .map_err(|_| Flaw::Damaged(format!("its integrity manifest {} is not text", store.url(&key))))?;
            let manifest =
                Manifest::parse(text, &store.url(&key)).map_err(|e| Flaw::Damaged(e.message().to_string()))?;
            if manifest.size != head.size {
                return Err(Flaw::Damaged(format!(
                    "{} bytes stored, but its manifest says {}",
                    head.size, manifest.size
                )));
            }
            if let Some(stored) = head.etag.as_deref().and_then(etag_parts)
                && stored != manifest.parts.len()
            {
                return Err(Flaw::Damaged(format!(
                    "the service stores {stored} parts, but its manifest lists {}",
                    manifest.parts.len()
                )));
            }
            manifest.parts.len()
        }
    };
    Ok(Proof::Record { parts, read: false, tree_hash })
}

/// The part count of an S3 multipart ETag (`"<32 hex>-<parts>"`).
fn etag_parts(etag: &str) -> Option<usize> {
    let (md5, parts) = etag.trim_matches('"').split_once('-')?;
    (md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit())).then(|| parts.parse().ok()).flatten()
}

/// Reads the whole object through the verified download, discarding it:
/// decrypted by `keys` when they decrypt, else as stored.
async fn read(
    store: &Arc<dyn Store>,
    object: &ObjectMeta,
    transfer: Transfer,
    budget: &Semaphore,
    keys: &dyn Transform,
) -> std::result::Result<Sealed, Flaw> {
    let small = object.size <= transfer.part_size;
    let lanes = if small { 1 } else { transfer.concurrency.max(1) };
    let _permits = budget.acquire_many(lanes as u32).await.map_err(|e| Flaw::Failed(e.to_string()))?;
    let transfer = Transfer { concurrency: lanes, ..transfer };
    let decrypts = keys.proves().decrypts;
    let first = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writer: Box<dyn std::io::Write + Send> = match decrypts {
        true => Box::new(std::io::sink()),
        false => Box::new(Start(first.clone())),
    };
    let out = Output { writer, name: "verify".to_string() };
    let transform: &dyn Transform = if decrypts { keys } else { &Stored };
    let read = download(store.clone(), &object.key, Selection::Whole, out, transfer, transform).await.map_err(flaw)?;
    if read != object.size {
        return Err(Flaw::Damaged(format!("listed with {} bytes, {read} read", object.size)));
    }
    let age = first.lock().is_ok_and(|f| f.starts_with(AGE_MAGIC));
    Ok(match (decrypts, age) {
        // A decrypting read refuses what is not encrypted.
        (true, _) => Sealed::Opened,
        (false, true) => Sealed::Closed,
        (false, false) => Sealed::Plain,
    })
}

/// A sink keeping the first bytes written (to see an age header).
struct Start(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Start {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut first = self.0.lock().expect("not poisoned");
        let take = AGE_MAGIC.len().saturating_sub(first.len()).min(buf.len());
        first.extend_from_slice(&buf[..take]);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn flaw(e: Error) -> Flaw {
    match e.kind() {
        Kind::NotFound => Flaw::Missing,
        Kind::Integrity => Flaw::Damaged(e.message().to_string()),
        Kind::Archived => Flaw::NeedsThaw(Storage::Class { class: "archived".to_string(), archive_tier: None }),
        _ => Flaw::Failed(e.message().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_give_their_part_count() {
        assert_eq!(etag_parts("\"d41d8cd98f00b204e9800998ecf8427e-12\""), Some(12));
        assert_eq!(etag_parts("d41d8cd98f00b204e9800998ecf8427e"), None);
        assert_eq!(etag_parts("\"abc-2\""), None);
        assert_eq!(etag_parts("0123456789abcdef"), None);
    }
}
