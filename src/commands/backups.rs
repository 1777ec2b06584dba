//! `backups CFG [--json]`: every backup under the folder, newest first, from
//! the bucket alone (no history database, no coordinator): whether it is
//! complete and gprestore can restore it ([`catalog::restorable`]), full or
//! incremental and which full backup it builds on, its database and
//! sections, size, storage state, lock and compression.
//!
//! Read-only (list, get, head). Requests: one listing per 1,000 objects,
//! then at most two small reads per backup (its config and TOC) and a few
//! lookups of an archived backup's objects; see [`crate::engine::catalog`].

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use super::Context;
use super::output::{
    backup_type, count, date, lock_word, notes, problems, sections, status_word, storage_state_word, storage_word,
};
use crate::config::Purpose;
use crate::engine::catalog::lock::{Lock, Until};
use crate::engine::catalog::{self, Backup, Catalog, Verdict};
use crate::error::{Error, Result};
use crate::layout;

/// The most missing file names one backup lists in JSON.
const MISSING_SHOWN: usize = 100;

pub async fn run(config: &Path, json: bool) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    let vault = ctx.vault_retention().await;
    let mut catalog = catalog::catalog(&ctx.store, &ctx.config.folder, ctx.reads(), vault.as_ref()).await?;
    catalog::object_lock::fill(&ctx.store, &mut catalog).await?;
    let now = chrono::Local::now().naive_local();
    let text = if json { to_json(&catalog, now) } else { table(&catalog, now, &ctx) };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| Error::io("writing to stdout", e))?;
    log::info!("backups: {} backups listed", catalog.backups.len());
    Ok(())
}

/// One row's cells.
fn cells(b: &Backup, verdict: &Verdict, now: chrono::NaiveDateTime) -> Vec<String> {
    let mut said = problems(b);
    for (ts, status) in &verdict.gaps {
        said.push(match status {
            None => format!("needs {ts}, which is not in the bucket"),
            Some(s) => format!("needs {ts}, which is {}", status_word(*s)),
        });
    }
    said.extend(notes(b));
    vec![
        b.timestamp().to_string(),
        date(b.timestamp()),
        status_word(verdict.status).to_string(),
        backup_type(b).to_string(),
        b.depends_on().first().cloned().unwrap_or_else(|| "-".to_string()),
        b.config.as_ref().map(|c| c.database_name.clone()).filter(|d| !d.is_empty()).unwrap_or_else(|| "-".into()),
        sections(b).to_string(),
        crate::size::human(b.found.bytes),
        b.found.objects.to_string(),
        storage_word(&b.storage),
        lock_word(&b.lock, now),
        b.compression().unwrap_or_else(|| "-".to_string()),
        if b.encrypted { "age" } else { "-" }.to_string(),
        if said.is_empty() { "-".to_string() } else { said.join("; ") },
    ]
}

const HEADERS: [&str; 14] = [
    "TIMESTAMP",
    "DATE",
    "STATUS",
    "TYPE",
    "FULL BACKUP",
    "DATABASE",
    "SECTIONS",
    "SIZE",
    "OBJECTS",
    "STORAGE",
    "LOCK",
    "COMPRESSION",
    "ENCRYPTION",
    "PROBLEMS",
];

fn table(catalog: &Catalog, now: chrono::NaiveDateTime, ctx: &Context) -> String {
    let root = ctx.store.url(&format!("{}backups/", layout::folder_prefix(&ctx.config.folder)));
    if catalog.backups.is_empty() {
        return format!("no backups under {root}\n");
    }
    let mut rows: Vec<Vec<String>> = vec![HEADERS.iter().map(|h| h.to_string()).collect()];
    let verdicts = catalog.judge();
    rows.extend(catalog.backups.iter().rev().map(|b| cells(b, &verdicts[b.timestamp()], now)));
    let widths: Vec<usize> =
        (0..HEADERS.len()).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(layout::printable(line.join("  ").trim_end()).as_ref());
        out.push('\n');
    }
    let with = |s| catalog.backups.iter().filter(|b| b.status() == s).count();
    let bytes: u64 = catalog.backups.iter().map(|b| b.found.bytes).sum();
    let objects: u64 = catalog.backups.iter().map(|b| b.found.objects).sum();
    out.push_str(&format!(
        "{} under {root}: {} complete, {} failed, {} incomplete, {} unfinished; {} in {}\n",
        count(catalog.backups.len(), "backup"),
        with(catalog::Status::Complete),
        with(catalog::Status::Failed),
        with(catalog::Status::Incomplete),
        with(catalog::Status::Unfinished),
        crate::size::human(bytes),
        count(objects as usize, "object"),
    ));
    let unreadable = with(catalog::Status::Unreadable);
    if unreadable > 0 {
        out.push_str(&format!(
            "{unreadable} {} a config or TOC that cannot be read or parsed: expire never deletes {} (delete_backup \
             does)\n",
            if unreadable == 1 { "backup has" } else { "backups have" },
            if unreadable == 1 { "it" } else { "them" },
        ));
    }
    let sealed = with(catalog::Status::Sealed);
    if sealed > 0 {
        out.push_str(&format!(
            "{sealed} {} encrypted, and no private key here reads {}: set encryption_identity_file to see {}\n",
            if sealed == 1 { "backup is" } else { "backups are" },
            if sealed == 1 { "its config" } else { "their configs" },
            if sealed == 1 { "whether it is complete" } else { "whether they are complete" },
        ));
    }
    if catalog.stray > 0 {
        out.push_str(&format!("{} objects under {root} belong to no backup directory\n", catalog.stray));
    }
    out
}

