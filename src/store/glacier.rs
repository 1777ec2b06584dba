//! Amazon Glacier vaults (the 2012 vault API) through aws-sdk-glacier, with
//! the bucket as the hot tier.
//!
//! `storage: glacier` sends `backup_data` payloads to a vault and keeps
//! everything gprestore reads synchronously (metadata, TOCs, reports,
//! integrity manifests) and the [`catalog`](super::catalog) in the bucket.
//! To the commands this is one more [`Store`]: a payload key is an archive
//! whose catalog entry sits at `<key>.gpbackup_vault`; listings show the
//! payload key (cold until thawed); a read needs a finished
//! archive-retrieval job, which `thaw` starts through
//! [`Store::request_restore`].
//!
//! Every archive is checked with the SHA-256 tree hash both ways: each
//! upload and part carries ours and must come back with the same from the
//! service; each downloaded range that is a node of the archive's tree is
//! checked against the hash the service sends with it; and the engine checks
//! the whole archive's tree hash (handed over in the metadata as
//! [`TREE_HASH_META`]) before it writes the last bytes.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_glacier::Client;
use aws_sdk_glacier::config::{Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_glacier::error::ProvideErrorMetadata;
use aws_sdk_glacier::primitives::ByteStream;
use aws_sdk_glacier::types::{JobParameters, StatusCode, VaultLockPolicy};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use sha2::Digest as _;

use super::catalog::{self, Entry, Retrieval};
use super::retry::{Retrier, RetryPolicy};
use super::s3::storage_error;
use super::{
    Fetched, ListPage, Metadata, MultipartUpload, ObjectClass, ObjectMeta, ObjectState, PartTag, Readiness,
    RestoreRequested, RestoreTier, Store,
};
use crate::config::{Config, OnRetentionLocked, Vault};
use crate::engine::integrity::{MANIFEST_SUFFIX, TREE_HASH_META};
use crate::error::{Error, Result};
use crate::treehash::{self, Hash};

/// How long Glacier keeps a finished job's output (at least).
const JOB_OUTPUT_HOURS: i64 = 24;
/// Job descriptions this plugin writes start with this.
const JOB_DESCRIPTION: &str = "gpbkp-thaw";
/// Catalog entries read at once while listing.
const LIST_CONCURRENCY: usize = 16;

/// The builder of operation `$op` on the store's vault (`$store` has the
/// `client` and the `vault` config).
macro_rules! on_vault {
    ($store:expr, $op:ident) => {
        $store.client.$op().account_id(&$store.vault.account_id).vault_name(&$store.vault.name)
    };
}

pub struct GlacierStore {
    bucket: Arc<dyn Store>,
    client: Client,
    vault: Vault,
    region: String,
    server: String,
    retry: Retrier,
    /// Catalog entries read by this process (`None`: the key has none).
    entries: Mutex<HashMap<String, Option<Arc<Entry>>>>,
    /// Jobs seen finished by this process, with their completion time.
    finished_jobs: Mutex<HashMap<String, Option<DateTime<Utc>>>>,
    /// The vault's live retrieval jobs by archive id, listed once.
    live_jobs: tokio::sync::OnceCell<HashMap<String, String>>,
}

/// A vault lock as GetVaultLock reports it.
#[derive(Debug, Clone)]
pub struct LockStatus {
    pub state: String,
    pub policy: String,
    pub creation_date: Option<String>,
    pub expiration_date: Option<String>,
}

/// The state of a retrieval job.
enum JobState {
    Gone,
    Running,
    Failed(String),
    Done(Option<DateTime<Utc>>),
}

impl GlacierStore {
    pub fn new(
        config: &Config,
        bucket: Arc<dyn Store>,
        policy: RetryPolicy,
        credentials: SharedCredentialsProvider,
    ) -> Result<GlacierStore> {
        let vault = config.vault.clone().expect("a vault store needs a vault config");
        let mut builder = aws_sdk_glacier::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .http_client(super::s3::http_client(config, vault.endpoint.as_deref())?)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .read_timeout(config.read_timeout)
                    .build(),
            )
            .credentials_provider(credentials)
            .interceptor(SingleContentType);
        if let Some(endpoint) = &vault.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        let server = match &vault.endpoint {
            Some(e) => format!("the Glacier service at {e}"),
            None => format!("AWS Glacier in {}", config.region),
        };
        Ok(GlacierStore {
            bucket,
            client: Client::from_conf(builder.build()),
            vault,
            region: config.region.clone(),
            server,
            retry: Retrier::new(policy),
            entries: Mutex::new(HashMap::new()),
            finished_jobs: Mutex::new(HashMap::new()),
            live_jobs: tokio::sync::OnceCell::new(),
        })
    }

    /// `glacier://<vault>/<key>`, for messages about archives.
    fn vault_url(&self, key: &str) -> String {
        format!("glacier://{}/{key}", self.vault.name)
    }

    pub fn vault_name(&self) -> &str {
        &self.vault.name
    }

    /// The catalog entry of `key`, or `None` when it has none (a file in the
    /// bucket, or nothing). Remembered for the life of the process.
    async fn entry(&self, key: &str) -> Result<Option<Arc<Entry>>> {
        if key.ends_with(catalog::SUFFIX) || key.ends_with(MANIFEST_SUFFIX) {
            return Ok(None);
        }
        if let Some(known) = self.entries.lock().expect("entries lock").get(key) {
            return Ok(known.clone());
        }
        let entry = fetch_entry(&*self.bucket, key).await?;
        self.entries.lock().expect("entries lock").insert(key.to_string(), entry.clone());
        Ok(entry)
    }

    async fn write_entry(&self, entry: &Entry) -> Result<()> {
        let entry_key = catalog::entry_key(&entry.key);
        self.bucket.put(&entry_key, Bytes::from(entry.to_json()), &Vec::new(), ObjectClass::Metadata).await?;
        self.entries.lock().expect("entries lock").insert(entry.key.clone(), Some(Arc::new(entry.clone())));
        Ok(())
    }

    /// Records a new archive; if the entry cannot be written the archive is
    /// deleted again (an archive nobody can name is billed forever).
    async fn record(&self, entry: Entry) -> Result<()> {
        match self.write_entry(&entry).await {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Some(id) = &entry.archive_id
                    && let Err(del) = self.delete_archive(&entry.key, id).await
                {
                    crate::log::warn(&format!(
                        "archive {id} of {} has no catalog entry and could not be deleted: {del}",
                        entry.key
                    ));
                }
                Err(e)
            }
        }
    }

    async fn delete_archive(&self, key: &str, archive_id: &str) -> Result<()> {
        let what = format!("delete the archive of {}", self.vault_url(key));
        self.retry
            .run(&what, || async {
                match on_vault!(self, delete_archive).archive_id(archive_id).send().await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("AccessDeniedException") => Err(Error::Storage(format!(
                        "{RETENTION_DENIED}: the lock or access policy of vault {} refuses to delete the archive of \
                         {key}: {}",
                        self.vault.name,
                        e.message().unwrap_or("AccessDeniedException")
                    ))),
                    Err(e) => match storage_error(&what, &self.vault_url(key), e) {
                        // Deleting an archive that is gone is success.
                        Error::NotFound(_) => Ok(()),
                        other => Err(other),
                    },
                }
            })
            .await
    }

    async fn job_state(&self, job_id: &str) -> Result<JobState> {
        if let Some(done) = self.finished_jobs.lock().expect("jobs lock").get(job_id) {
            return Ok(JobState::Done(*done));
        }
        let what = format!("look up retrieval job {job_id} in vault {}", self.vault.name);
        let out =
            self.retry
                .run(&what, || async {
                    on_vault!(self, describe_job).job_id(job_id).send().await.map_err(|e| {
                        storage_error("look up retrieval job", &format!("{job_id} in {}", self.vault.name), e)
                    })
                })
                .await;
        let out = match out {
            Ok(out) => out,
            Err(Error::NotFound(_)) => return Ok(JobState::Gone),
            Err(e) => return Err(e),
        };
        Ok(match out.status_code() {
            Some(StatusCode::Succeeded) => {
                let done = out.completion_date().and_then(parse_date);
                self.finished_jobs.lock().expect("jobs lock").insert(job_id.to_string(), done);
                JobState::Done(done)
            }
            Some(StatusCode::Failed) => {
                JobState::Failed(out.status_message().unwrap_or("the service gave no reason").to_string())
            }
            _ => JobState::Running,
        })
    }

    /// Whether the output of a job finished at `done` has expired.
    fn expired(done: Option<DateTime<Utc>>) -> bool {
        done.is_some_and(|d| d + chrono::Duration::hours(JOB_OUTPUT_HOURS) < Utc::now())
    }

    async fn readiness(&self, entry: &Entry) -> Result<Readiness> {
        if entry.archive_id.is_none() {
            return Ok(Readiness::Ready);
        }
        let Some(retrieval) = &entry.retrieval else { return Ok(Readiness::Archived) };
        Ok(match self.job_state(&retrieval.job_id).await? {
            JobState::Running => Readiness::Restoring,
            JobState::Done(done) if !Self::expired(done) => {
                Readiness::Restored { until: done.map(|d| d + chrono::Duration::hours(JOB_OUTPUT_HOURS)) }
            }
            JobState::Failed(why) => {
                crate::log::warn(&format!(
                    "retrieval job {} of {} failed: {why}",
                    retrieval.job_id,
                    self.vault_url(&entry.key)
                ));
                Readiness::Archived
            }
            JobState::Done(_) | JobState::Gone => Readiness::Archived,
        })
    }

    /// A live retrieval job of `archive_id` started earlier (by a `thaw`
    /// that stopped before recording it), so none is paid for twice. The
    /// vault's job list is read once per process, not once per archive.
    async fn find_job(&self, archive_id: &str) -> Result<Option<String>> {
        let jobs = self.live_jobs.get_or_try_init(|| self.list_live_jobs()).await?;
        Ok(jobs.get(archive_id).cloned())
    }

    /// Archive id to job id, for the whole-archive retrievals that are
    /// running or whose output is still there.
    async fn list_live_jobs(&self) -> Result<HashMap<String, String>> {
        let mut live = HashMap::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .retry
                .run("list retrieval jobs", || async {
                    on_vault!(self, list_jobs)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| storage_error("list jobs of", &format!("vault {}", self.vault.name), e))
                })
                .await?;
            for job in out.job_list() {
                let usable = !matches!(job.status_code(), Some(StatusCode::Failed))
                    && !Self::expired(job.completion_date().and_then(parse_date))
                    && job.retrieval_byte_range().is_none_or(|r| is_whole(r, job.archive_size_in_bytes()));
                if let (true, Some(archive), Some(id)) = (usable, job.archive_id(), job.job_id()) {
                    live.insert(archive.to_string(), id.to_string());
                }
            }
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(live),
            }
        }
    }

    async fn upload_archive(&self, key: &str, data: Bytes, metadata: &Metadata) -> Result<()> {
        let description = catalog::describe(key, metadata)?;
        let tree = treehash::tree_hash(&data);
        let tree_hex = treehash::to_hex(&tree);
        let what = format!("upload to {}", self.vault_url(key));
        let out = self
            .retry
            .run(&what, || async {
                on_vault!(self, upload_archive)
                    .archive_description(&description)
                    .checksum(&tree_hex)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| storage_error("upload archive to", &self.vault_url(key), e))
            })
            .await?;
        check_echo(&self.server, &self.vault_url(key), out.checksum(), &tree, &data)?;
        let archive_id = out.archive_id().ok_or_else(|| {
            Error::Storage(format!("{} answered an upload of {key} without an archive id", self.server))
        })?;
        let mut entry = Entry::new(key, &self.vault, &self.region);
        entry.archive_id = Some(archive_id.to_string());
        entry.size = data.len() as u64;
        entry.tree_hash = tree_hex;
        entry.description = description;
        entry.metadata = metadata.clone();
        self.record(entry).await
    }

    async fn read_archive(&self, entry: &Entry, range: Range<u64>) -> Result<Fetched> {
        let mut metadata = entry.metadata.clone();
        metadata.push((TREE_HASH_META.to_string(), entry.tree_hash.clone()));
        let end = range.end.min(entry.size);
        let start = range.start.min(end);
        let Some(archive_id) = &entry.archive_id else {
            return Ok(Fetched { data: Bytes::new(), total_size: 0, metadata });
        };
        if start == end {
            return Ok(Fetched { data: Bytes::new(), total_size: entry.size, metadata });
        }
        let thaw = |why: &str| Error::Archived(format!("{} (archive {archive_id}) {why}", self.vault_url(&entry.key)));
        let Some(retrieval) = &entry.retrieval else { return Err(thaw("has not been thawed: no retrieval job")) };
        match self.readiness(entry).await? {
            Readiness::Restored { .. } => {}
            Readiness::Restoring => return Err(thaw(&format!("is still being retrieved (job {})", retrieval.job_id))),
            _ => return Err(thaw(&format!("is not retrievable: job {} failed, expired or is gone", retrieval.job_id))),
        }
        let what = format!("download bytes {start}..{end} of {}", self.vault_url(&entry.key));
        let (data, echoed) = self
            .retry
            .run(&what, || async {
                let out = on_vault!(self, get_job_output)
                    .job_id(&retrieval.job_id)
                    .range(format!("bytes={start}-{}", end - 1))
                    .send()
                    .await
                    .map_err(|e| match storage_error("download", &self.vault_url(&entry.key), e) {
                        Error::NotFound(_) => {
                            thaw(&format!("cannot be read: the output of job {} is gone (expired?)", retrieval.job_id))
                        }
                        other => other,
                    })?;
                // A partial answer starts at `start`; a whole one (some
                // emulators ignore Range) at 0.
                let skip = if out.status() == 206 || out.content_range().is_some() { 0 } else { start };
                let echoed = out.checksum().map(str::to_string);
                let data = read_body(out.body, skip, end - start).await.map_err(|e| {
                    Error::Transient(format!("download of {} broke off: {e}", self.vault_url(&entry.key)))
                })?;
                // A body that ends early is a broken connection: ask again.
                if data.len() as u64 != end - start {
                    return Err(Error::Transient(format!(
                        "short read from {}: bytes {start}..{end} returned {} bytes",
                        self.vault_url(&entry.key),
                        data.len()
                    )));
                }
                Ok((data, echoed))
            })
            .await?;
        self.check_range(entry, start, end, &data, echoed.as_deref())?;
        Ok(Fetched { data, total_size: entry.size, metadata })
    }

    /// Glacier sends a range's tree hash when the range is a node of the
    /// archive's tree; it must match the bytes. (One emulator sends the whole
    /// archive's hash with every range: that says nothing about the range,
    /// and the engine checks the whole hash at the end anyway.)
    fn check_range(&self, entry: &Entry, start: u64, end: u64, data: &[u8], echoed: Option<&str>) -> Result<()> {
        let Some(echoed) = echoed.and_then(treehash::from_hex) else { return Ok(()) };
        let whole = (start, end) == (0, entry.size);
        if !treehash::is_aligned(start, end, entry.size)
            || (!whole && treehash::from_hex(&entry.tree_hash) == Some(echoed))
        {
            return Ok(());
        }
        if treehash::tree_hash(data) != echoed {
            return Err(Error::Integrity(format!(
                "{}: bytes {start}..{end} do not match the tree hash the service sent with them; nothing of them \
                 was written",
                self.vault_url(&entry.key)
            )));
        }
        Ok(())
    }

    /// One catalog read of a listing: the payload as an object (an entry
    /// deleted since the listing is gone, not an error), and the entry
    /// remembered, so the thaw survey or delete that follows does not read
    /// it again.
    async fn collect(&self, reads: &mut tokio::task::JoinSet<EntryRead>, objects: &mut Vec<ObjectMeta>) -> Result<()> {
        let Some(joined) = reads.join_next().await else { return Ok(()) };
        let (key, entry) = joined.map_err(|e| Error::Storage(format!("catalog read failed: {e}")))??;
        if let Some(entry) = &entry {
            objects.push(ObjectMeta { key: key.clone(), size: entry.size, cold: entry.archive_id.is_some() });
        }
        self.entries.lock().expect("entries lock").insert(key, entry);
        Ok(())
    }

    /// The vault's description line and, when it has one, its lock.
    pub async fn describe_vault(&self) -> Result<String> {
        let out = self
            .retry
            .run("describe vault", || async {
                on_vault!(self, describe_vault).send().await.map_err(|e| self.vault_error("describe", e))
            })
            .await?;
        Ok(format!(
            "{} ({}), created {}, {} archives / {} bytes at the last inventory ({})",
            self.vault.name,
            out.vault_arn().unwrap_or("no ARN"),
            out.creation_date().unwrap_or("?"),
            out.number_of_archives(),
            out.size_in_bytes(),
            out.last_inventory_date().unwrap_or("none yet")
        ))
    }

    async fn create_vault(&self) -> Result<()> {
        self.retry
            .run("create vault", || async {
                on_vault!(self, create_vault).send().await.map_err(|e| self.vault_error("create", e))
            })
            .await?;
        crate::log::info(&format!("Created vault {} on {}", self.vault.name, self.server));
        Ok(())
    }

    fn vault_error<E>(&self, action: &str, err: aws_sdk_glacier::error::SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        storage_error(&format!("{action} vault"), &format!("{} on {}", self.vault.name, self.server), err)
    }

    /// The vault's lock, or `None` when it has no lock policy.
    pub async fn lock_status(&self) -> Result<Option<LockStatus>> {
        let out = self
            .retry
            .run("get vault lock", || async {
                on_vault!(self, get_vault_lock).send().await.map_err(|e| self.vault_error("get the lock of", e))
            })
            .await;
        match out {
            Ok(out) => Ok(Some(LockStatus {
                state: out.state().unwrap_or("unknown").to_string(),
                policy: out.policy().unwrap_or_default().to_string(),
                creation_date: out.creation_date().map(str::to_string),
                expiration_date: out.expiration_date().map(str::to_string),
            })),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Installs `policy` as the vault's lock policy (state InProgress);
    /// returns the lock id.
    pub async fn lock_initiate(&self, policy: &str) -> Result<String> {
        let out = self
            .retry
            .run("initiate vault lock", || async {
                on_vault!(self, initiate_vault_lock)
                    .policy(VaultLockPolicy::builder().policy(policy).build())
                    .send()
                    .await
                    .map_err(|e| self.vault_error("initiate the lock of", e))
            })
            .await?;
        out.lock_id()
            .map(str::to_string)
            .ok_or_else(|| Error::Storage(format!("{} initiated the lock without a lock id", self.server)))
    }

    pub async fn lock_complete(&self, lock_id: &str) -> Result<()> {
        self.retry
            .run("complete vault lock", || async {
                on_vault!(self, complete_vault_lock)
                    .lock_id(lock_id)
                    .send()
                    .await
                    .map_err(|e| self.vault_error("complete the lock of", e))
            })
            .await
            .map(|_| ())
    }

    pub async fn lock_abort(&self) -> Result<()> {
        self.retry
            .run("abort vault lock", || async {
                on_vault!(self, abort_vault_lock).send().await.map_err(|e| self.vault_error("abort the lock of", e))
            })
            .await
            .map(|_| ())
    }

    /// Open multipart uploads of this plugin: (key, upload id, started).
    async fn vault_uploads(&self) -> Result<Vec<(String, String, String)>> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .retry
                .run("list vault uploads", || async {
                    on_vault!(self, list_multipart_uploads)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| self.vault_error("list the multipart uploads of", e))
                })
                .await?;
            for upload in out.uploads_list() {
                if let (Some(described), Some(id)) =
                    (upload.archive_description().and_then(catalog::parse_description), upload.multipart_upload_id())
                {
                    found.push((described.key, id.to_string(), upload.creation_date().unwrap_or_default().to_string()));
                }
            }
            match out.marker() {
                Some(m) if !m.is_empty() => marker = Some(m.to_string()),
                _ => return Ok(found),
            }
        }
    }

    /// Starts an inventory-retrieval job (or finds one under way or done);
    /// returns its id.
    pub async fn inventory_job(&self) -> Result<String> {
        let jobs = self
            .retry
            .run("list jobs", || async {
                on_vault!(self, list_jobs).send().await.map_err(|e| self.vault_error("list the jobs of", e))
            })
            .await?;
        let live = jobs.job_list().iter().filter(|j| {
            j.action().map(|a| a.as_str()) == Some("InventoryRetrieval")
                && !matches!(j.status_code(), Some(StatusCode::Failed))
                && !Self::expired(j.completion_date().and_then(parse_date))
        });
        if let Some(id) =
            live.max_by_key(|j| j.creation_date().unwrap_or_default().to_string()).and_then(|j| j.job_id())
        {
            return Ok(id.to_string());
        }
        let out = self
            .retry
            .run("start inventory", || async {
                on_vault!(self, initiate_job)
                    .job_parameters(
                        JobParameters::builder()
                            .r#type("inventory-retrieval")
                            .format("JSON")
                            .description(format!("{JOB_DESCRIPTION} inventory"))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.vault_error("start an inventory of", e))
            })
            .await?;
        out.job_id()
            .map(str::to_string)
            .ok_or_else(|| Error::Storage(format!("{} started an inventory without a job id", self.server)))
    }

    /// `None` while the job runs; the inventory's archives once it is done.
    pub async fn inventory(&self, job_id: &str) -> Result<Option<Vec<InventoryArchive>>> {
        match self.job_state(job_id).await? {
            JobState::Running => return Ok(None),
            JobState::Done(_) => {}
            JobState::Failed(why) => return Err(Error::Storage(format!("inventory job {job_id} failed: {why}"))),
            JobState::Gone => return Err(Error::NotFound(format!("inventory job {job_id} is gone"))),
        }
        let out = on_vault!(self, get_job_output)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| self.vault_error("read the inventory of", e))?;
        // An inventory is about 500 bytes per archive: 64 MiB is 100,000+.
        let body = read_body(out.body, 0, 64 << 20).await.map_err(|e| Error::Storage(format!("inventory: {e}")))?;
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Inventory {
            archive_list: Vec<InventoryArchive>,
        }
        let inventory: Inventory = serde_json::from_slice(&body)
            .map_err(|e| Error::Storage(format!("inventory {job_id} is not the JSON Glacier writes: {e}")))?;
        Ok(Some(inventory.archive_list))
    }

    /// Writes the catalog entry of an inventoried archive of this plugin,
    /// unless the key has one. Returns the key when an entry was written.
    pub async fn restore_entry(&self, archive: &InventoryArchive) -> Result<Option<String>> {
        let Some(described) = catalog::parse_description(&archive.archive_description) else { return Ok(None) };
        if self.entry(&described.key).await?.is_some() {
            return Ok(None);
        }
        let mut entry = Entry::new(&described.key, &self.vault, &self.region);
        entry.archive_id = Some(archive.archive_id.clone());
        entry.size = archive.size;
        entry.tree_hash = archive.sha256_tree_hash.clone();
        entry.uploaded_at = archive.creation_date.clone();
        entry.description = archive.archive_description.clone();
        // A multipart archive's record points at its manifest; without the
        // manifest the tree hash alone vouches for the bytes.
        entry.metadata = described.metadata;
        let manifest = format!("{}{MANIFEST_SUFFIX}", described.key);
        if entry.metadata.iter().any(|(_, v)| v.contains("manifest"))
            && matches!(self.bucket.get_range(&manifest, 0..1).await, Err(Error::NotFound(_)))
        {
            entry.metadata.clear();
        }
        self.write_entry(&entry).await?;
        Ok(Some(described.key))
    }
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

