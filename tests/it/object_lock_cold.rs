//! Object Lock together with an archived storage class, against real moto and
//! fakecloud servers (the local servers with storage classes, RestoreObject
//! and Object Lock): a locked backup written to DEEP_ARCHIVE keeps its lock
//! on every payload (single PUT and multipart), is refused before `thaw`,
//! and `thaw` (RestoreObject of the current version, a temporary copy)
//! neither changes any version's retention nor adds a version; the restored
//! data reads back and the backup still cannot be deleted.

use crate::object_lock::{
    MIB, TS, back_up, cluster, head, lock_bucket, lock_config, on_both, retain_until, text, versions,
};
use crate::support::*;

on_both!(a_locked_deep_archive_backup_thaws_without_touching_its_retention);
fn a_locked_deep_archive_backup_thaws_without_touching_its_retention(server: Server) {
    if !server.is_fakecloud() {
        server.moto_restore_delay(0);
    }
    let bucket = lock_bucket(&server);
    let options = lock_config(
        &bucket,
        &[("object_lock_mode", "governance"), ("object_lock_retention", "1d"), ("storage_class", "DEEP_ARCHIVE")],
    );
    let c = cluster(&server, &options);
    let keys = back_up(&c, TS);
    let prefix = format!("{}/backups/{}/{TS}/", c.folder, &TS[..8]);
    let before = versions(&server, &bucket, &prefix);
    assert_eq!(before.len(), keys.len(), "{before:?}");
    let payloads: Vec<&String> =
        keys.iter().filter(|k| k.contains(&format!("gpbackup_0_{TS}")) && !k.ends_with("_manifest")).collect();
    assert_eq!(payloads.len(), 2, "{keys:?}");
    // Every object locked; the payloads archived.
    let mut locks = Vec::new();
    for (key, version, _) in &before {
        let headers = head(&server, &bucket, key, Some(version));
        assert!(headers.contains("x-amz-object-lock-mode: governance"), "{key}: {headers}");
        if payloads.contains(&key) {
            assert!(headers.contains("x-amz-storage-class: deep_archive"), "{key}: {headers}");
        }
        locks.push((key.clone(), version.clone(), retain_until(&headers).expect("a retain-until date")));
    }
    let seg = c.backup_dir("seg0/gpseg0", TS);
    let big = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    assert_fails_with(&c.run("restore_data", &[&big], b""), "thaw");

    // thaw, then restore.
    let out = c.run("thaw", &[TS, "--wait", "--timeout", "60s"], b"");
    assert_ok(&out);
    let out = c.run("restore_data", &[&big], b"");
    assert_ok(&out);
    assert_eq!(out.stdout, data(11 * MIB + 3, (11 * MIB + 3) as u64));

    // The same versions, with the same retention, and still archived.
    let after = versions(&server, &bucket, &prefix);
    assert_eq!(after, before, "thaw changed the versions");
    for (key, version, until) in &locks {
        let headers = head(&server, &bucket, key, Some(version));
        assert!(headers.contains("x-amz-object-lock-mode: governance"), "{key}: {headers}");
        assert_eq!(retain_until(&headers), Some(*until), "{key}: retention changed by thaw: {headers}");
        if payloads.contains(&key) {
            assert!(headers.contains("x-amz-storage-class: deep_archive"), "{key}: {headers}");
            // (fakecloud shows the restore on a HEAD without a version id only.)
            let current = head(&server, &bucket, key, None);
            assert!(current.contains("x-amz-restore: ongoing-request=\"false\""), "{key}: {current}");
        }
    }
    let out = c.run("retention", &[TS], b"");
    assert_ok(&out);
    assert!(text(&out).contains("4 GOVERNANCE"), "{}", text(&out));
    assert_fails_with(&c.run("delete_backup", &[TS], b""), "retained until");
    assert_eq!(versions(&server, &bucket, &prefix).len(), before.len());
}
