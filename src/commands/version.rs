//! `plugin_api_version` and `--version`: the only output gpbackup parses
//! besides data, so exactly one line each and nothing else.

use std::io::Write;

use crate::error::{Error, Result};

/// The plugin API this plugin speaks (0.5.0 added list/delete_directory).
pub const API_VERSION: &str = "0.5.0";

pub fn plugin_api_version() -> Result<()> {
    print_line(API_VERSION)
}

/// `gpbackup_s3_plugin version 0.1.0`: gpbackup stores the third token with
/// each backup and requires exactly three tokens when password encryption
/// is on, so the version is never empty and never contains a space.
/// The first token is the executable's own file name, as the Go plugin's
/// command-line library prints it: a renamed copy reports its name.
pub fn version() -> Result<()> {
    print_line(&format!("{} version {}", program_name(), env!("CARGO_PKG_VERSION")))
}

/// The file name this process was started as (the plugin's name when
/// argv[0] is missing or empty).
fn program_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| crate::PLUGIN_NAME.to_string())
}

fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))
}
