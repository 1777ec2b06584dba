//! Scale and locks: `backups` and `expire` on a folder of 2,000 backups in
//! a bounded number of requests (counted by a proxy that injects nothing),
//! and a Glacier vault's lock policy holding backups back from `expire`.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::*;
use crate::support::fault_proxy::{FaultProxy, Faults};

const BACKUPS: usize = 2000;
/// Every this many backups has table data (and so a TOC to read).
const DATA_EVERY: usize = 100;

/// Writes the backups straight into s3s-fs's directory (as fast as files
/// are made), gpbackup's five coordinator files each, and two segments'
/// data for every [`DATA_EVERY`]th. Returns the object count.
fn lay_out(root: &std::path::Path) -> usize {
    let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
    let mut objects = 0;
    for i in 0..BACKUPS {
        let ts = (start + chrono::Duration::hours(i as i64)).format("%Y%m%d%H%M%S").to_string();
        let dir = root.join("backups").join(&ts[..8]).join(&ts);
        std::fs::create_dir_all(&dir).unwrap();
        let data = i % DATA_EVERY == 0;
        let plan = if data { format!("- timestamp: \"{ts}\"\n  tablefqns:\n  - public.t\n") } else { String::new() };
        let config = format!(
            "backupdir: \"\"\ncompressed: true\ncompressiontype: gzip\ndatabasename: demo\nsegmentcount: 2\n\
             incremental: false\nmetadataonly: {}\nplugin: gpbackup_s3_plugin\nrestoreplan:\n{plan}\
             singledatafile: false\ntimestamp: \"{ts}\"\nstatus: Success\n",
            !data
        );
        let toc = if data { "dataentries:\n- schema: public\n  name: t\n  oid: 16384\n" } else { "dataentries: []\n" };
        let mut files = vec![
            (format!("gpbackup_{ts}_config.yaml"), config),
            (format!("gpbackup_{ts}_report"), "backup status: Success\n".to_string()),
            (format!("gpbackup_{ts}_metadata.sql"), "SET x = 1;\n".to_string()),
            (format!("gpbackup_{ts}_toc.yaml"), toc.to_string()),
            (format!("gpbackup_{ts}_plugin_config.yaml"), "options: {}\n".to_string()),
        ];
        if data {
            files.extend((0..2).map(|c| (format!("gpbackup_{c}_{ts}_16384.gz"), "data".to_string())));
        }
        objects += files.len();
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
    }
    objects
}

#[test]
fn two_thousand_backups_in_a_bounded_number_of_requests() {
    let server = Server::start();
    let writer = Cluster::new(&server, &[]);
    let Some(root) = server.object_file(&writer.folder) else {
        eprintln!("skipped: laying out 2,000 backups needs the server's disk (s3s-fs)");
        return;
    };
    let objects = lay_out(&root);
    let proxy = FaultProxy::start(&server.endpoint, Faults::default(), 11);
    let c = Cluster::with_folder(&server, &writer.folder, &[("endpoint", &proxy.endpoint)]);

    let started = Instant::now();
    let out = c.run("backups", &["--json"], b"");
    let elapsed = started.elapsed();
    assert_ok(&out);
    let requests = proxy.stats.requests.load(Ordering::Relaxed) as usize;
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), BACKUPS);
    assert!(list.iter().all(|b| b["status"] == "complete"), "{}", stdout(&out));
    // One listing per 1,000 objects, one GET per config, one per TOC of a
    // backup with data, and one GetBucketVersioning (the bucket has no
    // Object Lock, so no lock lookups); nothing else.
    let pages = objects.div_ceil(1000);
    let with_data = BACKUPS / DATA_EVERY;
    eprintln!(
        "backups on {BACKUPS} backups ({objects} objects): {requests} requests ({pages} listings, {BACKUPS} configs, \
         {with_data} TOCs, 1 versioning) in {elapsed:.1?}"
    );
    assert_eq!(requests, pages + BACKUPS + with_data + 1);

    proxy.stats.requests.store(0, Ordering::Relaxed);
    let out = c.run("expire", &["--keep-last", "10"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    // The 10 newest data backups, and the metadata-only backups newer than
    // the oldest of them.
    let oldest_kept = (with_data - 10) * DATA_EVERY;
    let kept = 10 + (oldest_kept + 1..BACKUPS).filter(|i| i % DATA_EVERY != 0).count();
    assert_eq!(text.lines().filter(|l| l.starts_with("delete ")).count(), BACKUPS - kept);
    assert!(text.ends_with(&format!("would be deleted, {kept} kept; run again with --yes to delete them\n")), "{text}");
    assert_eq!(proxy.stats.requests.load(Ordering::Relaxed) as usize, pages + BACKUPS + with_data + 1);
}

/// A vault lock policy (deny deletes of archives younger than 36,500 days)
/// shows in `backups` and keeps `expire` from deleting what it holds.
#[test]
fn a_vault_lock_holds_backups_back_from_expire() {
    let s3 = Server::start();
    let glacier = Glacier::fakecloud();
    let vault = format!("gpbackup-catalog-{}", std::process::id());
    let c = Cluster::new(&s3, &[("storage", "glacier"), ("vault", &vault), ("glacier_endpoint", &glacier.endpoint)]);
    let dir = c.backup_dir("gpseg-1", "20240101000000");
    assert_ok(&c.run("setup_plugin_for_backup", &[dir.to_str().unwrap(), "master", "\"-1\""], b""));
    Spec::full("20240101000000").store(&c);
    Spec::full("20240102000000").store(&c);
    let before = stdout(&c.run("backups", &[], b""));
    assert!(line_with(&before, "20240101000000").contains(" none "), "{before}");

    let policy = c.dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"glacier:DeleteArchive","Resource":"*","Condition":{"NumericLessThan":{"glacier:ArchiveAgeInDays":"36500"}}}]}"#,
    )
    .unwrap();
    let out = run_plugin(
        &[
            "vault-lock".into(),
            "initiate".into(),
            c.config.display().to_string(),
            "--policy-file".into(),
            policy.display().to_string(),
        ],
        b"",
        &c.home,
    );
    assert_ok(&out);

    let text = stdout(&c.run("backups", &[], b""));
    assert!(line_with(&text, "20240101000000").contains("vault lock InProgress until 2123-12-09"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&c.run("backups", &["--json"], b"").stdout).unwrap();
    assert_eq!(json[1]["lock"]["kind"], "vault");
    assert_eq!(json[1]["lock"]["holds"], true);

    let out = c.run("expire", &["--keep-last", "1", "--yes"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(line_with(&text, "20240101000000").starts_with("keep"), "{text}");
    assert!(line_with(&text, "20240101000000").contains("retention lock until 2123-12-09"), "{text}");
    assert!(text.ends_with("expire: 0 deleted, 0 failed, 0 skipped, 2 kept\n"), "{text}");
    assert!(has_backup(&c, "20240101000000"));
}
