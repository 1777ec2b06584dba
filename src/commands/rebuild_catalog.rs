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

use crate::error::{Error, Result};
use crate::store::glacier::catalog;

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
    let mut written = 0;
    let mut ours = 0;
    for archive in &archives {
        if catalog::parse_description(&archive.archive_description).is_some() {
            ours += 1;
        }
        if let Some(key) = vault.restore_entry(archive).await? {
            log::info!("rebuild-catalog: wrote the entry of {key}");
            written += 1;
        }
    }
    say_as(
        "rebuild-catalog",
        &format!(
            "vault {}: {} archives in the inventory, {ours} written by this plugin, {written} catalog entries written \
         again, {} already present",
            vault.vault_name(),
            archives.len(),
            ours - written
        ),
    );
    Ok(())
}
