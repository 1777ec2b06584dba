//! Tests of the config file: every option, default and problem message.

use super::options::Purpose;
use super::values::{parse_duration, parse_duration_with_unit, parse_tags};
use super::*;
use crate::error::Kind;
use base64::Engine as _;
use md5::Digest as _;
use std::time::Duration;

const MINIMAL: &str = "executablepath: /usr/local/gpdb/bin/gpbackup_s3_plugin\noptions:\n  region: us-west-2\n  bucket: b1\n  folder: f1\n";

fn err(text: &str) -> String {
    match Config::parse(text) {
        Err(e) if e.is(Kind::Config) => e.message().to_string(),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.region, "us-west-2");
    assert_eq!(c.endpoint, None);
    assert!(c.tls);
    assert_eq!(c.keys, None);
    assert_eq!(c.backup, Transfer { part_size: 8 * MIB, concurrency: 6, verify: Verify::Strict });
    assert_eq!(c.restore, Transfer { part_size: 8 * MIB, concurrency: 6, verify: Verify::Strict });
    assert!(!c.remove_duplicate_bucket);
    // AWS keeps a full-object CRC-64/NVME; other servers get CRC32C.
    assert_eq!(c.checksums, Checksums::Crc64nvme);
    let other = Config::parse(&format!("{MINIMAL}  endpoint: http://minio.local:9000\n")).unwrap();
    assert_eq!(other.checksums, Checksums::Crc32c);
}

#[test]
fn verify_is_strict_unless_available_is_asked_for() {
    let available = Config::parse(&format!("{MINIMAL}  verify: available\n")).unwrap();
    assert_eq!(available.restore.verify, Verify::Available);
    assert!(err(&format!("{MINIMAL}  verify: sometimes\n")).contains("verify must be strict or available"));
    assert!(err(&format!("{MINIMAL}  checksums: sha1\n")).contains("crc64nvme"));
}

#[test]
fn gpbackup_generated_copy_is_accepted() {
    // As gpbackup writes it: sorted keys, quoted scalars, injected keys.
    let text = r#"executablepath: /usr/local/greenplum-db/bin/gpbackup_s3_plugin
options:
  aws_access_key_id: AKIAEXAMPLE
  aws_secret_access_key: s3cr3t/value
  backup_max_concurrent_requests: "4"
  backup_multipart_chunksize: 100MB
  backup_plugin_version: ""
  bucket: gpdb-backup
  encryption: "off"
  endpoint: minio.local:9000
  folder: test/backup3
  pgport: "6000"
  region: unused
  restore_subset: "on"
"#;
    let c = Config::parse(text).unwrap();
    assert_eq!(c.endpoint.as_deref(), Some("http://minio.local:9000"));
    assert!(!c.tls);
    assert_eq!(c.backup, Transfer { part_size: 100 * MIB, concurrency: 4, verify: Verify::Strict });
    assert_eq!(c.keys.as_ref().unwrap().access_key_id, "AKIAEXAMPLE");
    assert_eq!(c.secrets.0, vec!["s3cr3t/value".to_string()]);
    assert!(!format!("{c:?}").contains("s3cr3t"));
}

#[test]
fn unquoted_numbers_and_booleans_are_strings() {
    let text = format!(
        "{MINIMAL}  backup_max_concurrent_requests: 3\n  remove_duplicate_bucket: false\n  endpoint: http://h:1\n"
    );
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.backup.concurrency, 3);
}

#[test]
fn endpoint_only_defaults_region() {
    let text = "executablepath: /x\noptions:\n  endpoint: https://s3.example.com/\n  bucket: b\n  folder: f\n";
    let c = Config::parse(text).unwrap();
    assert_eq!(c.region, "us-east-1");
    assert_eq!(c.endpoint.as_deref(), Some("https://s3.example.com"));
}

#[test]
fn folder_is_normalised() {
    for (raw, want) in [("prod/gp/", "prod/gp"), ("/prod/gp", "prod/gp"), ("//a//b//", "a/b"), ("x", "x")] {
        let text = MINIMAL.replace("folder: f1", &format!("folder: {raw}"));
        assert_eq!(Config::parse(&text).unwrap().folder, want, "{raw}");
    }
    // As the Go plugin's keys end up: `/` and `.` are the bucket root.
    for root in ["/", ".", "a/.."] {
        assert_eq!(Config::parse(&MINIMAL.replace("folder: f1", &format!("folder: {root}"))).unwrap().folder, "");
    }
    assert!(err(&MINIMAL.replace("folder: f1", "folder: ''")).contains("folder is required"));
    assert!(err(&MINIMAL.replace("folder: f1", "folder: ../other")).contains("folder leaves the bucket"));
}

