//! gpbackup's history database (`gpbackup_history.db`, SQLite), rebuilt
//! from the bucket: a row per backup whose config is there, in exactly the
//! schema gpbackup creates (`history/history.go`,
//! `InitializeHistoryDatabase`; the statements below are token for token
//! gpbackup's, checked against `tests/fixtures/gpbackup_history_schema.sql`).
//! With it, `gpbackup --incremental` finds its base again and gpbackman
//! lists and deletes backups.
//!
//! Every `backups` column gets a value, never NULL (gpbackup and gpbackman
//! read them into Go strings and ints, which fail on NULL). Rows already in
//! the database are left as they are (they may carry a gpbackman deletion
//! date). A database made by gpbackup 1.28.0 has no `segment_count`:
//! columns the table lacks are left out, and said.

use std::path::Path;

use rusqlite::{Connection, params_from_iter};

use super::files::BackupConfig;
use super::inspect::Backup;
use super::restorable::Verdict;
use crate::error::{Error, Result};

/// gpbackup's `CREATE TABLE` statements, in its order.
pub const SCHEMA: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS backups (
    timestamp TEXT NOT NULL PRIMARY KEY,
    backup_dir TEXT,
    backup_version TEXT,
    compressed INT CHECK (compressed in (0,1)),
    compression_type TEXT,
    database_name TEXT,
    database_version TEXT,
    segment_count INT,
    data_only INT CHECK (data_only in (0,1)),
    date_deleted TEXT,
    exclude_schema_filtered INT CHECK (exclude_schema_filtered in (0,1)),
    exclude_table_filtered INT CHECK (exclude_table_filtered in (0,1)),
    include_schema_filtered INT CHECK (include_schema_filtered in (0,1)),
    include_table_filtered INT CHECK (include_table_filtered in (0,1)),
    incremental INT CHECK (incremental in (0,1)),
    leaf_partition_data INT CHECK (leaf_partition_data in (0,1)),
    metadata_only INT CHECK (metadata_only in (0,1)),
    plugin TEXT,
    plugin_version TEXT,
    single_data_file INT CHECK (single_data_file in (0,1)),
    end_time TEXT,
    without_globals INT CHECK (without_globals in (0,1)),
    with_statistics INT CHECK (with_statistics in (0,1)),
    status TEXT
)",
    "CREATE TABLE IF NOT EXISTS exclude_relations (
    timestamp TEXT NOT NULL,
    name TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
    "CREATE TABLE IF NOT EXISTS exclude_schemas (
    timestamp TEXT NOT NULL,
    name TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
    "CREATE TABLE IF NOT EXISTS include_relations (
    timestamp TEXT NOT NULL,
    name TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
    "CREATE TABLE IF NOT EXISTS include_schemas (
    timestamp TEXT NOT NULL,
    name TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
    "CREATE TABLE IF NOT EXISTS restore_plans (
    timestamp TEXT NOT NULL,
    restore_plan_timestamp TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
    "CREATE TABLE IF NOT EXISTS restore_plan_tables (
    timestamp TEXT NOT NULL,
    restore_plan_timestamp TEXT NOT NULL,
    table_fqn TEXT NOT NULL,
    FOREIGN KEY(timestamp) REFERENCES backups(timestamp)
)",
];

/// A value of a `backups` column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(String),
    Int(i64),
}

