//! The storage abstraction: the few operations the commands and the
//! streaming engine need, with one implementation per kind of service.
//!
//! Commands never name a backend: [`open`] picks the implementation from the
//! config once, and everything else talks to `dyn Store`. Data moves as whole
//! in-memory parts and ranges (`Bytes`) because the engine must hold every
//! part until it is acknowledged (to retry it) and every range until it is
//! verified (to never emit a wrong byte); streaming bodies would only hide
//! that buffer, not remove it.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use aws_credential_types::provider::SharedCredentialsProvider;

use crate::config::Config;
use crate::error::Result;

pub mod catalog;
pub mod glacier;
pub mod retry;
pub mod s3;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Stored where it may need a restore before it can be read (an archived
    /// storage class); `false` means readable now. Ask [`Store::object_state`]
    /// about cold objects.
    pub cold: bool,
}

/// What an object is to a backup, which decides how it is stored. Commands
/// choose it; each store maps it to its own storage (S3: a storage class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    /// Table data written by `backup_data`. Only a restore reads it, so it
    /// may live in cold (archived) storage.
    Payload,
    /// Everything read synchronously: metadata, TOCs, config, report,
    /// integrity manifests, probes. Always readable at once.
    Metadata,
}

/// How fast (and how dearly) an archived object is brought back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTier {
    Expedited,
    Standard,
    Bulk,
}

impl RestoreTier {
    /// `Expedited`, `Standard` or `Bulk`, in any case.
    pub fn parse(text: &str) -> Option<RestoreTier> {
        match text.trim().to_ascii_lowercase().as_str() {
            "expedited" => Some(RestoreTier::Expedited),
            "standard" => Some(RestoreTier::Standard),
            "bulk" => Some(RestoreTier::Bulk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RestoreTier::Expedited => "Expedited",
            RestoreTier::Standard => "Standard",
            RestoreTier::Bulk => "Bulk",
        }
    }
}

/// Whether an object can be read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Readable now (instant-access storage).
    Ready,
    /// Archived, and no restore asked for (or its copy has expired).
    Archived,
    /// A restore is under way.
    Restoring,
    /// A restored copy is readable until `until` (when the service says).
    Restored { until: Option<chrono::DateTime<chrono::Utc>> },
}

impl Readiness {
    pub fn readable(&self) -> bool {
        matches!(self, Readiness::Ready | Readiness::Restored { .. })
    }
}

/// An object's readiness and where it is stored (the service's name for
/// its storage, for messages: `GLACIER`, `DEEP_ARCHIVE`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub readiness: Readiness,
    pub storage: String,
}

/// What a restore request found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreRequested {
    /// A restore was started.
    Started,
    /// One was already under way; nothing new was asked for.
    AlreadyRestoring,
    /// The object is readable already (restored, or in instant storage).
    AlreadyReadable,
}

/// One page of a listing, and where the next one starts.
#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<ObjectMeta>,
    pub next: Option<String>,
}

/// What a stored part is known by when the upload is completed.
#[derive(Debug, Clone)]
pub struct PartTag {
    pub number: u32,
    pub etag: Option<String>,
    pub checksum: Option<String>,
}

/// User metadata of an object (names without the `x-amz-meta-` prefix).
pub type Metadata = Vec<(String, String)>;

/// Bytes of one object, the object's total size, and its user metadata.
#[derive(Debug)]
pub struct Fetched {
    pub data: Bytes,
    pub total_size: u64,
    pub metadata: Metadata,
}

impl Fetched {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[async_trait]
pub trait Store: Send + Sync {
    /// `s3://bucket/key`, for messages.
    fn url(&self, key: &str) -> String;

    /// Stores `data` at `key` in one request; visible only when complete.
    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()>;

    /// Starts an upload in parts; nothing is visible at `key` until
    /// [`MultipartUpload::complete`].
    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>>;

    /// Reads `range` of the object (clipped to its end), returning the bytes
    /// and the object's total size. A range starting at 0 of an empty object
    /// returns no bytes. `Error::NotFound` when there is no object,
    /// `Error::Archived` when it must be restored (thawed) first.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched>;

    /// Whether the object can be read now, and where it is stored.
    /// `Error::NotFound` when there is no object.
    async fn object_state(&self, key: &str) -> Result<ObjectState>;

    /// Asks for a readable copy of an archived object for `days` days.
    /// Never starts a second restore of an object that has one under way or
    /// is readable already.
    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested>;

    /// Where the credentials come from (never the secret itself); resolves
    /// them, so a missing or broken source fails here.
    async fn credentials_source(&self) -> Result<String>;

