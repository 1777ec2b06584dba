//! Cold storage classes, thaw, restore setup and server-side encryption,
//! against a real moto server (the one local server that implements storage
//! classes, InvalidObjectState and RestoreObject). moto keeps objects in
//! memory, so the data stays at a few MiB.

use std::time::{Duration, Instant};

use crate::support::*;

const TS: &str = "20240315123045";
const TS2: &str = "20240316010101";
const MIB: usize = 1 << 20;

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A coordinator's files and two payloads (one multipart, one small) of
/// backup `ts`; returns (data paths and their bytes, metadata path).
fn back_up(c: &Cluster, ts: &str, seed: u64) -> (Vec<(String, Vec<u8>)>, String) {
    let coord = c.backup_dir("coord/gpseg-1", ts);
    let seg = c.backup_dir("seg0/gpseg0", ts);
    let mut payloads = Vec::new();
    for (name, len) in [(format!("gpbackup_0_{ts}"), 11 * MIB + 3), (format!("gpbackup_0_{ts}_16384.gz"), 1000)] {
        let path = seg.join(name).display().to_string();
        let bytes = data(len, seed + len as u64);
        assert_ok(&c.run("backup_data", &[&path], &bytes));
        payloads.push((path, bytes));
    }
    let meta = coord.join(format!("gpbackup_{ts}_metadata.sql"));
    std::fs::write(&meta, format!("-- metadata of {ts}\n")).unwrap();
    assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));
    (payloads, meta.display().to_string())
}

/// moto's restore state machine runs on access, timed from the object's
/// creation: with a delay T, a restore asked for within T of the upload
/// looks done at once; after that, the first look makes it "under way" and
/// it is done at the first look T later. This makes requested restores
/// stay under way (until [`Server::moto_restore_delay`] is lowered).
fn hold_restores_under_way(server: &Server, keys: &[String]) {
    for key in keys {
        let head = server.head(key);
        assert!(head.contains("x-amz-restore: ongoing-request=\"true\""), "{key}: {head}");
    }
    server.moto_restore_delay(600);
}

fn cold_config(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut options = vec![
        ("storage_class", "GLACIER"),
        ("backup_multipart_chunksize", "5MB"),
        ("restore_multipart_chunksize", "5MB"),
    ];
    options.extend_from_slice(extra);
    options
}

