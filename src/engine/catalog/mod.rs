//! The bucket as the source of truth: which backups a folder holds, whether
//! each is complete, which earlier backups an incremental one needs, whether
//! a lock keeps it, and its objects proven sound, from nothing but what
//! gpbackup and the plugin (this one or the Go one) stored. No history
//! database: that can be rebuilt from here ([`history`]).
//!
//! - [`scan`]: one listing of `<folder>/backups/` into per-backup summaries;
//! - [`files`]: gpbackup's config, report and TOC, read as untrusted YAML;
//! - [`inspect`]: a backup's description and completeness (at most three
//!   small reads per backup, plus a few lookups of its cold objects);
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

use crate::error::Result;
use crate::store::Store;

pub mod files;
pub mod history;
pub mod inspect;
pub mod lock;
pub mod object_lock;
pub mod retention;
pub mod scan;
pub mod verify;

#[cfg(test)]
pub(crate) mod tests;

pub use inspect::{Backup, Reads, Status};
use lock::VaultRetention;

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

    /// For each incremental backup, the backups of its restore plan that are
    /// not in the bucket or not complete (a restore of it would fail).
    pub fn broken_chains(&self) -> BTreeMap<String, Vec<(String, Option<Status>)>> {
        let status: BTreeMap<&str, Status> = self.backups.iter().map(|b| (b.timestamp(), b.status())).collect();
        let mut out = BTreeMap::new();
        for b in &self.backups {
            let gaps: Vec<(String, Option<Status>)> = b
                .depends_on()
                .into_iter()
                .filter_map(|ts| match status.get(ts.as_str()).copied() {
                    Some(Status::Complete) => None,
                    other => Some((ts, other)),
                })
                .collect();
            if !gaps.is_empty() {
                out.insert(b.timestamp().to_string(), gaps);
            }
        }
        out
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

/// Whether a backup has objects a vault lock could hold: with
/// `storage: glacier` every cold object is an archive (an empty stream is
/// an entry without one, and metadata is never cold).
fn has_archives(b: &Backup) -> bool {
    b.found.cold > 0
}
