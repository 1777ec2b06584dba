//! Bad command lines and bad configs: a non-zero exit, exactly one line on
//! stderr naming what is wrong, nothing on stdout, no panic, no secret.
//! None of these needs a server.

use crate::support::*;

const DIR: &str = "/tmp/gpseg-1/backups/20240315/20240315123045";
const SECRET: &str = "TOPSECRETVALUE";

fn base_options() -> Vec<(&'static str, &'static str)> {
    vec![
        ("aws_access_key_id", "AKIAEXAMPLE"),
        ("aws_secret_access_key", SECRET),
        ("bucket", "b1"),
        ("endpoint", "http://127.0.0.1:1"),
        ("folder", "f1"),
        ("region", "us-east-1"),
    ]
}

fn config_text(options: &[(&str, &str)]) -> String {
    let mut text = "executablepath: /usr/local/greenplum-db/bin/gpbackup_s3_plugin\noptions:\n".to_string();
    for (k, v) in options {
        text.push_str(&format!("  {k}: {v}\n"));
    }
    text
}

fn with(changes: &[(&'static str, &'static str)]) -> String {
    let mut options = base_options();
    for (k, v) in changes {
        options.retain(|(key, _)| key != k);
        if !v.is_empty() {
            options.push((k, v));
        }
    }
    config_text(&options)
}

/// Runs a segment-scope setup (validates the config, no network).
fn check_config(text: &str) -> std::process::Output {
    check_config_with("setup_plugin_for_backup", text)
}

/// The config checked by `hook` (a restore's options by a restore's hook:
/// a bad option a command does not use does not stop it).
fn check_config_with(hook: &str, text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, text).unwrap();
    run_plugin(&[hook.into(), cfg.display().to_string(), DIR.into(), "segment_host".into()], b"", dir.path())
}

#[track_caller]
fn assert_rejected(out: &std::process::Output, needle: &str) {
    assert_fails_with(out, needle);
    assert!(out.stdout.is_empty());
    assert!(!stderr(out).contains(SECRET), "secret leaked: {}", stderr(out));
}

#[test]
fn the_base_config_is_valid() {
    assert_ok(&check_config(&with(&[])));
}

