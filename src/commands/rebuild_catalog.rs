//! `rebuild-catalog CFG [--wait [--timeout D]]`: write the catalog entries
//! of a vault again from its inventory, for when the bucket (or part of it)
//! was lost while the vault was not.
//!
//! Every archive this plugin uploads carries its key and integrity record
//! in its description (see [`crate::store::glacier::catalog`]). An inventory job
//! lists them; on AWS it takes hours to run and shows the vault as of its
//! last daily inventory, so archives of the last day or so may be missing:
//! the report gives the inventory's date and when to run it again.
//! Without `--wait` the command starts (or finds) the job and returns; run
//! it again later. Entries that exist are never overwritten.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::Purpose;
use crate::error::{Error, Result};

use super::load_config;
use super::output::say_as;
use super::vault_lock::open_vault;

pub async fn run(config: &Path, wait: bool, timeout: Option<Duration>) -> Result<()> {
    let vault = open_vault(config).await?;
    let job = vault.inventory_job().await?;
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut poll = Duration::from_secs(2);
    let inventory = loop {
        if let Some(inventory) = vault.inventory(&job).await? {
            break inventory;
        }
        if !wait {
            say_as(
                "rebuild-catalog",
                &format!(
                    "inventory job {job} of vault {} is running (AWS: hours); run rebuild-catalog again later, or with \
                 --wait",
                    vault.vault_name()
                ),
            );
            return Ok(());
        }
        if deadline.is_some_and(|d| Instant::now() + poll > d) {
            return Err(Error::service(format!("inventory job {job} did not finish within --timeout")));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(Duration::from_secs(300));
    };
    let folder = load_config(config, Purpose::Other)?.folder;
    let done = vault.rebuild(&inventory.archive_list, &crate::layout::folder_prefix(&folder)).await?;
    let mut line = format!(
        "vault {}: {} archives in the inventory, {} written by this plugin, {} catalog entries written again, {} \
         already present",
        vault.vault_name(),
        done.archives,
        done.ours,
        done.written,
        done.named
    );
    for (n, what) in [
        (done.repaired, "damaged entries written again"),
        (done.discarded, "archives of interrupted uploads deleted"),
        (done.retired, "replaced archives kept for purge"),
    ] {
        if n > 0 {
            line.push_str(&format!(", {n} {what}"));
        }
    }
    say_as("rebuild-catalog", &line);
    say_as("rebuild-catalog", &snapshot(inventory.inventory_date.as_deref()));
    Ok(())
}

/// What the inventory's date means: archives uploaded after it are not in
/// it, so a rebuild right after a loss may miss the newest ones until the
/// service's next inventory (AWS: about once a day).
fn snapshot(date: Option<&str>) -> String {
    let parsed = date.and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok());
    match (date, parsed) {
        (_, Some(at)) => {
            let next = (at.with_timezone(&chrono::Utc) + chrono::Duration::hours(24)).format("%Y-%m-%d %H:%M UTC");
            format!(
                "inventory dated {}: archives uploaded after it are not in it; the service refreshes a vault's \
                 inventory about once a day, so run rebuild-catalog again after {next} to name them too",
                at.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC")
            )
        }
        (Some(raw), None) => format!(
            "inventory dated {}: archives uploaded after it are not in it; run rebuild-catalog again a day later to \
             name them too",
            crate::layout::printable(raw)
        ),
        (None, None) => "the inventory is undated: archives uploaded after the service took it are not in it; run \
                         rebuild-catalog again a day later to name them too"
            .to_string(),
    }
}
