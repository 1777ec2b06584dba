//! Finding backups in a listing: one walk over `<folder>/backups/`, a page
//! (1,000 keys) at a time, grouping keys by timestamp and naming each file
//! as gpbackup named it. What is kept per backup is a summary (counts,
//! which coordinator files exist, which table OIDs each segment has), so a
//! folder of thousands of backups costs one listing and little memory; the
//! full object list is kept only when one backup is looked at closely
//! (`verify`).

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;

use crate::error::Result;
use crate::layout;
use crate::store::{ObjectMeta, Store, paging};

/// Cold objects of a backup whose state is asked (spread over its keys).
pub const SAMPLE: usize = 8;

/// A file gpbackup writes once per backup, on the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CoordinatorFile {
    Config,
    Report,
    Metadata,
    Toc,
    PluginConfig,
    Statistics,
}

impl CoordinatorFile {
    const ALL: [(CoordinatorFile, &'static str); 6] = [
        (CoordinatorFile::Config, "config.yaml"),
        (CoordinatorFile::Report, "report"),
        (CoordinatorFile::Metadata, "metadata.sql"),
        (CoordinatorFile::Toc, "toc.yaml"),
        (CoordinatorFile::PluginConfig, "plugin_config.yaml"),
        (CoordinatorFile::Statistics, "statistics.sql"),
    ];

    /// `config.yaml`, `report`, ...: what follows `gpbackup_<TS>_`.
    pub fn suffix(self) -> &'static str {
        CoordinatorFile::ALL.iter().find(|(f, _)| *f == self).map(|(_, s)| *s).unwrap_or_default()
    }

    /// `gpbackup_<TS>_<suffix>`.
    pub fn name(self, ts: &str) -> String {
        format!("gpbackup_{ts}_{}", self.suffix())
    }
}

/// What a file of a backup directory is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Coordinator(CoordinatorFile),
    /// `gpbackup_<content>_<TS>_<oid><ext>` (one table, multi-data-file) or,
    /// without an OID, `gpbackup_<content>_<TS><ext>` (single data file).
    Data {
        content: i32,
        oid: Option<u32>,
        ext: &'static str,
    },
    /// `gpbackup_<content>_<TS>_toc.yaml`, a single-data-file segment TOC.
    SegmentToc {
        content: i32,
    },
    /// An integrity manifest or a vault catalog entry of the plugin's.
    Sidecar,
    Other,
}

/// Names a file of backup `ts` (the part of the key after its directory).
pub fn classify(ts: &str, name: &str) -> Name {
    if layout::is_sidecar(name) {
        return Name::Sidecar;
    }
    let Some(rest) = name.strip_prefix("gpbackup_") else { return Name::Other };
    if let Some(suffix) = rest.strip_prefix(ts).and_then(|r| r.strip_prefix('_')) {
        return match CoordinatorFile::ALL.iter().find(|(_, s)| *s == suffix) {
            Some((file, _)) => Name::Coordinator(*file),
            None => Name::Other,
        };
    }
    let Some((content, rest)) = rest.split_once('_') else { return Name::Other };
    let (Some(rest), Ok(content)) = (rest.strip_prefix(ts), digits::<i32>(content)) else { return Name::Other };
    if rest == "_toc.yaml" {
        return Name::SegmentToc { content };
    }
    let (stem, ext) = match (rest.strip_suffix(".gz"), rest.strip_suffix(".zst")) {
        (Some(stem), _) => (stem, ".gz"),
        (_, Some(stem)) => (stem, ".zst"),
        _ => (rest, ""),
    };
    match stem {
        "" => Name::Data { content, oid: None, ext },
        _ => match stem.strip_prefix('_').map(digits::<u32>) {
            Some(Ok(oid)) => Name::Data { content, oid: Some(oid), ext },
            _ => Name::Other,
        },
    }
}

fn digits<T: std::str::FromStr>(text: &str) -> std::result::Result<T, ()> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    text.parse().map_err(|_| ())
}

