//! What `expire` may never delete, against s3s-fs: the newest backup of
//! each database that gprestore can restore (whatever else looks newer: a
//! metadata-only backup, another database's, one dated in the future), a
//! backup with every file gprestore reads (no plugin config copy, a TOC
//! with quoted names full of brackets), and a backup still being written
//! (judged by its newest object, not by its name). Durations need a unit,
//! and the plan says its cutoff as a date.

use chrono::{Duration, Local};

use super::*;

fn ts_at(offset: Duration) -> String {
    (Local::now() + offset).format("%Y%m%d%H%M%S").to_string()
}

/// The plan line of backup `ts` (`keep    TS  ...`, `delete  TS  ...`).
#[track_caller]
fn plan_line(text: &str, ts: &str) -> String {
    text.lines()
        .find(|l| matches!(l.split_whitespace().take(2).collect::<Vec<_>>()[..], ["keep" | "delete", t] if t == ts))
        .unwrap_or_else(|| panic!("no plan line for {ts} in:\n{text}"))
        .to_string()
}

/// A retention role's `expire --keep-last 1 --yes` once deleted every data
/// backup when something else looked newest: four objects put with only
/// s3:PutObject (a metadata-only backup), another database's backup, or a
/// backup dated in the future took the one slot.
#[test]
fn expire_keeps_the_newest_restorable_backup_of_each_database() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let (d1, d2, meta, other) = ("20240101000000", "20240102000000", "20240103000000", "20240104000000");
    let future = ts_at(Duration::days(3));
    Spec::full(d1).store(&c);
    Spec::full(d2).store(&c);
    // Config, report, metadata and TOC: what the README's backup role may put.
    Spec { metadata_only: true, ..Spec::full(meta) }
        .without("gpbackup_TS_plugin_config.yaml")
        .put_directly(&server, &c);
    Spec { database: "other", ..Spec::full(other) }.store(&c);
    Spec::full(&future).put_directly(&server, &c);

    let out = c.run("expire", &["--keep-last", "1"], b"");
    assert_ok(&out);
    let plan = stdout(&out);
    let keep = |ts: &str, why: &str| {
        let line = plan_line(&plan, ts);
        assert!(line.starts_with("keep") && line.contains(why), "{ts} should be kept ({why}):\n{plan}");
    };
    keep(&future, "dated in the future");
    keep(other, "newest restorable backup of other");
    keep(meta, "metadata only");
    keep(d2, "newest restorable backup of demo");
    assert!(plan_line(&plan, d1).starts_with("delete"), "{plan}");

    let out = c.run("expire", &["--keep-last", "1", "--yes"], b"");
    assert_ok(&out);
    for (ts, kept) in [(d1, false), (d2, true), (meta, true), (other, true), (future.as_str(), true)] {
        assert_eq!(has_backup(&c, ts), kept, "{ts}:\n{}", stdout(&out));
    }

    // The cutoff of --older-than as a date.
    let before = (Local::now() - Duration::days(30)).format("%Y-%m-%d %H:%M").to_string();
    let out = c.run("expire", &["--older-than", "30d"], b"");
    assert_ok(&out);
    let after = (Local::now() - Duration::days(30)).format("%Y-%m-%d %H:%M").to_string();
    let text = stdout(&out);
    assert!(
        text.contains(&format!("--older-than 30d: backups before {before}"))
            || text.contains(&format!("--older-than 30d: backups before {after}")),
        "{text}"
    );
}

/// gprestore reads the config, report, metadata and TOC (and the data
/// files): a backup without the plugin config copy (which only `gpbackup
/// --incremental` reads) is restorable, and so is one whose TOC names a
/// table in a double-quoted scalar with escaped quotes and many brackets.
/// Both were called incomplete and deleted past --grace.
#[test]
fn what_gprestore_can_restore_is_complete_everywhere() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let (a, no_copy, odd) = ("20240101000000", "20240102000000", "20240103000000");
    Spec::full(a).store(&c);
    Spec::full(no_copy).without("gpbackup_TS_plugin_config.yaml").store(&c);
    let name = format!(r#""\"odd\"\"name\t{}\"""#, "[".repeat(40));
    Spec { toc_name: Some(name), ..Spec::full(odd) }.store(&c);

    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let row = |ts: &str| line_with(&text, ts).to_string();
    assert!(row(no_copy).contains(" complete ") && row(no_copy).contains("no plugin config copy"), "{text}");
    assert!(row(odd).contains(" complete "), "{text}");
    for ts in [no_copy, odd] {
        let out = c.run("verify", &[ts], b"");
        assert_ok(&out);
        assert!(stdout(&out).contains(&format!("backup {ts} is restorable")), "{}", stdout(&out));
    }
    let db = temp_path(&c, "gpbackup_history.db");
    let out = cli(&c, &["history", "export", "--db", db.to_str().unwrap()]);
    assert_ok(&out);
    for ts in [no_copy, odd] {
        assert!(line_with(&stdout(&out), ts).contains("status Success"), "{}", stdout(&out));
    }

    let out = c.run("expire", &["--keep-last", "2", "--yes"], b"");
    assert_ok(&out);
    for (ts, kept) in [(a, false), (no_copy, true), (odd, true)] {
        assert_eq!(has_backup(&c, ts), kept, "{ts}:\n{}", stdout(&out));
    }
}

/// A backup's age for --grace is its last activity (its newest object),
/// not the timestamp in its name: a gpbackup that started three days ago
/// and is still writing is kept; one whose last write was three days ago
/// goes.
#[test]
fn a_running_backup_is_judged_by_its_last_write_not_its_name() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let full = "20240101000000";
    let running = ts_at(-Duration::days(3));
    let writing = ts_at(-Duration::days(3) - Duration::hours(1));
    let abandoned = ts_at(-Duration::days(4));
    Spec::full(full).store(&c);
    Spec::full(&running).without("gpbackup_TS_config.yaml").without("gpbackup_TS_report").store(&c);
    // Config there, a data file not yet: incomplete.
    Spec::full(&writing).without("gpbackup_1_TS_16385.gz").store(&c);
    let old = Spec::full(&abandoned).without("gpbackup_TS_config.yaml").without("gpbackup_TS_report");
    old.store(&c);
    let aged = age_on_disk(&server, &c, &old, "3 days ago");

    let out = c.run("expire", &["--keep-last", "1", "--yes"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    for ts in [&running, &writing] {
        let line = plan_line(&text, ts);
        assert!(line.starts_with("keep") && line.contains("last written"), "{text}");
        assert!(has_backup(&c, ts), "{ts}: {text}");
    }
    if aged {
        assert!(plan_line(&text, &abandoned).starts_with("delete"), "{text}");
        assert!(!has_backup(&c, &abandoned), "{text}");
    }
    assert!(has_backup(&c, full));
}
