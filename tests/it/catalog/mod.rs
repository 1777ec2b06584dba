//! The bucket as the source of truth: `backups`, `verify`, `expire` and
//! `history export` run as an operator who lost the coordinator runs them,
//! against real servers, on backups laid out as gpbackup lays them out:
//! through the plugin (`backup_file`, `backup_data`), put directly with
//! curl as the Go plugin leaves them (no integrity sidecars), or replayed by
//! the simulated cluster on a real PostgreSQL database.
//!
//! - here: listing (complete, incomplete, failed, unfinished, chains), Go
//!   plugin backups, read-only credentials, bad input;
//! - `verify.rs`: shallow and deep verification, damage, archived objects;
//! - `expire.rs`: plans on chains of full and incremental backups, failures;
//! - `retention.rs`: what `expire` may never delete (the newest restorable
//!   backup of each database, what gprestore can restore, running backups),
//!   durations with units, listings with keys no XML can hold;
//! - `history.rs`: gpbackup's history database from the simulated cluster;
//! - `scale.rs`: 2,000 backups in a bounded number of requests, a vault lock;
//! - `recovery.rs`: the README's disaster recovery walk-through.

use std::path::PathBuf;
use std::process::Output;

use crate::support::*;

mod expire;
mod history;
mod recovery;
mod retention;
mod scale;
mod verify;

/// A backup to lay out: gpbackup's coordinator files and, per segment, a
/// data file per table.
#[derive(Clone)]
pub struct Spec {
    pub ts: String,
    /// Earlier backups of its restore plan (an incremental backup).
    pub base: Vec<String>,
    pub status: &'static str,
    pub segments: u32,
    pub oids: Vec<u32>,
    /// File names left out.
    pub without: Vec<String>,
    /// Bytes per data file.
    pub data_len: usize,
    /// The config's `databasename`.
    pub database: &'static str,
    /// `gpbackup --metadata-only`: no data files, a TOC without data entries.
    pub metadata_only: bool,
    /// The coordinator TOC's `name` of each table, as YAML text (default
    /// `t<oid>`).
    pub toc_name: Option<String>,
}

impl Spec {
    pub fn full(ts: &str) -> Spec {
        Spec {
            ts: ts.to_string(),
            base: Vec::new(),
            status: "Success",
            segments: 2,
            oids: vec![16384, 16385],
            without: Vec::new(),
            data_len: 3000,
            database: "demo",
            metadata_only: false,
            toc_name: None,
        }
    }

    pub fn incremental(ts: &str, base: &[&str]) -> Spec {
        Spec { base: base.iter().map(|b| b.to_string()).collect(), oids: vec![16385], ..Spec::full(ts) }
    }

    pub fn without(mut self, name: &str) -> Spec {
        self.without.push(name.replace("TS", &self.ts));
        self
    }

    /// `gpbackup_<TS>_config.yaml` as gpbackup's yaml.v2 writes it.
    pub fn config(&self) -> String {
        let mut plan = String::new();
        for b in &self.base {
            plan.push_str(&format!("- timestamp: \"{b}\"\n  tablefqns:\n  - public.t16384\n"));
        }
        plan.push_str(&format!("- timestamp: \"{}\"\n  tablefqns:\n", self.ts));
        for oid in self.oids.iter().filter(|_| !self.metadata_only) {
            plan.push_str(&format!("  - public.t{oid}\n"));
        }
        format!(
            "backupdir: \"\"\nbackupversion: 1.30.5\ncompressed: true\ncompressiontype: gzip\ndatabasename: {}\n\
             databaseversion: 6.26.4 build commit:0123 Open Source\nsegmentcount: {}\ndataonly: false\n\
             datedeleted: \"\"\nexcluderelations: []\nexcludeschemafiltered: false\nexcludeschemas: []\n\
             excludetablefiltered: false\nincluderelations: []\nincludeschemafiltered: false\nincludeschemas: []\n\
             includetablefiltered: false\nincremental: {}\nleafpartitiondata: true\nmetadataonly: {}\n\
             plugin: gpbackup_s3_plugin\npluginversion: 0.1.0\nrestoreplan:\n{plan}singledatafile: false\n\
             timestamp: \"{}\"\nendtime: \"{}\"\nwithoutglobals: false\nwithstatistics: false\nstatus: {}\n",
            self.database,
            self.segments,
            !self.base.is_empty(),
            self.metadata_only,
            self.ts,
            self.ts,
            self.status
        )
    }

