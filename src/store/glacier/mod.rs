//! Amazon Glacier vaults (the 2012 vault API) for payloads, composed with
//! the bucket for everything else.
//!
//! `storage: glacier` sends `backup_data` payloads to a vault and keeps
//! everything gprestore reads synchronously (metadata, TOCs, reports,
//! integrity manifests) and the [`catalog`] in the bucket. To the engine
//! this is one more [`Store`]: a payload key is an archive whose catalog
//! entry sits at `<key>.gpbackup_vault`; listings show the payload key
//! (cold until thawed); a read needs a finished archive-retrieval job,
//! which `thaw` starts through [`Store::request_restore`].
//!
//! Every archive is checked with the SHA-256 [`treehash`] both ways: each
//! upload and part carries ours and must come back with the same from the
//! service; each downloaded range that is a node of the archive's tree is
//! checked against the hash the service sends with it; and the engine checks
//! the whole archive's tree hash (handed over in the metadata as
//! [`TREE_HASH_META`]) before it writes the last bytes.
//!
//! - [`client`]: the SDK client and the vault-scoped request builder;
//! - [`archives`]: single-request uploads, ranged reads, deletes;
//! - [`multipart`]: multipart archives; [`jobs`]: retrieval jobs;
//! - [`admin`]: the vault itself (describe, create, lock, inventory);
//! - [`delete`]: deletes through the catalog (archive, then its entry).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use super::aws::Credentials;
use super::retry::{Retry, RetryPolicy};
use super::s3::S3Settings;
use super::{
    CredentialSource, DeleteOutcome, Fact, Fetched, ListPage, Metadata, MultipartUpload, ObjectClass, ObjectHead,
    ObjectMeta, ObjectState, Recovered, RestoreLifetime, RestoreRequested, Storage, Store, TREE_HASH_META, paging,
};
use crate::config::RestoreTier;
use crate::error::{Error, Kind, Result};
use crate::layout::{self, EntryTag};

mod admin;
mod archives;
mod bucket_files;
pub mod catalog;
mod client;
mod commit;
mod delete;
mod jobs;
mod multipart;
mod rebuild;
pub mod treehash;

use catalog::Entry;

/// How long Glacier keeps a finished job's output (at least).
const JOB_OUTPUT_HOURS: u32 = 24;
/// Catalog entries read at once while listing.
const LIST_CONCURRENCY: usize = 16;

/// Everything the vault needs besides the bucket's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSettings {
    pub name: String,
    /// `-` (the account that signs the requests) or a 12-digit account id.
    pub account_id: String,
    /// Full URL, or `None` for AWS's Glacier endpoint of the region.
    pub endpoint: Option<String>,
    /// Multipart part size: a power of two MiB from 1 MiB to 4 GiB.
    pub part_size: u64,
}

pub struct GlacierStore(Arc<Vault>);

/// The vault, shared by the store and its multipart uploads.
struct Vault {
    bucket: Arc<dyn Store>,
    client: aws_sdk_glacier::Client,
    settings: VaultSettings,
    region: String,
    /// The service, for messages.
    server: String,
    retry: Retry,
    /// Catalog entries read by this process (`None`: the key has none).
    entries: Mutex<HashMap<String, Option<Arc<Entry>>>>,
    /// Jobs seen finished by this process, with their completion time.
    finished_jobs: Mutex<HashMap<String, jobs::Finished>>,
    /// Whether the vault exists, once a delete had to ask.
    vault_exists: tokio::sync::OnceCell<bool>,
    /// The vault's live retrieval jobs by archive id, listed once.
    live_jobs: tokio::sync::OnceCell<HashMap<String, String>>,
    /// Whether the bucket keeps versions, once a delete asked.
    bucket_versioned: tokio::sync::OnceCell<bool>,
}

