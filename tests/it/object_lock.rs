//! S3 Object Lock and versioned buckets, against a real moto server (the
//! local server that implements versioning, retention, legal holds and
//! their enforcement on DeleteObject with a version id): locked writes
//! (single PUT and multipart, payloads, manifests and metadata), an
//! attacker holding the backup key, delete_backup under retention (`fail`
//! and `defer`), `purge` after a short retention, the GOVERNANCE bypass,
//! legal holds, `retention extend`, versioned buckets without a lock, and
//! a bucket that cannot lock. moto does not apply the lock headers of
//! CreateMultipartUpload: the multipart objects here are locked by the
//! plugin's read-back and PutObjectRetention, which is what these tests
//! check (on AWS the headers already do it and the read-back confirms it).

use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20250102030405";
const MIB: usize = 1 << 20;

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bucket of its own on `server` with Object Lock (and so versioning).
fn lock_bucket(server: &Server) -> String {
    let bucket = format!("{}-lock", server.bucket);
    let out = server.curl(&bucket, &["-X", "PUT", "-H", "x-amz-bucket-object-lock-enabled: true"]);
    assert!(out.status.success(), "create lock bucket: {}", text(&out));
    bucket
}

/// A bucket of its own with versioning and no lock.
fn versioned_bucket(server: &Server) -> String {
    let bucket = format!("{}-ver", server.bucket);
    let out = server.curl(&bucket, &["-X", "PUT"]);
    assert!(out.status.success(), "create bucket: {}", text(&out));
    let body = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let out = server.curl(
        &format!("{bucket}?versioning"),
        &["-X", "PUT", "-H", "Content-Type: application/xml", "--data-binary", body],
    );
    assert!(out.status.success(), "enable versioning: {}", text(&out));
    bucket
}

/// (key, version id, is a delete marker) of every version under `prefix`.
fn versions(server: &Server, bucket: &str, prefix: &str) -> Vec<(String, String, bool)> {
    let out = server.curl(&format!("{bucket}?versions&prefix={prefix}"), &[]);
    assert!(out.status.success(), "list versions: {}", text(&out));
    let xml = text(&out);
    let mut found = Vec::new();
    for (tag, marker) in [("Version", false), ("DeleteMarker", true)] {
        for chunk in xml.split(&format!("<{tag}>")).skip(1) {
            let field = |name: &str| {
                chunk
                    .split(&format!("<{name}>"))
                    .nth(1)
                    .and_then(|r| r.split(&format!("</{name}>")).next())
                    .unwrap_or("")
                    .to_string()
            };
            found.push((field("Key"), field("VersionId"), marker));
        }
    }
    found
}

/// The lower-cased response headers of a HEAD of `key` (a version of it).
fn head(server: &Server, bucket: &str, key: &str, version: Option<&str>) -> String {
    let path = match version {
        Some(v) => format!("{bucket}/{key}?versionId={v}"),
        None => format!("{bucket}/{key}"),
    };
    let out = server.curl(&path, &["-I"]);
    assert!(out.status.success(), "HEAD {path}: {}", text(&out));
    text(&out).to_ascii_lowercase()
}

/// The retain-until date a HEAD reports, in seconds since the epoch.
fn retain_until(headers: &str) -> Option<i64> {
    let line = headers.lines().find(|l| l.starts_with("x-amz-object-lock-retain-until-date:"))?;
    let value = line.split_once(':')?.1.trim();
    let value = value.to_ascii_uppercase();
    chrono::DateTime::parse_from_rfc3339(&value).ok().map(|t| t.timestamp())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Backup TS with a multipart payload (11 MiB in 5 MiB parts), a small
/// payload and a metadata file; returns the keys the plugin wrote.
fn back_up(c: &Cluster, ts: &str) -> Vec<String> {
    let seg = c.backup_dir("seg0/gpseg0", ts);
    let coord = c.backup_dir("coord/gpseg-1", ts);
    for (name, len) in [(format!("gpbackup_0_{ts}"), 11 * MIB + 3), (format!("gpbackup_0_{ts}_16384.gz"), 1000)] {
        let path = seg.join(name).display().to_string();
        assert_ok(&c.run("backup_data", &[&path], &data(len, len as u64)));
    }
    let meta = coord.join(format!("gpbackup_{ts}_metadata.sql"));
    std::fs::write(&meta, format!("-- metadata of {ts}\n")).unwrap();
    assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));
    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    text(&out).lines().filter_map(|l| l.split('\t').next()).map(str::to_string).collect()
}

