//! The words added to typed errors and facts: what an operator reads, said
//! with the option names and commands that fix things. Stores and the
//! engine say what happened; this says what to do.

use crate::config::Config;
use crate::error::{Error, Kind};
use crate::store::Fact;

/// Every error on its way out: hints that depend only on the error and the
/// config (applied once, in `main`).
pub fn explain(err: Error) -> Error {
    let config = super::context::loaded();
    match err.code() {
        Some("InvalidStorageClass") => match (err.subject().map(str::to_string), config) {
            (Some(value), Some(config)) => {
                let option = if config.storage_class.as_deref() == Some(value.as_str()) {
                    "storage_class"
                } else {
                    "metadata_storage_class"
                };
                let message = format!(
                    "{} does not support storage class {value} (option {option}); choose a class it supports or \
                     remove the option: {}",
                    server(config),
                    err.message()
                );
                err.with_message(message)
            }
            _ => err,
        },
        Some("PolicyEnforcedException") => {
            err.append("; the account's data retrieval policy refuses it: raise the policy's limit or use tier Bulk")
        }
        Some("InsufficientCapacityException") => err.append("; no Expedited capacity now: use tier Standard or Bulk"),
        _ => err,
    }
}

/// `the server at <endpoint>` or `AWS S3 in <region>`.
fn server(config: &Config) -> String {
    match &config.endpoint {
        Some(e) => format!("the server at {e}"),
        None => format!("AWS S3 in {}", config.region),
    }
}

/// A read of an archived object names the way out: `thaw` of its backup.
/// Nothing was written when this error comes (the engine's first request
/// is the one that fails).
pub fn thaw_hint(err: Error, path: &str) -> Error {
    if !err.is(Kind::Archived) {
        return err;
    }
    let ts = crate::layout::timestamp_of_path(path).unwrap_or_else(|| "<timestamp>".to_string());
    err.with_hint(format!("run `{} thaw <plugin config> {ts} --wait` first, then restore again", crate::PLUGIN_NAME))
}

/// A vault that is not there is made by the backup setup.
pub fn missing_vault(err: Error) -> Error {
    if err.is(Kind::NotFound) { err.with_hint("setup_plugin_for_backup creates it") } else { err }
}

/// `(what, value)` lines for what a store found when preparing.
pub fn facts(facts: &[Fact]) -> Vec<(&'static str, String)> {
    facts
        .iter()
        .map(|fact| match fact {
            Fact::Vault { description: d, .. } => (
                "vault",
                format!(
                    "{} ({}), created {}, {} archives / {} bytes at the last inventory ({})",
                    d.name,
                    d.arn.as_deref().unwrap_or("no ARN"),
                    d.created_at.as_deref().unwrap_or("?"),
                    d.archives,
                    d.bytes,
                    d.last_inventory.as_deref().unwrap_or("none yet")
                ),
            ),
            Fact::VaultLock(lock) => (
                "vault lock",
                match lock {
                    Ok(None) => "none".to_string(),
                    Ok(Some(lock)) => format!(
                        "{}{}",
                        lock.state,
                        lock.expiration_date
                            .as_ref()
                            .map(|d| format!(" (must be completed by {d})"))
                            .unwrap_or_default()
                    ),
                    Err(why) => format!("unknown ({why})"),
                },
            ),
        })
        .collect()
}
