//! Reliability under faults: a fault-injecting proxy between the plugin and
//! a real s3s-fs resets connections, answers 503 SlowDown and cuts
//! responses short; streams must still come back byte-identical, every time.

mod support;

use support::fault_proxy::{FaultProxy, Faults};
use support::*;

const TS: &str = "20240315123045";
const MIB: usize = 1 << 20;

fn faulty_cluster(server: &Server, faults: Faults, seed: u64) -> (FaultProxy, Cluster) {
    let proxy = FaultProxy::start(&server.endpoint, faults, seed);
    let cluster = Cluster::new(
        server,
        &[
            ("endpoint", &proxy.endpoint.clone()),
            ("retry_max_attempts", "30"),
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
        ],
    );
    (proxy, cluster)
}

#[test]
fn round_trips_survive_resets_and_slowdowns() {
    let server = Server::start();
    let payload = data(256 * MIB, 42);
    for run in 0..2u64 {
        let faults = Faults { reset: 0.10, slowdown: 0.10, ..Faults::default() };
        let (proxy, c) = faulty_cluster(&server, faults, 1000 + run);
        let path = c.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}")).display().to_string();
        assert_ok(&c.run("backup_data", &[&path], &payload));
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == payload, "run {run}: {} bytes back, not identical", out.stdout.len());
        let injected = proxy.stats.injected();
        assert!(injected >= 5, "run {run}: only {injected} faults injected");
        assert!(c.log_text().contains("retrying in"), "retries are logged");
    }
}

#[test]
fn truncated_responses_are_fetched_again() {
    let server = Server::start();
    let payload = data(40 * MIB + 17, 7);
    let faults = Faults { truncate: 0.15, ..Faults::default() };
    let (proxy, c) = faulty_cluster(&server, faults, 99);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    assert_ok(&c.run("backup_data", &[&path], &payload));
    for _ in 0..2 {
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == payload);
    }
    let offsets = c.dir.path().join("offsets");
    std::fs::write(&offsets, format!("3 0 10 {} {} {} {}", 5 * MIB - 3, 12 * MIB, 30 * MIB, 40 * MIB + 17)).unwrap();
    let out = c.run("restore_data_subset", &[&path, &offsets.display().to_string()], b"");
    assert_ok(&out);
    let mut want = payload[..10].to_vec();
    want.extend_from_slice(&payload[5 * MIB - 3..12 * MIB]);
    want.extend_from_slice(&payload[30 * MIB..]);
    assert!(out.stdout == want);
    assert!(proxy.stats.truncations.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[test]
fn a_dead_server_fails_within_the_budget_without_output() {
    let server = Server::start();
    let faults = Faults { reset: 1.0, ..Faults::default() };
    let (_proxy, c) = faulty_cluster(&server, faults, 5);
    let c = Cluster::with_folder(
        &server,
        &c.folder,
        &[("endpoint", &_proxy.endpoint.clone()), ("retry_max_attempts", "50"), ("retry_time_budget", "3s")],
    );
    let path = c.backup_dir("gpseg0", TS).join("f").display().to_string();
    let started = std::time::Instant::now();
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "retry time budget spent");
    assert!(out.stdout.is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
}
