//! `thaw CFG TIMESTAMP [--wait] [--tier T] [--days N] [--timeout DUR] [--status]`:
//! make an archived backup readable again.
//!
//! Payloads stored in an archived class (S3 Glacier Flexible Retrieval,
//! Deep Archive) or a vault cannot be read until a restore (a retrieval
//! job) has made a temporary copy, which takes minutes to two days. `thaw`
//! asks for that copy for every archived object of the backup (and of the
//! earlier backups an incremental one reads), reports what it found, and
//! with `--wait` follows the restores until all are readable. It is
//! idempotent: an object whose restore is under way or done is not asked
//! for again, so it is safe to rerun, from cron too. The work is the
//! engine's ([`crate::engine::thaw`]); this is its wording, shared with the
//! restore setup hook.

use std::path::Path;
use std::time::{Duration, Instant};

use super::Context;
use super::output::{Report, lifetime, storage};
use crate::config::Purpose;
use crate::config::{RestoreTier, Thaw};
use crate::engine::thaw::{self, Progress, Requested, Survey};
use crate::error::{Error, Result};
use crate::layout;

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub wait: bool,
    pub tier: Option<RestoreTier>,
    pub days: Option<u32>,
    pub timeout: Option<Duration>,
    /// Report only: request nothing.
    pub status_only: bool,
}

pub async fn run(config: &Path, timestamp: &str, options: &Options) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config, Purpose::Restore).await?;
    let settings = Thaw {
        tier: options.tier.unwrap_or(ctx.config.thaw.tier),
        days: options.days.unwrap_or(ctx.config.thaw.days),
        ..ctx.config.thaw
    };
    let mut out = Report::new();
    let prefixes = thaw::backup_prefixes(&*ctx.store, &ctx.config.folder, timestamp).await?;
    if prefixes.len() > 1 {
        let earlier: Vec<&str> = prefixes.iter().skip(1).map(|(ts, _)| ts.as_str()).collect();
        out.line(&format!("backup {timestamp} is incremental: its restore plan also reads {}", earlier.join(", ")));
    }
    let mut survey = thaw::survey(&ctx.store, &prefixes).await?;
    if survey.total == 0 {
        return Err(Error::not_found(format!(
            "backup {timestamp}: no objects under {}",
            ctx.store.url(&prefixes[0].1)
        )));
    }
    out.line(&format!("backup {timestamp}: {}", summary(&survey)));

    if !options.status_only && !survey.archived.is_empty() {
        let outcome = thaw::request_all(&ctx.store, &survey.archived, settings.tier, settings.days).await?;
        out.line(&format!(
            "requested {} restores (tier {}, {}){}",
            outcome.started,
            settings.tier.as_str(),
            lifetime(ctx.store.restore_lifetime(settings.days)),
            note(&outcome)
        ));
        survey.archived_to_restoring();
    }

    if options.wait && !survey.pending().is_empty() {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let request = (!options.status_only).then_some(settings);
        wait(&ctx, &mut survey, deadline, request, &mut out).await.map_err(|e| {
            e.with_hint(format!(
                "they go on: run `{} thaw <plugin config> {timestamp} --wait` again later",
                crate::PLUGIN_NAME
            ))
        })?;
    }

    let pending = survey.pending().len();
    if pending == 0 {
        out.line(&format!("all {} objects of backup {timestamp} are readable{}", survey.total, expiry_note(&survey)));
    } else if options.status_only && !survey.archived.is_empty() {
        out.line(&format!(
            "{} objects are archived with no restore requested: run `{} thaw <plugin config> {timestamp}` to request them",
            survey.archived.len(),
            crate::PLUGIN_NAME
        ));
    } else {
        out.line(&format!(
            "{pending} of {} objects are not readable yet (restores take minutes to hours); run `{} thaw <plugin \
             config> {timestamp} --wait` to follow them",
            survey.total,
            crate::PLUGIN_NAME
        ));
    }
    Ok(())
}

/// [`thaw::wait`] with its progress drawn on `out`.
pub async fn wait(
    ctx: &Context,
    survey: &mut Survey,
    deadline: Option<Instant>,
    request: Option<Thaw>,
    out: &mut Report,
) -> Result<()> {
    let result = thaw::wait(&ctx.store, survey, deadline, request, &mut |p: Progress| {
        let counts = format!("{} of {} restores readable, {} under way", p.ready, p.total, p.total - p.ready);
        out.progress(&format!("{counts} ({} elapsed)", thaw::human_duration(p.elapsed)), &counts);
    })
    .await;
    out.end_progress();
    result
}

/// `4 objects: 2 readable as stored, 0 restored, ...`.
pub fn summary(survey: &Survey) -> String {
    let mut text = format!(
        "{} objects: {} readable as stored, {} restored, {} restoring, {} archived without a restore",
        survey.total,
        survey.instant,
        survey.restored,
        survey.restoring.len(),
        survey.archived.len()
    );
    if let Some((key, why)) = survey.failed.first() {
        text.push_str(&format!(" ({} of them after a failed restore, e.g. {key}: {why})", survey.failed.len()));
    }
    if !survey.storage.is_empty() {
        let classes: Vec<String> = survey.storage.iter().map(|(c, n)| format!("{} {n}", storage(c))).collect();
        text.push_str(&format!(" (cold storage: {})", classes.join(", ")));
    }
    text.push_str(&expiry_note(survey));
    text
}

fn expiry_note(survey: &Survey) -> String {
    match survey.earliest_expiry {
        Some(at) => format!("; restored copies readable until {} UTC at the earliest", at.format("%Y-%m-%d %H:%M")),
        None => String::new(),
    }
}

fn note(requested: &Requested) -> String {
    let mut notes = Vec::new();
    if requested.already_restoring > 0 {
        notes.push(format!("{} were already under way", requested.already_restoring));
    }
    if requested.already_readable > 0 {
        notes.push(format!("{} were readable already", requested.already_readable));
    }
    if notes.is_empty() { String::new() } else { format!("; {}", notes.join(", ")) }
}
