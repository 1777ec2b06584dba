//! `setup_plugin_for_backup|restore` and `cleanup_plugin_for_backup|restore`.
//!
//! gpbackup runs each hook at scope `master` once, then at `segment_host`
//! once per primary segment (not once per host, whatever the docs say), then
//! at `segment` once per primary segment, each wave concurrently. So only the
//! coordinator scope talks to the storage service; the other scopes check
//! the config copy on their host, which costs no request and is safe to run
//! any number of times at once. A setup failure aborts the backup before any
//! data moves, which is the cheapest moment to find a wrong key or bucket.
//!
//! No hook asks for more permission than the Go plugin's: a hook fails only
//! for what the Go plugin also fails for (an invalid config; a bucket that
//! is missing or cannot be written at backup setup), or for a definite
//! finding it exists to report (a backup that needs `thaw`). Optional steps
//! (the listing check, the probe's delete, the survey of archived objects,
//! the search for open uploads) that are denied or cannot reach the service
//! are logged as warnings naming the permission that would enable them, and
//! the hook goes on. The cleanup hooks never fail a backup and give up on a
//! service that is down within seconds.

use std::time::Instant;

use super::args::{HookArgs, Scope};
use super::output::{Report, lifetime};
use super::{Context, load_config, wording};
use crate::config::Purpose;
use crate::engine::thaw as engine_thaw;
use crate::error::{Error, Kind, Result};
use crate::layout;
use crate::store::ObjectClass;

pub async fn setup_for_backup(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args, Purpose::Backup).await? else { return Ok(()) };
    // The bucket must exist: some servers (s3s-fs) would create it on the
    // first write, and an operator who typed the wrong name wants to know.
    // Listing it is optional (s3:ListBucket is not a backup's permission).
    optional("the bucket listing check", "s3:ListBucket", check_readable(&ctx).await)?;
    // A vault is created here when missing (and its lock state logged).
    let facts = ctx.store.prepare(true).await.map_err(wording::missing_vault)?;
    for (what, value) in wording::facts(&facts) {
        log::info!("Setup for backup: {what}: {value}");
    }
    // A lock asked for needs a bucket that can hold it: found now, not
    // after the first object is written unlocked.
    if ctx.config.object_lock.is_some() {
        let bucket = ctx.store.bucket_lock().await.map_err(|e| e.context("setup for backup: the Object Lock check"))?;
        for (what, value) in wording::bucket_lock_facts(&bucket) {
            log::info!("Setup for backup: {what}: {value}");
        }
        if let Some(error) = wording::bucket_cannot_lock(&bucket, &ctx.store.url("")) {
            return Err(error);
        }
    }
    // Write and remove a probe where this backup's files will go: proves
    // write permission, and leaves nothing behind.
    let key = layout::key_for_path(&ctx.config.folder, &layout::setup_probe_path(&args.dir))?;
    // Probed as a payload: a server that refuses the configured
    // storage_class (or encryption) fails here, before any data moves.
    let classes: &[ObjectClass] = if ctx.config.storage_class == ctx.config.metadata_storage_class {
        &[ObjectClass::Payload]
    } else {
        &[ObjectClass::Payload, ObjectClass::Metadata]
    };
    for class in classes {
        ctx.store.put_probe(&key, bytes::Bytes::new(), *class).await?;
        // Left under this backup's directory when its delete is denied:
        // delete_backup of the backup removes it.
        let deleted = crate::engine::delete::delete_probe(&*ctx.store, &key).await.map(|_| ());
        if let Err(e) = deleted {
            log::warn!(
                "Setup for backup: the write probe {} was not deleted ({e}); s3:DeleteObject would delete it, and \
                 delete_backup of this backup will",
                ctx.store.url(&key)
            );
        }
    }
    log::info!("Setup for backup: {} is writable", ctx.store.url(&key));
    Ok(())
}

