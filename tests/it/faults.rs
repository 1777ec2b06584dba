//! Reliability under faults: a fault-injecting proxy between the plugin and
//! a real s3s-fs resets connections, answers 503 SlowDown and cuts
//! responses short; streams must still come back byte-identical, every time.

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

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

#[test]
fn killed_uploads_leave_nothing_after_cleanup() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to see pending uploads");
        return;
    }
    let c = Cluster::new(&server, &[("backup_multipart_chunksize", "5MB")]);
    let seg = c.backup_dir("gpseg0", TS);
    let chunk = data(MIB, 3);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for trial in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Kill somewhere between "nothing sent" and well into a multipart upload.
        let mib_before_kill = (seed % 24) as usize;
        let path = seg.join(format!("gpbackup_0_{TS}_{trial}")).display().to_string();
        let mut child = Command::new(&*PLUGIN)
            .args(["backup_data", &c.config.display().to_string(), &path])
            .env("HOME", &c.home)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for _ in 0..mib_before_kill {
            stdin.write_all(&chunk).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50 + seed % 200));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        child.wait().unwrap();
        drop(stdin);

        let listing = String::from_utf8(c.run("list_directory", &[], b"").stdout).unwrap();
        let key = c.key(TS, &format!("gpbackup_0_{TS}_{trial}"));
        assert!(!listing.lines().any(|l| l.split('\t').next() == Some(key.as_str())), "trial {trial}: object visible");
    }
    assert!(!server.pending_uploads().is_empty(), "no trial reached a multipart upload: the test proves nothing");
    // What gpbackup runs after a backup, on each host and the coordinator.
    let dir = seg.display().to_string();
    assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, "segment_host"], b""));
    assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, "master", "\"-1\""], b""));
    assert!(server.pending_uploads().is_empty(), "left open: {:?}", server.pending_uploads());
    let listing = String::from_utf8(c.run("list_directory", &[], b"").stdout).unwrap();
    assert!(listing.is_empty(), "left behind: {listing}");
    let journal = c.home.join(".gpbackup_s3_plugin/uploads");
    assert_eq!(std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0), 0);
}

#[test]
fn stalls_longer_than_the_read_timeout_are_abandoned_and_retried() {
    let server = Server::start();
    let faults = Faults { stall: 0.2, stall_for: std::time::Duration::from_secs(4), ..Faults::default() };
    let proxy = FaultProxy::start(&server.endpoint, faults, 77);
    let c = Cluster::new(
        &server,
        &[
            ("endpoint", &proxy.endpoint.clone()),
            ("read_timeout", "1s"),
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
        ],
    );
    let payload = data(30 * MIB + 5, 11);
    let path = c.backup_dir("gpseg0", TS).join(format!("gpbackup_0_{TS}")).display().to_string();
    let started = std::time::Instant::now();
    assert_ok(&c.run("backup_data", &[&path], &payload));
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
    assert!(proxy.stats.stalls.load(std::sync::atomic::Ordering::Relaxed) > 0, "no stall injected");
    // Every stall cost one read timeout (1 s), not the stall's 4 s.
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    assert!(c.log_text().contains("retrying in"));
}

#[test]
fn a_completion_whose_answer_is_lost_still_succeeds() {
    // The server completes the upload, the answer never arrives, the retry
    // finds the upload gone: the plugin must recognise its own object.
    let server = Server::start();
    let faults = Faults { truncate: 0.5, only: Some(("POST ", "uploadId=")), ..Faults::default() };
    let (proxy, c) = faulty_cluster(&server, faults, 3);
    let seg = c.backup_dir("gpseg0", TS);
    for i in 0..4 {
        let payload = data(12 * MIB + i, i as u64);
        let path = seg.join(format!("gpbackup_0_{TS}_{i}")).display().to_string();
        assert_ok(&c.run("backup_data", &[&path], &payload));
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == payload);
    }
    assert!(proxy.stats.truncations.load(std::sync::atomic::Ordering::Relaxed) > 0, "no completion was cut");
}