#[test]
fn bad_configs_name_the_key() {
    let cases: Vec<(String, &str)> = vec![
        (with(&[("bucket", "")]), "bucket is required"),
        (with(&[("folder", "")]), "folder is required"),
        (with(&[("folder", "..")]), "folder leaves the bucket"),
        (with(&[("region", ""), ("endpoint", "")]), "region or endpoint"),
        (with(&[("aws_access_key_id", "")]), "aws_access_key_id is required"),
        (with(&[("aws_secret_access_key", "")]), "aws_secret_access_key is required"),
        (with(&[("encryption", "yes")]), "encryption must be on or off"),
        (with(&[("backup_multipart_chunksize", "lots")]), "backup_multipart_chunksize"),
        (with(&[("restore_multipart_chunksize", "10XB")]), "restore_multipart_chunksize"),
        (with(&[("restore_max_concurrent_requests", "-3")]), "restore_max_concurrent_requests"),
        (with(&[("restore_max_concurrent_requests", "six")]), "restore_max_concurrent_requests"),
        (with(&[("remove_duplicate_bucket", "maybe")]), "remove_duplicate_bucket"),
        (with(&[("restore_subset", "yes")]), "restore_subset"),
        (with(&[("bucket_name", "b2")]), "unknown option bucket_name"),
        (with(&[("http_proxy", "proxy:3128")]), "http_proxy"),
        (with(&[("bucket", "a/b")]), "bucket a/b"),
        (with(&[("storage_class", "FROZEN")]), "storage_class FROZEN is not a storage class"),
        (
            with(&[("metadata_storage_class", "DEEP_ARCHIVE")]),
            "metadata_storage_class DEEP_ARCHIVE is an archived class",
        ),
        (with(&[("server_side_encryption", "yes")]), "server_side_encryption must be AES256, aws:kms"),
        (with(&[("sse_kms_key_id", "k1")]), "sse_kms_key_id needs server_side_encryption: aws:kms"),
        (with(&[("sse_bucket_key", "on")]), "sse_bucket_key must be true or false"),
        (
            with(&[("sse_customer_key_file", "/nonexistent/key")]),
            "sse_customer_key_file /nonexistent/key: cannot be read",
        ),
        (with(&[("force_path_style", "yes")]), "force_path_style must be true or false"),
        (with(&[("ca_cert_file", "/nonexistent/ca.pem")]), "ca_cert_file /nonexistent/ca.pem cannot be read"),
        (with(&[("connect_timeout", "fast")]), "connect_timeout: \"fast\" is not a duration"),
        (with(&[("read_timeout", "0s")]), "read_timeout must be longer than zero"),
        (with(&[("object_tags", "a=1&a=2")]), "object_tags: tag key a appears twice"),
        (with(&[("restore_tier", "Instant")]), "restore_tier must be Expedited, Standard or Bulk"),
        (with(&[("restore_days", "0")]), "restore_days must be a whole number of days"),
        (with(&[("restore_wait_timeout", "tomorrow")]), "restore_wait_timeout"),
        (with(&[("restore_auto", "1")]), "restore_auto must be true or false"),
        (
            with(&[("aws_session_token", "tok"), ("aws_access_key_id", ""), ("aws_secret_access_key", "")]),
            "aws_session_token",
        ),
        (
            config_text(&base_options())
                .replace("executablepath: /usr/local/greenplum-db/bin/gpbackup_s3_plugin\n", ""),
            "executablepath",
        ),
        ("executablepath: /x\n".to_string(), "options is required"),
        ("executablepath: /x\noptions: plain\n".to_string(), "options must be a map"),
        (with(&[]) + "  folder2:\n    - a\n", "option folder2"),
        (with(&[]) + "extra_top_level: 1\n", "invalid YAML"),
        ("executablepath: /x\noptions:\n  bucket: [unclosed\n".to_string(), "invalid YAML"),
        ("\t- not yaml".to_string(), "invalid YAML"),
        (String::new(), "config file"),
        ("# only a comment\n".to_string(), "config file"),
        (with(&[("backup_max_concurrent_requests", "[1, 2]")]), "option backup_max_concurrent_requests"),
        (with(&[("encryption", "true")]), "encryption must be on or off"),
        (with(&[("restore_subset", "1")]), "restore_subset"),
        (with(&[("password_encryption", "maybe")]), "password_encryption"),
        (with(&[]) + "  bucket: b2\n", "invalid YAML"),
        (with(&[("backup_multipart_chunksize", "5.5.5MB")]), "backup_multipart_chunksize"),
        (with(&[("backup_multipart_chunksize", "MB5")]), "backup_multipart_chunksize"),
        (with(&[("backup_multipart_chunksize", "\"1e9\"")]), "backup_multipart_chunksize"),
        (with(&[("restore_multipart_chunksize", "-8MB")]), "restore_multipart_chunksize"),
        (with(&[("backup_max_concurrent_requests", "2.5")]), "backup_max_concurrent_requests"),
        (with(&[("retry_max_attempts", "101")]), "retry_max_attempts"),
        (with(&[("retry_max_attempts", "many")]), "retry_max_attempts"),
        (with(&[("retry_time_budget", "0")]), "retry_time_budget"),
        (with(&[("retry_time_budget", "5 fortnights")]), "retry_time_budget"),
        (with(&[("aws_session_token", "tok"), ("aws_secret_access_key", "")]), "aws_secret_access_key is required"),
        (with(&[("storage", "glacier")]), "vault is required with storage: glacier"),
        (with(&[("storage", "tape")]), "storage must be s3 or glacier"),
        (with(&[("vault", "v1")]), "vault applies only with storage: glacier"),
        (with(&[("storage", "glacier"), ("vault", "v1"), ("vault_part_size", "3MB")]), "vault_part_size"),
        (with(&[("storage", "glacier"), ("vault", "v1"), ("account_id", "12-34")]), "account_id"),
        (with(&[("storage", "glacier"), ("vault", "v1"), ("on_retention_locked", "ignore")]), "on_retention_locked"),
        ("executablepath: [/x]\noptions:\n  bucket: b\n".to_string(), "executablepath must be a string"),
        ("executablepath: /x\noptions:\n  ? [a]\n  : b\n".to_string(), "key that is not a string"),
    ];
    for (text, needle) in cases {
        let hook = if needle.starts_with("restore_") { "setup_plugin_for_restore" } else { "setup_plugin_for_backup" };
        let out = check_config_with(hook, &text);
        assert!(!out.status.success(), "accepted:\n{text}");
        assert_rejected(&out, needle);
    }
}

