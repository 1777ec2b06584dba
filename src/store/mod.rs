//! The storage abstraction: the few operations the engine and the commands
//! need, with one implementation per kind of service.
//!
//! A store moves whole in-memory parts and ranges (`Bytes`), because the
//! engine must hold every part until it is acknowledged (to retry it) and
//! every range until it is verified (to never emit a wrong byte); streaming
//! bodies would only hide that buffer, not remove it. A store knows no
//! protocol verb and no config file: it is opened from plain settings
//! ([`Settings`]), answers with typed facts and typed errors, and leaves
//! every sentence an operator reads to the commands.
//!
//! - [`s3`]: Amazon S3 and S3-compatible services; [`glacier`]: a Glacier
//!   vault for payloads composed with an S3 bucket for everything else;
//!   [`memory`]: an in-memory store for the engine's and commands' unit
//!   tests. [`aws`] holds what both AWS clients share (HTTP, proxy, TLS,
//!   credentials, error classification); [`retry`] the one retry policy;
//!   [`paging`] the one way to walk a paged listing; [`buffers`] the
//!   download buffers reused within a process.

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::{LockMode, RestoreTier};
use crate::error::{Error, Result};

pub mod aws;
pub mod buffers;
#[doc(hidden)]
pub mod conformance;
pub mod glacier;
pub mod memory;
pub mod paging;
pub mod retry;
pub mod s3;

pub use retry::RetryPolicy;

/// An object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// Stored where it may need a restore before it can be read (an archived
    /// storage class, a vault); `false` means readable now. Ask
    /// [`Store::object_state`] about cold objects.
    pub cold: bool,
    /// When it was last written, as the service says (a vault archive: its
    /// catalog entry's). A backup's last activity is its newest object.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// A multipart upload not yet completed or aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    /// When it was started, as the service says.
    pub initiated: Option<chrono::DateTime<chrono::Utc>>,
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

/// Whether an object can be read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Readable now (instant-access storage).
    Ready,
    /// Archived, and no restore asked for (or its copy has expired).
    Archived,
    /// Archived; the last restore failed, for this reason.
    Failed(String),
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

/// Where an object is stored: an S3 storage class, or a vault.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Storage {
    /// A storage class (`GLACIER`, `DEEP_ARCHIVE`, ...), and the archive
    /// tier of Intelligent-Tiering when it has one.
    Class { class: String, archive_tier: Option<String> },
    /// An archive in this Glacier vault.
    Vault(String),
}

/// An object's readiness and where it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectState {
    pub readiness: Readiness,
    pub storage: Storage,
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

/// How long a restored copy stays readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreLifetime {
    /// The days the request asked for.
    Days(u32),
    /// This many hours after each retrieval job ends (a vault).
    HoursAfterJob(u32),
}

/// Where the credentials come from (never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// The static keys of the settings; the key id masked.
    Static { access_key_id: String },
    /// The AWS default chain: the provider that answered, the key id
    /// masked, and whether they are temporary.
    Chain { provider: String, access_key_id: String, temporary: bool },
}