fn to_json(catalog: &Catalog, now: chrono::NaiveDateTime) -> String {
    let verdicts = catalog.judge();
    let list: Vec<Value> = catalog
        .backups
        .iter()
        .rev()
        .map(|b| {
            let config = b.config.as_ref();
            let depends = b.depends_on();
            let until = match &b.storage.state {
                catalog::inspect::StorageState::Thawed { until } => until.map(|u| u.to_rfc3339()),
                _ => None,
            };
            let missing: Vec<&str> = b.missing.iter().take(MISSING_SHOWN).map(|m| m.name.as_str()).collect();
            let verdict = &verdicts[b.timestamp()];
            let absent: Vec<&str> = verdict.gaps.iter().map(|(ts, _)| ts.as_str()).collect();
            json!({
                "timestamp": b.timestamp(),
                "date": crate::engine::catalog::files::timestamp_date(b.timestamp())
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%S").to_string()),
                "status": status_word(verdict.status),
                "complete": verdict.status == catalog::Status::Complete,
                "restorable": verdict.restorable,
                "holds_data": verdict.holds_data,
                "type": config.map(|_| backup_type(b)),
                "full_backup": depends.first(),
                "depends_on": depends,
                "restorable_chain": absent.is_empty(),
                "chain_gaps": absent,
                "database": config.map(|c| c.database_name.as_str()),
                "sections": config.map(|_| sections(b)),
                "compression": b.compression(),
                "encryption": b.encrypted.then_some("age"),
                "bytes": b.found.bytes,
                "objects": b.found.objects,
                "storage": {
                    "state": storage_state_word(&b.storage.state),
                    "until": until,
                    "cold_objects": b.storage.cold,
                    "sampled": b.storage.sampled,
                    "classes": b.storage.classes.iter().map(super::output::storage).collect::<Vec<_>>(),
                },
                "lock": lock_json(&b.lock, now),
                "problems": problems(b),
                "notes": notes(b),
                "missing": missing,
                "missing_count": b.missing.len(),
            })
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&list).expect("JSON values always serialise");
    text.push('\n');
    text
}

/// `{"kind": "none"}`, `{"kind": "vault", "state": ..., "until": ..., "holds": ...}`,
/// `{"kind": "object_lock", "modes": [...], "earliest": ..., "until": ..., "legal_holds": N, ...}`.
fn lock_json(lock: &Lock, now: chrono::NaiveDateTime) -> Value {
    let until = |u: &Until| match u {
        Until::At(at) => json!(at.format("%Y-%m-%dT%H:%M:%S").to_string()),
        Until::Forever => json!("forever"),
        Until::Unknown => json!("unknown"),
    };
    match lock {
        Lock::None => json!({"kind": "none", "holds": false}),
        Lock::Vault { state, until: u } => {
            json!({"kind": "vault", "state": state, "until": until(u), "holds": lock.holds(now)})
        }
        Lock::ObjectLock(s) => json!({
            "kind": "object_lock",
            "modes": s.modes.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
            "earliest": s.earliest.map(|e| e.format("%Y-%m-%dT%H:%M:%S").to_string()),
            "until": until(&s.until),
            "legal_holds": s.legal_holds,
            "unlocked": s.unlocked,
            "objects": s.objects,
            "holds": lock.holds(now),
        }),
    }
}