#[test]
fn all_problems_reported_together() {
    let text = "executablepath: /x\noptions:\n  encryption: maybe\n  aws_access_key_id: k\n  bucket_name: b\n  backup_multipart_chunksize: 1XB\n  restore_max_concurrent_requests: -1\n";
    let m = err(text);
    for needle in [
        "unknown option bucket_name",
        "bucket is required",
        "folder is required",
        "encryption must be on or off",
        "aws_secret_access_key is required",
        "region or endpoint is required",
        "backup_multipart_chunksize: unrecognised size unit",
        "restore_max_concurrent_requests must be a whole number",
    ] {
        assert!(m.contains(needle), "missing {needle:?} in {m}");
    }
    assert!(!m.contains('\n'));
}

#[test]
fn structural_errors() {
    assert!(err("options:\n  bucket: b\n  folder: f\n  region: r\n").contains("executablepath is required"));
    assert!(err("executablepath: /x\n").contains("options is required"));
    assert!(err("executablepath: /x\noptions: [a, b]\n").contains("options must be a map"));
    assert!(err("executablepath: /x\nextra: 1\noptions:\n  bucket: b\n").contains("invalid YAML"));
    assert!(err(&format!("{MINIMAL}  folder2:\n    nested: x\n")).contains("option folder2 must be a single value"));
    assert!(err("executablepath: [\n").contains("invalid YAML"));
}

#[test]
fn secrets_never_in_errors() {
    let text = "executablepath: /x\noptions:\n  aws_secret_access_key: TOPSECRET\n  encryption: TOPSECRET2\n";
    let m = err(text);
    assert!(!m.contains("TOPSECRET"), "{m}");
}

#[test]
fn part_size_limits() {
    let with = |v: &str| MINIMAL.to_string() + &format!("  restore_multipart_chunksize: {v}\n");
    assert_eq!(Config::parse(&with("5MB")).unwrap().restore.part_size, 5 * MIB);
    assert_eq!(Config::parse(&with("5GB")).unwrap().restore.part_size, 5 * 1024 * MIB);
    assert!(err(&with("5GB1")).contains("restore_multipart_chunksize"));
    // As the Go plugin: ranged GETs may be small; 0 is the default.
    assert_eq!(Config::parse(&with("1MB")).unwrap().restore.part_size, MIB);
    assert_eq!(Config::parse(&with("0")).unwrap().restore.part_size, 8 * MIB);
}

/// What S3 forbids is clamped with a warning, not refused; 0 means the
/// default; sizes take every unit up to EB.
#[test]
fn out_of_range_values_are_clamped_with_a_warning() {
    let with = |k: &str, v: &str| MINIMAL.to_string() + &format!("  {k}: {v}\n");
    let c = Config::parse(&with("backup_multipart_chunksize", "6GB")).unwrap();
    assert_eq!(c.backup.part_size, MAX_PART_SIZE);
    assert!(c.warnings.iter().any(|w| w.contains("backup_multipart_chunksize")), "{:?}", c.warnings);
    let c = Config::parse(&with("backup_multipart_chunksize", "1MB")).unwrap();
    assert_eq!(c.backup.part_size, MIN_PART_SIZE);
    let c = Config::parse(&with("backup_max_concurrent_requests", "500")).unwrap();
    assert_eq!(c.backup.concurrency, MAX_CONCURRENCY);
    assert!(!c.warnings.is_empty());
    assert_eq!(Config::parse(&with("restore_max_concurrent_requests", "0")).unwrap().restore.concurrency, 6);
    let c = Config::parse(&with("backup_multipart_chunksize", "1EB")).unwrap();
    assert_eq!(c.backup.part_size, MAX_PART_SIZE);
}

