//! Every protocol command, run as gpbackup runs it, against a real S3 server.

use crate::support::*;

const TS: &str = "20240315123045";
const TS2: &str = "20240315123046";

#[test]
fn version_commands_print_exactly_one_line() {
    let home = tempfile::tempdir().unwrap();
    let out = run_plugin(&["plugin_api_version".into()], b"", home.path());
    assert_ok(&out);
    assert_eq!(out.stdout, b"0.5.0\n");

    let out = run_plugin(&["--version".into()], b"", home.path());
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let tokens: Vec<&str> = text.trim().split(' ').collect();
    assert_eq!(tokens.len(), 3, "{text:?}");
    assert_eq!(tokens[0..2], ["gpbackup_s3_plugin", "version"]);
    assert_eq!(tokens[2], env!("CARGO_PKG_VERSION"));
}

/// `version --build` says where the executable came from, after the very
/// line `--version` prints; the coordinator's setup hooks log it first, so
/// each backup's log names the build that ran (and no segment repeats it).
#[test]
fn version_build_names_the_build_and_the_coordinator_logs_it() {
    let home = tempfile::tempdir().unwrap();
    let line = run_plugin(&["--version".into()], b"", home.path());
    let out = run_plugin(&["version".into()], b"", home.path());
    assert_ok(&out);
    assert_eq!(out.stdout, line.stdout);

    let out = run_plugin(&["version".into(), "--build".into()], b"", home.path());
    assert_ok(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().map(str::as_bytes), line.stdout.strip_suffix(b"\n"), "{text}");
    let facts: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").unwrap_or_else(|| panic!("{l:?}"))).collect();
    let keys: Vec<&str> = facts.iter().map(|(k, _)| *k).collect();
    assert_eq!(keys, ["commit", "built", "rustc", "target", "glibc"], "{text}");
    assert!(facts.iter().all(|(_, v)| !v.trim().is_empty()), "{text}");
    let fact = |key: &str| facts.iter().find(|(k, _)| *k == key).unwrap().1;
    assert!(fact("rustc").starts_with("rustc "), "{text}");
    assert_eq!(fact("target"), "x86_64-unknown-linux-gnu", "{text}");
    assert!(fact("glibc").contains(" or newer"), "{text}");
    assert!(home.path().read_dir().unwrap().next().is_none(), "version commands must not log");

    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let seg = c.backup_dir("seg0/gpseg0", TS).display().to_string();
    assert_ok(&c.run("setup_plugin_for_backup", &[&seg, "segment_host"], b""));
    assert_ok(&c.run("setup_plugin_for_backup", &[&seg, "segment", "\"0\""], b""));
    assert!(!c.log_text().contains(fact("commit")), "segments log no build line:\n{}", c.log_text());
    let coord = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    assert_ok(&c.run("setup_plugin_for_backup", &[&coord, "master", "\"-1\""], b""));
    let log = c.log_text();
    let first = log.lines().next().unwrap_or_default();
    let version = format!("gpbackup_s3_plugin {}: commit {}", env!("CARGO_PKG_VERSION"), fact("commit"));
    assert!(first.contains("-[INFO]:-") && first.contains(&version), "{log}");
    assert!(first.contains(&format!("glibc {}", fact("glibc"))), "{first}");
}