/// Merges repeated identical `Content-Type` headers into one. fakecloud
/// sends the header twice on GetJobOutput, which the SDK then refuses to
/// parse; AWS sends it once, so this changes nothing there. Different
/// values are left alone (and fail as they should).
#[derive(Debug)]
struct SingleContentType;

impl Intercept for SingleContentType {
    fn name(&self) -> &'static str {
        "SingleContentType"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let headers = context.response_mut().headers_mut();
        let values: Vec<String> = headers.get_all("content-type").map(str::to_string).collect();
        if values.len() > 1 && values.iter().all(|v| *v == values[0]) {
            headers.remove("content-type");
            headers.try_insert("content-type", values[0].clone())?;
        }
        Ok(())
    }
}

/// What a refused DeleteArchive error starts with, so callers can tell it
/// from other failures.
pub const RETENTION_DENIED: &str = "retention lock";

type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;

fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|d| d.with_timezone(&Utc))
}

/// Whether a job's retrieval range is the whole archive: `0-<size-1>`
/// (some emulators leave the size at 0, then any range from 0 passes).
fn is_whole(range: &str, size: Option<i64>) -> bool {
    match size {
        _ if range.is_empty() => true,
        Some(n) if n > 0 => range == format!("0-{}", n - 1),
        _ => range.starts_with("0-"),
    }
}

