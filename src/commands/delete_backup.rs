//! `delete_backup CFG TS`: every object of backup TS, and nothing else.
//!
//! Called by gpbackup_manager, gpbackman and plugin_test.sh, never by
//! gpbackup itself. The prefix ends in a slash, so a sibling backup is never
//! touched; listing and deletion go a page (1,000 keys) at a time. Deleting
//! a backup that is already gone succeeds, so a rerun after a failure is safe.
//! `expire` deletes each backup through the same [`delete`].

use std::path::Path;

use crate::config::Purpose;
use crate::engine::delete::{self, Deleted};
use crate::error::{Error, Kind, Result};
use crate::layout;

use super::Context;

pub async fn run(config: &Path, timestamp: &str, bypass_governance: bool) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config, Purpose::Other).await?;
    delete(&ctx, timestamp, bypass_governance).await.map(|_| ())
}

/// Deletes backup `timestamp`: `delete_backup`, and each backup `expire`
/// deletes (never bypassing a retention: `expire` skips retained backups).
pub(super) async fn delete(ctx: &Context, timestamp: &str, bypass_governance: bool) -> Result<Deleted> {
    let prefix = layout::backup_prefix(&ctx.config.folder, timestamp)?;
    if bypass_governance {
        log::warn!(
            "delete_backup {timestamp}: --bypass-governance-retention given: GOVERNANCE retentions are deleted through \
             (COMPLIANCE retentions and legal holds still refuse)"
        );
    }
    let on_locked = ctx.config.on_retention_locked();
    let done = delete::delete_prefix(&*ctx.store, &prefix, on_locked, bypass_governance).await.map_err(|e| {
        if e.is(Kind::RetentionLocked) {
            let hint = match e.subject() {
                Some(until) => format!(
                    "backup {timestamp} is retained until {until}; nothing of it was deleted: retry then, or set \
                     on_retention_locked: defer and run `purge` after that date"
                ),
                None => "nothing more was deleted: retry when the archive is old enough, or set on_retention_locked: \
                         defer and run `purge` later"
                    .to_string(),
            };
            e.with_hint(hint)
        } else {
            e
        }
    })?;
    log::info!("Deleted {} objects of backup {timestamp} under {}", done.deleted, ctx.store.url(&prefix));
    if !done.kept.is_empty() {
        for (key, why) in &done.kept {
            log::warn!("Backup {timestamp}: kept {}: {why}", ctx.store.url(key));
        }
        return Err(Error::service(format!(
            "backup {timestamp}: {} objects were deleted, {} kept: {} ({}{})",
            done.deleted,
            done.kept.len(),
            ctx.store.url(&done.kept[0].0),
            done.kept[0].1,
            if done.kept.len() > 1 { "; the others are named in the log" } else { "" }
        ))
        .with_hint("run rebuild-catalog to repair damaged catalog entries, then delete_backup again"));
    }
    if let Some(locked) = &done.locked {
        log::warn!(
            "Backup {timestamp} is kept whole: {}; `{} purge` deletes it once nothing of it is locked",
            locked.words(),
            crate::PLUGIN_NAME
        );
    } else if !done.deferred.is_empty() {
        log::warn!(
            "Backup {timestamp}: {} archives are still under the vault's retention lock and were kept; `{} purge` \
             deletes them once allowed",
            done.deferred.len(),
            crate::PLUGIN_NAME
        );
    }
    Ok(done)
}