/// The plugin-only checks of gpbackup's plugins/plugin_test.sh, in order.
#[test]
fn plugin_test_sh_sequence() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let coord = c.backup_dir("coord/gpseg-1", TS);
    let seg = c.backup_dir("seg0/gpseg0", TS);
    let dir = coord.display().to_string();

    // plugin_api_version >= 0.4.0 and --version covered above.
    for hook in ["setup_plugin_for_backup", "setup_plugin_for_restore"] {
        assert_ok(&c.run(hook, &[&dir, "coordinator", "\"-1\""], b""));
        assert_ok(&c.run(hook, &[&dir, "master", "\"-1\""], b""));
        assert_ok(&c.run(hook, &[&seg.display().to_string(), "segment_host"], b""));
        assert_ok(&c.run(hook, &[&seg.display().to_string(), "segment", "\"0\""], b""));
    }

    let text_file = coord.join(format!("testfile_{TS}.txt"));
    std::fs::write(&text_file, "this is some text").unwrap();
    let path = text_file.display().to_string();
    assert_ok(&c.run("backup_file", &[&path], b""));
    assert!(text_file.exists(), "backup_file must keep the local file");

    std::fs::remove_file(&text_file).unwrap();
    assert_ok(&c.run("restore_file", &[&path], b""));
    assert_eq!(std::fs::read_to_string(&text_file).unwrap(), "this is some text");

    let missing = coord.join("there_is_no_file_to_restore");
    let out = c.run("restore_file", &[&missing.display().to_string()], b"");
    assert_fails_with(&out, "there_is_no_file_to_restore");
    assert!(!missing.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&coord).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "partial files left: {leftovers:?}");

    for hook in ["cleanup_plugin_for_backup", "cleanup_plugin_for_restore"] {
        assert_ok(&c.run(hook, &[&dir, "coordinator", "\"-1\""], b""));
        assert_ok(&c.run(hook, &[&seg.display().to_string(), "segment_host"], b""));
        assert_ok(&c.run(hook, &[&seg.display().to_string(), "segment", "\"0\""], b""));
    }

    let data_path = seg.join(format!("testdata_{TS}.txt")).display().to_string();
    let payload: Vec<u8> = data(1000, 1).iter().map(|b| b'a' + b % 26).chain(*b"\n").collect();
    assert_ok(&c.run("backup_data", &[&data_path], &payload));
    let out = c.run("restore_data", &[&data_path], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, payload);

    let empty_path = seg.join(format!("test_no_data_{TS}.txt")).display().to_string();
    assert_ok(&c.run("backup_data", &[&empty_path], b""));
    let out = c.run("restore_data", &[&empty_path], b"");
    assert_ok(&out);
    assert!(out.stdout.is_empty());

    let out = c.run("unknown_command", &[], b"");
    assert_fails_with(&out, "unknown command");
}

#[test]
fn round_trips_are_byte_identical_and_keyed_like_the_go_plugin() {
    let server = Server::start();
    // Folder with stray slashes: stored, listed and deleted the same way.
    let folder = format!("/{}//", unique_folder("prod/gp"));
    let c = Cluster::with_folder(&server, &folder, &[]);
    let seg = c.backup_dir("data1/primary/gpseg3", TS);
    for (name, len) in [
        ("gpbackup_3_20240315123045_16384.gz", 0usize),
        ("gpbackup_3_20240315123045_16385.gz", 1024),
        ("gpbackup_3_20240315123045", 100 << 20),
    ] {
        let payload = data(len, len as u64);
        let path = seg.join(name).display().to_string();
        assert_ok(&c.run("backup_data", &[&path], &payload));
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == payload, "{name}: {} bytes back, {} sent", out.stdout.len(), payload.len());

        let key = c.key(TS, name);
        assert!(key.starts_with(&c.folder) && !key.contains("//"));
        if let Some(file) = server.object_file(&key) {
            assert_eq!(std::fs::metadata(&file).unwrap().len(), len as u64, "{key} on disk");
        }
        let listing = String::from_utf8(c.run("list_directory", &[&folder], b"").stdout).unwrap();
        assert!(listing.contains(&format!("{key}\t{len}\n")), "{key} not in listing:\n{listing}");
    }
    // Multi-part upload with small parts and several ranges on the way back.
    let c2 = Cluster::with_folder(
        &server,
        &c.folder,
        &[
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
            ("backup_max_concurrent_requests", "3"),
        ],
    );
    let payload = data((23 << 20) + 7, 9);
    let path = seg.join("gpbackup_3_20240315123045_99.zst").display().to_string();
    assert_ok(&c2.run("backup_data", &[&path], &payload));
    let out = c2.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
}

#[test]
fn restore_file_writes_the_file_and_log_records_it() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let coord = c.backup_dir("coord/gpseg-1", TS);
    let meta = coord.join(format!("gpbackup_{TS}_metadata.sql"));
    let content = data(3 << 20, 5);
    std::fs::write(&meta, &content).unwrap();
    let path = meta.display().to_string();
    assert_ok(&c.run("backup_file", &[&path], b""));
    std::fs::remove_file(&meta).unwrap();
    assert_ok(&c.run("restore_file", &[&path], b""));
    assert!(std::fs::read(&meta).unwrap() == content);

    let log = c.log_text();
    let upload_line =
        log.lines().find(|l| l.contains("Uploaded") && l.contains("_metadata.sql")).expect("upload logged");
    assert!(upload_line.contains(&format!("({} bytes)", content.len())), "{upload_line}");
    assert!(upload_line.contains(" gpbackup_s3_plugin:") && upload_line.contains("-[INFO]:-"), "{upload_line}");
    assert!(log.lines().any(|l| l.contains("Downloaded") && l.contains("_metadata.sql")));
    assert!(!log.contains(&server.secret_key));
}