    /// The settings in effect, as `(what, value)` lines for `check`:
    /// endpoint and addressing, storage per object class, encryption.
    fn settings(&self) -> Vec<(&'static str, String)>;

    /// One page (at most `limit` objects, or the service's page size) of
    /// the objects whose keys start with `prefix`, in key order.
    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage>;

    /// Deletes up to [`DELETE_BATCH`] keys; deleting a missing key succeeds.
    async fn delete_many(&self, keys: &[String]) -> Result<()>;

    /// Aborts an upload left open by another process; an upload that is
    /// already gone counts as aborted.
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()>;

    /// The open uploads (key, upload id) under `prefix`, or `None` when the
    /// service cannot list them.
    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<(String, String)>>>;

    /// How long a restored copy stays readable, for reports: `days` where
    /// the request sets it.
    fn restored_lifetime(&self, days: u32) -> String {
        format!("readable for {days} days")
    }

    /// `Some(size)`: every part of an object of `class` but the last must
    /// be exactly `size` bytes (a Glacier vault); `None`: parts may grow as
    /// the stream does.
    fn fixed_part_size(&self, _class: ObjectClass) -> Option<u64> {
        None
    }

    /// Checks what the store needs besides the bucket (a vault) and, with
    /// `create`, creates what is missing; `(what, value)` lines for `check`
    /// and the setup log.
    async fn preflight(&self, _create: bool) -> Result<Vec<(&'static str, String)>> {
        Ok(Vec::new())
    }

    /// Keys under `prefix` whose deletion a retention lock refused and that
    /// were kept for a later `purge`.
    async fn deferred_deletes(&self, _prefix: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The most keys one `delete_many` call takes (S3's DeleteObjects limit).
pub const DELETE_BATCH: usize = 1000;

#[async_trait]
pub trait MultipartUpload: Send + Sync {
    /// The service's id for this upload, to abort it from another process.
    fn upload_id(&self) -> String;
    /// Uploads part `number` (1-based); parts may be sent concurrently.
    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag>;
    /// Joins the parts, in number order, into the object.
    async fn complete(&self, parts: Vec<PartTag>) -> Result<()>;
    /// Discards the parts; nothing becomes visible.
    async fn abort(&self) -> Result<()>;
}

/// The store the config selects.
pub async fn open(config: &Config) -> Result<Arc<dyn Store>> {
    let (bucket, policy, credentials) = bucket(config).await?;
    match &config.vault {
        None => Ok(bucket),
        // The vault store retries its own requests: one of its writes is
        // two requests (archive, then catalog entry), of which only the
        // failed one may be repeated.
        Some(_) => Ok(Arc::new(glacier::GlacierStore::new(config, bucket, policy, credentials)?)),
    }
}

/// The vault of a `storage: glacier` config, for the commands that
/// administer the vault itself (Vault Lock, catalog rebuild).
pub async fn open_vault(config: &Config) -> Result<glacier::GlacierStore> {
    if config.vault.is_none() {
        return Err(crate::error::Error::Config(
            "this command needs a vault: set storage: glacier and vault in the plugin config".to_string(),
        ));
    }
    let (bucket, policy, credentials) = bucket(config).await?;
    glacier::GlacierStore::new(config, bucket, policy, credentials)
}

/// The bucket with retries, the retry policy of the config, and the
/// credentials (set up once: a vault store signs with the same).
async fn bucket(config: &Config) -> Result<(Arc<dyn Store>, retry::RetryPolicy, SharedCredentialsProvider)> {
    let policy = retry::RetryPolicy {
        max_attempts: config.retry_max_attempts,
        budget: config.retry_time_budget,
        ..retry::RetryPolicy::default()
    };
    let credentials = s3::credentials(config).await;
    let bucket = Arc::new(retry::Retrying::new(Arc::new(s3::S3Store::new(config, credentials.clone())?), policy));
    Ok((bucket, policy, credentials))
}

/// Every key under `prefix`, all pages.
pub async fn list_keys(store: &dyn Store, prefix: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut next = None;
    loop {
        let page = store.list_page(prefix, next, None).await?;
        keys.extend(page.objects.into_iter().map(|o| o.key));
        match page.next {
            Some(token) => next = Some(token),
            None => return Ok(keys),
        }
    }
}

/// Deletes every object under `prefix`, a listing page at a time so memory
/// stays flat however many objects there are. Returns how many were deleted.
///
/// Cold payloads go first, everything readable after: a vault archive
/// whose deletion a retention lock refuses then stops the delete before the
/// backup's metadata is touched (or, deferred, keeps its catalog entry).
pub async fn delete_prefix(store: &dyn Store, prefix: &str) -> Result<u64> {
    let mut deleted = 0;
    for cold in [true, false] {
        let mut next = None;
        loop {
            // A continuation token names the last key listed, so it stays
            // valid while the keys before it are deleted.
            let page = store.list_page(prefix, next, None).await?;
            let keys: Vec<String> = page.objects.into_iter().filter(|o| o.cold == cold).map(|o| o.key).collect();
            for batch in keys.chunks(DELETE_BATCH) {
                store.delete_many(batch).await?;
                deleted += batch.len() as u64;
            }
            match page.next {
                Some(token) => next = Some(token),
                None => break,
            }
        }
    }
    Ok(deleted)
}