/// What a store found (and made) beyond the bucket when asked to prepare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// The vault, as DescribeVault reports it; `created` when this call
    /// created it.
    Vault { description: VaultDescription, created: bool },
    /// The vault's lock (`None`: no lock policy), or why it is unknown.
    VaultLock(std::result::Result<Option<LockStatus>, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultDescription {
    pub name: String,
    pub arn: Option<String>,
    pub created_at: Option<String>,
    pub archives: i64,
    pub bytes: i64,
    pub last_inventory: Option<String>,
}

/// A vault lock as GetVaultLock reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockStatus {
    pub state: String,
    pub policy: String,
    pub creation_date: Option<String>,
    pub expiration_date: Option<String>,
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

/// Bytes of one object, the object's total size, its user metadata, and
/// what identifies this version of it (its ETag): every range of one
/// restore must come from the same version.
#[derive(Debug)]
pub struct Fetched {
    pub data: Bytes,
    pub total_size: u64,
    pub metadata: Metadata,
    pub etag: Option<String>,
}

impl Fetched {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// An object as a lookup (HEAD) reports it, without its bytes: enough to
/// check its size and integrity record without reading it, whether it is
/// archived or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    pub metadata: Metadata,
    /// The service's ETag, when it has one (`"<md5>-<parts>"` for an S3
    /// multipart object).
    pub etag: Option<String>,
    /// The service's full-object CRC-64/NVME of the bytes, when it keeps
    /// one (AWS; objects written with `checksums: crc64nvme`) and the store
    /// was asked to look it up (`verify: available`).
    pub full_crc64: Option<u64>,
}

impl ObjectHead {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a [`Store::delete_many`] could not do.
#[derive(Debug, Default)]
pub struct DeleteOutcome {
    /// Keys a retention lock refused to delete (kind
    /// [`crate::error::Kind::RetentionLocked`]), with the refusal.
    pub refused: Vec<(String, Error)>,
    /// Keys not attempted because the store stopped at a refusal.
    pub untouched: Vec<String>,
    /// Keys kept for another reason (a damaged catalog entry, an upload
    /// only an inventory can settle), with the reason.
    pub kept: Vec<(String, String)>,
}

/// The Object Lock state of one object version, as the service reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    /// The retention mode and the date it ends; `None`: no retention.
    pub retention: Option<(LockMode, chrono::DateTime<chrono::Utc>)>,
    pub legal_hold: bool,
}

impl LockState {
    /// Whether a delete of this version is refused at `now` (without a
    /// GOVERNANCE bypass).
    pub fn locked_at(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.legal_hold || self.retention.is_some_and(|(_, until)| until > now)
    }
}

/// Versioning and Object Lock of the bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketLock {
    /// `Enabled`, `Suspended`, or `None` (never enabled, or the service
    /// does not implement versioning).
    pub versioning: Option<String>,
    /// Object Lock is enabled on the bucket.
    pub lock_enabled: bool,
    /// The bucket's default retention: mode and period in words (`30
    /// days`), applied by the service to every new object version.
    pub default_retention: Option<(String, String)>,
}

impl BucketLock {
    /// Objects have versions (a suspended bucket keeps the old ones).
    pub fn versioned(&self) -> bool {
        self.versioning.is_some()
    }
}

/// One version of an object, or a delete marker, as a version listing
/// shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectVersion {
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    /// The current version of its key.
    pub latest: bool,
}

/// One page of a version listing, and the (key, version id) markers of
/// the next.
#[derive(Debug, Default)]
pub struct VersionPage {
    pub versions: Vec<ObjectVersion>,
    pub next: Option<(String, String)>,
}

/// What [`Store::recover`] did.
#[derive(Debug, Default)]
pub struct Recovered {
    pub settled: u64,
    pub left: Vec<(String, String)>,
}

/// The most keys one `delete_many` call takes (S3's DeleteObjects limit).
pub const DELETE_BATCH: usize = 1000;

