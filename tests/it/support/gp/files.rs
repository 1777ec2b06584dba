//! gpbackup's own files as far as gprestore reads them back here (config,
//! TOC, segment TOCs), and its compression settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::database::TABLES;

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RestorePlanEntry {
    pub timestamp: String,
    pub tablefqns: Vec<String>,
}

/// `gpbackup_<TS>_config.yaml` (the fields gprestore uses here).
#[derive(Serialize, Deserialize, Debug)]
pub struct BackupConfig {
    pub backupdir: String,
    pub backupversion: String,
    pub compressed: bool,
    pub compressiontype: String,
    pub databasename: String,
    pub databaseversion: String,
    pub incremental: bool,
    pub plugin: String,
    pub pluginversion: String,
    pub restoreplan: Vec<RestorePlanEntry>,
    pub segmentcount: usize,
    pub singledatafile: bool,
    pub timestamp: String,
    /// `Success` at teardown (gpbackup 1.19 and later).
    #[serde(default)]
    pub status: String,
}

/// A data entry of the coordinator's `gpbackup_<TS>_toc.yaml`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct DataEntry {
    pub schema: String,
    pub name: String,
    pub oid: u32,
    pub attributestring: String,
    #[serde(rename = "rowsCopiedToSegments")]
    pub rows_copied_to_segments: u64,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct Toc {
    pub dataentries: Vec<DataEntry>,
}

impl DataEntry {
    pub fn fqn(&self) -> String {
        TABLES
            .iter()
            .map(|t| t.fqn)
            .find(|f| {
                let (schema, name) = f.split_once('.').unwrap();
                schema == self.schema && name.trim_matches('"') == self.name
            })
            .unwrap()
            .to_string()
    }
}

/// A segment's `gpbackup_<content>_<TS>_toc.yaml` (single-data-file mode):
/// each table's byte range in the uncompressed data stream.
#[derive(Deserialize, Debug)]
pub struct SegmentToc {
    pub dataentries: BTreeMap<u32, SegmentDataEntry>,
}

#[derive(Deserialize, Debug, Clone, Copy)]
pub struct SegmentDataEntry {
    pub startbyte: u64,
    pub endbyte: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn ext(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// gpbackup's pipe-through program in `COPY ... TO PROGRAM` (default
    /// compression level 1).
    pub fn compress(self) -> &'static str {
        match self {
            Compression::None => "cat -",
            Compression::Gzip => "gzip -c -1",
            Compression::Zstd => "zstd --compress -1 -c",
        }
    }

    /// gprestore's, after `restore_data` (none for uncompressed backups
    /// since gpbackup commit e6e706a; `cat -` before it).
    pub fn decompress(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip -d -c"),
            Compression::Zstd => Some("zstd --decompress -c"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    pub fn from_config(c: &BackupConfig) -> Compression {
        match (c.compressed, c.compressiontype.as_str()) {
            (false, _) => Compression::None,
            (true, "gzip") => Compression::Gzip,
            (true, "zstd") => Compression::Zstd,
            (true, other) => panic!("unknown compressiontype {other}"),
        }
    }
}