    /// Every file: (name, bytes, written by `backup_data`).
    pub fn files(&self) -> Vec<(String, Vec<u8>, bool)> {
        let ts = &self.ts;
        let mut toc = String::from("predataentries: []\ndataentries:\n");
        for oid in self.oids.iter().filter(|_| !self.metadata_only) {
            let name = self.toc_name.clone().unwrap_or_else(|| format!("t{oid}"));
            toc.push_str(&format!("- schema: public\n  name: {name}\n  oid: {oid}\n  attributestring: (a)\n"));
        }
        if self.metadata_only {
            toc = "predataentries: []\ndataentries: []\n".to_string();
        }
        let report = format!(
            "Greenplum Database Backup Report\n\ntimestamp key:         {ts}\n\nend time:              Sun Mar 03 2024 \
             02:00:09\n\nbackup status:         {}\n",
            self.status
        );
        let mut files = vec![
            (format!("gpbackup_{ts}_metadata.sql"), b"CREATE TABLE public.t16384 (a int);\n".to_vec(), false),
            (format!("gpbackup_{ts}_toc.yaml"), toc.into_bytes(), false),
            (format!("gpbackup_{ts}_plugin_config.yaml"), b"executablepath: x\noptions: {}\n".to_vec(), false),
            (format!("gpbackup_{ts}_config.yaml"), self.config().into_bytes(), false),
            (format!("gpbackup_{ts}_report"), report.into_bytes(), false),
        ];
        for c in (0..self.segments).filter(|_| !self.metadata_only) {
            for oid in &self.oids {
                let seed = u64::from(*oid) * 31 + u64::from(c) + ts.parse::<u64>().unwrap_or(0) % 1000;
                files.push((format!("gpbackup_{c}_{ts}_{oid}.gz"), data(self.data_len, seed), true));
            }
        }
        files.retain(|(name, ..)| !self.without.contains(name));
        files
    }

    /// Stores the backup through the plugin, as gpbackup and its helpers do.
    pub fn store(&self, c: &Cluster) {
        let dir = c.backup_dir("gpseg-1", &self.ts);
        for (name, bytes, stream) in self.files() {
            let path = dir.join(&name);
            let path = path.to_str().unwrap();
            if stream {
                assert_ok(&c.run("backup_data", &[path], &bytes));
            } else {
                std::fs::write(path, &bytes).unwrap();
                assert_ok(&c.run("backup_file", &[path], b""));
            }
        }
    }

    /// Puts the backup's objects with curl, as the Go plugin leaves them: no
    /// integrity records, no sidecars.
    pub fn put_directly(&self, server: &Server, c: &Cluster) {
        let dir = c.dir.path().join("go");
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes, _) in self.files() {
            let file = dir.join(&name);
            std::fs::write(&file, bytes).unwrap();
            let key = c.key(&self.ts, &name);
            let out = server.curl(
                &format!("{}/{key}", server.bucket),
                &["-X", "PUT", "--data-binary", &format!("@{}", file.display())],
            );
            assert!(out.status.success(), "PUT {key}: {}", String::from_utf8_lossy(&out.stdout));
        }
    }
}

