//! What a backup is, from its listing and at most three small reads: its
//! config (`gpbackup_<TS>_config.yaml`), its coordinator TOC (for the data
//! files every segment must have) and, when asked, its report (the real end
//! time); plus the state of a few of its cold objects. Whether gprestore
//! can restore it is judged in [`super::restorable`] from what is read here.
//!
//! An encrypted backup's coordinator files are age files: they are read
//! with the config's identity. Without one (a host with the public keys
//! only) the backup is [`Status::Sealed`]: nothing can be said of its
//! completeness, so nothing may take it for incomplete.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use super::files::{self, BackupConfig, Report, TocEntry};
use super::lock::Lock;
use super::scan::{CoordinatorFile, Found};
use crate::engine::transform::{AGE_MAGIC, Transform};
use crate::error::{Error, Kind, Result};
use crate::store::{Readiness, Storage, Store};

/// Backups inspected at once.
const CONCURRENCY: usize = 16;

/// A file the backup should have and has not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub name: String,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Coordinator(CoordinatorFile),
    /// A table's data file of one segment (multi-data-file).
    Table {
        content: i32,
        table: String,
    },
    /// A segment's single data file.
    SegmentData {
        content: i32,
    },
    SegmentToc {
        content: i32,
    },
}

/// Why a backup is not complete, besides missing files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The recorded status is not `Success`.
    Status(String),
    /// A file is there but cannot be read as gpbackup writes it.
    Unreadable { file: CoordinatorFile, why: String },
    /// A file is encrypted and no private key here opens it.
    Sealed { file: CoordinatorFile, why: String },
}

/// A backup's own state (its restore plan aside: see
/// [`super::restorable::judge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Every file gprestore reads is there, and gpbackup recorded success.
    Complete,
    /// Finished, with a recorded status other than `Success`.
    Failed,
    /// Finished (its config is there), but a file gprestore reads is missing.
    Incomplete,
    /// Its config or TOC is there but cannot be read or parsed: nothing is
    /// known of its completeness.
    Unreadable,
    /// No config: still running, or killed.
    Unfinished,
    /// Encrypted, and its config cannot be read here (no private key).
    Sealed,
}

/// Where a backup's objects stand, from a sample of its cold objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageState {
    /// Everything readable at once.
    Hot,
    Archived,
    /// Restores under way.
    Thawing,
    /// Restored copies readable, until the earliest expiry when known.
    Thawed {
        until: Option<DateTime<Utc>>,
    },
    /// Some restored, some still archived with no restore.
    PartlyThawed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSummary {
    pub state: StorageState,
    /// Objects in an archived class or a vault, and how many were asked.
    pub cold: u64,
    pub sampled: u64,
    pub classes: BTreeSet<Storage>,
}

/// A backup as the catalog describes it.
#[derive(Debug, Clone)]
pub struct Backup {
    pub found: Found,
    pub config: Option<BackupConfig>,
    pub report: Option<Report>,
    /// The coordinator TOC's data entries, when read.
    pub toc: Option<Vec<TocEntry>>,
    /// Files gprestore reads that the listing does not show.
    pub missing: Vec<Missing>,
    /// Files gpbackup writes that a restore does without, and are not there.
    pub notes: Vec<super::restorable::Note>,
    pub problems: Vec<Problem>,
    pub storage: StorageSummary,
    pub lock: Lock,
    /// Its coordinator files are encrypted (age).
    pub encrypted: bool,
}

impl Backup {
    pub fn timestamp(&self) -> &str {
        &self.found.timestamp
    }

    pub fn status(&self) -> Status {
        super::restorable::status(self)
    }

    /// The earlier backups this one's restore reads (incremental backups).
    pub fn depends_on(&self) -> Vec<String> {
        self.config.as_ref().map(BackupConfig::depends_on).unwrap_or_default()
    }

    /// `gzip`, `zstd`, `none`, from the config or else the data files.
    pub fn compression(&self) -> Option<String> {
        if let Some(config) = &self.config {
            return Some(config.compression().to_string());
        }
        let ext = self.found.extensions.iter().next()?;
        Some(
            match *ext {
                ".gz" => "gzip",
                ".zst" => "zstd",
                _ => "none",
            }
            .to_string(),
        )
    }
}

