//! Sealed credentials (gpbackup's `password_encryption`): `encrypt-password`
//! writes the plugin's entry of `$COORDINATOR_DATA_DIRECTORY/.encrypt` and
//! seals a secret; the user's config holds only sealed values; the copy
//! gpbackup hands to every host (the user's options plus the injected key,
//! as `createHostPluginConfig` writes it) backs up and restores; no secret,
//! sealed value or key reaches a log, an error or the uploaded config copy.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::*;

const TS: &str = "20240315123045";

/// `encrypt-password` as an operator runs it on the coordinator.
fn seal(data_dir: &Path, home: &Path, secret: &[u8]) -> std::process::Output {
    let dir = data_dir.display().to_string();
    run_plugin_env(&["encrypt-password".to_string()], secret, home, &[("COORDINATOR_DATA_DIRECTORY", &dir)])
}

fn sealed(out: &std::process::Output) -> String {
    assert!(out.status.success(), "encrypt-password: {}", stderr(out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "one line on stdout: {text}");
    text.trim().to_string()
}

/// The key gpbackup would inject: the plugin's entry of `.encrypt`.
fn injected_key(data_dir: &Path) -> String {
    let text = std::fs::read_to_string(data_dir.join(".encrypt")).unwrap();
    let map: std::collections::BTreeMap<String, String> = serde_yaml::from_str(&text).unwrap();
    map["gpbackup_s3_plugin"].clone()
}

/// What must never be seen: the secrets, their sealed forms, the key.
fn assert_clean(what: &str, text: &str, forbidden: &[&str]) {
    for secret in forbidden {
        assert!(!text.contains(secret), "{what} holds a secret ({} chars)", secret.len());
    }
}

#[test]
fn sealed_credentials_through_a_gpbackup_style_injected_copy() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("coordinator");
    std::fs::create_dir(&data_dir).unwrap();
    // Another plugin's entry (ddboost's), which must survive.
    std::fs::write(data_dir.join(".encrypt"), "gpbackup_ddboost_plugin: ddboost-key\n").unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();

    let first = seal(&data_dir, &home, format!("{}\n", server.secret_key).as_bytes());
    let sealed_secret = sealed(&first);
    assert!(sealed_secret.starts_with("gpbs3enc1:"));
    assert!(stderr(&first).contains("created the entry gpbackup_s3_plugin"), "{}", stderr(&first));
    let key = injected_key(&data_dir);
    let mode = std::fs::metadata(data_dir.join(".encrypt")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Run again: the entry is reused, the other plugin's kept.
    let again = seal(&data_dir, &home, server.secret_key.as_bytes());
    assert!(stderr(&again).contains("used the entry"), "{}", stderr(&again));
    assert_ne!(sealed(&again), sealed_secret, "fresh nonce per seal");
    assert_eq!(injected_key(&data_dir), key);
    assert!(
        std::fs::read_to_string(data_dir.join(".encrypt")).unwrap().contains("gpbackup_ddboost_plugin: ddboost-key")
    );
    let forbidden = [server.secret_key.as_str(), sealed_secret.as_str(), key.as_str()];
    assert_clean("encrypt-password's output", &format!("{}{}", stderr(&first), stderr(&again)), &forbidden);

    // The user's file: sealed only. The host copy: plus the injected key.
    let user = Cluster::new(
        &server,
        &[("aws_secret_access_key", &sealed_secret), ("password_encryption", "on"), ("backup_plugin_version", "")],
    );
    let user_text = std::fs::read_to_string(&user.config).unwrap();
    assert!(!user_text.contains(&server.secret_key) && !user_text.contains(&key));
    let c = Cluster::with_folder(
        &server,
        &user.folder,
        &[("aws_secret_access_key", &sealed_secret), ("password_encryption", "on"), ("gpbackup_s3_plugin", &key)],
    );
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data(3 << 20, 5);
    assert_ok(&c.run("setup_plugin_for_backup", &[seg.to_str().unwrap(), "segment_host"], b""));
    assert_ok(&c.run("backup_data", &[&path], &payload));
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload, "restored {} bytes", out.stdout.len());

    // gpbackup uploads the host copy (key included) as the backup's config
    // copy: what is stored holds neither the key nor a credential.
    let coord = c.backup_dir("coord", TS);
    let copy = coord.join(format!("gpbackup_{TS}_plugin_config.yaml"));
    std::fs::copy(&c.config, &copy).unwrap();
    assert_ok(&c.run("backup_file", &[copy.to_str().unwrap()], b""));
    if let Some(file) = server.object_file(&c.key(TS, &format!("gpbackup_{TS}_plugin_config.yaml"))) {
        assert_clean("the stored config copy", &String::from_utf8_lossy(&std::fs::read(file).unwrap()), &forbidden);
    }
    std::fs::remove_file(&copy).unwrap();
    assert_ok(&c.run("restore_file", &[copy.to_str().unwrap()], b""));
    let restored = std::fs::read_to_string(&copy).unwrap();
    assert_clean("the restored config copy", &restored, &forbidden);
    assert!(restored.contains("password_encryption"), "{restored}");

    // Commands run by hand with the user's file: the key from .encrypt.
    let dir = data_dir.display().to_string();
    let listing = run_plugin_env(
        &["list_directory".to_string(), user.config.display().to_string()],
        b"",
        &user.home,
        &[("COORDINATOR_DATA_DIRECTORY", &dir)],
    );
    assert_ok(&listing);
    assert!(String::from_utf8_lossy(&listing.stdout).contains(&format!("gpbackup_0_{TS}")));
    // Without it: one line naming password_encryption.
    let out = user.run("list_directory", &[], b"");
    assert_fails_with(&out, "password_encryption");

    // Bad input: one stderr line naming the option, nothing secret in it.
    let other_dir = work.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other_key = {
        sealed(&seal(&other_dir, &home, b"x"));
        injected_key(&other_dir)
    };
    let wrong = Cluster::with_folder(
        &server,
        &user.folder,
        &[("aws_secret_access_key", &sealed_secret), ("password_encryption", "on"), ("gpbackup_s3_plugin", &other_key)],
    );
    let plaintext =
        Cluster::with_folder(&server, &user.folder, &[("password_encryption", "on"), ("gpbackup_s3_plugin", &key)]);
    let not_on = Cluster::with_folder(&server, &user.folder, &[("aws_secret_access_key", &sealed_secret)]);
    let mut damaged_value = sealed_secret.clone();
    damaged_value.replace_range(30..31, if &sealed_secret[30..31] == "A" { "B" } else { "A" });
    let damaged = Cluster::with_folder(
        &server,
        &user.folder,
        &[("aws_secret_access_key", &damaged_value), ("password_encryption", "on"), ("gpbackup_s3_plugin", &key)],
    );
    let bad_key = Cluster::with_folder(
        &server,
        &user.folder,
        &[("aws_secret_access_key", &sealed_secret), ("password_encryption", "on"), ("gpbackup_s3_plugin", "short")],
    );
    for (cluster, needle) in [
        (&wrong, "aws_secret_access_key does not open with this key"),
        (&plaintext, "aws_secret_access_key is not sealed"),
        (&not_on, "password_encryption is not on"),
        (&damaged, "aws_secret_access_key"),
        (&bad_key, "password_encryption"),
    ] {
        for command in ["setup_plugin_for_backup", "restore_data"] {
            let args: Vec<&str> = if command == "restore_data" {
                vec![path.as_str()]
            } else {
                vec![seg.to_str().unwrap(), "segment_host"]
            };
            let out = cluster.run(command, &args, b"");
            assert_fails_with(&out, needle);
            assert!(out.stdout.is_empty());
            assert_clean("an error", &stderr(&out), &forbidden);
        }
    }

    // encrypt-password's own bad input.
    let out = seal(&data_dir, &home, b"");
    assert_fails_with(&out, "empty");
    assert!(out.stdout.is_empty());
    let out = run_plugin_env(&["encrypt-password".to_string()], b"s", &home, &[]);
    assert_fails_with(&out, "COORDINATOR_DATA_DIRECTORY");
    let broken = work.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(broken.join(".encrypt"), "[not, a, map]\n").unwrap();
    let out = seal(&broken, &home, b"s");
    assert_fails_with(&out, "left as it is");
    assert_eq!(std::fs::read_to_string(broken.join(".encrypt")).unwrap(), "[not, a, map]\n");

    // No secret, sealed value or key in any log.
    for cluster in [&c, &user, &wrong, &plaintext, &not_on, &damaged, &bad_key] {
        assert_clean("a log", &cluster.log_text(), &forbidden);
    }
    assert_clean(
        "encrypt-password's log",
        &std::fs::read_dir(home.join("gpAdminLogs")).map_or(String::new(), |d| {
            d.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect()
        }),
        &forbidden,
    );
}

