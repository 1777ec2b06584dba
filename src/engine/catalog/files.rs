//! gpbackup's own files, as far as the catalog reads them: the
//! `gpbackup_<TS>_config.yaml` (gpbackup's `history.BackupConfig`, the same
//! fields as a row of its history database), the report's status and end
//! time, and the coordinator TOC's data entries.
//!
//! The YAML comes from the bucket, so it is read as untrusted: bounded in
//! size and nesting before parsing ([`crate::config::yaml::guard`]), every
//! field optional (older gpbackup versions lack some), scalars taken in any
//! YAML type (yaml.v2 quotes numeric strings, a hand-written file may not),
//! and errors that name a position, never a value.

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_yaml::Value;

use crate::config::yaml;

/// The most of a config read: restore plans list every table, so a
/// database of 100,000 tables takes a few MiB.
pub const CONFIG_MAX_BYTES: usize = 64 << 20;
/// The most of a report read (a few KiB in practice).
pub const REPORT_MAX_BYTES: usize = 1 << 20;
/// The most of a coordinator TOC read: it lists every object of the
/// database; beyond this the data files are checked by the listing alone.
pub const TOC_MAX_BYTES: usize = 256 << 20;

/// One entry of a restore plan: a backup whose data files hold these
/// tables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanEntry {
    pub timestamp: String,
    pub table_fqns: Vec<String>,
}

/// `gpbackup_<TS>_config.yaml`, field for field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupConfig {
    pub backup_dir: String,
    pub backup_version: String,
    pub compressed: bool,
    pub compression_type: String,
    pub database_name: String,
    pub database_version: String,
    /// Since gpbackup 1.26.
    pub segment_count: Option<u32>,
    pub data_only: bool,
    pub date_deleted: String,
    pub exclude_relations: Vec<String>,
    pub exclude_schema_filtered: bool,
    pub exclude_schemas: Vec<String>,
    pub exclude_table_filtered: bool,
    pub include_relations: Vec<String>,
    pub include_schema_filtered: bool,
    pub include_schemas: Vec<String>,
    pub include_table_filtered: bool,
    pub incremental: bool,
    pub leaf_partition_data: bool,
    pub metadata_only: bool,
    pub plugin: String,
    pub plugin_version: String,
    pub restore_plan: Vec<PlanEntry>,
    pub single_data_file: bool,
    pub timestamp: String,
    /// Preliminary since gpbackup 1.29 (the report has the real one).
    pub end_time: String,
    pub without_globals: bool,
    pub with_statistics: bool,
    /// `Success`, `Failure` or `In Progress`; empty before gpbackup 1.19.
    pub status: String,
}

