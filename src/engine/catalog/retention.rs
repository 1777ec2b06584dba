//! Choosing what `expire` deletes, safely.
//!
//! Retention rules keep backups (`--keep-last N` complete backups, or all
//! younger than `--older-than D`, plus the newest complete backup of each of
//! the last N days, weeks and months that have one); then, whatever the
//! rules say, a backup is kept when:
//! - it is the newest complete backup (the next `gpbackup --incremental`
//!   builds on it, and a folder is never expired to nothing);
//! - a kept backup's restore plan reads it (the full backup and the
//!   incrementals between, of every kept incremental);
//! - a retention lock refuses its delete (reported, not attempted: a
//!   refusal halfway would leave half a backup);
//! - it is unfinished or incomplete and younger than the grace period (it
//!   may still be running: gpbackup uploads its config, then its report,
//!   then cleans up; a failed backup has ended);
//! - its timestamp is not a date (its age is unknown);
//! - it is encrypted and no private key here reads its config (whether it
//!   is complete, and what it needs, is unknown).
//!
//! Everything else is deleted: complete backups the rules do not keep,
//! failed and incomplete backups, unfinished ones past the grace period.
//! Deletes go newest first, so an interrupted run never leaves an
//! incremental without the backups it needs ([`Guard`] also skips those a
//! failed delete still needs).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDateTime};

use super::files::timestamp_date;
use super::inspect::{Backup, Status};
use super::lock::{Lock, Until};

/// The rules of one `expire` run.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub keep_last: Option<usize>,
    pub older_than: Option<std::time::Duration>,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
    /// How long a backup without a config may still be running.
    pub grace: std::time::Duration,
}

/// What the plan knows of a backup.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub timestamp: String,
    pub date: Option<NaiveDateTime>,
    pub status: Status,
    /// The earlier backups its restore reads.
    pub needs: Vec<String>,
    pub lock: Lock,
}

impl From<&Backup> for Candidate {
    fn from(b: &Backup) -> Candidate {
        Candidate {
            timestamp: b.timestamp().to_string(),
            date: timestamp_date(b.timestamp()),
            status: b.status(),
            needs: b.depends_on(),
            lock: b.lock.clone(),
        }
    }
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    Newest,
    Last,
    Daily,
    Weekly,
    Monthly,
    /// Younger than `--older-than`.
    Younger,
    /// Unfinished or incomplete, and younger than the grace period.
    Running,
    Locked(Until),
    NotADate,
    /// Encrypted, and unreadable here: nothing is known of it.
    Sealed,
    /// A kept backup's restore plan reads it.
    NeededBy(String),
}

/// Why a backup is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Complete, and no rule keeps it.
    NotKept,
    Failed,
    Incomplete,
    /// No config, older than the grace period.
    Unfinished,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep(Vec<Keep>),
    Delete(Expired),
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub timestamp: String,
    pub status: Status,
    pub decision: Decision,
    /// Backups its restore plan names that are not in the bucket.
    pub absent_needs: Vec<String>,
}

impl Planned {
    pub fn deleted(&self) -> bool {
        matches!(self.decision, Decision::Delete(_))
    }
}

