//! `vault-lock initiate|status|complete|abort`: Glacier Vault Lock, the
//! vault's write-once compliance policy (typically "deny DeleteArchive for
//! archives younger than N days").
//!
//! Locking is two steps by design: `initiate` installs the policy in state
//! InProgress, where it is already enforced and can be tested (a
//! `delete_backup` of a young backup should now be refused) for 24 hours;
//! `complete` makes it permanent. Nothing here ever completes a lock on its
//! own: `complete` needs the lock id and an explicit confirmation flag, and
//! after it the policy can never be changed or removed, nor the vault's
//! locked archives deleted early. AWS's advice: lock a vault before the
//! first backup goes into it.

use std::path::Path;
use std::sync::Arc;

use super::args::VaultLockCommand;
use crate::config::Purpose;
use crate::error::{Error, Result};
use crate::store::{self, VaultAdmin};

use super::output::say_as;
use super::{load_config, store_settings};

/// Glacier's limit on a lock policy.
const MAX_POLICY: usize = 20 * 1024;

pub async fn run(command: VaultLockCommand) -> Result<()> {
    match command {
        VaultLockCommand::Initiate { config, policy_file } => {
            let policy = read_policy(&policy_file)?;
            let vault = open_vault(&config).await?;
            if let Some(lock) = vault.lock_status().await? {
                return Err(Error::service(format!(
                    "vault {} already has a lock in state {}: {}",
                    vault.vault_name(),
                    lock.state,
                    if lock.state == "Locked" {
                        "a locked policy can never be replaced"
                    } else {
                        "run `vault-lock abort` first to replace it"
                    }
                )));
            }
            let lock_id = vault.lock_initiate(&policy).await?;
            let deadline = chrono::Utc::now() + chrono::Duration::hours(24);
            say(&format!("vault {}: lock policy installed, state InProgress", vault.vault_name()));
            say(&format!("lock id: {lock_id}"));
            say(&format!(
                "complete by {} UTC with `{} vault-lock complete {} --lock-id {lock_id} \
                 --i-understand-this-is-irreversible`, or it expires",
                deadline.format("%Y-%m-%d %H:%M"),
                crate::PLUGIN_NAME,
                config.display()
            ));
            Ok(())
        }
        VaultLockCommand::Status { config } => {
            let vault = open_vault(&config).await?;
            match vault.lock_status().await? {
                None => say(&format!("vault {}: no lock policy (not locked)", vault.vault_name())),
                Some(lock) => {
                    say(&format!("vault {}: state {}", vault.vault_name(), lock.state));
                    if let Some(created) = &lock.creation_date {
                        say(&format!("created: {created}"));
                    }
                    if let Some(expires) = &lock.expiration_date {
                        say(&format!("expires unless completed: {expires}"));
                    }
                    say(&format!("policy: {}", lock.policy));
                }
            }
            Ok(())
        }
        VaultLockCommand::Complete { config, lock_id, confirmed } => {
            if !confirmed {
                return Err(Error::usage(
                    "vault-lock complete is irreversible (the policy can never be changed or removed): add \
                     --i-understand-this-is-irreversible"
                        .to_string(),
                ));
            }
            let vault = open_vault(&config).await?;
            vault.lock_complete(&lock_id).await?;
            let state = vault.lock_status().await?.map(|l| l.state).unwrap_or_else(|| "unknown".to_string());
            say(&format!("vault {}: lock completed, state {state}", vault.vault_name()));
            Ok(())
        }
        VaultLockCommand::Abort { config } => {
            let vault = open_vault(&config).await?;
            if let Some(lock) = vault.lock_status().await?
                && lock.state == "Locked"
            {
                return Err(Error::service(format!(
                    "vault {} is Locked: a completed lock can never be aborted",
                    vault.vault_name()
                )));
            }
            vault.lock_abort().await?;
            say(&format!("vault {}: lock policy removed (no lock)", vault.vault_name()));
            Ok(())
        }
    }
}

/// The policy file, checked as far as we can before sending it: readable,
/// at most 20 KB, and a JSON object.
fn read_policy(path: &std::path::Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::local(format!("--policy-file {}: {e}", path.display())))?;
    if text.len() > MAX_POLICY {
        return Err(Error::usage(format!(
            "--policy-file {}: {} bytes; a vault lock policy may have at most {MAX_POLICY}",
            path.display(),
            text.len()
        )));
    }
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        Ok(_) => Err(Error::usage(format!("--policy-file {}: not a JSON policy object", path.display()))),
        Err(e) => Err(Error::usage(format!("--policy-file {}: not valid JSON: {e}", path.display()))),
    }
}

fn say(line: &str) {
    say_as("vault-lock", line);
}

/// The vault of a `storage: glacier` config, for the commands that
/// administer the vault itself (Vault Lock, catalog rebuild).
pub async fn open_vault(config: &Path) -> Result<Arc<dyn VaultAdmin>> {
    let config = load_config(config, Purpose::Other)?;
    store::open_vault(&store_settings(&config))
        .await?
        .ok_or_else(|| Error::config("this command needs a vault: set storage: glacier and vault in the plugin config"))
}
