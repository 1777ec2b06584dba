//! Bringing archived objects back, for `thaw` and the restore setup: which
//! objects a backup's restore reads, where each stands, asking for the
//! restores that are missing (never twice), and following them until they
//! are readable. Nothing here names a backend: a store says whether an
//! object is readable and how to bring it back. The wording of reports is
//! the commands'.
//!
//! A backup's objects are those under its directory plus, for an
//! incremental backup, those of every earlier backup in its restore plan
//! (read from `gpbackup_<TS>_config.yaml`), since gprestore reads their data
//! files too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::config::{RestoreTier, Thaw};
use crate::error::{Error, Kind, Result};
use crate::layout;
use crate::store::{ObjectState, Readiness, RestoreRequested, Storage, Store, paging};

/// The most of a backup's `_config.yaml` read (table lists included, they
/// are far smaller).
const CONFIG_MAX_BYTES: usize = 4 << 20;
/// Status requests (HEAD) and restore requests in flight at once.
const CONCURRENCY: usize = 16;
/// Polling starts fast (Expedited restores take minutes, test servers
/// seconds) and slows down to this.
const MAX_POLL: Duration = Duration::from_secs(60);

/// The backup's prefix and those of the earlier backups in its restore plan
/// (incremental backups), as `(timestamp, prefix)`, the backup's own first.
pub async fn backup_prefixes(store: &dyn Store, folder: &str, timestamp: &str) -> Result<Vec<(String, String)>> {
    let own = layout::backup_prefix(folder, timestamp)?;
    let mut out = vec![(timestamp.to_string(), own.clone())];
    let config_key = format!("{own}gpbackup_{timestamp}_config.yaml");
    let text = match store.get_range(&config_key, 0..CONFIG_MAX_BYTES as u64).await {
        Ok(fetched) => String::from_utf8_lossy(&fetched.data).into_owned(),
        // No readable config (not a gpbackup backup, gone, or archived by
        // hand): the directory alone.
        Err(e) if e.is(Kind::NotFound) || e.is(Kind::Archived) => return Ok(out),
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
    if crate::config::yaml::guard(text, CONFIG_MAX_BYTES).is_err() {
        return Vec::new();
    }
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
    /// Of the archived, those whose last restore failed, with the reason.
    pub failed: Vec<(String, String)>,
    /// Object count per storage of the cold objects not readable as stored.
    pub storage: BTreeMap<Storage, u64>,
    /// The first moment a restored copy stops being readable.
    pub earliest_expiry: Option<DateTime<Utc>>,
}

impl Survey {
    /// Objects not readable yet.
    pub fn pending(&self) -> Vec<String> {
        self.restoring.iter().chain(&self.archived).cloned().collect()
    }

    /// After restores were requested for every archived object.
    pub fn archived_to_restoring(&mut self) {
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
            Readiness::Failed(why) => {
                self.failed.push((key.clone(), why.clone()));
                self.archived.push(key);
            }
        }
    }
}