/// One backup as the listing shows it.
#[derive(Debug, Clone, Default)]
pub struct Found {
    pub timestamp: String,
    /// `<folder>/backups/<YYYYMMDD>/<TS>/`.
    pub prefix: String,
    /// Every object under the prefix, sidecars included.
    pub objects: u64,
    pub bytes: u64,
    pub coordinator: BTreeSet<CoordinatorFile>,
    /// Multi-data-file data: content -> table OIDs present.
    pub tables: BTreeMap<i32, BTreeSet<u32>>,
    /// Single data files, by content.
    pub single: BTreeSet<i32>,
    pub segment_tocs: BTreeSet<i32>,
    /// The data files' extensions seen (`.gz`, `.zst`, none).
    pub extensions: BTreeSet<&'static str>,
    /// Objects the listing shows in an archived storage class or a vault.
    pub cold: u64,
    /// Up to [`SAMPLE`] of the cold keys, spread evenly over them.
    pub cold_sample: Vec<String>,
    /// The newest LastModified of its objects: when it was last written.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
    cold_stride: u64,
    /// Every object, when kept ([`scan_backup`]).
    pub listing: Vec<ObjectMeta>,
}

impl Found {
    fn new(timestamp: &str, prefix: String) -> Found {
        Found { timestamp: timestamp.to_string(), prefix, cold_stride: 1, ..Found::default() }
    }

    fn add(&mut self, object: &ObjectMeta, name: &str) {
        self.objects += 1;
        self.bytes += object.size;
        self.last_modified = self.last_modified.max(object.last_modified);
        if object.cold {
            // Systematic sampling: every stride-th cold key; when the
            // sample overflows, every other one goes and the stride doubles.
            if self.cold.is_multiple_of(self.cold_stride) {
                self.cold_sample.push(object.key.clone());
                if self.cold_sample.len() > SAMPLE {
                    let mut i = 0;
                    self.cold_sample.retain(|_| {
                        i += 1;
                        i % 2 == 1
                    });
                    self.cold_stride *= 2;
                }
            }
            self.cold += 1;
        }
        match classify(&self.timestamp, name) {
            Name::Coordinator(file) => {
                self.coordinator.insert(file);
            }
            Name::Data { content, oid: Some(oid), ext } => {
                self.tables.entry(content).or_default().insert(oid);
                self.extensions.insert(ext);
            }
            Name::Data { content, oid: None, ext } => {
                self.single.insert(content);
                self.extensions.insert(ext);
            }
            Name::SegmentToc { content } => {
                self.segment_tocs.insert(content);
            }
            Name::Sidecar | Name::Other => {}
        }
    }

    /// The key of a file of this backup.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn has(&self, file: CoordinatorFile) -> bool {
        self.coordinator.contains(&file)
    }
}

/// Every backup under `<folder>/backups/`, oldest first, and the number of
/// keys there that belong to none (not in a `<YYYYMMDD>/<TS>/` directory).
pub async fn scan(store: &dyn Store, folder: &str) -> Result<(Vec<Found>, u64)> {
    let root = format!("{}backups/", layout::folder_prefix(folder));
    let mut found: BTreeMap<String, Found> = BTreeMap::new();
    let mut stray = 0u64;
    let mut pages = std::pin::pin!(paging::objects(store, &root));
    while let Some(page) = pages.try_next().await? {
        for object in page {
            match split_key(&object.key[root.len()..]) {
                Some((ts, name)) => {
                    let prefix = format!("{root}{}/{ts}/", &ts[..8]);
                    found.entry(ts.to_string()).or_insert_with(|| Found::new(ts, prefix)).add(&object, name);
                }
                None => stray += 1,
            }
        }
    }
    Ok((found.into_values().collect(), stray))
}

/// One backup, its objects kept; `objects == 0` when there is none.
pub async fn scan_backup(store: &dyn Store, folder: &str, ts: &str) -> Result<Found> {
    let prefix = layout::backup_prefix(folder, ts)?;
    let mut found = Found::new(ts, prefix.clone());
    let mut pages = std::pin::pin!(paging::objects(store, &prefix));
    while let Some(page) = pages.try_next().await? {
        for object in page {
            let name = object.key[prefix.len()..].to_string();
            found.add(&object, &name);
            found.listing.push(object);
        }
    }
    Ok(found)
}