#[test]
fn restore_data_subset_returns_exactly_the_ranges() {
    let server = Server::start();
    let c = Cluster::new(&server, &[("restore_multipart_chunksize", "5MB"), ("restore_subset", "on")]);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data(12 << 20, 77);
    assert_ok(&c.run("backup_data", &[&path], &payload));

    let m = 1 << 20;
    let cases: Vec<Vec<(usize, usize)>> = vec![
        vec![(3, 10)],
        vec![(0, 0), (100, 200), (200, 300), (0, 0), (6 * m, 11 * m)],
        vec![(0, 12 * m)],
        vec![(5 * m - 1, 5 * m + 1), (12 * m - 1, 12 * m)],
        vec![],
    ];
    for ranges in cases {
        let mut text = ranges.len().to_string();
        for (s, e) in &ranges {
            text.push_str(&format!(" {s} {e}"));
        }
        // As gpbackup_helper writes it: no trailing newline.
        let offsets = c.dir.path().join("gprestore_offsets_x");
        std::fs::write(&offsets, &text).unwrap();
        let out = c.run("restore_data_subset", &[&path, &offsets.display().to_string()], b"");
        assert_ok(&out);
        let want: Vec<u8> = ranges.iter().flat_map(|(s, e)| payload[*s..*e].iter().copied()).collect();
        assert!(out.stdout == want, "ranges {text}: got {} bytes, want {}", out.stdout.len(), want.len());
    }

    // A range past the end of the object: fail, and emit nothing of it.
    let offsets = c.dir.path().join("gprestore_offsets_bad");
    std::fs::write(&offsets, format!("1 {} {}", 12 * m - 5, 12 * m + 5)).unwrap();
    let out = c.run("restore_data_subset", &[&path, &offsets.display().to_string()], b"");
    assert_fails_with(&out, "bytes");
    assert!(out.stdout.is_empty());

    // Bad offsets files name the file and touch nothing.
    std::fs::write(&offsets, "2 0 10").unwrap();
    let out = c.run("restore_data_subset", &[&path, &offsets.display().to_string()], b"");
    assert_fails_with(&out, "gprestore_offsets_bad");
    let out = c.run("restore_data_subset", &[&path, "/nonexistent/offsets"], b"");
    assert_fails_with(&out, "/nonexistent/offsets");
}

#[test]
fn delete_backup_removes_exactly_one_backup() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    for ts in [TS, TS2] {
        let seg = c.backup_dir("gpseg0", ts);
        assert_ok(&c.run("backup_data", &[&seg.join(format!("gpbackup_0_{ts}")).display().to_string()], ts.as_bytes()));
        let f = seg.join(format!("gpbackup_{ts}_report"));
        std::fs::write(&f, ts).unwrap();
        assert_ok(&c.run("backup_file", &[&f.display().to_string()], b""));
    }
    assert_ok(&c.run("delete_backup", &[TS], b""));

    let gone = c.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}"));
    let out = c.run("restore_data", &[&gone.display().to_string()], b"");
    assert_fails_with(&out, "NoSuchKey");
    assert!(out.stdout.is_empty(), "restore of a missing object wrote to stdout");
    let kept = c.backup_dir("gpseg0", TS2).join(format!("gpbackup_0_{TS2}"));
    let out = c.run("restore_data", &[&kept.display().to_string()], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, TS2.as_bytes());

    // Deleting again is fine (reruns after a failure are safe).
    assert_ok(&c.run("delete_backup", &[TS], b""));
    for bad in ["2024031512304", "202403151230455", "2024031512304x", ""] {
        let out = c.run("delete_backup", &[bad], b"");
        assert_fails_with(&out, "timestamp");
    }
}

#[test]
fn listing_and_deleting_go_past_one_page() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to create 1,500 objects quickly");
        return;
    }
    let c = Cluster::new(&server, &[]);
    // s3s-fs serves plain files: make 1,500 objects of one backup directly.
    let key_dir = server.object_file(&c.key(TS, "")).unwrap();
    std::fs::create_dir_all(&key_dir).unwrap();
    for i in 0..1500 {
        std::fs::write(key_dir.join(format!("gpbackup_0_{TS}_{i:05}")), i.to_string()).unwrap();
    }
    let sibling = c.backup_dir("gpseg0", TS2).join(format!("gpbackup_0_{TS2}"));
    assert_ok(&c.run("backup_data", &[&sibling.display().to_string()], b"keep me"));

    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert_eq!(listing.lines().count(), 1501);
    assert!(listing.contains(&format!("{}\t4\n", c.key(TS, &format!("gpbackup_0_{TS}_01499")))));

    assert_ok(&c.run("delete_backup", &[TS], b""));
    let listing = String::from_utf8(c.run("list_directory", &[], b"").stdout).unwrap();
    assert_eq!(listing, format!("{}\t7\n", c.key(TS2, &format!("gpbackup_0_{TS2}"))));
}

