//! S3 Object Lock and versioned buckets, each test run against both local
//! servers that implement versioning, retention, legal holds and their
//! enforcement on DeleteObject with a version id: moto and fakecloud
//! (`NAME::moto`, `NAME::fakecloud`). Locked writes (single PUT and
//! multipart, payloads, manifests and metadata), an attacker holding the
//! backup key, delete_backup under retention (`fail` and `defer`), `purge`
//! after a short retention, the GOVERNANCE bypass, legal holds, `retention
//! extend`, versioned buckets without a lock, a bucket that cannot lock,
//! and the lock state in `backups` and `expire`. moto does not apply the
//! lock headers of CreateMultipartUpload: there the multipart objects are
//! locked by the plugin's read-back and PutObjectRetention; fakecloud
//! applies the headers, and the read-back only confirms them.

use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

/// A test body run twice, as `NAME::moto` and `NAME::fakecloud`: the two
/// local servers that implement Object Lock.
macro_rules! on_both {
    ($name:ident) => {
        mod $name {
            #[test]
            fn moto() {
                super::$name(crate::support::Server::start_moto());
            }

            #[test]
            fn fakecloud() {
                super::$name(crate::support::Server::start_fakecloud());
            }
        }
    };
}

pub(crate) use on_both;

pub(crate) const TS: &str = "20250102030405";
pub(crate) const MIB: usize = 1 << 20;

pub(crate) fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A bucket of its own on `server` with Object Lock (and so versioning).
pub(crate) fn lock_bucket(server: &Server) -> String {
    let bucket = format!("{}-lock", server.bucket);
    let out = server.curl(&bucket, &["-X", "PUT", "-H", "x-amz-bucket-object-lock-enabled: true"]);
    assert!(out.status.success(), "create lock bucket: {}", text(&out));
    bucket
}

