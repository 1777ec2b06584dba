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
mod backups;
mod check;
mod cleanup;
mod context;
mod delete_backup;
mod delete_directory;
mod directory;
mod encrypt_password;
mod expire;
mod history;
mod hooks;
mod interrupt;
mod list_directory;
mod output;
mod permissions;
mod purge;
mod rebuild_catalog;
mod restore_data;
mod restore_data_subset;
mod restore_file;
mod retention;
mod thaw;
mod vault_lock;
mod verify;
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
        Command::EncryptPassword { key_file, raw } => encrypt_password::run(key_file.as_deref(), raw),
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
        Command::EncryptPassword { key_file, raw } => encrypt_password::run(key_file.as_deref(), raw),
        Command::Cleanup { config, timestamp } => cleanup::run(&config, &timestamp).await,
        Command::BackupDirectory(a) => directory::backup(&a.config, &a.dir, false, a.count.as_deref()).await,
        Command::BackupDirectoryParallel(a) => directory::backup(&a.config, &a.dir, true, a.count.as_deref()).await,
        Command::RestoreDirectory(a) => directory::restore(&a.config, &a.dir, false, a.count.as_deref()).await,
        Command::RestoreDirectoryParallel(a) => directory::restore(&a.config, &a.dir, true, a.count.as_deref()).await,
        Command::BackupFile(args) => backup_file::run(&args.config, &args.path).await,
        Command::RestoreFile(args) => restore_file::run(&args.config, &args.path).await,
        Command::BackupData(args) => backup_data::run(&args.config, &args.path).await,
        Command::RestoreData(args) => restore_data::run(&args.config, &args.path).await,
        Command::RestoreDataSubset { config, path, offsets_file } => {
            restore_data_subset::run(&config, &path, &offsets_file).await
        }
        Command::DeleteBackup { config, timestamp, bypass_governance } => {
            delete_backup::run(&config, &timestamp, bypass_governance).await
        }
        Command::ListDirectory { config, prefix } => list_directory::run(&config, prefix.as_deref()).await,
        Command::DeleteDirectory { config, prefix } => delete_directory::run(&config, &prefix).await,
        Command::Thaw { config, timestamp, wait, tier, days, timeout, status } => {
            let options = thaw::Options { wait, tier, days, timeout, status_only: status };
            thaw::run(&config, &timestamp, &options).await
        }
        Command::Check { config } => check::run(&config).await,
        Command::Purge { config, bypass_governance } => purge::run(&config, bypass_governance).await,
        Command::Retention { extend: Some(command), .. } => retention::extend(command).await,
        Command::Retention { config: Some(config), timestamp: Some(timestamp), .. } => {
            retention::show(&config, &timestamp).await
        }
        Command::Retention { .. } => Err(Error::usage("retention: give CONFIG TIMESTAMP, or extend CONFIG TIMESTAMP")),
        Command::LegalHold(command) => retention::legal_hold(command).await,
        Command::VaultLock(command) => vault_lock::run(command).await,
        Command::RebuildCatalog { config, wait, timeout } => rebuild_catalog::run(&config, wait, timeout).await,
        Command::Backups { config, json } => backups::run(&config, json).await,
        Command::Verify { config, timestamp, deep } => verify::run(&config, &timestamp, deep).await,
        Command::Expire(args) => expire::run(&args).await,
        Command::History(args::HistoryCommand::Export { config, db }) => history::export(&config, &db).await,
    }
}
