//! The command line: the gpbackup plugin protocol's verbs, exactly as
//! gpbackup, gprestore and gpbackup_helper call them.
//!
//! Parse errors become one line (gpbackup shows a plugin's output verbatim,
//! and a multi-line usage screen in a backup log helps nobody); `--help`
//! still prints clap's full help on stdout.

use std::ffi::OsString;
use std::path::PathBuf;

use std::time::Duration;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{MAX_RESTORE_DAYS, RestoreTier, parse_duration};
use crate::error::Error;

#[derive(Debug, Parser)]
#[command(
    name = "gpbackup_s3_plugin",
    about = "Storage plugin for Greenplum gpbackup/gprestore: S3 and S3-compatible object stores",
    disable_version_flag = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Arguments of the setup and cleanup hooks.
#[derive(Debug, Clone, clap::Args)]
pub struct HookArgs {
    /// Plugin config file
    pub config: PathBuf,
    /// Local backup directory: <datadir>/backups/<YYYYMMDD>/<YYYYMMDDHHMMSS>
    pub dir: String,
    /// master, coordinator, segment_host or segment
    pub scope: String,
    /// Content id, possibly wrapped in double quotes ("-1")
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

/// What the process was asked to do.
#[derive(Debug)]
pub enum Invocation {
    Version,
    Help(String),
    Run(Command),
}

/// Parses argv (without turning errors into process exits).
pub fn parse(args: Vec<OsString>) -> Result<Invocation, Error> {
    if args.get(1).and_then(|a| a.to_str()) == Some("--version") {
        return Ok(Invocation::Version);
    }
    match Cli::try_parse_from(&args) {
        Ok(cli) => Ok(Invocation::Run(cli.command)),
        Err(e) if e.kind() == ErrorKind::DisplayHelp => Ok(Invocation::Help(e.render().to_string())),
        Err(e) => Err(Error::usage(one_line(&e, args.get(1).and_then(|a| a.to_str())))),
    }
}

fn one_line(err: &clap::Error, command: Option<&str>) -> String {
    let usage = command.and_then(|name| {
        let mut cmd = Cli::command();
        let sub = cmd.find_subcommand_mut(name)?;
        let usage = sub.render_usage().to_string();
        Some(format!("{} {}", crate::PLUGIN_NAME, usage.trim().trim_start_matches("Usage:").trim()))
    });
    let context = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let name = command.unwrap_or("");
    let with_usage = |msg: String| match &usage {
        Some(u) => format!("{msg}; usage: {u}"),
        None => msg,
    };
    match err.kind() {
        ErrorKind::InvalidSubcommand | ErrorKind::UnknownArgument if usage.is_none() => {
            format!("unknown command {name:?}; run gpbackup_s3_plugin --help for the list")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given; run gpbackup_s3_plugin --help for the list".to_string()
        }
        ErrorKind::MissingRequiredArgument => {
            with_usage(format!("{name}: missing argument {}", context(ContextKind::InvalidArg)))
        }
        ErrorKind::UnknownArgument | ErrorKind::TooManyValues | ErrorKind::InvalidSubcommand => {
            with_usage(format!("{name}: unexpected argument {:?}", context(ContextKind::InvalidArg)))
        }
        _ => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("invalid command line");
            with_usage(first.trim_start_matches("error: ").to_string())
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        std::iter::once("gpbackup_s3_plugin").chain(list.iter().copied()).map(OsString::from).collect()
    }

    fn usage_error(list: &[&str]) -> String {
        match parse(args(list)) {
            Err(e) if e.is(crate::error::Kind::Usage) => e.message().to_string(),
            other => panic!("expected a usage error for {list:?}, got {other:?}"),
        }
    }

    #[test]
    fn content_ids() {
        assert_eq!(parse_content_id("\"-1\"").unwrap(), -1);
        assert_eq!(parse_content_id("\"12\"").unwrap(), 12);
        assert_eq!(parse_content_id("3").unwrap(), 3);
        assert_eq!(parse_content_id("'0'").unwrap(), 0);
        for bad in ["", "\"\"", "\"-2\"", "x", "\"1", "1.0"] {
            assert!(parse_content_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scopes() {
        let hook = |scope: &str, id: Option<&str>| HookArgs {
            config: "c".into(),
            dir: "d".into(),
            scope: scope.into(),
            content_id: id.map(str::to_string),
        };
        assert_eq!(hook("master", Some("\"-1\"")).scope().unwrap(), (Scope::Coordinator, Some(-1)));
        assert_eq!(hook("coordinator", Some("\"-1\"")).scope().unwrap(), (Scope::Coordinator, Some(-1)));
        assert_eq!(hook("segment_host", None).scope().unwrap(), (Scope::SegmentHost, None));
        assert_eq!(hook("segment", Some("\"7\"")).scope().unwrap(), (Scope::Segment, Some(7)));
        assert!(hook("host", None).scope().unwrap_err().to_string().contains("scope \"host\""));
        assert!(hook("segment", Some("seven")).scope().unwrap_err().to_string().contains("content id"));
    }

    #[test]
    fn protocol_shapes_parse() {
        assert!(matches!(parse(args(&["--version"])).unwrap(), Invocation::Version));
        assert!(matches!(
            parse(args(&["plugin_api_version"])).unwrap(),
            Invocation::Run(Command::PluginApiVersion { .. })
        ));
        assert!(matches!(
            parse(args(&["setup_plugin_for_backup", "/c", "/d", "master", "\"-1\""])).unwrap(),
            Invocation::Run(Command::SetupPluginForBackup(_))
        ));
        assert!(matches!(
            parse(args(&["restore_data_subset", "/c", "/p", "/o"])).unwrap(),
            Invocation::Run(Command::RestoreDataSubset { .. })
        ));
        assert!(matches!(
            parse(args(&["list_directory", "/c"])).unwrap(),
            Invocation::Run(Command::ListDirectory { prefix: None, .. })
        ));
        assert!(matches!(parse(args(&["check", "/c"])).unwrap(), Invocation::Run(Command::Check { .. })));
        match parse(args(&[
            "thaw",
            "/c",
            "20240315123045",
            "--wait",
            "--tier",
            "bulk",
            "--days",
            "3",
            "--timeout",
            "2h",
        ]))
        .unwrap()
        {
            Invocation::Run(Command::Thaw { wait, tier, days, timeout, status, .. }) => {
                assert!(wait && !status);
                assert_eq!((tier, days, timeout), (Some(RestoreTier::Bulk), Some(3), Some(Duration::from_secs(7200))));
            }
            other => panic!("{other:?}"),
        }
        let m = usage_error(&["thaw", "/c", "20240315123045", "--tier", "fast"]);
        assert!(m.contains("Expedited, Standard or Bulk") && !m.contains('\n'), "{m}");
        assert!(usage_error(&["thaw", "/c", "20240315123045", "--days", "0"]).contains("0"));
        assert!(usage_error(&["thaw", "/c", "20240315123045", "--timeout", "1h"]).contains("--wait"));
    }

    #[test]
    fn errors_are_one_line_and_name_the_problem() {
        let m = usage_error(&["unknown_command"]);
        assert!(m.contains("unknown command \"unknown_command\""), "{m}");
        let m = usage_error(&["setup_plugin_for_backup", "/c", "/d"]);
        assert!(
            m.contains("missing argument <SCOPE>") && m.contains("usage: gpbackup_s3_plugin setup_plugin_for_backup"),
            "{m}"
        );
        let m = usage_error(&["backup_file", "/c", "/p", "extra"]);
        assert!(m.contains("unexpected argument \"extra\""), "{m}");
        let m = usage_error(&["delete_backup", "/c"]);
        assert!(m.contains("missing argument <TIMESTAMP>"), "{m}");
        let m = usage_error(&[]);
        assert!(m.contains("no command given"), "{m}");
        for list in [&["unknown_command"][..], &["setup_plugin_for_backup", "/c"], &["restore_data", "/c", "/p", "/q"]]
        {
            assert!(!usage_error(list).contains('\n'));
        }
    }
}