/// Metadata through which a store hands over the SHA-256 tree hash of a
/// whole object it read (a Glacier archive), for the engine to check before
/// the last bytes go out.
pub const TREE_HASH_META: &str = "gpbackup-tree-hash";

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
    /// returns no bytes. Kind `NotFound` when there is no object, `Archived`
    /// when it must be restored (thawed) first.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched>;

    /// The object's size, user metadata and ETag, without its bytes (also
    /// of an archived object). Kind `NotFound` when there is no object.
    async fn head(&self, key: &str) -> Result<ObjectHead>;

    /// Whether the object can be read now, and where it is stored.
    /// Kind `NotFound` when there is no object.
    async fn object_state(&self, key: &str) -> Result<ObjectState>;

    /// Asks for a readable copy of an archived object for `days` days.
    /// Never starts a second restore of an object that has one under way or
    /// is readable already.
    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested>;

    /// Where the credentials come from; resolves them, so a missing or
    /// broken source fails here.
    async fn credentials_source(&self) -> Result<CredentialSource>;

    /// One page (at most `limit` objects, or the service's page size) of
    /// the objects whose keys start with `prefix`, in key order.
    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage>;

    /// Deletes up to [`DELETE_BATCH`] keys; deleting a missing key succeeds.
    /// Keys a retention lock refuses are reported, not failed; a store may
    /// stop at the first refusal and report the rest untouched.
    async fn delete_many(&self, keys: &[String]) -> Result<DeleteOutcome>;

    /// Aborts an upload left open by another process; an upload that is
    /// already gone counts as aborted.
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()>;

    /// The open uploads under `prefix`, or `None` when the service cannot
    /// list them.
    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<OpenUpload>>>;

    /// How long a restored copy stays readable when `days` are asked for.
    fn restore_lifetime(&self, days: u32) -> RestoreLifetime {
        RestoreLifetime::Days(days)
    }

    /// `Some(size)`: every part of an object of `class` but the last must
    /// be exactly `size` bytes (a Glacier vault); `None`: parts may grow as
    /// the stream does.
    fn fixed_part_size(&self, _class: ObjectClass) -> Option<u64> {
        None
    }

    /// Checks what the store needs besides the bucket (a vault) and, with
    /// `create`, creates what is missing; what it found, for `check` and
    /// the setup log.
    async fn prepare(&self, _create: bool) -> Result<Vec<Fact>> {
        Ok(Vec::new())
    }

    /// Keeps `key`, whose deletion a retention lock refused, for a later
    /// `purge`, and deletes what may go of it meanwhile.
    async fn defer_delete(&self, key: &str) -> Result<()> {
        Err(Error::service(format!("{} cannot be kept for a later delete here", self.url(key))))
    }

    /// Keys under `prefix` kept by [`Store::defer_delete`].
    async fn deferred_deletes(&self, _prefix: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Stores a probe (a check's object, never part of a backup) in one
    /// request, without the Object Lock backups get.
    async fn put_probe(&self, key: &str, data: Bytes, class: ObjectClass) -> Result<()> {
        self.put(key, data, &Vec::new(), class).await
    }

    /// The bucket's versioning and Object Lock; a store without them says
    /// so (the default).
    async fn bucket_lock(&self) -> Result<BucketLock> {
        Ok(BucketLock::default())
    }

    /// One page of the versions and delete markers under `prefix`, in key
    /// order, the newest version of a key first.
    async fn list_versions_page(&self, prefix: &str, _next: Option<(String, String)>) -> Result<VersionPage> {
        Err(Error::service(format!("{} keeps no object versions", self.url(prefix))))
    }

    /// Deletes these versions (key, version id), up to [`DELETE_BATCH`];
    /// `bypass_governance` sends the GOVERNANCE bypass. Versions a lock
    /// refuses are reported in `refused` (keyed `key?versionId=id`).
    async fn delete_versions(&self, versions: &[(String, String)], _bypass_governance: bool) -> Result<DeleteOutcome> {
        match versions.first() {
            None => Ok(DeleteOutcome::default()),
            Some((key, _)) => Err(Error::service(format!("{} keeps no object versions", self.url(key)))),
        }
    }

    /// The Object Lock state of `key` (its current version, or `version`).
    async fn lock_state(&self, _key: &str, _version: Option<&str>) -> Result<LockState> {
        Ok(LockState::default())
    }

    /// Sets the retention of `key` (the current version, or `version`);
    /// shortening GOVERNANCE needs `bypass_governance`.
    async fn set_retention(
        &self,
        key: &str,
        _version: Option<&str>,
        _mode: LockMode,
        _until: chrono::DateTime<chrono::Utc>,
        _bypass_governance: bool,
    ) -> Result<()> {
        Err(Error::service(format!("{} cannot hold an Object Lock retention", self.url(key))))
    }

    /// Sets or lifts the legal hold of `key` (the current version, or `version`).
    async fn set_legal_hold(&self, key: &str, _version: Option<&str>, _on: bool) -> Result<()> {
        Err(Error::service(format!("{} cannot hold an Object Lock legal hold", self.url(key))))
    }

    /// Finishes or undoes what interrupted writes under `prefix` left
    /// half-done beyond open uploads (a vault archive not yet named):
    /// how many were settled, and what is left with the reason.
    async fn recover(&self, _prefix: &str) -> Result<Recovered> {
        Ok(Recovered::default())
    }
}

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

/// Administration of a Glacier vault itself (Vault Lock, catalog rebuild),
/// for the commands that exist for it.
#[async_trait]
pub trait VaultAdmin: Send + Sync {
    fn vault_name(&self) -> &str;
    /// The vault's lock, or `None` when it has no lock policy.
    async fn lock_status(&self) -> Result<Option<LockStatus>>;
    /// Installs `policy` as the vault's lock policy (state InProgress);
    /// returns the lock id.
    async fn lock_initiate(&self, policy: &str) -> Result<String>;
    async fn lock_complete(&self, lock_id: &str) -> Result<()>;
    async fn lock_abort(&self) -> Result<()>;
    /// Starts an inventory-retrieval job (or finds one under way or done);
    /// returns its id.
    async fn inventory_job(&self) -> Result<String>;
    /// `None` while the job runs; the inventory once it is done.
    async fn inventory(&self, job_id: &str) -> Result<Option<Inventory>>;
    /// Settles the catalog under `prefix` against an inventory: every
    /// archive of this plugin named by exactly one entry.
    async fn rebuild(&self, archives: &[InventoryArchive], prefix: &str) -> Result<Rebuilt>;
}

/// What [`VaultAdmin::rebuild`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Archives in the inventory, and those of this plugin under the prefix.
    pub archives: u64,
    pub ours: u64,
    /// Already named by their entry.
    pub named: u64,
    /// Entries written again (lost), or over damaged ones.
    pub written: u64,
    pub repaired: u64,
    /// Archives of interrupted uploads, deleted.
    pub discarded: u64,
    /// Archives replaced by a newer one of their key, kept for `purge`.
    pub retired: u64,
}

