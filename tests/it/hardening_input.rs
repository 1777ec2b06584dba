//! Never a leaked secret, never a panic, whatever the input: configs in
//! every YAML form, files that are not configs, values that would become
//! broken headers or URLs, paths with control characters or at the file
//! system's name limit, and bare content ids. Each test failed before its
//! fix.

use std::time::{Duration, Instant};

use crate::support::*;

const TS: &str = "20240315123045";

#[test]
fn every_yaml_form_of_the_config_copy_is_uploaded_without_secrets() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let coord = c.backup_dir("coord/gpseg-1", TS);
    let copy = coord.join(format!("gpbackup_{TS}_plugin_config.yaml"));
    let secret = &server.secret_key;
    let forms = [
        format!(
            "executablepath: {p}\noptions: {{bucket: {b}, endpoint: \"{e}\", folder: \"{f}\", \
             aws_access_key_id: {a}, aws_secret_access_key: {secret}, encryption: \"off\"}}\n",
            p = *PLUGIN,
            b = server.bucket,
            e = server.endpoint,
            f = c.folder,
            a = server.access_key
        ),
        format!(
            "executablepath: {p}\noptions:\n  \"bucket\": {b}\n  'aws_secret_access_key':\n    {secret}\n  \
             http_proxy: \"http://me:{secret}x@proxy:3128\"\n",
            p = *PLUGIN,
            b = server.bucket
        ),
    ];
    for form in forms {
        std::fs::write(&copy, &form).unwrap();
        let path = copy.display().to_string();
        assert_ok(&c.run("backup_file", &[&path], b""));
        std::fs::remove_file(&copy).unwrap();
        assert_ok(&c.run("restore_file", &[&path], b""));
        let restored = std::fs::read_to_string(&copy).unwrap();
        assert!(!restored.contains(secret.as_str()), "{restored}");
        let yaml: serde_yaml::Value = serde_yaml::from_str(&restored).expect("still YAML");
        assert_eq!(yaml["options"]["bucket"].as_str(), Some(server.bucket.as_str()));
    }
}

#[test]
fn a_key_file_given_as_the_config_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sse.key");
    std::fs::write(&key, "c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwMTI=\n").unwrap();
    let path = key.display().to_string();
    let out = run_plugin(&["check".to_string(), path.clone()], b"", dir.path());
    assert_fails_with(&out, "invalid YAML");
    let log: String = std::fs::read_dir(dir.path().join("gpAdminLogs"))
        .map(|d| d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect())
        .unwrap_or_default();
    for text in [stderr(&out), log] {
        assert!(!text.contains("c2VjcmV0"), "{text}");
    }
}

#[test]
fn values_that_would_break_requests_are_refused_at_config_time() {
    let server = Server::start();
    for (option, value, needle) in [
        ("region", "us-east-1\\nx", "region must be printable ASCII"),
        ("aws_access_key_id", "AKIA\\nX", "aws_access_key_id must be printable ASCII"),
        ("aws_session_token", "tok\\r\\nx", "aws_session_token must be printable ASCII"),
        ("endpoint", "http://127.0.0.1:99999", "endpoint is not a valid URL"),
        ("endpoint", "not a url", "endpoint is not a valid URL"),
        ("endpoint", "http://[::1", "endpoint is not a valid URL"),
        ("folder", "../other-bucket", "folder leaves the bucket"),
    ] {
        let c = Cluster::new(&server, &[(option, value)]);
        let started = Instant::now();
        let out = c.run("check", &[], b"");
        assert_fails_with(&out, needle);
        assert!(!stderr(&out).contains("panicked"));
        assert!(started.elapsed() < Duration::from_secs(3), "{option}: {:?}", started.elapsed());
    }
}

#[test]
fn deep_yaml_fails_in_a_moment() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("deep.yaml");
    let depth = 60_000;
    std::fs::write(&config, format!("executablepath: /x\noptions: {}{}\n", "[".repeat(depth), "]".repeat(depth)))
        .unwrap();
    let started = Instant::now();
    let out = run_plugin(&["check".to_string(), config.display().to_string()], b"", dir.path());
    assert_fails_with(&out, "nested more than");
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn paths_with_control_characters_are_refused_and_listings_escaped() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let dir = c.backup_dir("gpseg0", TS);
    let evil = format!("{}/gpbackup_0_{TS}\nforged\t999", dir.display());
    assert_fails_with(&c.run("backup_data", &[&evil], b"x"), "control character");
    // A key with a newline written by another tool is listed on one line.
    let key = format!("{}/backups/20240315/{TS}/odd%0Aname%09x", c.folder);
    let out = server.curl(&format!("{}/{key}", server.bucket), &["-X", "PUT", "--data-binary", "x"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(listing.lines().count(), 1, "{listing:?}");
    assert!(listing.contains("odd\\x0aname\\x09x\t1"), "{listing:?}");
}

#[test]
fn restore_file_works_at_the_file_name_limit() {
    // moto: s3s-fs keeps each object's metadata in a file named after the
    // key, which cannot hold a key with a 255-byte last component.
    let server = Server::start_moto();
    let c = Cluster::new(&server, &[]);
    let dir = c.backup_dir("coord", TS);
    let name = format!("gpbackup_{TS}_{}", "n".repeat(255 - 24));
    assert_eq!(name.len(), 255);
    let path = dir.join(&name);
    std::fs::write(&path, "metadata").unwrap();
    let path = path.display().to_string();
    assert_ok(&c.run("backup_file", &[&path], b""));
    std::fs::remove_file(&path).unwrap();
    assert_ok(&c.run("restore_file", &[&path], b""));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "metadata");
}

#[test]
fn bare_content_ids_are_content_ids() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    for (scope, id) in [("master", "-1"), ("coordinator", "-1"), ("segment", "0")] {
        assert_ok(&c.run("setup_plugin_for_backup", &[&dir, scope, id], b""));
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, scope, id], b""));
    }
}
