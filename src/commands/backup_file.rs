//! `backup_file CFG PATH`: a local file (metadata, TOC, config, report,
//! segment TOC) to the object for PATH. The local file is kept: gpbackup
//! goes on using it. These files are metadata: gprestore and gpbackup
//! --incremental read them synchronously, so they never go to an archived
//! storage class (`metadata_storage_class`, default STANDARD).
//!
//! One of these files, `gpbackup_<TS>_plugin_config.yaml`, is gpbackup's copy
//! of this very config, credentials included. gpbackup only ever reads it
//! back whole for incremental backups and never parses the secrets, so it is
//! uploaded with the secret values replaced: credentials never end up in
//! the bucket next to the backup.

use std::path::Path;
use std::time::Instant;

use crate::config::Purpose;
use crate::engine::{self, Source};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::ObjectClass;

use super::Context;
use super::output::throughput;

pub async fn run(config: &Path, path: &str) -> Result<()> {
    let ctx = Context::open(config, Purpose::Backup).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("cannot read {path}"), e))?;
    let source = if is_plugin_config_copy(path) {
        let text = std::io::read_to_string(file).map_err(|e| Error::io(format!("cannot read {path}"), e))?;
        let redacted = crate::config::redact_copy(&text, &ctx.config.secrets.0).map_err(|why| {
            Error::local(format!("{path} is gpbackup's copy of the plugin config, but it cannot be read to remove its secrets ({why}); it is not uploaded"))
        })?;
        Source { reader: Box::new(std::io::Cursor::new(redacted.into_bytes())), name: path.to_string() }
    } else {
        Source { reader: Box::new(file), name: path.to_string() }
    };
    let started = Instant::now();
    let bytes =
        engine::upload(ctx.store.clone(), &key, source, ctx.config.backup, ObjectClass::Metadata, ctx.transform())
            .await?;
    log::info!("Uploaded {} for {}", throughput(bytes, started.elapsed()), ctx.store.url(&key));
    Ok(())
}

/// `gpbackup_<TS>_plugin_config.yaml`, gpbackup's name for its config copy.
fn is_plugin_config_copy(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("gpbackup_") && name.ends_with("_plugin_config.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_config_copy() {
        assert!(is_plugin_config_copy("/d/backups/20240101/20240101010101/gpbackup_20240101010101_plugin_config.yaml"));
        assert!(!is_plugin_config_copy("/d/backups/20240101/20240101010101/gpbackup_20240101010101_config.yaml"));
        assert!(!is_plugin_config_copy("/d/backups/20240101/20240101010101/gpbackup_20240101010101_toc.yaml"));
    }
}
