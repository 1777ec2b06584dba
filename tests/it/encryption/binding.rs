//! Encrypted objects are bound to their place: a swap of two tables' files
//! (on s3s-fs's disk, metadata sidecars included), a copy from another
//! backup, a replayed older version (moto, versioned bucket) and a planted
//! age file are refused with one line and nothing written; a folder change
//! or a copy to another bucket still restores. Objects without a binding
//! (the previous release's) restore only under `verify: available`, with a
//! warning in the log. Private key files readable by others are refused.

use std::path::PathBuf;

use base64::Engine as _;

use super::*;

const TS1: &str = "20240101000000";
const TS2: &str = "20240102000000";

fn file(ts: &str, oid: u32) -> String {
    format!("gpbackup_0_{ts}_{oid}.gz")
}

/// The files s3s-fs keeps for `key`: its bytes, and its metadata sidecars.
fn disk_files(server: &Server, key: &str) -> Vec<PathBuf> {
    let object = server.object_file(key).expect("s3s-fs");
    let root = object.ancestors().nth(key.split('/').count() + 1).unwrap().to_path_buf();
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let stem = format!(".bucket-{}.object-{}", b64(&server.bucket), b64(key));
    vec![object, root.join(format!("{stem}.metadata.json")), root.join(format!("{stem}.internal.json"))]
}

/// Exchanges two objects on the server's disk, sidecars and all.
fn swap_on_disk(server: &Server, a: &str, b: &str) {
    for (x, y) in disk_files(server, a).into_iter().zip(disk_files(server, b)) {
        if x.exists() && y.exists() {
            let (bx, by) = (std::fs::read(&x).unwrap(), std::fs::read(&y).unwrap());
            std::fs::write(&x, by).unwrap();
            std::fs::write(&y, bx).unwrap();
        }
    }
}

fn encrypted_cluster(server: &Server, dir: &std::path::Path, extra: &[(&str, &str)]) -> (Keys, Cluster) {
    let mine = keys(dir, "identity.txt");
    let identity = mine.file.display().to_string();
    let mut options = vec![
        ("encryption_recipients", mine.public.as_str()),
        ("encryption_identity_file", identity.as_str()),
        ("backup_multipart_chunksize", "5MB"),
    ];
    options.extend_from_slice(extra);
    let c = Cluster::new(server, &options);
    (mine, c)
}

