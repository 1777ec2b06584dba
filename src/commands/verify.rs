//! `verify CFG TS [--deep]`: prove a backup restorable without restoring it.
//!
//! Covers the backup and, for an incremental one, every backup of its
//! restore plan (gprestore reads their data files too): each must be
//! complete as gprestore reads it ([`crate::engine::catalog::restorable`]),
//! and each object sound by its integrity
//! record (see [`crate::engine::catalog::verify`] for what is checked with
//! and without `--deep`). Reports a line per object and a summary on
//! stdout, a progress line while it works (redrawn on a terminal, a line
//! per tenth otherwise), and fails (one line on stderr, exit 1) on any
//! problem. Read-only: list, get and head permissions are enough.

use std::collections::BTreeMap;
use std::path::Path;

use super::Context;
use super::output::{Report, backup_type, count, notes, problems, status_word, storage};
use crate::config::Purpose;
use crate::engine::catalog::verify::{self, Checked, Flaw, Proof, Sealed};
use crate::engine::catalog::{self, Backup, Status};
use crate::engine::transform::Proves;
use crate::error::{Error, Result};
use crate::layout;

pub async fn run(config: &Path, timestamp: &str, deep: bool) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config, Purpose::Restore).await?;
    let (set, absent) = catalog::backup_set(&ctx.store, &ctx.config.folder, timestamp, ctx.reads(), None).await?;
    if set.is_empty() {
        return Err(Error::not_found(format!(
            "backup {timestamp}: no objects under {}",
            ctx.store.url(&layout::backup_prefix(&ctx.config.folder, timestamp)?)
        )));
    }
    let mut out = Report::new().progress_in_log();
    let mut problems_found = 0usize;
    let mode = if deep { "every object read and its checksums recomputed" } else { "lookups only, no data read" };
    out.line(&format!("verify {timestamp} ({mode})"));
    if set.len() > 1 {
        let plan: Vec<&str> = set.iter().skip(1).map(Backup::timestamp).collect();
        out.line(&format!("backup {timestamp} is incremental: its restore also reads {}", plan.join(", ")));
    }
    for ts in &absent {
        out.line(&format!("MISSING  backup {ts}: in the restore plan of {timestamp}, not in the bucket"));
        problems_found += 1;
    }

    let objects: Vec<_> = set.iter().flat_map(|b| verify::checked_objects(&b.found.listing)).collect();
    let total_bytes: u64 = objects.iter().map(|o| o.size).sum();
    let transfer = deep.then_some(ctx.config.restore);
    let keys = ctx.transform().proves();
    let checks = verify::verify_with(&ctx.store, objects, transfer, ctx.transform(), &mut |p| {
        let tenth = (p.done * 10).checked_div(p.total).unwrap_or(10);
        let counts = format!("checked {} of {} objects", p.done, p.total);
        out.progress(
            &format!("{counts} ({} of {})", crate::size::human(p.bytes), crate::size::human(total_bytes)),
            &tenth.to_string(),
        );
    })
    .await;
    out.end_progress();

    let mut by_backup: BTreeMap<&str, Vec<&Checked>> = BTreeMap::new();
    for check in &checks {
        let owner = set.iter().find(|b| check.key.starts_with(&b.found.prefix)).map_or("", Backup::timestamp);
        by_backup.entry(owner).or_default().push(check);
    }
    let mut thaw = 0usize;
    let mut sealed_backups = 0usize;
    let verdicts = catalog::restorable::judge(&set);
    for b in &set {
        let status = verdicts[b.timestamp()].status;
        out.line(&format!(
            "backup {}: {} {}, {} objects, {}",
            b.timestamp(),
            backup_type(b),
            status_word(status),
            b.found.objects,
            crate::size::human(b.found.bytes)
        ));
        if status == Status::Sealed {
            // Not a problem of the backup's: this host cannot read it.
            sealed_backups += 1;
            for p in problems(b) {
                out.line(&format!("NOTE     {p}: whether every file of it is there was not checked"));
            }
        } else if status != Status::Complete {
            problems_found += 1;
            for p in problems(b) {
                out.line(&format!("PROBLEM  {p}"));
            }
        }
        for note in notes(b) {
            out.line(&format!("NOTE     {note}"));
        }
        for m in &b.missing {
            out.line(&format!("MISSING  {}", m.name));
        }
        for check in by_backup.get(b.timestamp()).into_iter().flatten() {
            let name = check.key.strip_prefix(&b.found.prefix).unwrap_or(&check.key);
            let line = match (&check.outcome, &check.needs_thaw) {
                (Ok(proof), None) => format!(
                    "ok       {name}  {}  {}{}",
                    crate::size::human(check.size),
                    proof_word(proof),
                    sealed_word(check.sealed, keys)
                ),
                (Ok(proof), Some(cold)) => {
                    thaw += 1;
                    format!(
                        "ok       {name}  {}  {}; archived in {}: a restore needs `thaw` first",
                        crate::size::human(check.size),
                        proof_word(proof),
                        storage(cold)
                    )
                }
                (Err(flaw), _) => {
                    problems_found += 1;
                    format!("{}  {name}  {}", flaw_tag(flaw), flaw_word(flaw))
                }
            };
            out.line(&layout::printable(&line));
        }
    }
    let flawed = checks.iter().filter(|c| c.outcome.is_err()).count();
    let needs_thaw = checks.iter().filter(|c| matches!(c.outcome, Err(Flaw::NeedsThaw(_)))).count() + thaw;
    out.line(&format!(
        "verify {timestamp}: {}, {} ({}): {} ok, {flawed} with problems, {} files missing",
        count(set.len(), "backup"),
        count(checks.len(), "object"),
        crate::size::human(total_bytes),
        checks.len() - flawed,
        set.iter().map(|b| b.missing.len()).sum::<usize>(),
    ));
    if needs_thaw > 0 {
        out.line(&format!(
            "{needs_thaw} objects are archived: run `{} thaw <plugin config> {timestamp}` before gprestore{}",
            crate::PLUGIN_NAME,
            if deep { " and verify --deep again" } else { "" }
        ));
    }
    if problems_found > 0 {
        return Err(Error::integrity(format!(
            "backup {timestamp} is not restorable as it is: {problems_found} problems (the report on stdout names them)"
        )));
    }
    let unrecorded = checks.iter().filter(|c| matches!(c.outcome, Ok(Proof::Present { .. }))).count();
    let how = match (deep, unrecorded) {
        (false, 0) => "every object is present as its integrity record says (--deep also reads them)".to_string(),
        (false, n) => format!(
            "every object is present as recorded; {} without an integrity record (Go plugin?) checked for size only \
             (--deep also reads them)",
            count(n, "object")
        ),
        (true, 0) => "every object was read back and matches its checksums".to_string(),
        (true, n) => format!(
            "every object was read back; {} without an integrity record (Go plugin?) checked for length only",
            count(n, "object")
        ),
    };
    if sealed_backups > 0 {
        out.line(&format!(
            "backup {timestamp}: every object is present as recorded{}; {} cannot be read without \
             encryption_identity_file, so not judged restorable here",
            if deep { " and its stored bytes match their checksums" } else { "" },
            count(sealed_backups, "encrypted backup config")
        ));
    } else {
        out.line(&format!("backup {timestamp} is restorable: {how}"));
    }
    let closed = checks.iter().filter(|c| c.sealed == Sealed::Closed).count();
    if closed > 0 {
        out.line(&format!(
            "{} read but not decrypted (no encryption_identity_file here): their ciphertext matches its checksums; \
             their AEAD tags, bindings and signatures were not checked",
            count(closed, "encrypted object")
        ));
    }
    Ok(())
}

