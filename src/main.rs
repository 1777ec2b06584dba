//! gpbackup_s3_plugin: a storage plugin for Greenplum's gpbackup and
//! gprestore. Each run does one protocol command and exits; this file only
//! turns the command line into a command and the outcome into an exit
//! status and, on failure, exactly one line on stderr.

use std::process::ExitCode;

mod cli;
mod commands;
mod config;
mod engine;
mod error;
mod layout;
mod log;
mod offsets;
mod size;
mod store;
mod treehash;

/// The plugin's name: first token of `--version`, log file prefix, and the
/// option key gpbackup injects for password encryption.
pub const PLUGIN_NAME: &str = "gpbackup_s3_plugin";

fn main() -> ExitCode {
    bounded_allocator();
    std::panic::set_hook(Box::new(|info| {
        // Never the default multi-line report, and never a secret.
        report(&error::Error::Local(format!("internal error: {info}")));
    }));
    let outcome = match cli::parse(std::env::args_os().collect()) {
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
            report(&e);
            ExitCode::from(e.exit_code() as u8)
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
    let line = log::format_line(log::Level::Error, &e.to_string());
    log::error(&e.to_string());
    eprintln!("{line}");
}