/// What to read besides the config and the TOC, and the keys that open
/// encrypted ones.
#[derive(Clone, Copy)]
pub struct Reads<'a> {
    pub report: bool,
    /// The config's transform: decrypts encrypted coordinator files.
    pub keys: &'a dyn Transform,
}

impl Default for Reads<'static> {
    fn default() -> Self {
        Reads { report: false, keys: &crate::engine::transform::Identity }
    }
}

/// Inspects every backup, [`CONCURRENCY`] at a time, keeping their order.
pub async fn inspect_all(store: &Arc<dyn Store>, found: Vec<Found>, reads: Reads<'_>) -> Result<Vec<Backup>> {
    futures::stream::iter(found).map(|f| inspect(store, f, reads)).buffered(CONCURRENCY).try_collect().await
}

/// Reads what a backup's description needs and checks its completeness.
pub async fn inspect(store: &Arc<dyn Store>, found: Found, reads: Reads<'_>) -> Result<Backup> {
    let ts = found.timestamp.clone();
    let keys = reads.keys;
    let mut problems = Vec::new();
    let mut encrypted = false;
    let mut text_of =
        async |file: CoordinatorFile, max: usize, problems: &mut Vec<Problem>| -> Result<Option<String>> {
            Ok(match read(store, &found, file, max, keys).await? {
                Text::Absent => None,
                Text::Read { text, sealed } => {
                    encrypted |= sealed;
                    Some(text)
                }
                Text::Unreadable { why, sealed } => {
                    encrypted |= sealed;
                    problems.push(Problem::Unreadable { file, why });
                    None
                }
                Text::Sealed(why) => {
                    encrypted = true;
                    problems.push(Problem::Sealed { file, why });
                    None
                }
            })
        };
    let config = match text_of(CoordinatorFile::Config, files::CONFIG_MAX_BYTES, &mut problems).await? {
        Some(text) => match BackupConfig::parse(&text) {
            Ok(config) => Some(config),
            Err(why) => {
                problems.push(Problem::Unreadable { file: CoordinatorFile::Config, why });
                None
            }
        },
        None => None,
    };
    let toc = match &config {
        Some(c) if !c.metadata_only => {
            match text_of(CoordinatorFile::Toc, files::TOC_MAX_BYTES, &mut problems).await? {
                Some(text) => match files::toc_data_entries(&text) {
                    Ok(entries) => Some(entries),
                    Err(why) => {
                        problems.push(Problem::Unreadable { file: CoordinatorFile::Toc, why });
                        None
                    }
                },
                None => None,
            }
        }
        _ => None,
    };
    let report = match reads.report {
        // An unreadable report is no problem of the backup's: it only
        // dates its end.
        true => {
            text_of(CoordinatorFile::Report, files::REPORT_MAX_BYTES, &mut Vec::new()).await?.map(|t| Report::parse(&t))
        }
        false => None,
    };
    if let Some(c) = &config
        && c.status != "Success"
        // Before gpbackup 1.19 the status was not recorded; the report's
        // presence says the run finished.
        && !(c.status.is_empty() && report.as_ref().is_none_or(|r| r.status == "Success"))
    {
        problems.push(Problem::Status(if c.status.is_empty() { "none".to_string() } else { c.status.clone() }));
    }
    let (missing, notes) = match &config {
        Some(c) => super::restorable::completeness(&found, c, toc.as_deref()),
        None => (Vec::new(), Vec::new()),
    };
    let storage = storage(store, &found).await?;
    log::debug!("catalog: backup {ts}: {} objects, {} missing", found.objects, missing.len());
    Ok(Backup { found, config, report, toc, missing, notes, problems, storage, lock: Lock::None, encrypted })
}

/// What reading a coordinator file gave.
enum Text {
    /// The listing has no such file (or it was deleted since).
    Absent,
    /// Its text; `sealed`: it was stored encrypted.
    Read {
        text: String,
        sealed: bool,
    },
    Unreadable {
        why: String,
        sealed: bool,
    },
    /// Encrypted, and no private key here opens it.
    Sealed(String),
}