#[test]
fn all_problems_of_one_file_come_together() {
    let out = check_config(&with(&[("bucket", ""), ("encryption", "maybe"), ("colour", "blue")]));
    assert_rejected(&out, "bucket is required");
    let err = stderr(&out);
    assert!(err.contains("encryption must be on or off") && err.contains("unknown option colour"), "{err}");
}

#[test]
fn missing_or_unreadable_config_file() {
    let home = tempfile::tempdir().unwrap();
    let out =
        run_plugin(&["backup_data".into(), "/nonexistent/cfg.yaml".into(), format!("{DIR}/f")], b"x", home.path());
    assert_rejected(&out, "/nonexistent/cfg.yaml");
    let out =
        run_plugin(&["restore_data".into(), home.path().display().to_string(), format!("{DIR}/f")], b"", home.path());
    assert_rejected(&out, "cannot read config file");
}

#[test]
fn bad_command_lines() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, with(&[])).unwrap();
    let cfg = cfg.display().to_string();
    let dirs = tempfile::tempdir().unwrap();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (s(&[]), "no command given"),
        (s(&["unknown_command"]), "unknown command \"unknown_command\""),
        (s(&["backup_data"]), "missing argument"),
        (s(&["backup_data", &cfg]), "missing argument <PATH>"),
        (s(&["backup_file", &cfg, "/a/b/c/d", "extra"]), "unexpected argument \"extra\""),
        (s(&["restore_data_subset", &cfg, "/a/b/c/d"]), "missing argument <OFFSETS_FILE>"),
        (s(&["setup_plugin_for_backup", &cfg, DIR]), "missing argument <SCOPE>"),
        (s(&["setup_plugin_for_backup", &cfg, DIR, "everywhere"]), "scope \"everywhere\""),
        (s(&["setup_plugin_for_restore", &cfg, DIR, "segment", "\"abc\""]), "content id"),
        (s(&["cleanup_plugin_for_backup", &cfg, DIR, "segment", "\"-7\""]), "content id"),
        (s(&["delete_backup", &cfg]), "missing argument <TIMESTAMP>"),
        (s(&["delete_backup", &cfg, "2024-03-15"]), "timestamp"),
        (s(&["delete_directory", &cfg, "/"]), "bucket root"),
        (s(&["backup_data", &cfg, "short/path"]), "path short/path"),
        (s(&["restore_data", &cfg, "/"]), "path /"),
        (s(&["backup_file", &cfg, &format!("{DIR}/no_such_file")]), "no_such_file"),
        (s(&["backup_file", &cfg, "/tmp/backups/20240315/20240315123045"]), "/tmp/backups/20240315/20240315123045"),
        (s(&["restore_file", &cfg, "/nonexistent/backups/20240315/20240315123045/f"]), "/nonexistent/backups"),
        (s(&["backup_data", dirs.path().to_str().unwrap(), &format!("{DIR}/f")]), "cannot read config file"),
        (s(&["delete_backup", &cfg, "abcdefghijklmn"]), "timestamp"),
        (s(&["delete_backup", &cfg, "20240315 123045"]), "timestamp"),
        (s(&["delete_backup", &cfg, "2024031512304"]), "timestamp"),
        (s(&["cleanup", &cfg, "yesterday"]), "timestamp"),
        (s(&["list_directory", &cfg, "a", "b"]), "unexpected argument \"b\""),
        (s(&["setup_plugin_for_backup", &cfg, DIR, "MASTER", "\"-1\""]), "scope \"MASTER\""),
        (s(&["setup_plugin_for_backup", &cfg, DIR, "segment", "\"--1\""]), "content id"),
        (s(&["restore_data", "--verbose", &cfg, &format!("{DIR}/f")]), "--verbose"),
        (s(&["plugin_api_versions"]), "unknown command"),
        (s(&["delete_directory", &cfg]), "missing argument <PREFIX>"),
        (s(&["delete_directory", &cfg, ""]), "bucket root"),
        (s(&["thaw", &cfg]), "missing argument <TIMESTAMP>"),
        (s(&["thaw", &cfg, "2024-03-15"]), "timestamp"),
        (s(&["thaw", &cfg, "20240315123045", "--tier", "fast"]), "Expedited, Standard or Bulk"),
        (s(&["thaw", &cfg, "20240315123045", "--timeout", "1h"]), "--wait"),
        (s(&["thaw", &cfg, "20240315123045", "--wait", "--timeout", "soon"]), "not a duration"),
        (s(&["check"]), "missing argument <CONFIG>"),
        (s(&["vault-lock", "status", &cfg]), "needs a vault: set storage: glacier"),
        (s(&["vault-lock", "initiate", &cfg]), "--policy-file"),
        (s(&["vault-lock", "complete", &cfg, "--lock-id", "L1"]), "--i-understand-this-is-irreversible"),
        (s(&["vault-lock", "lock", &cfg]), "lock"),
        (s(&["rebuild-catalog", &cfg]), "needs a vault"),
        (s(&["rebuild-catalog", &cfg, "--timeout", "1h"]), "--wait"),
        (s(&["purge"]), "missing argument <CONFIG>"),
    ];
    for (args, needle) in cases {
        let out = run_plugin(&args, b"", home.path());
        assert!(!out.status.success(), "accepted: {args:?}");
        assert_rejected(&out, needle);
    }
}