/// One backup's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub timestamp: String,
    /// `backups` columns in gpbackup's order, with their values.
    pub columns: Vec<(&'static str, Value)>,
    /// (table, name) rows of the four list tables.
    pub lists: Vec<(&'static str, String)>,
    /// (restore_plan_timestamp, table FQNs) in plan order.
    pub plan: Vec<(String, Vec<String>)>,
    /// The config says `Success` but gprestore could not restore it (files
    /// missing, or a backup its restore plan names): written `Failure`, so
    /// that `gpbackup --incremental` never builds on it.
    pub downgraded: bool,
}

impl Row {
    /// The rows of a backup, `None` without a readable config; `verdict`:
    /// whether gprestore can restore it ([`super::restorable::judge`]).
    pub fn of(backup: &Backup, verdict: &Verdict) -> Option<Row> {
        let c: &BackupConfig = backup.config.as_ref()?;
        let mut status = if c.status.is_empty() {
            backup
                .report
                .as_ref()
                .map(|r| r.status.clone())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "Success".into())
        } else {
            c.status.clone()
        };
        let downgraded = status == "Success" && !verdict.restorable;
        if downgraded {
            status = "Failure".to_string();
        }
        let end_time = backup
            .report
            .as_ref()
            .and_then(|r| r.end_time)
            .map(|t| t.format("%Y%m%d%H%M%S").to_string())
            .unwrap_or_else(|| c.end_time.clone());
        let text = |s: &str| Value::Text(s.to_string());
        let flag = |b: bool| Value::Int(i64::from(b));
        let columns = vec![
            ("timestamp", text(backup.timestamp())),
            ("backup_dir", text(&c.backup_dir)),
            ("backup_version", text(&c.backup_version)),
            ("compressed", flag(c.compressed)),
            ("compression_type", text(&c.compression_type)),
            ("database_name", text(&c.database_name)),
            ("database_version", text(&c.database_version)),
            ("segment_count", Value::Int(i64::from(c.segment_count.unwrap_or(0)))),
            ("data_only", flag(c.data_only)),
            // gpbackup always writes ''; managers fill it when they delete.
            ("date_deleted", text("")),
            ("exclude_schema_filtered", flag(c.exclude_schema_filtered)),
            ("exclude_table_filtered", flag(c.exclude_table_filtered)),
            ("include_schema_filtered", flag(c.include_schema_filtered)),
            ("include_table_filtered", flag(c.include_table_filtered)),
            ("incremental", flag(c.incremental)),
            ("leaf_partition_data", flag(c.leaf_partition_data)),
            ("metadata_only", flag(c.metadata_only)),
            ("plugin", text(&c.plugin)),
            ("plugin_version", text(&c.plugin_version)),
            ("single_data_file", flag(c.single_data_file)),
            ("end_time", Value::Text(end_time)),
            ("without_globals", flag(c.without_globals)),
            ("with_statistics", flag(c.with_statistics)),
            ("status", Value::Text(status)),
        ];
        let mut lists = Vec::new();
        for (table, names) in [
            ("exclude_relations", &c.exclude_relations),
            ("exclude_schemas", &c.exclude_schemas),
            ("include_relations", &c.include_relations),
            ("include_schemas", &c.include_schemas),
        ] {
            lists.extend(names.iter().map(|n| (table, n.clone())));
        }
        let plan = c.restore_plan.iter().map(|e| (e.timestamp.clone(), e.table_fqns.clone())).collect();
        Some(Row { timestamp: backup.timestamp().to_string(), columns, lists, plan, downgraded })
    }
}

impl Row {
    /// A text column's value.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.columns.iter().find(|(c, _)| *c == column).and_then(|(_, v)| match v {
            Value::Text(s) => Some(s.as_str()),
            Value::Int(_) => None,
        })
    }
}

/// What an export did.
#[derive(Debug, Default)]
pub struct Exported {
    pub added: Vec<String>,
    /// Already in the database, left alone.
    pub present: Vec<String>,
    /// `backups` columns gpbackup has and this database lacks.
    pub lacking_columns: Vec<String>,
}

