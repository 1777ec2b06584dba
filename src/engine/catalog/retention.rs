//! Choosing what `expire` deletes, safely.
//!
//! The rules are applied per database (the config's `databasename`), and
//! only to backups that gprestore can restore ([`super::restorable`]),
//! that hold table data, and whose timestamp is a date no later than now
//! plus [`CLOCK_SKEW`]: `--keep-last N` keeps the N newest of them, and
//! `--keep-daily/weekly/monthly N` the newest of each of the last N days,
//! weeks and months that have one. `--older-than D` keeps every backup
//! dated within D. A database with no such backup has its restorable
//! metadata-only backups counted instead. Then, whatever the rules say, a
//! backup is kept when:
//! - it is the newest restorable backup of its database (the next `gpbackup
//!   --incremental` builds on it; a database is never expired to nothing);
//! - a kept backup's restore plan reads it (the full backup and the
//!   incrementals between, of every kept incremental);
//! - it is metadata-only and newer than the oldest kept data backup of its
//!   database (it never takes a data backup's place, and goes with the
//!   data backups of its time);
//! - a retention lock refuses its delete (reported, not attempted: a
//!   refusal halfway would leave half a backup);
//! - it is unfinished or incomplete and was last written (its newest
//!   object, or an open upload) less than the grace period ago: it may
//!   still be running (gpbackup uploads its config, then its report, then
//!   cleans up; a failed backup has ended);
//! - it is dated in the future, or its timestamp is not a date (its age is
//!   unknown);
//! - its config or TOC cannot be read or parsed, or it is encrypted and no
//!   private key here reads its config (nothing is known of it).
//!
//! Those last kinds are never deleted by rules: `delete_backup` deletes
//! them. Everything else is deleted: restorable backups the rules do not
//! keep, backups whose restore plan names a backup that is gone or not
//! complete, failed and incomplete backups, unfinished ones past the grace
//! period. Deletes go newest first, so an interrupted run never leaves an
//! incremental without the backups it needs ([`Guard`] also skips those a
//! failed delete still needs).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDateTime};

use super::files::timestamp_date;
use super::inspect::{Backup, Status};
use super::lock::{Lock, Until};
use super::restorable::Verdict;

/// How far past now a backup's timestamp may be before it counts as dated
/// in the future (clocks of hosts disagree a little).
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The rules of one `expire` run.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub keep_last: Option<usize>,
    pub older_than: Option<std::time::Duration>,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
    /// How long after its last write a backup that is not complete may
    /// still be running.
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
    /// The config's `databasename`; `None` without a readable config.
    pub database: Option<String>,
    /// gprestore can restore it ([`Verdict::restorable`]).
    pub restorable: bool,
    /// Its restore loads table data ([`Verdict::holds_data`]).
    pub holds_data: bool,
    /// When it was last written (local time): its newest object, or an
    /// open upload under it.
    pub last_activity: Option<NaiveDateTime>,
}

impl Candidate {
    pub fn of(b: &Backup, verdict: &Verdict, last_activity: Option<NaiveDateTime>) -> Candidate {
        Candidate {
            timestamp: b.timestamp().to_string(),
            date: timestamp_date(b.timestamp()),
            status: verdict.status,
            needs: b.depends_on(),
            lock: b.lock.clone(),
            database: b.config.as_ref().map(|c| c.database_name.clone()),
            restorable: verdict.restorable,
            holds_data: verdict.holds_data,
            last_activity,
        }
    }
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    /// The newest restorable backup of this database.
    Newest(String),
    Last,
    Daily,
    Weekly,
    Monthly,
    /// Younger than `--older-than`.
    Younger,
    /// Not complete, and last written (then) less than the grace period ago.
    Running(Option<NaiveDateTime>),
    Locked(Until),
    NotADate,
    /// Dated later than now plus [`CLOCK_SKEW`].
    Future,
    /// Its config or TOC cannot be read or parsed.
    Unreadable,
    /// Encrypted, and unreadable here: nothing is known of it.
    Sealed,
    /// Metadata-only, newer than this kept data backup, the oldest of its
    /// database.
    MetadataOnly {
        oldest: String,
    },
    /// A kept backup's restore plan reads it.
    NeededBy(String),
}

