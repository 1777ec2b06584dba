//! `thaw CFG TIMESTAMP [--wait] [--tier T] [--days N] [--timeout DUR] [--status]`:
//! make an archived backup readable again.
//!
//! Payloads stored in an archived class (S3 Glacier Flexible Retrieval,
//! Deep Archive) cannot be read until a restore request has made a temporary
//! copy, which takes minutes to two days. `thaw` asks for that copy for every
//! archived object of the backup, reports what it found (how many objects
//! are readable, under way, still archived; when the restored copies
//! expire), and with `--wait` follows the restores until all are readable.
//! It is idempotent: an object whose restore is under way or done is not
//! asked for again, so it is safe to rerun, from cron too.
//!
//! The backup's objects are those under its directory, plus, for an
//! incremental backup, those of every earlier backup in its restore plan
//! (read from `gpbackup_<TS>_config.yaml`), since gprestore reads their
//! data files too. `setup_plugin_for_restore` runs the same survey before a
//! restore (see [`super::hooks`]). Nothing here names a backend: a store
//! says whether an object is readable and how to bring it back.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use crate::config::{Thaw, parse_duration};
use crate::error::{Error, Result};
use crate::layout;
use crate::store::{ObjectState, Readiness, RestoreRequested, RestoreTier, Store};

use super::Context;

/// Status requests (HEAD) and restore requests in flight at once.
const CONCURRENCY: usize = 16;
/// Polling starts fast (Expedited restores take minutes, test servers
/// seconds) and slows down to this.
const MAX_POLL: Duration = Duration::from_secs(60);

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub wait: bool,
    pub tier: Option<RestoreTier>,
    pub days: Option<u32>,
    pub timeout: Option<Duration>,
    /// Report only: request nothing.
    pub status_only: bool,
}

pub async fn run(config: &Path, timestamp: &str, options: &Options) -> Result<()> {
    layout::validate_timestamp(timestamp)?;
    let ctx = Context::open(config).await?;
    let settings = Thaw {
        tier: options.tier.unwrap_or(ctx.config.thaw.tier),
        days: options.days.unwrap_or(ctx.config.thaw.days),
        ..ctx.config.thaw
    };
    let mut out = Report::new();
    let prefixes = backup_prefixes(&ctx, timestamp).await?;
    if prefixes.len() > 1 {
        let earlier: Vec<&str> = prefixes.iter().skip(1).map(|(ts, _)| ts.as_str()).collect();
        out.line(&format!("backup {timestamp} is incremental: its restore plan also reads {}", earlier.join(", ")));
    }
    let mut survey = survey(&ctx.store, &prefixes).await?;
    if survey.total == 0 {
        return Err(Error::NotFound(format!("backup {timestamp}: no objects under {}", ctx.store.url(&prefixes[0].1))));
    }
    out.line(&format!("backup {timestamp}: {}", survey.summary()));

    if !options.status_only && !survey.archived.is_empty() {
        let outcome = request_all(&ctx.store, &survey.archived, settings.tier, settings.days).await?;
        out.line(&format!(
            "requested {} restores (tier {}, {}){}",
            outcome.started,
            settings.tier.as_str(),
            ctx.store.restored_lifetime(settings.days),
            outcome.note()
        ));
        survey.archived_to_restoring();
    }

    if options.wait && !survey.pending().is_empty() {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let request = (!options.status_only).then_some(settings);
        wait(&ctx.store, &mut survey, deadline, request, &mut out).await?;
    }

    let pending = survey.pending().len();
    if pending == 0 {
        out.line(&format!("all {} objects of backup {timestamp} are readable{}", survey.total, survey.expiry_note()));
    } else if options.status_only && !survey.archived.is_empty() {
        out.line(&format!(
            "{} objects are archived with no restore requested: run `{} thaw <plugin config> {timestamp}` to request them",
            survey.archived.len(),
            crate::PLUGIN_NAME
        ));
    } else {
        out.line(&format!(
            "{pending} of {} objects are not readable yet (restores take minutes to hours); run `{} thaw <plugin \
             config> {timestamp} --wait` to follow them",
            survey.total,
            crate::PLUGIN_NAME
        ));
    }
    Ok(())
}

