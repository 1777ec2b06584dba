//! The S3 options that shape requests (storage class refused by a server,
//! proxy bypass, timeouts, addressing style, a private CA), each against a
//! real process: s3s-fs, moto over TLS, or a socket the test controls.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;

const TS: &str = "20240315123045";

#[test]
fn a_refused_storage_class_names_the_option_and_the_server() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: only s3s-fs is known to refuse storage classes");
        return;
    }
    let c = Cluster::new(&server, &[("storage_class", "DEEP_ARCHIVE")]);
    let seg = c.backup_dir("gpseg0", TS);
    let needle =
        format!("the server at {} does not support storage class DEEP_ARCHIVE (option storage_class)", server.endpoint);
    // Found at setup, before any data moves...
    let out = c.run("setup_plugin_for_backup", &[&seg.display().to_string(), "master", "\"-1\""], b"");
    assert_fails_with(&out, &needle);
    assert_fails_with(&out, "InvalidStorageClass");
    // ...by the preflight...
    let out = c.run("check", &[], b"");
    assert_fails_with(&out, &needle);
    assert!(String::from_utf8_lossy(&out.stdout).contains("data storage class     DEEP_ARCHIVE"));
    // ...and by a backup, which leaves nothing behind.
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    assert_fails_with(&c.run("backup_data", &[&path], &data(1000, 1)), &needle);
    let out = c.run("list_directory", &[], b"");
    assert_ok(&out);
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
    // Metadata files are not payloads: backup_file still works.
    let meta = seg.join(format!("gpbackup_{TS}_metadata.sql"));
    std::fs::write(&meta, "x").unwrap();
    assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));

    // The metadata class is named as such.
    let c = Cluster::new(&server, &[("metadata_storage_class", "STANDARD_IA")]);
    let out = c.run("backup_file", &[&meta.display().to_string()], b"");
    assert_fails_with(&out, "does not support storage class STANDARD_IA (option metadata_storage_class)");
    // STANDARD, when asked for explicitly, is sent and accepted.
    let c = Cluster::new(&server, &[("storage_class", "STANDARD")]);
    assert_ok(&c.run("backup_data", &[&path], b"standard"));
    assert_ok(&c.run("check", &[], b""));
}

#[test]
fn no_proxy_bypasses_the_configured_proxy() {
    let server = Server::start();
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    let host = server.endpoint.split("://").nth(1).unwrap().split(':').next().unwrap().to_string();
    let seg_path = |c: &Cluster| c.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}")).display().to_string();

    let through_proxy =
        Cluster::new(&server, &[("http_proxy", &dead_proxy), ("connect_timeout", "2s"), ("retry_max_attempts", "2")]);
    let out = through_proxy.run("backup_data", &[&seg_path(&through_proxy)], b"x");
    assert_fails_with(&out, "s3://");

    let bypass =
        Cluster::new(&server, &[("http_proxy", &dead_proxy), ("no_proxy", &format!("example.invalid, {host}"))]);
    let payload = data(2000, 2);
    assert_ok(&bypass.run("backup_data", &[&seg_path(&bypass)], &payload));
    let out = bypass.run("restore_data", &[&seg_path(&bypass)], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
}

/// A server that accepts connections and never answers.
fn silent_server() -> (u16, Arc<Mutex<Vec<std::net::TcpStream>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            keep.lock().unwrap().push(stream);
        }
    });
    (port, held)
}

#[test]
fn read_timeout_bounds_a_silent_server() {
    let (port, _held) = silent_server();
    let server = Server::placeholder(&format!("http://127.0.0.1:{port}"));
    let c = Cluster::new(&server, &[("read_timeout", "1s"), ("retry_max_attempts", "3")]);
    let path = c.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}")).display().to_string();
    let started = Instant::now();
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "s3://");
    assert!(stderr(&out).to_lowercase().contains("timeout") || stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // Three attempts of 1 s plus back-off; the default (300 s) would hang here.
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_fails_with(&out, "gave up after 3 attempts");
}