/// A bad option a command does not use never stops it.
#[test]
fn problems_of_unused_options_do_not_stop_a_command() {
    let text = format!("{MINIMAL}  backup_multipart_chunksize: huge\n  restore_tier: Fastest\n");
    let restore = Config::parse_for(&text, Purpose::Restore).unwrap_err().to_string();
    assert!(restore.contains("restore_tier") && !restore.contains("backup_multipart_chunksize"), "{restore}");
    let backup = Config::parse_for(&text, Purpose::Backup).unwrap_err().to_string();
    assert!(backup.contains("backup_multipart_chunksize") && !backup.contains("restore_tier"), "{backup}");
    let text = format!("{MINIMAL}  backup_multipart_chunksize: huge\n");
    let restore = Config::parse_for(&text, Purpose::Restore).unwrap();
    assert!(restore.warnings.iter().any(|w| w.contains("backup_multipart_chunksize")), "{:?}", restore.warnings);
    assert!(Config::parse_for(&text, Purpose::Check).is_err());
}

#[test]
fn durations_and_retries() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!((c.retry_max_attempts, c.retry_time_budget), (10, Duration::from_secs(600)));
    let text = MINIMAL.to_string() + "  retry_max_attempts: 3\n  retry_time_budget: 2m\n";
    let c = Config::parse(&text).unwrap();
    assert_eq!((c.retry_max_attempts, c.retry_time_budget), (3, Duration::from_secs(120)));
    let text = MINIMAL.to_string() + "  retry_max_attempts: 0\n  retry_time_budget: soon\n";
    let m = err(&text);
    assert!(m.contains("retry_max_attempts") && m.contains("retry_time_budget"), "{m}");
    let text = MINIMAL.to_string() + "  retry_time_budget: 0\n";
    assert!(err(&text).contains("retry_time_budget must be longer than zero"));
}

#[test]
fn session_token_needs_keys() {
    let text = MINIMAL.to_string() + "  aws_session_token: tok\n";
    assert!(err(&text).contains("aws_session_token needs"));
    let text = MINIMAL.to_string() + "  aws_session_token: tok\n  aws_access_key_id: a\n  aws_secret_access_key: s\n";
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.keys.unwrap().session_token.as_deref(), Some("tok"));
    assert_eq!(c.secrets.0.len(), 2);
}

#[test]
fn injected_plugin_name_key_is_a_secret() {
    let key = secrets::Key::generate().unwrap();
    let text = format!("{MINIMAL}  gpbackup_s3_plugin: {}\n  password_encryption: \"on\"\n", key.encode());
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.secrets.0, vec![key.encode()]);
    // A key that is not one: a problem naming password_encryption, not the key.
    let text = MINIMAL.to_string() + "  gpbackup_s3_plugin: encrypted-pw\n  password_encryption: \"on\"\n";
    let message = err(&text);
    assert!(message.contains("password_encryption") && !message.contains("encrypted-pw"), "{message}");
}

