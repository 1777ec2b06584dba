//! The bucket as the source of truth: which backups a folder holds, whether
//! each is complete, which earlier backups an incremental one needs, whether
//! a lock keeps it, and its objects proven sound, from nothing but what
//! gpbackup and the plugin (this one or the Go one) stored. No history
//! database: that can be rebuilt from here ([`history`]).
//!
//! - [`scan`]: one listing of `<folder>/backups/` into per-backup summaries;
//! - [`files`]: gpbackup's config, report and TOC, read as untrusted YAML;
//! - [`inspect`]: a backup's description (at most three small reads per
//!   backup, plus a few lookups of its cold objects);
//! - [`restorable`]: whether gprestore can restore it, the one judgement
//!   every command shares;
//! - [`lock`]: retention locks (a Glacier Vault Lock, S3 Object Lock);
//! - [`object_lock`]: each backup's S3 Object Lock, from its objects;
//! - [`retention`]: what `expire` keeps and deletes;
//! - [`verify`]: proving objects sound without restoring them;
//! - [`history`]: gpbackup's `gpbackup_history.db`.
//!
//! Requests: `ceil(objects / 1000)` listings for a folder, then per backup
//! at most one GET of its config, one of its TOC (backups with data) and,
//! for `history export`, one of its report, plus at most
//! [`scan::SAMPLE`] lookups of its archived objects when it has any (and,
//! with `storage: glacier`, one read of each archive's catalog entry while
//! listing). On a bucket with Object Lock, `backups` and `expire` also list
//! each backup and look up the lock of each of its objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::Result;
use crate::store::Store;

pub mod files;
pub mod history;
pub mod inspect;
pub mod lock;
pub mod object_lock;
pub mod restorable;
pub mod retention;
pub mod scan;
pub mod verify;

#[cfg(test)]
mod plan_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use inspect::{Backup, Reads, Status};
use lock::VaultRetention;
pub use restorable::{Note, Verdict};

/// Every backup of a folder, described, oldest first.
#[derive(Debug)]
pub struct Catalog {
    pub backups: Vec<Backup>,
    /// Keys under `<folder>/backups/` outside any backup directory.
    pub stray: u64,
}

impl Catalog {
    pub fn get(&self, ts: &str) -> Option<&Backup> {
        self.backups.iter().find(|b| b.timestamp() == ts)
    }

    /// Whether gprestore can restore each backup ([`restorable::judge`]).
    pub fn judge(&self) -> BTreeMap<String, Verdict> {
        restorable::judge(&self.backups)
    }

    /// For each incremental backup, the backups of its restore plan that are
    /// not in the bucket or not complete (a restore of it would fail).
    pub fn broken_chains(&self) -> BTreeMap<String, Vec<(String, Option<Status>)>> {
        self.judge().into_iter().filter(|(_, v)| !v.gaps.is_empty()).map(|(ts, v)| (ts, v.gaps)).collect()
    }
}

/// Lists and inspects every backup of `folder`; `vault` is the retention a
/// vault lock policy imposes, if any.
pub async fn catalog(
    store: &Arc<dyn Store>,
    folder: &str,
    reads: Reads<'_>,
    vault: Option<&VaultRetention>,
) -> Result<Catalog> {
    let (found, stray) = scan::scan(&**store, folder).await?;
    let mut backups = inspect::inspect_all(store, found, reads).await?;
    for b in &mut backups {
        b.lock = lock::lock_of(vault, files::timestamp_date(b.timestamp()), has_archives(b));
    }
    Ok(Catalog { backups, stray })
}

/// One backup (every object of it listed) and, for an incremental one, the
/// backups of its restore plan: what a restore of it reads. Backups of the
/// plan that are not in the bucket are returned by timestamp.
pub async fn backup_set(
    store: &Arc<dyn Store>,
    folder: &str,
    ts: &str,
    reads: Reads<'_>,
    vault: Option<&VaultRetention>,
) -> Result<(Vec<Backup>, Vec<String>)> {
    let mut out: Vec<Backup> = Vec::new();
    let mut absent = Vec::new();
    let mut wanted = vec![ts.to_string()];
    let mut i = 0;
    while i < wanted.len() {
        let next = wanted[i].clone();
        i += 1;
        let found = scan::scan_backup(&**store, folder, &next).await?;
        if found.objects == 0 {
            absent.push(next);
            continue;
        }
        let mut backup = inspect::inspect(store, found, reads).await?;
        backup.lock = lock::lock_of(vault, files::timestamp_date(&next), has_archives(&backup));
        if out.is_empty() {
            // The backup's own plan names every backup its restore reads.
            wanted.extend(backup.depends_on());
        }
        out.push(backup);
    }
    Ok((out, absent))
}

/// When each backup of `catalog` was last written: its newest object's
/// LastModified and, where the service lists them, the start of any open
/// upload under it. Uploads are listed (one listing of `root`, the folder's
/// `backups/`) only when a backup is not complete, the only ones judged by
/// their last write; a listing that fails is returned beside the rest.
pub async fn last_activity(
    store: &Arc<dyn Store>,
    catalog: &Catalog,
    root: &str,
) -> Result<(BTreeMap<String, DateTime<Utc>>, Option<crate::error::Error>)> {
    let mut activity: BTreeMap<String, DateTime<Utc>> =
        catalog.backups.iter().filter_map(|b| Some((b.timestamp().to_string(), b.found.last_modified?))).collect();
    if !catalog.backups.iter().any(|b| matches!(b.status(), Status::Unfinished | Status::Incomplete)) {
        return Ok((activity, None));
    }
    match store.open_uploads(root).await {
        Ok(Some(uploads)) => {
            for upload in uploads {
                let owner = catalog.backups.iter().find(|b| upload.key.starts_with(&b.found.prefix));
                if let (Some(b), Some(at)) = (owner, upload.initiated) {
                    let entry = activity.entry(b.timestamp().to_string()).or_insert(at);
                    *entry = (*entry).max(at);
                }
            }
        }
        // The service cannot list them (s3s-fs): the newest object counts.
        Ok(None) => {}
        Err(e) => return Ok((activity, Some(e))),
    }
    Ok((activity, None))
}

/// Whether a backup has objects a vault lock could hold: with
/// `storage: glacier` every cold object is an archive (an empty stream is
/// an entry without one, and metadata is never cold).
fn has_archives(b: &Backup) -> bool {
    b.found.cold > 0
}
