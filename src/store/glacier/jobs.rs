//! Retrieval jobs: what makes an archive readable. A job is started once
//! per archive (a live one found in the vault's job list is reused, so
//! none is paid for twice), recorded in the catalog entry, and its output
//! is readable for [`JOB_OUTPUT_HOURS`](super::JOB_OUTPUT_HOURS) after it
//! ends.

use std::collections::HashMap;

use aws_sdk_glacier::error::ProvideErrorMetadata;
use aws_sdk_glacier::types::{JobParameters, StatusCode};
use chrono::{DateTime, Utc};

use super::catalog::{self, Entry, Retrieval};
use super::client::on_vault;
use super::{JOB_OUTPUT_HOURS, Vault};
use crate::config::RestoreTier;
use crate::error::{Error, Kind, Result};
use crate::store::aws::classify;
use crate::store::{Readiness, RestoreRequested, paging};

/// Job descriptions this plugin writes start with this.
pub(super) const JOB_DESCRIPTION: &str = "gpbkp-thaw";

/// The state of a retrieval job.
pub(super) enum JobState {
    Gone,
    Running,
    Failed(String),
    Done(Finished),
}

/// A finished job: when, and the tree hash of the archive it retrieved as
/// the service knows it.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub at: Option<DateTime<Utc>>,
    pub archive_tree_hash: Option<String>,
}

impl Vault {
    pub(super) async fn job_state(&self, job_id: &str) -> Result<JobState> {
        if let Some(done) = self.finished_jobs.lock().expect("jobs lock").get(job_id) {
            return Ok(JobState::Done(done.clone()));
        }
        let what = format!("look up retrieval job {job_id} in vault {}", self.settings.name);
        let out =
            self.retry
                .run(&what, || async {
                    on_vault!(self, describe_job).job_id(job_id).send().await.map_err(|e| {
                        classify("look up retrieval job", &format!("{job_id} in {}", self.settings.name), e)
                    })
                })
                .await;
        let out = match out {
            Ok(out) => out,
            Err(e) if e.is(Kind::NotFound) => return Ok(JobState::Gone),
            Err(e) => return Err(e),
        };
        Ok(match out.status_code() {
            Some(StatusCode::Succeeded) => {
                let done = Finished {
                    at: out.completion_date().and_then(parse_date),
                    archive_tree_hash: out.sha256_tree_hash().map(str::to_string),
                };
                self.finished_jobs.lock().expect("jobs lock").insert(job_id.to_string(), done.clone());
                JobState::Done(done)
            }
            Some(StatusCode::Failed) => {
                JobState::Failed(out.status_message().unwrap_or("the service gave no reason").to_string())
            }
            _ => JobState::Running,
        })
    }

    pub(super) async fn readiness(&self, entry: &Entry) -> Result<Readiness> {
        if entry.archive_id.is_none() {
            return Ok(Readiness::Ready);
        }
        let Some(retrieval) = &entry.retrieval else { return Ok(Readiness::Archived) };
        Ok(match self.job_state(&retrieval.job_id).await? {
            JobState::Running => Readiness::Restoring,
            JobState::Done(done) if !expired(done.at) => {
                Readiness::Restored { until: done.at.map(|d| d + chrono::Duration::hours(JOB_OUTPUT_HOURS.into())) }
            }
            JobState::Failed(why) => {
                log::warn!("retrieval job {} of {} failed: {why}", retrieval.job_id, self.vault_url(&entry.key));
                Readiness::Failed(format!("retrieval job {} failed: {why}", retrieval.job_id))
            }
            JobState::Done(_) | JobState::Gone => Readiness::Archived,
        })
    }

    /// Starts (or finds) the retrieval job of `entry`'s archive and records
    /// it in the entry.
    pub(super) async fn request_retrieval(&self, entry: &Entry, tier: RestoreTier) -> Result<RestoreRequested> {
        let Some(archive_id) = entry.archive_id.clone() else { return Ok(RestoreRequested::AlreadyReadable) };
        let key = &entry.key;
        match self.readiness(entry).await? {
            Readiness::Restoring => return Ok(RestoreRequested::AlreadyRestoring),
            Readiness::Restored { .. } | Readiness::Ready => return Ok(RestoreRequested::AlreadyReadable),
            Readiness::Archived | Readiness::Failed(_) => {}
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
                            .map_err(|e| {
                                // Refusals by the account's policy or for lack
                                // of capacity are not retried: a hint is due.
                                let refused = matches!(
                                    e.code(),
                                    Some("PolicyEnforcedException" | "InsufficientCapacityException")
                                );
                                let error = classify("request retrieval of", &self.vault_url(key), e);
                                if refused {
                                    Error::new(Kind::Service, error.message()).with_code(error.code())
                                } else {
                                    error
                                }
                            })
                    })
                    .await?;
                let job = out
                    .job_id()
                    .ok_or_else(|| Error::service(format!("{} started a job without an id", self.server)))?;
                (job.to_string(), true)
            }
        };
        let mut updated = entry.clone();
        updated.retrieval =
            Some(Retrieval { job_id: job_id.clone(), tier: tier.as_str().to_string(), requested_at: catalog::now() });
        self.write_entry(&updated).await?;
        log::info!("Retrieval job {job_id} for {} ({})", self.vault_url(key), tier.as_str());
        Ok(if started { RestoreRequested::Started } else { RestoreRequested::AlreadyRestoring })
    }

    /// A live retrieval job of `archive_id` started earlier (by a `thaw`
    /// that stopped before recording it). The vault's job list is read
    /// once per process, not once per archive.
    async fn find_job(&self, archive_id: &str) -> Result<Option<String>> {
        let jobs = self.live_jobs.get_or_try_init(|| self.list_live_jobs()).await?;
        Ok(jobs.get(archive_id).cloned())
    }

    /// Archive id to job id, for the whole-archive retrievals that are
    /// running or whose output is still there.
    async fn list_live_jobs(&self) -> Result<HashMap<String, String>> {
        let live = paging::collect(|marker: Option<String>| async move {
            let out = self
                .retry
                .run("list retrieval jobs", || async {
                    on_vault!(self, list_jobs)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| classify("list jobs of", &format!("vault {}", self.settings.name), e))
                })
                .await?;
            let jobs = out
                .job_list()
                .iter()
                .filter(|job| {
                    !matches!(job.status_code(), Some(StatusCode::Failed))
                        && !expired(job.completion_date().and_then(parse_date))
                        && job.retrieval_byte_range().is_none_or(|r| is_whole(r, job.archive_size_in_bytes()))
                })
                .filter_map(|job| Some((job.archive_id()?.to_string(), job.job_id()?.to_string())))
                .collect();
            Ok((jobs, out.marker().filter(|m| !m.is_empty()).map(str::to_string)))
        })
        .await?;
        Ok(live.into_iter().collect())
    }
}

/// Whether the output of a job finished at `done` has expired.
pub(super) fn expired(done: Option<DateTime<Utc>>) -> bool {
    done.is_some_and(|d| d + chrono::Duration::hours(JOB_OUTPUT_HOURS.into()) < Utc::now())
}

pub(super) fn parse_date(text: &str) -> Option<DateTime<Utc>> {
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
        assert!(expired(Some(Utc::now() - chrono::Duration::hours(25))));
        assert!(!expired(Some(Utc::now() - chrono::Duration::hours(23))));
        assert!(!expired(None));
    }
}
