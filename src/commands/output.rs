//! What commands print on stdout besides data: report lines (also logged),
//! a progress line redrawn on a terminal, and the shared wording of sizes,
//! rates and where objects are stored.

use std::io::{IsTerminal, Write};

use crate::engine::catalog::inspect::{Problem, StorageState, StorageSummary, What};
use crate::engine::catalog::lock::{Lock, ObjectLockSummary, Until};
use crate::engine::catalog::{Backup, Note, Status, files};
use crate::store::{RestoreLifetime, Storage};

/// Prints `line` on stdout (redacted) and logs it.
pub fn say(line: &str) {
    log::info!("{line}");
    print_line(line);
}

/// Prints `line` on stdout and logs it as `command: line`.
pub fn say_as(command: &str, line: &str) {
    log::info!("{command}: {line}");
    print_line(line);
}

/// A `what  value` line of `check`'s report.
pub fn say_setting(what: &str, value: &str) {
    log::info!("check: {what}: {value}");
    print_line(&format!("{what:<22} {value}"));
}

fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", crate::log::redact(line));
    let _ = out.flush();
}

/// `1.2 MiB (1258291 bytes) in 0.35s (3.4 MiB/s)`.
pub fn throughput(bytes: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
    format!("{} ({bytes} bytes) in {secs:.3}s ({}/s)", crate::size::human(bytes), crate::size::human(rate as u64))
}

/// `GLACIER`, `INTELLIGENT_TIERING (ARCHIVE_ACCESS)`, `Glacier vault v1`.
pub fn storage(storage: &Storage) -> String {
    match storage {
        Storage::Class { class, archive_tier: Some(tier) } => format!("{class} ({tier})"),
        Storage::Class { class, archive_tier: None } => class.clone(),
        Storage::Vault(name) => format!("Glacier vault {name}"),
    }
}

/// `readable for 7 days`, `downloadable for 24 hours after each job ends`.
pub fn lifetime(lifetime: RestoreLifetime) -> String {
    match lifetime {
        RestoreLifetime::Days(days) => format!("readable for {days} days"),
        RestoreLifetime::HoursAfterJob(hours) => format!("downloadable for {hours} hours after each job ends"),
    }
}

/// Where `thaw` reports: stdout, one line per event, and the log. On a
/// terminal the waiting progress is one line redrawn in place; otherwise
/// (cron, a pipe) a line is printed each time the counts change.
pub struct Report {
    terminal: bool,
    quiet: bool,
    /// Off a terminal, progress goes to the log only (the report's own
    /// lines say what happened).
    progress_in_log: bool,
    drawn: bool,
    last: String,
}

impl Report {
    pub fn new() -> Report {
        Report {
            terminal: std::io::stdout().is_terminal(),
            quiet: false,
            progress_in_log: false,
            drawn: false,
            last: String::new(),
        }
    }

    /// Log file only (the setup hook: gpbackup shows a hook's output only
    /// when it fails).
    pub fn quiet() -> Report {
        Report { terminal: false, quiet: true, progress_in_log: false, drawn: false, last: String::new() }
    }

    /// Progress off a terminal goes to the log file, not stdout.
    pub fn progress_in_log(mut self) -> Report {
        self.progress_in_log = true;
        self
    }

    pub fn line(&mut self, text: &str) {
        self.end_progress();
        if self.quiet {
            log::info!("{text}");
        } else {
            say(text);
        }
    }

