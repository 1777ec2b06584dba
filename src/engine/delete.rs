//! Deleting everything under a prefix, a listing page at a time so memory
//! stays flat however many objects there are, with the retention policy of
//! the config applied the same way for every store.
//!
//! Cold payloads go first, everything readable after: a payload whose
//! deletion a retention lock refuses then stops the delete before the
//! backup's metadata is touched ([`OnRetentionLocked::Fail`]), or is kept
//! for a later `purge` while the rest goes ([`OnRetentionLocked::Defer`]).

use futures::{StreamExt, TryStreamExt};

use crate::config::{LockMode, OnRetentionLocked};
use crate::error::{Error, Kind, Result};
use crate::store::{BucketLock, DELETE_BATCH, LockState, ObjectVersion, Store, paging};

/// What a delete did.
#[derive(Debug, Default)]
pub struct Deleted {
    pub deleted: u64,
    /// Keys a retention lock refused, kept for `purge`.
    pub deferred: Vec<String>,
    /// Keys kept for another reason, with it (see [`crate::store::DeleteOutcome::kept`]).
    pub kept: Vec<(String, String)>,
    /// On a versioned bucket: what keeps the deferred versions.
    pub locked: Option<Locked>,
    /// On a versioned bucket: object versions (and delete markers) left
    /// for `purge` because Object Lock refused their delete.
    pub versions_kept: u64,
}

/// Deletes every object under `prefix` (the caller makes sure it is the
/// prefix it means); on a versioned bucket every version of them (see
/// [`delete_versions_under`]). Fails with kind `RetentionLocked` on a
/// refusal under [`OnRetentionLocked::Fail`], having deleted nothing after it.
pub async fn delete_prefix(
    store: &dyn Store,
    prefix: &str,
    on_locked: OnRetentionLocked,
    bypass_governance: bool,
) -> Result<Deleted> {
    let bucket = match store.bucket_lock().await {
        Ok(bucket) => bucket,
        // Denied, or not understood by the server: the deletes every
        // earlier release did.
        Err(e) if !e.is(Kind::Transient) => {
            log::warn!(
                "the bucket's versioning is unknown ({e}; it needs s3:GetBucketVersioning): plain deletes, which on \
                 a versioned bucket only add delete markers"
            );
            BucketLock::default()
        }
        Err(e) => return Err(e),
    };
    if bucket.versioned() {
        return delete_versions_under(store, prefix, &bucket, on_locked, bypass_governance).await;
    }
    let mut done = Deleted::default();
    for cold in [true, false] {
        // A continuation token names the last key listed, so it stays
        // valid while the keys before it are deleted.
        let mut pages = std::pin::pin!(paging::objects(store, prefix));
        while let Some(page) = pages.try_next().await? {
            // The store refuses listings that leave the prefix; this is the
            // last line of defence should one ever get through.
            if let Some(stray) = page.iter().find(|o| !o.key.starts_with(prefix)) {
                return Err(crate::error::Error::service(format!(
                    "the listing of {} holds {:?}, outside it: nothing more is deleted",
                    store.url(prefix),
                    crate::layout::printable(&stray.key)
                )));
            }
            let keys: Vec<String> = page.into_iter().filter(|o| o.cold == cold).map(|o| o.key).collect();
            for batch in keys.chunks(DELETE_BATCH) {
                delete_keys(store, batch.to_vec(), on_locked, &mut done).await?;
            }
        }
    }
    Ok(done)
}

/// Deletes `keys`, applying `on_locked` to each refusal.
pub async fn delete_keys(
    store: &dyn Store,
    mut keys: Vec<String>,
    on_locked: OnRetentionLocked,
    done: &mut Deleted,
) -> Result<()> {
    while !keys.is_empty() {
        let outcome = store.delete_many(&keys).await?;
        done.deleted +=
            keys.len().saturating_sub(outcome.refused.len() + outcome.untouched.len() + outcome.kept.len()) as u64;
        done.kept.extend(outcome.kept);
        for (key, refusal) in outcome.refused {
            match on_locked {
                OnRetentionLocked::Fail => return Err(refusal),
                OnRetentionLocked::Defer => {
                    store.defer_delete(&key).await?;
                    log::warn!("{}; kept for `purge` (on_retention_locked: defer)", refusal.message());
                    done.deferred.push(key);
                }
            }
        }
        keys = outcome.untouched;
    }
    Ok(())
}

