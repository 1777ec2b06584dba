//! gpbackup_s3_plugin: a storage plugin for Greenplum's gpbackup and
//! gprestore, as a library behind a thin binary (`main.rs`).
//!
//! Data and imports flow one way: [`cli`] (argv to a command) ->
//! [`commands`] (one per verb: config, store, wording) -> [`engine`]
//! (streaming, verification, policies every backend shares) -> [`store`]
//! (S3, Glacier vaults, memory). [`config`], [`layout`], [`error`] and
//! [`log`] are leaves that import nothing of the project but each other.

use std::process::ExitCode;

pub mod cli;
pub mod commands;
pub mod config;
pub mod crc;
pub mod engine;
pub mod error;
pub mod layout;
pub mod log;
pub mod offsets;
pub mod record;
pub mod size;
pub mod store;

#[cfg(test)]
mod layers;

/// The plugin's name: first token of `--version`, log file prefix, and the
/// option key gpbackup injects for password encryption.
pub const PLUGIN_NAME: &str = "gpbackup_s3_plugin";

/// The whole program: argv to a command, its outcome to an exit status and,
/// on failure, exactly one line on stderr.
pub fn main_with_args(args: Vec<std::ffi::OsString>) -> ExitCode {
    bounded_allocator();
    log::init();
    std::panic::set_hook(Box::new(|info| {
        // Never the default multi-line report, and never a secret.
        report(&error::Error::local(format!("internal error: {info}")));
    }));
    let outcome = match cli::parse(args) {
        Ok(cli::Invocation::Version) => commands::version::version(),
        Ok(cli::Invocation::Help(text)) => {
            print!("{text}");
            Ok(())
        }
        Ok(cli::Invocation::Run(command)) => commands::run(command),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e = commands::explain(e);
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// glibc raises its mmap threshold each time a large block is freed, after
/// which part-sized buffers come from the heap and are never returned: a
/// restore's RSS doubles. A fixed threshold keeps every part buffer in its
/// own mapping, released the moment the part is done.
fn bounded_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The error line, in Greenplum's log format, to the log file and stderr.
fn report(e: &error::Error) {
    ::log::error!("{e}");
    eprintln!("{}", log::format_line(::log::Level::Error, &e.to_string()));
}