fn lock_config(bucket: &str, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut options = vec![
        ("bucket".to_string(), bucket.to_string()),
        ("backup_multipart_chunksize".to_string(), "5MB".to_string()),
        ("restore_multipart_chunksize".to_string(), "5MB".to_string()),
    ];
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    options
}

fn cluster(server: &Server, options: &[(String, String)]) -> Cluster {
    let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Cluster::new(server, &pairs)
}

/// The same folder with other options (another operator's config).
fn same_folder(server: &Server, c: &Cluster, options: &[(String, String)]) -> Cluster {
    let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Cluster::with_folder(server, &c.folder, &pairs)
}

#[test]
fn every_object_of_a_locked_backup_is_locked_single_put_and_multipart() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let c =
        cluster(&server, &lock_config(&bucket, &[("object_lock_mode", "compliance"), ("object_lock_retention", "1d")]));
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    assert_ok(&c.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    let started = now();
    let keys = back_up(&c, TS);
    // Two payloads, the multipart one's integrity manifest, the metadata file.
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".gpbackup_manifest")), "{keys:?}");
    let day = 86_400;
    for key in &keys {
        let all = versions(&server, &bucket, key);
        let mine: Vec<_> = all.iter().filter(|(k, _, _)| k == key).collect();
        assert_eq!(mine.len(), 1, "{key}: {all:?}");
        let headers = head(&server, &bucket, key, Some(&mine[0].1));
        assert!(headers.contains("x-amz-object-lock-mode: compliance"), "{key}: {headers}");
        let until = retain_until(&headers).unwrap_or_else(|| panic!("{key}: no retain-until date: {headers}"));
        assert!(until >= started + day && until <= now() + day + 5, "{key}: until {until}, started {started}");
    }
    // The data restores as written.
    let seg = c.backup_dir("seg0/gpseg0", TS);
    let out = c.run("restore_data", &[&seg.join(format!("gpbackup_0_{TS}")).display().to_string()], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, data(11 * MIB + 3, (11 * MIB + 3) as u64));
    // The operator's view.
    let out = c.run("retention", &[TS], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains(&format!("backup {TS}: 4 objects; 4 COMPLIANCE; retained until")), "{report}");
    assert!(report.contains("0 deletable now"), "{report}");
    // The setup probe was written without the lock and deleted with every
    // version: the versions under the backup are exactly its four objects.
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    let under = versions(&server, &bucket, &prefix);
    assert_eq!(under.len(), 4, "{under:?}");
    assert!(under.iter().all(|(k, _, m)| keys.contains(k) && !m), "{under:?}");
}