/// `<YYYYMMDD>/<TS>/<name>` -> (TS, name), for a TS of that day.
fn split_key(rest: &str) -> Option<(&str, &str)> {
    let (day, rest) = rest.split_once('/')?;
    let (ts, name) = rest.split_once('/')?;
    (layout::validate_timestamp(ts).is_ok() && ts[..8] == *day && !name.is_empty()).then_some((ts, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ObjectClass;
    use crate::store::memory::MemoryStore;
    use bytes::Bytes;

    const TS: &str = "20240315123045";

    #[test]
    fn names_as_gpbackup_makes_them() {
        let c = |n: &str| classify(TS, n);
        assert_eq!(c("gpbackup_20240315123045_config.yaml"), Name::Coordinator(CoordinatorFile::Config));
        assert_eq!(c("gpbackup_20240315123045_report"), Name::Coordinator(CoordinatorFile::Report));
        assert_eq!(c("gpbackup_20240315123045_statistics.sql"), Name::Coordinator(CoordinatorFile::Statistics));
        assert_eq!(c("gpbackup_3_20240315123045_16384.gz"), Name::Data { content: 3, oid: Some(16384), ext: ".gz" });
        assert_eq!(c("gpbackup_0_20240315123045_16384"), Name::Data { content: 0, oid: Some(16384), ext: "" });
        assert_eq!(c("gpbackup_12_20240315123045.zst"), Name::Data { content: 12, oid: None, ext: ".zst" });
        assert_eq!(c("gpbackup_1_20240315123045_toc.yaml"), Name::SegmentToc { content: 1 });
        assert_eq!(c("gpbackup_1_20240315123045_16384.gz.0123456789abcdef.gpbackup_manifest"), Name::Sidecar);
        for other in [
            "gpbackup_20240315123045_other",
            "gpbackup_x_20240315123045_1",
            "gpbackup_1_20240101010101_1",
            "gpbackup_1_20240315123045_12a",
            "gpbackup_1_20240315123045_1.lz4",
            ".gpbackup_s3_plugin_probe_1",
            "readme",
        ] {
            assert_eq!(c(other), Name::Other, "{other}");
        }
        assert_eq!(CoordinatorFile::PluginConfig.name(TS), "gpbackup_20240315123045_plugin_config.yaml");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn one_listing_groups_every_backup() {
        let store = MemoryStore::new().page_size(3).cold_payloads();
        let put = |key: String, class| {
            let store = store.clone();
            async move { store.put(&key, Bytes::from_static(b"abc"), &Vec::new(), class).await.unwrap() }
        };
        for ts in ["20240101010101", "20240102010101"] {
            let dir = format!("f/backups/{}/{ts}/", &ts[..8]);
            put(format!("{dir}gpbackup_{ts}_config.yaml"), ObjectClass::Metadata).await;
            for content in 0..2 {
                for oid in [16384, 16385] {
                    put(format!("{dir}gpbackup_{content}_{ts}_{oid}.gz"), ObjectClass::Payload).await;
                }
            }
        }
        put("f/backups/20240101/20240102010101/misplaced".to_string(), ObjectClass::Metadata).await;
        put("f/backups/loose".to_string(), ObjectClass::Metadata).await;
        put("g/backups/20240101/20240101010101/other-folder".to_string(), ObjectClass::Metadata).await;
        let (found, stray) = scan(&store, "f").await.unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(stray, 2);
        let first = &found[0];
        assert_eq!((first.timestamp.as_str(), first.objects, first.bytes, first.cold), ("20240101010101", 5, 15, 4));
        assert!(first.has(CoordinatorFile::Config) && !first.has(CoordinatorFile::Report));
        assert_eq!(first.tables[&1], BTreeSet::from([16384, 16385]));
        assert_eq!(first.extensions, BTreeSet::from([".gz"]));
        assert!(first.listing.is_empty(), "a folder scan keeps no object list");
        let one = scan_backup(&store, "f", "20240102010101").await.unwrap();
        assert_eq!((one.objects, one.listing.len()), (5, 5));
    }

    #[test]
    fn cold_samples_spread_over_the_keys() {
        let mut found = Found::new(TS, String::new());
        for i in 0..1000 {
            found.add(&ObjectMeta { key: format!("k{i:04}"), size: 1, cold: true, last_modified: None }, "x");
        }
        assert!(found.cold_sample.len() <= SAMPLE && found.cold_sample.len() >= SAMPLE / 2, "{:?}", found.cold_sample);
        assert_eq!(found.cold_sample[0], "k0000");
        assert!(found.cold_sample.last().unwrap().as_str() > "k0500", "{:?}", found.cold_sample);
    }
}
