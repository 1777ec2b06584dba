//! Writer authentication and `verify --deep` of encrypted backups, against
//! s3s-fs: with `encryption_verify_key` every restored object must carry a
//! valid signature of the backup hosts' `encryption_signing_key_file` (keys
//! made by `openssl genpkey -algorithm ed25519`), so an object planted by
//! someone who has only the public age key (and forges a binding) is
//! refused, as are unsigned ones and ones signed by another key; `verify
//! --deep` decrypts and checks every object with the identity, and without
//! it checks the ciphertext's CRCs and says what it could not check.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::*;
use crate::catalog::{Spec, line_with, stdout};

const TS: &str = "20240315123045";

/// A new Ed25519 signing key (PKCS#8 PEM, mode 0600) by openssl, and its
/// public half as the one base64 line of its PEM.
fn signing_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let out = Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&file).output();
    let out = out.expect("openssl (Debian's openssl package) makes the test's signing keys");
    assert!(out.status.success(), "openssl genpkey: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("openssl").args(["pkey", "-pubout", "-in"]).arg(&file).output().unwrap();
    assert!(out.status.success());
    let pem = String::from_utf8(out.stdout).unwrap();
    std::fs::write(dir.join(format!("{name}.pub")), &pem).unwrap();
    let line = pem.lines().find(|l| !l.starts_with("-----")).unwrap().to_string();
    (file, line)
}

/// A binding stanza as anyone with the public key can write one (no
/// signature): what only writer authentication tells apart from ours.
struct Forged(String);

impl age::Recipient for Forged {
    fn wrap_file_key(
        &self,
        _: &age_core::format::FileKey,
    ) -> Result<(Vec<age_core::format::Stanza>, std::collections::HashSet<String>), age::EncryptError> {
        let place = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&self.0);
        let stanza = age_core::format::Stanza { tag: "gpbackup-bind".into(), args: vec![place], body: Vec::new() };
        Ok((vec![stanza], Default::default()))
    }
}

fn file(oid: u32) -> String {
    format!("gpbackup_0_{TS}_{oid}.gz")
}

#[test]
fn with_a_verify_key_only_objects_the_signing_key_wrote_restore() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let (sign, verify_line) = signing_key(dir.path(), "sign.pem");
    let (other_sign, _) = signing_key(dir.path(), "other.pem");
    let (sign_s, other_s, id_s) =
        (sign.display().to_string(), other_sign.display().to_string(), mine.file.display().to_string());
    let pem_path = dir.path().join("sign.pem.pub").display().to_string();
    let folder = unique_folder("signed");
    let cluster = |extra: &[(&str, &str)]| {
        let mut options = vec![("encryption_recipients", mine.public.as_str())];
        options.extend_from_slice(extra);
        Cluster::with_folder(&server, &folder, &options)
    };
    // Backup hosts: the public age key and the signing key; restores: the
    // identity and the verify key (as the line, or as the PEM file).
    let writer = cluster(&[("encryption_signing_key_file", &sign_s)]);
    let reader = cluster(&[("encryption_identity_file", &id_s), ("encryption_verify_key", &verify_line)]);
    let reader_pem = cluster(&[("encryption_identity_file", &id_s), ("encryption_verify_key", &pem_path)]);
    let unchecked = cluster(&[("encryption_identity_file", &id_s)]);
    let (payload, big) = (data(3000, 1), data((9 << 20) + 3, 2));
    backup(&writer, TS, &file(16384), &payload);
    backup(&writer, TS, &file(16385), &big);
    // The standard tool still decrypts a signed object (its binding stanza,
    // body and all, is one it does not know, so it skips it).
    if let Some(stored) = server.object_file(&writer.key(TS, &file(16384))) {
        let out = Command::new("age").arg("-d").arg("-i").arg(&mine.file).arg(&stored).output();
        match out {
            Ok(out) => assert!(out.status.success() && out.stdout == payload, "age -d: {}", stderr(&out)),
            Err(e) => assert!(!postgres::in_ci(), "the age CLI is needed in CI: {e}"),
        }
    }
    for r in [&reader, &reader_pem, &unchecked] {
        assert!(restore(r, TS, &file(16384)).stdout == payload);
        let out = restore(r, TS, &file(16385));
        assert_ok(&out);
        assert!(out.stdout == big);
    }

    // Unsigned (a backup host without the signing key): refused.
    backup(&unchecked, TS, &file(16386), b"unsigned rows");
    let out = restore(&reader, TS, &file(16386));
    assert_fails_with(&out, "no signature");
    assert_fails_with(&out, "encryption_verify_key");
    assert!(out.stdout.is_empty());
    // Signed by another key: refused.
    backup(&cluster(&[("encryption_signing_key_file", &other_s)]), TS, &file(16387), b"other writer");
    let out = restore(&reader, TS, &file(16387));
    assert_fails_with(&out, "signature does not verify");
    assert!(out.stdout.is_empty());

    // Planted by someone with write access and the public key, with a
    // binding to its place and the plugin's record: restored where no verify
    // key is set (the README says so), refused where one is.
    let planted = file(16388);
    let place = format!("backups/{}/{TS}/{planted}", &TS[..8]);
    let sealed = seal(&mine.public, b"planted rows", &[&Forged(place)]);
    let record = record_of(&sealed);
    let meta = [("gpbackup-integrity", record.as_str()), ("gpbackup-encryption", "age")];
    put_raw(&server, &writer.key(TS, &planted), &sealed, &meta);
    let out = restore(&unchecked, TS, &planted);
    assert_ok(&out);
    assert!(out.stdout == b"planted rows");
    let out = restore(&reader, TS, &planted);
    assert_fails_with(&out, "no signature");
    assert!(out.stdout.is_empty());

    // A signed object moved to another key: its binding says where it was.
    copy_object(&server, &writer.key(TS, &file(16384)), &writer.key(TS, &file(16389)), None);
    assert_fails_with(&restore(&reader, TS, &file(16389)), "written for");

    // The signing key's mode is checked like the identity's.
    std::fs::set_permissions(&sign, std::fs::Permissions::from_mode(0o644)).unwrap();
    let path = writer.backup_dir("gpseg0", TS).join(file(16390)).display().to_string();
    let out = writer.run("backup_data", &[&path], b"x");
    assert_fails_with(&out, &format!("encryption_signing_key_file {sign_s} is readable by others (mode 0644)"));
    // A malformed verify key names the option.
    let bad = cluster(&[("encryption_identity_file", &id_s), ("encryption_verify_key", "MCowBQ")]);
    assert_fails_with(&restore(&bad, TS, &file(16384)), "encryption_verify_key");

    // The signing key never reaches a log.
    let secret = std::fs::read_to_string(&other_sign).unwrap();
    let body = secret.lines().find(|l| !l.starts_with("-----")).unwrap().to_string();
    for c in [&writer, &reader] {
        assert!(!c.log_text().contains(&body));
    }
}

