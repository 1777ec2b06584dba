//! What each command takes: the protocol's verbs and their argument
//! shapes, exactly as gpbackup, gprestore and gpbackup_helper call them
//! (declared for clap, parsed by [`crate::cli`]), and the checks of hook
//! scopes and content ids.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::config::{MAX_RESTORE_DAYS, RestoreTier, parse_duration};
use crate::error::Error;

/// Arguments of the setup and cleanup hooks.
#[derive(Debug, Clone, clap::Args)]
pub struct HookArgs {
    /// Plugin config file
    pub config: PathBuf,
    /// Local backup directory: <datadir>/backups/<YYYYMMDD>/<YYYYMMDDHHMMSS>
    pub dir: String,
    /// master, coordinator, segment_host or segment
    pub scope: String,
    /// Content id, possibly wrapped in double quotes ("-1"); a bare -1 too
    #[arg(allow_negative_numbers = true)]
    pub content_id: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PathArgs {
    /// Plugin config file
    pub config: PathBuf,
    /// Local path of the file: <datadir>/backups/<YYYYMMDD>/<YYYYMMDDHHMMSS>/<file>
    pub path: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the plugin API version this plugin implements
    #[command(name = "plugin_api_version")]
    PluginApiVersion {
        #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
        _ignored: Vec<String>,
    },
    /// Print the version line (as --version); with --build, the commit, build date, compiler and glibc floor
    #[command(name = "version")]
    Version {
        /// Also print where this build came from
        #[arg(long)]
        build: bool,
    },
    /// Check the config and the bucket before a backup
    #[command(name = "setup_plugin_for_backup")]
    SetupPluginForBackup(HookArgs),
    /// Check the config before a restore
    #[command(name = "setup_plugin_for_restore")]
    SetupPluginForRestore(HookArgs),
    /// Tidy up after a backup
    #[command(name = "cleanup_plugin_for_backup")]
    CleanupPluginForBackup(HookArgs),
    /// Tidy up after a restore
    #[command(name = "cleanup_plugin_for_restore")]
    CleanupPluginForRestore(HookArgs),
    /// Upload a local file (the local copy is kept)
    #[command(name = "backup_file")]
    BackupFile(PathArgs),
    /// Download a file to its local path
    #[command(name = "restore_file")]
    RestoreFile(PathArgs),
    /// Upload standard input to the object for a local data file path
    #[command(name = "backup_data")]
    BackupData(PathArgs),
    /// Write the object for a local data file path to standard output
    #[command(name = "restore_data")]
    RestoreData(PathArgs),
    /// Write the byte ranges listed in an offsets file to standard output
    #[command(name = "restore_data_subset")]
    RestoreDataSubset {
        /// Plugin config file
        config: PathBuf,
        /// Local path of the data file
        path: String,
        /// File holding `N s1 e1 ... sN eN` (start inclusive, end exclusive)
        offsets_file: PathBuf,
    },
    /// Delete every object of one backup
    #[command(name = "delete_backup")]
    DeleteBackup {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
    },
    /// List objects (key and size) under a directory of the bucket
    #[command(name = "list_directory")]
    ListDirectory {
        /// Plugin config file
        config: PathBuf,
        /// Directory in the bucket (default: the configured folder)
        prefix: Option<String>,
    },
    /// Abort uploads that killed backup_data processes left open under a backup
    #[command(name = "cleanup")]
    Cleanup {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
    },
    /// Delete every object under a directory of the bucket
    #[command(name = "delete_directory")]
    DeleteDirectory {
        /// Plugin config file
        config: PathBuf,
        /// Directory in the bucket; the bucket root is refused
        prefix: String,
    },
    /// Make an archived backup readable: request restores of its archived objects, report their state
    #[command(name = "thaw")]
    Thaw {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
        /// Wait until every object is readable (progress on a terminal, log lines otherwise)
        #[arg(long)]
        wait: bool,
        /// Restore tier: Expedited, Standard or Bulk (default: restore_tier, else Standard)
        #[arg(long, value_parser = parse_tier)]
        tier: Option<RestoreTier>,
        /// Days the restored copies stay readable (default: restore_days, else 7)
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MAX_RESTORE_DAYS as i64))]
        days: Option<u32>,
        /// With --wait: give up (exit 1) after this long, e.g. 30m or 12h; restores go on
        #[arg(long, value_parser = parse_duration, requires = "wait")]
        timeout: Option<Duration>,
        /// Only report the state; request nothing
        #[arg(long)]
        status: bool,
    },
    /// Preflight: config, credentials, bucket, and a probe object written, read and deleted
    #[command(name = "check")]
    Check {
        /// Plugin config file
        config: PathBuf,
    },
    /// Delete the archives whose deletion a vault lock refused earlier (on_retention_locked: defer)
    #[command(name = "purge")]
    Purge {
        /// Plugin config file
        config: PathBuf,
    },
    /// Glacier Vault Lock: initiate, status, complete (irreversible), abort
    #[command(name = "vault-lock", subcommand)]
    VaultLock(VaultLockCommand),
    /// Write missing catalog entries again from a vault inventory (after losing the bucket)
    #[command(name = "rebuild-catalog")]
    RebuildCatalog {
        /// Plugin config file
        config: PathBuf,
        /// Wait for the inventory job (AWS: hours) instead of returning while it runs
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (exit 1) after this long, e.g. 6h
        #[arg(long, value_parser = parse_duration, requires = "wait")]
        timeout: Option<Duration>,
    },
}

