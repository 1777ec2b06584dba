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
