//! `history export` after the coordinator is lost: the simulated cluster
//! runs a full, an incremental and a single-data-file backup of a real
//! PostgreSQL database; the catalog finds them complete (gpbackup's file
//! sets pass its completeness rules), verifies them, and writes a
//! `gpbackup_history.db` whose schema is gpbackup's column for column and
//! whose rows match the configs gpbackup wrote, so the query `gpbackup
//! --incremental` runs to find its base finds it again.

use rusqlite::Connection;

use super::*;
use crate::support::gp::*;
use crate::support::postgres::Postgres;

const DB: &str = "gphistory";
/// gpbackup's DDL as read from its source (origin in the file's header).
const SCHEMA: &str = include_str!("../../fixtures/gpbackup_history_schema.sql");

/// Every table's columns and foreign keys, as SQLite reports them.
fn columns(db: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for t in tables {
        let mut q =
            db.prepare(&format!("SELECT cid, name, type, \"notnull\", pk FROM pragma_table_info('{t}')")).unwrap();
        let rows = q.query_map([], |r| {
            Ok(format!(
                "{t}.{}#{} {} {} {}",
                r.get::<_, String>(1)?,
                r.get::<_, i64>(0)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?
            ))
        });
        out.extend(rows.unwrap().map(Result::unwrap));
        let mut q =
            db.prepare(&format!("SELECT \"from\", \"table\", \"to\" FROM pragma_foreign_key_list('{t}')")).unwrap();
        let rows = q.query_map([], |r| {
            Ok(format!("{t} fk {} -> {}({})", r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        });
        out.extend(rows.unwrap().map(Result::unwrap));
    }
    out
}

#[test]
fn history_export_rebuilds_gpbackups_database() {
    let name = "history_export_rebuilds_gpbackups_database";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let server = Server::start();
    let gp = Gp::new(&server, &pg, 2, &[]);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let (full, incr, single) = ("20240317000001", "20240318000002", "20240319000003");
    gp.backup(DB, full, Compression::Gzip, false, &tables, None);
    let changed = vec![table("public.events")];
    gp.backup(DB, incr, Compression::Gzip, false, &changed, Some(full));
    gp.backup(DB, single, Compression::None, true, &tables, None);
    let c = &gp.c;
    let config = gp.user_config.display().to_string();
    let run = |args: &[&str]| {
        let mut full_args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let at = if args[0] == "history" { 2 } else { 1 };
        full_args.insert(at, config.clone());
        run_plugin(&full_args, b"", &c.home)
    };

    let out = run(&["backups"]);
    assert_ok(&out);
    let text = stdout(&out);
    for ts in [full, incr, single] {
        assert!(line_with(&text, ts).contains(" complete "), "{text}");
    }
    assert!(line_with(&text, incr).contains(&format!("incremental  {full}")), "{text}");
    assert!(line_with(&text, single).contains("none"), "{text}");
    assert_ok(&run(&["verify", incr, "--deep"]));
    assert_ok(&run(&["verify", single, "--deep"]));

    // An existing database keeps its rows; ours are added beside them.
    let path = c.dir.path().join("gpbackup_history.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(SCHEMA).unwrap();
    db.execute("INSERT INTO backups (timestamp, status, date_deleted) VALUES ('20200101000000', 'Success', '')", [])
        .unwrap();
    drop(db);
    let out = run(&["history", "export", "--db", path.to_str().unwrap()]);
    assert_ok(&out);
    assert!(stdout(&out).contains(&format!("history: 3 rows added to {}, 0 already there", path.display())));
    let again = run(&["history", "export", "--db", path.to_str().unwrap()]);
    assert!(stdout(&again).contains(&format!("kept     {full}: already in the history")), "{}", stdout(&again));

    let db = Connection::open(&path).unwrap();
    let fixture = Connection::open_in_memory().unwrap();
    fixture.execute_batch(SCHEMA).unwrap();
    assert_eq!(columns(&db), columns(&fixture), "gpbackup's schema, column for column");
    for ts in [full, incr, single] {
        let dir = c.dir.path().join("check").join(ts);
        std::fs::create_dir_all(&dir).unwrap();
        let local = gp.backup_dir(-1, ts).join(format!("gpbackup_{ts}_config.yaml"));
        let stored: serde_yaml::Value = serde_yaml::from_slice(&std::fs::read(&local).unwrap()).unwrap();
        let s = |k: &str| stored[k].as_str().unwrap_or_default().to_string();
        let b = |k: &str| i64::from(stored[k].as_bool().unwrap_or(false));
        let row: (String, String, String, i64, String, i64, i64, String, String, String, String, i64) = db
            .query_row(
                "SELECT backup_dir, backup_version, compression_type, compressed, database_name, segment_count, \
                 incremental, plugin, plugin_version, database_version, status, single_data_file \
                 FROM backups WHERE timestamp = ?1",
                [ts],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                        r.get(8)?,
                        r.get(9)?,
                        r.get(10)?,
                        r.get(11)?,
                    ))
                },
            )
            .unwrap();
        let want = (
            s("backupdir"),
            s("backupversion"),
            s("compressiontype"),
            b("compressed"),
            s("databasename"),
            stored["segmentcount"].as_i64().unwrap(),
            b("incremental"),
            s("plugin"),
            s("pluginversion"),
            s("databaseversion"),
            s("status"),
            b("singledatafile"),
        );
        assert_eq!(row, want, "{ts}: the row matches its config");
        let plan: Vec<(String, String)> = db
            .prepare(
                "SELECT restore_plan_timestamp, table_fqn FROM restore_plan_tables WHERE timestamp = ?1 ORDER BY rowid",
            )
            .unwrap()
            .query_map([ts], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut want_plan = Vec::new();
        for entry in stored["restoreplan"].as_sequence().unwrap() {
            for fqn in entry["tablefqns"].as_sequence().unwrap() {
                want_plan.push((entry["timestamp"].as_str().unwrap().to_string(), fqn.as_str().unwrap().to_string()));
            }
        }
        assert_eq!(plan, want_plan, "{ts}: restore plan tables");
    }
    // No NULL anywhere in our rows (gpbackman reads them into Go strings).
    let nulls: i64 = db
        .query_row(
            "SELECT count(*) FROM backups WHERE timestamp != '20200101000000' AND (backup_dir IS NULL OR \
             date_deleted IS NULL OR end_time IS NULL OR plugin IS NULL OR with_statistics IS NULL OR \
             without_globals IS NULL OR leaf_partition_data IS NULL OR data_only IS NULL OR metadata_only IS NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(nulls, 0);
    let plans: Vec<String> = db
        .prepare("SELECT DISTINCT restore_plan_timestamp FROM restore_plans WHERE timestamp = ?1 ORDER BY 1")
        .unwrap()
        .query_map([incr], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(plans, vec![full, incr]);
    // gpbackup --incremental's own query for its base (history.go).
    let base: String = db
        .query_row(
            "SELECT timestamp FROM backups WHERE backup_dir = '' AND database_name = ?1 AND leaf_partition_data = 0 \
             AND single_data_file = 0 AND compressed = 1 AND date_deleted = '' AND status = 'Success' \
             ORDER BY timestamp DESC LIMIT 1",
            [DB],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(base, incr);
    let kept: i64 =
        db.query_row("SELECT count(*) FROM backups WHERE timestamp = '20200101000000'", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 1);
}