#[test]
fn verify_deep_decrypts_with_the_identity_and_reads_the_ciphertext_without_it() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let id_s = mine.file.display().to_string();
    let c = Cluster::new(&server, &[("encryption_recipients", &mine.public), ("encryption_identity_file", &id_s)]);
    let ts = "20240301010101";
    Spec::full(ts).store(&c);
    let out = c.run("verify", &[ts, "--deep"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let row = line_with(&text, &format!("gpbackup_0_{ts}_16384.gz"));
    assert!(row.starts_with("ok") && row.contains("decrypted") && row.contains("bound to its place"), "{text}");
    assert!(!row.contains("signature"), "{text}");
    assert!(text.contains(&format!("backup {ts} is restorable")), "{text}");

    // Without the identity: the ciphertext's CRCs, and a word on the rest.
    for other in [
        Cluster::with_folder(&server, &c.folder, &[("encryption_recipients", &mine.public)]),
        Cluster::with_folder(&server, &c.folder, &[]),
    ] {
        let out = other.run("verify", &[ts, "--deep"], b"");
        assert_ok(&out);
        let text = stdout(&out);
        let row = line_with(&text, &format!("gpbackup_0_{ts}_16384.gz"));
        assert!(row.contains("CRC-64") && row.contains("not decrypted"), "{text}");
        assert!(text.contains("not decrypted") && text.contains("encryption_identity_file"), "{text}");
        assert!(!text.contains("is restorable"), "not claimed without reading its config: {text}");
    }

    // A data file copied over another: only the identity sees it.
    let (a, b) = (format!("gpbackup_0_{ts}_16384.gz"), format!("gpbackup_1_{ts}_16384.gz"));
    copy_object(&server, &c.key(ts, &a), &c.key(ts, &b), None);
    let out = c.run("verify", &[ts, "--deep"], b"");
    assert_fails_with(&out, "not restorable");
    let text = stdout(&out);
    assert!(line_with(&text, &b).starts_with("DAMAGED") && line_with(&text, &b).contains("written for"), "{text}");

    // Signed, with a verify key: the signature is judged too.
    let (sign, verify_line) = signing_key(dir.path(), "sign.pem");
    let sign_s = sign.display().to_string();
    let signed = Cluster::new(
        &server,
        &[
            ("encryption_recipients", &mine.public),
            ("encryption_identity_file", &id_s),
            ("encryption_signing_key_file", &sign_s),
            ("encryption_verify_key", &verify_line),
        ],
    );
    Spec::full(ts).store(&signed);
    let out = signed.run("verify", &[ts, "--deep"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let row = line_with(&text, &format!("gpbackup_0_{ts}_16384.gz"));
    assert!(row.contains("decrypted") && row.contains("signature verifies"), "{text}");
}
