//! The command line: turns argv into one [`Command`] (defined with the
//! commands, in [`crate::commands::args`]) or a request for the version or
//! help. Parse errors become one line (gpbackup shows a plugin's output
//! verbatim, and a multi-line usage screen in a backup log helps nobody);
//! `--help` still prints clap's full help on stdout.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use crate::commands::args::Command;
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

/// What the process was asked to do.
#[derive(Debug)]
pub enum Invocation {
    Version,
    Help(String),
    Run(Command),
}

/// Parses argv (without turning errors into process exits).
pub fn parse(args: Vec<OsString>) -> Result<Invocation, Error> {
    // Go's flag package: one or two dashes, `=true` allowed.
    if matches!(
        args.get(1).and_then(|a| a.to_str()),
        Some("--version" | "-version" | "--version=true" | "-version=true")
    ) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::args::{HookArgs, Scope, parse_content_id};
    use crate::config::RestoreTier;
    use std::time::Duration;

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
        for flag in ["--version", "-version", "--version=true"] {
            assert!(matches!(parse(args(&[flag])).unwrap(), Invocation::Version), "{flag}");
        }
        assert!(matches!(
            parse(args(&["plugin_api_version"])).unwrap(),
            Invocation::Run(Command::PluginApiVersion { .. })
        ));
        assert!(matches!(
            parse(args(&["setup_plugin_for_backup", "/c", "/d", "master", "\"-1\""])).unwrap(),
            Invocation::Run(Command::SetupPluginForBackup(_))
        ));
        // A bare content id, as gpbackup's own README examples type it.
        for (scope, id) in [("master", "-1"), ("coordinator", "-1"), ("segment", "0")] {
            match parse(args(&["setup_plugin_for_backup", "/c", "/d", scope, id])).unwrap() {
                Invocation::Run(Command::SetupPluginForBackup(hook)) => {
                    assert_eq!(hook.scope().unwrap().1, Some(id.parse().unwrap()), "{scope} {id}")
                }
                other => panic!("{other:?}"),
            }
        }
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