/// A vault inventory: a snapshot of the vault as of its date (AWS makes
/// one about once a day), so archives uploaded since are not in it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inventory {
    /// When the service took the snapshot (ISO 8601, UTC), if it says.
    #[serde(default)]
    pub inventory_date: Option<String>,
    pub archive_list: Vec<InventoryArchive>,
}

/// One archive of a vault inventory.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InventoryArchive {
    pub archive_id: String,
    #[serde(default)]
    pub archive_description: String,
    #[serde(default)]
    pub creation_date: String,
    pub size: u64,
    #[serde(rename = "SHA256TreeHash")]
    pub sha256_tree_hash: String,
}

/// Everything a store is opened from: the bucket's settings and, for
/// `storage: glacier`, the vault's.
#[derive(Debug, Clone)]
pub struct Settings {
    pub s3: s3::S3Settings,
    pub vault: Option<glacier::VaultSettings>,
    pub retry: RetryPolicy,
}

/// The store the settings select, with retries. Opening sends no request.
pub async fn open(settings: &Settings) -> Result<Arc<dyn Store>> {
    let (bucket, credentials) = bucket(settings).await?;
    match &settings.vault {
        None => Ok(bucket),
        // The vault store retries its own requests: one of its writes is
        // two requests (archive, then catalog entry), of which only the
        // failed one may be repeated.
        Some(vault) => {
            Ok(Arc::new(glacier::GlacierStore::new(vault, &settings.s3, bucket, settings.retry, credentials)?))
        }
    }
}

/// The vault of the settings, for the commands that administer it; `None`
/// when the settings name no vault.
pub async fn open_vault(settings: &Settings) -> Result<Option<Arc<dyn VaultAdmin>>> {
    let Some(vault) = &settings.vault else { return Ok(None) };
    let (bucket, credentials) = bucket(settings).await?;
    Ok(Some(Arc::new(glacier::GlacierStore::new(vault, &settings.s3, bucket, settings.retry, credentials)?)))
}

/// The bucket with retries, and its credentials (a vault store signs with
/// the same).
async fn bucket(settings: &Settings) -> Result<(Arc<dyn Store>, aws::Credentials)> {
    let credentials = aws::credentials(&settings.s3.connection).await;
    let s3 = s3::S3Store::new(&settings.s3, credentials.clone())?;
    Ok((Arc::new(retry::Retrying::new(Arc::new(s3), settings.retry)), credentials))
}
