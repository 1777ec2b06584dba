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

/// `(what, value)` lines of a bucket's versioning and Object Lock.
pub fn bucket_lock_facts(bucket: &crate::store::BucketLock) -> Vec<(&'static str, String)> {
    let mut lines = vec![(
        "versioning",
        match &bucket.versioning {
            Some(status) => format!(
                "{status}: delete_backup and delete_directory delete every version and delete marker by version id"
            ),
            None => "off (or not implemented by the server)".to_string(),
        },
    )];
    lines.push(("object lock", if bucket.lock_enabled { "enabled" } else { "not enabled" }.to_string()));
    if let Some((mode, period)) = &bucket.default_retention {
        lines.push((
            "default retention",
            format!(
                "{mode} for {period}: the server locks every new object version, also the plugin's probes and \
                 deferred-delete records, which then stay until it ends; prefer no bucket default and \
                 object_lock_mode/object_lock_retention"
            ),
        ));
    }
    lines
}

/// The error for a bucket that cannot hold the lock the config asks for.
pub fn bucket_cannot_lock(bucket: &crate::store::BucketLock, url: &str) -> Option<Error> {
    if bucket.lock_enabled && bucket.versioning.as_deref() == Some("Enabled") {
        return None;
    }
    let missing = match (bucket.versioning.as_deref(), bucket.lock_enabled) {
        (Some("Enabled"), _) => "Object Lock is not enabled",
        (Some(_), _) => "versioning is suspended",
        (None, _) => "versioning and Object Lock are not enabled",
    };
    Some(
        Error::config(format!(
            "object_lock_mode/object_lock_legal_hold ask for S3 Object Lock, but on bucket {url} {missing}, so no \
             object could be locked"
        ))
        .with_hint(
            "enable it (it cannot be disabled again): `aws s3api put-bucket-versioning --bucket BUCKET \
             --versioning-configuration Status=Enabled` then `aws s3api put-object-lock-configuration --bucket \
             BUCKET --object-lock-configuration ObjectLockEnabled=Enabled`; or remove the object_lock_* options",
        ),
    )
}
