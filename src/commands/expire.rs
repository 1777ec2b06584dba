//! `expire CFG --keep-last N | --older-than D [--keep-daily N] [--keep-weekly N]
//! [--keep-monthly N] [--grace D] [--yes]`: delete old backups safely.
//!
//! The plan ([`crate::engine::catalog::retention`]) applies the rules per
//! database to the backups gprestore can restore, and never deletes the
//! newest restorable backup of a database, a backup a kept incremental
//! needs, one a retention lock holds, one dated in the future or whose files
//! cannot be read, or one that is not complete and was last written less
//! than `--grace` ago (it may still be running). Without `--yes` it only
//! prints the plan (the cutoffs as dates, then newest first one line per
//! backup with the reasons). With `--yes` it deletes newest first, each
//! backup through `delete_backup`'s own code; one backup's failure never
//! stops the others (but the backups it still needs are skipped), and the
//! summary says what happened to each. Only `--yes` needs delete
//! permission.

use std::collections::BTreeMap;

use chrono::{Local, NaiveDateTime};

use super::Context;
use super::args::ExpireArgs;
use super::output::{Report, backup_type, count, problems, short_duration, status_word, until_word};
use crate::config::Purpose;
use crate::engine::catalog::retention::{self, Candidate, Decision, Expired, Guard, Keep, Planned, Rules};
use crate::engine::catalog::{self, Backup, Catalog};
use crate::error::{Error, Result};
use crate::layout;