#[test]
fn swapped_and_copied_objects_are_refused_a_moved_folder_restores() {
    let server = Server::start();
    if !server.has_disk() {
        return eprintln!("skipped: needs s3s-fs's disk");
    }
    let dir = tempfile::tempdir().unwrap();
    let (_mine, c) = encrypted_cluster(&server, dir.path(), &[]);
    let (a, b, big, older) = (data(3000, 1), data(4000, 2), data((6 << 20) + 5, 3), data(3000, 4));
    backup(&c, TS2, &file(TS2, 16384), &a);
    backup(&c, TS2, &file(TS2, 16385), &b);
    backup(&c, TS2, &file(TS2, 16386), &big);
    backup(&c, TS1, &file(TS1, 16384), &older);
    let coord = c.backup_dir("coord", TS2);
    let config = coord.join(format!("gpbackup_{TS2}_config.yaml"));
    std::fs::write(&config, b"timestamp: \"20240102000000\"\n").unwrap();
    assert_ok(&c.run("backup_file", &[config.to_str().unwrap()], b""));
    let report = coord.join(format!("gpbackup_{TS2}_report"));
    std::fs::write(&report, b"backup status: Success\n").unwrap();
    assert_ok(&c.run("backup_file", &[report.to_str().unwrap()], b""));

    // Two tables' files exchanged: neither restores the other's rows.
    let (ka, kb) = (c.key(TS2, &file(TS2, 16384)), c.key(TS2, &file(TS2, 16385)));
    swap_on_disk(&server, &ka, &kb);
    for (f, other) in [(file(TS2, 16384), file(TS2, 16385)), (file(TS2, 16385), file(TS2, 16384))] {
        let out = restore(&c, TS2, &f);
        assert_fails_with(&out, &format!("written for backups/20240102/{TS2}/{other}"));
        assert!(out.stdout.is_empty(), "{} bytes written", out.stdout.len());
        let path = c.backup_dir("gpseg0", TS2).join(&f).display().to_string();
        let offsets = c.dir.path().join("offsets");
        std::fs::write(&offsets, "1 10 20").unwrap();
        let out = c.run("restore_data_subset", &[&path, offsets.to_str().unwrap()], b"");
        assert_fails_with(&out, "written for");
        assert!(out.stdout.is_empty());
    }
    swap_on_disk(&server, &ka, &kb);
    assert!(restore(&c, TS2, &file(TS2, 16384)).stdout == a, "swapped back: restores again");

    // The same table from another backup copied over it: refused.
    copy_object(&server, &c.key(TS1, &file(TS1, 16384)), &ka, None);
    let out = restore(&c, TS2, &file(TS2, 16384));
    assert_fails_with(&out, &format!("written for backups/20240101/{TS1}/{}", file(TS1, 16384)));
    assert!(out.stdout.is_empty());

    // A coordinator file: the report copied over the config.
    copy_object(
        &server,
        &c.key(TS2, &format!("gpbackup_{TS2}_report")),
        &c.key(TS2, &format!("gpbackup_{TS2}_config.yaml")),
        None,
    );
    std::fs::remove_file(&config).unwrap();
    assert_fails_with(&c.run("restore_file", &[config.to_str().unwrap()], b""), "written for");
    assert!(!config.exists() || std::fs::read(&config).unwrap().is_empty(), "nothing written");

    // Every object copied to another folder of another bucket (manifests
    // too): a legitimate move, which restores.
    let bucket2 = format!("{}-moved", server.bucket);
    assert!(server.curl(&bucket2, &["-X", "PUT"]).status.success());
    let kbig = c.key(TS2, &file(TS2, 16386));
    let manifest = c.manifest_key(&kbig);
    let moved = "elsewhere/gp2";
    for key in [kbig.clone(), manifest.clone(), kb.clone()] {
        let to = key.replacen(&c.folder, moved, 1);
        let source = format!("x-amz-copy-source: /{}/{key}", server.bucket);
        let out = server.curl(&format!("{bucket2}/{to}"), &["-X", "PUT", "-H", &source]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }
    let identity = _mine.file.display().to_string();
    let there = Cluster::with_folder(
        &server,
        moved,
        &[("bucket", &bucket2), ("encryption_recipients", &_mine.public), ("encryption_identity_file", &identity)],
    );
    let out = restore(&there, TS2, &file(TS2, 16386));
    assert_ok(&out);
    assert!(out.stdout == big, "the moved multipart object restores byte for byte");
    assert!(restore(&there, TS2, &file(TS2, 16385)).stdout == b);
}

#[test]
fn planted_and_unbound_objects_restore_only_under_verify_available() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (mine, c) = encrypted_cluster(&server, dir.path(), &[]);
    let planted = data(5000, 7);
    let sealed = seal(&mine.public, &planted, &[]);
    let record = record_of(&sealed);

    // An age file to the public key, put at a new key: no integrity record.
    let bare = file(TS2, 20000);
    put_raw(&server, &c.key(TS2, &bare), &sealed, &[]);
    let out = restore(&c, TS2, &bare);
    assert_fails_with(&out, "no integrity record");
    assert_fails_with(&out, "verify: available");
    assert!(out.stdout.is_empty());

    // With the plugin's record and metadata, as the previous release wrote
    // objects (no binding): refused, naming the way out.
    let old = file(TS2, 20001);
    put_raw(&server, &c.key(TS2, &old), &sealed, &[("gpbackup-integrity", &record), ("gpbackup-encryption", "age")]);
    let out = restore(&c, TS2, &old);
    assert_fails_with(&out, "no binding");
    assert_fails_with(&out, "verify: available");
    assert!(out.stdout.is_empty());
    let path = c.backup_dir("gpseg0", TS2).join(&old).display().to_string();
    let offsets = c.dir.path().join("offsets");
    std::fs::write(&offsets, "1 10 20").unwrap();
    let out = c.run("restore_data_subset", &[&path, offsets.to_str().unwrap()], b"");
    assert_fails_with(&out, "no binding");
    assert!(out.stdout.is_empty());

    // `verify: available`: both restore, with a warning in the log only.
    let identity = mine.file.display().to_string();
    let lenient = Cluster::with_folder(
        &server,
        &c.folder,
        &[("encryption_recipients", &mine.public), ("encryption_identity_file", &identity), ("verify", "available")],
    );
    for f in [&bare, &old] {
        let out = restore(&lenient, TS2, f);
        assert_ok(&out);
        assert!(out.stdout == planted, "{f}");
    }
    let log = lenient.log_text();
    assert!(log.contains("WARNING") && log.contains("no integrity record") && log.contains("no binding"), "{log}");
    assert!(log.contains(&old) && log.contains(&bare), "{log}");

    // A genuine object still restores in the strict config, and a binding
    // forged by whoever has the public key is accepted there: only a
    // signature (encryption_verify_key, see signing.rs) tells them apart.
    backup(&c, TS2, &file(TS2, 16384), b"genuine");
    assert!(restore(&c, TS2, &file(TS2, 16384)).stdout == b"genuine");
}