impl GlacierStore {
    /// The store; sends no request.
    pub fn new(
        settings: &VaultSettings,
        s3: &S3Settings,
        bucket: Arc<dyn Store>,
        policy: RetryPolicy,
        credentials: Credentials,
    ) -> Result<GlacierStore> {
        let server = match &settings.endpoint {
            Some(e) => format!("the Glacier service at {e}"),
            None => format!("AWS Glacier in {}", s3.connection.region),
        };
        Ok(GlacierStore(Arc::new(Vault {
            bucket,
            client: client::build(settings, &s3.connection, &credentials)?,
            settings: settings.clone(),
            region: s3.connection.region.clone(),
            server,
            retry: Retry::new(policy),
            entries: Mutex::new(HashMap::new()),
            finished_jobs: Mutex::new(HashMap::new()),
            vault_exists: tokio::sync::OnceCell::new(),
            live_jobs: tokio::sync::OnceCell::new(),
            bucket_versioned: tokio::sync::OnceCell::new(),
        })))
    }
}

impl Vault {
    /// `glacier://<vault>/<key>`, for messages about archives.
    fn vault_url(&self, key: &str) -> String {
        format!("glacier://{}/{key}", self.settings.name)
    }

    /// The catalog entry of `key`, or `None` when it has none (a file in the
    /// bucket, or nothing). Remembered for the life of the process.
    async fn entry(&self, key: &str) -> Result<Option<Arc<Entry>>> {
        if layout::is_sidecar(key) {
            return Ok(None);
        }
        if let Some(known) = self.entries.lock().expect("entries lock").get(key) {
            return Ok(known.clone());
        }
        let entry = fetch_entry(&*self.bucket, key).await?;
        self.remember(key, entry.clone());
        Ok(entry)
    }

    fn remember(&self, key: &str, entry: Option<Arc<Entry>>) {
        self.entries.lock().expect("entries lock").insert(key.to_string(), entry);
    }

    async fn write_entry(&self, entry: &Entry) -> Result<()> {
        let entry_key = layout::catalog_key(&entry.key);
        self.bucket.put(&entry_key, Bytes::from(entry.to_json()), &Vec::new(), ObjectClass::Metadata).await?;
        self.remember(&entry.key, Some(Arc::new(entry.clone())));
        Ok(())
    }

    fn forget(&self, key: &str) {
        self.entries.lock().expect("entries lock").remove(key);
    }

    /// An empty payload: an entry without an archive (Glacier refuses
    /// empty archives); an archive the key named before is retired.
    async fn record_empty(&self, entry: Entry) -> Result<()> {
        let old = fetch_entry(&*self.bucket, &entry.key).await?;
        self.write_entry(&entry).await?;
        if let Some(old) = old {
            self.retire(&old).await;
        }
        Ok(())
    }

    /// A payload in one piece: a multipart upload of one part where the
    /// service has them (see [`multipart`]), else one UploadArchive.
    async fn upload_whole(self: &Arc<Self>, key: &str, data: Bytes, metadata: &Metadata) -> Result<()> {
        let upload = match multipart::start(self.clone(), key, metadata).await {
            Ok(upload) => upload,
            // No multipart uploads here (moto): one request.
            Err(e) if e.is(Kind::NotFound) => return self.upload_archive(key, data, metadata).await,
            Err(e) => return Err(e),
        };
        let result = async {
            let part = upload.put_part(1, data).await?;
            upload.complete(vec![part]).await
        }
        .await;
        if result.is_err()
            && let Err(e) = upload.abort().await
        {
            log::warn!("could not abort the failed upload of {}: {e}", self.vault_url(key));
        }
        result
    }
}

