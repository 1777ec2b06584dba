//! A drop-in replacement for the Go plugin: no more permissions than it
//! needs, every config it accepts with its meaning, legacy servers, and its
//! hidden commands. Each test failed before its fix.

use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20240315123045";

/// A proxy that denies every request whose request line contains one of
/// `denied` (with S3's 403 AccessDenied), and a cluster behind it.
fn least_privilege(server: &Server, denied: (&'static str, &'static str)) -> (FaultProxy, Cluster) {
    let proxy =
        FaultProxy::start(&server.endpoint, Faults { deny_s3: 1.0, only: Some(denied), ..Faults::default() }, 1);
    let c = Cluster::new(server, &[("endpoint", &proxy.endpoint), ("retry_max_attempts", "2")]);
    (proxy, c)
}

#[test]
fn hooks_need_no_more_than_the_go_plugin() {
    let server = Server::start();
    // Listing, deleting and listing uploads denied: a backup role with
    // PutObject and GetObject only.
    for denied in [("GET ", "list-type=2"), ("POST ", "?delete"), ("GET ", "?uploads")] {
        let (proxy, c) = least_privilege(&server, denied);
        let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
        let path = format!("{dir}/gpbackup_0_{TS}");
        for (hook, scope) in [("setup_plugin_for_backup", "master"), ("setup_plugin_for_backup", "segment")] {
            assert_ok(&c.run(hook, &[&dir, scope, "-1"], b""));
        }
        assert_ok(&c.run("backup_data", &[&path], &data(12 << 20, 1)));
        for hook in ["cleanup_plugin_for_backup", "setup_plugin_for_restore", "cleanup_plugin_for_restore"] {
            assert_ok(&c.run(hook, &[&dir, "master", "-1"], b""));
        }
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == data(12 << 20, 1));
        assert!(c.log_text().contains("WARNING") && c.log_text().contains(" s3:"), "{denied:?}: {}", c.log_text());
        assert!(proxy.stats.denials.load(std::sync::atomic::Ordering::Relaxed) > 0, "{denied:?}: nothing denied");
    }
}

#[test]
fn cleanup_hooks_finish_in_seconds_when_the_service_is_down() {
    let server = Server::placeholder("http://127.0.0.1:9");
    let c = Cluster::new(&server, &[]);
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    for scope in ["master", "segment_host"] {
        let started = Instant::now();
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, scope, "-1"], b""));
        assert!(started.elapsed() < Duration::from_secs(10), "{scope}: {:?}", started.elapsed());
    }
}

/// Configs the Go plugin runs with run here too, with the same meaning:
/// `0` for the defaults, sizes S3 forbids (clamped, with a warning),
/// `remove_duplicate_bucket` without an endpoint, and a bad option a
/// command does not use.
#[test]
fn every_config_the_go_plugin_accepts_runs() {
    let server = Server::start();
    let folder = unique_folder("gp");
    let c = Cluster::with_folder(
        &server,
        &folder,
        &[
            ("backup_multipart_chunksize", "0"),
            ("backup_max_concurrent_requests", "100"),
            ("restore_multipart_chunksize", "1MB"),
            ("restore_max_concurrent_requests", "0"),
        ],
    );
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    let path = format!("{dir}/gpbackup_0_{TS}");
    let payload = data(11 << 20, 7);
    let out = c.run("backup_data", &[&path], &payload);
    assert_ok(&out);
    assert!(c.log_text().contains("backup_max_concurrent_requests of 100"), "{}", c.log_text());
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);

    // A restore is not stopped by an option only backups use, nor a
    // backup by one only restores use.
    let restore_side = Cluster::with_folder(&server, &folder, &[("backup_multipart_chunksize", "huge")]);
    let out = restore_side.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
    let out = restore_side.run("backup_data", &[&format!("{dir}/gpbackup_1_{TS}")], b"x");
    assert_fails_with(&out, "backup_multipart_chunksize");
    let backup_side = Cluster::with_folder(&server, &folder, &[("restore_multipart_chunksize", "huge")]);
    assert_ok(&backup_side.run("backup_data", &[&format!("{dir}/gpbackup_2_{TS}")], b"y"));

    // remove_duplicate_bucket without an endpoint: accepted (the Go plugin
    // accepts it; AWS already keeps the bucket out of the path).
    let aws = Cluster::with_folder(
        &server,
        &folder,
        &[("endpoint", ""), ("region", "us-east-1"), ("remove_duplicate_bucket", "true")],
    );
    let out = aws.run("setup_plugin_for_restore", &[&dir, "segment", "0"], b"");
    assert_ok(&out);
}

/// `--version` names the executable as it was called (a renamed copy
/// reports its name, as the Go plugin does) and `-version` is accepted.
#[test]
fn version_names_the_executable_and_takes_one_dash() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("my_s3_plugin");
    std::fs::copy(&*PLUGIN, &renamed).unwrap();
    for flag in ["--version", "-version"] {
        let out = std::process::Command::new(&renamed).arg(flag).output().unwrap();
        assert_ok(&out);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text, format!("my_s3_plugin version {}\n", env!("CARGO_PKG_VERSION")), "{flag}");
    }
}