/// Creates the tables that are missing and adds the rows not there yet,
/// all in one transaction.
pub fn export(path: &Path, rows: &[Row]) -> Result<Exported> {
    let fail = |e: rusqlite::Error| Error::local(format!("history database {}: {e}", path.display()));
    let mut db = Connection::open(path).map_err(fail)?;
    db.pragma_update(None, "foreign_keys", "ON").map_err(fail)?;
    let tx = db.transaction().map_err(fail)?;
    for statement in SCHEMA {
        tx.execute(statement, []).map_err(fail)?;
    }
    let have: Vec<String> = {
        let mut info = tx.prepare("SELECT name FROM pragma_table_info('backups')").map_err(fail)?;
        info.query_map([], |r| r.get::<_, String>(0)).map_err(fail)?.collect::<rusqlite::Result<_>>().map_err(fail)?
    };
    let mut out = Exported::default();
    if let Some(first) = rows.first() {
        out.lacking_columns = first.columns.iter().map(|(c, _)| c.to_string()).filter(|c| !have.contains(c)).collect();
    }
    for row in rows {
        let exists: bool = tx
            .query_row("SELECT count(*) FROM backups WHERE timestamp = ?1", [&row.timestamp], |r| r.get::<_, i64>(0))
            .map_err(fail)?
            > 0;
        if exists {
            out.present.push(row.timestamp.clone());
            continue;
        }
        let columns: Vec<&(&str, Value)> = row.columns.iter().filter(|(c, _)| have.iter().any(|h| h == c)).collect();
        let names: Vec<&str> = columns.iter().map(|(c, _)| *c).collect();
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        let sql = format!("INSERT INTO backups ({}) VALUES ({})", names.join(", "), marks.join(", "));
        let values = columns.iter().map(|(_, v)| match v {
            Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
            Value::Int(n) => rusqlite::types::Value::Integer(*n),
        });
        tx.execute(&sql, params_from_iter(values)).map_err(fail)?;
        for (table, name) in &row.lists {
            tx.execute(&format!("INSERT INTO {table} (timestamp, name) VALUES (?1, ?2)"), [&row.timestamp, name])
                .map_err(fail)?;
        }
        for (plan_ts, tables) in &row.plan {
            tx.execute(
                "INSERT INTO restore_plans (timestamp, restore_plan_timestamp) VALUES (?1, ?2)",
                [&row.timestamp, plan_ts],
            )
            .map_err(fail)?;
            for fqn in tables {
                tx.execute(
                    "INSERT INTO restore_plan_tables (timestamp, restore_plan_timestamp, table_fqn) VALUES (?1, ?2, ?3)",
                    [&row.timestamp, plan_ts, fqn],
                )
                .map_err(fail)?;
            }
        }
        out.added.push(row.timestamp.clone());
    }
    tx.commit().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::catalog::tests::{FOLDER, Spec};
    use crate::engine::catalog::{Reads, catalog};
    use crate::store::Store;
    use crate::store::memory::MemoryStore;
    use std::sync::Arc;

    /// gpbackup's DDL as the research notes recorded it (origin in its
    /// header).
    const FIXTURE: &str = include_str!("../../../tests/fixtures/gpbackup_history_schema.sql");

    /// Each table's columns (name, type, not null, default, primary key)
    /// and foreign keys, and its statement with whitespace normalised.
    fn shape(db: &Connection) -> Vec<String> {
        let mut tables: Vec<(String, String)> = db
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        tables.sort();
        let mut out = Vec::new();
        for (table, sql) in tables {
            out.push(format!("{table}: {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")));
            let q = format!("SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{table}')");
            let mut columns = db.prepare(&q).unwrap();
            for c in columns
                .query_map([], |r| {
                    Ok(format!(
                        "{table}.{}: #{} {} notnull={} default={:?} pk={}",
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, i64>(5)?
                    ))
                })
                .unwrap()
            {
                out.push(c.unwrap());
            }
            let q = format!("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('{table}')");
            let mut keys = db.prepare(&q).unwrap();
            for k in keys
                .query_map([], |r| {
                    Ok(format!(
                        "{table} fk {}({}) -> {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })
                .unwrap()
            {
                out.push(k.unwrap());
            }
        }
        out
    }

    #[test]
    fn the_schema_is_gpbackups_column_for_column() {
        let ours = Connection::open_in_memory().unwrap();
        for statement in SCHEMA {
            ours.execute(statement, []).unwrap();
        }
        let theirs = Connection::open_in_memory().unwrap();
        theirs.execute_batch(FIXTURE).unwrap();
        let (ours, theirs) = (shape(&ours), shape(&theirs));
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b);
        }
        assert!(theirs.iter().any(|l| l.starts_with("backups.segment_count: #7 INT")), "{theirs:?}");
        assert_eq!(theirs.iter().filter(|l| l.contains(" fk backups(timestamp)")).count(), 6);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rows_match_the_configs_and_are_added_once() {
        let memory = MemoryStore::new();
        let (full, incr) = ("20240301010101", "20240302010101");
        Spec::full(full).put(&memory).await;
        let mut broken = Spec::incremental(incr, &[full]);
        broken.without.push(format!("gpbackup_0_{incr}_16385.gz"));
        broken.put(&memory).await;
        let store: Arc<dyn Store> = Arc::new(memory);
        let catalog = catalog(&store, FOLDER, Reads { report: true, ..Reads::default() }, None).await.unwrap();
        let verdicts = catalog.judge();
        let rows: Vec<Row> = catalog.backups.iter().filter_map(|b| Row::of(b, &verdicts[b.timestamp()])).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpbackup_history.db");
        let first = export(&path, &rows).unwrap();
        assert_eq!((first.added.len(), first.present.len()), (2, 0));
        let again = export(&path, &rows).unwrap();
        assert_eq!((again.added.len(), again.present.len()), (0, 2), "rows already there are left alone");

        let db = Connection::open(&path).unwrap();
        let row: (String, i64, String, String, i64, i64, String, String) = db
            .query_row(
                "SELECT status, segment_count, plugin, end_time, incremental, include_schema_filtered, date_deleted, \
                 compression_type FROM backups WHERE timestamp = ?1",
                [full],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)),
            )
            .unwrap();
        assert_eq!(
            row,
            (
                "Success".into(),
                2,
                "gpbackup_s3_plugin".into(),
                "20240303020009".into(),
                0,
                1,
                String::new(),
                "gzip".into()
            )
        );
        let nulls: i64 = db
            .query_row(
                &format!(
                    "SELECT count(*) FROM backups WHERE {}",
                    SCHEMA_COLUMNS.iter().map(|c| format!("{c} IS NULL")).collect::<Vec<_>>().join(" OR ")
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(nulls, 0, "gpbackman fails on NULLs");
        let status: String =
            db.query_row("SELECT status FROM backups WHERE timestamp = ?1", [incr], |r| r.get(0)).unwrap();
        assert_eq!(status, "Failure", "an incomplete backup is never a base for --incremental");
        let plans: Vec<String> = db
            .prepare("SELECT DISTINCT restore_plan_timestamp FROM restore_plans WHERE timestamp = ?1 ORDER BY 1")
            .unwrap()
            .query_map([incr], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(plans, vec![full, incr]);
        let schemas: i64 =
            db.query_row("SELECT count(*) FROM include_schemas WHERE name = 'public'", [], |r| r.get(0)).unwrap();
        assert_eq!(schemas, 2);
    }

    const SCHEMA_COLUMNS: [&str; 24] = [
        "timestamp",
        "backup_dir",
        "backup_version",
        "compressed",
        "compression_type",
        "database_name",
        "database_version",
        "segment_count",
        "data_only",
        "date_deleted",
        "exclude_schema_filtered",
        "exclude_table_filtered",
        "include_schema_filtered",
        "include_table_filtered",
        "incremental",
        "leaf_partition_data",
        "metadata_only",
        "plugin",
        "plugin_version",
        "single_data_file",
        "end_time",
        "without_globals",
        "with_statistics",
        "status",
    ];

    #[test]
    fn a_database_of_gpbackup_1_28_0_keeps_its_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let old = SCHEMA[0].replace("    segment_count INT,\n", "");
        Connection::open(&path).unwrap().execute(&old, []).unwrap();
        let row = Row {
            timestamp: "20240101010101".into(),
            columns: SCHEMA_COLUMNS.iter().map(|c| (*c, Value::Text(String::new()))).collect(),
            lists: Vec::new(),
            plan: Vec::new(),
            downgraded: false,
        };
        let mut row = row;
        for (c, v) in row.columns.iter_mut() {
            if *c == "timestamp" {
                *v = Value::Text("20240101010101".into());
            } else if ["compressed", "data_only", "incremental", "metadata_only", "single_data_file", "segment_count"]
                .contains(c)
                || c.ends_with("_filtered")
                || ["leaf_partition_data", "without_globals", "with_statistics"].contains(c)
            {
                *v = Value::Int(0);
            }
        }
        let done = export(&path, &[row]).unwrap();
        assert_eq!(done.lacking_columns, vec!["segment_count"]);
        assert_eq!(done.added, vec!["20240101010101"]);
    }
}