/// Deletes every version and delete marker under `prefix` of a versioned
/// bucket, by version id (a plain delete would only add a delete marker,
/// and the data would stay, billed). A backup goes whole or not at all:
/// when any version is still locked (an Object Lock retention that has not
/// ended, or a legal hold), nothing is deleted; under
/// [`OnRetentionLocked::Fail`] that is an error saying until when, under
/// [`OnRetentionLocked::Defer`] the prefix is kept for `purge`.
/// `bypass_governance` lets GOVERNANCE retentions (never COMPLIANCE, never
/// a legal hold) be deleted through.
pub async fn delete_versions_under(
    store: &dyn Store,
    prefix: &str,
    bucket: &BucketLock,
    on_locked: OnRetentionLocked,
    bypass_governance: bool,
) -> Result<Deleted> {
    let mut done = Deleted::default();
    let versions = paging::versions(store, prefix).await?;
    if let Some(stray) = versions.iter().find(|v| !v.key.starts_with(prefix)) {
        return Err(Error::service(format!(
            "the version listing of {} holds {:?}, outside it: nothing is deleted",
            store.url(prefix),
            crate::layout::printable(&stray.key)
        )));
    }
    if bucket.lock_enabled {
        let locks = locked_versions(store, &versions, bypass_governance).await?;
        if let Some(summary) = Locked::of(&locks) {
            let message = format!(
                "{} of {} object versions under {} are locked: {}",
                locks.len(),
                versions.iter().filter(|v| !v.delete_marker).count(),
                store.url(prefix),
                summary.words()
            );
            match on_locked {
                OnRetentionLocked::Fail => {
                    return Err(Error::new(Kind::RetentionLocked, format!("{message}; nothing was deleted"))
                        .with_subject(summary.until_words()));
                }
                OnRetentionLocked::Defer => {
                    store.defer_delete(prefix).await?;
                    log::warn!("{message}; nothing was deleted, the whole of it is kept for `purge`");
                    done.deferred.push(prefix.to_string());
                    done.locked = Some(summary);
                    done.versions_kept = versions.len() as u64;
                    return Ok(done);
                }
            }
        }
    }
    // Older versions and delete markers first, the current versions last:
    // a refusal midway leaves what a listing shows.
    let mut order: Vec<&ObjectVersion> = versions.iter().filter(|v| !v.latest).collect();
    order.extend(versions.iter().filter(|v| v.latest));
    let ids: Vec<(String, String)> = order.iter().map(|v| (v.key.clone(), v.version_id.clone())).collect();
    for batch in ids.chunks(DELETE_BATCH) {
        let outcome = store.delete_versions(batch, bypass_governance).await?;
        done.deleted += (batch.len() - outcome.refused.len()) as u64;
        if let Some((_, refusal)) = outcome.refused.into_iter().next() {
            match on_locked {
                OnRetentionLocked::Fail => {
                    let deleted = done.deleted;
                    return Err(refusal
                        .append(&format!("; {deleted} versions were deleted before this refusal, nothing after it")));
                }
                OnRetentionLocked::Defer => {
                    log::warn!("{}; kept for `purge` (on_retention_locked: defer)", refusal.message());
                    store.defer_delete(prefix).await?;
                    done.deferred.push(prefix.to_string());
                    done.versions_kept = (ids.len() as u64).saturating_sub(done.deleted);
                    return Ok(done);
                }
            }
        }
    }
    Ok(done)
}