/// Runs a command with the cluster's config after the command's own words
/// (`backups CFG ...`, `history export CFG ...`).
pub fn cli(c: &Cluster, args: &[&str]) -> Output {
    let words = if args.first() == Some(&"history") { 2.min(args.len()) } else { 1 };
    let mut full: Vec<String> = args[..words].iter().map(|a| a.to_string()).collect();
    full.push(c.config.display().to_string());
    full.extend(args[words..].iter().map(|a| a.to_string()));
    run_plugin(&full, b"", &c.home)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The line of `text` that contains `needle`.
#[track_caller]
pub fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// Every key under the cluster's folder.
pub fn keys(c: &Cluster) -> Vec<String> {
    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    stdout(&out).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect()
}

pub fn has_backup(c: &Cluster, ts: &str) -> bool {
    let prefix = c.key(ts, "");
    keys(c).iter().any(|k| k.starts_with(&prefix))
}

/// Dates the stored objects of `spec` `ago` (`"3 days ago"`) on s3s-fs's
/// disk, as if last written then; `false` on a server without a disk.
pub fn age_on_disk(server: &Server, c: &Cluster, spec: &Spec, ago: &str) -> bool {
    if !server.has_disk() {
        return false;
    }
    for (name, ..) in spec.files() {
        let file = server.object_file(&c.key(&spec.ts, &name)).unwrap();
        let touched = std::process::Command::new("touch").args(["-d", ago]).arg(&file).status().unwrap();
        assert!(touched.success(), "touch {}", file.display());
    }
    true
}

pub fn temp_path(c: &Cluster, name: &str) -> PathBuf {
    c.dir.path().join(name)
}

/// `backups` and `backups --json` on backups of every state, newest first,
/// with the chain of an incremental and the problems of the others named.
#[test]
fn backups_lists_every_state_and_chain() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let (full, incr) = ("20240301010101", "20240302010101");
    Spec::full(full).store(&c);
    Spec::incremental(incr, &[full]).store(&c);
    Spec::full("20240303010101").without("gpbackup_TS_report").store(&c);
    Spec::full("20240304010101").without("gpbackup_1_TS_16385.gz").store(&c);
    Spec { status: "Failure", ..Spec::full("20240305010101") }.store(&c);
    Spec::full("20240306010101").without("gpbackup_TS_config.yaml").without("gpbackup_TS_report").store(&c);

    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("TIMESTAMP  ") && lines[0].contains("FULL BACKUP"), "{text}");
    let order: Vec<&str> = lines[1..7].iter().map(|l| &l[..14]).collect();
    assert_eq!(
        order,
        ["20240306010101", "20240305010101", "20240304010101", "20240303010101", incr, full],
        "newest first"
    );
    let row = |ts: &str| lines.iter().find(|l| l.starts_with(ts)).unwrap_or_else(|| panic!("no row {ts}: {text}"));
    let words = |ts: &str| row(ts).split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(words(incr)[1..6], ["2024-03-02", "01:01:01", "complete", "incremental", full]);
    assert_eq!(words(full)[3..6], ["complete", "full", "-"]);
    assert!(row("20240303010101").contains("incomplete") && text.contains("no report"), "{text}");
    assert!(row("20240304010101").contains("segment 1: 1 table data file missing"), "{text}");
    assert!(row("20240305010101").contains("gpbackup recorded status Failure"), "{text}");
    assert!(row("20240306010101").contains("unfinished"), "{text}");
    assert!(lines[7].starts_with("6 backups under s3://"), "{text}");
    assert!(lines[7].contains(": 2 complete, 1 failed, 2 incomplete, 1 unfinished; "), "{text}");
    for word in ["hot", "none", "gzip", "demo", "all"] {
        assert!(words(incr).contains(&word.to_string()), "{word}: {text}");
    }

    let out = c.run("backups", &["--json"], b"");
    assert_ok(&out);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 6);
    let i = &list[4];
    assert_eq!(i["timestamp"], incr);
    assert_eq!((i["status"].as_str(), i["complete"].as_bool()), (Some("complete"), Some(true)));
    assert_eq!((i["type"].as_str(), i["full_backup"].as_str()), (Some("incremental"), Some(full)));
    assert_eq!(i["depends_on"], serde_json::json!([full]));
    assert_eq!((i["storage"]["state"].as_str(), i["lock"]["kind"].as_str()), (Some("hot"), Some("none")));
    assert_eq!((i["compression"].as_str(), i["database"].as_str()), (Some("gzip"), Some("demo")));
    let listed: u64 = {
        let out = c.run("list_directory", &[&format!("{}/backups/20240302/{incr}", c.folder)], b"");
        stdout(&out).lines().map(|l| l.rsplit('\t').next().unwrap().parse::<u64>().unwrap()).sum()
    };
    assert_eq!(i["bytes"].as_u64(), Some(listed));
    assert_eq!(list[2]["missing"], serde_json::json!(["gpbackup_1_20240304010101_16385.gz"]));
    assert_eq!(list[0]["status"], "unfinished");

    // The full backup gone: the incremental's chain is broken, and says so.
    assert_ok(&c.run("delete_backup", &[full], b""));
    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    assert!(line_with(&stdout(&out), incr).contains(&format!("needs {full}, which is not in the bucket")));
    let json: serde_json::Value = serde_json::from_slice(&c.run("backups", &["--json"], b"").stdout).unwrap();
    assert_eq!(json[4]["restorable_chain"], false);
    assert_eq!(json[4]["chain_gaps"], serde_json::json!([full]));
}

