//! `history export CFG --db PATH`: give gpbackup and gpbackman their
//! history back after the coordinator (and its `gpbackup_history.db`) was
//! lost: a row per backup in the bucket whose config is there, in exactly
//! gpbackup's schema (see [`crate::engine::catalog::history`]). Creates the
//! file and its tables when missing; adds to an existing database without
//! touching its rows. Prints a line per backup and a summary on stdout.
//! Read-only on the bucket.

use std::path::Path;

use super::Context;
use super::output::{Report, count, notes, problems};
use crate::config::Purpose;
use crate::engine::catalog::history::{self, Row};
use crate::engine::catalog::{self, Reads};
use crate::error::Result;

pub async fn export(config: &Path, db: &Path) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    let catalog = catalog::catalog(&ctx.store, &ctx.config.folder, Reads { report: true, ..ctx.reads() }, None).await?;
    let verdicts = catalog.judge();
    let rows: Vec<Row> = catalog.backups.iter().filter_map(|b| Row::of(b, &verdicts[b.timestamp()])).collect();
    let done = history::export(db, &rows)?;
    let mut out = Report::new();
    for b in catalog.backups.iter().rev() {
        let ts = b.timestamp();
        let line = match rows.iter().find(|r| r.timestamp == ts) {
            None => format!("skipped  {ts}: no readable config.yaml, nothing to record"),
            Some(_) if done.present.iter().any(|p| p == ts) => {
                format!("kept     {ts}: already in the history, left as it is")
            }
            Some(row) => {
                let verdict = &verdicts[ts];
                let note = if row.downgraded {
                    let mut why = problems(b);
                    why.extend(
                        verdict.gaps.iter().map(|(need, _)| format!("it needs {need}, which is not restorable")),
                    );
                    format!(
                        " (its config says Success, but {}: recorded as Failure so that gpbackup --incremental never \
                         builds on it)",
                        why.join("; ")
                    )
                } else {
                    notes(b).iter().map(|n| format!(" ({n})")).collect()
                };
                format!("added    {ts}: status {}{note}", row.text("status").unwrap_or_default())
            }
        };
        out.line(&line);
    }
    if !done.lacking_columns.is_empty() {
        out.line(&format!(
            "the database's backups table has no {} (made by gpbackup 1.28.0?): left out of the new rows",
            done.lacking_columns.join(", ")
        ));
    }
    out.line(&format!(
        "history: {} added to {}, {} already there, {} without a config skipped",
        count(done.added.len(), "row"),
        db.display(),
        done.present.len(),
        count(catalog.backups.len() - rows.len(), "backup")
    ));
    Ok(())
}
