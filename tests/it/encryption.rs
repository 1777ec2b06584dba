//! Client-side encryption (age) against a real S3 server (s3s-fs): what is
//! stored is an age file the standard `age` tool decrypts; restores, whole
//! and filtered, need the identity and return the plaintext byte for byte;
//! a filtered restore fetches only the chunks of its ranges (counted on the
//! wire by a proxy); a wrong key, a missing key, a tampered chunk each fail
//! with nothing unverified written; no private key reaches a log, an error
//! or the uploaded config copy.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use age::secrecy::ExposeSecret;

use crate::support::*;

mod binding;
mod signing;

const TS: &str = "20240315123045";
const CHUNK: usize = 64 * 1024;
const STORED_CHUNK: usize = CHUNK + 16;

struct Keys {
    public: String,
    secret: String,
    file: std::path::PathBuf,
}

/// A new age key pair, its private key in `dir/name` with mode 0600 (as
/// `age-keygen -o` writes it).
fn keys(dir: &std::path::Path, name: &str) -> Keys {
    let identity = age::x25519::Identity::generate();
    let public = identity.to_public().to_string();
    let secret = identity.to_string().expose_secret().to_string();
    let file = dir.join(name);
    write_private(&file, &format!("# created: test\n# public key: {public}\n{secret}\n"));
    Keys { public, secret, file }
}