/// Reads a coordinator file of at most `max` bytes of text, decrypting it
/// with `keys` when it is an age file.
async fn read(
    store: &Arc<dyn Store>,
    found: &Found,
    file: CoordinatorFile,
    max: usize,
    keys: &dyn Transform,
) -> Result<Text> {
    if !found.has(file) {
        return Ok(Text::Absent);
    }
    let key = found.key(&file.name(&found.timestamp));
    // Room for an age file of `max` bytes of text: its header, and a tag
    // per 64 KiB chunk.
    let stored_max = max + (max >> 16) * 16 + 64 * 1024;
    let fetched = match store.get_range(&key, 0..stored_max as u64 + 1).await {
        Ok(fetched) => fetched,
        // Deleted since the listing.
        Err(e) if e.is(Kind::NotFound) => return Ok(Text::Absent),
        Err(e) if e.is(Kind::Archived) => {
            return Ok(Text::Unreadable { why: "archived: not readable without a restore".into(), sealed: false });
        }
        Err(e) => return Err(e),
    };
    let sealed = fetched.data.starts_with(AGE_MAGIC);
    let too_big = |size: u64| Text::Unreadable { why: format!("{size} bytes, more than the {max} read"), sealed };
    if fetched.total_size > stored_max as u64 || (!sealed && fetched.total_size > max as u64) {
        return Ok(too_big(fetched.total_size));
    }
    let bytes = match sealed {
        false => fetched.data.to_vec(),
        true => match decrypt(keys, fetched.data) {
            Ok(plain) if plain.len() > max => return Ok(too_big(plain.len() as u64)),
            Ok(plain) => plain,
            // No key, or keys that do not open it.
            Err(e) if e.is(Kind::Config) => return Ok(Text::Sealed(e.to_string())),
            Err(e) => return Ok(Text::Unreadable { why: e.to_string(), sealed }),
        },
    };
    Ok(match String::from_utf8(bytes) {
        Ok(text) => Text::Read { text, sealed },
        Err(_) => Text::Unreadable { why: "not text".to_string(), sealed },
    })
}

/// An age file's plaintext, decrypted with the config's identity.
fn decrypt(keys: &dyn Transform, data: bytes::Bytes) -> Result<Vec<u8>> {
    let out = Collected::default();
    let mut decoder = keys.decode(Box::new(out.clone()))?;
    decoder.write(data).and_then(|()| decoder.finish()).map_err(|e| match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(error) => *error,
            Err(other) => Error::local(format!("decrypting: {other}")),
        },
        None => Error::local("decrypting"),
    })?;
    Ok(std::mem::take(&mut *out.0.lock().expect("not poisoned")))
}

/// A writer whose bytes are kept, shared with its reader.
#[derive(Clone, Default)]
struct Collected(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Collected {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The state of the backup's cold objects, from its sample.
async fn storage(store: &Arc<dyn Store>, found: &Found) -> Result<StorageSummary> {
    let mut summary =
        StorageSummary { state: StorageState::Hot, cold: found.cold, sampled: 0, classes: BTreeSet::new() };
    let states: Vec<Option<crate::store::ObjectState>> = futures::stream::iter(&found.cold_sample)
        .map(|key| async move {
            match store.object_state(key).await {
                Ok(state) => Ok(Some(state)),
                Err(e) if e.is(Kind::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let (mut archived, mut restoring, mut restored) = (0, 0, 0);
    let mut until: Option<DateTime<Utc>> = None;
    let mut known_until = true;
    for state in states.into_iter().flatten() {
        summary.sampled += 1;
        match state.readiness {
            Readiness::Ready => continue,
            // A failed retrieval leaves the object archived: thaw again.
            Readiness::Archived | Readiness::Failed(_) => archived += 1,
            Readiness::Restoring => restoring += 1,
            Readiness::Restored { until: u } => {
                restored += 1;
                match u {
                    Some(u) => until = Some(until.map_or(u, |t| t.min(u))),
                    None => known_until = false,
                }
            }
        }
        summary.classes.insert(state.storage);
    }
    summary.state = match (archived, restoring, restored) {
        (_, r, _) if r > 0 => StorageState::Thawing,
        (a, _, t) if a > 0 && t > 0 => StorageState::PartlyThawed,
        (a, _, _) if a > 0 => StorageState::Archived,
        (_, _, t) if t > 0 => StorageState::Thawed { until: until.filter(|_| known_until) },
        _ => StorageState::Hot,
    };
    Ok(summary)
}
