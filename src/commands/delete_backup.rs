//! `delete_backup CFG TS`: every object of backup TS, and nothing else.
//!
//! Called by gpbackup_manager, gpbackman and plugin_test.sh, never by
//! gpbackup itself. The prefix ends in a slash, so a sibling backup is never
//! touched; listing and deletion go a page (1,000 keys) at a time. Deleting
//! a backup that is already gone succeeds, so a rerun after a failure is safe.

use std::path::Path;

use crate::error::Result;
use crate::{layout, store};

use super::Context;

pub async fn run(config: &Path, timestamp: &str) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config).await?;
    let prefix = layout::backup_prefix(&ctx.config.folder, timestamp)?;
    let deleted = store::delete_prefix(&*ctx.store, &prefix).await?;
    crate::log::info(&format!("Deleted {deleted} objects of backup {timestamp} under {}", ctx.store.url(&prefix)));
    let kept = ctx.store.deferred_deletes(&prefix).await?;
    if !kept.is_empty() {
        crate::log::warn(&format!(
            "Backup {timestamp}: {} archives are still under the vault's retention lock and were kept; `{} purge`              deletes them once allowed",
            kept.len(),
            crate::PLUGIN_NAME
        ));
    }
    Ok(())
}
