//! Never a wrong byte, never a runaway process: what a server or gateway
//! that is not S3, a racing writer, a damaged offsets file, a closed
//! stream, a signal, a late 503 or a listing that ignores its prefix does
//! to a backup or a restore. Each test failed before its fix.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20240315123045";
const MIB: usize = 1 << 20;

/// A cluster whose requests pass through a proxy with `faults`, trying
/// each request at most twice (the faults here do not pass).
fn behind(server: &Server, faults: Faults, extra: &[(&str, &str)]) -> (FaultProxy, Cluster) {
    let proxy = FaultProxy::start(&server.endpoint, faults, 11);
    let mut options = vec![
        ("endpoint", proxy.endpoint.as_str()),
        ("retry_max_attempts", "2"),
        ("backup_multipart_chunksize", "5MB"),
        ("restore_multipart_chunksize", "5MB"),
    ];
    options.extend_from_slice(extra);
    let cluster = Cluster::new(server, &options);
    (proxy, cluster)
}

/// The same folder without the proxy.
fn direct(server: &Server, through: &Cluster) -> Cluster {
    Cluster::with_folder(server, &through.folder, &[("backup_multipart_chunksize", "5MB")])
}

fn path(c: &Cluster, name: &str) -> String {
    c.backup_dir("gpseg0", TS).join(name).display().to_string()
}

#[test]
fn a_gateway_page_is_never_taken_for_data() {
    let server = Server::start();
    for (what, only) in [("GET", ("GET ", "/")), ("PUT", ("PUT ", "/"))] {
        let (proxy, c) = behind(&server, Faults { html: 1.0, only: Some(only), ..Faults::default() }, &[]);
        let plain = direct(&server, &c);
        let file = path(&c, &format!("gpbackup_0_{TS}_{what}"));
        let payload = data(3000, 1);
        if what == "GET" {
            assert_ok(&plain.run("backup_data", &[&file], &payload));
            let out = c.run("restore_data", &[&file], b"");
            assert_fails_with(&out, "not an S3 response");
            assert!(out.stdout.is_empty(), "the page was emitted as data");
        } else {
            assert_fails_with(&c.run("backup_data", &[&file], &payload), "not an S3 response");
            let out = plain.run("restore_data", &[&file], b"");
            assert!(!out.status.success(), "nothing is stored after a page answered the upload");
        }
        assert!(proxy.stats.pages.load(std::sync::atomic::Ordering::Relaxed) > 0);
    }
    // A listing or a delete answered with XML that is not S3's.
    for (command, only) in [("list_directory", ("GET ", "list-type=2")), ("delete_backup", ("POST ", "?delete"))] {
        let (_proxy, c) = behind(&server, Faults { garbage: 1.0, only: Some(only), ..Faults::default() }, &[]);
        let plain = direct(&server, &c);
        assert_ok(&plain.run("backup_data", &[&path(&c, "gpbackup_0_x")], b"kept"));
        let out = if command == "list_directory" { c.run(command, &[], b"") } else { c.run(command, &[TS], b"") };
        assert_fails_with(&out, "s3://");
        assert!(out.stdout.is_empty());
        assert_eq!(plain.run("restore_data", &[&path(&c, "gpbackup_0_x")], b"").stdout, b"kept");
    }
}

#[test]
fn racing_writers_leave_one_consistent_object() {
    let server = Server::start();
    // Writer A's completion reaches the server only after writer B has
    // written its manifest and completed: A completes last.
    let (_proxy, slow) = behind(
        &server,
        Faults { delay: Duration::from_secs(3), only: Some(("POST ", "uploadId=")), ..Faults::default() },
        &[],
    );
    let fast = direct(&server, &slow);
    let file = path(&slow, &format!("gpbackup_0_{TS}_race"));
    let (a, b) = (data(12 * MIB, 1), data(11 * MIB, 2));
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| slow.run("backup_data", &[&file], &a));
        std::thread::sleep(Duration::from_millis(1500));
        let second = fast.run("backup_data", &[&file], &b);
        (first.join().unwrap(), second)
    });
    assert_ok(&first);
    assert_ok(&second);
    let out = fast.run("restore_data", &[&file], b"");
    assert_ok(&out);
    assert!(out.stdout == a || out.stdout == b, "the object restores as one writer's stream");
}

#[test]
fn a_failed_reupload_keeps_the_earlier_object_restorable() {
    let server = Server::start();
    let (_proxy, failing) =
        behind(&server, Faults { slowdown: 1.0, only: Some(("POST ", "uploadId=")), ..Faults::default() }, &[]);
    let plain = direct(&server, &failing);
    let file = path(&plain, &format!("gpbackup_0_{TS}_again"));
    let first = data(12 * MIB, 3);
    assert_ok(&plain.run("backup_data", &[&file], &first));
    assert!(!failing.run("backup_data", &[&file], &data(12 * MIB, 4)).status.success());
    let out = plain.run("restore_data", &[&file], b"");
    assert_ok(&out);
    assert!(out.stdout == first);
}