/// An HTTP proxy that records each request's head and answers 400 (not retried).
fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).map(|n| n == 1).unwrap_or(false) {
                head.push(byte[0]);
            }
            keep.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[test]
fn force_path_style_chooses_the_request_address() {
    for (style, want) in
        [("true", "GET http://localhost:9/gpbackup-test/?"), ("false", "GET http://gpbackup-test.localhost:9/?")]
    {
        let (proxy, seen) = recording_proxy();
        let server = Server::placeholder("http://localhost:9");
        let c = Cluster::new(&server, &[("force_path_style", style), ("http_proxy", &proxy)]);
        let out = c.run("list_directory", &[], b"");
        assert_fails_with(&out, "s3://");
        // (A copy: the proxy thread needs the lock for the next request.)
        let first = seen.lock().unwrap().first().cloned();
        let first = first.unwrap_or_else(|| panic!("no request reached the proxy: {}", stderr(&out)));
        assert!(first.starts_with(want), "force_path_style {style}: {first}");
        let out = c.run("check", &[], b"");
        let report = String::from_utf8_lossy(&out.stdout).into_owned();
        let addressing = if style == "true" { "path-style" } else { "virtual-host" };
        assert!(report.contains(&format!("addressing             {addressing}")), "{report}");
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl.
fn private_ca(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl is needed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gpbackup test CA"],
        &["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    ]
    .concat());
    run(&[&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[test]
fn ca_cert_file_trusts_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    private_ca(dir.path());
    let server = Server::start_moto_with_tls(Some((&dir.path().join("server.pem"), &dir.path().join("server.key"))));
    assert!(server.endpoint.starts_with("https://"));

    let untrusted = Cluster::new(&server, &[("encryption", "on")]);
    let out = untrusted.run("check", &[], b"");
    assert_fails_with(&out, "certificate");

    let ca = dir.path().join("ca.pem").display().to_string();
    let trusted = Cluster::new(&server, &[("encryption", "on"), ("ca_cert_file", &ca)]);
    let out = trusted.run("check", &[], b"");
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("tls                    on, trusting the system roots and {ca}"))
    );
    let path = trusted.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data(3000, 3);
    assert_ok(&trusted.run("backup_data", &[&path], &payload));
    let out = trusted.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
}

#[test]
fn check_stops_at_the_first_failure_with_a_precise_message() {
    let server = Server::start();
    let c = Cluster::new(&server, &[("bucket", "no-such-bucket-here")]);
    let out = c.run("check", &[], b"");
    assert_fails_with(&out, "check: bucket: list s3://no-such-bucket-here/");
    assert_fails_with(&out, "NoSuchBucket");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("credentials            static keys from the plugin config"), "{report}");
    assert!(!report.contains("probe") && !report.contains("all checks passed"), "{report}");

    let c = Cluster::new(&server, &[("aws_secret_access_key", "wrong-secret-value")]);
    let out = c.run("check", &[], b"");
    assert_fails_with(&out, "check: bucket");
    assert!(
        !stderr(&out).contains("wrong-secret-value") && !String::from_utf8_lossy(&out.stdout).contains("wrong-secret")
    );

    let out = run_plugin(&["check".into(), "/nonexistent/cfg.yaml".into()], b"", &c.home);
    assert_fails_with(&out, "/nonexistent/cfg.yaml");
    assert!(out.stdout.is_empty());
}

#[test]
fn check_names_the_credential_source_of_the_default_chain() {
    let server = Server::start();
    let c = Cluster::new(&server, &[("aws_access_key_id", ""), ("aws_secret_access_key", "")]);
    let out = Command::new(&*PLUGIN)
        .args(["check", &c.config.display().to_string()])
        .env("HOME", &c.home)
        .env("AWS_ACCESS_KEY_ID", &server.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_key)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .unwrap();
    assert_ok(&out);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = report.lines().find(|l| l.starts_with("credentials")).unwrap_or_default();
    assert!(line.contains("the AWS default chain: EnvironmentVariable"), "{report}");
    assert!(line.contains(&server.access_key[..4]) && !report.contains(&server.secret_key), "{report}");
}