#[test]
fn delete_directory_is_a_directory_and_refuses_the_root() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let base = c.folder.clone();
    let write = |folder: &str| {
        let c2 = Cluster::with_folder(&server, folder, &[]);
        let p = c2.backup_dir("gpseg0", TS).join("f");
        assert_ok(&c2.run("backup_data", &[&p.display().to_string()], folder.as_bytes()));
    };
    write(&format!("{base}/a"));
    write(&format!("{base}/ab"));
    for root in ["", "/", "//"] {
        assert_fails_with(&c.run("delete_directory", &[root], b""), "bucket root");
    }
    assert_ok(&c.run("delete_directory", &[&format!("{base}/a/")], b""));
    let listing = String::from_utf8(c.run("list_directory", &[&base], b"").stdout).unwrap();
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(listing.contains(&format!("{base}/ab/")));
}

#[test]
fn setup_probe_leaves_nothing_and_segment_scopes_need_no_network() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let coord = c.backup_dir("coord/gpseg-1", TS);
    assert_ok(&c.run("setup_plugin_for_backup", &[&coord.display().to_string(), "master", "\"-1\""], b""));
    let listing = c.run("list_directory", &[], b"");
    assert_ok(&listing);
    assert!(listing.stdout.is_empty(), "setup left objects: {}", String::from_utf8_lossy(&listing.stdout));

    // Segment scopes never call the server: they pass with it gone, many at once.
    let dead = Cluster::with_folder(
        &server,
        "x",
        &[("endpoint", &format!("http://127.0.0.1:{}", free_port())), ("retry_max_attempts", "2")],
    );
    let seg = dead.backup_dir("gpseg0", TS).display().to_string();
    let runs: Vec<_> = (0..8)
        .map(|i| {
            let args = if i % 2 == 0 {
                vec![
                    "setup_plugin_for_backup".to_string(),
                    dead.config.display().to_string(),
                    seg.clone(),
                    "segment_host".into(),
                ]
            } else {
                vec![
                    "setup_plugin_for_backup".to_string(),
                    dead.config.display().to_string(),
                    seg.clone(),
                    "segment".into(),
                    format!("\"{i}\""),
                ]
            };
            let home = dead.home.clone();
            std::thread::spawn(move || run_plugin(&args, b"", &home))
        })
        .collect();
    for r in runs {
        assert_ok(&r.join().unwrap());
    }
    // The coordinator scope does check, and says what failed.
    let out = dead.run("setup_plugin_for_backup", &[&seg, "master", "\"-1\""], b"");
    assert_fails_with(&out, "s3://");
}

#[test]
fn wrong_credentials_and_missing_bucket_fail_cleanly() {
    let server = Server::start();
    let c = Cluster::new(&server, &[("aws_secret_access_key", "definitely-wrong-secret")]);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join("f").display().to_string();
    let out = c.run("backup_data", &[&path], b"data");
    assert_fails_with(&out, "s3://");
    assert!(!stderr(&out).contains("definitely-wrong-secret"));
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "s3://");
    assert!(out.stdout.is_empty());

    // The bucket is checked before the first backup byte moves. (s3s-fs
    // itself creates a bucket on PutObject, so the setup hook must look
    // before it writes.)
    let c = Cluster::new(&server, &[("bucket", "no-such-bucket-here")]);
    let dir = seg.display().to_string();
    let out = c.run("setup_plugin_for_backup", &[&dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, "NoSuchBucket");
    assert_fails_with(&out, "no-such-bucket-here");
    let out = c.run("setup_plugin_for_restore", &[&dir, "master", "\"-1\""], b"");
    assert_fails_with(&out, "NoSuchBucket");
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "no-such-bucket-here");
    assert!(out.stdout.is_empty());
    let out = c.run("list_directory", &[], b"");
    assert_fails_with(&out, "NoSuchBucket");
}