#[test]
fn an_attacker_with_the_backup_key_cannot_destroy_a_compliance_backup() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let options = lock_config(&bucket, &[("object_lock_mode", "compliance"), ("object_lock_retention", "1d")]);
    let c = cluster(&server, &options);
    let keys = back_up(&c, TS);
    let small = keys.iter().find(|k| k.ends_with("_16384.gz")).unwrap().clone();
    let original = data(1000, 1000);
    let version = versions(&server, &bucket, &small)[0].1.clone();

    // DeleteObject of the version: refused.
    let out = server.curl(&format!("{bucket}/{small}?versionId={version}"), &["-X", "DELETE"]);
    assert!(!out.status.success() && text(&out).contains("AccessDenied"), "delete: {}", text(&out));
    // ...also with the GOVERNANCE bypass header: COMPLIANCE ignores it.
    let out = server.curl(
        &format!("{bucket}/{small}?versionId={version}"),
        &["-X", "DELETE", "-H", "x-amz-bypass-governance-retention: true"],
    );
    assert!(!out.status.success(), "delete with bypass: {}", text(&out));
    // A plain delete only adds a delete marker; an overwrite only adds a
    // version: the locked version keeps its bytes.
    assert!(server.curl(&format!("{bucket}/{small}"), &["-X", "DELETE"]).status.success());
    let out = server.curl(&format!("{bucket}/{small}"), &["-X", "PUT", "--data-binary", "ransom"]);
    assert!(out.status.success(), "overwrite: {}", text(&out));
    let out = server.curl(&format!("{bucket}/{small}?versionId={version}"), &[]);
    assert!(out.status.success());
    assert_eq!(out.stdout, original, "the locked version changed");
    // The plugin's delete_backup, even with the bypass flag, refuses and
    // touches nothing; the plugin never shortens COMPLIANCE.
    let before = versions(&server, &bucket, &c.folder);
    let out = c.run("delete_backup", &[TS, "--bypass-governance-retention"], b"");
    assert_fails_with(&out, "retained until");
    assert_eq!(versions(&server, &bucket, &c.folder).len(), before.len());
    let config = c.config.display().to_string();
    let out = c.run_raw(&["retention", "extend", &config, TS, "--until", "2020-01-01"]);
    assert_fails_with(&out, "not in the future");
    let soon = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let out = c.run_raw(&["retention", "extend", &config, TS, "--until", &soon, "--bypass-governance-retention"]);
    assert_fails_with(&out, "can never be shortened");
    // The server itself: moto accepts a direct PutObjectRetention that
    // shortens COMPLIANCE (AWS refuses it), so this test cannot show the
    // server's refusal; the plugin's is shown above.
}

impl Cluster {
    /// The plugin with exactly these arguments (subcommands before the config).
    fn run_raw(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run_plugin(&args, b"", &self.home)
    }
}

#[test]
fn delete_under_retention_fails_or_defers_and_purge_deletes_after_it_ends() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let retention = 12;
    let c = cluster(
        &server,
        &lock_config(&bucket, &[("object_lock_mode", "governance"), ("object_lock_retention", "12s")]),
    );
    let keys = back_up(&c, TS);
    // Every retention ends at most 13 s (12 s, rounded up) after this.
    let written = Instant::now();
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    let count = versions(&server, &bucket, &prefix).len();

    // fail: one line saying until when, exit 1, nothing deleted.
    let out = c.run("delete_backup", &[TS], b"");
    assert_fails_with(&out, "retained until");
    assert!(stderr(&out).contains("GOVERNANCE"), "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(versions(&server, &bucket, &prefix).len(), count);

    // defer: the backup is kept whole and recorded; it still restores.
    let mut options = lock_config(&bucket, &[("object_lock_mode", "governance"), ("object_lock_retention", "12s")]);
    options.push(("on_retention_locked".to_string(), "defer".to_string()));
    let d = same_folder(&server, &c, &options);
    assert_ok(&d.run("delete_backup", &[TS], b""));
    assert!(d.log_text().contains("kept whole"), "{}", d.log_text());
    let listed = text(&d.run("list_directory", &[], b""));
    for key in &keys {
        assert!(listed.contains(key.as_str()), "{key} was deleted: {listed}");
    }
    let out = d.run("purge", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("1 deferred deletes found, 0 done, 1 still refused"), "{}", text(&out));

    // After the retention: purge deletes every version, the record too.
    let wait = Duration::from_secs(retention + 3).saturating_sub(written.elapsed());
    std::thread::sleep(wait);
    let out = d.run("purge", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("1 deferred deletes found, 1 done, 0 still refused"), "{}", text(&out));
    assert_eq!(versions(&server, &bucket, &prefix), vec![], "versions left after purge");
}