/// An explicit `http_proxy` carries every request, as in Go: the
/// environment's NO_PROXY does not bypass it; schemes in any case; SOCKS
/// refused with the reason.
#[test]
fn an_explicit_proxy_is_used_for_every_request() {
    let server = Server::start();
    let proxy = RecordingProxy::start(&server.endpoint);
    let upper = proxy.url.replacen("http://", "HTTP://", 1);
    let c = Cluster::new(&server, &[("http_proxy", &upper)]);
    let host = server.endpoint.split("://").nth(1).unwrap().split(':').next().unwrap().to_string();
    let dir = c.backup_dir("seg0/gpseg0", TS).display().to_string();
    let path = format!("{dir}/gpbackup_0_{TS}");
    let args = |cmd: &str| vec![cmd.to_string(), c.config.display().to_string(), path.clone()];
    let env = [("NO_PROXY", host.as_str()), ("no_proxy", host.as_str())];
    assert_ok(&run_plugin_env(&args("backup_data"), b"through the proxy", &c.home, &env));
    let out = run_plugin_env(&args("restore_data"), b"", &c.home, &env);
    assert_ok(&out);
    assert_eq!(out.stdout, b"through the proxy");
    let heads = proxy.heads();
    assert!(heads.iter().any(|h| h.starts_with("PUT ")) && heads.iter().any(|h| h.starts_with("GET ")), "{heads:?}");

    let socks = Cluster::new(&server, &[("http_proxy", "socks5://127.0.0.1:1080")]);
    assert_fails_with(&socks.run("list_directory", &[], b""), "http_proxy: SOCKS proxies are not supported");
}

/// Behind a server that refuses the newer checksum headers and unsigned
/// payloads and wants Content-MD5 on deletes, `checksums: md5` and `none`
/// run every command; the default (`crc32c`) is refused there, which shows
/// the server's checks bite.
#[test]
fn legacy_servers_work_with_checksums_md5_or_none() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.endpoint, Faults { legacy: true, ..Faults::default() }, 1);
    let modern = Cluster::new(&server, &[("endpoint", &proxy.endpoint), ("retry_max_attempts", "1")]);
    let dir = modern.backup_dir("seg0/gpseg0", TS).display().to_string();
    assert_fails_with(&modern.run("backup_data", &[&format!("{dir}/gpbackup_0_{TS}")], b"x"), "checksum");

    for mode in ["md5", "none"] {
        let c =
            Cluster::new(&server, &[("endpoint", &proxy.endpoint), ("checksums", mode), ("retry_max_attempts", "1")]);
        let coord = c.backup_dir("coord/gpseg-1", TS);
        let dir = c.backup_dir("seg0/gpseg0", TS).display().to_string();
        let coord_dir = coord.display().to_string();
        assert_ok(&c.run("setup_plugin_for_backup", &[&coord_dir, "master", "-1"], b""));
        let big = data(20 << 20, 3);
        let small = data(1000, 4);
        for (n, payload) in [(0, &big), (1, &small)] {
            assert_ok(&c.run("backup_data", &[&format!("{dir}/gpbackup_{n}_{TS}")], payload));
        }
        let meta = coord.join(format!("gpbackup_{TS}_metadata.sql"));
        std::fs::write(&meta, &small).unwrap();
        assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));
        std::fs::remove_file(&meta).unwrap();
        assert_ok(&c.run("restore_file", &[&meta.display().to_string()], b""));
        assert!(std::fs::read(&meta).unwrap() == small, "{mode}");
        for (n, payload) in [(0, &big), (1, &small)] {
            let out = c.run("restore_data", &[&format!("{dir}/gpbackup_{n}_{TS}")], b"");
            assert_ok(&out);
            assert!(&out.stdout == payload, "{mode}: restore of {n}");
        }
        assert_ok(&c.run("list_directory", &[], b""));
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&coord_dir, "master", "-1"], b""));
        assert_ok(&c.run("delete_backup", &[TS], b""));
        let out = c.run("restore_data", &[&format!("{dir}/gpbackup_1_{TS}")], b"");
        assert!(!out.status.success(), "{mode}: the backup was not deleted");
        assert!(!c.log_text().contains("WARNING"), "{mode}: {}", c.log_text());
    }
    let stats = &proxy.stats;
    assert_eq!(stats.legacy_refusals.load(std::sync::atomic::Ordering::Relaxed), 1, "only the modern client refused");
    assert!(stats.md5_checked.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The Go plugin's hidden directory commands: files stored under their own
/// cleaned paths, restored flat into the prefix, in both forms.
#[test]
fn hidden_directory_commands_round_trip() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let src = c.dir.path().join("dd");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let files = [("a", data(3000, 1)), ("sub/b", data(9 << 20, 2)), ("sub/c", Vec::new())];
    for (name, bytes) in &files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let src_text = src.display().to_string();
    for (backup, restore) in
        [("backup_directory", "restore_directory"), ("backup_directory_parallel", "restore_directory_parallel")]
    {
        let out = c.run(backup, &[&src_text], b"");
        assert_ok(&out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(&format!("Uploaded 3 files ({} bytes)", 3000 + (9 << 20))), "{backup}: {text}");
        // Stored under the cleaned path, outside the folder.
        let listing = c.run("list_directory", &[src_text.trim_start_matches('/')], b"");
        assert_ok(&listing);
        let listed = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(listed.contains(&format!("{}/sub/b\t{}", src_text.trim_start_matches('/'), 9 << 20)), "{listed}");

        // PREFIX is both where the keys are and where the files go (flat).
        std::fs::remove_file(src.join("a")).unwrap();
        let out = c.run(restore, &[&src_text, "2"], b"");
        assert_ok(&out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("Downloaded 3 files"), "{restore}: {text}");
        for (name, bytes) in &files {
            let base = name.rsplit('/').next().unwrap();
            assert!(std::fs::read(src.join(base)).unwrap() == *bytes, "{restore}: {base}");
        }
        for flat in ["b", "c"] {
            std::fs::remove_file(src.join(flat)).unwrap();
        }
    }
    assert_fails_with(&c.run("backup_directory", &["/no/such/dir"], b""), "/no/such/dir");
    let help = run_plugin(&["--help".to_string()], b"", &c.home);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("backup_directory"), "hidden from help");
}
