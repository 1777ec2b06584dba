//! One module per protocol command (hooks share one: they differ only in
//! scope). Each command gets its config and store from [`Context`], never
//! learns which backend it talks to, and does all the wording an operator
//! reads: report lines ([`output`]) and the hints added to errors
//! ([`wording`]).

use crate::error::{Error, Result};
use args::Command;

pub mod args;
mod backup_data;
mod backup_file;
mod check;
mod cleanup;
mod context;
mod delete_backup;
mod delete_directory;
mod hooks;
mod interrupt;
mod list_directory;
mod output;
mod purge;
mod rebuild_catalog;
mod restore_data;
mod restore_data_subset;
mod restore_file;
mod thaw;
mod vault_lock;
pub mod version;
mod wording;

pub use context::{Context, load_config, store_settings};
pub use wording::explain;

/// Runs one command to completion. Commands that need no I/O beyond stdout
/// run without starting the async runtime (gpbackup asks every segment for
/// the API version at each start).
pub fn run(command: Command) -> Result<()> {
    match command {
        Command::PluginApiVersion { .. } => version::plugin_api_version(),
        Command::Version { build } => version::run(build),
        Command::CleanupPluginForRestore(args) => hooks::cleanup_after_restore(&args),
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Error::io("cannot start the async runtime", e))?;
            let outcome = runtime.block_on(interrupt::until_signal(run_async(command)));
            // A reader still blocked on stdin must not keep the process.
            runtime.shutdown_background();
            outcome
        }
    }
}

async fn run_async(command: Command) -> Result<()> {
    match command {
        Command::PluginApiVersion { .. } => version::plugin_api_version(),
        Command::Version { build } => version::run(build),
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
