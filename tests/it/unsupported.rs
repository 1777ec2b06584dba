//! What a server does not implement is said once, not retried: a `501
//! NotImplemented` is an answer, and retrying it only spends the retry
//! budget (20 to 45 s) before the same answer. And `check` asks for a
//! restore (RestoreObject) only where the config stores something cold.

use crate::support::{Cluster, RecordingProxy, Server, assert_fails_with, assert_ok, run_plugin};

const TS: &str = "20240101010101";

/// The requests whose head (method and target) contains `needle`.
fn requests(proxy: &RecordingProxy, needle: &str) -> usize {
    lines(proxy).iter().filter(|l| l.contains(needle)).count()
}

/// The request lines (method and target) so far.
fn lines(proxy: &RecordingProxy) -> Vec<String> {
    proxy.heads().iter().filter_map(|h| h.lines().next().map(str::to_string)).collect()
}

#[test]
fn not_implemented_is_answered_once() {
    // s3s-fs answers PutObjectLegalHold with 501 NotImplemented.
    let server = Server::start();
    let proxy = RecordingProxy::start(&server.endpoint);
    let c = Cluster::new(&server, &[("http_proxy", &proxy.url)]);
    let dir = c.backup_dir("seg0", TS);
    let file = dir.join(format!("gpbackup_0_{TS}_16384"));
    assert_ok(&c.run("backup_data", &[&file.display().to_string()], b"table data\n"));
    let started = std::time::Instant::now();
    let args = ["legal-hold", "on", &c.config.display().to_string(), TS].map(str::to_string);
    let out = run_plugin(&args, b"", &c.home);
    assert_fails_with(&out, "NotImplemented");
    assert_eq!(requests(&proxy, "legal-hold"), 1, "{:?}", lines(&proxy));
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "took {:?}", started.elapsed());
}

#[test]
fn check_asks_for_a_restore_only_where_something_is_cold() {
    let server = Server::start();
    let proxy = RecordingProxy::start(&server.endpoint);
    let c = Cluster::new(&server, &[("http_proxy", &proxy.url)]);
    let out = c.run("check", &[], b"");
    assert_ok(&out);
    assert_eq!(requests(&proxy, "?restore"), 0, "{:?}", lines(&proxy));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!report.contains("s3:RestoreObject"), "{report}");

    // With table data in an archive class it is asked once (moto implements it).
    let moto = Server::start_moto();
    let proxy = RecordingProxy::start(&moto.endpoint);
    let c = Cluster::new(&moto, &[("http_proxy", &proxy.url), ("storage_class", "DEEP_ARCHIVE")]);
    let out = c.run("check", &[], b"");
    assert_ok(&out);
    assert_eq!(requests(&proxy, "?restore"), 1, "{:?}", lines(&proxy));
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(report.contains("s3:RestoreObject allowed"), "{report}");
}
