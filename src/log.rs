//! The plugin's log behind the `log` facade:
//! `$HOME/gpAdminLogs/gpbackup_s3_plugin_YYYYMMDD.log`.
//!
//! Everything logs with `log::info!`, `log::warn!` and `log::error!`; this
//! file is the one logger behind them, installed by [`init`]. Lines use
//! Greenplum's format, so they sort and grep together with gpbackup's own
//! logs: `20240315:12:30:45 gpbackup_s3_plugin:gpadmin:sdw1:012345-[INFO]:-message`.
//! Many plugin processes append to the same file at once; each line goes out
//! in a single `write` on a file opened with O_APPEND, so lines never
//! interleave. Logging never writes to stdout (the data channel) and never to
//! stderr (gpbackup_helper fails a restore on any stderr byte); if the file
//! cannot be opened, lines are dropped. Every line passes through
//! [`redact`] with the secrets of the loaded config. The file is opened on
//! the first line, so a command that logs nothing touches no file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock, RwLock};

use chrono::Local;

struct GpLogger {
    file: OnceLock<Option<Mutex<File>>>,
    user: String,
    host: String,
}

static LOGGER: OnceLock<GpLogger> = OnceLock::new();
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

fn logger() -> &'static GpLogger {
    LOGGER.get_or_init(|| GpLogger {
        file: OnceLock::new(),
        user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_string()),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".to_string()),
    })
}

/// Installs the logger as the `log` facade's (once per process).
pub fn init() {
    if log::set_logger(logger()).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

fn open_file() -> Option<File> {
    let home = std::env::var_os("HOME")?;
    let dir = std::path::Path::new(&home).join("gpAdminLogs");
    std::fs::create_dir_all(&dir).ok()?;
    let name = format!("{}_{}.log", crate::PLUGIN_NAME, Local::now().format("%Y%m%d"));
    OpenOptions::new().create(true).append(true).open(dir.join(name)).ok()
}

/// Values that must never be written anywhere (credentials from the config).
pub fn set_secrets(secrets: &[String]) {
    if let Ok(mut s) = SECRETS.write() {
        *s = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
    }
}

/// Replaces every secret in `text`; used for log lines and the error line.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(secrets) = SECRETS.read() {
        for s in secrets.iter() {
            out = out.replace(s.as_str(), "********");
        }
    }
    out
}

fn tag(level: log::Level) -> &'static str {
    match level {
        log::Level::Error => "ERROR",
        log::Level::Warn => "WARNING",
        _ => "INFO",
    }
}

/// One line in Greenplum's log format (no trailing newline), redacted.
pub fn format_line(level: log::Level, msg: &str) -> String {
    let l = logger();
    format!(
        "{} {}:{}:{}:{:06}-[{}]:-{}",
        Local::now().format("%Y%m%d:%H:%M:%S"),
        crate::PLUGIN_NAME,
        l.user,
        l.host,
        std::process::id(),
        tag(level),
        redact(msg).replace(['\n', '\r'], " ")
    )
}

impl log::Log for GpLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(record.level(), &record.args().to_string()) + "\n";
        if let Some(file) = self.file.get_or_init(|| open_file().map(Mutex::new))
            && let Ok(mut f) = file.lock()
        {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_redacted_and_single() {
        set_secrets(&["s3cr3t".to_string(), String::new()]);
        let line = format_line(log::Level::Warn, "key s3cr3t\nnext");
        assert!(line.contains("-[WARNING]:-key ******** next"), "{line}");
        assert!(line.contains(":gpbackup_s3_plugin:") || line.contains(" gpbackup_s3_plugin:"));
        set_secrets(&[]);
    }
}
