//! `cleanup CFG TIMESTAMP` (our own admin command) and the work behind
//! `cleanup_plugin_for_backup`: abort the multipart uploads that killed
//! `backup_data` processes left open under a backup, and delete manifests
//! whose object never completed. Nothing here touches a completed object.

use std::collections::HashSet;
use std::path::Path;

use crate::engine::journal;
use crate::error::Result;
use crate::layout;
use crate::store::{DELETE_BATCH, paging};

use super::Context;

pub async fn run(config: &Path, timestamp: &str) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config).await?;
    let prefix = layout::backup_prefix(&ctx.config.folder, timestamp)?;
    abort_leftovers(&ctx, &prefix, true).await
}

/// Aborts the uploads under `prefix` noted in this host's journal and, with
/// `everywhere`, those the service lists (other hosts' included), then
/// removes orphaned manifests.
pub async fn abort_leftovers(ctx: &Context, prefix: &str, everywhere: bool) -> Result<()> {
    let mut aborted = 0;
    for entry in journal::entries(&ctx.store.url(prefix)) {
        ctx.store.abort_upload(&entry.key, &entry.upload_id).await?;
        entry.forget();
        aborted += 1;
    }
    let mut orphans = 0;
    if everywhere {
        if let Some(open) = ctx.store.open_uploads(prefix).await? {
            for (key, upload_id) in open {
                ctx.store.abort_upload(&key, &upload_id).await?;
                aborted += 1;
            }
        }
        let objects = paging::keys(&*ctx.store, prefix).await?;
        let present: HashSet<&str> = objects.iter().map(String::as_str).collect();
        let stale: Vec<String> = objects
            .iter()
            .filter(|k| layout::manifest_owner(k).is_some_and(|(object, _)| !present.contains(object)))
            .cloned()
            .collect();
        for batch in stale.chunks(DELETE_BATCH) {
            ctx.store.delete_many(batch).await?;
        }
        orphans = stale.len();
    }
    if aborted > 0 || orphans > 0 {
        log::info!(
            "Cleanup of {}: aborted {aborted} open uploads, deleted {orphans} orphaned manifests",
            ctx.store.url(prefix)
        );
    }
    Ok(())
}