/// Writes `text` to `file` with mode 0600.
fn write_private(file: &std::path::Path, text: &str) {
    std::fs::write(file, text).unwrap();
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The integrity record the plugin gives an object stored in one request.
fn record_of(stored: &[u8]) -> String {
    format!("v1 size={} crc64nvme={:016x}", stored.len(), crc_fast::crc64_nvme(stored))
}

/// Stores `body` at `key` with curl, with these user metadata (as anyone
/// with write access to the bucket can).
fn put_raw(server: &Server, key: &str, body: &[u8], meta: &[(&str, &str)]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    let headers: Vec<String> = meta.iter().map(|(k, v)| format!("x-amz-meta-{k}: {v}")).collect();
    let mut args = vec!["-X", "PUT", "--data-binary"];
    let at = format!("@{}", file.path().display());
    args.push(&at);
    for h in &headers {
        args.extend(["-H", h.as_str()]);
    }
    let out = server.curl(&format!("{}/{key}", server.bucket), &args);
    assert!(out.status.success(), "PUT {key}: {}", String::from_utf8_lossy(&out.stdout));
}

/// A server-side copy of `from` (a version of it, when given) onto `to`,
/// metadata included (S3's default directive, COPY); returns the response
/// headers.
fn copy_object(server: &Server, from: &str, to: &str, version: Option<&str>) -> String {
    let source = match version {
        Some(v) => format!("x-amz-copy-source: /{}/{from}?versionId={v}", server.bucket),
        None => format!("x-amz-copy-source: /{}/{from}", server.bucket),
    };
    let out = server.curl(&format!("{}/{to}", server.bucket), &["-X", "PUT", "-i", "-H", &source]);
    assert!(out.status.success(), "copy {from} to {to}: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

/// `plain` in the age format, to `public` and any extra recipients, as
/// the standard tools (or the previous release) write it.
fn seal(public: &str, plain: &[u8], extra: &[&dyn age::Recipient]) -> Vec<u8> {
    use std::io::Write;
    let recipient: age::x25519::Recipient = public.parse().unwrap();
    let all = std::iter::once(&recipient as &dyn age::Recipient).chain(extra.iter().copied());
    let encryptor = age::Encryptor::with_recipients(all).unwrap();
    let mut stored = Vec::new();
    let mut writer = encryptor.wrap_output(&mut stored).unwrap();
    writer.write_all(plain).unwrap();
    writer.finish().unwrap();
    stored
}

/// The restore of a data file `file` of backup `ts`.
fn restore(c: &Cluster, ts: &str, file: &str) -> Output {
    let path = c.backup_dir("gpseg0", ts).join(file).display().to_string();
    c.run("restore_data", &[&path], b"")
}

/// Backs up `payload` as data file `file` of backup `ts`.
fn backup(c: &Cluster, ts: &str, file: &str, payload: &[u8]) {
    let path = c.backup_dir("gpseg0", ts).join(file).display().to_string();
    assert_ok(&c.run("backup_data", &[&path], payload));
}

fn offsets_file(c: &Cluster, ranges: &[(usize, usize)]) -> String {
    let mut text = ranges.len().to_string();
    for (s, e) in ranges {
        text.push_str(&format!(" {s} {e}"));
    }
    let path = c.dir.path().join("gprestore_offsets");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The bytes the plugin asked for with ranged GETs of `key`.
fn bytes_requested(proxy: &RecordingProxy, key: &str) -> (usize, usize) {
    let (mut requests, mut bytes) = (0, 0);
    for head in proxy.heads() {
        let first = head.lines().next().unwrap_or_default();
        if !first.starts_with("GET ") || !first.contains(key) {
            continue;
        }
        let range = head.lines().find_map(|l| l.strip_prefix("range: bytes=")).expect("ranged GET");
        let (s, e) = range.trim().split_once('-').unwrap();
        requests += 1;
        bytes += e.parse::<usize>().unwrap() + 1 - s.parse::<usize>().unwrap();
    }
    (requests, bytes)
}

#[test]
fn encrypted_backups_restore_whole_and_filtered_only_with_the_identity() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let proxy = RecordingProxy::start(&server.endpoint);
    let identity = mine.file.display().to_string();
    let c = Cluster::new(
        &server,
        &[
            ("encryption_recipients", &mine.public),
            ("encryption_identity_file", &identity),
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
            ("http_proxy", &proxy.url),
        ],
    );
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data((12 << 20) + 12345, 16);
    assert_ok(&c.run("setup_plugin_for_backup", &[seg.to_str().unwrap(), "segment_host"], b""));
    assert_ok(&c.run("backup_data", &[&path], &payload));

    // Stored: an age file, larger by the header and 16 bytes per chunk.
    let key = c.key(TS, &format!("gpbackup_0_{TS}"));
    if let Some(file) = server.object_file(&key) {
        let stored = std::fs::read(&file).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        let chunks = payload.len().div_ceil(CHUNK);
        let header = stored.len() - payload.len() - 16 * chunks;
        assert!(header < 400, "header of {header} bytes");
        assert!(!stored.windows(64).any(|w| w == &payload[CHUNK..CHUNK + 64]), "no plaintext stored");
        // The standard tool decrypts it (the Go reference `age`, when installed).
        match Command::new("age").arg("-d").arg("-i").arg(&mine.file).arg(&file).output() {
            Ok(out) => {
                assert!(out.status.success(), "age -d: {}", String::from_utf8_lossy(&out.stderr));
                assert!(out.stdout == payload, "age -d returns the plaintext");
            }
            Err(_) if !postgres::in_ci() => {
                eprintln!("skipped: install age (apt-get install age) for the interop check")
            }
            Err(e) => panic!("the age CLI is needed in CI: {e}"),
        }
    }

    // The object says so in its metadata (a multipart upload here).
    assert!(server.head(&key).contains("x-amz-meta-gpbackup-encryption: age"), "{}", server.head(&key));
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload, "whole restore: {} bytes", out.stdout.len());

    // Filtered restores: byte-identical, and only their chunks on the wire.
    let m = 5 << 20;
    let end = payload.len();
    let cases: Vec<Vec<(usize, usize)>> = vec![
        vec![(10, 20)],
        vec![(CHUNK - 3, CHUNK + 3)],
        vec![(m - 100, m + 100)],
        vec![(end - 10, end)],
        vec![(0, 0), (100, 200), (200, 300), (7 * CHUNK, 9 * CHUNK)],
        vec![(3 * CHUNK, 3 * CHUNK + 1), (150 * CHUNK + 7, 150 * CHUNK + 9)],
    ];
    for ranges in cases {
        let before = bytes_requested(&proxy, &key);
        let out = c.run("restore_data_subset", &[&path, &offsets_file(&c, &ranges)], b"");
        assert_ok(&out);
        let want: Vec<u8> = ranges.iter().flat_map(|(s, e)| payload[*s..*e].iter().copied()).collect();
        assert!(out.stdout == want, "{ranges:?}: got {} bytes, want {}", out.stdout.len(), want.len());
        let after = bytes_requested(&proxy, &key);
        let fetched = after.1 - before.1;
        let chunks: usize = ranges.iter().filter(|(s, e)| s < e).map(|(s, e)| (e - 1) / CHUNK - s / CHUNK + 1).sum();
        // The chunks, one more per range at most (the last chunk, which
        // authenticates the length), the header probe and the size probe.
        let bound = (chunks + ranges.len()) * STORED_CHUNK + 4096 + 1;
        assert!(fetched <= bound, "{ranges:?}: {fetched} bytes fetched, bound {bound}");
        eprintln!("{ranges:?}: {} requested, {fetched} fetched in {} requests", want.len(), after.0 - before.0);
    }

    // Metadata files are encrypted too; the config copy holds no key.
    let coord = c.backup_dir("coord", TS);
    let metadata = coord.join(format!("gpbackup_{TS}_metadata.sql"));
    std::fs::write(&metadata, b"CREATE TABLE secret_schema (id int);\n").unwrap();
    assert_ok(&c.run("backup_file", &[metadata.to_str().unwrap()], b""));
    let copy = coord.join(format!("gpbackup_{TS}_plugin_config.yaml"));
    std::fs::copy(&c.config, &copy).unwrap();
    assert_ok(&c.run("backup_file", &[copy.to_str().unwrap()], b""));
    // A single-request object says so too; an unencrypted one does not.
    let meta_key = c.key(TS, &format!("gpbackup_{TS}_metadata.sql"));
    assert!(server.head(&meta_key).contains("x-amz-meta-gpbackup-encryption: age"));
    if let Some(file) = server.object_file(&c.key(TS, &format!("gpbackup_{TS}_metadata.sql"))) {
        let stored = std::fs::read(file).unwrap();
        assert!(stored.starts_with(b"age-encryption.org/v1\n"));
        assert!(!String::from_utf8_lossy(&stored).contains("secret_schema"));
    }
    std::fs::remove_file(&metadata).unwrap();
    assert_ok(&c.run("restore_file", &[metadata.to_str().unwrap()], b""));
    assert_eq!(std::fs::read(&metadata).unwrap(), b"CREATE TABLE secret_schema (id int);\n");
    std::fs::remove_file(&copy).unwrap();
    assert_ok(&c.run("restore_file", &[copy.to_str().unwrap()], b""));
    let copied = std::fs::read_to_string(&copy).unwrap();
    assert!(copied.contains(&mine.public) && !copied.contains("AGE-SECRET-KEY"), "{copied}");

    // Another key: fails before a byte, naming the public key it tried.
    let other = keys(dir.path(), "other.txt");
    let other_file = other.file.display().to_string();
    let wrong = Cluster::with_folder(
        &server,
        &c.folder,
        &[("encryption_recipients", &other.public), ("encryption_identity_file", &other_file)],
    );
    let out = wrong.run("restore_data", &[&path], b"");
    assert_fails_with(&out, &other.public);
    assert!(out.stdout.is_empty());
    let out = wrong.run("restore_data_subset", &[&path, &offsets_file(&c, &[(10, 20)])], b"");
    assert_fails_with(&out, &other.public);
    assert!(out.stdout.is_empty());

    // The backup hosts' config (recipients only): no restore, a clear word.
    let backup_only = Cluster::with_folder(&server, &c.folder, &[("encryption_recipients", &mine.public)]);
    let out = backup_only.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "encryption_identity_file");
    assert!(out.stdout.is_empty());

    // No encryption configured: ciphertext is never handed over as data.
    let plain = Cluster::with_folder(&server, &c.folder, &[]);
    let out = plain.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "encrypted");
    assert!(out.stdout.is_empty());
    let out = plain.run("restore_data_subset", &[&path, &offsets_file(&c, &[(10, 20)])], b"");
    assert_fails_with(&out, "encrypted");
    assert!(out.stdout.is_empty());

    // A missing identity file stops a restore, not a backup.
    let missing = Cluster::with_folder(
        &server,
        &c.folder,
        &[("encryption_recipients", &mine.public), ("encryption_identity_file", "/nonexistent/key.txt")],
    );
    assert_fails_with(&missing.run("restore_data", &[&path], b""), "/nonexistent/key.txt");
    assert_ok(&missing.run("backup_data", &[&format!("{path}_2")], b"x"));
    let plain_key = c.key(TS, &format!("gpbackup_0_{TS}_3"));
    assert_ok(&plain.run("backup_data", &[&format!("{path}_3")], b"plain"));
    assert!(!server.head(&plain_key).contains("gpbackup-encryption"));

    // No private key in any log line.
    for text in [c.log_text(), wrong.log_text(), missing.log_text()] {
        assert!(!text.contains(&mine.secret) && !text.contains(&other.secret) && !text.contains("AGE-SECRET-KEY"));
    }
}

