//! `storage: glacier`: payloads in a Glacier vault, everything else and the
//! catalog in the bucket. The bucket is a real S3 server (s3s-fs), the vault
//! a real emulator process: moto (single-request archives, retrieval jobs
//! that finish seconds later, live inventories) or fakecloud (multipart
//! uploads with part-size and tree-hash checks, Vault Lock). No emulator
//! enforces a lock policy on DeleteArchive, so the refusal a Locked vault
//! answers is injected by a proxy in front of the real emulator.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20261122093000";

struct Setup {
    s3: Server,
    glacier: Glacier,
    cluster: Cluster,
    vault: String,
}

impl Setup {
    fn new(glacier: Glacier, extra: &[(&str, &str)]) -> Setup {
        let s3 = Server::start();
        Setup::with(s3, glacier, extra)
    }

    fn with(s3: Server, glacier: Glacier, extra: &[(&str, &str)]) -> Setup {
        let vault = format!("gpbackup-{}", std::process::id() ^ (glacier.endpoint.len() as u32));
        let endpoint = glacier.endpoint.clone();
        let mut options: Vec<(&str, &str)> = vec![
            ("storage", "glacier"),
            ("vault", &vault),
            ("glacier_endpoint", &endpoint),
            ("restore_tier", "Expedited"),
        ];
        options.extend_from_slice(extra);
        let cluster = Cluster::new(&s3, &options);
        Setup { s3, glacier, cluster, vault }
    }

    fn dir(&self) -> String {
        self.cluster.backup_dir("coordinator", TS).display().to_string()
    }

    fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.dir())
    }

    fn setup_backup(&self) {
        assert_ok(&self.cluster.run("setup_plugin_for_backup", &[&self.dir(), "master", "\"-1\""], b""));
    }

    fn backup(&self, file: &str, data: &[u8]) {
        assert_ok(&self.cluster.run("backup_data", &[&self.path(file)], data));
    }

    fn restore(&self, file: &str) -> std::process::Output {
        self.cluster.run("restore_data", &[&self.path(file)], b"")
    }

    fn thaw(&self) -> String {
        let out = self.cluster.run("thaw", &[TS, "--wait", "--timeout", "2m"], b"");
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn listing(&self) -> String {
        let out = self.cluster.run("list_directory", &[], b"");
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn entry_key(&self, file: &str) -> String {
        format!("{}.gpbackup_vault", self.cluster.key(TS, file))
    }
}

fn data_file(n: u32) -> String {
    format!("gpbackup_{n}_{TS}_17000.gz")
}

#[test]
fn backup_thaw_restore_and_delete_on_moto() {
    let t = Setup::new(Glacier::moto(), &[("vault_part_size", "4MB")]);
    t.setup_backup();
    let metadata = t.path(&format!("gpbackup_{TS}_metadata.sql"));
    std::fs::write(&metadata, b"CREATE TABLE t (a int);\n").unwrap();
    assert_ok(&t.cluster.run("backup_file", &[&metadata], b""));
    // Unique payloads: moto names archives by the MD5 of their bytes.
    let small = data(100_000, 1);
    let large = data(1_500_000, 2); // above 1 MiB: tree hash and SHA-256 differ
    t.backup(&data_file(0), &small);
    t.backup(&data_file(1), &large);
    t.backup(&data_file(2), b"");

    // The bucket holds the metadata file and one catalog entry per payload;
    // the listing shows payload keys with their sizes, as on S3.
    let listing = t.listing();
    assert!(listing.contains(&format!("{}\t1500000", t.cluster.key(TS, &data_file(1)))), "{listing}");
    assert!(!listing.contains(".gpbackup_vault"), "{listing}");
    let entry = t.s3.curl(&format!("{}/{}", t.s3.bucket, t.entry_key(&data_file(1))), &[]);
    let entry = String::from_utf8_lossy(&entry.stdout);
    assert!(entry.contains("\"archive_id\"") && entry.contains(&format!("\"vault\": \"{}\"", t.vault)), "{entry}");

    // The preflight describes the vault and round-trips a probe archive.
    let check = t.cluster.run("check", &[], b"");
    assert_ok(&check);
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains(&format!("archives in Glacier vault {}", t.vault)), "{text}");
    assert!(text.contains("arn:aws:glacier:") && text.contains("all checks passed"), "{text}");

    // Before a thaw, a restore fails at once, naming the way out, and
    // writes nothing.
    let out = t.restore(&data_file(1));
    assert_fails_with(&out, "thaw");
    assert!(out.stdout.is_empty());
    let out = t.cluster.run("setup_plugin_for_restore", &[&t.dir(), "master", "\"-1\""], b"");
    assert_fails_with(&out, &format!("thaw <plugin config> {TS}"));
    let status = t.cluster.run("thaw", &[TS, "--status"], b"");
    assert_ok(&status);
    assert!(String::from_utf8_lossy(&status.stdout).contains("2 archived without a restore"), "{status:?}");

    let report = t.thaw();
    assert!(
        report.contains("requested 2 restores (tier Expedited, downloadable for 24 hours after each job ends)")
            && report.contains("readable until"),
        "{report}"
    );
    // A second thaw starts nothing new.
    let again = t.thaw();
    assert!(!again.contains("requested"), "{again}");
    assert_ok(&t.cluster.run("setup_plugin_for_restore", &[&t.dir(), "master", "\"-1\""], b""));

    for (file, expected) in [(data_file(0), &small), (data_file(1), &large)] {
        let out = t.restore(&file);
        assert_ok(&out);
        assert!(out.stdout == *expected, "{file}: {} bytes back", out.stdout.len());
    }
    let out = t.restore(&data_file(2));
    assert_ok(&out);
    assert!(out.stdout.is_empty());
    let offsets = t.cluster.dir.path().join("offsets");
    std::fs::write(&offsets, "2 10 20 1048570 1048600").unwrap();
    let out = t.cluster.run("restore_data_subset", &[&t.path(&data_file(1)), offsets.to_str().unwrap()], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, [&large[10..20], &large[1_048_570..1_048_600]].concat());
    std::fs::remove_file(&metadata).unwrap();
    assert_ok(&t.cluster.run("restore_file", &[&metadata], b""));
    assert_eq!(std::fs::read(&metadata).unwrap(), b"CREATE TABLE t (a int);\n");

    // delete_backup removes archives, entries and files; the vault's own
    // inventory (live on moto) then holds none of this plugin's archives.
    assert_ok(&t.cluster.run("delete_backup", &[TS], b""));
    assert!(!t.listing().contains(TS), "{}", t.listing());
    let out = t.cluster.run("rebuild-catalog", &["--wait", "--timeout", "2m"], b"");
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0 written by this plugin"), "{text}");
    // Rerunning a delete of a deleted backup is fine.
    assert_ok(&t.cluster.run("delete_backup", &[TS], b""));
}

