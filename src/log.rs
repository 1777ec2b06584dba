//! The plugin's log: `$HOME/gpAdminLogs/gpbackup_s3_plugin_YYYYMMDD.log`.
//!
//! Lines use Greenplum's format, so they sort and grep together with
//! gpbackup's own logs:
//! `20240315:12:30:45 gpbackup_s3_plugin:gpadmin:sdw1:012345-[INFO]:-message`.
//! Many plugin processes append to the same file at once; each line goes out
//! in a single `write` on a file opened with O_APPEND, so lines never
//! interleave. Logging never writes to stdout (the data channel) and never to
//! stderr (gpbackup_helper fails a restore on any stderr byte); if the file
//! cannot be opened, lines are dropped. Every line passes through
//! [`redact`] with the secrets of the loaded config.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use chrono::Local;

#[derive(Debug, Clone, Copy)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn tag(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

struct Logger {
    file: Option<File>,
    secrets: Vec<String>,
    user: String,
    host: String,
}

static LOGGER: OnceLock<Mutex<Logger>> = OnceLock::new();

fn logger() -> &'static Mutex<Logger> {
    LOGGER.get_or_init(|| {
        Mutex::new(Logger {
            file: open_file(),
            secrets: Vec::new(),
            user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".to_string()),
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".to_string()),
        })
    })
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
    if let Ok(mut l) = logger().lock() {
        l.secrets = secrets.iter().filter(|s| !s.is_empty()).cloned().collect();
    }
}

/// Replaces every secret in `text`; used for log lines and the error line.
pub fn redact(text: &str) -> String {
    let mut out = text.to_string();
    if let Ok(l) = logger().lock() {
        for s in &l.secrets {
            out = out.replace(s.as_str(), "********");
        }
    }
    out
}

/// One line in Greenplum's log format (no trailing newline).
pub fn format_line(level: Level, msg: &str) -> String {
    let (user, host) = match logger().lock() {
        Ok(l) => (l.user.clone(), l.host.clone()),
        Err(_) => ("unknown".to_string(), "localhost".to_string()),
    };
    format!(
        "{} {}:{}:{}:{:06}-[{}]:-{}",
        Local::now().format("%Y%m%d:%H:%M:%S"),
        crate::PLUGIN_NAME,
        user,
        host,
        std::process::id(),
        level.tag(),
        redact(msg).replace('\n', " ")
    )
}

pub fn write(level: Level, msg: &str) {
    let line = format_line(level, msg) + "\n";
    if let Ok(mut l) = logger().lock()
        && let Some(f) = l.file.as_mut()
    {
        let _ = f.write_all(line.as_bytes());
    }
}

pub fn info(msg: &str) {
    write(Level::Info, msg)
}

pub fn warn(msg: &str) {
    write(Level::Warn, msg)
}

pub fn error(msg: &str) {
    write(Level::Error, msg)
}