#[test]
fn sealed_credentials_open_with_the_injected_key() {
    let key = secrets::Key::generate().unwrap();
    let (secret, token) = (key.seal(b"wJalrXUtnFEMI").unwrap(), key.seal(b"FwoGZXIvYXdz").unwrap());
    let text = format!(
        "{MINIMAL}  aws_access_key_id: AKIAX\n  aws_secret_access_key: {secret}\n  aws_session_token: {token}\n  \
         password_encryption: \"on\"\n  gpbackup_s3_plugin: {}\n",
        key.encode()
    );
    let c = Config::parse(&text).unwrap();
    let keys = c.keys.clone().unwrap();
    assert_eq!(
        (keys.secret_access_key.as_str(), keys.session_token.as_deref()),
        ("wJalrXUtnFEMI", Some("FwoGZXIvYXdz"))
    );
    // Sealed, opened and the key itself are all redacted.
    for s in [secret.as_str(), token.as_str(), "wJalrXUtnFEMI", "FwoGZXIvYXdz", key.encode().as_str()] {
        assert!(c.secrets.0.iter().any(|k| k == s), "not registered as a secret");
        assert!(!format!("{c:?}").contains(s));
    }
    let copy = redact_copy(&text, &c.secrets.0).unwrap();
    assert!(!copy.contains(&secret) && !copy.contains(&key.encode()) && copy.contains("password_encryption"));
    // A sealed token without the switch, and another key: problems naming the option.
    let without = text.replace("  password_encryption: \"on\"\n", "");
    assert!(err(&without).contains("aws_secret_access_key is sealed"), "{}", err(&without));
    let other = secrets::Key::generate().unwrap();
    let wrong = text.replace(&key.encode(), &other.encode());
    let message = err(&wrong);
    assert!(message.contains("aws_secret_access_key does not open") && message.contains("aws_session_token"));
    // The SSE-C key file, sealed.
    let dir = tempfile::tempdir().unwrap();
    let raw = [7u8; 32];
    let file = dir.path().join("sse-c.sealed");
    std::fs::write(&file, key.seal(&raw).unwrap()).unwrap();
    let with_file = format!("{text}  sse_customer_key_file: {}\n", file.display());
    match Config::parse(&with_file).unwrap().encryption {
        Encryption::Customer(k) => assert_eq!(k.key_base64, base64::engine::general_purpose::STANDARD.encode(raw)),
        other => panic!("{other:?}"),
    }
    let plain_file = format!("{MINIMAL}  sse_customer_key_file: {}\n", file.display());
    assert!(err(&plain_file).contains("is sealed, but password_encryption is not on"));
}
#[test]
fn durations() {
    for (text, secs) in [("10", 10.0), ("10s", 10.0), ("5m", 300.0), ("1h30m", 5400.0), ("2d", 172_800.0)] {
        assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
    }
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("1 h 5 s").unwrap(), Duration::from_secs(3605));
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    for bad in ["", "s", "5x", "m5", "1.5h", "-3s", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    // What an operator types: a bare number was seconds, and is refused.
    for (text, secs) in [("30d", 2_592_000), ("12h", 43_200), ("90m", 5400), ("2w", 1_209_600), ("0s", 0)] {
        assert_eq!(parse_duration_with_unit(text).unwrap().as_secs(), secs, "{text}");
    }
    for bare in ["30", " 60 ", "0"] {
        let why = parse_duration_with_unit(bare).unwrap_err();
        assert!(why.contains("has no unit") && why.contains(&format!("{}d", bare.trim())), "{why}");
    }
    let with = |k: &str, v: &str| format!("{MINIMAL}  {k}: {v}\n");
    let c = Config::parse(&with("connect_timeout", "3s")).unwrap();
    assert_eq!((c.connect_timeout, c.read_timeout), (Duration::from_secs(3), Duration::from_secs(300)));
    assert_eq!(Config::parse(&with("read_timeout", "2m")).unwrap().read_timeout, Duration::from_secs(120));
    assert!(err(&with("connect_timeout", "0")).contains("connect_timeout must be longer than zero"));
    assert!(err(&with("read_timeout", "soon")).contains("read_timeout: \"soon\" is not a duration"));
    assert!(err(&with("read_timeout", "31d")).contains("read_timeout must be at most 30 days"));
    // A wait may be switched off.
    assert_eq!(Config::parse(&with("restore_wait_timeout", "0")).unwrap().thaw.wait_timeout, Duration::ZERO);
}