/// The vault backend's files in a versioned bucket (moto): catalog entries
/// and metadata, one of them written twice, leave no version and no delete
/// marker after delete_backup (plain deletes would only add markers).
#[test]
fn bucket_files_in_a_versioned_bucket_leave_no_version_after_delete_backup() {
    use crate::object_lock::{versioned_bucket, versions};
    let s3 = Server::start_moto();
    let bucket = versioned_bucket(&s3);
    let t = Setup::with(s3, Glacier::moto(), &[("bucket", &bucket)]);
    t.setup_backup();
    let metadata = t.path(&format!("gpbackup_{TS}_metadata.sql"));
    for text in ["CREATE TABLE t (a int);\n", "CREATE TABLE t (a int, b int);\n"] {
        std::fs::write(&metadata, text).unwrap();
        assert_ok(&t.cluster.run("backup_file", &[&metadata], b""));
    }
    t.backup(&data_file(0), &data(100_000, 7));
    let prefix = format!("{}/backups/{}/{TS}/", t.cluster.folder, &TS[..8]);
    let before = versions(&t.s3, &bucket, &prefix);
    assert!(before.len() >= 3 && before.iter().any(|(k, _, _)| k.ends_with(".gpbackup_vault")), "{before:?}");
    assert_ok(&t.cluster.run("delete_backup", &[TS], b""));
    assert_eq!(versions(&t.s3, &bucket, &prefix), vec![], "versions left after delete_backup");
}