#[test]
fn governance_is_bypassed_only_with_the_flag() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let c =
        cluster(&server, &lock_config(&bucket, &[("object_lock_mode", "governance"), ("object_lock_retention", "1d")]));
    back_up(&c, TS);
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    assert_fails_with(&c.run("delete_backup", &[TS], b""), "retained until");
    assert!(!versions(&server, &bucket, &prefix).is_empty());
    let out = c.run("delete_backup", &[TS, "--bypass-governance-retention"], b"");
    assert_ok(&out);
    assert!(c.log_text().contains("--bypass-governance-retention given"), "the bypass is not logged");
    assert_eq!(versions(&server, &bucket, &prefix), vec![], "versions left after delete_backup");
}

#[test]
fn legal_hold_blocks_delete_until_lifted() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let c = cluster(&server, &lock_config(&bucket, &[("object_lock_legal_hold", "true")]));
    let keys = back_up(&c, TS);
    for key in &keys {
        let headers = head(&server, &bucket, key, None);
        assert!(headers.contains("x-amz-object-lock-legal-hold: on"), "{key}: {headers}");
    }
    let out = c.run("delete_backup", &[TS], b"");
    assert_fails_with(&out, "legal hold");
    let out = c.run_raw(&["legal-hold", "off", &c.config.display().to_string(), TS]);
    assert_ok(&out);
    assert!(text(&out).contains("0 on legal hold"), "{}", text(&out));
    let out = c.run_raw(&["legal-hold", "on", &c.config.display().to_string(), TS]);
    assert_ok(&out);
    assert!(text(&out).contains("4 on legal hold"), "{}", text(&out));
    assert_fails_with(&c.run("delete_backup", &[TS], b""), "legal hold");
    assert_ok(&c.run_raw(&["legal-hold", "off", &c.config.display().to_string(), TS]));
    assert_ok(&c.run("delete_backup", &[TS], b""));
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    assert_eq!(versions(&server, &bucket, &prefix), vec![]);
}

#[test]
fn retention_extend_by_and_until() {
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let c =
        cluster(&server, &lock_config(&bucket, &[("object_lock_mode", "governance"), ("object_lock_retention", "1d")]));
    let keys = back_up(&c, TS);
    let config = c.config.display().to_string();
    let out = c.run_raw(&["retention", "extend", &config, TS, "--by", "2d"]);
    assert_ok(&out);
    assert!(text(&out).contains("4 of 4 objects changed"), "{}", text(&out));
    for key in &keys {
        let until = retain_until(&head(&server, &bucket, key, None)).unwrap();
        assert!(until >= now() + 3 * 86_400 - 120, "{key}: not extended: {until}");
    }
    // Shortening GOVERNANCE: refused without the flag, done with it.
    let earlier = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let out = c.run_raw(&["retention", "extend", &config, TS, "--until", &earlier]);
    assert_fails_with(&out, "would shorten it");
    let out = c.run_raw(&["retention", "extend", &config, TS, "--until", &earlier, "--bypass-governance-retention"]);
    assert_ok(&out);
    for key in &keys {
        let until = retain_until(&head(&server, &bucket, key, None)).unwrap();
        assert!(until <= now() + 3600 + 5, "{key}: not shortened: {until}");
    }
}

