//! The one judgement of whether gprestore can restore a backup, which
//! `backups`, `verify`, `expire` and `history export` share. It follows
//! what gprestore reads (gpbackup `af19cd8b`, `restore/wrappers.go`
//! `RecoverMetadataFilesUsingPlugin`, `restore/restore.go`, `restore/data.go`):
//!
//! - with `restore_file`: the config, the metadata and the report (it stops
//!   when one is missing), the statistics only with `--with-stats`; then,
//!   for itself and every backup its restore plan names, the coordinator
//!   TOC and, with `--single-data-file`, each segment's TOC;
//! - the data: for each backup of the restore plan, the TOC's data entries
//!   of the plan's tables, a file per table per segment (or, with
//!   `--single-data-file`, each segment's one data file), on each of the
//!   config's `segmentcount` segments;
//! - not the `plugin_config.yaml` copy: only `gpbackup --incremental` reads
//!   it, of the backup it builds on.
//!
//! So a backup is complete when its config, report, metadata and TOC are
//! there, gpbackup recorded `Success` (before gpbackup 1.19, which recorded
//! none, the report's status), and every segment has its data files; and
//! restorable when, besides, every backup its restore plan names is in the
//! bucket and complete. A missing plugin config copy or statistics file is
//! a [`Note`], not a missing file. A config or TOC that is there but cannot
//! be read or parsed makes the backup [`Status::Unreadable`]: nothing is
//! known of it, and nothing may take it for incomplete.

use std::collections::{BTreeMap, BTreeSet};

use super::files::{BackupConfig, TocEntry};
use super::inspect::{Backup, Missing, Problem, Status, What};
use super::scan::{CoordinatorFile, Found};

/// A file gpbackup writes that a restore does without, and that is not
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// No `plugin_config.yaml` copy: `gpbackup --incremental` cannot build on it.
    NoPluginConfig,
    /// No `statistics.sql` of a `--with-stats` backup: `gprestore --with-stats` fails.
    NoStatistics,
}

/// A backup's own state, from what inspecting it found.
pub fn status(b: &Backup) -> Status {
    let unreadable = |file: CoordinatorFile| {
        b.problems.iter().any(|p| matches!(p, Problem::Unreadable { file: f, .. } if *f == file))
    };
    if !b.found.has(CoordinatorFile::Config) {
        Status::Unfinished
    } else if b.problems.iter().any(|p| matches!(p, Problem::Sealed { .. })) {
        Status::Sealed
    } else if b.config.is_none() || unreadable(CoordinatorFile::Config) {
        // Listed but unreadable (or gone since the listing).
        Status::Unreadable
    } else if b.problems.iter().any(|p| matches!(p, Problem::Status(_))) {
        Status::Failed
    } else if unreadable(CoordinatorFile::Toc) {
        Status::Unreadable
    } else if b.missing.is_empty() {
        Status::Complete
    } else {
        Status::Incomplete
    }
}

/// What gprestore could do with a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    /// Complete, and so is every backup its restore plan names.
    pub restorable: bool,
    /// Its restore loads table data: its TOC has data entries, or a backup
    /// of its restore plan holds data (an incremental without changes).
    pub holds_data: bool,
    /// Backups of its restore plan that are not among those judged, or not
    /// complete.
    pub gaps: Vec<(String, Option<Status>)>,
}

/// Judges each of `backups`, which hold (when they are in the bucket) the
/// backups their restore plans name: a folder's catalog, or one backup's
/// restore set.
pub fn judge(backups: &[Backup]) -> BTreeMap<String, Verdict> {
    let by_ts: BTreeMap<&str, &Backup> = backups.iter().map(|b| (b.timestamp(), b)).collect();
    let own_data = |b: &Backup| {
        b.config.as_ref().is_some_and(|c| !c.metadata_only) && b.toc.as_ref().is_some_and(|t| !t.is_empty())
    };
    backups
        .iter()
        .map(|b| {
            let needs = b.depends_on();
            let gaps: Vec<(String, Option<Status>)> = needs
                .iter()
                .filter_map(|ts| match by_ts.get(ts.as_str()).map(|d| d.status()) {
                    Some(Status::Complete) => None,
                    other => Some((ts.clone(), other)),
                })
                .collect();
            let status = b.status();
            let holds_data = own_data(b)
                || (b.config.as_ref().is_some_and(|c| !c.metadata_only)
                    && needs.iter().any(|ts| by_ts.get(ts.as_str()).is_some_and(|d| own_data(d))));
            let verdict =
                Verdict { status, restorable: status == Status::Complete && gaps.is_empty(), holds_data, gaps };
            (b.timestamp().to_string(), verdict)
        })
        .collect()
}

/// The files gprestore reads that the listing does not show, and the
/// files gpbackup writes that a restore does without and are not there
/// (see the module doc).
pub fn completeness(found: &Found, config: &BackupConfig, toc: Option<&[TocEntry]>) -> (Vec<Missing>, Vec<Note>) {
    let ts = &found.timestamp;
    let mut missing = Vec::new();
    let mut notes = Vec::new();
    for file in [CoordinatorFile::Config, CoordinatorFile::Report, CoordinatorFile::Metadata, CoordinatorFile::Toc] {
        if !found.has(file) {
            missing.push(Missing { name: file.name(ts), what: What::Coordinator(file) });
        }
    }
    if config.with_statistics && !found.has(CoordinatorFile::Statistics) {
        notes.push(Note::NoStatistics);
    }
    if !config.plugin.is_empty() && !found.has(CoordinatorFile::PluginConfig) {
        notes.push(Note::NoPluginConfig);
    }
    if config.metadata_only {
        return (missing, notes);
    }
    let ext = config.data_extension();
    // Segments: as recorded, else (gpbackup before 1.26) as many as the
    // listing shows.
    let segments: Vec<i32> = match config.segment_count {
        Some(n) => (0..n as i32).collect(),
        None => found
            .tables
            .keys()
            .chain(&found.single)
            .chain(&found.segment_tocs)
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    if config.single_data_file {
        // No data at all (an incremental with no changes) means no files.
        let has_data = toc.map_or(!found.single.is_empty(), |entries| !entries.is_empty());
        if has_data {
            for &content in &segments {
                if !found.single.contains(&content) {
                    missing.push(Missing {
                        name: format!("gpbackup_{content}_{ts}{ext}"),
                        what: What::SegmentData { content },
                    });
                }
                if !found.segment_tocs.contains(&content) {
                    missing.push(Missing {
                        name: format!("gpbackup_{content}_{ts}_toc.yaml"),
                        what: What::SegmentToc { content },
                    });
                }
            }
        }
        return (missing, notes);
    }
    // Multi-data-file: every table of the TOC on every segment; without a
    // readable TOC, every table any segment has.
    let tables: Vec<(u32, String)> = match toc {
        Some(entries) => entries.iter().map(|e| (e.oid, e.fqn())).collect(),
        None => found
            .tables
            .values()
            .flatten()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|oid| (oid, format!("OID {oid}")))
            .collect(),
    };
    let none = BTreeSet::new();
    for &content in &segments {
        let present = found.tables.get(&content).unwrap_or(&none);
        for (oid, table) in &tables {
            if !present.contains(oid) {
                missing.push(Missing {
                    name: format!("gpbackup_{content}_{ts}_{oid}{ext}"),
                    what: What::Table { content, table: table.clone() },
                });
            }
        }
    }
    (missing, notes)
}