#[test]
fn tags() {
    assert_eq!(
        parse_tags("team=dba&retention=90 days&path=a/b:c").unwrap(),
        vec![
            ("team".to_string(), "dba".to_string()),
            ("retention".to_string(), "90 days".to_string()),
            ("path".to_string(), "a/b:c".to_string())
        ]
    );
    assert_eq!(parse_tags("empty=").unwrap(), vec![("empty".to_string(), String::new())]);
    let eleven = (0..11).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join("&");
    for (bad, why) in [
        ("novalue", "is not key=value"),
        ("=v", "1 to 128"),
        ("a=1&a=2", "appears twice"),
        ("a=b;c", "only letters"),
        ("aws:x=1", "reserved"),
        (eleven.as_str(), "11 tags"),
    ] {
        let e = parse_tags(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let c = Config::parse(&format!("{MINIMAL}  object_tags: \"a=1&b=2\"\n")).unwrap();
    assert_eq!(c.object_tags.len(), 2);
    assert!(err(&format!("{MINIMAL}  object_tags: x\n")).contains("object_tags: \"x\" is not key=value"));
}

#[test]
fn storage_classes() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!((c.storage_class, c.metadata_storage_class), (None, None));
    let c = Config::parse(&format!("{MINIMAL}  storage_class: deep_archive\n  metadata_storage_class: GLACIER_IR\n"))
        .unwrap();
    assert_eq!(c.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
    assert_eq!(c.metadata_storage_class.as_deref(), Some("GLACIER_IR"));
    let m = err(&format!("{MINIMAL}  storage_class: FROZEN\n  metadata_storage_class: GLACIER\n"));
    assert!(m.contains("storage_class FROZEN is not a storage class"), "{m}");
    assert!(m.contains("metadata_storage_class GLACIER is an archived class"), "{m}");
}

#[test]
fn glacier_vault_options() {
    let with = |extra: &str| format!("{MINIMAL}{extra}");
    assert_eq!(Config::parse(MINIMAL).unwrap().vault, None);
    let c = Config::parse(&with("  storage: glacier\n  vault: prod-gp_1.x\n")).unwrap();
    let vault = c.vault.unwrap();
    assert_eq!((vault.name.as_str(), vault.account_id.as_str()), ("prod-gp_1.x", "-"));
    assert_eq!((vault.endpoint, vault.part_size), (None, 16 * MIB));
    assert_eq!(vault.on_retention_locked, OnRetentionLocked::Fail);
    let c = Config::parse(&with(
        "  storage: GLACIER\n  vault: v\n  account_id: '123456789012'\n  glacier_endpoint: 127.0.0.1:5000\n  \
         encryption: off\n  vault_part_size: 64MB\n  on_retention_locked: defer\n",
    ))
    .unwrap();
    let vault = c.vault.unwrap();
    assert_eq!(vault.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    assert_eq!((vault.part_size, vault.account_id.as_str()), (64 * MIB, "123456789012"));
    assert_eq!(vault.on_retention_locked, OnRetentionLocked::Defer);

    assert!(err(&with("  storage: glacier\n")).contains("vault is required with storage: glacier"));
    assert!(err(&with("  storage: tape\n")).contains("storage must be s3 or glacier"));
    let m = err(&with("  vault: v\n  vault_part_size: 8MB\n"));
    assert!(m.contains("vault, vault_part_size apply only with storage: glacier"), "{m}");
    assert!(err(&with("  vault: v\n")).contains("vault applies only with storage: glacier"));
    let m = err(&with("  storage: glacier\n  vault: v\n  storage_class: DEEP_ARCHIVE\n"));
    assert!(m.contains("storage_class does not apply with storage: glacier"), "{m}");
    for (option, needle) in [
        ("vault_part_size: 3MB", "power of two"),
        ("vault_part_size: 512KB", "power of two"),
        ("vault_part_size: 8GB", "power of two"),
        ("account_id: 1234-5678-9012", "12-digit"),
        ("on_retention_locked: maybe", "fail or defer"),
    ] {
        let m = err(&with(&format!("  storage: glacier\n  vault: v\n  {option}\n")));
        assert!(m.contains(needle), "{option}: {m}");
    }
    assert!(err(&with("  storage: glacier\n  vault: 'bad name!'\n")).contains("vault bad name!"));
}

#[test]
fn restore_options() {
    let c = Config::parse(MINIMAL).unwrap();
    assert_eq!(c.thaw, Thaw { tier: RestoreTier::Standard, days: 7, wait_timeout: Duration::ZERO, auto: false });
    let text =
        format!("{MINIMAL}  restore_tier: bulk\n  restore_days: 3\n  restore_wait_timeout: 2h\n  restore_auto: true\n");
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.thaw, Thaw { tier: RestoreTier::Bulk, days: 3, wait_timeout: Duration::from_secs(7200), auto: true });
    let text = format!(
        "{MINIMAL}  restore_tier: Fast\n  restore_days: 0\n  restore_wait_timeout: forever\n  restore_auto: yes\n"
    );
    let m = err(&text);
    for needle in ["restore_tier must be", "restore_days must be", "restore_wait_timeout:", "restore_auto must be"] {
        assert!(m.contains(needle), "missing {needle:?} in {m}");
    }
}

#[test]
fn encryption_combinations() {
    let with = |extra: &str| format!("{MINIMAL}{extra}");
    assert_eq!(Config::parse(MINIMAL).unwrap().encryption, Encryption::BucketDefault);
    assert_eq!(Config::parse(&with("  server_side_encryption: AES256\n")).unwrap().encryption, Encryption::S3Managed);
    let c = Config::parse(&with(
        "  server_side_encryption: aws:kms\n  sse_kms_key_id: arn:aws:kms:us-west-2:1:key/k\n  sse_bucket_key: true\n",
    ))
    .unwrap();
    assert_eq!(
        c.encryption,
        Encryption::Kms {
            key_id: Some("arn:aws:kms:us-west-2:1:key/k".to_string()),
            bucket_key: Some(true),
            dual_layer: false
        }
    );
    let c = Config::parse(&with("  server_side_encryption: aws:kms:dsse\n")).unwrap();
    assert!(matches!(c.encryption, Encryption::Kms { key_id: None, bucket_key: None, dual_layer: true }));
    let m = err(&with("  server_side_encryption: AES256\n  sse_kms_key_id: k\n  sse_bucket_key: true\n"));
    assert!(m.contains("sse_kms_key_id needs server_side_encryption: aws:kms"), "{m}");
    assert!(m.contains("sse_bucket_key needs server_side_encryption: aws:kms"), "{m}");
    assert!(err(&with("  server_side_encryption: kms\n")).contains("server_side_encryption must be"));
    assert!(err(&with("  sse_kms_key_id: k\n")).contains("sse_kms_key_id needs"));
}

#[test]
fn customer_keys_from_files_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37).wrapping_add(200)).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&raw);
    let raw_file = dir.path().join("raw.key");
    std::fs::write(&raw_file, &raw).unwrap();
    let text_file = dir.path().join("b64.key");
    std::fs::write(&text_file, format!("{b64}\n")).unwrap();
    let with = |file: &std::path::Path| format!("{MINIMAL}  sse_customer_key_file: {}\n", file.display());
    for file in [&raw_file, &text_file] {
        let c = Config::parse(&with(file)).unwrap();
        let Encryption::Customer(key) = &c.encryption else { panic!("{:?}", c.encryption) };
        assert_eq!(key.key_base64, b64);
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&raw));
        assert_eq!(key.key_md5_base64, md5);
        assert!(c.secrets.0.contains(&b64), "the key is redacted everywhere");
        assert!(!format!("{c:?}").contains(&b64));
    }
    // Wrong sizes and contents: the message names the file, never its bytes.
    let short = dir.path().join("short.key");
    std::fs::write(&short, "c2VjcmV0LXRvby1zaG9ydA==").unwrap();
    let m = err(&with(&short));
    assert!(m.contains("short.key") && m.contains("256-bit key") && !m.contains("c2VjcmV0"), "{m}");
    let m = err(&with(&dir.path().join("missing.key")));
    assert!(m.contains("missing.key: cannot be read"), "{m}");
    let m = err(&format!("{}  server_side_encryption: AES256\n", with(&raw_file)));
    assert!(m.contains("exclude each other"), "{m}");
}

