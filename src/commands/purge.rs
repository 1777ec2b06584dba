//! `purge CFG`: delete what `delete_backup` had to keep.
//!
//! With `on_retention_locked: defer`, a delete that a retention lock
//! refuses (a vault archive younger than its retention period) keeps the
//! data and marks it; the rest of the backup is deleted. `purge` tries
//! those again: the ones now allowed go, the others stay marked. Safe to
//! run from cron at any time.

use std::path::Path;

use crate::config::OnRetentionLocked;
use crate::config::Purpose;
use crate::engine::delete::{self, Deleted};
use crate::error::Result;
use crate::layout;

use super::Context;
use super::output::say;

pub async fn run(config: &Path, bypass_governance: bool) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    // The whole folder: `check` probes (beside the backups) are kept too.
    let prefix = layout::folder_prefix(&ctx.config.folder);
    let pending = ctx.store.deferred_deletes(&prefix).await?;
    let mut done = Deleted::default();
    if bypass_governance {
        log::warn!(
            "purge: --bypass-governance-retention given: GOVERNANCE retentions are deleted through (COMPLIANCE \
             retentions and legal holds still refuse)"
        );
    }
    let mut left = 0;
    for key in &pending {
        // One at a time: a refusal (still locked) must not stop the others,
        // whatever on_retention_locked says.
        if key.ends_with('/') {
            // A backup of a versioned bucket, kept whole while any of it was
            // locked: deleted whole now, or kept again.
            let deleted = delete::delete_prefix(&*ctx.store, key, OnRetentionLocked::Defer, bypass_governance).await?;
            if let Some(locked) = &deleted.locked {
                log::info!("purge: {} still kept: {}", ctx.store.url(key), locked.words());
            }
            if !deleted.deferred.is_empty() {
                left += 1;
            }
            done.deleted += deleted.deleted;
        } else {
            let before = done.deferred.len();
            delete::delete_keys(&*ctx.store, vec![key.clone()], OnRetentionLocked::Defer, &mut done).await?;
            left += done.deferred.len() - before;
        }
    }
    say(&format!(
        "purge: {} deferred deletes found, {} done, {left} still refused by the retention lock",
        pending.len(),
        pending.len() - left
    ));
    Ok(())
}