    /// A progress line; `key` is the part that, when it changes, makes a
    /// new line off a terminal (the rest, such as the time, does not).
    pub fn progress(&mut self, text: &str, key: &str) {
        let changed = key != self.last;
        self.last = key.to_string();
        if self.terminal {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[K{text}");
            let _ = stdout.flush();
            self.drawn = true;
            if changed {
                log::info!("{text}");
            }
        } else if changed && self.progress_in_log {
            log::info!("{text}");
        } else if changed {
            self.line(text);
        }
    }

    pub fn end_progress(&mut self) {
        if self.drawn {
            println!();
            self.drawn = false;
        }
    }
}

/// Fails unless file descriptor `fd` (0: stdin, 1: stdout) was open when
/// the process started. Rust replaces a closed standard descriptor with
/// /dev/null opened read-write before `main`, which for a data stream
/// would be silent data loss (an empty backup, a restore into nothing); a
/// shell's own `</dev/null` or `>/dev/null` opens it one way only, and is
/// left alone.
pub fn require_open(fd: i32, name: &str) -> crate::error::Result<()> {
    // SAFETY: fcntl(F_GETFL) and fstat only read the descriptor's state.
    let closed = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let mut stat: libc::stat = std::mem::zeroed();
        flags == -1
            || (flags & libc::O_ACCMODE == libc::O_RDWR
                && libc::fstat(fd, &mut stat) == 0
                && stat.st_mode & libc::S_IFMT == libc::S_IFCHR
                && stat.st_rdev == libc::makedev(1, 3))
    };
    if closed {
        return Err(crate::error::Error::local(format!(
            "{name} is closed: there is no data stream to {}",
            if fd == 0 { "read" } else { "write" }
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The catalog's words, shared by `backups`, `verify`, `expire` and `history`.

pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Complete => "complete",
        Status::Failed => "failed",
        Status::Incomplete => "incomplete",
        Status::Unreadable => "unreadable",
        Status::Unfinished => "unfinished",
        Status::Sealed => "encrypted",
    }
}

/// What a restorable backup lacks that gpbackup writes, and what that
/// costs.
pub fn notes(b: &Backup) -> Vec<String> {
    b.notes
        .iter()
        .map(|n| match n {
            Note::NoPluginConfig => {
                "no plugin config copy (plugin_config.yaml): restorable, but gpbackup --incremental cannot build on it"
                    .to_string()
            }
            Note::NoStatistics => "no statistics.sql: restorable, but not with gprestore --with-stats".to_string(),
        })
        .collect()
}

/// `full` or `incremental`, `-` without a config.
pub fn backup_type(b: &Backup) -> &'static str {
    match &b.config {
        None => "-",
        Some(c) if c.incremental => "incremental",
        Some(_) => "full",
    }
}

/// `all`, `data-only` or `metadata-only`.
pub fn sections(b: &Backup) -> &'static str {
    match &b.config {
        None => "-",
        Some(c) if c.metadata_only => "metadata-only",
        Some(c) if c.data_only => "data-only",
        Some(_) => "all",
    }
}

/// `2024-03-15 12:30:45` (the coordinator's local time), `-` for a
/// timestamp that is no date.
pub fn date(ts: &str) -> String {
    files::timestamp_date(ts).map_or_else(|| "-".to_string(), |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// What keeps a backup from being complete, in a few words each.
pub fn problems(b: &Backup) -> Vec<String> {
    let mut out = Vec::new();
    if b.config.is_none() && b.problems.is_empty() {
        out.push("no config.yaml: still running, or killed".to_string());
    }
    for p in &b.problems {
        out.push(match p {
            Problem::Status(s) => format!("gpbackup recorded status {s}"),
            Problem::Unreadable { file, why } => format!("{} unreadable: {why}", file.suffix()),
            Problem::Sealed { file, why } => format!("{} encrypted, no key here opens it: {why}", file.suffix()),
        });
    }
    let mut segments: std::collections::BTreeMap<i32, (u64, bool, bool)> = std::collections::BTreeMap::new();
    for m in &b.missing {
        match &m.what {
            What::Coordinator(file) => out.push(format!("no {}", file.suffix())),
            What::Table { content, .. } => segments.entry(*content).or_default().0 += 1,
            What::SegmentData { content } => segments.entry(*content).or_default().1 = true,
            What::SegmentToc { content } => segments.entry(*content).or_default().2 = true,
        }
    }
    let shown = 3;
    for (content, (tables, data, toc)) in segments.iter().take(shown) {
        let mut what = Vec::new();
        if *tables > 0 {
            what.push(format!("{tables} table data file{} missing", if *tables == 1 { "" } else { "s" }));
        }
        if *data {
            what.push("no data file".to_string());
        }
        if *toc {
            what.push("no segment TOC".to_string());
        }
        out.push(format!("segment {content}: {}", what.join(", ")));
    }
    if segments.len() > shown {
        out.push(format!("and {} more segments with files missing", segments.len() - shown));
    }
    out
}

/// `hot`, `archived (DEEP_ARCHIVE)`, `thawed until 2024-05-01 10:00 UTC`.
pub fn storage_word(s: &StorageSummary) -> String {
    let classes: Vec<String> = s.classes.iter().map(storage).collect();
    let of = if classes.is_empty() { String::new() } else { format!(" ({})", classes.join(", ")) };
    match &s.state {
        StorageState::Hot => "hot".to_string(),
        StorageState::Archived => format!("archived{of}"),
        StorageState::Thawing => format!("thawing{of}"),
        StorageState::PartlyThawed => format!("partly thawed{of}"),
        StorageState::Thawed { until: Some(until) } => format!("thawed until {} UTC", until.format("%Y-%m-%d %H:%M")),
        StorageState::Thawed { until: None } => "thawed".to_string(),
    }
}

pub fn storage_state_word(s: &StorageState) -> &'static str {
    match s {
        StorageState::Hot => "hot",
        StorageState::Archived => "archived",
        StorageState::Thawing => "thawing",
        StorageState::PartlyThawed => "partly thawed",
        StorageState::Thawed { .. } => "thawed",
    }
}

/// `until 2025-01-01`, `with no age limit`, `(policy not understood)`.
pub fn until_word(until: &Until) -> String {
    match until {
        Until::At(at) => format!("until {}", at.format("%Y-%m-%d %H:%M")),
        Until::Forever => "with no age limit".to_string(),
        Until::Unknown => "(its policy is not understood: assumed locked)".to_string(),
    }
}

/// `none`, `vault lock Locked until 2025-01-01 00:00`.
pub fn lock_word(lock: &Lock, now: chrono::NaiveDateTime) -> String {
    if !lock.holds(now) {
        return "none".to_string();
    }
    match lock {
        Lock::None => "none".to_string(),
        Lock::Vault { state, until } => format!("vault lock {state} {}", until_word(until)),
        Lock::ObjectLock(s) => object_lock_word(s),
    }
}

/// `object lock COMPLIANCE until 2025-01-01 00:00 (earliest 2024-12-31 23:59); 2 on legal hold; 1 unlocked`.
fn object_lock_word(s: &ObjectLockSummary) -> String {
    let modes: Vec<&str> = s.modes.iter().map(|m| m.as_str()).collect();
    let mut out = match &s.until {
        Until::At(_) => format!("object lock {} {}", modes.join("+"), until_word(&s.until)),
        _ => "object lock".to_string(),
    };
    if let (Some(earliest), Until::At(latest)) = (s.earliest, &s.until)
        && earliest.format("%Y-%m-%d %H:%M").to_string() != latest.format("%Y-%m-%d %H:%M").to_string()
    {
        out.push_str(&format!(" (earliest {})", earliest.format("%Y-%m-%d %H:%M")));
    }
    if s.legal_holds > 0 {
        out.push_str(&format!("; {} on legal hold", s.legal_holds));
    }
    if s.unlocked > 0 {
        out.push_str(&format!("; {} unlocked", s.unlocked));
    }
    out
}

/// `1 backup`, `2 backups`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}

/// A duration as an option takes it: `30d`, `24h`, `90m`, `45s`.
pub fn short_duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        s if s % 86400 == 0 => format!("{}d", s / 86400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_typed() {
        let d = std::time::Duration::from_secs;
        assert_eq!(short_duration(d(86400 * 30)), "30d");
        assert_eq!(short_duration(d(86400)), "1d");
        assert_eq!(short_duration(d(7200)), "2h");
        assert_eq!(short_duration(d(90 * 60)), "90m");
        assert_eq!(short_duration(d(61)), "61s");
    }
}
