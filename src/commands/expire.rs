//! `expire CFG --keep-last N | --older-than D [--keep-daily N] [--keep-weekly N]
//! [--keep-monthly N] [--grace D] [--yes]`: delete old backups safely.
//!
//! The plan ([`crate::engine::catalog::retention`]) never deletes a backup
//! a kept incremental needs, the newest complete backup, one a retention
//! lock holds, or an unfinished or incomplete one younger than `--grace`
//! (it may still be running). Without `--yes` it only prints the plan
//! (newest first, one line per backup with the reasons). With `--yes` it
//! deletes newest first, each backup through `delete_backup`'s own code;
//! one backup's failure never stops the others (but the backups it still
//! needs are skipped), and the summary says what happened to each. Only
//! `--yes` needs delete permission.

use super::Context;
use super::args::ExpireArgs;
use super::output::{Report, backup_type, count, problems, short_duration, status_word, until_word};
use crate::config::Purpose;
use crate::engine::catalog::retention::{self, Candidate, Decision, Expired, Guard, Keep, Planned, Rules};
use crate::engine::catalog::{self, Backup};
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
    let candidates: Vec<Candidate> = catalog.backups.iter().map(Candidate::from).collect();
    let now = chrono::Local::now().naive_local();
    let plan = retention::plan(&candidates, &rules, now);
    let mut out = Report::new();
    let root = ctx.store.url(&format!("{}backups/", layout::folder_prefix(&ctx.config.folder)));
    out.line(&format!("expire: {} under {root}; rules: {}", count(plan.len(), "backup"), rules_word(args)));
    for p in &plan {
        out.line(&plan_line(p, catalog.get(&p.timestamp), args));
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
    let (mut deleted, mut failed, mut skipped) = (0usize, 0usize, 0usize);
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
    out.line(&format!(
        "expire: {deleted} deleted, {failed} failed, {skipped} skipped, {} kept",
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
fn plan_line(p: &Planned, backup: Option<&Backup>, args: &ExpireArgs) -> String {
    let (action, why) = match &p.decision {
        Decision::Keep(reasons) => ("keep", reasons.iter().map(|r| keep_word(r, args)).collect::<Vec<_>>().join("; ")),
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

fn keep_word(reason: &Keep, args: &ExpireArgs) -> String {
    match reason {
        Keep::Newest => "newest complete backup".to_string(),
        Keep::Last => format!("--keep-last {}", args.keep_last.unwrap_or(0)),
        Keep::Daily => format!("--keep-daily {}", args.keep_daily),
        Keep::Weekly => format!("--keep-weekly {}", args.keep_weekly),
        Keep::Monthly => format!("--keep-monthly {}", args.keep_monthly),
        Keep::Younger => {
            format!("younger than --older-than {}", args.older_than.map(short_duration).unwrap_or_default())
        }
        Keep::Running => {
            format!("not complete, younger than --grace {}: may still be running", short_duration(args.grace))
        }
        Keep::Locked(until) => format!("retention lock {}", until_word(until)),
        Keep::NotADate => "its timestamp is not a date".to_string(),
        Keep::Sealed => {
            "encrypted, and no private key here reads its config: run expire with encryption_identity_file to judge it"
                .to_string()
        }
        Keep::NeededBy(ts) => format!("the restore of {ts} needs it"),
    }
}

fn delete_word(why: Expired, backup: Option<&Backup>, args: &ExpireArgs) -> String {
    let detail = || backup.map(problems).unwrap_or_default().join("; ");
    match why {
        Expired::NotKept => "no rule keeps it".to_string(),
        Expired::Failed => format!("failed: {}", detail()),
        Expired::Incomplete => format!("incomplete: {}", detail()),
        Expired::Unfinished => format!("no config, older than --grace {}", short_duration(args.grace)),
    }
}
