//! What each command takes: the protocol's verbs and their argument
//! shapes, exactly as gpbackup, gprestore and gpbackup_helper call them
//! (declared for clap, parsed by [`crate::cli`]), and the checks of hook
//! scopes and content ids.

use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use crate::config::{MAX_RESTORE_DAYS, RestoreTier, parse_duration_with_unit};
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

/// The Go plugin's hidden directory commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DirectoryArgs {
    /// Plugin config file
    pub config: PathBuf,
    /// Local directory (backup) or the prefix to restore into (restore)
    pub dir: String,
    /// Files at once (the `_parallel` forms; default 5)
    pub count: Option<String>,
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
    /// Seal a secret read from stdin for a config with password_encryption: on (prints the sealed form)
    #[command(name = "encrypt-password")]
    EncryptPassword {
        /// The key file (default: $COORDINATOR_DATA_DIRECTORY/.encrypt, where gpbackup reads it);
        /// its entry for this plugin is created (mode 0600) when missing
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Seal stdin byte for byte (by default one trailing newline is dropped)
        #[arg(long)]
        raw: bool,
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
    /// The Go plugin's hidden commands: a local directory's files, each
    /// under its own path
    #[command(name = "backup_directory", hide = true)]
    BackupDirectory(DirectoryArgs),
    #[command(name = "backup_directory_parallel", hide = true)]
    BackupDirectoryParallel(DirectoryArgs),
    #[command(name = "restore_directory", hide = true)]
    RestoreDirectory(DirectoryArgs),
    #[command(name = "restore_directory_parallel", hide = true)]
    RestoreDirectoryParallel(DirectoryArgs),
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
        /// Delete versions under a GOVERNANCE retention (needs s3:BypassGovernanceRetention; logged)
        #[arg(long = "bypass-governance-retention")]
        bypass_governance: bool,
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
        #[arg(long, value_parser = parse_duration_with_unit, requires = "wait")]
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
        /// Delete versions under a GOVERNANCE retention (needs s3:BypassGovernanceRetention; logged)
        #[arg(long = "bypass-governance-retention")]
        bypass_governance: bool,
    },
    /// S3 Object Lock of a backup: show each object's mode, retain-until date and legal hold; or `extend`
    #[command(name = "retention", args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Retention {
        #[command(subcommand)]
        extend: Option<RetentionCommand>,
        /// Plugin config file
        #[arg(required = true)]
        config: Option<PathBuf>,
        /// Backup timestamp YYYYMMDDHHMMSS
        #[arg(required = true)]
        timestamp: Option<String>,
    },
    /// S3 Object Lock legal hold on every object of a backup: on or off
    #[command(name = "legal-hold", subcommand)]
    LegalHold(LegalHoldCommand),
    /// Glacier Vault Lock: initiate, status, complete (irreversible), abort
    #[command(name = "vault-lock", subcommand)]
    VaultLock(VaultLockCommand),
    /// List the backups in the bucket, newest first: complete or not, full or incremental, size, storage, lock
    #[command(name = "backups")]
    Backups {
        /// Plugin config file
        config: PathBuf,
        /// One JSON array instead of the table
        #[arg(long)]
        json: bool,
    },
    /// Prove a backup restorable without restoring it (and the backups its restore plan reads)
    #[command(name = "verify")]
    Verify {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
        /// Read every object and recompute its checksums (without it: lookups only, no data read)
        #[arg(long)]
        deep: bool,
    },
    /// Delete old backups by retention rules, never one a kept backup needs (a dry run unless --yes)
    #[command(name = "expire")]
    Expire(ExpireArgs),
    /// gpbackup's history database, rebuilt from the bucket
    #[command(name = "history", subcommand)]
    History(HistoryCommand),
    /// Write missing catalog entries again from a vault inventory (after losing the bucket)
    #[command(name = "rebuild-catalog")]
    RebuildCatalog {
        /// Plugin config file
        config: PathBuf,
        /// Wait for the inventory job (AWS: hours) instead of returning while it runs
        #[arg(long)]
        wait: bool,
        /// With --wait: give up (exit 1) after this long, e.g. 6h
        #[arg(long, value_parser = parse_duration_with_unit, requires = "wait")]
        timeout: Option<Duration>,
    },
}

/// `expire`'s rules: exactly one of --keep-last and --older-than.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("rule").required(true).args(["keep_last", "older_than"])))]
pub struct ExpireArgs {
    /// Plugin config file
    pub config: PathBuf,
    /// Keep the N newest complete backups (and what they need)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: Option<u32>,
    /// Keep every backup younger than this, e.g. 30d or 12w (and what they need)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_with_unit)]
    pub older_than: Option<Duration>,
    /// Also keep the newest complete backup of each of the last N days that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Also keep the newest complete backup of each of the last N weeks that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Also keep the newest complete backup of each of the last N months that have one
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Never delete an unfinished or incomplete backup younger than this: it may still be running
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_with_unit, default_value = "24h")]
    pub grace: Duration,
    /// Delete what the plan says (without it, only print the plan)
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Write (or add to) a gpbackup_history.db with a row per backup in the bucket
    #[command(name = "export")]
    Export {
        /// Plugin config file
        config: PathBuf,
        /// The SQLite file, created when missing (gpbackup's: <coordinator data dir>/gpbackup_history.db)
        #[arg(long, value_name = "PATH")]
        db: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Extend the retention of every object of a backup (never shortens COMPLIANCE)
    #[command(name = "extend")]
    Extend {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
        /// New retain-until date: 2027-01-31 or 2027-01-31T12:00:00Z (UTC)
        #[arg(long, value_parser = parse_date, conflicts_with = "by", required_unless_present = "by")]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Extend each object's retain-until date by this much, e.g. 30d or 1y
        #[arg(long, value_parser = parse_duration_with_unit)]
        by: Option<Duration>,
        /// Allow shortening a GOVERNANCE retention (needs s3:BypassGovernanceRetention; logged)
        #[arg(long = "bypass-governance-retention")]
        bypass_governance: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LegalHoldCommand {
    /// Put a legal hold on every object of a backup
    #[command(name = "on")]
    On {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
    },
    /// Lift the legal hold of every object of a backup
    #[command(name = "off")]
    Off {
        /// Plugin config file
        config: PathBuf,
        /// Backup timestamp YYYYMMDDHHMMSS
        timestamp: String,
    },
}

/// `2027-01-31` (midnight UTC) or an RFC 3339 date and time.
pub fn parse_date(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let text = text.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{text:?} is not a date (2027-01-31 or 2027-01-31T12:00:00Z)"))
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