/// The backup's prefix and those of the earlier backups in its restore plan
/// (incremental backups), as `(timestamp, prefix)`, the backup's own first.
pub async fn backup_prefixes(ctx: &Context, timestamp: &str) -> Result<Vec<(String, String)>> {
    let folder = &ctx.config.folder;
    let own = layout::backup_prefix(folder, timestamp)?;
    let mut out = vec![(timestamp.to_string(), own.clone())];
    let config_key = format!("{own}gpbackup_{timestamp}_config.yaml");
    let text = match ctx.store.get_range(&config_key, 0..(4 << 20)).await {
        Ok(fetched) => String::from_utf8_lossy(&fetched.data).into_owned(),
        // No readable config (not a gpbackup backup, gone, or archived by
        // hand): the directory alone.
        Err(Error::NotFound(_)) | Err(Error::Archived(_)) => return Ok(out),
        Err(e) => return Err(e),
    };
    for ts in restore_plan_timestamps(&text) {
        if !out.iter().any(|(t, _)| *t == ts) {
            let prefix = layout::backup_prefix(folder, &ts)?;
            out.push((ts, prefix));
        }
    }
    Ok(out)
}

/// The timestamps of `restoreplan:` in a gpbackup `_config.yaml`.
fn restore_plan_timestamps(text: &str) -> Vec<String> {
    let Ok(value) = serde_yaml::from_str::<serde_yaml::Value>(text) else { return Vec::new() };
    let Some(plan) = value.get("restoreplan").and_then(|p| p.as_sequence()) else { return Vec::new() };
    plan.iter()
        .filter_map(|entry| match entry.get("timestamp")? {
            serde_yaml::Value::String(s) => Some(s.clone()),
            serde_yaml::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|ts| layout::validate_timestamp(ts).is_ok())
        .collect()
}

/// Where every object of a backup stands.
#[derive(Debug, Default)]
pub struct Survey {
    pub total: u64,
    /// Readable as stored (instant-access classes).
    pub instant: u64,
    /// Restored copies, readable now.
    pub restored: u64,
    /// Restores under way.
    pub restoring: Vec<String>,
    /// Archived with no restore: these need a request.
    pub archived: Vec<String>,
    /// Object count per storage of the cold objects (`GLACIER`: 12).
    pub storage: BTreeMap<String, u64>,
    /// The first moment a restored copy stops being readable.
    pub earliest_expiry: Option<DateTime<Utc>>,
}

impl Survey {
    /// Objects not readable yet.
    pub fn pending(&self) -> Vec<String> {
        self.restoring.iter().chain(&self.archived).cloned().collect()
    }

    fn archived_to_restoring(&mut self) {
        let archived = std::mem::take(&mut self.archived);
        self.restoring.extend(archived);
    }

    fn note_state(&mut self, key: String, state: &ObjectState) {
        match &state.readiness {
            Readiness::Ready => self.instant += 1,
            Readiness::Restored { until } => {
                self.restored += 1;
                if let Some(until) = until {
                    self.earliest_expiry = Some(self.earliest_expiry.map_or(*until, |e| e.min(*until)));
                }
            }
            Readiness::Restoring => self.restoring.push(key),
            Readiness::Archived => self.archived.push(key),
        }
    }

    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} objects: {} readable as stored, {} restored, {} restoring, {} archived without a restore",
            self.total,
            self.instant,
            self.restored,
            self.restoring.len(),
            self.archived.len()
        );
        if !self.storage.is_empty() {
            let classes: Vec<String> = self.storage.iter().map(|(c, n)| format!("{c} {n}")).collect();
            text.push_str(&format!(" (cold storage: {})", classes.join(", ")));
        }
        text.push_str(&self.expiry_note());
        text
    }

    pub fn expiry_note(&self) -> String {
        match self.earliest_expiry {
            Some(at) => format!("; restored copies readable until {} UTC at the earliest", at.format("%Y-%m-%d %H:%M")),
            None => String::new(),
        }
    }
}

