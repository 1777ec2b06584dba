//! S3 Object Lock of each backup in a catalog, for `backups` and `expire`:
//! on a bucket with Object Lock enabled, the lock of every version of every
//! object of every backup (one version listing per backup and one
//! HeadObject per version: a delete removes every version, and an older
//! one may be locked while the current one is not), summarised as the
//! mode(s), the earliest and latest retain-until dates, and how many
//! versions are on legal hold or not locked at all. A bucket without Object
//! Lock costs one or two bucket-level requests and nothing per backup.

use std::sync::Arc;

use chrono::{DateTime, Local, NaiveDateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::lock::{Lock, ObjectLockSummary, Until};
use super::{Backup, Catalog};
use crate::config::LockMode;
use crate::error::{Kind, Result};
use crate::store::{LockState, Store, paging};

/// Lookups in flight at once.
const CONCURRENCY: usize = 16;

/// Fills [`Backup::lock`] of every backup of `catalog` from its objects'
/// Object Lock, when the bucket has Object Lock. A bucket whose lock
/// configuration cannot be read (no `s3:GetBucketVersioning` or
/// `s3:GetBucketObjectLockConfiguration`) is warned about and left alone.
pub async fn fill(store: &Arc<dyn Store>, catalog: &mut Catalog) -> Result<()> {
    match store.bucket_lock().await {
        Ok(bucket) if bucket.lock_enabled => {}
        Ok(_) => return Ok(()),
        Err(e) => {
            log::warn!("The bucket's Object Lock configuration could not be read, so no lock is shown: {e}");
            return Ok(());
        }
    }
    for backup in &mut catalog.backups {
        if let Some(summary) = of_backup(store, backup).await? {
            backup.lock = Lock::ObjectLock(summary);
        }
    }
    Ok(())
}

/// The lock of every version of every object of `backup`; `None` when
/// none of them has a retention or a legal hold.
async fn of_backup(store: &Arc<dyn Store>, backup: &Backup) -> Result<Option<ObjectLockSummary>> {
    let versions = paging::versions(&**store, &backup.found.prefix).await?;
    let states: Vec<Option<LockState>> = futures::stream::iter(versions.into_iter().filter(|v| !v.delete_marker))
        .map(|v| async move {
            match store.lock_state(&v.key, Some(&v.version_id)).await {
                Ok(state) => Ok(Some(state)),
                // Deleted since the listing: nothing of it to keep.
                Err(e) if e.is(Kind::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(summarise(&states.into_iter().flatten().collect::<Vec<_>>()))
}

fn local(time: DateTime<Utc>) -> NaiveDateTime {
    time.with_timezone(&Local).naive_local()
}

/// The summary of these objects' locks (`None`: nothing is locked).
pub fn summarise(states: &[LockState]) -> Option<ObjectLockSummary> {
    if !states.iter().any(|s| s.retention.is_some() || s.legal_hold) {
        return None;
    }
    let mut modes: Vec<LockMode> = Vec::new();
    for (mode, _) in states.iter().filter_map(|s| s.retention) {
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    let dates = states.iter().filter_map(|s| s.retention.map(|(_, u)| u));
    let earliest = dates.clone().min().map(local);
    let latest = dates.max().map(local);
    Some(ObjectLockSummary {
        modes,
        earliest,
        until: match latest {
            Some(at) => Until::At(at),
            // Legal holds only: no end date.
            None => Until::Forever,
        },
        legal_holds: states.iter().filter(|s| s.legal_hold).count(),
        unlocked: states.iter().filter(|s| s.retention.is_none() && !s.legal_hold).count(),
        objects: states.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn a_summary_names_modes_dates_holds_and_unlocked_objects() {
        let none = LockState::default();
        assert_eq!(summarise(&[none.clone(), none.clone()]), None, "nothing locked, no summary");
        let g = |s| LockState { retention: Some((LockMode::Governance, at(s))), legal_hold: false };
        let held = LockState { retention: None, legal_hold: true };
        let s = summarise(&[g(2_000_000_000), g(2_000_000_100), held.clone(), none]).unwrap();
        assert_eq!(s.modes, vec![LockMode::Governance]);
        assert_eq!(s.earliest, Some(local(at(2_000_000_000))));
        assert_eq!(s.until, Until::At(local(at(2_000_000_100))));
        assert_eq!((s.legal_holds, s.unlocked, s.objects), (1, 1, 4));
        let lock = Lock::ObjectLock(s);
        assert!(lock.holds(local(at(2_000_000_099))) && lock.holds(local(at(2_000_000_101))), "a hold has no end");
        let only_dates = Lock::ObjectLock(summarise(&[g(2_000_000_000)]).unwrap());
        assert!(only_dates.holds(local(at(1_999_999_999))) && !only_dates.holds(local(at(2_000_000_000))));
        let held_only = summarise(&[held]).unwrap();
        assert_eq!((held_only.until, held_only.earliest), (Until::Forever, None));
    }
}