/// What a deep read proved of an encrypted object, after its checksums.
fn sealed_word(sealed: Sealed, keys: Proves) -> String {
    match sealed {
        Sealed::Plain => String::new(),
        Sealed::Closed => "; encrypted, not decrypted (no encryption_identity_file)".to_string(),
        Sealed::Opened => format!(
            "; decrypted: every tag verifies{}{}",
            match keys.binding {
                true => ", bound to its place",
                false => ", bound to its place where it has a binding (verify: available: see the log)",
            },
            if keys.signature { ", signature verifies" } else { "" }
        ),
    }
}

fn proof_word(proof: &Proof) -> String {
    match proof {
        Proof::Record { parts: 1, read: false, .. } => "size as recorded".to_string(),
        Proof::Record { parts, read: false, .. } => format!("size and {parts} parts as its manifest records"),
        Proof::Record { parts, read: true, tree_hash } => format!(
            "read: CRC-64{} matches{}",
            if *parts == 1 { String::new() } else { format!(" of each of {parts} parts and the whole") },
            if *tree_hash { ", tree hash matches" } else { "" }
        ),
        Proof::Present { read: false } => "present, no integrity record (size only)".to_string(),
        Proof::Present { read: true } => "read whole, no integrity record (length only)".to_string(),
    }
}

fn flaw_tag(flaw: &Flaw) -> &'static str {
    match flaw {
        Flaw::Damaged(_) => "DAMAGED",
        Flaw::NeedsThaw(_) => "THAW   ",
        Flaw::Missing => "MISSING",
        Flaw::Failed(_) => "FAILED ",
    }
}

fn flaw_word(flaw: &Flaw) -> String {
    match flaw {
        Flaw::Damaged(why) => why.clone(),
        Flaw::NeedsThaw(s) => format!("archived in {}: not read; run `thaw` first", storage(s)),
        Flaw::Missing => "gone since the listing".to_string(),
        Flaw::Failed(why) => format!("could not be checked: {why}"),
    }
}