/// Lists the prefixes and asks about every cold object.
pub async fn survey(store: &Arc<dyn Store>, prefixes: &[(String, String)]) -> Result<Survey> {
    let mut survey = Survey::default();
    let mut cold = Vec::new();
    for (_, prefix) in prefixes {
        let mut pages = std::pin::pin!(paging::objects(&**store, prefix));
        while let Some(page) = pages.try_next().await? {
            for object in page {
                survey.total += 1;
                if object.cold {
                    cold.push(object.key);
                } else {
                    survey.instant += 1;
                }
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
    let states: Vec<Option<(String, ObjectState)>> = futures::stream::iter(keys)
        .map(|key| async move {
            match store.object_state(&key).await {
                Ok(state) => Ok(Some((key, state))),
                Err(e) if e.is(Kind::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(states.into_iter().flatten().collect())
}

/// How a round of restore requests went.
#[derive(Debug, Default)]
pub struct Requested {
    pub started: u64,
    pub already_restoring: u64,
    pub already_readable: u64,
}

/// Asks for a restore of every key, [`CONCURRENCY`] at a time.
pub async fn request_all(store: &Arc<dyn Store>, keys: &[String], tier: RestoreTier, days: u32) -> Result<Requested> {
    let answers: Vec<RestoreRequested> = futures::stream::iter(keys)
        .map(|key| store.request_restore(key, tier, days))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut outcome = Requested::default();
    for answer in answers {
        match answer {
            RestoreRequested::Started => outcome.started += 1,
            RestoreRequested::AlreadyRestoring => outcome.already_restoring += 1,
            RestoreRequested::AlreadyReadable => outcome.already_readable += 1,
        }
    }
    log::info!(
        "Restore requests: {} started, {} already under way, {} readable already (tier {}, {days} days)",
        outcome.started,
        outcome.already_restoring,
        outcome.already_readable,
        tier.as_str()
    );
    Ok(outcome)
}

/// One round of [`wait`]: how many of the objects waited for are readable.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub ready: usize,
    pub total: usize,
    pub elapsed: Duration,
}

/// Polls the objects not readable yet until all are, or until `deadline`
/// (then kind `Archived`, saying how many are still not readable). With
/// `request`, objects found archived (a restore that failed or whose copy
/// expired meanwhile) are asked for again. `progress` hears of every round.
pub async fn wait(
    store: &Arc<dyn Store>,
    survey: &mut Survey,
    deadline: Option<Instant>,
    request: Option<Thaw>,
    progress: &mut dyn FnMut(Progress),
) -> Result<()> {
    let started = Instant::now();
    let total = survey.pending().len();
    let mut pending = survey.pending();
    let mut poll = Duration::from_secs(1);
    loop {
        let states = states(store, std::mem::take(&mut pending)).await?;
        let mut archived = Vec::new();
        survey.restoring.clear();
        survey.archived.clear();
        for (key, state) in states {
            match state.readiness {
                Readiness::Restoring => pending.push(key),
                Readiness::Archived | Readiness::Failed(_) => {
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
        progress(Progress { ready: total - pending.len(), total, elapsed: started.elapsed() });
        if pending.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        if let Some(deadline) = deadline {
            if now >= deadline {
                return Err(Error::archived(format!(
                    "{} of {total} restores still not readable after {}",
                    pending.len(),
                    human_duration(started.elapsed())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectClass;
    use crate::store::memory::MemoryStore;
    use bytes::Bytes;

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
        let deep = format!("restoreplan: {}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(restore_plan_timestamps(&deep).is_empty(), "deep nesting is refused before parsing");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_secs(12)), "12s");
        assert_eq!(human_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(human_duration(Duration::from_secs(3720)), "1h 02m");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn survey_request_and_wait_on_cold_payloads() {
        let memory = MemoryStore::new().cold_payloads().page_size(2);
        let store: Arc<dyn Store> = Arc::new(memory.clone());
        let prefix = layout::backup_prefix("f", "20240101010101").unwrap();
        for (name, class) in [("a", ObjectClass::Payload), ("b", ObjectClass::Payload), ("c", ObjectClass::Metadata)] {
            store.put(&format!("{prefix}{name}"), Bytes::from_static(b"x"), &Vec::new(), class).await.unwrap();
        }
        let prefixes = backup_prefixes(&*store, "f", "20240101010101").await.unwrap();
        let mut survey = survey(&store, &prefixes).await.unwrap();
        assert_eq!((survey.total, survey.instant, survey.archived.len()), (3, 1, 2));
        let requested = request_all(&store, &survey.archived.clone(), RestoreTier::Bulk, 1).await.unwrap();
        assert_eq!(requested.started, 2);
        let again = request_all(&store, &survey.archived.clone(), RestoreTier::Bulk, 1).await.unwrap();
        assert_eq!((again.started, again.already_readable), (0, 2), "never asked twice");
        survey.archived_to_restoring();
        let mut rounds = Vec::new();
        wait(&store, &mut survey, None, None, &mut |p| rounds.push(p.ready)).await.unwrap();
        assert_eq!(rounds, vec![2]);
        assert_eq!(survey.restored, 2);
    }
}