#[test]
fn rebuild_catalog_from_the_inventory_after_losing_entries() {
    let t = Setup::new(Glacier::moto(), &[]);
    t.setup_backup();
    let payloads: Vec<Vec<u8>> = (0..2).map(|i| data(50_000 + i * 1000, 40 + i as u64)).collect();
    for (i, p) in payloads.iter().enumerate() {
        t.backup(&data_file(i as u32), p);
    }
    for i in 0..2 {
        let out = t.s3.curl(&format!("{}/{}", t.s3.bucket, t.entry_key(&data_file(i))), &["-X", "DELETE"]);
        assert!(out.status.success());
    }
    assert!(!t.listing().contains(TS));
    assert!(!t.restore(&data_file(0)).status.success());

    let out = t.cluster.run("rebuild-catalog", &["--wait", "--timeout", "2m"], b"");
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 catalog entries written again"), "{text}");
    // An inventory is a snapshot: its date, and what that means.
    let dated = text.lines().find(|l| l.contains("inventory dated ")).unwrap_or_else(|| panic!("{text}"));
    assert!(dated.contains("not in it") && dated.contains("run rebuild-catalog again after"), "{dated}");
    t.thaw();
    for (i, p) in payloads.iter().enumerate() {
        let out = t.restore(&data_file(i as u32));
        assert_ok(&out);
        assert!(out.stdout == *p);
    }
    // Entries that exist are left alone.
    let out = t.cluster.run("rebuild-catalog", &["--wait", "--timeout", "2m"], b"");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 catalog entries written again"));
}

#[test]
fn restore_setup_can_start_and_wait_for_retrievals() {
    let t = Setup::new(Glacier::moto(), &[("restore_auto", "true"), ("restore_wait_timeout", "2m")]);
    t.setup_backup();
    let payload = data(70_000, 77);
    t.backup(&data_file(0), &payload);
    assert_ok(&t.cluster.run("setup_plugin_for_restore", &[&t.dir(), "master", "\"-1\""], b""));
    let out = t.restore(&data_file(0));
    assert_ok(&out);
    assert!(out.stdout == payload);
}

#[test]
fn multipart_archives_round_trip_with_tree_hashes_on_fakecloud() {
    let t = Setup::new(Glacier::fakecloud(), &[("vault_part_size", "1MB"), ("restore_multipart_chunksize", "5MB")]);
    t.setup_backup();
    // 5.5 MiB + 123 bytes: six parts, the last short; exactly 3 MiB: three.
    let odd = data(5 * 1024 * 1024 + 512 * 1024 + 123, 5);
    let even = data(3 * 1024 * 1024, 6);
    t.backup(&data_file(0), &odd);
    t.backup(&data_file(1), &even);
    let entry = t.s3.curl(&format!("{}/{}", t.s3.bucket, t.entry_key(&data_file(0))), &[]);
    let entry = String::from_utf8_lossy(&entry.stdout);
    assert!(entry.contains("\"part_size\": 1048576") && entry.contains(&format!("\"size\": {}", odd.len())), "{entry}");

    // Files in the bucket keep S3's part rules (parts of at least 5 MiB,
    // which s3s-fs enforces), whatever the vault's part size.
    let toc = t.path(&format!("gpbackup_{TS}_toc.yaml"));
    let toc_bytes = data(12 * 1024 * 1024 + 5, 8);
    std::fs::write(&toc, &toc_bytes).unwrap();
    assert_ok(&t.cluster.run("backup_file", &[&toc], b""));
    std::fs::remove_file(&toc).unwrap();
    assert_ok(&t.cluster.run("restore_file", &[&toc], b""));
    assert!(std::fs::read(&toc).unwrap() == toc_bytes);

    assert_fails_with(&t.restore(&data_file(0)), "thaw");
    t.thaw();
    for (file, expected) in [(data_file(0), &odd), (data_file(1), &even)] {
        let out = t.restore(&file);
        assert_ok(&out);
        assert!(out.stdout == *expected, "{file}: {} bytes back", out.stdout.len());
    }
    let offsets = t.cluster.dir.path().join("offsets");
    std::fs::write(&offsets, "1 1048000 4300000").unwrap();
    let out = t.cluster.run("restore_data_subset", &[&t.path(&data_file(0)), offsets.to_str().unwrap()], b"");
    assert_ok(&out);
    assert!(out.stdout == odd[1_048_000..4_300_000]);

    // A catalog entry whose tree hash is not the archive's: the restore
    // fails before the first byte (the retrieval job reports the archive's
    // own tree hash), or at the latest before the last bytes go out.
    let key = t.entry_key(&data_file(1));
    let text = String::from_utf8_lossy(&t.s3.curl(&format!("{}/{key}", t.s3.bucket), &[]).stdout).into_owned();
    let start = text.find("\"tree_hash\": \"").unwrap() + 14;
    let mut damaged = text.clone();
    damaged.replace_range(start..start + 64, &"0".repeat(64));
    let file = t.cluster.dir.path().join("entry.json");
    std::fs::write(&file, damaged).unwrap();
    let put =
        t.s3.curl(&format!("{}/{key}", t.s3.bucket), &["-X", "PUT", "--data-binary", &format!("@{}", file.display())]);
    assert!(put.status.success());
    let out = t.restore(&data_file(1));
    assert_fails_with(&out, "tree hash");
    assert!(out.stdout.is_empty(), "{} bytes written", out.stdout.len());
}

