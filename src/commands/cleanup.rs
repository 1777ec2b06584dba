//! `cleanup CFG TIMESTAMP` (our own admin command) and the work behind
//! `cleanup_plugin_for_backup`: abort the multipart uploads that killed
//! `backup_data` processes left open under a backup, and delete manifests
//! whose object never completed. Nothing here touches a completed object.

use std::collections::HashSet;
use std::path::Path;

use crate::config::Purpose;
use crate::engine::journal;
use crate::error::Result;
use crate::layout;
use crate::store::{DELETE_BATCH, paging};

use super::Context;

pub async fn run(config: &Path, timestamp: &str) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config, Purpose::Other).await?;
    let prefix = layout::backup_prefix(&ctx.config.folder, timestamp)?;
    abort_leftovers(&ctx, &prefix, true).await
}

/// Aborts the uploads under `prefix` noted in this host's journal and, with
/// `everywhere`, those the service lists (other hosts' included), then
/// removes orphaned manifests.
pub async fn abort_leftovers(ctx: &Context, prefix: &str, everywhere: bool) -> Result<()> {
    if everywhere {
        // Uploads that got as far as an intent are finished or undone
        // first (completing one again tells whether its archive exists);
        // only then are the uploads still open aborted.
        let recovered = ctx.store.recover(prefix).await?;
        for (key, why) in &recovered.left {
            log::warn!("Cleanup of {}: {} was left: {why}", ctx.store.url(prefix), ctx.store.url(key));
        }
        if recovered.settled > 0 {
            log::info!("Cleanup of {}: settled {} interrupted uploads", ctx.store.url(prefix), recovered.settled);
        }
    }
    let mut aborted = 0;
    for entry in journal::entries(&ctx.store.url(prefix)) {
        ctx.store.abort_upload(&entry.key, &entry.upload_id).await?;
        entry.forget();
        aborted += 1;
    }
    let mut orphans = 0;
    if everywhere {
        if let Some(open) = ctx.store.open_uploads(prefix).await? {
            for upload in open {
                ctx.store.abort_upload(&upload.key, &upload.upload_id).await?;
                aborted += 1;
            }
        }
        let objects = paging::keys(&*ctx.store, prefix).await?;
        let present: HashSet<&str> = objects.iter().map(String::as_str).collect();
        // A manifest is stale when its object is not there, unless an
        // upload of it still waits to be settled (its only proof).
        let pending: HashSet<&str> = objects
            .iter()
            .filter_map(|k| layout::tagged_catalog_owner(k))
            .filter(|(_, tag)| matches!(tag, layout::EntryTag::Intent(_)))
            .map(|(owner, _)| owner)
            .collect();
        let stale: Vec<String> = objects
            .iter()
            .filter(|k| {
                layout::manifest_owner(k)
                    .is_some_and(|(object, _)| !present.contains(object) && !pending.contains(object))
            })
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