/// An optional step's result: a refusal or an unreachable service is a
/// warning naming what was skipped and the permission that enables it.
fn optional<T>(step: &str, permission: &str, result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.is(Kind::AccessDenied) || e.is(Kind::Transient) => {
            log::warn!("{step} was skipped: {e} (it needs {permission})");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub async fn setup_for_restore(args: &HookArgs) -> Result<()> {
    let Some(ctx) = coordinator_context(args, Purpose::Restore).await? else { return Ok(()) };
    if optional("the bucket listing check", "s3:ListBucket", check_readable(&ctx).await)?.is_none() {
        return Ok(());
    }
    log::info!("Setup for restore: {} is readable", ctx.store.url(&ctx.config.folder));
    match layout::timestamp_of_path(&args.dir) {
        Some(ts) => {
            let survey = check_thawed(&ctx, &ts).await;
            optional("the survey of archived objects", "s3:ListBucket and s3:GetObject", survey).map(|_| ())
        }
        None => Ok(()),
    }
}

/// Every object the restore will read must be readable: stored in an
/// instant-access class, or restored from an archived one. Otherwise fail
/// now, naming `thaw`, rather than hours into the restore; or, with
/// `restore_auto`, request the restores, and with `restore_wait_timeout`,
/// wait for them.
async fn check_thawed(ctx: &Context, timestamp: &str) -> Result<()> {
    let prefixes = engine_thaw::backup_prefixes(&*ctx.store, &ctx.config.folder, timestamp).await?;
    let mut survey = engine_thaw::survey(&ctx.store, &prefixes).await?;
    let mut out = Report::quiet();
    out.line(&format!("Setup for restore: backup {timestamp}: {}", super::thaw::summary(&survey)));
    if survey.pending().is_empty() {
        return Ok(());
    }
    let settings = ctx.config.thaw;
    let thaw_command = format!("{} thaw <plugin config> {timestamp} --wait", crate::PLUGIN_NAME);
    if settings.auto && !survey.archived.is_empty() {
        let requested = engine_thaw::request_all(&ctx.store, &survey.archived, settings.tier, settings.days).await?;
        out.line(&format!(
            "Setup for restore: requested {} restores (tier {}, {}; restore_auto)",
            requested.started,
            settings.tier.as_str(),
            lifetime(ctx.store.restore_lifetime(settings.days))
        ));
        survey.archived_to_restoring();
    }
    if !survey.archived.is_empty() {
        return Err(Error::archived(format!(
            "backup {timestamp} cannot be restored yet: {} of {} objects are in archived storage with no restore \
             requested{} (e.g. {}){}",
            survey.archived.len(),
            survey.total,
            under_way(&survey),
            examples(&survey.archived),
            failed(&survey)
        ))
        .with_hint(format!("run `{thaw_command}` first (or set restore_auto: true and restore_wait_timeout)")));
    }
    if settings.wait_timeout.is_zero() {
        return Err(Error::archived(format!(
            "backup {timestamp} cannot be restored yet: {} of {} objects are still being restored from archived \
             storage (e.g. {})",
            survey.restoring.len(),
            survey.total,
            examples(&survey.restoring)
        ))
        .with_hint(format!(
            "run `{thaw_command}` and restore when it reports them readable (or set restore_wait_timeout)"
        )));
    }
    let deadline = Instant::now() + settings.wait_timeout;
    let request = settings.auto.then_some(settings);
    super::thaw::wait(ctx, &mut survey, Some(deadline), request, &mut out).await.map_err(|e| {
        let message = format!(
            "backup {timestamp} cannot be restored yet: {} (restore_wait_timeout {})",
            e.message(),
            engine_thaw::human_duration(settings.wait_timeout)
        );
        e.with_message(message).with_hint(format!("they go on: run `{thaw_command}` again later"))
    })?;
    out.line(&format!("Setup for restore: all {} objects of backup {timestamp} are readable", survey.total));
    Ok(())
}

/// The store, at coordinator scope; at the other scopes only the config is
/// checked and `None` returned.
async fn coordinator_context(args: &HookArgs, purpose: Purpose) -> Result<Option<Context>> {
    let (scope, _) = args.scope()?;
    if scope != Scope::Coordinator {
        load_config(&args.config, purpose)?;
        return Ok(None);
    }
    // The first line of each backup and restore in the coordinator's log
    // says which build ran (one line per run: segments would repeat it).
    log::info!("{}", super::version::build_summary());
    Ok(Some(Context::open(&args.config, purpose).await?))
}

fn under_way(survey: &engine_thaw::Survey) -> String {
    match survey.restoring.len() {
        0 => String::new(),
        n => format!(" ({n} more are being restored)"),
    }
}

/// A few of `keys`, for a message that names what it counts.
fn examples(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(3).map(String::as_str).collect();
    let more = keys.len().saturating_sub(shown.len());
    if more > 0 { format!("{} and {more} more", shown.join(", ")) } else { shown.join(", ") }
}

/// Why the last restores failed, when some did.
fn failed(survey: &engine_thaw::Survey) -> String {
    match survey.failed.first() {
        Some((key, why)) => format!("; {} restores failed, e.g. {key}: {why}", survey.failed.len()),
        None => String::new(),
    }
}

/// One small listing proves credentials, bucket and read permission.
async fn check_readable(ctx: &Context) -> Result<()> {
    ctx.store.list_page(&layout::folder_prefix(&ctx.config.folder), None, Some(1)).await?;
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
    // Everything here is optional: what it cannot do now, `cleanup` (or
    // the next cleanup) does later, and gpbackup must not wait on it.
    let work = async {
        let ctx = Context::open_quick(&args.config, Purpose::Backup).await?;
        let prefix = layout::backup_prefix(&ctx.config.folder, &timestamp)?;
        super::cleanup::abort_leftovers(&ctx, &prefix, scope == Scope::Coordinator).await
    };
    match tokio::time::timeout(CLEANUP_BOUND, work).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!(
            "Cleanup after backup {timestamp} was skipped: {e} (aborting open uploads needs \
             s3:ListBucketMultipartUploads and s3:AbortMultipartUpload; `cleanup` does it later)"
        ),
        Err(_) => log::warn!(
            "Cleanup after backup {timestamp} gave up after {}s (the service does not answer); `cleanup` does it \
             later",
            CLEANUP_BOUND.as_secs()
        ),
    }
    Ok(())
}

/// The longest a cleanup hook spends before giving up, with a warning.
const CLEANUP_BOUND: std::time::Duration = std::time::Duration::from_secs(8);

/// Nothing to tidy after a restore; the arguments are checked.
pub fn cleanup_after_restore(args: &HookArgs) -> Result<()> {
    args.scope()?;
    Ok(())
}