#[test]
fn a_versioned_bucket_without_a_lock_keeps_no_version_after_delete_backup() {
    let server = Server::start_moto();
    let bucket = versioned_bucket(&server);
    let c = cluster(&server, &lock_config(&bucket, &[]));
    back_up(&c, TS);
    // A second write of a file (a new version) and a plain delete (a
    // delete marker) of another.
    let keys = back_up(&c, TS);
    let small = keys.iter().find(|k| k.ends_with("_16384.gz")).unwrap();
    assert!(server.curl(&format!("{bucket}/{small}"), &["-X", "DELETE"]).status.success());
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    let before = versions(&server, &bucket, &prefix);
    assert!(before.len() > keys.len() && before.iter().any(|(_, _, m)| *m), "{before:?}");
    let out = c.run("check", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("Enabled: delete_backup and delete_directory delete every version"), "{}", text(&out));
    assert_ok(&c.run("delete_backup", &[TS], b""));
    assert_eq!(versions(&server, &bucket, &prefix), vec![], "versions left after delete_backup");
}

#[test]
fn a_bucket_without_object_lock_fails_setup_and_check_with_the_fix() {
    let server = Server::start_moto();
    let options = lock_config(&server.bucket, &[("object_lock_mode", "governance"), ("object_lock_retention", "7d")]);
    let c = cluster(&server, &options);
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    let out = c.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, "versioning and Object Lock are not enabled");
    assert!(stderr(&out).contains("put-object-lock-configuration"), "{}", stderr(&out));
    assert_fails_with(&c.run("check", &[], b""), "Object Lock");
    // Nothing was written.
    assert_eq!(text(&c.run("list_directory", &[], b"")), "");
}

#[test]
fn lock_options_are_checked_by_name() {
    let server = Server::placeholder("http://127.0.0.1:9");
    for (options, needle) in [
        (vec![("object_lock_mode", "strict"), ("object_lock_retention", "1d")], "object_lock_mode \"strict\""),
        (vec![("object_lock_mode", "governance")], "object_lock_mode needs object_lock_retention"),
        (vec![("object_lock_retention", "1d")], "object_lock_retention needs object_lock_mode"),
        (vec![("object_lock_mode", "compliance"), ("object_lock_retention", "30y")], "at most 10 years"),
        (vec![("object_lock_mode", "compliance"), ("object_lock_retention", "soon")], "object_lock_retention"),
    ] {
        let c = Cluster::new(&server, &options);
        assert_fails_with(&c.run("check", &[], b""), needle);
    }
}

/// The per-key refusals inside a 200 DeleteObjects answer (what S3 sends
/// for versions a lock keeps), through a proxy, on a versioned bucket
/// without a lock (so the plugin's lookup predicts nothing): `fail` stops
/// and says so, `defer` records the backup, `purge` deletes it once the
/// refusals stop.
#[test]
fn per_key_refusals_inside_delete_objects_fail_or_defer() {
    let server = Server::start_moto();
    let bucket = versioned_bucket(&server);
    let c = cluster(&server, &lock_config(&bucket, &[]));
    back_up(&c, TS);
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    let count = versions(&server, &bucket, &prefix).len();
    let proxy = FaultProxy::start(&server.endpoint, Faults { deny_delete_keys: true, ..Faults::default() }, 1);
    let mut options = lock_config(&bucket, &[]);
    options.push(("endpoint".to_string(), proxy.endpoint.clone()));
    let p = same_folder(&server, &c, &options);
    let out = p.run("delete_backup", &[TS], b"");
    assert_fails_with(&out, "AccessDenied");
    assert!(stderr(&out).contains("0 versions were deleted before this refusal"), "{}", stderr(&out));
    assert_eq!(versions(&server, &bucket, &prefix).len(), count);

    options.push(("on_retention_locked".to_string(), "defer".to_string()));
    let d = same_folder(&server, &c, &options);
    assert_ok(&d.run("delete_backup", &[TS], b""));
    let out = d.run("purge", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("1 still refused"), "{}", text(&out));
    // Without the proxy (the lock is gone): purge deletes every version.
    let mut direct = lock_config(&bucket, &[]);
    direct.push(("on_retention_locked".to_string(), "defer".to_string()));
    let out = same_folder(&server, &c, &direct).run("purge", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("1 done, 0 still refused"), "{}", text(&out));
    assert_eq!(versions(&server, &bucket, &prefix), vec![]);
}