#[derive(Debug, Subcommand)]
pub enum VaultLockCommand {
    /// Install a lock policy (state InProgress); prints the lock id and the 24-hour deadline
    #[command(name = "initiate")]
    Initiate {
        /// Plugin config file
        config: PathBuf,
        /// The lock policy (IAM policy JSON, at most 20 KB)
        #[arg(long)]
        policy_file: PathBuf,
    },
    /// Show the lock: state, policy, creation and expiration dates
    #[command(name = "status")]
    Status {
        /// Plugin config file
        config: PathBuf,
    },
    /// Lock the vault for good with its InProgress policy: irreversible
    #[command(name = "complete")]
    Complete {
        /// Plugin config file
        config: PathBuf,
        /// The lock id `initiate` printed
        #[arg(long)]
        lock_id: String,
        /// Required: the policy can never be changed or removed afterwards
        #[arg(long = "i-understand-this-is-irreversible")]
        confirmed: bool,
    },
    /// Remove an InProgress lock policy (a Locked one cannot be removed)
    #[command(name = "abort")]
    Abort {
        /// Plugin config file
        config: PathBuf,
    },
}

fn parse_tier(text: &str) -> Result<RestoreTier, String> {
    RestoreTier::parse(text).ok_or_else(|| format!("tier {text:?} must be Expedited, Standard or Bulk"))
}

/// Where a hook runs (gpbackup sends `master`; plugin_test.sh `coordinator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Coordinator,
    SegmentHost,
    Segment,
}

impl HookArgs {
    /// Validates scope and content id: `(scope, content id)`.
    pub fn scope(&self) -> Result<(Scope, Option<i32>), Error> {
        let scope = match self.scope.as_str() {
            "master" | "coordinator" => Scope::Coordinator,
            "segment_host" => Scope::SegmentHost,
            "segment" => Scope::Segment,
            other => {
                return Err(Error::usage(format!(
                    "scope {other:?} must be master, coordinator, segment_host or segment"
                )));
            }
        };
        let content = match &self.content_id {
            None => None,
            Some(raw) => Some(parse_content_id(raw)?),
        };
        Ok((scope, content))
    }
}

/// gpbackup passes the content id as `\"%d\"` through `bash -c`, so it
/// arrives with literal double quotes: `"-1"`.
pub fn parse_content_id(raw: &str) -> Result<i32, Error> {
    let trimmed = raw.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| trimmed.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))
        .unwrap_or(trimmed);
    match unquoted.parse::<i32>() {
        Ok(n) if n >= -1 => Ok(n),
        _ => Err(Error::usage(format!("content id {raw:?} must be -1 or a segment number"))),
    }
}
