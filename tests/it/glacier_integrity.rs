//! The vault backend's promise, tried the hard way: every archive named by
//! exactly one catalog entry, every entry naming a live archive, through a
//! mistyped vault, kills, lost answers, retention locks, failed catalog
//! writes, damaged entries and replaced backups. Each test ends with the
//! one-to-one check against a fresh inventory.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20261122093000";
const MIB: usize = 1 << 20;

struct Vault {
    s3: Server,
    glacier: Glacier,
    name: String,
    folder: String,
}

impl Vault {
    fn new() -> Vault {
        let s3 = Server::start();
        let glacier = Glacier::fakecloud();
        let name = format!("integrity-{}-{}", std::process::id(), glacier.endpoint.len());
        let folder = unique_folder("gp");
        Vault { s3, glacier, name, folder }
    }

    /// A cluster on this vault, its requests through `glacier` and `s3`
    /// endpoints (proxies, or the servers themselves).
    fn cluster(&self, glacier: Option<&str>, s3: Option<&str>, extra: &[(&str, &str)]) -> Cluster {
        let mut options: Vec<(&str, &str)> = vec![
            ("storage", "glacier"),
            ("vault", &self.name),
            ("glacier_endpoint", glacier.unwrap_or(&self.glacier.endpoint)),
            ("restore_tier", "Expedited"),
            ("vault_part_size", "1MB"),
        ];
        if let Some(s3) = s3 {
            options.push(("endpoint", s3));
        }
        options.extend_from_slice(extra);
        Cluster::with_folder(&self.s3, &self.folder, &options)
    }