/// Reads `len` bytes of a body after skipping `skip`, then drops the rest.
async fn read_body(mut body: ByteStream, mut skip: u64, len: u64) -> std::result::Result<Bytes, String> {
    let mut out = BytesMut::with_capacity(len.min(64 << 20) as usize);
    while (out.len() as u64) < len {
        let Some(mut chunk) = body.try_next().await.map_err(|e| super::s3::error_chain(&e))? else { break };
        if skip > 0 {
            let drop = skip.min(chunk.len() as u64);
            let _ = chunk.split_to(drop as usize);
            skip -= drop;
        }
        let room = (len - out.len() as u64) as usize;
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(out.freeze())
}

#[async_trait]
impl Store for GlacierStore {
    fn url(&self, key: &str) -> String {
        self.bucket.url(key)
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
        if class == ObjectClass::Metadata {
            return self.bucket.put(key, data, metadata, class).await;
        }
        if data.is_empty() {
            // Glacier refuses empty archives: the entry alone says "empty".
            let mut entry = Entry::new(key, &self.vault, &self.region);
            entry.metadata = metadata.clone();
            return self.record(entry).await;
        }
        self.upload_archive(key, data, metadata).await
    }

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        if class == ObjectClass::Metadata {
            return self.bucket.start_multipart(key, metadata, class).await;
        }
        let description = catalog::describe(key, metadata)?;
        let out = self
            .retry
            .run(&format!("start multipart upload to {}", self.vault_url(key)), || async {
                on_vault!(self, initiate_multipart_upload)
                    .archive_description(&description)
                    .part_size(self.vault.part_size.to_string())
                    .send()
                    .await
                    .map_err(|e| storage_error("start multipart upload to", &self.vault_url(key), e))
            })
            .await?;
        let upload_id = out
            .upload_id()
            .ok_or_else(|| Error::Storage(format!("{} started an upload without an id", self.server)))?
            .to_string();
        let mut entry = Entry::new(key, &self.vault, &self.region);
        entry.description = description;
        entry.metadata = metadata.clone();
        entry.part_size = self.vault.part_size;
        Ok(Box::new(VaultUpload { store: self.clone_handle(), upload_id, entry, parts: Mutex::new(HashMap::new()) }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        match self.entry(key).await? {
            Some(entry) => self.read_archive(&entry, range).await,
            None => self.bucket.get_range(key, range).await,
        }
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        match self.entry(key).await? {
            Some(entry) => Ok(ObjectState {
                readiness: self.readiness(&entry).await?,
                storage: format!("Glacier vault {}", self.vault.name),
            }),
            None => self.bucket.object_state(key).await,
        }
    }

    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        let Some(entry) = self.entry(key).await? else { return self.bucket.request_restore(key, tier, days).await };
        let Some(archive_id) = entry.archive_id.clone() else { return Ok(RestoreRequested::AlreadyReadable) };
        match self.readiness(&entry).await? {
            Readiness::Restoring => return Ok(RestoreRequested::AlreadyRestoring),
            Readiness::Restored { .. } | Readiness::Ready => return Ok(RestoreRequested::AlreadyReadable),
            Readiness::Archived => {}
        }
        let (job_id, started) = match self.find_job(&archive_id).await? {
            Some(job) => (job, false),
            None => {
                let ts = crate::layout::timestamp_of_path(key).unwrap_or_default();
                let what = format!("request retrieval of {}", self.vault_url(key));
                let out = self
                    .retry
                    .run(&what, || async {
                        on_vault!(self, initiate_job)
                            .job_parameters(
                                JobParameters::builder()
                                    .r#type("archive-retrieval")
                                    .archive_id(&archive_id)
                                    .tier(tier.as_str())
                                    .description(format!("{JOB_DESCRIPTION} {ts}"))
                                    .build(),
                            )
                            .send()
                            .await
                            .map_err(|e| retrieval_error(&self.vault_url(key), e))
                    })
                    .await?;
                let job = out
                    .job_id()
                    .ok_or_else(|| Error::Storage(format!("{} started a job without an id", self.server)))?;
                (job.to_string(), true)
            }
        };
        let mut updated = (*entry).clone();
        updated.retrieval =
            Some(Retrieval { job_id: job_id.clone(), tier: tier.as_str().to_string(), requested_at: catalog::now() });
        self.write_entry(&updated).await?;
        crate::log::info(&format!("Retrieval job {job_id} for {} ({})", self.vault_url(key), tier.as_str()));
        Ok(if started { RestoreRequested::Started } else { RestoreRequested::AlreadyRestoring })
    }

    async fn credentials_source(&self) -> Result<String> {
        self.bucket.credentials_source().await
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let mut lines = self.bucket.settings();
        lines.retain(|(what, _)| *what != "data storage class");
        lines.push(("data", format!("archives in Glacier vault {} on {}", self.vault.name, self.server)));
        lines.push((
            "vault part size",
            format!(
                "{} (archives up to {})",
                crate::size::human(self.vault.part_size),
                crate::size::human(self.vault.part_size.saturating_mul(10_000))
            ),
        ));
        lines.push((
            "locked archives on delete",
            match self.vault.on_retention_locked {
                OnRetentionLocked::Fail => "fail (on_retention_locked: fail)".to_string(),
                OnRetentionLocked::Defer => "keep them for `purge` (on_retention_locked: defer)".to_string(),
            },
        ));
        lines
    }

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        let page = self.bucket.list_page(prefix, next, limit).await?;
        let mut objects = Vec::with_capacity(page.objects.len());
        let mut entries = tokio::task::JoinSet::new();
        for object in page.objects {
            match catalog::payload_key(&object.key) {
                Some(key) => {
                    while entries.len() >= LIST_CONCURRENCY {
                        self.collect(&mut entries, &mut objects).await?;
                    }
                    let (bucket, key) = (self.bucket.clone(), key.to_string());
                    entries.spawn(async move {
                        let entry = fetch_entry(&*bucket, &key).await?;
                        Ok((key, entry))
                    });
                }
                None => objects.push(object),
            }
        }
        while !entries.is_empty() {
            self.collect(&mut entries, &mut objects).await?;
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(ListPage { objects, next: page.next })
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let mut plain = Vec::new();
        for key in keys {
            let key = catalog::payload_key(key).unwrap_or(key);
            let Some(entry) = self.entry(key).await? else {
                plain.push(key.to_string());
                continue;
            };
            if let Some(id) = &entry.archive_id {
                match self.delete_archive(key, id).await {
                    Ok(()) => {}
                    Err(Error::Storage(msg))
                        if msg.starts_with(RETENTION_DENIED)
                            && self.vault.on_retention_locked == OnRetentionLocked::Defer =>
                    {
                        if entry.delete_requested_at.is_none() {
                            let mut deferred = (*entry).clone();
                            deferred.delete_requested_at = Some(catalog::now());
                            self.write_entry(&deferred).await?;
                        }
                        crate::log::warn(&format!("{msg}; kept for `purge` (on_retention_locked: defer)"));
                        continue;
                    }
                    Err(Error::Storage(msg)) if msg.starts_with(RETENTION_DENIED) => {
                        return Err(Error::Storage(format!(
                            "{msg}; nothing more was deleted: retry when the archive is old enough, or set \
                             on_retention_locked: defer and run `purge` later"
                        )));
                    }
                    Err(e) => return Err(e),
                }
            }
            // Archive first, entry last: never an archive nobody can name.
            plain.push(catalog::entry_key(key));
            plain.push(key.to_string());
            self.entries.lock().expect("entries lock").remove(key);
        }
        if plain.is_empty() { Ok(()) } else { self.bucket.delete_many(&plain).await }
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        // The journal does not say which service an upload belongs to: an
        // id the vault does not know is the bucket's (or gone already).
        let what = format!("abort upload {upload_id} of {}", self.vault_url(key));
        let vaults = self
            .retry
            .run(&what, || async {
                match on_vault!(self, abort_multipart_upload).upload_id(upload_id).send().await {
                    Ok(_) => Ok(true),
                    Err(e) => match storage_error("abort upload to", &self.vault_url(key), e) {
                        // Unknown here; some services answer 400 to an id of
                        // another's form.
                        Error::NotFound(_) | Error::Storage(_) => Ok(false),
                        other => Err(other),
                    },
                }
            })
            .await?;
        if vaults { Ok(()) } else { self.bucket.abort_upload(key, upload_id).await }
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<(String, String)>>> {
        let mut uploads: Vec<(String, String)> = self
            .vault_uploads()
            .await?
            .into_iter()
            .filter(|(key, _, _)| key.starts_with(prefix))
            .map(|(key, id, _)| (key, id))
            .collect();
        if let Some(bucket) = self.bucket.open_uploads(prefix).await? {
            uploads.extend(bucket);
        }
        Ok(Some(uploads))
    }

    fn fixed_part_size(&self, class: ObjectClass) -> Option<u64> {
        // Only archives: files in the bucket follow S3's rules.
        (class == ObjectClass::Payload).then_some(self.vault.part_size)
    }

    fn restored_lifetime(&self, _days: u32) -> String {
        format!("downloadable for {JOB_OUTPUT_HOURS} hours after each job ends")
    }

    async fn preflight(&self, create: bool) -> Result<Vec<(&'static str, String)>> {
        let described = match self.describe_vault().await {
            Ok(d) => d,
            Err(Error::NotFound(_)) if create => {
                // Only when missing: some emulators empty a vault that is
                // created again.
                self.create_vault().await?;
                self.describe_vault().await?
            }
            Err(Error::NotFound(msg)) => {
                return Err(Error::NotFound(format!(
                    "vault {} does not exist on {} ({msg}); setup_plugin_for_backup creates it",
                    self.vault.name, self.server
                )));
            }
            Err(e) => return Err(e),
        };
        let lock = match self.lock_status().await {
            Ok(None) => "none".to_string(),
            Ok(Some(lock)) => format!(
                "{}{}",
                lock.state,
                lock.expiration_date.map(|d| format!(" (must be completed by {d})")).unwrap_or_default()
            ),
            // Not every service has vault locks; say so instead of failing.
            Err(e) => format!("unknown ({e})"),
        };
        Ok(vec![("vault", described), ("vault lock", lock)])
    }

    async fn deferred_deletes(&self, prefix: &str) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut next = None;
        loop {
            let page = self.bucket.list_page(prefix, next, None).await?;
            for object in page.objects {
                if let Some(key) = catalog::payload_key(&object.key)
                    && let Some(entry) = self.entry(key).await?
                    && entry.delete_requested_at.is_some()
                {
                    keys.push(key.to_string());
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => return Ok(keys),
            }
        }
    }
}

/// The service's hash of what it stored (`what`) must be ours. Some
/// emulators answer with the plain SHA-256 instead of the tree hash (they
/// differ above 1 MiB): that still proves the bytes, so it is accepted.
fn check_echo(server: &str, what: &str, echoed: Option<&str>, tree: &Hash, data: &[u8]) -> Result<()> {
    let Some(echoed) = echoed else { return Ok(()) };
    let echoed_hash = treehash::from_hex(echoed);
    if echoed_hash.as_ref() == Some(tree) || echoed_hash == Some(sha2::Sha256::digest(data).into()) {
        return Ok(());
    }
    Err(Error::Integrity(format!(
        "{server} stored {what} with tree hash {echoed}, but the plugin sent {}",
        treehash::to_hex(tree)
    )))
}

/// The catalog entry of `key` as stored in `bucket`, or `None`.
async fn fetch_entry(bucket: &dyn Store, key: &str) -> Result<Option<Arc<Entry>>> {
    let entry_key = catalog::entry_key(key);
    match bucket.get_range(&entry_key, 0..(1 << 20)).await {
        Ok(fetched) => Ok(Some(Arc::new(Entry::parse(&fetched.data, &bucket.url(&entry_key))?))),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

type EntryRead = Result<(String, Option<Arc<Entry>>)>;

/// A refused retrieval, with what to do about it.
fn retrieval_error<E>(url: &str, err: aws_sdk_glacier::error::SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let hint = match err.code() {
        Some("PolicyEnforcedException") => {
            "; the account's data retrieval policy refuses it: raise the policy's limit or use tier Bulk"
        }
        Some("InsufficientCapacityException") => "; no Expedited capacity now: use tier Standard or Bulk",
        _ => "",
    };
    match storage_error("request retrieval of", url, err) {
        Error::Storage(msg) => Error::Storage(format!("{msg}{hint}")),
        Error::Transient(msg) if !hint.is_empty() => Error::Storage(format!("{msg}{hint}")),
        other => other,
    }
}

/// The handle a multipart upload keeps to its store.
#[derive(Clone)]
struct Handle {
    client: Client,
    vault: Vault,
    server: String,
    retry: Retrier,
    bucket: Arc<dyn Store>,
}

impl GlacierStore {
    fn clone_handle(&self) -> Handle {
        Handle {
            client: self.client.clone(),
            vault: self.vault.clone(),
            server: self.server.clone(),
            retry: self.retry.clone(),
            bucket: self.bucket.clone(),
        }
    }
}

struct VaultUpload {
    store: Handle,
    upload_id: String,
    /// The entry to record on completion (archive id, size and hash to come).
    entry: Entry,
    /// Each part's size and tree hash, by part number.
    parts: Mutex<HashMap<u32, (u64, Hash)>>,
}

impl VaultUpload {
    fn url(&self) -> String {
        format!("glacier://{}/{}", self.store.vault.name, self.entry.key)
    }
}

#[async_trait]
impl MultipartUpload for VaultUpload {
    fn upload_id(&self) -> String {
        self.upload_id.clone()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let part_size = self.store.vault.part_size;
        let start = u64::from(number - 1) * part_size;
        let len = data.len() as u64;
        if len == 0 || len > part_size {
            return Err(Error::Local(format!("part {number} of {} has {len} bytes", self.url())));
        }
        let tree = treehash::tree_hash(&data);
        let tree_hex = treehash::to_hex(&tree);
        let what = format!("upload part {number} of {}", self.url());
        let out = self
            .store
            .retry
            .run(&what, || async {
                on_vault!(self.store, upload_multipart_part)
                    .upload_id(&self.upload_id)
                    .range(format!("bytes {start}-{}/*", start + len - 1))
                    .checksum(&tree_hex)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| storage_error(&format!("upload part {number} of"), &self.url(), e))
            })
            .await?;
        check_echo(&self.store.server, &format!("part {number} of {}", self.url()), out.checksum(), &tree, &data)?;
        self.parts.lock().expect("parts lock").insert(number, (len, tree));
        Ok(PartTag { number, etag: None, checksum: Some(tree_hex) })
    }

    async fn complete(&self, parts: Vec<PartTag>) -> Result<()> {
        let (size, tree) = {
            let known = self.parts.lock().expect("parts lock");
            let mut numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
            numbers.sort_unstable();
            if numbers.iter().enumerate().any(|(i, n)| *n != i as u32 + 1) {
                return Err(Error::Local(format!("the parts of {} are not numbered 1..n", self.url())));
            }
            let mut hashes = Vec::with_capacity(numbers.len());
            let mut size = 0;
            for n in numbers {
                let (len, hash) = known
                    .get(&n)
                    .ok_or_else(|| Error::Local(format!("part {n} of {} was not uploaded", self.url())))?;
                size += len;
                hashes.push(*hash);
            }
            (size, treehash::combine(&hashes))
        };
        let tree_hex = treehash::to_hex(&tree);
        let what = format!("complete the upload of {}", self.url());
        // Glacier answers a repeated completion with the same archive id,
        // so a completion whose answer was lost is simply sent again.
        let out = self
            .store
            .retry
            .run(&what, || async {
                on_vault!(self.store, complete_multipart_upload)
                    .upload_id(&self.upload_id)
                    .archive_size(size.to_string())
                    .checksum(&tree_hex)
                    .send()
                    .await
                    .map_err(|e| storage_error("complete multipart upload to", &self.url(), e))
            })
            .await?;
        if let Some(echoed) = out.checksum()
            && treehash::from_hex(echoed) != Some(tree)
        {
            return Err(Error::Integrity(format!(
                "{} completed {} with tree hash {echoed}, but the parts make {tree_hex}",
                self.store.server,
                self.url()
            )));
        }
        let archive_id = out.archive_id().ok_or_else(|| {
            Error::Storage(format!("{} completed {} without an archive id", self.store.server, self.url()))
        })?;
        let mut entry = self.entry.clone();
        entry.archive_id = Some(archive_id.to_string());
        entry.size = size;
        entry.tree_hash = tree_hex;
        entry.uploaded_at = catalog::now();
        let entry_key = catalog::entry_key(&entry.key);
        let written =
            self.store.bucket.put(&entry_key, Bytes::from(entry.to_json()), &Vec::new(), ObjectClass::Metadata).await;
        if let Err(e) = written {
            let deleted = on_vault!(self.store, delete_archive).archive_id(archive_id).send().await;
            if deleted.is_err() {
                crate::log::warn(&format!("archive {archive_id} of {} has no catalog entry", self.url()));
            }
            return Err(e);
        }
        Ok(())
    }

    async fn abort(&self) -> Result<()> {
        let what = format!("abort the upload of {}", self.url());
        self.store
            .retry
            .run(&what, || async {
                match on_vault!(self.store, abort_multipart_upload).upload_id(&self.upload_id).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => match storage_error("abort multipart upload to", &self.url(), e) {
                        Error::NotFound(_) => Ok(()),
                        other => Err(other),
                    },
                }
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_archive_jobs() {
        assert!(is_whole("0-1048575", Some(1_048_576)));
        assert!(!is_whole("0-1048575", Some(5_000_000)));
        assert!(is_whole("", Some(10)));
        assert!(is_whole("0-99", None));
        assert!(!is_whole("1048576-2097151", Some(0)));
    }

    #[test]
    fn job_dates() {
        let d = parse_date("2013-03-20T17:03:43.221Z").unwrap();
        assert_eq!(d.to_rfc3339(), "2013-03-20T17:03:43.221+00:00");
        assert!(parse_date("yesterday").is_none());
        assert!(GlacierStore::expired(Some(Utc::now() - chrono::Duration::hours(25))));
        assert!(!GlacierStore::expired(Some(Utc::now() - chrono::Duration::hours(23))));
        assert!(!GlacierStore::expired(None));
    }
}