/// Backups the Go plugin wrote: no integrity records, no sidecars. They
/// list, verify (size and length only) and export like the others.
#[test]
fn go_plugin_backups_without_sidecars() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let (full, broken) = ("20240401010101", "20240402010101");
    Spec::full(full).put_directly(&server, &c);
    Spec::full(broken).without("gpbackup_0_TS_16384.gz").put_directly(&server, &c);
    assert!(!keys(&c).iter().any(|k| k.contains("gpbackup_manifest")));

    let text = stdout(&c.run("backups", &[], b""));
    assert!(line_with(&text, full).contains("complete"), "{text}");
    assert!(line_with(&text, broken).contains("segment 0: 1 table data file missing"), "{text}");

    let out = c.run("verify", &[full], b"");
    assert_ok(&out);
    let report = stdout(&out);
    assert!(line_with(&report, "gpbackup_1_20240401010101_16385.gz").contains("no integrity record (size only)"));
    assert!(report.contains("9 objects without an integrity record (Go plugin?) checked for size only"), "{report}");
    let out = c.run("verify", &[full, "--deep"], b"");
    assert_ok(&out);
    assert!(stdout(&out).contains("read whole, no integrity record (length only)"));

    let out = c.run("verify", &[broken], b"");
    assert_fails_with(&out, "backup 20240402010101 is not restorable");
    assert!(stdout(&out).contains("MISSING  gpbackup_0_20240402010101_16384.gz"), "{}", stdout(&out));
}

/// Everything but `expire --yes` works with credentials that may only list,
/// get and head: a proxy refuses every other request as a bucket policy
/// would.
#[test]
fn read_only_credentials_are_enough() {
    let server = Server::start();
    let proxy = fault_proxy::FaultProxy::start(
        &server.endpoint,
        fault_proxy::Faults { read_only: true, ..Default::default() },
        3,
    );
    let writer = Cluster::new(&server, &[]);
    Spec::full("20240101010101").store(&writer);
    Spec::incremental("20240102010101", &["20240101010101"]).store(&writer);
    Spec::full("20231201010101").store(&writer);
    let c = Cluster::with_folder(&server, &writer.folder, &[("endpoint", &proxy.endpoint)]);
    let db = temp_path(&c, "gpbackup_history.db");
    for args in [
        &["backups"][..],
        &["backups", "--json"],
        &["verify", "20240102010101", "--deep"],
        &["expire", "--keep-last", "1"],
        &["history", "export", "--db", db.to_str().unwrap()],
    ] {
        assert_ok(&cli(&c, args));
    }
    assert_eq!(proxy.stats.denials.load(std::sync::atomic::Ordering::Relaxed), 0, "nothing but reads was sent");
    assert_fails_with(&cli(&c, &["expire", "--keep-last", "1", "--older-than", "1d"]), "--keep-last");
    let out = cli(&c, &["expire", "--older-than", "1d", "--yes"]);
    assert_fails_with(&out, "1 of 1 deletes did not happen");
    assert!(line_with(&stdout(&out), "FAILED   20231201010101").contains("AccessDenied"), "{}", stdout(&out));
    assert!(has_backup(&writer, "20231201010101") && has_backup(&writer, "20240101010101"));
}

/// Bad input: one line on stderr naming the option or argument, exit 2 for
/// a command line, no panic.
#[test]
fn bad_input_is_one_line_naming_the_option() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let run = |args: &[&str]| cli(&c, args);
    for (args, needle) in [
        (&["expire"][..], "--keep-last"),
        (&["expire", "--keep-last", "0"], "--keep-last"),
        (&["expire", "--older-than", "3x"], "--older-than"),
        // A bare number was seconds: `--older-than 30` kept only the last
        // 30 seconds. Durations need a unit.
        (&["expire", "--older-than", "30"], "--older-than"),
        (&["expire", "--keep-last", "2", "--grace", "60"], "--grace"),
        (&["expire", "--keep-last", "2", "--grace", "soon"], "--grace"),
        (&["expire", "--keep-last", "2", "--keep-daily", "x"], "--keep-daily"),
        (&["verify", "2024"], "timestamp \"2024\""),
        (&["verify"], "<TIMESTAMP>"),
        (&["history", "export"], "--db"),
        (&["backups", "--deep"], "--deep"),
    ] {
        let out = run(args);
        assert_fails_with(&out, needle);
        assert!(out.stdout.is_empty(), "{args:?}: stdout is for data");
    }
    assert_eq!(run(&["expire"]).status.code(), Some(2));
    let out = run(&["verify", "20240101010101"]);
    assert_fails_with(&out, "backup 20240101010101: no objects under s3://");
    let out = run(&["history", "export", "--db", "/nonexistent/dir/h.db"]);
    assert_fails_with(&out, "/nonexistent/dir/h.db");
    let out = run_plugin(&["backups".into(), "/nonexistent.yaml".into()], b"", &c.home);
    assert_fails_with(&out, "/nonexistent.yaml");
}
