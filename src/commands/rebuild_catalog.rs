//! `rebuild-catalog CFG [--wait [--timeout D]]`: write the catalog entries
//! of a vault again from its inventory, for when the bucket (or part of it)
//! was lost while the vault was not.
//!
//! Every archive this plugin uploads carries its key and integrity record
//! in its description (see [`crate::store::glacier::catalog`]). An inventory job
//! lists them; on AWS it takes hours to run and shows the vault as of its
//! last daily inventory, so archives of the last day or so may be missing.
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
    let archives = loop {
        if let Some(archives) = vault.inventory(&job).await? {
            break archives;
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
    let done = vault.rebuild(&archives, &crate::layout::folder_prefix(&folder)).await?;
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
    Ok(())
}