#[test]
fn a_tampered_chunk_stops_the_restore_before_its_bytes() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let identity = mine.file.display().to_string();
    let c = Cluster::new(&server, &[("encryption_recipients", &mine.public), ("encryption_identity_file", &identity)]);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data(6 * CHUNK + 99, 3);
    assert_ok(&c.run("backup_data", &[&path], &payload));
    let key = c.key(TS, &format!("gpbackup_0_{TS}"));
    let Some(file) = server.object_file(&key) else { return };
    let mut stored = std::fs::read(&file).unwrap();
    let header = stored.len() - payload.len() - 16 * payload.len().div_ceil(CHUNK);
    // One ciphertext byte of chunk 4 flipped, stored anew with a CRC record
    // of its own (as someone with write access to the bucket can write
    // it): only the AEAD tags stand between it and the output.
    stored[header + 4 * STORED_CHUNK + 500] ^= 0x20;
    let record = record_of(&stored);
    put_raw(&server, &key, &stored, &[("gpbackup-integrity", &record), ("gpbackup-encryption", "age")]);
    let out = c.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "does not authenticate");
    assert!(out.stdout.len() <= 4 * CHUNK, "{} bytes written", out.stdout.len());
    assert!(out.stdout[..] == payload[..out.stdout.len()], "only verified bytes");
    // A filtered restore of the damaged chunk: nothing; of others: fine.
    let offsets = offsets_file(&c, &[(4 * CHUNK + 10, 4 * CHUNK + 20)]);
    let out = c.run("restore_data_subset", &[&path, &offsets], b"");
    assert_fails_with(&out, "does not authenticate");
    assert!(out.stdout.is_empty());
    let out = c.run("restore_data_subset", &[&path, &offsets_file(&c, &[(10, 20), (5 * CHUNK, 5 * CHUNK + 9)])], b"");
    assert_ok(&out);
    assert!(out.stdout[..] == [&payload[10..20], &payload[5 * CHUNK..5 * CHUNK + 9]].concat()[..]);
}