/// On moto: the secret key, a session token and the SSE-C key file all
/// sealed; a proxy sees the opened values on the wire (moto accepts SSE-C
/// and tokens without checking them), and nothing sealed or secret is logged.
#[test]
fn sealed_secret_token_and_sse_c_key_on_moto() {
    let server = Server::start_moto();
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("coordinator");
    std::fs::create_dir(&data_dir).unwrap();
    let home = work.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let token = "FwoGZXIvYXdzEXAMPLEsessiontoken";
    let sse_raw = data(32, 42);
    let sse_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(&sse_raw)
    };
    let sealed_secret = sealed(&seal(&data_dir, &home, server.secret_key.as_bytes()));
    let sealed_token = sealed(&seal(&data_dir, &home, token.as_bytes()));
    // The raw 32 bytes, sealed byte for byte.
    let dir = data_dir.display().to_string();
    let out = run_plugin_env(
        &["encrypt-password".to_string(), "--raw".to_string()],
        &sse_raw,
        &home,
        &[("COORDINATOR_DATA_DIRECTORY", &dir)],
    );
    let sealed_sse = sealed(&out);
    let sse_file = work.path().join("sse-c.key.sealed");
    std::fs::write(&sse_file, format!("{sealed_sse}\n")).unwrap();
    let key = injected_key(&data_dir);

    let proxy = RecordingProxy::start(&server.endpoint);
    let sse_path = sse_file.display().to_string();
    let c = Cluster::new(
        &server,
        &[
            ("aws_secret_access_key", &sealed_secret),
            ("aws_session_token", &sealed_token),
            ("sse_customer_key_file", &sse_path),
            ("password_encryption", "on"),
            ("gpbackup_s3_plugin", &key),
            ("http_proxy", &proxy.url),
        ],
    );
    let seg = c.backup_dir("gpseg0", TS);
    let path = seg.join(format!("gpbackup_0_{TS}")).display().to_string();
    let payload = data(1 << 20, 9);
    assert_ok(&c.run("setup_plugin_for_backup", &[seg.to_str().unwrap(), "segment_host"], b""));
    assert_ok(&c.run("backup_data", &[&path], &payload));
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);

    // The opened values went to the server (the proxy lower-cases heads).
    let heads = proxy.heads();
    let puts: Vec<&String> = heads.iter().filter(|h| h.starts_with("PUT ")).collect();
    assert!(!puts.is_empty());
    for head in &puts {
        assert!(head.contains(&format!("x-amz-security-token: {}", token.to_lowercase())), "{head}");
        assert!(
            head.contains(&format!("x-amz-server-side-encryption-customer-key: {}", sse_b64.to_lowercase())),
            "{head}"
        );
    }
    let all = heads.join("\n");
    assert!(!all.contains(&sealed_secret.to_lowercase()) && !all.contains(&key.to_lowercase()));

    // The SSE-C file unsealed without password_encryption: refused, naming it.
    let plain = Cluster::with_folder(&server, &c.folder, &[("sse_customer_key_file", &sse_path)]);
    let out = plain.run("restore_data", &[&path], b"");
    assert_fails_with(&out, "sse_customer_key_file");
    // An unsealed SSE-C file with password_encryption on: refused too.
    let raw_file = work.path().join("sse-c.key");
    std::fs::write(&raw_file, &sse_raw).unwrap();
    let raw_path = raw_file.display().to_string();
    let unsealed = Cluster::with_folder(
        &server,
        &c.folder,
        &[
            ("aws_secret_access_key", &sealed_secret),
            ("sse_customer_key_file", &raw_path),
            ("password_encryption", "on"),
            ("gpbackup_s3_plugin", &key),
        ],
    );
    assert_fails_with(&unsealed.run("restore_data", &[&path], b""), "is not sealed");

    let forbidden = [
        server.secret_key.as_str(),
        token,
        sse_b64.as_str(),
        sealed_secret.as_str(),
        sealed_token.as_str(),
        sealed_sse.as_str(),
        key.as_str(),
    ];
    for cluster in [&c, &plain, &unsealed] {
        assert_clean("a log", &cluster.log_text(), &forbidden);
    }
}
