//! `setup_plugin_for_backup|restore` and `cleanup_plugin_for_backup|restore`.
//!
//! gpbackup runs each hook at scope `master` once, then at `segment_host`
//! once per primary segment (not once per host, whatever the docs say), then
//! at `segment` once per primary segment, each wave concurrently. So only the
//! coordinator scope talks to the storage service; the other scopes check
//! the config copy on their host, which costs no request and is safe to run
//! any number of times at once. A setup failure aborts the backup before any
//! data moves, which is the cheapest moment to find a wrong key or bucket.

use std::time::Instant;

use crate::cli::{HookArgs, Scope};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::ObjectClass;

use super::thaw::{self, Report};
use super::{Context, load_config};

pub async fn setup_for_backup(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args).await? else { return Ok(()) };
    // The bucket must exist: some servers (s3s-fs) would create it on the
    // first write, and an operator who typed the wrong name wants to know.
    check_readable(&ctx).await?;
    // A vault is created here when missing (and its lock state logged).
    for (what, value) in ctx.store.preflight(true).await? {
        crate::log::info(&format!("Setup for backup: {what}: {value}"));
    }
    // Write and remove a probe where this backup's files will go: proves
    // write permission, and leaves nothing behind.
    let probe = format!("{}/.{}_probe_{}", args.dir.trim_end_matches('/'), crate::PLUGIN_NAME, std::process::id());
    // Probed as a payload: a server that refuses the configured
    // storage_class (or encryption) fails here, before any data moves.
    let key = layout::key_for_path(&ctx.config.folder, &probe)?;
    let classes: &[ObjectClass] = if ctx.config.storage_class == ctx.config.metadata_storage_class {
        &[ObjectClass::Payload]
    } else {
        &[ObjectClass::Payload, ObjectClass::Metadata]
    };
    for class in classes {
        ctx.store.put(&key, bytes::Bytes::new(), &Vec::new(), *class).await?;
        ctx.store.delete_many(std::slice::from_ref(&key)).await?;
    }
    crate::log::info(&format!("Setup for backup: {} is writable", ctx.store.url(&key)));
    Ok(())
}

pub async fn setup_for_restore(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args).await? else { return Ok(()) };
    check_readable(&ctx).await?;
    crate::log::info(&format!("Setup for restore: {} is readable", ctx.store.url(&ctx.config.folder)));
    match layout::timestamp_of_path(&args.dir) {
        Some(ts) => check_thawed(&ctx, &ts).await,
        None => Ok(()),
    }
}

/// Every object the restore will read must be readable: stored in an
/// instant-access class, or restored from an archived one. Otherwise fail
/// now, naming `thaw`, rather than hours into the restore; or, with
/// `restore_auto`, request the restores, and with `restore_wait_timeout`,
/// wait for them.
async fn check_thawed(ctx: &Context, timestamp: &str) -> Result<()> {
    let prefixes = thaw::backup_prefixes(ctx, timestamp).await?;
    let mut survey = thaw::survey(&ctx.store, &prefixes).await?;
    let mut out = Report::quiet();
    out.line(&format!("Setup for restore: backup {timestamp}: {}", survey.summary()));
    if survey.pending().is_empty() {
        return Ok(());
    }
    let settings = ctx.config.thaw;
    let thaw_command = format!("{} thaw <plugin config> {timestamp} --wait", crate::PLUGIN_NAME);
    if settings.auto && !survey.archived.is_empty() {
        let requested = thaw::request_all(&ctx.store, &survey.archived, settings.tier, settings.days).await?;
        out.line(&format!(
            "Setup for restore: requested {} restores (tier {}, {}; restore_auto)",
            requested.started,
            settings.tier.as_str(),
            ctx.store.restored_lifetime(settings.days)
        ));
        survey.restoring.append(&mut survey.archived);
    }
    if !survey.archived.is_empty() {
        return Err(Error::Archived(format!(
            "backup {timestamp} cannot be restored yet: {} of {} objects are in archived storage with no restore \
             requested{}; run `{thaw_command}` first (or set restore_auto: true and restore_wait_timeout)",
            survey.archived.len(),
            survey.total,
            under_way(&survey)
        )));
    }
    if settings.wait_timeout.is_zero() {
        return Err(Error::Archived(format!(
            "backup {timestamp} cannot be restored yet: {} of {} objects are still being restored from archived \
             storage; run `{thaw_command}` and restore when it reports them readable (or set restore_wait_timeout)",
            survey.restoring.len(),
            survey.total
        )));
    }
    let deadline = Instant::now() + settings.wait_timeout;
    let request = settings.auto.then_some(settings);
    thaw::wait(&ctx.store, &mut survey, Some(deadline), request, &mut out).await.map_err(|e| match e {
        Error::Archived(msg) => Error::Archived(format!(
            "backup {timestamp} cannot be restored yet: {msg} (restore_wait_timeout {})",
            thaw::human_duration(settings.wait_timeout)
        )),
        other => other,
    })?;
    out.line(&format!("Setup for restore: all {} objects of backup {timestamp} are readable", survey.total));
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

fn under_way(survey: &thaw::Survey) -> String {
    match survey.restoring.len() {
        0 => String::new(),
        n => format!(" ({n} more are being restored)"),
    }
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
    let Some(timestamp) = layout::timestamp_of_path(&args.dir) else {
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