#[test]
fn plugin_config_copy_is_uploaded_without_secrets() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let coord = c.backup_dir("coord/gpseg-1", TS);
    let copy = coord.join(format!("gpbackup_{TS}_plugin_config.yaml"));
    std::fs::copy(&c.config, &copy).unwrap();
    let path = copy.display().to_string();
    assert_ok(&c.run("backup_file", &[&path], b""));
    assert!(std::fs::read_to_string(&copy).unwrap().contains(&server.secret_key), "local copy must stay as it was");
    std::fs::remove_file(&copy).unwrap();
    assert_ok(&c.run("restore_file", &[&path], b""));
    let restored = std::fs::read_to_string(&copy).unwrap();
    assert!(!restored.contains(&server.secret_key));
    // Still a YAML config, with the secret's value masked.
    let yaml: serde_yaml::Value = serde_yaml::from_str(&restored).unwrap();
    assert_eq!(yaml["options"]["aws_secret_access_key"].as_str(), Some("********"), "{restored}");
    assert!(restored.contains(&server.access_key) && restored.contains(&server.bucket));
}

#[test]
fn restore_into_a_closed_pipe_fails_without_hanging() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    assert_ok(&c.run("backup_data", &[&path], &data(30 << 20, 3)));
    // `restore_data | head -c 10`: the reader goes away early.
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' restore_data '{}' '{path}' | head -c 10 > /dev/null",
            *PLUGIN,
            c.config.display()
        ))
        .env("HOME", &c.home)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_fails_with(&out, "stdout");
}

/// One key with a control character in it (anyone with s3:PutObject can
/// write one) made every listing of its folder fail with an XML parse
/// error, so that its backup could no longer be listed, expired or
/// deleted. Listings ask for URL-encoded keys and mend the answers of
/// servers that send them raw (s3s-fs for objects, moto for versions).
fn a_key_no_xml_can_hold_breaks_no_listing(server: Server, versioned: Option<String>) {
    let extra: Vec<(&str, &str)> = versioned.iter().map(|b| ("bucket", b.as_str())).collect();
    let bucket = versioned.clone().unwrap_or_else(|| server.bucket.clone());
    let c = Cluster::new(&server, &extra);
    let seg = c.backup_dir("gpseg0", TS);
    assert_ok(&c.run("backup_data", &[&seg.join(format!("gpbackup_0_{TS}")).display().to_string()], b"data"));
    let odd = c.key(TS, &format!("gpbackup_{TS}_odd\u{1}name\u{b}x"));
    let stray = format!("{}/stray\u{1}key", c.folder);
    for key in [&odd, &stray] {
        let path = key.replace('\u{1}', "%01").replace('\u{b}', "%0B");
        // moto takes a body sent as a form for the form's fields.
        let binary = ["-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary", "x"];
        let out = server.curl(&format!("{bucket}/{path}"), &binary);
        assert!(out.status.success(), "PUT {path}: {}", String::from_utf8_lossy(&out.stdout));
    }

    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains(&format!("{}\t1\n", layout_printable(&odd))), "{listing}");
    assert!(listing.contains(&format!("{}\t1\n", layout_printable(&stray))), "{listing}");
    assert_eq!(listing.lines().count(), 3, "{listing}");
    for command in [&["backups"][..], &["expire", "--keep-last", "1"]] {
        let out = c.run(command[0], &command[1..], b"");
        assert_ok(&out);
    }
    assert_ok(&c.run("delete_backup", &[TS], b""));
    let listing = String::from_utf8(c.run("list_directory", &[], b"").stdout).unwrap();
    assert_eq!(listing, format!("{}\t1\n", layout_printable(&stray)));
}

/// `\xNN` for each control character, as listings print keys.
fn layout_printable(key: &str) -> String {
    key.chars().map(|c| if c.is_control() { format!("\\x{:02x}", c as u32) } else { c.to_string() }).collect()
}

#[test]
fn a_key_no_xml_can_hold_breaks_no_listing_on_s3s_fs() {
    a_key_no_xml_can_hold_breaks_no_listing(Server::start(), None);
}

#[test]
fn a_key_no_xml_can_hold_breaks_no_listing_on_moto() {
    a_key_no_xml_can_hold_breaks_no_listing(Server::start_moto(), None);
}

#[test]
fn a_key_no_xml_can_hold_breaks_no_version_listing_on_moto() {
    let server = Server::start_moto();
    let bucket = crate::object_lock::versioned_bucket(&server);
    a_key_no_xml_can_hold_breaks_no_listing(server, Some(bucket));
}
