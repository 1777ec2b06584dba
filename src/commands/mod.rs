//! One module per protocol command (hooks share one: they differ only in
//! scope). Each command gets its config and store from [`Context`] and never
//! learns which backend it talks to.

use std::path::Path;
use std::sync::Arc;

use crate::cli::Command;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::{self, Store};

mod backup_data;
mod backup_file;
mod check;
mod cleanup;
mod delete_backup;
mod delete_directory;
mod hooks;
mod list_directory;
mod purge;
mod rebuild_catalog;
mod restore_data;
mod restore_data_subset;
mod restore_file;
pub mod thaw;
pub mod vault_lock;
pub mod version;

/// What every command that touches storage needs.
pub struct Context {
    pub config: Config,
    pub store: Arc<dyn Store>,
}

impl Context {
    /// Loads the config (registering its secrets for redaction) and opens
    /// the store it selects. Opening sends no request.
    pub async fn open(config_path: &Path) -> Result<Context> {
        let config = load_config(config_path)?;
        let store = store::open(&config).await?;
        Ok(Context { config, store })
    }
}

pub fn load_config(path: &Path) -> Result<Config> {
    let config = Config::load(path)?;
    crate::log::set_secrets(&config.secrets.0);
    Ok(config)
}

/// Runs one command to completion. Commands that need no I/O beyond stdout
/// run without starting the async runtime (gpbackup asks every segment for
/// the API version at each start).
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::PluginApiVersion { .. } => version::plugin_api_version(),
        Command::CleanupPluginForRestore(args) => hooks::cleanup_after_restore(&args),
        command => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| crate::error::Error::local("cannot start the async runtime", e))?
            .block_on(run_async(command)),
    }
}

async fn run_async(command: Command) -> Result<()> {
    match command {
        Command::PluginApiVersion { .. } => version::plugin_api_version(),
        Command::SetupPluginForBackup(args) => hooks::setup_for_backup(&args).await,
        Command::SetupPluginForRestore(args) => hooks::setup_for_restore(&args).await,
        Command::CleanupPluginForBackup(args) => hooks::cleanup_after_backup(&args).await,
        Command::CleanupPluginForRestore(args) => hooks::cleanup_after_restore(&args),
        Command::Cleanup { config, timestamp } => cleanup::run(&config, &timestamp).await,
        Command::BackupFile(args) => backup_file::run(&args.config, &args.path).await,
        Command::RestoreFile(args) => restore_file::run(&args.config, &args.path).await,
        Command::BackupData(args) => backup_data::run(&args.config, &args.path).await,
        Command::RestoreData(args) => restore_data::run(&args.config, &args.path).await,
        Command::RestoreDataSubset { config, path, offsets_file } => {
            restore_data_subset::run(&config, &path, &offsets_file).await
        }
        Command::DeleteBackup { config, timestamp } => delete_backup::run(&config, &timestamp).await,
        Command::ListDirectory { config, prefix } => list_directory::run(&config, prefix.as_deref()).await,
        Command::DeleteDirectory { config, prefix } => delete_directory::run(&config, &prefix).await,
        Command::Thaw { config, timestamp, wait, tier, days, timeout, status } => {
            let options = thaw::Options { wait, tier, days, timeout, status_only: status };
            thaw::run(&config, &timestamp, &options).await
        }
        Command::Check { config } => check::run(&config).await,
        Command::Purge { config } => purge::run(&config).await,
        Command::VaultLock(command) => vault_lock::run(command).await,
        Command::RebuildCatalog { config, wait, timeout } => rebuild_catalog::run(&config, wait, timeout).await,
    }
}

/// A read of an archived object names the way out: `thaw` of its backup.
/// Nothing was written when this error comes (the engine's first request
/// is the one that fails).
pub(crate) fn thaw_hint(err: Error, path: &str) -> Error {
    match err {
        Error::Archived(msg) => {
            let ts = crate::layout::timestamp_of_path(path).unwrap_or_else(|| "<timestamp>".to_string());
            Error::Archived(format!(
                "{msg}; run `{} thaw <plugin config> {ts} --wait` first, then restore again",
                crate::PLUGIN_NAME
            ))
        }
        other => other,
    }
}

/// `Uploaded 1.2 MiB (1258291 bytes) for <key> in 0.35s (3.4 MiB/s)`.
pub(crate) fn throughput(bytes: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!("{} ({bytes} bytes) in {secs:.3}s ({}/s)", crate::size::human(bytes), crate::size::human(rate as u64))
}
