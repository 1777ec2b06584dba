//! What commands print on stdout besides data: report lines (also logged),
//! a progress line redrawn on a terminal, and the shared wording of sizes,
//! rates and where objects are stored.

use std::io::{IsTerminal, Write};

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
    drawn: bool,
    last: String,
}

impl Report {
    pub fn new() -> Report {
        Report { terminal: std::io::stdout().is_terminal(), quiet: false, drawn: false, last: String::new() }
    }

    /// Log file only (the setup hook: gpbackup shows a hook's output only
    /// when it fails).
    pub fn quiet() -> Report {
        Report { terminal: false, quiet: true, drawn: false, last: String::new() }
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