#[test]
fn config_examples_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plugin-config-examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let out = check_config(&text);
        assert!(out.status.success(), "{}: {}", entry.path().display(), stderr(&out));
        seen += 1;
    }
    assert!(seen >= 5);
}

#[test]
fn a_customer_key_file_is_checked_on_every_host_without_leaking() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sse.key");
    // 31 bytes: not a key; its content must never be echoed.
    std::fs::write(&key, "TOPSECRETVALUE-but-31-bytes-lng").unwrap();
    let path = key.display().to_string();
    let text = with(&[]) + &format!("  sse_customer_key_file: {path}\n");
    let out = check_config(&text);
    assert_rejected(&out, &format!("sse_customer_key_file {path}: must hold a 256-bit key"));
    assert!(!stderr(&out).contains("but-31"), "{}", stderr(&out));
    std::fs::write(&key, [7u8; 32]).unwrap();
    assert_ok(&check_config(&text));
}

#[test]
fn unreachable_endpoint_fails_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg.yaml");
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    // Refused connections are retried (an outage may pass), within the
    // configured attempts and time budget, and the log says so.
    let text =
        with(&[("retry_max_attempts", "3"), ("retry_time_budget", "20s")]).replace("http://127.0.0.1:1", &endpoint);
    std::fs::write(&cfg, text).unwrap();
    let started = std::time::Instant::now();
    let out = run_plugin(&["restore_data".into(), cfg.display().to_string(), format!("{DIR}/f")], b"", dir.path());
    assert_rejected(&out, "s3://b1/f1/backups/20240315/20240315123045/f");
    assert_fails_with(&out, "gave up after 3 attempts");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let log = std::fs::read_dir(dir.path().join("gpAdminLogs")).unwrap().flatten().next().unwrap().path();
    let log = std::fs::read_to_string(log).unwrap();
    assert_eq!(log.matches("failed, retrying in").count(), 2, "{log}");
}

#[test]
fn bad_offsets_files_name_the_file() {
    let home = tempfile::tempdir().unwrap();
    let cfg = home.path().join("cfg.yaml");
    std::fs::write(&cfg, with(&[])).unwrap();
    let offsets = home.path().join("gprestore_offsets_abc123");
    let cases = [
        ("", "empty"),
        ("\n\n", "empty"),
        ("1 3", "announces 1 ranges"),
        ("2 1 2", "announces 2 ranges"),
        ("1 3 10 11", "holds 3 numbers"),
        ("1 x 10", "word 2"),
        ("1 -3 10", "word 2"),
        ("1 10 3", "after its end"),
        ("1.5 3 4", "word 1"),
        ("99999999999999999999999 1 2", "word 1"),
        ("abc", "word 1"),
        ("1 3 10\n2 0 1", "holds 5 numbers"),
        ("-1", "word 1"),
    ];
    for (text, needle) in cases {
        std::fs::write(&offsets, text).unwrap();
        let args = [
            "restore_data_subset".to_string(),
            cfg.display().to_string(),
            format!("{DIR}/gpbackup_0_20240315123045"),
            offsets.display().to_string(),
        ];
        let out = run_plugin(&args, b"", home.path());
        assert_rejected(&out, needle);
        assert_fails_with(&out, "gprestore_offsets_abc123");
    }
    // Missing, or not a file.
    for path in ["/nonexistent/offsets".to_string(), home.path().display().to_string()] {
        let args = [
            "restore_data_subset".to_string(),
            cfg.display().to_string(),
            format!("{DIR}/gpbackup_0_20240315123045"),
            path.clone(),
        ];
        assert_rejected(&run_plugin(&args, b"", home.path()), &path);
    }
}