/// The plan, newest first.
pub fn plan(candidates: &[Candidate], rules: &Rules, now: NaiveDateTime) -> Vec<Planned> {
    let mut sorted: Vec<&Candidate> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.timestamp.cmp(&a.timestamp));
    let mut keep: BTreeMap<&str, Vec<Keep>> = BTreeMap::new();
    // Rules count complete backups with a date (a timestamp that is no date
    // is kept anyway).
    let complete: Vec<&Candidate> =
        sorted.iter().copied().filter(|c| c.status == Status::Complete && c.date.is_some()).collect();
    if let Some(newest) = complete.first() {
        keep.entry(&newest.timestamp).or_default().push(Keep::Newest);
    }
    for c in complete.iter().take(rules.keep_last.unwrap_or(0)) {
        keep.entry(&c.timestamp).or_default().push(Keep::Last);
    }
    type Period = fn(NaiveDateTime) -> (i32, u32, u32);
    let periods: [(usize, Period, Keep); 3] = [
        (rules.keep_daily, |d| (d.year(), d.month(), d.day()), Keep::Daily),
        (rules.keep_weekly, |d| (d.iso_week().year(), d.iso_week().week(), 0), Keep::Weekly),
        (rules.keep_monthly, |d| (d.year(), d.month(), 0), Keep::Monthly),
    ];
    for (count, period, why) in periods {
        let mut seen = BTreeSet::new();
        for c in &complete {
            let Some(date) = c.date else { continue };
            if seen.len() >= count {
                break;
            }
            if seen.insert(period(date)) {
                keep.entry(&c.timestamp).or_default().push(why.clone());
            }
        }
    }
    let age = |c: &Candidate| c.date.map(|d| now.signed_duration_since(d).to_std().unwrap_or_default());
    for c in &sorted {
        let mut why = Vec::new();
        match age(c) {
            None => why.push(Keep::NotADate),
            Some(age) => {
                if rules.older_than.is_some_and(|limit| age < limit) {
                    why.push(Keep::Younger);
                }
                // gpbackup uploads the config, then the report, then the
                // cleanup runs: a backup without a config, or with files
                // missing, may still be running. A failed one has ended.
                if matches!(c.status, Status::Unfinished | Status::Incomplete) && age < rules.grace {
                    why.push(Keep::Running);
                }
            }
        }
        if c.status == Status::Sealed {
            why.push(Keep::Sealed);
        }
        if c.lock.holds(now) {
            let until = match &c.lock {
                Lock::ObjectLock(s) if s.legal_holds > 0 => Until::Forever,
                Lock::Vault { until, .. } | Lock::ObjectLock(super::lock::ObjectLockSummary { until, .. }) => {
                    until.clone()
                }
                Lock::None => Until::Unknown,
            };
            why.push(Keep::Locked(until));
        }
        if !why.is_empty() {
            keep.entry(&c.timestamp).or_default().extend(why);
        }
    }
    // What kept backups need, newest first: an incremental's plan names
    // every backup it reads, so one pass covers the whole chain.
    let present: BTreeSet<&str> = sorted.iter().map(|c| c.timestamp.as_str()).collect();
    for c in &sorted {
        if keep.contains_key(c.timestamp.as_str()) {
            for need in c.needs.iter().filter(|n| present.contains(n.as_str())) {
                let reasons = keep.entry(need).or_default();
                if !reasons.iter().any(|r| matches!(r, Keep::NeededBy(_))) {
                    reasons.push(Keep::NeededBy(c.timestamp.clone()));
                }
            }
        }
    }
    sorted
        .iter()
        .map(|c| Planned {
            timestamp: c.timestamp.clone(),
            status: c.status,
            decision: match keep.remove(c.timestamp.as_str()) {
                Some(why) => Decision::Keep(why),
                None => Decision::Delete(match c.status {
                    Status::Complete => Expired::NotKept,
                    Status::Failed => Expired::Failed,
                    Status::Incomplete => Expired::Incomplete,
                    Status::Unfinished => Expired::Unfinished,
                    Status::Sealed => unreachable!("sealed backups are always kept"),
                }),
            },
            absent_needs: c.needs.iter().filter(|n| !present.contains(n.as_str())).cloned().collect(),
        })
        .collect()
}

/// Keeps a delete from removing what a backup whose delete failed still
/// needs: that backup is still (partly) there and its restore reads them.
#[derive(Debug, Default)]
pub struct Guard {
    /// Backup -> the backup whose failed delete still needs it.
    needed: BTreeMap<String, String>,
}

impl Guard {
    /// The backup that still needs `ts`, if any: skip its delete.
    pub fn blocked(&self, ts: &str) -> Option<&str> {
        self.needed.get(ts).map(String::as_str)
    }

    /// The delete of `ts` failed (or was skipped): protect what it needs.
    pub fn failed(&mut self, ts: &str, needs: &[String]) {
        for need in needs {
            self.needed.entry(need.clone()).or_insert_with(|| ts.to_string());
        }
    }
}