impl BackupConfig {
    pub fn parse(text: &str) -> Result<BackupConfig, String> {
        yaml::guard(text, CONFIG_MAX_BYTES)?;
        let value: Value = serde_yaml::from_str(text).map_err(|e| yaml::describe(&e))?;
        if !value.is_mapping() {
            return Err("not a mapping of gpbackup's fields".to_string());
        }
        let string = |k: &str| scalar(value.get(k)).unwrap_or_default();
        let flag = |k: &str| matches!(value.get(k), Some(Value::Bool(true)));
        let list = |k: &str| strings(value.get(k));
        let restore_plan = match value.get("restoreplan") {
            Some(Value::Sequence(entries)) => entries
                .iter()
                .filter_map(|e| {
                    Some(PlanEntry { timestamp: scalar(e.get("timestamp"))?, table_fqns: strings(e.get("tablefqns")) })
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(BackupConfig {
            backup_dir: string("backupdir"),
            backup_version: string("backupversion"),
            compressed: flag("compressed"),
            compression_type: string("compressiontype"),
            database_name: string("databasename"),
            database_version: string("databaseversion"),
            segment_count: scalar(value.get("segmentcount")).and_then(|n| n.parse().ok()),
            data_only: flag("dataonly"),
            date_deleted: string("datedeleted"),
            exclude_relations: list("excluderelations"),
            exclude_schema_filtered: flag("excludeschemafiltered"),
            exclude_schemas: list("excludeschemas"),
            exclude_table_filtered: flag("excludetablefiltered"),
            include_relations: list("includerelations"),
            include_schema_filtered: flag("includeschemafiltered"),
            include_schemas: list("includeschemas"),
            include_table_filtered: flag("includetablefiltered"),
            incremental: flag("incremental"),
            leaf_partition_data: flag("leafpartitiondata"),
            metadata_only: flag("metadataonly"),
            plugin: string("plugin"),
            plugin_version: string("pluginversion"),
            restore_plan,
            single_data_file: flag("singledatafile"),
            timestamp: string("timestamp"),
            end_time: string("endtime"),
            without_globals: flag("withoutglobals"),
            with_statistics: flag("withstatistics"),
            status: string("status"),
        })
    }

    /// `gzip`, `zstd` or `none`, as gpbackup decides the data files'
    /// extension (an empty type is gzip, from before `--compression-type`).
    pub fn compression(&self) -> &str {
        match (self.compressed, self.compression_type.as_str()) {
            (false, _) => "none",
            (true, "") => "gzip",
            (true, other) => other,
        }
    }

    /// The data files' extension: `.gz`, `.zst` or none.
    pub fn data_extension(&self) -> &'static str {
        match self.compression() {
            "none" => "",
            "zstd" => ".zst",
            _ => ".gz",
        }
    }

    /// The earlier backups whose data this one's restore reads (its restore
    /// plan without itself), oldest first: the full backup, then the
    /// incrementals between.
    pub fn depends_on(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for entry in &self.restore_plan {
            if entry.timestamp != self.timestamp && !out.contains(&entry.timestamp) {
                out.push(entry.timestamp.clone());
            }
        }
        out
    }
}

/// A YAML scalar as text, whatever its YAML type.
fn scalar(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(|v| scalar(Some(v))).collect(),
        _ => Vec::new(),
    }
}

/// What the catalog reads of `gpbackup_<TS>_report`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// `backup status:` (`Success` or `Failure`).
    pub status: String,
    /// `end time:`, the real end of the backup.
    pub end_time: Option<NaiveDateTime>,
}

impl Report {
    /// The `key: value` lines gpbackup pads to one column; unknown lines
    /// are skipped.
    pub fn parse(text: &str) -> Report {
        let mut report = Report::default();
        for line in text.lines().take(10_000) {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key.trim() {
                "backup status" => report.status = value.to_string(),
                "end time" => report.end_time = NaiveDateTime::parse_from_str(value, "%a %b %d %Y %H:%M:%S").ok(),
                _ => {}
            }
        }
        report
    }
}

/// A data entry of the coordinator TOC: one table whose data the backup
/// holds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TocEntry {
    #[serde(default)]
    pub schema: String,
    #[serde(default)]
    pub name: String,
    pub oid: u32,
}