/// Lists the prefixes and asks about every cold object.
pub async fn survey(store: &Arc<dyn Store>, prefixes: &[(String, String)]) -> Result<Survey> {
    let mut survey = Survey::default();
    let mut cold = Vec::new();
    for (_, prefix) in prefixes {
        let mut next = None;
        loop {
            let page = store.list_page(prefix, next, None).await?;
            for object in page.objects {
                survey.total += 1;
                if object.cold {
                    cold.push(object.key);
                } else {
                    survey.instant += 1;
                }
            }
            match page.next {
                Some(token) => next = Some(token),
                None => break,
            }
        }
    }
    for (key, state) in states(store, cold).await? {
        if state.readiness != Readiness::Ready {
            *survey.storage.entry(state.storage.clone()).or_default() += 1;
        }
        survey.note_state(key, &state);
    }
    Ok(survey)
}

/// The state of each key, [`CONCURRENCY`] requests at a time. An object
/// deleted meanwhile is left out.
async fn states(store: &Arc<dyn Store>, keys: Vec<String>) -> Result<Vec<(String, ObjectState)>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut tasks: JoinSet<(String, Result<ObjectState>)> = JoinSet::new();
    let mut keys = keys.into_iter();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some(key) = keys.next() else { break };
            let store = store.clone();
            tasks.spawn(async move {
                let state = store.object_state(&key).await;
                (key, state)
            });
        }
        let Some(joined) = tasks.join_next().await else { break };
        let (key, state) = joined.map_err(|e| Error::Storage(format!("status task failed: {e}")))?;
        match state {
            Ok(state) => out.push((key, state)),
            Err(Error::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// How a round of restore requests went.
#[derive(Debug, Default)]
pub struct Requested {
    pub started: u64,
    pub already_restoring: u64,
    pub already_readable: u64,
}

impl Requested {
    fn note(&self) -> String {
        let mut notes = Vec::new();
        if self.already_restoring > 0 {
            notes.push(format!("{} were already under way", self.already_restoring));
        }
        if self.already_readable > 0 {
            notes.push(format!("{} were readable already", self.already_readable));
        }
        if notes.is_empty() { String::new() } else { format!("; {}", notes.join(", ")) }
    }
}

/// Asks for a restore of every key, [`CONCURRENCY`] at a time.
pub async fn request_all(store: &Arc<dyn Store>, keys: &[String], tier: RestoreTier, days: u32) -> Result<Requested> {
    let mut outcome = Requested::default();
    let mut tasks: JoinSet<Result<RestoreRequested>> = JoinSet::new();
    let mut keys = keys.iter().cloned();
    loop {
        while tasks.len() < CONCURRENCY {
            let Some(key) = keys.next() else { break };
            let store = store.clone();
            tasks.spawn(async move { store.request_restore(&key, tier, days).await });
        }
        let Some(joined) = tasks.join_next().await else { break };
        match joined.map_err(|e| Error::Storage(format!("restore task failed: {e}")))?? {
            RestoreRequested::Started => outcome.started += 1,
            RestoreRequested::AlreadyRestoring => outcome.already_restoring += 1,
            RestoreRequested::AlreadyReadable => outcome.already_readable += 1,
        }
    }
    crate::log::info(&format!(
        "Restore requests: {} started, {} already under way, {} readable already (tier {}, {days} days)",
        outcome.started,
        outcome.already_restoring,
        outcome.already_readable,
        tier.as_str()
    ));
    Ok(outcome)
}

/// Polls the objects not readable yet until all are, or until `deadline`.
/// With `request`, objects found archived (a restore that failed or whose
/// copy expired meanwhile) are asked for again.
pub async fn wait(
    store: &Arc<dyn Store>,
    survey: &mut Survey,
    deadline: Option<Instant>,
    request: Option<Thaw>,
    out: &mut Report,
) -> Result<()> {
    let started = Instant::now();
    let total_pending = survey.pending().len();
    let mut pending = survey.pending();
    let mut poll = Duration::from_secs(1);
    let mut last_line = String::new();
    loop {
        let states = states(store, std::mem::take(&mut pending)).await?;
        let mut archived = Vec::new();
        survey.restoring.clear();
        survey.archived.clear();
        for (key, state) in states {
            match state.readiness {
                Readiness::Restoring => pending.push(key),
                Readiness::Archived => {
                    archived.push(key.clone());
                    pending.push(key);
                }
                _ => survey.note_state(key, &state),
            }
        }
        if let (Some(settings), false) = (request, archived.is_empty()) {
            request_all(store, &archived, settings.tier, settings.days).await?;
        }
        survey.restoring = pending.clone();
        let ready = total_pending - pending.len();
        let line = format!(
            "{ready} of {total_pending} restores readable, {} under way ({} elapsed)",
            pending.len(),
            human_duration(started.elapsed())
        );
        out.progress(&line, line.split(" (").next() != last_line.split(" (").next());
        last_line = line;
        if pending.is_empty() {
            out.end_progress();
            return Ok(());
        }
        let now = Instant::now();
        if let Some(deadline) = deadline {
            if now >= deadline {
                out.end_progress();
                return Err(Error::Archived(format!(
                    "{} of {total_pending} restores still not readable after {}; they go on: run `{} thaw <plugin \
                     config> <timestamp> --wait` again later",
                    pending.len(),
                    human_duration(started.elapsed()),
                    crate::PLUGIN_NAME
                )));
            }
            poll = poll.min(deadline - now);
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(MAX_POLL);
    }
}

/// `1h 02m`, `3m 05s`, `12s`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Where `thaw` reports: stdout, one line per event, and the log. On a
/// terminal the waiting progress is one line redrawn in place; otherwise
/// (cron, a pipe) a line is printed each time the counts change.
pub struct Report {
    terminal: bool,
    quiet: bool,
    drawn: bool,
}

impl Report {
    pub fn new() -> Report {
        Report { terminal: std::io::stdout().is_terminal(), quiet: false, drawn: false }
    }

    /// Log file only (the setup hook: gpbackup shows a hook's output only
    /// when it fails).
    pub fn quiet() -> Report {
        Report { terminal: false, quiet: true, drawn: false }
    }

    pub fn line(&mut self, text: &str) {
        self.end_progress();
        crate::log::info(text);
        if !self.quiet {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{text}");
            let _ = stdout.flush();
        }
    }

    fn progress(&mut self, text: &str, changed: bool) {
        if self.terminal {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[K{text}");
            let _ = stdout.flush();
            self.drawn = true;
            if changed {
                crate::log::info(text);
            }
        } else if changed {
            self.line(text);
        }
    }

    fn end_progress(&mut self) {
        if self.drawn {
            println!();
            self.drawn = false;
        }
    }
}

impl Default for Report {
    fn default() -> Self {
        Report::new()
    }
}

/// `--timeout` on the command line.
pub fn parse_timeout(text: &str) -> std::result::Result<Duration, String> {
    parse_duration(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_plan_of_an_incremental_backup() {
        let text = r#"backupdir: ""
incremental: true
restoreplan:
- timestamp: "20240315123045"
  tablefqns:
  - public.a
- timestamp: "20240316010101"
  tablefqns: []
timestamp: "20240316010101"
"#;
        assert_eq!(restore_plan_timestamps(text), vec!["20240315123045", "20240316010101"]);
        assert!(restore_plan_timestamps("not: [yaml").is_empty());
        assert!(restore_plan_timestamps("restoreplan:\n- timestamp: bad\n").is_empty());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_secs(12)), "12s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h 02m");
    }
}