#[test]
fn a_malformed_recipient_fails_the_backup_setup_not_a_restore() {
    let server = Server::start();
    let c = Cluster::new(&server, &[("encryption_recipients", "age1notakey")]);
    let seg = c.backup_dir("gpseg0", TS);
    let out = c.run("setup_plugin_for_backup", &[seg.to_str().unwrap(), "segment_host"], b"");
    assert_fails_with(&out, "encryption_recipients");
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    assert_fails_with(&c.run("backup_data", &[&path], b"x"), "not a valid age X25519 public key");
}

/// `backups` and `expire` read an encrypted backup's coordinator files (its
/// config, its TOC) with the identity: encrypted backups are complete, their
/// chains known, and expire like plain ones. Where the identity is not (a
/// config with recipients only), they cannot be read: `backups` says so and
/// `expire` keeps them, instead of taking them for incomplete backups and
/// deleting them.
#[test]
fn the_catalog_reads_encrypted_backups_and_expire_keeps_what_it_cannot_read() {
    use crate::catalog::{Spec, has_backup, line_with, stdout};
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let identity = mine.file.display().to_string();
    let c = Cluster::new(&server, &[("encryption_recipients", &mine.public), ("encryption_identity_file", &identity)]);
    let (a, b, d) = ("20240101000000", "20240102000000", "20240103000000");
    Spec::full(a).store(&c);
    Spec::incremental(b, &[a]).store(&c);
    Spec::full(d).store(&c);

    let out = c.run("backups", &[], b"");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.lines().next().unwrap().contains("ENCRYPTION"), "{text}");
    for ts in [a, b, d] {
        let words: Vec<&str> = line_with(&text, ts).split_whitespace().collect();
        assert_eq!(words[3], "complete", "{text}");
        assert!(words.contains(&"age") && words.contains(&"demo"), "{text}");
    }
    assert!(line_with(&text, b).contains(&format!("incremental  {a}")), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&c.run("backups", &["--json"], b"").stdout).unwrap();
    assert_eq!((json[0]["encryption"].as_str(), json[0]["complete"].as_bool()), (Some("age"), Some(true)));

    let out = c.run("expire", &["--keep-last", "1"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(line_with(&text, d).starts_with("keep"), "{text}");
    assert!(line_with(&text, b).starts_with("delete") && line_with(&text, a).starts_with("delete"), "{text}");

    // A host with the public keys only: nothing is read, nothing deleted.
    let writer = Cluster::with_folder(&server, &c.folder, &[("encryption_recipients", &mine.public)]);
    let out = writer.run("backups", &[], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let row = line_with(&text, a);
    assert!(row.contains("encrypted") && row.contains("encryption_identity_file"), "{text}");
    assert!(!row.contains("incomplete"), "{text}");
    let out = writer.run("expire", &["--keep-last", "1", "--yes", "--grace", "0s"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    for ts in [a, b, d] {
        assert!(line_with(&text, ts).starts_with("keep"), "{text}");
        assert!(has_backup(&writer, ts), "{ts} deleted:\n{text}");
    }
    assert!(line_with(&text, a).contains("encryption_identity_file"), "{text}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("AGE-SECRET-KEY"));
}

/// 100 MiB through the binary, encrypted with the default part sizes
/// (multipart, parts growing), back byte for byte.
#[test]
fn a_hundred_mebibytes_round_trip_encrypted() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mine = keys(dir.path(), "identity.txt");
    let identity = mine.file.display().to_string();
    let c = Cluster::new(&server, &[("encryption_recipients", &mine.public), ("encryption_identity_file", &identity)]);
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}_16384")).display().to_string();
    let payload = data(100 << 20, 161);
    assert_ok(&c.run("backup_data", &[&path], &payload));
    let stored = server.head(&c.key(TS, &format!("gpbackup_0_{TS}_16384")));
    assert!(stored.contains("x-amz-meta-gpbackup-encryption: age"), "{stored}");
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert_eq!(out.stdout.len(), payload.len());
    assert!(out.stdout == payload, "100 MiB back byte for byte");
}