pub async fn run(args: &ExpireArgs) -> Result<()> {
    let ctx = Context::open(&args.config, Purpose::Other).await?;
    let rules = Rules {
        keep_last: args.keep_last.map(|n| n as usize),
        older_than: args.older_than,
        keep_daily: args.keep_daily as usize,
        keep_weekly: args.keep_weekly as usize,
        keep_monthly: args.keep_monthly as usize,
        grace: args.grace,
    };
    let vault = ctx.vault_retention().await;
    let mut catalog = catalog::catalog(&ctx.store, &ctx.config.folder, ctx.reads(), vault.as_ref()).await?;
    catalog::object_lock::fill(&ctx.store, &mut catalog).await?;
    let root_key = format!("{}backups/", layout::folder_prefix(&ctx.config.folder));
    let (activity, unlisted) = last_activity(&ctx, &catalog, &root_key).await?;
    let verdicts = catalog.judge();
    let candidates: Vec<Candidate> = catalog
        .backups
        .iter()
        .map(|b| Candidate::of(b, &verdicts[b.timestamp()], activity.get(b.timestamp()).copied()))
        .collect();
    let now = Local::now().naive_local();
    let plan = retention::plan(&candidates, &rules, now);
    let root = ctx.store.url(&root_key);
    let mut out = Report::new();
    out.line(&format!("expire: {} under {root}; rules: {}", count(plan.len(), "backup"), rules_word(args)));
    if let Some(why) = unlisted {
        out.line(&why);
    }
    let minute = |at: NaiveDateTime| at.format("%Y-%m-%d %H:%M").to_string();
    let before = |d: std::time::Duration| chrono::Duration::from_std(d).ok().and_then(|d| now.checked_sub_signed(d));
    if let Some(cutoff) = args.older_than.and_then(before) {
        let d = short_duration(args.older_than.unwrap_or_default());
        out.line(&format!("--older-than {d}: backups before {}", minute(cutoff)));
    }
    if let Some(cutoff) = before(args.grace) {
        out.line(&format!(
            "--grace {}: backups that are not complete, last written before {}",
            short_duration(args.grace),
            minute(cutoff)
        ));
    }
    for p in &plan {
        out.line(&plan_line(p, catalog.get(&p.timestamp), args, now));
    }
    let doomed: Vec<&Planned> = plan.iter().filter(|p| p.deleted()).collect();
    let size = |list: &[&Planned]| {
        let backups = list.iter().filter_map(|p| catalog.get(&p.timestamp));
        backups.fold((0u64, 0u64), |(o, b), x| (o + x.found.objects, b + x.found.bytes))
    };
    let (objects, bytes) = size(&doomed);
    if !args.yes {
        out.line(&format!(
            "dry run: {} ({}, {}) would be deleted, {} kept; run again with --yes to delete them",
            count(doomed.len(), "backup"),
            count(objects as usize, "object"),
            crate::size::human(bytes),
            plan.len() - doomed.len()
        ));
        return Ok(());
    }

    let mut guard = Guard::default();
    let (mut deleted, mut held, mut failed, mut skipped) = (0usize, 0usize, 0usize, 0usize);
    for p in &doomed {
        let needs = catalog.get(&p.timestamp).map(Backup::depends_on).unwrap_or_default();
        if let Some(dependent) = guard.blocked(&p.timestamp).map(str::to_string) {
            skipped += 1;
            guard.failed(&p.timestamp, &needs);
            out.line(&format!(
                "skipped  {}: the delete of {dependent} failed, and its restore still needs this backup",
                p.timestamp
            ));
            continue;
        }
        match super::delete_backup::delete(&ctx, &p.timestamp, false).await {
            Ok(done) if done.versions_kept > 0 => {
                // Still there, in part or whole: what it needs stays too.
                held += 1;
                guard.failed(&p.timestamp, &needs);
                let why = done.locked.as_ref().map(|l| format!(" ({})", l.words())).unwrap_or_default();
                out.line(&format!(
                    "kept for purge  {}: S3 Object Lock refused the delete of {}{why}; {} deleted before the \
                     refusal; `purge` deletes the rest once the lock allows",
                    p.timestamp,
                    count(done.versions_kept as usize, "object version"),
                    count(done.deleted as usize, "version"),
                ));
            }
            Ok(done) if done.deferred.is_empty() => {
                deleted += 1;
                out.line(&format!("deleted  {}: {}", p.timestamp, count(done.deleted as usize, "object")));
            }
            Ok(done) => {
                deleted += 1;
                out.line(&format!(
                    "deleted  {}: {}; {} archives kept for `purge` (vault lock)",
                    p.timestamp,
                    count(done.deleted as usize, "object"),
                    done.deferred.len()
                ));
            }
            Err(e) => {
                failed += 1;
                guard.failed(&p.timestamp, &needs);
                out.line(&format!("FAILED   {}: {e}", p.timestamp));
            }
        }
    }
    let held_word = if held > 0 { format!(", {held} kept for purge") } else { String::new() };
    out.line(&format!(
        "expire: {deleted} deleted{held_word}, {failed} failed, {skipped} skipped, {} kept",
        plan.len() - doomed.len()
    ));
    if failed + skipped > 0 {
        return Err(Error::service(format!(
            "expire: {} of {} deletes did not happen ({failed} failed, {skipped} skipped; the report on stdout names \
             them); a rerun retries them",
            failed + skipped,
            doomed.len()
        )));
    }
    Ok(())
}

/// Each backup's last write, local time ([`catalog::last_activity`]), and
/// a line saying why open uploads could not be listed, when they could not.
async fn last_activity(
    ctx: &Context,
    catalog: &Catalog,
    root: &str,
) -> Result<(BTreeMap<String, NaiveDateTime>, Option<String>)> {
    let (activity, unlisted) = catalog::last_activity(&ctx.store, catalog, root).await?;
    let local = activity.into_iter().map(|(ts, at)| (ts, at.with_timezone(&Local).naive_local())).collect();
    let why = unlisted.map(|e| {
        log::warn!("expire: the open uploads under {} could not be listed: {e}", ctx.store.url(root));
        format!(
            "the open uploads under {} could not be listed (s3:ListBucketMultipartUploads?): backups are judged by \
             their newest object",
            ctx.store.url(root)
        )
    });
    Ok((local, why))
}

fn rules_word(args: &ExpireArgs) -> String {
    let mut rules = Vec::new();
    if let Some(n) = args.keep_last {
        rules.push(format!("--keep-last {n}"));
    }
    if let Some(d) = args.older_than {
        rules.push(format!("--older-than {}", short_duration(d)));
    }
    for (name, n) in [("daily", args.keep_daily), ("weekly", args.keep_weekly), ("monthly", args.keep_monthly)] {
        if n > 0 {
            rules.push(format!("--keep-{name} {n}"));
        }
    }
    rules.push(format!("--grace {}", short_duration(args.grace)));
    rules.join(", ")
}