#[test]
fn addressing_tls_and_proxy() {
    let c = Config::parse(MINIMAL).unwrap();
    assert!(!c.force_path_style, "AWS itself: virtual-host addressing");
    let with = |extra: &str| format!("{MINIMAL}  endpoint: https://minio.local:9000\n{extra}");
    assert!(Config::parse(&with("")).unwrap().force_path_style, "S3-compatible: path-style, as the Go plugin");
    assert!(!Config::parse(&with("  force_path_style: false\n")).unwrap().force_path_style);
    assert!(Config::parse(&with("  remove_duplicate_bucket: true\n")).unwrap().remove_duplicate_bucket);
    assert!(err(&with("  remove_duplicate_bucket: true\n  force_path_style: false\n")).contains("contradicts"));
    // As the Go plugin: accepted without an endpoint, where AWS's
    // virtual-host addressing already keeps the bucket out of the path.
    let aws = Config::parse(&format!("{MINIMAL}  remove_duplicate_bucket: true\n")).unwrap();
    assert!(!aws.remove_duplicate_bucket && !aws.force_path_style);
    assert!(err(&with("  force_path_style: maybe\n")).contains("force_path_style must be true or false"));

    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
    let c = Config::parse(&with(&format!("  ca_cert_file: {}\n", pem.display()))).unwrap();
    assert_eq!(c.ca_cert.unwrap().file, pem.display().to_string());
    let not_pem = dir.path().join("ca.der");
    std::fs::write(&not_pem, [0x30, 0x82]).unwrap();
    assert!(err(&with(&format!("  ca_cert_file: {}\n", not_pem.display()))).contains("holds no PEM certificate"));
    assert!(err(&with("  ca_cert_file: /nonexistent/ca.pem\n")).contains("/nonexistent/ca.pem cannot be read"));
    let http = format!("{MINIMAL}  endpoint: http://h:1\n  ca_cert_file: {}\n", pem.display());
    assert!(err(&http).contains("ca_cert_file needs TLS"));

    let c = Config::parse(&with("  http_proxy: http://proxy:3128\n  no_proxy: \"localhost, .internal\"\n")).unwrap();
    assert_eq!(c.no_proxy.as_deref(), Some("localhost,.internal"));
}