#[test]
fn offsets_past_the_end_fail_at_once_with_nothing_written() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let file = path(&c, &format!("gpbackup_0_{TS}"));
    assert_ok(&c.run("backup_data", &[&file], &data(10_000, 5)));
    for offsets in ["1 0 18446744073709551615", "2 0 10 5 18446744073709551000", "1 9000 10001"] {
        let offsets_file = c.dir.path().join("offsets");
        std::fs::write(&offsets_file, offsets).unwrap();
        let started = Instant::now();
        let out = c.run("restore_data_subset", &[&file, offsets_file.to_str().unwrap()], b"");
        assert_fails_with(&out, "past the end");
        assert!(out.stdout.is_empty(), "{offsets}: bytes written");
        assert!(started.elapsed() < Duration::from_secs(5), "{offsets}: {:?}", started.elapsed());
    }
}

/// The plugin with stdin or stdout closed, as `<&-` and `>&-` leave them.
fn with_closed(fd: &str, c: &Cluster, command: &str, file: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("exec \"$0\" {command} \"$1\" \"$2\" {fd}&-"))
        .args([PLUGIN.as_str(), c.config.to_str().unwrap(), file])
        .env("HOME", &c.home)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn closed_standard_streams_are_failures() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let file = path(&c, &format!("gpbackup_0_{TS}"));
    assert_fails_with(&with_closed("<", &c, "backup_data", &file), "stdin is closed");
    assert!(!c.run("restore_data", &[&file], b"").status.success(), "nothing was stored");
    assert_ok(&c.run("backup_data", &[&file], b"data"));
    assert_fails_with(&with_closed(">", &c, "restore_data", &file), "stdout is closed");
}

#[test]
fn sigterm_aborts_open_uploads_and_removes_partial_files() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to see open uploads");
        return;
    }
    let c = Cluster::new(&server, &[("backup_multipart_chunksize", "5MB")]);
    let file = path(&c, &format!("gpbackup_0_{TS}_term"));
    let mut child = Command::new(&*PLUGIN)
        .args(["backup_data", c.config.to_str().unwrap(), &file])
        .env("HOME", &c.home)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&data(16 * MIB, 6)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.pending_uploads().is_empty() {
        assert!(Instant::now() < deadline, "no upload was opened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let started = Instant::now();
    unsafe_kill(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    assert_fails_with(&out, "interrupted by SIGTERM: aborted 1 open uploads");
    assert!(server.pending_uploads().is_empty(), "{:?}", server.pending_uploads());
    let journal = c.home.join(".gpbackup_s3_plugin/uploads");
    assert_eq!(std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0), 0);

    // A restore_file stalled by the server: no partial file is left.
    assert_ok(&c.run("backup_data", &[&file], &data(MIB, 7)));
    let proxy = FaultProxy::start(
        &server.endpoint,
        Faults { stall: 1.0, stall_for: Duration::from_secs(30), only: Some(("GET ", "/")), ..Faults::default() },
        1,
    );
    let slow = Cluster::with_folder(&server, &c.folder, &[("endpoint", &proxy.endpoint)]);
    let child = Command::new(&*PLUGIN)
        .args(["restore_file", slow.config.to_str().unwrap(), &file])
        .env("HOME", &slow.home)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
    let partial =
        || std::fs::read_dir(&dir).unwrap().flatten().any(|e| e.file_name().to_string_lossy().ends_with(".partial"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !partial() {
        assert!(Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe_kill(child.id(), "TERM");
    let out = child.wait_with_output().unwrap();
    assert_fails_with(&out, "interrupted by SIGTERM");
    assert!(!partial(), "a partial file was left");
}

fn unsafe_kill(pid: u32, signal: &str) {
    let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// A 503 late in a long stream is retried: retries are budgeted per
/// request, not from the start of the command.
#[test]
fn a_late_503_in_a_long_stream_is_retried() {
    let server = Server::start();
    let faults = Faults {
        late_after: Duration::from_secs(3),
        late_slowdowns: 2,
        only: Some(("PUT ", "partNumber=")),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&server.endpoint, faults, 1);
    let c = Cluster::new(
        &server,
        &[("endpoint", &proxy.endpoint), ("retry_time_budget", "2s"), ("backup_multipart_chunksize", "5MB")],
    );
    let file = path(&c, &format!("gpbackup_0_{TS}_long"));
    let payload = data(30 * MIB, 8);
    let mut child = Command::new(&*PLUGIN)
        .args(["backup_data", c.config.to_str().unwrap(), &file])
        .env("HOME", &c.home)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A stream that lasts longer than the retry budget: 5 MiB a second.
    for piece in payload.chunks(5 * MIB) {
        stdin.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(900));
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_ok(&out);
    assert!(proxy.stats.late.load(std::sync::atomic::Ordering::Relaxed) >= 2, "no late 503 was sent");
    let restored = c.run("restore_data", &[&file], b"");
    assert!(restored.stdout == payload);
}

#[test]
fn listings_with_foreign_keys_delete_nothing() {
    let server = Server::start();
    let (_proxy, c) = behind(&server, Faults { foreign_keys: true, ..Faults::default() }, &[]);
    let plain = direct(&server, &c);
    let file = path(&c, &format!("gpbackup_0_{TS}"));
    assert_ok(&plain.run("backup_data", &[&file], b"precious"));
    assert_fails_with(&c.run("delete_backup", &[TS], b""), "outside the prefix");
    assert_fails_with(&c.run("list_directory", &[], b""), "outside the prefix");
    assert_eq!(plain.run("restore_data", &[&file], b"").stdout, b"precious");
}