    fn setup(&self, c: &Cluster) -> String {
        let dir = c.backup_dir("coordinator", TS).display().to_string();
        assert_ok(&c.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
        dir
    }

    fn entry_key(&self, file: &str) -> String {
        format!("{}/backups/{}/{TS}/{file}.gpbackup_vault", self.folder, &TS[..8])
    }

    fn entry_file(&self, file: &str) -> std::path::PathBuf {
        self.s3.object_file(&self.entry_key(file)).unwrap()
    }

    /// The entry's text, as stored.
    fn read_entry(&self, file: &str) -> String {
        String::from_utf8_lossy(&self.s3.curl(&format!("{}/{}", self.s3.bucket, self.entry_key(file)), &[]).stdout)
            .into_owned()
    }

    /// Replaces an entry through S3 (the server keeps its checksum).
    fn write_entry(&self, file: &str, text: &str) {
        let local = std::env::temp_dir().join(format!("entry-{}-{file}", std::process::id()));
        std::fs::write(&local, text).unwrap();
        let key = self.entry_key(file);
        let out = self.s3.curl(
            &format!("{}/{key}", self.s3.bucket),
            &["-X", "PUT", "--data-binary", &format!("@{}", local.display())],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    fn one_to_one(&self) {
        self.glacier.assert_one_to_one(&self.s3, &self.name, &self.folder);
    }
}

fn file(n: u32) -> String {
    format!("gpbackup_{n}_{TS}_17000.gz")
}

fn listing(c: &Cluster) -> String {
    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_config_naming_another_vault_deletes_nothing() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    assert_ok(&c.run("backup_data", &[&format!("{dir}/{}", file(0))], &data(3 * MIB, 1)));
    let typo = Cluster::with_folder(
        &v.s3,
        &v.folder,
        &[("storage", "glacier"), ("vault", "no-such-vault"), ("glacier_endpoint", &v.glacier.endpoint)],
    );
    for args in [&["delete_backup", TS][..], &["thaw", TS, "--status"]] {
        let out = typo.run(args[0], &args[1..], b"");
        assert_fails_with(&out, &format!("names vault {}, but the plugin config names vault no-such-vault", v.name));
    }
    assert!(listing(&c).contains(&file(0)), "the backup is untouched");
    // An entry that names a vault which does not exist: an error, never
    // "already deleted".
    let text = v.read_entry(&file(0));
    v.write_entry(&file(0), &text.replace(&v.name, "no-such-vault"));
    assert_fails_with(&typo.run("delete_backup", &[TS], b""), "vault no-such-vault does not exist");
    v.write_entry(&file(0), &text);
    v.one_to_one();
}

#[test]
fn a_kill_after_the_archive_and_before_its_entry_is_settled_by_cleanup() {
    let v = Vault::new();
    // The current entry's PUT is held back long enough to kill the upload
    // between "archive exists" and "entry written".
    let proxy = FaultProxy::start(
        &v.s3.endpoint,
        Faults {
            delay: Duration::from_secs(20),
            only: Some(("PUT ", ".gpbackup_vault")),
            skip: Some(".intent-"),
            ..Faults::default()
        },
        1,
    );
    let slow = v.cluster(None, Some(&proxy.endpoint), &[]);
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    let mut child = Command::new(&*PLUGIN)
        .args(["backup_data", slow.config.to_str().unwrap(), &format!("{dir}/{}", file(0))])
        .env("HOME", &c.home)
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&data(3 * MIB + 5, 2)).unwrap();
    let intent = || {
        std::fs::read_dir(v.entry_file(&file(0)).parent().unwrap())
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(".intent-")))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    // Completed and waiting on the entry: the archive exists, unnamed.
    while !(intent() && proxy.stats.requests.load(std::sync::atomic::Ordering::Relaxed) > 0) {
        assert!(Instant::now() < deadline, "the upload never got to its entry");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    if listing(&c).contains(".intent-") {
        // Completing an upload again answers the same archive on AWS (for
        // a short period); fakecloud forgets completed uploads, so only an
        // inventory finds the archive: the cleanup says so, and
        // rebuild-catalog settles it.
        assert!(c.log_text().contains("run rebuild-catalog"), "{}", c.log_text());
        let out = c.run("rebuild-catalog", &["--wait", "--timeout", "2m"], b"");
        assert_ok(&out);
        assert!(String::from_utf8_lossy(&out.stdout).contains("1 archives of interrupted uploads deleted"), "{out:?}");
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    }
    assert!(!listing(&c).contains(&file(0)), "{}", listing(&c));
    v.one_to_one();
}

#[test]
fn a_completion_whose_answer_is_lost_makes_one_archive() {
    let v = Vault::new();
    let proxy = FaultProxy::start(
        &v.glacier.endpoint,
        Faults { truncate: 1.0, only: Some(("POST ", "/multipart-uploads/")), ..Faults::default() },
        3,
    );
    let c = v.cluster(Some(&proxy.endpoint), None, &[("retry_max_attempts", "3")]);
    let dir = v.setup(&c);
    let payload = data(2 * MIB + 17, 3);
    let out = c.run("backup_data", &[&format!("{dir}/{}", file(0))], &payload);
    // Every answer is cut: the backup fails or succeeds, but never leaves
    // an archive nobody names.
    let _ = out;
    let plain = v.cluster(None, None, &[]);
    assert_ok(&plain.run("cleanup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    v.one_to_one();
}

#[test]
fn a_refused_delete_midway_leaves_no_entry_without_its_archive() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    for n in 0..2 {
        assert_ok(&c.run("backup_data", &[&format!("{dir}/{}", file(n))], &data(100_000 + n as usize, 4)));
    }
    // The lock refuses the second archive only.
    let second = v.read_entry(&file(1));
    let json: serde_json::Value = serde_json::from_str(&second).unwrap();
    let archive: &'static str = Box::leak(json["archive_id"].as_str().unwrap().to_string().into_boxed_str());
    let proxy = FaultProxy::start(
        &v.glacier.endpoint,
        Faults { deny: 1.0, only: Some(("DELETE ", archive)), ..Faults::default() },
        5,
    );
    let locked = v.cluster(Some(&proxy.endpoint), None, &[("on_retention_locked", "fail")]);
    assert_fails_with(&locked.run("delete_backup", &[TS], b""), "retention lock");
    let left = listing(&c);
    assert!(!left.contains(&file(0)) && left.contains(&file(1)), "{left}");
    // What is listed is readable: nothing points at a deleted archive.
    assert_ok(&c.run("thaw", &[TS, "--wait", "--timeout", "1m"], b""));
    v.one_to_one();
}

#[test]
fn a_catalog_write_that_failed_after_storing_leaves_nothing() {
    let v = Vault::new();
    let proxy = FaultProxy::start(
        &v.s3.endpoint,
        Faults {
            fail_after_forward: 1.0,
            only: Some(("PUT ", ".gpbackup_vault")),
            skip: Some(".intent-"),
            ..Faults::default()
        },
        6,
    );
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    let failing = v.cluster(None, Some(&proxy.endpoint), &[("retry_max_attempts", "1")]);
    assert!(!failing.run("backup_data", &[&format!("{dir}/{}", file(0))], &data(200_000, 6)).status.success());
    assert!(!listing(&c).contains(&file(0)), "{}", listing(&c));
    v.one_to_one();
}

#[test]
fn damaged_entries_are_reported_and_rebuilt() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    let payloads: Vec<Vec<u8>> = (0..2).map(|n| data(150_000 + n, 7 + n as u64)).collect();
    for (n, p) in payloads.iter().enumerate() {
        assert_ok(&c.run("backup_data", &[&format!("{dir}/{}", file(n as u32))], p));
    }
    v.write_entry(&file(0), "{ damaged");
    // The listing and the survey go on; the damaged entry is named.
    assert!(listing(&c).contains(&file(1)));
    assert_ok(&c.run("thaw", &[TS, "--status"], b""));
    assert!(c.log_text().contains("is damaged"), "{}", c.log_text());
    let out = c.run("rebuild-catalog", &["--wait", "--timeout", "2m"], b"");
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 damaged entries written again"), "{out:?}");
    assert_ok(&c.run("thaw", &[TS, "--wait", "--timeout", "1m"], b""));
    let out = c.run("restore_data", &[&format!("{dir}/{}", file(0))], b"");
    assert_ok(&out);
    assert!(out.stdout == payloads[0]);
    v.one_to_one();
}

#[test]
fn check_against_a_locked_vault_says_what_became_of_its_probe() {
    let v = Vault::new();
    let proxy = FaultProxy::start(
        &v.glacier.endpoint,
        Faults { deny: 1.0, only: Some(("DELETE ", "/archives/")), ..Faults::default() },
        8,
    );
    let c = v.cluster(None, None, &[]);
    v.setup(&c);
    let fail = v.cluster(Some(&proxy.endpoint), None, &[("on_retention_locked", "fail")]);
    assert_fails_with(&fail.run("check", &[], b""), "kept");
    let defer = v.cluster(Some(&proxy.endpoint), None, &[("on_retention_locked", "defer")]);
    let out = defer.run("check", &[], b"");
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("purge") && !text.contains("data probe             deleted"), "{text}");
    // Both probes are found by purge and deleted once allowed.
    let out = c.run("purge", &[], b"");
    assert_ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 deferred deletes found, 2 done"), "{out:?}");
    v.one_to_one();
}

#[test]
fn backing_up_a_key_twice_leaves_one_archive() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    let path = format!("{dir}/{}", file(0));
    assert_ok(&c.run("backup_data", &[&path], &data(3 * MIB, 9)));
    let second = data(2 * MIB + 3, 10);
    assert_ok(&c.run("backup_data", &[&path], &second));
    assert_ok(&c.run("backup_data", &[&format!("{dir}/{}", file(1))], b""));
    assert_ok(&c.run("backup_data", &[&format!("{dir}/{}", file(1))], &data(1000, 11)));
    v.one_to_one();
    assert_ok(&c.run("thaw", &[TS, "--wait", "--timeout", "1m"], b""));
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == second);
}

#[test]
fn an_entry_naming_the_wrong_archive_emits_nothing() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let dir = v.setup(&c);
    let path = format!("{dir}/{}", file(0));
    assert_ok(&c.run("backup_data", &[&path], &data(3 * MIB, 12)));
    assert_ok(&c.run("thaw", &[TS, "--wait", "--timeout", "1m"], b""));
    // As a rebuilt entry without its manifest, and with another archive's
    // tree hash: only the job's own report of the archive can tell.
    let mut json: serde_json::Value = serde_json::from_str(&v.read_entry(&file(0))).unwrap();
    json["metadata"] = serde_json::json!([]);
    json["tree_hash"] = serde_json::json!("0".repeat(64));
    v.write_entry(&file(0), &serde_json::to_string_pretty(&json).unwrap());
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "tree hash");
    assert!(out.stdout.is_empty(), "{} bytes of the wrong archive were written", out.stdout.len());
}

#[test]
fn vault_lock_status_of_a_missing_vault_is_an_error() {
    let v = Vault::new();
    let c = v.cluster(None, None, &[]);
    let out = run_plugin(&["vault-lock".into(), "status".into(), c.config.display().to_string()], b"", &c.home);
    assert_fails_with(&out, "does not exist");
}
