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

use crate::config::options;
use crate::engine::{self, Source};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::ObjectClass;

use super::Context;
use super::output::throughput;

pub async fn run(config: &Path, path: &str) -> Result<()> {
    let ctx = Context::open(config).await?;
    let key = layout::key_for_path(&ctx.config.folder, path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::io(format!("cannot read {path}"), e))?;
    let source = if is_plugin_config_copy(path) {
        let text = std::io::read_to_string(file).map_err(|e| Error::io(format!("cannot read {path}"), e))?;
        Source { reader: Box::new(std::io::Cursor::new(redact_config(&text).into_bytes())), name: path.to_string() }
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

/// Replaces the value of every secret option with `********`, line by line
/// so that everything else stays byte-identical.
fn redact_config(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let trimmed = line.trim_start();
            let secret = options::secret_names()
                .any(|k| trimmed.strip_prefix(k).is_some_and(|rest| rest.trim_start().starts_with(':')));
            if secret {
                let indent = &line[..line.len() - trimmed.len()];
                let key = trimmed.split(':').next().unwrap_or_default().trim_end();
                let newline = if line.ends_with('\n') { "\n" } else { "" };
                format!("{indent}{key}: \"********\"{newline}")
            } else {
                line.to_string()
            }
        })
        .collect()
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

    #[test]
    fn redacts_only_secret_values() {
        let text = "executablepath: /x\noptions:\n  aws_access_key_id: AKIA\n  aws_secret_access_key: \"abc/def\"\n  aws_session_token: tok\n  bucket: b\n  gpbackup_s3_plugin: pw\n";
        let out = redact_config(text);
        assert_eq!(
            out,
            "executablepath: /x\noptions:\n  aws_access_key_id: AKIA\n  aws_secret_access_key: \"********\"\n  aws_session_token: \"********\"\n  bucket: b\n  gpbackup_s3_plugin: \"********\"\n"
        );
        // Still a valid config for the parser.
        assert!(crate::config::Config::parse(&(out + "  folder: f\n  region: r\n")).is_ok());
    }
}
