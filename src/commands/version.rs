//! `plugin_api_version`, `--version` and `version [--build]`. The first two
//! are the only output gpbackup parses besides data, so exactly one line
//! each and nothing else; `version --build` is for operators: which build
//! this is (commit, date, compiler, glibc floor), as build.rs embedded it.

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
    print_line(&version_line())
}

/// `version`: the `--version` line; with `--build`, then one `key: value`
/// line per fact of the build.
pub fn run(build: bool) -> Result<()> {
    if !build {
        return version();
    }
    let mut text = version_line();
    for (key, value) in build_facts() {
        text.push_str(&format!("\n{key}: {value}"));
    }
    print_line(&text)
}

/// One line for the log: the first line of each backup and restore on the
/// coordinator says which build ran.
pub fn build_summary() -> String {
    let facts: Vec<String> = build_facts().iter().map(|(key, value)| format!("{key} {value}")).collect();
    format!("{} {}: {}", crate::PLUGIN_NAME, env!("CARGO_PKG_VERSION"), facts.join(", "))
}

fn version_line() -> String {
    format!("{} version {}", program_name(), env!("CARGO_PKG_VERSION"))
}

fn build_facts() -> [(&'static str, &'static str); 5] {
    [
        ("commit", env!("GPBACKUP_S3_PLUGIN_COMMIT")),
        ("built", env!("GPBACKUP_S3_PLUGIN_BUILT")),
        ("rustc", env!("GPBACKUP_S3_PLUGIN_RUSTC")),
        ("target", env!("GPBACKUP_S3_PLUGIN_TARGET")),
        ("glibc", env!("GPBACKUP_S3_PLUGIN_GLIBC")),
    ]
}

/// The file name this process was started as (the plugin's name when
/// argv[0] is missing, empty or has a space).
fn program_name() -> String {
    crate::config::secrets::plugin_name()
}

fn print_line(line: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))
}