#[test]
fn vault_lock_lifecycle_on_fakecloud() {
    let t = Setup::new(Glacier::fakecloud(), &[]);
    t.setup_backup(); // creates the vault
    let config = t.cluster.config.display().to_string();
    let lock = |args: &[&str]| {
        let mut full = vec!["vault-lock".to_string(), args[0].to_string(), config.clone()];
        full.extend(args[1..].iter().map(|s| s.to_string()));
        run_plugin(&full, b"", &t.cluster.home)
    };
    let stdout = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let policy = t.cluster.dir.path().join("policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"deny-young-deletes","Principal":"*","Effect":"Deny","Action":"glacier:DeleteArchive","Resource":"arn:aws:glacier:us-east-1:123456789012:vaults/v","Condition":{"NumericLessThan":{"glacier:ArchiveAgeInDays":"365"}}}]}"#,
    )
    .unwrap();
    let policy = policy.display().to_string();

    let out = lock(&["status"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("no lock policy"), "{}", stdout(&out));

    let out = lock(&["initiate", "--policy-file", &policy]);
    assert_ok(&out);
    let text = stdout(&out);
    let lock_id = text.lines().find_map(|l| l.strip_prefix("lock id: ")).expect("lock id").to_string();
    assert!(text.contains("complete by"), "{text}");
    let out = lock(&["status"]);
    assert!(stdout(&out).contains("state InProgress") && stdout(&out).contains("ArchiveAgeInDays"), "{}", stdout(&out));
    assert_fails_with(&lock(&["initiate", "--policy-file", &policy]), "vault-lock abort");

    assert_ok(&lock(&["abort"]));
    assert!(stdout(&lock(&["status"])).contains("no lock policy"));

    let out = lock(&["initiate", "--policy-file", &policy]);
    assert_ok(&out);
    let second = stdout(&out).lines().find_map(|l| l.strip_prefix("lock id: ")).unwrap().to_string();
    // Completing is never implicit: without the flag nothing happens.
    assert_fails_with(&lock(&["complete", "--lock-id", &second]), "--i-understand-this-is-irreversible");
    assert!(stdout(&lock(&["status"])).contains("state InProgress"));
    let _ = lock_id;
    assert_ok(&lock(&["complete", "--lock-id", &second, "--i-understand-this-is-irreversible"]));
    assert!(stdout(&lock(&["status"])).contains("state Locked"));
    assert_fails_with(&lock(&["initiate", "--policy-file", &policy]), "can never be replaced");
    assert_fails_with(&lock(&["abort"]), "can never be aborted");

    // Bad policy files are refused before any request.
    let big = t.cluster.dir.path().join("big.json");
    std::fs::write(&big, format!("{{\"x\":\"{}\"}}", "a".repeat(21 * 1024))).unwrap();
    assert_fails_with(&lock(&["initiate", "--policy-file", big.to_str().unwrap()]), "at most 20480");
    std::fs::write(&big, "not json").unwrap();
    assert_fails_with(&lock(&["initiate", "--policy-file", big.to_str().unwrap()]), "not valid JSON");
}

#[test]
fn retention_locked_deletes_fail_or_defer_then_purge() {
    let glacier = Glacier::fakecloud();
    // What a Locked vault answers to DeleteArchive of a young archive.
    let proxy = FaultProxy::start(
        &glacier.endpoint,
        Faults { deny: 1.0, only: Some(("DELETE ", "/archives/")), ..Faults::default() },
        7,
    );
    let s3 = Server::start();
    let direct = Cluster::new(&s3, &[]); // only for its folder
    let folder = direct.folder.clone();
    let make = |endpoint: &str, mode: &str| {
        let vault = "locked-vault".to_string();
        Cluster::with_folder(
            &s3,
            &folder,
            &[
                ("storage", "glacier"),
                ("vault", &vault),
                ("glacier_endpoint", endpoint),
                ("restore_tier", "Expedited"),
                ("on_retention_locked", mode),
            ],
        )
    };
    let fail = make(&proxy.endpoint, "fail");
    let defer = make(&proxy.endpoint, "defer");
    let unlocked = make(&glacier.endpoint, "fail");
    let dir = fail.backup_dir("coordinator", TS).display().to_string();
    assert_ok(&fail.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    let payload = data(200_000, 9);
    assert_ok(&fail.run("backup_data", &[&format!("{dir}/{}", data_file(0))], &payload));
    let meta = format!("{dir}/gpbackup_{TS}_toc.yaml");
    std::fs::write(&meta, b"toc").unwrap();
    assert_ok(&fail.run("backup_file", &[&meta], b""));
    let listing = |c: &Cluster| String::from_utf8_lossy(&c.run("list_directory", &[], b"").stdout).into_owned();

    // fail: the refusal is reported and nothing of the backup is deleted.
    let out = fail.run("delete_backup", &[TS], b"");
    assert_fails_with(&out, "retention lock");
    assert!(stderr(&out).contains("on_retention_locked: defer"), "{}", stderr(&out));
    let before = listing(&fail);
    assert!(before.contains("_toc.yaml") && before.contains(&data_file(0)), "{before}");

    // defer: the rest goes, the archive and its entry stay for purge.
    assert_ok(&defer.run("delete_backup", &[TS], b""));
    let after = listing(&defer);
    assert!(!after.contains("_toc.yaml") && after.contains(&data_file(0)), "{after}");
    assert!(defer.log_text().contains("kept for `purge`"));
    // While the lock still refuses, purge keeps it (whatever the mode).
    for c in [&defer, &fail] {
        let out = c.run("purge", &[], b"");
        assert_ok(&out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 still refused"), "{out:?}");
    }
    // Once allowed (here: no lock in the way), purge deletes it.
    let out = unlocked.run("purge", &[], b"");
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 deferred deletes found, 1 done, 0 still"), "{out:?}");
    assert!(!listing(&unlocked).contains(TS));
    assert!(proxy.stats.denials.load(std::sync::atomic::Ordering::Relaxed) >= 3);
}

#[test]
fn cleanup_aborts_vault_uploads_of_killed_backups() {
    let t = Setup::new(Glacier::fakecloud(), &[("vault_part_size", "1MB")]);
    t.setup_backup();
    let uploads = || t.glacier.request(&t.s3, "GET", &format!("{}/multipart-uploads", t.vault));
    // A backup_data killed after sending a few parts leaves its upload open.
    let mut child = Command::new(&*PLUGIN)
        .args(["backup_data", t.cluster.config.to_str().unwrap(), &t.path(&data_file(0))])
        .env("HOME", &t.cluster.home)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(&data(3 * 1024 * 1024 + 10, 3)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !uploads().contains("MultipartUploadId") {
        assert!(std::time::Instant::now() < deadline, "no upload started: {}", uploads());
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(uploads().contains("MultipartUploadId"));

    assert_ok(&t.cluster.run("cleanup_plugin_for_backup", &[&t.dir(), "master", "\"-1\""], b""));
    assert!(!uploads().contains("MultipartUploadId"), "{}", uploads());
    assert!(!t.listing().contains(TS));
}

#[test]
fn vault_transfers_survive_dropped_connections() {
    let glacier = Glacier::fakecloud();
    // One request in five is dropped unanswered: uploads of parts,
    // completions, job requests and downloads are each retried alone.
    let proxy = FaultProxy::start(&glacier.endpoint, Faults { reset: 0.2, ..Faults::default() }, 11);
    let proxied = proxy.endpoint.clone();
    let t = Setup::new(glacier, &[("vault_part_size", "1MB"), ("glacier_endpoint", &proxied)]);
    t.setup_backup();
    let payload = data(4 * 1024 * 1024 + 777, 12);
    t.backup(&data_file(0), &payload);
    t.thaw();
    let out = t.restore(&data_file(0));
    assert_ok(&out);
    assert!(out.stdout == payload, "{} bytes back", out.stdout.len());
    let resets = proxy.stats.resets.load(std::sync::atomic::Ordering::Relaxed);
    assert!(resets > 0, "no fault was injected");
    assert!(t.cluster.log_text().contains("retrying"), "retries are logged");
}
