//! The vault itself: describing and creating it, its Vault Lock, and the
//! inventory the catalog can be rebuilt from.

use aws_sdk_glacier::error::ProvideErrorMetadata;
use aws_sdk_glacier::types::{JobParameters, StatusCode, VaultLockPolicy};

use super::Vault;
use super::archives::read_body;

use super::client::on_vault;
use super::jobs::{JOB_DESCRIPTION, JobState, expired, parse_date};
use crate::error::{Error, Kind, Result};
use crate::store::aws::{HttpResponse, classify};
use crate::store::{Fact, Inventory, LockStatus, VaultDescription};

impl Vault {
    pub(super) fn vault_error<E>(&self, action: &str, err: aws_sdk_glacier::error::SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        classify(&format!("{action} vault"), &format!("{} on {}", self.settings.name, self.server), err)
    }

    /// The vault's description, and whether this call created it (only
    /// when missing and `create`: some emulators empty a vault created
    /// again); its lock state.
    pub(super) async fn prepare(&self, create: bool) -> Result<Vec<Fact>> {
        let (description, created) = match self.describe_vault().await {
            Ok(d) => (d, false),
            Err(e) if e.is(Kind::NotFound) && create => {
                self.create_vault().await?;
                (self.describe_vault().await?, true)
            }
            Err(e) if e.is(Kind::NotFound) => {
                return Err(Error::not_found(format!(
                    "vault {} does not exist on {} ({})",
                    self.settings.name,
                    self.server,
                    e.message()
                )));
            }
            Err(e) => return Err(e),
        };
        // Not every service has vault locks: an error is a fact to report.
        let lock = self.lock_status().await.map_err(|e| e.to_string());
        Ok(vec![Fact::Vault { description, created }, Fact::VaultLock(lock)])
    }

    async fn describe_vault(&self) -> Result<VaultDescription> {
        let out = self
            .retry
            .run("describe vault", || async {
                on_vault!(self, describe_vault).send().await.map_err(|e| self.vault_error("describe", e))
            })
            .await?;
        Ok(VaultDescription {
            name: self.settings.name.clone(),
            arn: out.vault_arn().map(str::to_string),
            created_at: out.creation_date().map(str::to_string),
            archives: out.number_of_archives(),
            bytes: out.size_in_bytes(),
            last_inventory: out.last_inventory_date().map(str::to_string),
        })
    }

    async fn create_vault(&self) -> Result<()> {
        self.retry
            .run("create vault", || async {
                on_vault!(self, create_vault).send().await.map_err(|e| self.vault_error("create", e))
            })
            .await?;
        log::info!("Created vault {} on {}", self.settings.name, self.server);
        Ok(())
    }

    /// Whether the vault exists (asked once per process).
    pub(super) async fn exists(&self) -> Result<bool> {
        self.vault_exists
            .get_or_try_init(|| async {
                match self.describe_vault().await {
                    Ok(_) => Ok(true),
                    Err(e) if e.is(Kind::NotFound) => Ok(false),
                    Err(e) => Err(e),
                }
            })
            .await
            .copied()
    }

    /// The error for a vault that does not exist.
    pub(super) fn no_vault(&self) -> Error {
        Error::not_found(format!("vault {} does not exist on {}", self.settings.name, self.server))
    }

    pub(super) async fn lock_status(&self) -> Result<Option<LockStatus>> {
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
            // No lock, or no vault at all: only the latter is an error.
            Err(e) if e.is(Kind::NotFound) => {
                if self.exists().await? {
                    Ok(None)
                } else {
                    Err(self.no_vault())
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn lock_initiate(&self, policy: &str) -> Result<String> {
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
            .ok_or_else(|| Error::service(format!("{} initiated the lock without a lock id", self.server)))
    }

    pub(super) async fn lock_complete(&self, lock_id: &str) -> Result<()> {
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

    pub(super) async fn lock_abort(&self) -> Result<()> {
        self.retry
            .run("abort vault lock", || async {
                on_vault!(self, abort_vault_lock).send().await.map_err(|e| self.vault_error("abort the lock of", e))
            })
            .await
            .map(|_| ())
    }

    pub(super) async fn inventory_job(&self) -> Result<String> {
        let jobs = self
            .retry
            .run("list jobs", || async {
                on_vault!(self, list_jobs).send().await.map_err(|e| self.vault_error("list the jobs of", e))
            })
            .await?;
        let live = jobs.job_list().iter().filter(|j| {
            j.action().map(|a| a.as_str()) == Some("InventoryRetrieval")
                && !matches!(j.status_code(), Some(StatusCode::Failed))
                && !expired(j.completion_date().and_then(parse_date))
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
            .ok_or_else(|| Error::service(format!("{} started an inventory without a job id", self.server)))
    }

    pub(super) async fn inventory(&self, job_id: &str) -> Result<Option<Inventory>> {
        match self.job_state(job_id).await? {
            JobState::Running => return Ok(None),
            JobState::Done(_) => {}
            JobState::Failed(why) => return Err(Error::service(format!("inventory job {job_id} failed: {why}"))),
            JobState::Gone => return Err(Error::not_found(format!("inventory job {job_id} is gone"))),
        }
        let out = on_vault!(self, get_job_output)
            .job_id(job_id)
            .send()
            .await
            .map_err(|e| self.vault_error("read the inventory of", e))?;
        // An inventory is about 500 bytes per archive: 64 MiB is 100,000+.
        let body = read_body(out.body, 0, 64 << 20).await.map_err(|e| Error::service(format!("inventory: {e}")))?;
        let inventory: Inventory = serde_json::from_slice(&body)
            .map_err(|e| Error::service(format!("inventory {job_id} is not the JSON Glacier writes: {e}")))?;
        Ok(Some(inventory))
    }
}
