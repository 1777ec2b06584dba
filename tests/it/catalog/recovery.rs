//! The README's "Disaster recovery" walk-through, step by step: the
//! simulated cluster backs up a real PostgreSQL database (an old full
//! backup, a newer full one and an incremental one on top of it), then the
//! coordinator is lost (there is no history database; every answer comes
//! from the bucket). With the plugin and its config file alone:
//! `backups` lists the three, `verify --deep` proves the incremental one
//! restorable (with the full one it reads), gprestore restores it, `expire
//! --keep-last 1` deletes only the old full backup (dry run, then `--yes`),
//! and `history export` writes the database in which `gpbackup
//! --incremental` finds its base again.

use rusqlite::Connection;

use super::*;
use crate::support::gp::*;
use crate::support::postgres::Postgres;

const DB: &str = "gprecover";

#[test]
fn disaster_recovery_walkthrough() {
    let name = "disaster_recovery_walkthrough";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let server = Server::start();
    let gp = Gp::new(&server, &pg, 2, &[]);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let (old, full, incr) = ("20240301000001", "20240308000002", "20240309000003");
    gp.backup(DB, old, Compression::Gzip, false, &tables, None);
    pg.sql(DB, "UPDATE public.events SET qty = qty + 1 WHERE id % 3 = 0");
    gp.backup(DB, full, Compression::Gzip, false, &tables, None);
    pg.sql(DB, "INSERT INTO public.events SELECT id + 10000000, kind, at, qty, score, span, addr, body FROM public.events WHERE id % 5 = 0");
    let changed = vec![table("public.events")];
    let sums = checksums(&pg, DB, &tables);
    let latest = gp.backup(DB, incr, Compression::Gzip, false, &changed, Some(full));

    // The coordinator is lost: there is no gpbackup_history.db, and what
    // follows reads the bucket alone. (The hosts' backup directories stay
    // only for the replayed gprestore's checks: it deletes each file before
    // fetching it back with restore_file, and compares.)
    let config = s(&gp.user_config);
    let run = |args: &[&str]| {
        let mut full_args = args.to_vec();
        let at = if args[0] == "history" { 2 } else { 1 };
        full_args.insert(at, config.as_str());
        let out = gp.plugin(&full_args);
        eprintln!("$ gpbackup_s3_plugin {}\n{}", full_args.join(" "), stdout(&out));
        assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
        out
    };

    // 1. Which backups are there, and which are complete.
    let out = run(&["backups"]);
    assert_ok(&out);
    let text = stdout(&out);
    for ts in [old, full, incr] {
        assert!(line_with(&text, ts).contains(" complete "), "{text}");
    }
    assert!(line_with(&text, incr).contains(&format!("incremental  {full}")), "{text}");
    assert!(text.contains(": 3 complete, 0 failed, 0 incomplete, 0 unfinished;"), "{text}");

    // 2. Prove the newest restorable: every object read back, nothing written.
    let out = run(&["verify", incr, "--deep"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("backup {incr} is incremental: its restore also reads {full}")), "{text}");
    assert!(text.contains(&format!("verify {incr}: 2 backups, ")), "{text}");
    assert!(
        text.ends_with(&format!("backup {incr} is restorable: every object was read back and matches its checksums\n")),
        "{text}"
    );

    // 3. gprestore, from the bucket alone.
    drop_tables(&pg, DB);
    gp.restore(&latest, RestoreOptions::full(DB));
    assert_eq!(checksums(&pg, DB, &tables), sums, "the restored database is the one backed up");

    // 4. Trim: the dry run deletes only the old full backup; the newest is
    // kept, and so is the full backup its restore reads.
    let out = run(&["expire", "--keep-last", "1"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(line_with(&text, old).starts_with("delete "), "{text}");
    assert!(line_with(&text, full).starts_with("keep "), "{text}");
    assert!(line_with(&text, full).ends_with(&format!("the restore of {incr} needs it")), "{text}");
    assert!(line_with(&text, incr).starts_with("keep "), "{text}");
    assert!(text.contains("dry run: 1 backup ("), "{text}");
    assert!(has_backup(&gp.c, old), "a dry run deletes nothing");
    let out = run(&["expire", "--keep-last", "1", "--yes"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(line_with(&text, &format!("deleted  {old}")).contains(" objects"), "{text}");
    assert!(text.ends_with("expire: 1 deleted, 0 failed, 0 skipped, 2 kept\n"), "{text}");
    assert!(!has_backup(&gp.c, old) && has_backup(&gp.c, full) && has_backup(&gp.c, incr));
    assert_ok(&run(&["verify", incr]));

    // 5. gpbackup's history back: a row per backup left, and gpbackup
    // --incremental's own query for its base finds the newest.
    let db_path = gp.c.dir.path().join("gpbackup_history.db");
    let out = run(&["history", "export", "--db", &s(&db_path)]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.ends_with(&format!(
        "history: 2 rows added to {}, 0 already there, 0 backups without a config skipped\n",
        db_path.display()
    )));
    let db = Connection::open(&db_path).unwrap();
    let rows: Vec<(String, String)> = db
        .prepare("SELECT timestamp, status FROM backups ORDER BY timestamp")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows, vec![(full.to_string(), "Success".to_string()), (incr.to_string(), "Success".to_string())]);
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
}