impl TocEntry {
    pub fn fqn(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// The coordinator TOC's `dataentries`; the metadata entries are skipped
/// by the parser without being kept.
pub fn toc_data_entries(text: &str) -> Result<Vec<TocEntry>, String> {
    #[derive(Deserialize)]
    struct Toc {
        #[serde(default)]
        dataentries: Option<Vec<TocEntry>>,
    }
    yaml::guard(text, TOC_MAX_BYTES)?;
    let toc: Toc = serde_yaml::from_str(text).map_err(|e| yaml::describe(&e))?;
    Ok(toc.dataentries.unwrap_or_default())
}

/// `YYYYMMDDhhmmss` as a date and time (coordinator local time), or `None`
/// for a timestamp that is not a calendar date (gpbackup's plugin_test.sh
/// uses `99999812345678`).
pub fn timestamp_date(ts: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(ts, "%Y%m%d%H%M%S").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notes' example of an incremental S3 backup, as gpbackup writes it.
    pub const INCREMENTAL: &str = r#"backupdir: ""
backupversion: 1.30.5
compressed: true
compressiontype: gzip
databasename: demo
databaseversion: 6.26.4 build commit:0123456789abcdef0123456789abcdef01234567 Open Source
segmentcount: 4
dataonly: false
datedeleted: ""
excluderelations: []
excludeschemafiltered: false
excludeschemas: []
excludetablefiltered: false
includerelations: []
includeschemafiltered: false
includeschemas: []
includetablefiltered: false
incremental: true
leafpartitiondata: true
metadataonly: false
plugin: gpbackup_s3_plugin
pluginversion: 1.10.1
restoreplan:
- timestamp: "20240301020000"
  tablefqns:
  - public.sales_1_prt_jan
  - public.customers
- timestamp: "20240302020000"
  tablefqns: []
- timestamp: "20240303020000"
  tablefqns:
  - public.sales_1_prt_feb
  - public.heap_log
singledatafile: false
timestamp: "20240303020000"
endtime: "20240303020003"
withoutglobals: false
withstatistics: false
status: Success
"#;

    #[test]
    fn a_config_reads_field_for_field() {
        let c = BackupConfig::parse(INCREMENTAL).unwrap();
        assert_eq!((c.database_name.as_str(), c.segment_count, c.incremental), ("demo", Some(4), true));
        assert_eq!(
            (c.plugin.as_str(), c.plugin_version.as_str(), c.status.as_str()),
            ("gpbackup_s3_plugin", "1.10.1", "Success")
        );
        assert!(c.leaf_partition_data && c.compressed && !c.metadata_only && !c.single_data_file);
        assert_eq!(c.restore_plan.len(), 3);
        assert_eq!(c.restore_plan[0].table_fqns, vec!["public.sales_1_prt_jan", "public.customers"]);
        assert_eq!(c.depends_on(), vec!["20240301020000", "20240302020000"]);
        assert_eq!((c.compression(), c.data_extension()), ("gzip", ".gz"));
        assert_eq!(c.end_time, "20240303020003");
    }

    #[test]
    fn odd_configs_read_or_fail_without_quoting() {
        // Unquoted numbers, missing fields (older gpbackup), no compression.
        let c = BackupConfig::parse("timestamp: 20240101010101\ncompressed: false\n").unwrap();
        assert_eq!(
            (c.timestamp.as_str(), c.segment_count, c.compression(), c.data_extension()),
            ("20240101010101", None, "none", "")
        );
        assert!(c.restore_plan.is_empty() && c.depends_on().is_empty());
        let c = BackupConfig::parse("compressed: true\ncompressiontype: zstd\n").unwrap();
        assert_eq!(c.data_extension(), ".zst");
        let c = BackupConfig::parse("compressed: true\ncompressiontype: \"\"\n").unwrap();
        assert_eq!(c.compression(), "gzip");
        for bad in ["- a list", "c2VjcmV0: [", "plain text"] {
            let err = BackupConfig::parse(bad).unwrap_err();
            assert!(!err.contains("c2VjcmV0") && !err.contains("plain text"), "{err}");
        }
        let deep = format!("restoreplan: {}{}", "[".repeat(5000), "]".repeat(5000));
        assert!(BackupConfig::parse(&deep).unwrap_err().contains("nested"));
    }

    #[test]
    fn reports_give_status_and_end_time() {
        let text = "Greenplum Database Backup Report\n\ntimestamp key:         20240303020000\n\
                    gpbackup version:      1.30.5\n\nstart time:            Sun Mar 03 2024 02:00:00\n\
                    end time:              Sun Mar 03 2024 02:00:09\nduration:              0:00:09\n\n\
                    backup status:         Success\n";
        let r = Report::parse(text);
        assert_eq!(r.status, "Success");
        assert_eq!(r.end_time.unwrap().format("%Y%m%d%H%M%S").to_string(), "20240303020009");
        assert_eq!(Report::parse("garbage"), Report::default());
    }

    #[test]
    fn toc_data_entries_skip_the_rest() {
        let text = "globalentries:\n- schema: \"\"\n  name: x\n  objecttype: ROLE\n  startbyte: 0\n  endbyte: 10\n\
                    dataentries:\n- schema: public\n  name: t1\n  oid: 16385\n  attributestring: (a)\n  rowscopied: 3\n\
                    - schema: sales\n  name: Line Items\n  oid: 16390\n\
                    incrementalmetadata:\n  ao: {}\n";
        let entries = toc_data_entries(text).unwrap();
        assert_eq!(entries.iter().map(|e| e.oid).collect::<Vec<_>>(), vec![16385, 16390]);
        assert_eq!(entries[1].fqn(), "sales.Line Items");
        assert!(toc_data_entries("predataentries: []\n").unwrap().is_empty());
        assert!(toc_data_entries("dataentries: [{oid: x}]").is_err());
    }

    #[test]
    fn timestamps_as_dates() {
        assert_eq!(timestamp_date("20240303020000").unwrap().to_string(), "2024-03-03 02:00:00");
        assert!(timestamp_date("99999812345678").is_none());
    }
}