#[test]
fn private_key_files_readable_by_others_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let (mine, c) = encrypted_cluster(&server, dir.path(), &[]);
    backup(&c, TS2, &file(TS2, 16384), b"rows");
    for (mode, word) in [(0o644, "readable by others (mode 0644)"), (0o640, "readable by its group (mode 0640)")] {
        std::fs::set_permissions(&mine.file, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = restore(&c, TS2, &file(TS2, 16384));
        assert_fails_with(&out, word);
        assert_fails_with(&out, &format!("encryption_identity_file {}", mine.file.display()));
        assert_fails_with(&out, "chmod 600");
        assert!(out.stdout.is_empty());
    }
    // A backup does not read the private key: not stopped by its mode.
    backup(&c, TS2, &file(TS2, 16385), b"more rows");
    std::fs::set_permissions(&mine.file, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(restore(&c, TS2, &file(TS2, 16385)).stdout == b"more rows");
}

/// On a versioned bucket (moto): an older version of the same table from
/// another backup made current is refused, and once the genuine version is
/// current again the restore works. A replay of an older version of the
/// same key within the same backup carries the right binding: it restores
/// (the README says so), and this test shows the limit as it is.
#[test]
fn replays_on_a_versioned_bucket() {
    let server = Server::start_moto();
    let body = "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>";
    let xml = ["-X", "PUT", "-H", "Content-Type: application/xml", "--data-binary", body];
    let out = server.curl(&format!("{}?versioning", server.bucket), &xml);
    assert!(out.status.success(), "enable versioning: {}", String::from_utf8_lossy(&out.stdout));
    let dir = tempfile::tempdir().unwrap();
    let (_, c) = encrypted_cluster(&server, dir.path(), &[]);
    let (old, new) = (data(3000, 11), data(3000, 12));
    backup(&c, TS1, &file(TS1, 16384), &old);
    backup(&c, TS2, &file(TS2, 16384), &new);
    let k2 = c.key(TS2, &file(TS2, 16384));
    let version = |headers: &str| {
        headers.lines().find_map(|l| l.strip_prefix("x-amz-version-id:")).map(|v| v.trim().to_string()).unwrap()
    };
    let genuine = version(&server.head(&k2));

    let replayed = version(&copy_object(&server, &c.key(TS1, &file(TS1, 16384)), &k2, None));
    let out = restore(&c, TS2, &file(TS2, 16384));
    assert_fails_with(&out, &format!("written for backups/20240101/{TS1}/"));
    assert!(out.stdout.is_empty());
    let out = server.curl(&format!("{}/{k2}?versionId={replayed}", server.bucket), &["-X", "DELETE"]);
    assert!(out.status.success());
    assert!(restore(&c, TS2, &file(TS2, 16384)).stdout == new, "the genuine version is current again");

    // The same key rewritten, then its older version made current again.
    backup(&c, TS2, &file(TS2, 16384), b"rewritten");
    copy_object(&server, &k2, &k2, Some(&genuine));
    let out = restore(&c, TS2, &file(TS2, 16384));
    assert_ok(&out);
    assert!(out.stdout == new, "not detectable: the older version is bound to the same key");
}