#[test]
fn archived_backup_is_refused_then_thawed_and_restored() {
    let server = Server::start_moto();
    server.moto_restore_delay(1);
    let c = Cluster::new(
        &server,
        &cold_config(&[
            ("server_side_encryption", "aws:kms"),
            ("sse_kms_key_id", "alias/gpbackup"),
            ("sse_bucket_key", "true"),
            ("object_tags", "team=dba&retention=90 days"),
            ("restore_tier", "Bulk"),
        ]),
    );
    let (payloads, meta) = back_up(&c, TS, 1);
    let backed_up = Instant::now();
    let coord_dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    let payload_keys: Vec<String> =
        payloads.iter().map(|(path, _)| c.key(TS, path.rsplit('/').next().unwrap())).collect();

    // Payloads are GLACIER; metadata and the integrity manifest stay STANDARD.
    for key in &payload_keys {
        let head = server.head(key);
        assert!(head.contains("x-amz-storage-class: GLACIER"), "{key}: {head}");
        assert!(head.contains("x-amz-server-side-encryption: aws:kms"), "{head}");
        assert!(head.contains("x-amz-server-side-encryption-aws-kms-key-id: alias/gpbackup"), "{head}");
        assert!(head.contains("x-amz-tagging-count: 2"), "{head}");
        assert!(!head.contains("x-amz-restore"), "{head}");
    }
    // (moto records the bucket-key flag of single-request uploads only.)
    let head = server.head(&payload_keys[1]);
    assert!(head.contains("x-amz-server-side-encryption-bucket-key-enabled: true"), "{head}");
    let manifest = server.head(&c.manifest_key(&c.key(TS, &format!("gpbackup_0_{TS}"))));
    assert!(!manifest.contains("x-amz-storage-class"), "manifest must stay STANDARD: {manifest}");
    let metadata = server.head(&c.key(TS, &format!("gpbackup_{TS}_metadata.sql")));
    assert!(!metadata.contains("x-amz-storage-class"), "metadata must stay STANDARD: {metadata}");
    assert!(metadata.contains("x-amz-server-side-encryption: aws:kms"), "{metadata}");
    // (moto refuses GetObjectTagging on archived objects; tags go on every object.)
    let tags = text(
        &server.curl(&format!("{}/{}?tagging", server.bucket, c.key(TS, &format!("gpbackup_{TS}_metadata.sql"))), &[]),
    );
    assert!(tags.contains("<Key>retention</Key><Value>90 days</Value>"), "{tags}");

    // Before thaw: metadata restores, data is refused cleanly, setup names thaw.
    std::fs::remove_file(&meta).unwrap();
    assert_ok(&c.run("restore_file", &[&meta], b""));
    for (path, _) in &payloads {
        let out = c.run("restore_data", &[path], b"");
        assert_fails_with(&out, &format!("gpbackup_s3_plugin thaw <plugin config> {TS} --wait"));
        assert_fails_with(&out, "archived");
        assert!(out.stdout.is_empty(), "bytes written before the refusal");
    }
    let offsets = c.dir.path().join("offsets");
    std::fs::write(&offsets, "1 0 10").unwrap();
    let out = c.run("restore_data_subset", &[&payloads[0].0, &offsets.display().to_string()], b"");
    assert_fails_with(&out, "thaw");
    assert!(out.stdout.is_empty());
    let out = c.run("setup_plugin_for_restore", &[&coord_dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, &format!("backup {TS} cannot be restored yet: 2 of 4 objects are in archived storage"));
    assert_fails_with(&out, "thaw");
    // Segment scopes only check the config.
    assert_ok(&c.run("setup_plugin_for_restore", &[&coord_dir, "segment", "\"0\""], b""));

    // --status reports and requests nothing.
    let out = c.run("thaw", &[TS, "--status"], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains("4 objects: 2 readable as stored, 0 restored, 0 restoring, 2 archived"), "{report}");
    assert!(report.contains("cold storage: GLACIER 2"), "{report}");
    assert!(!server.head(&c.key(TS, &format!("gpbackup_0_{TS}"))).contains("x-amz-restore"));

    // thaw requests both restores, with the configured tier.
    std::thread::sleep(Duration::from_millis(1200).saturating_sub(backed_up.elapsed()));
    let out = c.run("thaw", &[TS], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains("requested 2 restores (tier Bulk, readable for 7 days)"), "{report}");
    assert!(report.contains("--wait"), "{report}");
    hold_restores_under_way(&server, &payload_keys);

    // Rerun while they are under way: nothing is asked for again.
    let out = c.run("thaw", &[TS], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains("0 restored, 2 restoring, 0 archived"), "{report}");
    assert!(!report.contains("requested"), "a restore under way was requested again: {report}");
    let out = c.run("setup_plugin_for_restore", &[&coord_dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, "still being restored");

    // --wait follows them to the end (log lines: stdout is not a terminal).
    server.moto_restore_delay(2);
    let started = Instant::now();
    let out = c.run("thaw", &[TS, "--wait"], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains("2 of 2 restores readable, 0 under way"), "{report}");
    assert!(report.contains(&format!("all 4 objects of backup {TS} are readable")), "{report}");
    assert!(report.contains("restored copies readable until"), "{report}");
    assert!(!report.contains('\r'), "terminal redraws in a pipe: {report:?}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let head = server.head(&c.key(TS, &format!("gpbackup_0_{TS}")));
    assert!(head.contains("ongoing-request=\"false\", expiry-date="), "{head}");

    // Thawed: restored copies are not requested again, and everything restores.
    let out = c.run("thaw", &[TS], b"");
    assert_ok(&out);
    assert!(text(&out).contains("2 restored, 0 restoring, 0 archived"), "{}", text(&out));
    assert!(!text(&out).contains("requested"));
    assert_ok(&c.run("setup_plugin_for_restore", &[&coord_dir, "master", "\"-1\""], b""));
    for (path, bytes) in &payloads {
        let out = c.run("restore_data", &[path], b"");
        assert_ok(&out);
        assert!(&out.stdout == bytes, "{path}: {} bytes back of {}", out.stdout.len(), bytes.len());
    }
    let out = c.run("restore_data_subset", &[&payloads[0].0, &offsets.display().to_string()], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, payloads[0].1[..10]);
    assert!(c.log_text().contains("Restore requests: 2 started"));
}

#[test]
fn restore_setup_requests_and_waits_when_configured() {
    let server = Server::start_moto();
    server.moto_restore_delay(2);
    let c = Cluster::new(
        &server,
        &cold_config(&[("storage_class", "DEEP_ARCHIVE"), ("restore_auto", "true"), ("restore_wait_timeout", "1m")]),
    );
    let (payloads, _) = back_up(&c, TS, 2);
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    let out = c.run("setup_plugin_for_restore", &[&dir, "master", "\"-1\""], b"");
    assert_ok(&out);
    assert!(out.stdout.is_empty(), "hooks print nothing: {}", text(&out));
    let log = c.log_text();
    assert!(log.contains("requested 2 restores (tier Standard, readable for 7 days; restore_auto)"), "{log}");
    assert!(log.contains(&format!("all 4 objects of backup {TS} are readable")), "{log}");
    let out = c.run("restore_data", &[&payloads[1].0], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, payloads[1].1);

    // A wait that is too short fails, naming the option; the restores go on.
    server.moto_restore_delay(1);
    let c2 = Cluster::with_folder(
        &server,
        &c.folder,
        &cold_config(&[("storage_class", "DEEP_ARCHIVE"), ("restore_auto", "true"), ("restore_wait_timeout", "2s")]),
    );
    let (payloads, _) = back_up(&c2, TS2, 3);
    std::thread::sleep(Duration::from_millis(1200));
    assert_ok(&c2.run("thaw", &[TS2], b""));
    let keys: Vec<String> = payloads.iter().map(|(p, _)| c2.key(TS2, p.rsplit('/').next().unwrap())).collect();
    hold_restores_under_way(&server, &keys);
    let dir = c2.backup_dir("coord/gpseg-1", TS2).display().to_string();
    let started = Instant::now();
    let out = c2.run("setup_plugin_for_restore", &[&dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, "restore_wait_timeout 2s");
    assert_fails_with(&out, "2 of 2 restores still not readable");
    assert!(started.elapsed() < Duration::from_secs(30));
    let head = server.head(&c2.key(TS2, &format!("gpbackup_0_{TS2}")));
    assert!(head.contains("ongoing-request=\"true\""), "{head}");

    // thaw --wait --timeout gives up the same way, with a non-zero exit.
    let out = c2.run("thaw", &[TS2, "--wait", "--timeout", "2s"], b"");
    assert_fails_with(&out, "still not readable after");
    assert!(text(&out).contains("2 restoring"), "{}", text(&out));
}

#[test]
fn thaw_follows_the_restore_plan_of_an_incremental_backup() {
    let server = Server::start_moto();
    let c = Cluster::new(&server, &cold_config(&[]));
    let (full, _) = back_up(&c, TS, 4);
    let (incremental, _) = back_up(&c, TS2, 5);
    let coord = c.backup_dir("coord/gpseg-1", TS2);
    let config = coord.join(format!("gpbackup_{TS2}_config.yaml"));
    std::fs::write(
        &config,
        format!(
            "incremental: true\nrestoreplan:\n- timestamp: \"{TS}\"\n  tablefqns:\n  - public.a\n- timestamp: \"{TS2}\"\n  tablefqns: []\ntimestamp: \"{TS2}\"\n"
        ),
    )
    .unwrap();
    assert_ok(&c.run("backup_file", &[&config.display().to_string()], b""));

    let out = c.run("thaw", &[TS2], b"");
    assert_ok(&out);
    let report = text(&out);
    assert!(report.contains(&format!("its restore plan also reads {TS}")), "{report}");
    assert!(report.contains("requested 4 restores"), "{report}");
    for (path, bytes) in full.iter().chain(&incremental) {
        let out = c.run("restore_data", &[path], b"");
        assert_ok(&out);
        assert!(&out.stdout == bytes);
    }
    // A timestamp with no objects is an error that names it.
    let out = c.run("thaw", &["20200101000000"], b"");
    assert_fails_with(&out, "backup 20200101000000: no objects under");
}

#[test]
fn instant_classes_need_no_thaw_and_check_reports_them() {
    let server = Server::start_moto();
    let c = Cluster::new(
        &server,
        &cold_config(&[("storage_class", "GLACIER_IR"), ("metadata_storage_class", "STANDARD_IA")]),
    );
    let (payloads, meta) = back_up(&c, TS, 6);
    let head = server.head(&c.key(TS, &format!("gpbackup_0_{TS}")));
    assert!(head.contains("x-amz-storage-class: GLACIER_IR"), "{head}");
    let head = server.head(&c.key(TS, &format!("gpbackup_{TS}_metadata.sql")));
    assert!(head.contains("x-amz-storage-class: STANDARD_IA"), "{head}");
    let head = server.head(&c.manifest_key(&c.key(TS, &format!("gpbackup_0_{TS}"))));
    assert!(head.contains("x-amz-storage-class: STANDARD_IA"), "the manifest is metadata: {head}");
    for (path, bytes) in &payloads {
        let out = c.run("restore_data", &[path], b"");
        assert_ok(&out);
        assert!(&out.stdout == bytes);
    }
    std::fs::remove_file(&meta).unwrap();
    assert_ok(&c.run("restore_file", &[&meta], b""));
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    assert_ok(&c.run("setup_plugin_for_restore", &[&dir, "master", "\"-1\""], b""));
    let out = c.run("thaw", &[TS], b"");
    assert_ok(&out);
    assert!(text(&out).contains("4 objects: 4 readable as stored"), "{}", text(&out));
    assert!(!text(&out).contains("requested"));

    let out = c.run("check", &[], b"");
    assert_ok(&out);
    let report = text(&out);
    for needle in [
        "data storage class     GLACIER_IR",
        "metadata storage class STANDARD_IA",
        "addressing             path-style",
        "credentials            static keys from the plugin config",
        "data probe             stored as GLACIER_IR",
        "metadata probe         stored as STANDARD_IA",
        "metadata probe         read back identical",
        "all checks passed",
    ] {
        assert!(report.contains(needle), "missing {needle:?} in\n{report}");
    }
    assert!(!report.contains(&server.secret_key));
    // The probes are gone.
    let listing = text(&c.run("list_directory", &[], b""));
    assert!(!listing.contains("_check_"), "{listing}");
}

#[test]
fn sse_c_round_trip_with_a_key_file() {
    let server = Server::start_moto();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sse-c.key");
    let key: Vec<u8> = data(32, 99);
    std::fs::write(&key_file, &key).unwrap();
    let key_path = key_file.display().to_string();
    // moto accepts SSE-C but does not enforce it: a proxy records what is sent.
    let proxy = RecordingProxy::start(&server.endpoint);
    let c = Cluster::new(
        &server,
        &[
            ("sse_customer_key_file", key_path.as_str()),
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
            ("http_proxy", &proxy.url),
        ],
    );
    let (payloads, meta) = back_up(&c, TS, 7);
    for (path, bytes) in &payloads {
        let out = c.run("restore_data", &[path], b"");
        assert_ok(&out);
        assert!(&out.stdout == bytes);
    }
    std::fs::remove_file(&meta).unwrap();
    assert_ok(&c.run("restore_file", &[&meta], b""));
    assert_ok(&c.run("check", &[], b""));

    // Every request that writes or reads object data or metadata carries
    // the key and its MD5: PutObject, CreateMultipartUpload, UploadPart,
    // CompleteMultipartUpload, GetObject (ranged) and HeadObject.
    let md5 = {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("openssl dgst -md5 -binary '{key_path}' | base64 -w0"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let heads = proxy.heads();
    let mut kinds = std::collections::BTreeMap::new();
    for head in &heads {
        let line = head.lines().next().unwrap();
        let kind = match line.split(' ').next().unwrap() {
            "PUT" if line.contains("partNumber=") => "UploadPart",
            "PUT" => "PutObject",
            "POST" if line.contains("?uploads") => "CreateMultipartUpload",
            "POST" if line.contains("uploadId=") => "CompleteMultipartUpload",
            // Bucket requests (a delete asks for the versioning) carry no key.
            "GET"
                if !["list-type", "?versioning", "?versions", "?object-lock", "?uploads"]
                    .iter()
                    .any(|q| line.contains(q)) =>
            {
                "GetObject"
            }
            "HEAD" => "HeadObject",
            _ => continue,
        };
        assert!(head.contains("x-amz-server-side-encryption-customer-algorithm: aes256"), "{kind}: {head}");
        assert!(
            head.contains(&format!("x-amz-server-side-encryption-customer-key-md5: {}", md5.to_lowercase())),
            "{kind}: {head}"
        );
        assert!(head.contains("x-amz-server-side-encryption-customer-key: "), "{kind}: {head}");
        *kinds.entry(kind).or_insert(0) += 1;
    }
    for kind in
        ["PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "GetObject", "HeadObject"]
    {
        assert!(kinds.contains_key(kind), "no {kind} seen: {kinds:?}");
    }
    let out = c.run("check", &[], b"");
    assert_ok(&out);
    assert!(text(&out).contains("encryption             SSE-C with the key in"), "{}", text(&out));
    // The key never appears in the log or on any output.
    let b64 = {
        use std::process::Command;
        let out = Command::new("base64").arg("-w0").arg(&key_file).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(b64.len(), 44);
    assert!(!c.log_text().contains(&b64));
    assert!(!text(&out).contains(&b64));

    // A key file of the wrong size is refused before any request, naming
    // the file but none of its bytes.
    std::fs::write(&key_file, "dG9vLXNob3J0").unwrap();
    let out = c.run("backup_data", &[&payloads[1].0], b"x");
    assert_fails_with(&out, "sse_customer_key_file");
    assert_fails_with(&out, "256-bit key");
    assert!(!stderr(&out).contains("dG9vLXNob3J0"));
}