/// Why a backup is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Restorable, and no rule keeps it.
    NotKept,
    /// Metadata-only, older than every kept data backup of its database.
    OlderMetadata,
    /// Complete, but its restore plan names a backup that is not in the
    /// bucket or not complete.
    NotRestorable,
    Failed,
    Incomplete,
    /// No config, last written longer than the grace period ago.
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
    let future = |c: &Candidate| c.date.is_some_and(|d| d > now + CLOCK_SKEW);
    let countable = |c: &Candidate| c.restorable && c.date.is_some() && !future(c);
    let mut keep: BTreeMap<&str, Vec<Keep>> = BTreeMap::new();
    // The rules, per database, on its restorable data backups (or, when it
    // has none, its restorable metadata-only ones).
    let databases: BTreeSet<&str> = sorted.iter().filter_map(|c| c.database.as_deref()).collect();
    let mut data_series: BTreeSet<&str> = BTreeSet::new();
    for db in &databases {
        let of_db: Vec<&Candidate> =
            sorted.iter().copied().filter(|c| c.database.as_deref() == Some(*db) && countable(c)).collect();
        let data: Vec<&Candidate> = of_db.iter().copied().filter(|c| c.holds_data).collect();
        let series = if data.is_empty() { of_db } else { data };
        if series.first().is_some_and(|c| c.holds_data) {
            data_series.insert(db);
        }
        keep_by_rules(&series, rules, db, &mut keep);
    }
    let age = |at: NaiveDateTime| now.signed_duration_since(at).to_std().unwrap_or_default();
    for c in &sorted {
        let mut why = Vec::new();
        match c.date {
            None => why.push(Keep::NotADate),
            Some(_) if future(c) => why.push(Keep::Future),
            Some(date) => {
                if rules.older_than.is_some_and(|limit| age(date) < limit) {
                    why.push(Keep::Younger);
                }
                // gpbackup uploads the config, then the report, then the
                // cleanup runs: a backup without a config, or with files
                // missing, may still be running. A failed one has ended.
                let last = c.last_activity.map_or(date, |at| at.max(date));
                if matches!(c.status, Status::Unfinished | Status::Incomplete) && age(last) < rules.grace {
                    why.push(Keep::Running(c.last_activity));
                }
            }
        }
        match c.status {
            Status::Sealed => why.push(Keep::Sealed),
            Status::Unreadable => why.push(Keep::Unreadable),
            _ => {}
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
    // Metadata-only backups go with the data backups of their time.
    for db in &data_series {
        let of_db = |c: &&&Candidate| c.database.as_deref() == Some(*db);
        let Some(oldest) =
            sorted.iter().filter(of_db).rfind(|c| c.holds_data && keep.contains_key(c.timestamp.as_str()))
        else {
            continue;
        };
        let oldest = oldest.timestamp.clone();
        for c in sorted.iter().filter(of_db).filter(|c| c.restorable && !c.holds_data) {
            if c.timestamp > oldest && !keep.contains_key(c.timestamp.as_str()) {
                keep.entry(&c.timestamp).or_default().push(Keep::MetadataOnly { oldest: oldest.clone() });
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
                    Status::Complete if !c.restorable => Expired::NotRestorable,
                    Status::Complete
                        if !c.holds_data && c.database.as_deref().is_some_and(|d| data_series.contains(d)) =>
                    {
                        Expired::OlderMetadata
                    }
                    Status::Complete => Expired::NotKept,
                    Status::Failed => Expired::Failed,
                    Status::Incomplete => Expired::Incomplete,
                    Status::Unfinished => Expired::Unfinished,
                    Status::Sealed | Status::Unreadable => unreachable!("never deleted by rules"),
                }),
            },
            absent_needs: c.needs.iter().filter(|n| !present.contains(n.as_str())).cloned().collect(),
        })
        .collect()
}

/// `--keep-last` and the periods over one database's `series`, newest
/// first; its first is the newest restorable backup of `database`.
fn keep_by_rules<'a>(series: &[&'a Candidate], rules: &Rules, database: &str, keep: &mut BTreeMap<&'a str, Vec<Keep>>) {
    if let Some(newest) = series.first() {
        keep.entry(&newest.timestamp).or_default().push(Keep::Newest(database.to_string()));
    }
    for c in series.iter().take(rules.keep_last.unwrap_or(0)) {
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
        for c in series {
            let Some(date) = c.date else { continue };
            if seen.len() >= count {
                break;
            }
            if seen.insert(period(date)) {
                keep.entry(&c.timestamp).or_default().push(why.clone());
            }
        }
    }
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
