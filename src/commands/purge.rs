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

pub async fn run(config: &Path) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    // The whole folder: `check` probes (beside the backups) are kept too.
    let prefix = layout::folder_prefix(&ctx.config.folder);
    let pending = ctx.store.deferred_deletes(&prefix).await?;
    let mut done = Deleted::default();
    for key in &pending {
        // One at a time: a refusal (still locked) must not stop the others,
        // whatever on_retention_locked says.
        delete::delete_keys(&*ctx.store, vec![key.clone()], OnRetentionLocked::Defer, &mut done).await?;
    }
    let left = done.deferred.len();
    say(&format!(
        "purge: {} deferred deletes found, {} done, {left} still refused by the retention lock",
        pending.len(),
        pending.len() - left
    ));
    Ok(())
}