/// The catalog entry of `key` as stored in `bucket`, or `None`.
async fn fetch_entry(bucket: &dyn Store, key: &str) -> Result<Option<Arc<Entry>>> {
    let entry_key = layout::catalog_key(key);
    match bucket.get_range(&entry_key, 0..(1 << 20)).await {
        Ok(fetched) => Ok(Some(Arc::new(Entry::parse(&fetched.data, &bucket.url(&entry_key))?))),
        Err(e) if e.is(Kind::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for GlacierStore {
    fn url(&self, key: &str) -> String {
        self.0.bucket.url(key)
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
        let vault = &self.0;
        if class == ObjectClass::Metadata {
            return vault.bucket.put(key, data, metadata, class).await;
        }
        if data.is_empty() {
            // Glacier refuses empty archives: the entry alone says "empty".
            let mut entry = Entry::new(key, &vault.settings, &vault.region);
            entry.metadata = metadata.clone();
            return vault.record_empty(entry).await;
        }
        vault.upload_whole(key, data, metadata).await
    }

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        if class == ObjectClass::Metadata {
            return self.0.bucket.start_multipart(key, metadata, class).await;
        }
        multipart::start(self.0.clone(), key, metadata).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        match self.0.entry(key).await? {
            Some(entry) => {
                self.0.mine(&entry)?;
                self.0.read_archive(&entry, range).await
            }
            None => self.0.bucket.get_range(key, range).await,
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectHead> {
        match self.0.entry(key).await? {
            // The entry says all a lookup can: the archive's size, the
            // integrity record stored with it, and its tree hash.
            Some(entry) => {
                self.0.mine(&entry)?;
                let mut metadata = entry.metadata.clone();
                if entry.archive_id.is_some() {
                    metadata.push((TREE_HASH_META.to_string(), entry.tree_hash.clone()));
                }
                Ok(ObjectHead { size: entry.size, metadata, etag: None, full_crc64: None })
            }
            None => self.0.bucket.head(key).await,
        }
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        match self.0.entry(key).await? {
            Some(entry) => {
                self.0.mine(&entry)?;
                Ok(ObjectState {
                    readiness: self.0.readiness(&entry).await?,
                    storage: Storage::Vault(entry.vault.clone()),
                })
            }
            None => self.0.bucket.object_state(key).await,
        }
    }

    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        match self.0.entry(key).await? {
            Some(entry) => {
                self.0.mine(&entry)?;
                self.0.request_retrieval(&entry, tier).await
            }
            None => self.0.bucket.request_restore(key, tier, days).await,
        }
    }

    async fn credentials_source(&self) -> Result<CredentialSource> {
        self.0.bucket.credentials_source().await
    }

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        let page = self.0.bucket.list_page(prefix, next, limit).await?;
        // Catalog entries stand for their payloads: read them (a few at a
        // time) and remember them, so the thaw survey or delete that
        // follows does not read them again. An entry deleted since the
        // listing is gone, not an error.
        let (entries, mut objects): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
            page.objects.into_iter().partition(|o| layout::catalog_owner(&o.key).is_some());
        let vault = &self.0;
        let read: Vec<(ObjectMeta, std::result::Result<Option<Arc<Entry>>, Error>)> = futures::stream::iter(entries)
            .map(|o| async move {
                let key = layout::catalog_owner(&o.key).unwrap_or_default().to_string();
                match fetch_entry(&*vault.bucket, &key).await {
                    Err(e) if !e.is(Kind::Integrity) => Err(e),
                    read => Ok((o, read)),
                }
            })
            .buffer_unordered(LIST_CONCURRENCY)
            .try_collect()
            .await?;
        for (object, entry) in read {
            let key = layout::catalog_owner(&object.key).unwrap_or_default().to_string();
            match entry {
                Ok(entry) => {
                    if let Some(entry) = &entry {
                        objects.push(ObjectMeta {
                            key: key.clone(),
                            size: entry.size,
                            cold: entry.archive_id.is_some(),
                            // The entry is written once its archive is stored.
                            last_modified: object.last_modified,
                        });
                    }
                    vault.remember(&key, entry);
                }
                // A damaged entry is shown as the file it is, and said so:
                // the rest of the listing stands.
                Err(damaged) => {
                    log::warn!("{}; run rebuild-catalog to write it again", damaged.message());
                    objects.push(object);
                }
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ListPage { objects, next: page.next })
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteOutcome> {
        self.0.delete_keys(keys).await
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        // The journal does not say which service an upload belongs to: an
        // id the vault does not know is the bucket's (or gone already).
        if self.0.abort_vault_upload(key, upload_id).await? {
            Ok(())
        } else {
            self.0.bucket.abort_upload(key, upload_id).await
        }
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<crate::store::OpenUpload>>> {
        let mut uploads: Vec<crate::store::OpenUpload> =
            self.0.vault_uploads().await?.into_iter().filter(|u| u.key.starts_with(prefix)).collect();
        if let Some(bucket) = self.0.bucket.open_uploads(prefix).await? {
            uploads.extend(bucket);
        }
        Ok(Some(uploads))
    }

    fn restore_lifetime(&self, _days: u32) -> RestoreLifetime {
        RestoreLifetime::HoursAfterJob(JOB_OUTPUT_HOURS)
    }

    fn fixed_part_size(&self, class: ObjectClass) -> Option<u64> {
        // Only archives: files in the bucket follow S3's rules.
        (class == ObjectClass::Payload).then_some(self.0.settings.part_size)
    }

    async fn prepare(&self, create: bool) -> Result<Vec<Fact>> {
        self.0.prepare(create).await
    }

    async fn defer_delete(&self, key: &str) -> Result<()> {
        let Some(entry) = self.0.entry(key).await? else { return Ok(()) };
        if entry.delete_requested_at.is_none() {
            let mut deferred = (*entry).clone();
            deferred.delete_requested_at = Some(catalog::now());
            self.0.write_entry(&deferred).await?;
        }
        Ok(())
    }

    async fn recover(&self, prefix: &str) -> Result<Recovered> {
        let vault = &self.0;
        let mut recovered = Recovered::default();
        let mut pages = std::pin::pin!(paging::objects(&*vault.bucket, prefix));
        while let Some(page) = pages.try_next().await? {
            for object in page {
                let Some((_, EntryTag::Intent(_))) = layout::tagged_catalog_owner(&object.key) else { continue };
                let entry = match vault.read_entry_at(&object.key).await {
                    Ok(Some(entry)) => entry,
                    Ok(None) => continue,
                    Err(e) => {
                        recovered.left.push((object.key.clone(), e.message().to_string()));
                        continue;
                    }
                };
                match vault.recover(&object.key, &entry).await {
                    Ok(true) => recovered.settled += 1,
                    Ok(false) => recovered.left.push((
                        object.key.clone(),
                        "its archive, if any, can only be found by an inventory: run rebuild-catalog".to_string(),
                    )),
                    Err(e) => recovered.left.push((object.key.clone(), e.message().to_string())),
                }
            }
        }
        Ok(recovered)
    }

    async fn deferred_deletes(&self, prefix: &str) -> Result<Vec<String>> {
        let vault = &self.0;
        let mut keys = Vec::new();
        let mut pages = std::pin::pin!(paging::objects(&*vault.bucket, prefix));
        while let Some(page) = pages.try_next().await? {
            for object in page {
                if let Some((_, EntryTag::Retired(_))) = layout::tagged_catalog_owner(&object.key) {
                    keys.push(object.key);
                } else if let Some(key) = layout::catalog_owner(&object.key)
                    && let Ok(Some(entry)) = vault.entry(key).await
                    && entry.delete_requested_at.is_some()
                {
                    keys.push(key.to_string());
                }
            }
        }
        Ok(keys)
    }
}

impl Vault {
    /// An entry of another vault (a config whose `vault` was changed or
    /// mistyped since the backup) is never acted on through this one.
    fn mine(&self, entry: &Entry) -> Result<()> {
        if entry.vault == self.settings.name {
            return Ok(());
        }
        Err(Error::config(format!(
            "the catalog entry of {} names vault {}, but the plugin config names vault {}; nothing was done with \
             it",
            self.bucket.url(&entry.key),
            entry.vault,
            self.settings.name
        ))
        .with_code(Some(VAULT_MISMATCH)))
    }
}

/// The code of the error [`Vault::mine`] returns.
pub const VAULT_MISMATCH: &str = "VaultMismatch";

/// The vault's own administration, for the commands that exist for it.
#[async_trait]
impl super::VaultAdmin for GlacierStore {
    fn vault_name(&self) -> &str {
        &self.0.settings.name
    }

    async fn lock_status(&self) -> Result<Option<super::LockStatus>> {
        self.0.lock_status().await
    }

    async fn lock_initiate(&self, policy: &str) -> Result<String> {
        self.0.lock_initiate(policy).await
    }

    async fn lock_complete(&self, lock_id: &str) -> Result<()> {
        self.0.lock_complete(lock_id).await
    }

    async fn lock_abort(&self) -> Result<()> {
        self.0.lock_abort().await
    }

    async fn inventory_job(&self) -> Result<String> {
        self.0.inventory_job().await
    }

    async fn inventory(&self, job_id: &str) -> Result<Option<super::Inventory>> {
        self.0.inventory(job_id).await
    }

    async fn rebuild(&self, archives: &[super::InventoryArchive], prefix: &str) -> Result<super::Rebuilt> {
        self.0.rebuild(archives, prefix).await
    }
}
