//! The streaming engine's guarantees, against a real s3s-fs: growing parts
//! round-trip at every boundary, altered bytes are never written, a failed
//! upload leaves nothing behind.

use std::path::Path;

use crate::support::*;

const TS: &str = "20240315123045";
const MIB: usize = 1 << 20;

#[test]
fn growing_parts_round_trip_at_every_boundary() {
    let server = Server::start();
    let c = Cluster::new(
        &server,
        &[
            ("backup_multipart_chunksize", "5MB"),
            ("backup_max_concurrent_requests", "3"),
            ("restore_multipart_chunksize", "5MB"),
            ("restore_max_concurrent_requests", "3"),
        ],
    );
    let seg = c.backup_dir("gpseg0", TS);
    // Two parts per size step: 5, 5, 10, 10, 20, 20 MiB... so the part
    // boundaries are at 5, 10, 20, 30, 50 MiB.
    let mut sizes = vec![0, 1, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1];
    for boundary in [10 * MIB, 20 * MIB, 30 * MIB, 50 * MIB] {
        sizes.extend([boundary - 1, boundary, boundary + 1]);
    }
    for (i, len) in sizes.into_iter().enumerate() {
        let payload = data(len, i as u64 + 100);
        let path = seg.join(format!("gpbackup_0_{TS}_{i}")).display().to_string();
        let mut args = vec!["backup_data".to_string(), c.config.display().to_string(), path.clone()];
        let out = run_plugin_env(&args, &payload, &c.home, &[("GPBACKUP_S3_PLUGIN_TEST_PARTS_PER_STEP", "2")]);
        assert_ok(&out);
        args[0] = "restore_data".into();
        let out = run_plugin(&args, b"", &c.home);
        assert_ok(&out);
        assert!(out.stdout == payload, "{len} bytes: got {} back", out.stdout.len());
    }
    assert!(server.pending_uploads().is_empty());
}

/// Flips one byte of the stored object, keeping its length.
fn corrupt(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x5a;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn altered_bytes_are_never_written() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to alter stored bytes");
        return;
    }
    let c = Cluster::new(&server, &[("backup_multipart_chunksize", "5MB"), ("restore_multipart_chunksize", "5MB")]);
    let seg = c.backup_dir("gpseg0", TS);

    // Small object, stored in one request: nothing at all comes out.
    let small = seg.join(format!("gpbackup_0_{TS}_1")).display().to_string();
    let payload = data(1024, 1);
    assert_ok(&c.run("backup_data", &[&small], &payload));
    corrupt(&server.object_file(&c.key(TS, &format!("gpbackup_0_{TS}_1"))).unwrap(), 100);
    let out = c.run("restore_data", &[&small], b"");
    assert_fails_with(&out, "checksum");
    assert!(out.stdout.is_empty(), "{} altered bytes written", out.stdout.len());

    // Multipart object (parts of 5, 5, 2 MiB), byte altered in the third
    // part: at most the first two parts come out, whole and unaltered.
    let big = seg.join(format!("gpbackup_0_{TS}_2")).display().to_string();
    let payload = data(12 * MIB, 2);
    assert_ok(&c.run("backup_data", &[&big], &payload));
    let file = server.object_file(&c.key(TS, &format!("gpbackup_0_{TS}_2"))).unwrap();
    corrupt(&file, 11 * MIB);
    let out = c.run("restore_data", &[&big], b"");
    assert_fails_with(&out, "checksum");
    let n = out.stdout.len();
    assert!(n <= 10 * MIB && n.is_multiple_of(5 * MIB), "{n} bytes written");
    assert!(out.stdout[..] == payload[..n]);

    // Altered in the first part: nothing comes out, also via restore_file.
    corrupt(&file, 11 * MIB);
    corrupt(&file, 3);
    let out = c.run("restore_data", &[&big], b"");
    assert_fails_with(&out, "checksum");
    assert!(out.stdout.is_empty());
    let out = c.run("restore_file", &[&big], b"");
    assert_fails_with(&out, "checksum");
    assert!(!Path::new(&big).exists());

    // A missing manifest means the object cannot be verified: refused.
    corrupt(&file, 3);
    assert_ok(&c.run("restore_data", &[&big], b""));
    let manifest = server.object_file(&c.manifest_key(&c.key(TS, &format!("gpbackup_0_{TS}_2")))).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let out = c.run("restore_data", &[&big], b"");
    assert_fails_with(&out, "manifest");
    assert!(out.stdout.is_empty());

    // A truncated object (same metadata, fewer bytes) is refused too.
    let file = server.object_file(&c.key(TS, &format!("gpbackup_0_{TS}_1"))).unwrap();
    std::fs::write(&file, &payload[..500]).unwrap();
    let out = c.run("restore_data", &[&small], b"");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn objects_without_our_metadata_restore_with_length_checks() {
    // What the Go plugin (or a hand copy) leaves: plain objects.
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to place a foreign object");
        return;
    }
    let c = Cluster::new(&server, &[("restore_multipart_chunksize", "5MB")]);
    let seg = c.backup_dir("gpseg0", TS);
    for (name, len) in [("empty", 0), ("small", 777), ("large", 11 * MIB + 3)] {
        let payload = data(len, len as u64);
        let file = server.object_file(&c.key(TS, name)).unwrap();
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &payload).unwrap();
        let out = c.run("restore_data", &[&seg.join(name).display().to_string()], b"");
        assert_ok(&out);
        assert!(out.stdout == payload, "{name}");
    }
}

#[test]
fn a_failed_upload_leaves_no_object_and_no_pending_upload() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to make the upload fail");
        return;
    }
    // s3s-fs answers 500 to the doomed completion: retried, so keep it short.
    let c = Cluster::new(&server, &[("backup_multipart_chunksize", "5MB"), ("retry_max_attempts", "2")]);
    let seg = c.backup_dir("gpseg0", TS);
    let name = format!("gpbackup_0_{TS}_7");
    // A directory where the object's file must go: s3s-fs accepts the parts
    // but cannot complete the upload.
    let file = server.object_file(&c.key(TS, &name)).unwrap();
    std::fs::create_dir_all(file.join("blocker")).unwrap();
    let out = c.run("backup_data", &[&seg.join(&name).display().to_string()], &data(12 * MIB, 7));
    assert!(!out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(server.pending_uploads().is_empty(), "{:?}", server.pending_uploads());
    let listing = String::from_utf8(c.run("list_directory", &[], b"").stdout).unwrap();
    assert!(listing.is_empty(), "left behind: {listing}");
}