/// A bucket of its own with versioning and no lock.
pub(crate) fn versioned_bucket(server: &Server) -> String {
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
pub(crate) fn versions(server: &Server, bucket: &str, prefix: &str) -> Vec<(String, String, bool)> {
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
pub(crate) fn head(server: &Server, bucket: &str, key: &str, version: Option<&str>) -> String {
    let path = match version {
        Some(v) => format!("{bucket}/{key}?versionId={v}"),
        None => format!("{bucket}/{key}"),
    };
    let out = server.curl(&path, &["-I"]);
    assert!(out.status.success(), "HEAD {path}: {}", text(&out));
    text(&out).to_ascii_lowercase()
}

/// The retain-until date a HEAD reports, in seconds since the epoch.
pub(crate) fn retain_until(headers: &str) -> Option<i64> {
    let line = headers.lines().find(|l| l.starts_with("x-amz-object-lock-retain-until-date:"))?;
    let value = line.split_once(':')?.1.trim();
    let value = value.to_ascii_uppercase();
    chrono::DateTime::parse_from_rfc3339(&value).ok().map(|t| t.timestamp())
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Backup TS with a multipart payload (11 MiB in 5 MiB parts), a small
/// payload and a metadata file; returns the keys the plugin wrote.
pub(crate) fn back_up(c: &Cluster, ts: &str) -> Vec<String> {
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

pub(crate) fn lock_config(bucket: &str, extra: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut options = vec![
        ("bucket".to_string(), bucket.to_string()),
        ("backup_multipart_chunksize".to_string(), "5MB".to_string()),
        ("restore_multipart_chunksize".to_string(), "5MB".to_string()),
    ];
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    options
}

pub(crate) fn cluster(server: &Server, options: &[(String, String)]) -> Cluster {
    let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Cluster::new(server, &pairs)
}

/// The same folder with other options (another operator's config).
pub(crate) fn same_folder(server: &Server, c: &Cluster, options: &[(String, String)]) -> Cluster {
    let pairs: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Cluster::with_folder(server, &c.folder, &pairs)
}

on_both!(every_object_of_a_locked_backup_is_locked_single_put_and_multipart);
fn every_object_of_a_locked_backup_is_locked_single_put_and_multipart(server: Server) {
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

on_both!(an_attacker_with_the_backup_key_cannot_destroy_a_compliance_backup);
fn an_attacker_with_the_backup_key_cannot_destroy_a_compliance_backup(server: Server) {
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
    // The server itself: fakecloud refuses a direct PutObjectRetention
    // that shortens COMPLIANCE, even with the bypass header, as AWS does;
    // moto accepts it, so on moto only the plugin's refusal is shown.
    if server.is_fakecloud() {
        let body = format!("<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>{soon}</RetainUntilDate></Retention>");
        let out = server.curl(
            &format!("{bucket}/{small}?retention&versionId={version}"),
            &["-X", "PUT", "-H", "x-amz-bypass-governance-retention: true", "--data-binary", &body],
        );
        assert!(!out.status.success() && text(&out).contains("AccessDenied"), "shortened: {}", text(&out));
    }
}

impl Cluster {
    /// The plugin with exactly these arguments (subcommands before the config).
    fn run_raw(&self, args: &[&str]) -> std::process::Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        run_plugin(&args, b"", &self.home)
    }
}

on_both!(delete_under_retention_fails_or_defers_and_purge_deletes_after_it_ends);
fn delete_under_retention_fails_or_defers_and_purge_deletes_after_it_ends(server: Server) {
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

on_both!(governance_is_bypassed_only_with_the_flag);
fn governance_is_bypassed_only_with_the_flag(server: Server) {
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

on_both!(legal_hold_blocks_delete_until_lifted);
fn legal_hold_blocks_delete_until_lifted(server: Server) {
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

on_both!(retention_extend_by_and_until);
fn retention_extend_by_and_until(server: Server) {
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

on_both!(a_versioned_bucket_without_a_lock_keeps_no_version_after_delete_backup);
fn a_versioned_bucket_without_a_lock_keeps_no_version_after_delete_backup(server: Server) {
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

on_both!(a_bucket_without_object_lock_fails_setup_and_check_with_the_fix);
fn a_bucket_without_object_lock_fails_setup_and_check_with_the_fix(server: Server) {
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

on_both!(per_key_refusals_inside_delete_objects_fail_or_defer);
/// The per-key refusals inside a 200 DeleteObjects answer (what S3 sends
/// for versions a lock keeps), through a proxy, on a versioned bucket
/// without a lock (so the plugin's lookup predicts nothing): `fail` stops
/// and says so, `defer` records the backup, `purge` deletes it once the
/// refusals stop.
fn per_key_refusals_inside_delete_objects_fail_or_defer(server: Server) {
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

on_both!(backups_and_expire_show_the_object_lock_of_each_backup);
/// `backups` (table and JSON) and `expire` show each backup's Object Lock:
/// mode, latest and earliest retain-until dates, legal holds; an unlocked
/// backup in the same bucket shows none. `list_directory` keeps its
/// `key<TAB>size` lines.
fn backups_and_expire_show_the_object_lock_of_each_backup(server: Server) {
    const HELD: &str = "20250103030405";
    const FREE: &str = "20250104030405";
    let bucket = lock_bucket(&server);
    let c =
        cluster(&server, &lock_config(&bucket, &[("object_lock_mode", "compliance"), ("object_lock_retention", "1d")]));
    let keys = back_up(&c, TS);
    back_up(&same_folder(&server, &c, &lock_config(&bucket, &[("object_lock_legal_hold", "true")])), HELD);
    back_up(&same_folder(&server, &c, &lock_config(&bucket, &[])), FREE);
    let dates: Vec<i64> = keys.iter().map(|k| retain_until(&head(&server, &bucket, k, None)).unwrap()).collect();
    let local =
        |secs: i64| chrono::DateTime::from_timestamp(secs, 0).unwrap().with_timezone(&chrono::Local).naive_local();
    let (first, last) = (local(*dates.iter().min().unwrap()), local(*dates.iter().max().unwrap()));

    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    let table = text(&out);
    let row =
        |ts: &str| table.lines().find(|l| l.starts_with(ts)).unwrap_or_else(|| panic!("{ts}: {table}")).to_string();
    let until = format!("object lock COMPLIANCE until {}", last.format("%Y-%m-%d %H:%M"));
    assert!(row(TS).contains(&until), "{table}");
    assert!(row(HELD).contains("object lock; 4 on legal hold"), "{table}");
    assert!(!row(FREE).contains("object lock"), "{table}");

    let out = c.run("backups", &["--json"], b"");
    assert_ok(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = |ts: &str| json.as_array().unwrap().iter().find(|b| b["timestamp"] == ts).unwrap()["lock"].clone();
    let lock = entry(TS);
    assert_eq!(lock["kind"], "object_lock", "{lock}");
    assert_eq!(lock["modes"], serde_json::json!(["COMPLIANCE"]), "{lock}");
    assert_eq!(lock["earliest"], first.format("%Y-%m-%dT%H:%M:%S").to_string(), "{lock}");
    assert_eq!(lock["until"], last.format("%Y-%m-%dT%H:%M:%S").to_string(), "{lock}");
    assert_eq!((lock["objects"].as_u64(), lock["holds"].as_bool()), (Some(4), Some(true)), "{lock}");
    let held = entry(HELD);
    assert_eq!((held["legal_holds"].as_u64(), held["until"].as_str()), (Some(4), Some("forever")), "{held}");
    assert_eq!(entry(FREE)["kind"], "none");

    // expire keeps the locked backups and would delete the free one.
    let out = c.run("expire", &["--older-than", "1d", "--grace", "0s"], b"");
    assert_ok(&out);
    let plan = text(&out);
    let line = |ts: &str| plan.lines().find(|l| l.contains(ts)).unwrap_or_else(|| panic!("{ts}: {plan}")).to_string();
    assert!(line(TS).starts_with("keep") && line(TS).contains("retention lock until"), "{plan}");
    assert!(line(HELD).starts_with("keep") && line(HELD).contains("retention lock"), "{plan}");
    assert!(line(FREE).starts_with("delete"), "{plan}");

    // list_directory's lines stay `key<TAB>size`, which scripts parse.
    let listing = text(&c.run("list_directory", &[], b""));
    assert!(listing.lines().all(|l| l.split('\t').count() == 2), "{listing}");
}

on_both!(expire_judges_a_backup_by_the_lock_of_every_version);
/// A backup whose current objects are free while an older version of one
/// of them is on legal hold: `backups` shows the lock and `expire` keeps
/// the backup. Only the current versions were looked at: the backup was
/// planned for deletion, which the hold then refused (or deferred).
fn expire_judges_a_backup_by_the_lock_of_every_version(server: Server) {
    let bucket = lock_bucket(&server);
    let c = cluster(&server, &lock_config(&bucket, &[]));
    back_up(&c, TS);
    // The metadata file written again: its first version stays, older.
    let meta = c.backup_dir("coord/gpseg-1", TS).join(format!("gpbackup_{TS}_metadata.sql"));
    std::fs::write(&meta, "-- again\n").unwrap();
    assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));
    let key = c.key(TS, &format!("gpbackup_{TS}_metadata.sql"));
    let current = head(&server, &bucket, &key, None)
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-version-id:").map(|v| v.trim().to_string()))
        .expect("a version id");
    let all = versions(&server, &bucket, &key);
    let old = all
        .iter()
        .find(|(k, v, marker)| *k == key && !v.eq_ignore_ascii_case(&current) && !marker)
        .unwrap_or_else(|| panic!("no older version of {key}: {all:?}"))
        .1
        .clone();
    let body = "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>ON</Status></LegalHold>";
    let md5 = {
        use md5::Digest;
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, md5::Md5::digest(body.as_bytes()))
    };
    let out = server.curl(
        &format!("{bucket}/{key}?legal-hold&versionId={old}"),
        &[
            "-X",
            "PUT",
            "-H",
            &format!("Content-MD5: {md5}"),
            "-H",
            "Content-Type: application/xml",
            "--data-binary",
            body,
        ],
    );
    assert!(out.status.success(), "legal hold on {key} version {old}: {}", text(&out));

    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    let table = text(&out);
    let row = table.lines().find(|l| l.starts_with(TS)).unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains("object lock; 1 on legal hold"), "{table}");
    let out = c.run("expire", &["--older-than", "1d", "--grace", "0s"], b"");
    assert_ok(&out);
    let plan = text(&out);
    let line = plan.lines().find(|l| l.contains(TS)).unwrap_or_else(|| panic!("{plan}"));
    assert!(line.starts_with("keep") && line.contains("retention lock"), "{plan}");
}

on_both!(expire_reports_a_deferred_delete_as_kept_for_purge);
/// `on_retention_locked: defer` on a versioned bucket whose versions the
/// service refuses to delete (per-key AccessDenied inside DeleteObjects,
/// through a proxy): `expire --yes` says the backup is kept for `purge` in
/// S3's words and does not count it deleted (it said "deleted … 0
/// objects; 1 archives kept for purge (vault lock)").
fn expire_reports_a_deferred_delete_as_kept_for_purge(server: Server) {
    let bucket = versioned_bucket(&server);
    let c = cluster(&server, &lock_config(&bucket, &[]));
    back_up(&c, TS);
    let proxy = FaultProxy::start(&server.endpoint, Faults { deny_delete_keys: true, ..Faults::default() }, 1);
    let mut options = lock_config(&bucket, &[("on_retention_locked", "defer")]);
    options.push(("endpoint".to_string(), proxy.endpoint.clone()));
    let p = same_folder(&server, &c, &options);
    let out = p.run("expire", &["--older-than", "1d", "--grace", "0s", "--yes"], b"");
    assert_ok(&out);
    let report = text(&out);
    let line =
        report.lines().find(|l| l.contains(TS) && !l.starts_with("delete ")).unwrap_or_else(|| panic!("{report}"));
    assert!(line.starts_with("kept for purge") && line.contains("object versions"), "{report}");
    assert!(!report.contains("vault lock") && !report.contains("archives"), "{report}");
    assert!(report.contains("expire: 0 deleted, 1 kept for purge"), "{report}");
}
