//! `purge CFG`: delete what `delete_backup` had to keep.
//!
//! With `on_retention_locked: defer`, a delete that a vault's lock policy
//! refuses (an archive younger than its retention period) keeps the archive
//! and marks its catalog entry; the rest of the backup is deleted. `purge`
//! tries those archives again: the ones now old enough go (archive, then
//! entry), the others stay marked. Safe to run from cron at any time.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::store::glacier::RETENTION_DENIED;

use super::Context;

pub async fn run(config: &Path) -> Result<()> {
    let ctx = Context::open(config).await?;
    // The whole folder: `check` probes (beside the backups) are archives too.
    let prefix = format!("{}/", ctx.config.folder);
    let pending = ctx.store.deferred_deletes(&prefix).await?;
    for key in &pending {
        // One at a time: a refusal (still locked) must not stop the others,
        // whatever on_retention_locked says.
        match ctx.store.delete_many(std::slice::from_ref(key)).await {
            Ok(()) => {}
            Err(Error::Storage(msg)) if msg.starts_with(RETENTION_DENIED) => {}
            Err(e) => return Err(e),
        }
    }
    let left = if pending.is_empty() { 0 } else { ctx.store.deferred_deletes(&prefix).await?.len() };
    let line = format!(
        "purge: {} deferred deletes found, {} done, {left} still refused by the retention lock",
        pending.len(),
        pending.len() - left
    );
    crate::log::info(&line);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    Ok(())
}