#[test]
fn object_lock_options_and_their_example() {
    let c = Config::parse(include_str!("../../plugin-config-examples/s3-object-lock.yaml")).unwrap();
    let lock = c.object_lock.unwrap();
    assert_eq!(lock.retention, Some((crate::config::LockMode::Governance, Duration::from_secs(30 * 86_400))));
    assert!(!lock.legal_hold);
    assert_eq!(c.on_retention_locked, OnRetentionLocked::Defer);
    assert_eq!(Config::parse(MINIMAL).unwrap().object_lock, None);
    let with = |extra: &str| format!("{MINIMAL}{extra}");
    let c = Config::parse(&with("  object_lock_legal_hold: \"true\"\n")).unwrap();
    assert_eq!(c.object_lock.unwrap().retention, None);
    let c = Config::parse(&with("  object_lock_mode: COMPLIANCE\n  object_lock_retention: 1y\n")).unwrap();
    assert_eq!(c.object_lock.unwrap().retention.map(|r| r.0), Some(crate::config::LockMode::Compliance));
    for (extra, needle) in [
        ("  object_lock_mode: strict\n  object_lock_retention: 1d\n", "must be governance or compliance"),
        ("  object_lock_mode: governance\n", "needs object_lock_retention"),
        ("  object_lock_retention: 1d\n", "needs object_lock_mode"),
        ("  object_lock_mode: governance\n  object_lock_retention: 11y\n", "at most 10 years"),
        ("  object_lock_mode: governance\n  object_lock_retention: 0s\n", "at least one second"),
        ("  object_lock_mode: governance\n  object_lock_retention: 30\n", "has no unit: write 30d"),
        ("  storage: glacier\n  vault: v\n  object_lock_legal_hold: \"true\"\n", "do not apply with storage: glacier"),
        ("  on_retention_locked: later\n", "fail or defer"),
    ] {
        let m = err(&with(extra));
        assert!(m.contains(needle), "{extra}: {m}");
    }
    // A restore is not stopped by a bad backup-only lock option.
    let text = with("  object_lock_mode: strict\n  object_lock_retention: 1d\n");
    assert!(Config::parse_for(&text, Purpose::Restore).is_ok());
}

#[test]
fn the_cold_storage_and_kms_examples_mean_what_they_say() {
    let c = Config::parse(include_str!("../../plugin-config-examples/s3-deep-archive.yaml")).unwrap();
    assert_eq!(c.storage_class.as_deref(), Some("DEEP_ARCHIVE"));
    assert_eq!(c.metadata_storage_class.as_deref(), Some("STANDARD_IA"));
    assert_eq!(c.thaw, Thaw { tier: RestoreTier::Bulk, days: 5, wait_timeout: Duration::ZERO, auto: false });
    assert_eq!(c.object_tags.len(), 2);
    assert!(!c.force_path_style);
    let c = Config::parse(include_str!("../../plugin-config-examples/s3-sse-kms.yaml")).unwrap();
    assert!(matches!(
        &c.encryption,
        Encryption::Kms { key_id: Some(k), bucket_key: Some(true), dual_layer: false } if k.starts_with("arn:aws:kms:")
    ));
    assert_eq!((c.connect_timeout, c.read_timeout), (Duration::from_secs(10), Duration::from_secs(300)));
    assert_eq!(c.no_proxy.as_deref(), Some("169.254.169.254,.internal"));
    let c = Config::parse(include_str!("../../plugin-config-examples/glacier-vault.yaml")).unwrap();
    let vault = c.vault.unwrap();
    assert_eq!(
        (vault.name.as_str(), vault.account_id.as_str(), vault.part_size),
        ("gpdb-prod-cluster1", "-", 16 * MIB)
    );
    assert_eq!(vault.on_retention_locked, OnRetentionLocked::Defer);
    assert_eq!(c.thaw.tier, RestoreTier::Bulk);
}