/// The versions among `versions` whose delete would be refused now, with
/// their lock.
async fn locked_versions(
    store: &dyn Store,
    versions: &[ObjectVersion],
    bypass_governance: bool,
) -> Result<Vec<(ObjectVersion, LockState)>> {
    let now = chrono::Utc::now();
    let looked_up: Vec<Option<(ObjectVersion, LockState)>> =
        futures::stream::iter(versions.iter().filter(|v| !v.delete_marker).cloned())
            .map(|v| async move {
                match store.lock_state(&v.key, Some(&v.version_id)).await {
                    Ok(state) => Ok(Some((v, state))),
                    // Deleted meanwhile: nothing to keep.
                    Err(e) if e.is(Kind::NotFound) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
    Ok(looked_up
        .into_iter()
        .flatten()
        .filter(|(_, state)| {
            let bypassed = bypass_governance
                && !state.legal_hold
                && state.retention.is_some_and(|(mode, _)| mode == LockMode::Governance);
            state.locked_at(now) && !bypassed
        })
        .collect())
}

/// What keeps locked versions: the latest retain-until date, the modes,
/// how many are on legal hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub modes: Vec<LockMode>,
    pub legal_holds: usize,
}

impl Locked {
    fn of(locks: &[(ObjectVersion, LockState)]) -> Option<Locked> {
        if locks.is_empty() {
            return None;
        }
        let now = chrono::Utc::now();
        let retained = locks.iter().filter_map(|(_, s)| s.retention).filter(|(_, until)| *until > now);
        let mut modes: Vec<LockMode> = Vec::new();
        let mut until = None;
        for (mode, date) in retained {
            if !modes.contains(&mode) {
                modes.push(mode);
            }
            until = until.max(Some(date));
        }
        Some(Locked { until, modes, legal_holds: locks.iter().filter(|(_, s)| s.legal_hold).count() })
    }

    /// `retained until 2026-01-01T00:00:00Z (COMPLIANCE), 3 on legal hold`.
    pub fn words(&self) -> String {
        let mut parts = Vec::new();
        if self.until.is_some() {
            let modes: Vec<&str> = self.modes.iter().map(|m| m.as_str()).collect();
            parts.push(format!("retained until {} ({})", self.until_words(), modes.join(", ")));
        }
        if self.legal_holds > 0 {
            parts.push(format!("{} on legal hold (no end date: `legal-hold off` lifts it)", self.legal_holds));
        }
        parts.join("; ")
    }

    pub fn until_words(&self) -> String {
        self.until
            .map(|u| u.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_else(|| "a legal hold is lifted".to_string())
    }
}

/// Deletes a probe at `key` for good: on a versioned bucket, every version
/// of it (a plain delete would leave it behind a delete marker). Whether
/// the bucket is versioned is an optional question: unanswered, only the
/// plain delete is done.
pub async fn delete_probe(store: &dyn Store, key: &str) -> Result<crate::store::DeleteOutcome> {
    let mut outcome = store.delete_many(&[key.to_string()]).await?;
    if store.bucket_lock().await.is_ok_and(|b| b.versioned()) {
        let ids: Vec<(String, String)> = paging::versions(store, key)
            .await?
            .into_iter()
            .filter(|v| v.key == key)
            .map(|v| (v.key, v.version_id))
            .collect();
        for batch in ids.chunks(DELETE_BATCH) {
            outcome.refused.extend(store.delete_versions(batch, false).await?.refused);
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{ObjectClass, Store};
    use bytes::Bytes;

    #[tokio::test(flavor = "current_thread")]
    async fn deletes_every_page_and_nothing_else() {
        let store = MemoryStore::new().page_size(7);
        for i in 0..40 {
            let key = format!("b/{}/k{i:02}", if i % 2 == 0 { "x" } else { "y" });
            store.put(&key, Bytes::from_static(b"d"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
        }
        store.put("b/xx", Bytes::from_static(b"d"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
        let done = delete_prefix(&store, "b/x/", OnRetentionLocked::Fail, false).await.unwrap();
        assert_eq!(done.deleted, 20);
        assert_eq!(store.keys().len(), 21);
        assert!(store.keys().iter().all(|k| !k.starts_with("b/x/")));
    }
}
