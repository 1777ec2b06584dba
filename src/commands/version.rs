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
pub fn version() -> Result<()> {
    print_line(&format!("{} version {}", crate::PLUGIN_NAME, env!("CARGO_PKG_VERSION")))
}

fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))
}
