//! `setup_plugin_for_backup|restore` and `cleanup_plugin_for_backup|restore`.
//!
//! gpbackup runs each hook at scope `master` once, then at `segment_host`
//! once per primary segment (not once per host, whatever the docs say), then
//! at `segment` once per primary segment, each wave concurrently. So only the
//! coordinator scope talks to the storage service; the other scopes check
//! the config copy on their host, which costs no request and is safe to run
//! any number of times at once. A setup failure aborts the backup before any
//! data moves, which is the cheapest moment to find a wrong key or bucket.

use crate::cli::{HookArgs, Scope};
use crate::error::Result;
use crate::layout;

use super::{Context, load_config};

pub async fn setup_for_backup(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args).await? else { return Ok(()) };
    // The bucket must exist: some servers (s3s-fs) would create it on the
    // first write, and an operator who typed the wrong name wants to know.
    check_readable(&ctx).await?;
    // Write and remove a probe where this backup's files will go: proves
    // write permission, and leaves nothing behind.
    let probe = format!("{}/.{}_probe_{}", args.dir.trim_end_matches('/'), crate::PLUGIN_NAME, std::process::id());
    let key = layout::key_for_path(&ctx.config.folder, &probe)?;
    ctx.store.put(&key, bytes::Bytes::new(), &Vec::new()).await?;
    ctx.store.delete_many(std::slice::from_ref(&key)).await?;
    crate::log::info(&format!("Setup for backup: {} is writable", ctx.store.url(&key)));
    Ok(())
}

pub async fn setup_for_restore(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args).await? else { return Ok(()) };
    check_readable(&ctx).await?;
    crate::log::info(&format!("Setup for restore: {} is readable", ctx.store.url(&ctx.config.folder)));
    Ok(())
}

/// The store, at coordinator scope; at the other scopes only the config is
/// checked and `None` returned.
async fn coordinator_context(args: &HookArgs) -> Result<Option<Context>> {
    let (scope, _) = args.scope()?;
    if scope != Scope::Coordinator {
        load_config(&args.config)?;
        return Ok(None);
    }
    Ok(Some(Context::open(&args.config).await?))
}

/// One small listing proves credentials, bucket and read permission.
async fn check_readable(ctx: &Context) -> Result<()> {
    let prefix = format!("{}/", ctx.config.folder);
    ctx.store.list_page(&prefix, None, Some(1)).await?;
    Ok(())
}

/// After a backup, on every host: abort the multipart uploads that
/// `backup_data` processes killed on this host left open (the coordinator
/// also those the service lists for the whole backup). gpbackup only logs a
/// cleanup failure, so a DIR that names no backup is not an error.
pub async fn cleanup_after_backup(args: &HookArgs) -> Result<()> {
    let (scope, _) = args.scope()?;
    let Ok(timestamp) = layout::timestamp_of_dir(&args.dir) else {
        return Ok(());
    };
    let ctx = Context::open(&args.config).await?;
    let prefix = layout::backup_prefix(&ctx.config.folder, &timestamp)?;
    super::cleanup::abort_leftovers(&ctx, &prefix, scope == Scope::Coordinator).await
}

/// Nothing to tidy after a restore; the arguments are checked.
pub fn cleanup_after_restore(args: &HookArgs) -> Result<()> {
    args.scope()?;
    Ok(())
}