/// Values that go into requests cannot carry control characters: they are
/// refused by name at config time, never echoed.
#[test]
fn request_bound_values_are_checked_by_name() {
    for (key, value) in [
        ("region", "\"us-east-1\\nx\""),
        ("aws_access_key_id", "\"AKIA\\nEVIL\""),
        ("aws_session_token", "\"tok\\r\\nx-evil: 1\""),
        ("bucket", "\"b c\""),
        ("sse_kms_key_id", "\"k\\u0000\""),
    ] {
        let mut options = vec![
            ("region", "us-west-2"),
            ("bucket", "b1"),
            ("folder", "f1"),
            ("aws_access_key_id", "AKIAOK"),
            ("aws_secret_access_key", "s"),
        ];
        options.retain(|(k, _)| *k != key);
        options.push((key, value));
        if key == "sse_kms_key_id" {
            options.push(("server_side_encryption", "aws:kms"));
        }
        let text: String = options.iter().map(|(k, v)| format!("  {k}: {v}\n")).collect();
        let m = err(&format!("executablepath: /x\noptions:\n{text}"));
        assert!(m.contains(&format!("{key} must be printable ASCII")), "{key}: {m}");
        assert!(!m.to_lowercase().contains("evil"), "{m}");
    }
}

#[test]
fn endpoints_are_urls() {
    for bad in ["http://127.0.0.1:99999", "not a url", "http://[::1", "ftp://h", "http://h/?x=1"] {
        let m = err(&format!("{MINIMAL}  endpoint: \"{bad}\"\n"));
        assert!(m.contains("endpoint ") && (m.contains("URL") || m.contains("http")), "{bad}: {m}");
    }
    assert!(Config::parse(&format!("{MINIMAL}  endpoint: minio.local:9000\n")).is_ok());
    assert!(Config::parse(&format!("{MINIMAL}  endpoint: \"http://[::1]:9000\"\n")).is_ok());
    let m = err(&format!("{MINIMAL}  storage: glacier\n  vault: v\n  glacier_endpoint: \"http://h:70000\"\n"));
    assert!(m.contains("glacier_endpoint is not a valid URL"), "{m}");
    let m = err(&format!("{MINIMAL}  http_proxy: \"proxy host\"\n"));
    assert!(m.contains("http_proxy"), "{m}");
}

/// As Go's yaml.v2 decodes into strings: the file's text, not a number.
#[test]
fn scalars_keep_their_text() {
    let c = Config::parse(&MINIMAL.replace("folder: f1", "folder: 1.10")).unwrap();
    assert_eq!(c.folder, "1.10");
    for (raw, secret) in [("123.40", "123.40"), ("0x1F", "0x1F"), ("1e3", "1e3"), ("007", "007"), ("true", "true")] {
        let text = format!("{MINIMAL}  aws_access_key_id: AKIAX\n  aws_secret_access_key: {raw}\n");
        assert_eq!(Config::parse(&text).unwrap().keys.unwrap().secret_access_key, secret, "{raw}");
    }
    // A null is empty, whatever its spelling; a quoted ~ is text.
    let c = Config::parse(&format!("{MINIMAL}  backup_plugin_version: ~\n  pgport:\n")).unwrap();
    assert_eq!(c.folder, "f1");
    let text = format!("{MINIMAL}  aws_access_key_id: AKIAX\n  aws_secret_access_key: \"~\"\n");
    assert_eq!(Config::parse(&text).unwrap().keys.unwrap().secret_access_key, "~");
}

/// A file that is not a config (a key file, say) is never quoted back.
#[test]
fn yaml_errors_never_echo_the_file() {
    for text in ["c2VjcmV0LXRvby1zaG9ydA==", "- TOPSECRET\n", "executablepath: /x\noptions: TOPSECRET\n", "[TOPSECRET"]
    {
        let m = err(text);
        assert!(!m.contains("TOPSECRET") && !m.contains("c2VjcmV0"), "{m}");
    }
    let m = err("executablepath: /x\noptions:\n  a: [\n");
    assert!(m.contains("invalid YAML") && m.contains("line"), "{m}");
}

#[test]
fn files_are_bounded_and_errors_capped() {
    let deep = format!("executablepath: /x\noptions:\n  bucket: {}{}\n", "[".repeat(100), "]".repeat(100));
    assert!(err(&deep).contains("nested more than"), "deep nesting is refused before parsing");
    let many: String = (0..5000).map(|i| format!("  unknown_{i}: x\n")).collect();
    let m = err(&format!("{MINIMAL}{many}"));
    assert!(m.contains("... and ") && m.len() < 2000, "{} bytes: {}", m.len(), &m[..200]);
    let huge = format!("{MINIMAL}# {}\n", "x".repeat(2 << 20));
    assert!(err(&huge).contains("bytes"));
}