/// `delete  20240316000000  full         complete    not kept by the rules`.
fn plan_line(p: &Planned, backup: Option<&Backup>, args: &ExpireArgs, now: NaiveDateTime) -> String {
    let (action, why) = match &p.decision {
        Decision::Keep(reasons) => {
            let database = backup.and_then(|b| b.config.as_ref()).map(|c| c.database_name.as_str()).unwrap_or("");
            ("keep", reasons.iter().map(|r| keep_word(r, args, now, database)).collect::<Vec<_>>().join("; "))
        }
        Decision::Delete(why) => ("delete", delete_word(*why, backup, args)),
    };
    let kind = backup.map_or("-", backup_type);
    let size = backup.map_or_else(|| "-".to_string(), |b| crate::size::human(b.found.bytes));
    let mut line = format!("{action:<6}  {}  {kind:<11}  {:<10}  {size:>9}  {why}", p.timestamp, status_word(p.status));
    if !p.absent_needs.is_empty() {
        line.push_str(&format!(" (its restore plan names {}, not in the bucket)", p.absent_needs.join(", ")));
    }
    line
}

fn keep_word(reason: &Keep, args: &ExpireArgs, now: NaiveDateTime, database: &str) -> String {
    match reason {
        Keep::Newest(db) => format!("newest restorable backup of {db}"),
        Keep::Last => format!("--keep-last {}", args.keep_last.unwrap_or(0)),
        Keep::Daily => format!("--keep-daily {}", args.keep_daily),
        Keep::Weekly => format!("--keep-weekly {}", args.keep_weekly),
        Keep::Monthly => format!("--keep-monthly {}", args.keep_monthly),
        Keep::Younger => {
            format!("younger than --older-than {}", args.older_than.map(short_duration).unwrap_or_default())
        }
        Keep::Running(last) => {
            let ago = last
                .map(|at| format!("last written {} ago", short_age(now.signed_duration_since(at))))
                .unwrap_or_else(|| "last written at its timestamp".to_string());
            format!("not complete, {ago}: younger than --grace {}, may still be running", short_duration(args.grace))
        }
        Keep::Locked(until) => format!("retention lock {}", until_word(until)),
        Keep::NotADate => "its timestamp is not a date".to_string(),
        Keep::Future => format!(
            "dated in the future (after {}): rules never delete it, delete_backup does",
            (now + retention::CLOCK_SKEW).format("%Y-%m-%d %H:%M")
        ),
        Keep::Unreadable => {
            "its config or TOC cannot be read or parsed: rules never delete it, delete_backup does".to_string()
        }
        Keep::Sealed => {
            "encrypted, and no private key here reads its config: run expire with encryption_identity_file to judge it"
                .to_string()
        }
        Keep::MetadataOnly { oldest } => {
            format!("metadata only, newer than {oldest}, the oldest kept data backup of {database}")
        }
        Keep::NeededBy(ts) => format!("the restore of {ts} needs it"),
    }
}

/// `3h`, `2d`, `45m`, `0m`: an age in its largest whole unit.
fn short_age(age: chrono::TimeDelta) -> String {
    let minutes = age.num_minutes().max(0);
    match minutes {
        m if m >= 2 * 24 * 60 => format!("{}d", m / (24 * 60)),
        m if m >= 120 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

fn delete_word(why: Expired, backup: Option<&Backup>, args: &ExpireArgs) -> String {
    let detail = || backup.map(problems).unwrap_or_default().join("; ");
    match why {
        Expired::NotKept => "no rule keeps it".to_string(),
        Expired::OlderMetadata => "metadata only, older than every kept data backup of its database".to_string(),
        Expired::NotRestorable => "not restorable: its restore plan names a backup that is gone or not complete".into(),
        Expired::Failed => format!("failed: {}", detail()),
        Expired::Incomplete => {
            format!("incomplete: {}; last written before --grace {}", detail(), short_duration(args.grace))
        }
        Expired::Unfinished => format!("no config, last written before --grace {}", short_duration(args.grace)),
    }
}
