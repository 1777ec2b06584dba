//! A drop-in replacement for the Go plugin: no more permissions than it
//! needs, every config it accepts with its meaning, legacy servers, and its
//! hidden commands. Each test failed before its fix.

use std::time::{Duration, Instant};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::*;

const TS: &str = "20240315123045";

/// A proxy that denies every request whose request line contains one of
/// `denied` (with S3's 403 AccessDenied), and a cluster behind it.
fn least_privilege(server: &Server, denied: (&'static str, &'static str)) -> (FaultProxy, Cluster) {
    least_privilege_with(server, denied, &[])
}

fn least_privilege_with(
    server: &Server,
    denied: (&'static str, &'static str),
    extra: &[(&str, &str)],
) -> (FaultProxy, Cluster) {
    let proxy =
        FaultProxy::start(&server.endpoint, Faults { deny_s3: 1.0, only: Some(denied), ..Faults::default() }, 1);
    let mut options = vec![("endpoint", proxy.endpoint.as_str()), ("retry_max_attempts", "2")];
    options.extend_from_slice(extra);
    let c = Cluster::new(server, &options);
    (proxy, c)
}

#[test]
fn hooks_need_no_more_than_the_go_plugin() {
    let server = Server::start();
    // Listing, deleting and listing uploads denied: a backup role with
    // PutObject and GetObject only.
    for denied in [("GET ", "list-type=2"), ("POST ", "?delete"), ("GET ", "?uploads")] {
        let (proxy, c) = least_privilege(&server, denied);
        let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
        let path = format!("{dir}/gpbackup_0_{TS}");
        for (hook, scope) in [("setup_plugin_for_backup", "master"), ("setup_plugin_for_backup", "segment")] {
            assert_ok(&c.run(hook, &[&dir, scope, "-1"], b""));
        }
        assert_ok(&c.run("backup_data", &[&path], &data(12 << 20, 1)));
        for hook in ["cleanup_plugin_for_backup", "setup_plugin_for_restore", "cleanup_plugin_for_restore"] {
            assert_ok(&c.run(hook, &[&dir, "master", "-1"], b""));
        }
        let out = c.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == data(12 << 20, 1));
        assert!(c.log_text().contains("WARNING") && c.log_text().contains(" s3:"), "{denied:?}: {}", c.log_text());
        assert!(proxy.stats.denials.load(std::sync::atomic::Ordering::Relaxed) > 0, "{denied:?}: nothing denied");
    }
}

#[test]
fn cleanup_hooks_finish_in_seconds_when_the_service_is_down() {
    let server = Server::placeholder("http://127.0.0.1:9");
    let c = Cluster::new(&server, &[]);
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    for scope in ["master", "segment_host"] {
        let started = Instant::now();
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&dir, scope, "-1"], b""));
        assert!(started.elapsed() < Duration::from_secs(10), "{scope}: {:?}", started.elapsed());
    }
}

/// Configs the Go plugin runs with run here too, with the same meaning:
/// `0` for the defaults, sizes S3 forbids (clamped, with a warning),
/// `remove_duplicate_bucket` without an endpoint, and a bad option a
/// command does not use.
#[test]
fn every_config_the_go_plugin_accepts_runs() {
    let server = Server::start();
    let folder = unique_folder("gp");
    let c = Cluster::with_folder(
        &server,
        &folder,
        &[
            ("backup_multipart_chunksize", "0"),
            ("backup_max_concurrent_requests", "100"),
            ("restore_multipart_chunksize", "1MB"),
            ("restore_max_concurrent_requests", "0"),
        ],
    );
    let dir = c.backup_dir("coord/gpseg-1", TS).display().to_string();
    let path = format!("{dir}/gpbackup_0_{TS}");
    let payload = data(11 << 20, 7);
    let out = c.run("backup_data", &[&path], &payload);
    assert_ok(&out);
    assert!(c.log_text().contains("backup_max_concurrent_requests of 100"), "{}", c.log_text());
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);

    // A restore is not stopped by an option only backups use, nor a
    // backup by one only restores use.
    let restore_side = Cluster::with_folder(&server, &folder, &[("backup_multipart_chunksize", "huge")]);
    let out = restore_side.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == payload);
    let out = restore_side.run("backup_data", &[&format!("{dir}/gpbackup_1_{TS}")], b"x");
    assert_fails_with(&out, "backup_multipart_chunksize");
    let backup_side = Cluster::with_folder(&server, &folder, &[("restore_multipart_chunksize", "huge")]);
    assert_ok(&backup_side.run("backup_data", &[&format!("{dir}/gpbackup_2_{TS}")], b"y"));

    // remove_duplicate_bucket without an endpoint: accepted (the Go plugin
    // accepts it; AWS already keeps the bucket out of the path).
    let aws = Cluster::with_folder(
        &server,
        &folder,
        &[("endpoint", ""), ("region", "us-east-1"), ("remove_duplicate_bucket", "true")],
    );
    let out = aws.run("setup_plugin_for_restore", &[&dir, "segment", "0"], b"");
    assert_ok(&out);
}

/// `--version` names the executable as it was called (a renamed copy
/// reports its name, as the Go plugin does) and `-version` is accepted.
#[test]
fn version_names_the_executable_and_takes_one_dash() {
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("my_s3_plugin");
    std::fs::copy(&*PLUGIN, &renamed).unwrap();
    for flag in ["--version", "-version"] {
        let out = std::process::Command::new(&renamed).arg(flag).output().unwrap();
        assert_ok(&out);
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text, format!("my_s3_plugin version {}\n", env!("CARGO_PKG_VERSION")), "{flag}");
    }
}

/// An explicit `http_proxy` carries every request, as in Go: the
/// environment's NO_PROXY does not bypass it; schemes in any case; SOCKS
/// refused with the reason.
#[test]
fn an_explicit_proxy_is_used_for_every_request() {
    let server = Server::start();
    let proxy = RecordingProxy::start(&server.endpoint);
    let upper = proxy.url.replacen("http://", "HTTP://", 1);
    let c = Cluster::new(&server, &[("http_proxy", &upper)]);
    let host = server.endpoint.split("://").nth(1).unwrap().split(':').next().unwrap().to_string();
    let dir = c.backup_dir("seg0/gpseg0", TS).display().to_string();
    let path = format!("{dir}/gpbackup_0_{TS}");
    let args = |cmd: &str| vec![cmd.to_string(), c.config.display().to_string(), path.clone()];
    let env = [("NO_PROXY", host.as_str()), ("no_proxy", host.as_str())];
    assert_ok(&run_plugin_env(&args("backup_data"), b"through the proxy", &c.home, &env));
    let out = run_plugin_env(&args("restore_data"), b"", &c.home, &env);
    assert_ok(&out);
    assert_eq!(out.stdout, b"through the proxy");
    let heads = proxy.heads();
    assert!(heads.iter().any(|h| h.starts_with("PUT ")) && heads.iter().any(|h| h.starts_with("GET ")), "{heads:?}");

    let socks = Cluster::new(&server, &[("http_proxy", "socks5://127.0.0.1:1080")]);
    assert_fails_with(&socks.run("list_directory", &[], b""), "http_proxy: SOCKS proxies are not supported");
}

/// Behind a server that refuses the newer checksum headers and unsigned
/// payloads and wants Content-MD5 on deletes, `checksums: md5` and `none`
/// run every command; the default (`crc32c`) is refused there, which shows
/// the server's checks bite.
#[test]
fn legacy_servers_work_with_checksums_md5_or_none() {
    let server = Server::start();
    let proxy = FaultProxy::start(&server.endpoint, Faults { legacy: true, ..Faults::default() }, 1);
    let modern = Cluster::new(&server, &[("endpoint", &proxy.endpoint), ("retry_max_attempts", "1")]);
    let dir = modern.backup_dir("seg0/gpseg0", TS).display().to_string();
    assert_fails_with(&modern.run("backup_data", &[&format!("{dir}/gpbackup_0_{TS}")], b"x"), "checksum");

    for mode in ["md5", "none"] {
        let c =
            Cluster::new(&server, &[("endpoint", &proxy.endpoint), ("checksums", mode), ("retry_max_attempts", "1")]);
        let coord = c.backup_dir("coord/gpseg-1", TS);
        let dir = c.backup_dir("seg0/gpseg0", TS).display().to_string();
        let coord_dir = coord.display().to_string();
        assert_ok(&c.run("setup_plugin_for_backup", &[&coord_dir, "master", "-1"], b""));
        let big = data(20 << 20, 3);
        let small = data(1000, 4);
        for (n, payload) in [(0, &big), (1, &small)] {
            assert_ok(&c.run("backup_data", &[&format!("{dir}/gpbackup_{n}_{TS}")], payload));
        }
        let meta = coord.join(format!("gpbackup_{TS}_metadata.sql"));
        std::fs::write(&meta, &small).unwrap();
        assert_ok(&c.run("backup_file", &[&meta.display().to_string()], b""));
        std::fs::remove_file(&meta).unwrap();
        assert_ok(&c.run("restore_file", &[&meta.display().to_string()], b""));
        assert!(std::fs::read(&meta).unwrap() == small, "{mode}");
        for (n, payload) in [(0, &big), (1, &small)] {
            let out = c.run("restore_data", &[&format!("{dir}/gpbackup_{n}_{TS}")], b"");
            assert_ok(&out);
            assert!(&out.stdout == payload, "{mode}: restore of {n}");
        }
        assert_ok(&c.run("list_directory", &[], b""));
        assert_ok(&c.run("cleanup_plugin_for_backup", &[&coord_dir, "master", "-1"], b""));
        assert_ok(&c.run("delete_backup", &[TS], b""));
        let out = c.run("restore_data", &[&format!("{dir}/gpbackup_1_{TS}")], b"");
        assert!(!out.status.success(), "{mode}: the backup was not deleted");
        assert!(!c.log_text().contains("WARNING"), "{mode}: {}", c.log_text());
    }
    let stats = &proxy.stats;
    assert_eq!(stats.legacy_refusals.load(std::sync::atomic::Ordering::Relaxed), 1, "only the modern client refused");
    assert!(stats.md5_checked.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

/// The Go plugin's hidden directory commands: files stored under their own
/// cleaned paths, restored flat into the prefix, in both forms.
#[test]
fn hidden_directory_commands_round_trip() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let src = c.dir.path().join("dd");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let files = [("a", data(3000, 1)), ("sub/b", data(9 << 20, 2)), ("sub/c", Vec::new())];
    for (name, bytes) in &files {
        std::fs::write(src.join(name), bytes).unwrap();
    }
    let src_text = src.display().to_string();
    for (backup, restore) in
        [("backup_directory", "restore_directory"), ("backup_directory_parallel", "restore_directory_parallel")]
    {
        let out = c.run(backup, &[&src_text], b"");
        assert_ok(&out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains(&format!("Uploaded 3 files ({} bytes)", 3000 + (9 << 20))), "{backup}: {text}");
        // Stored under the cleaned path, outside the folder.
        let listing = c.run("list_directory", &[src_text.trim_start_matches('/')], b"");
        assert_ok(&listing);
        let listed = String::from_utf8_lossy(&listing.stdout).into_owned();
        assert!(listed.contains(&format!("{}/sub/b\t{}", src_text.trim_start_matches('/'), 9 << 20)), "{listed}");

        // PREFIX is both where the keys are and where the files go (flat).
        std::fs::remove_file(src.join("a")).unwrap();
        let out = c.run(restore, &[&src_text, "2"], b"");
        assert_ok(&out);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("Downloaded 3 files"), "{restore}: {text}");
        for (name, bytes) in &files {
            let base = name.rsplit('/').next().unwrap();
            assert!(std::fs::read(src.join(base)).unwrap() == *bytes, "{restore}: {base}");
        }
        for flat in ["b", "c"] {
            std::fs::remove_file(src.join(flat)).unwrap();
        }
    }
    assert_fails_with(&c.run("backup_directory", &["/no/such/dir"], b""), "/no/such/dir");
    let help = run_plugin(&["--help".to_string()], b"", &c.home);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("backup_directory"), "hidden from help");
}

/// Deletes the manifest of `key` (as a copy that skipped it would) and
/// returns the failing strict restore's stderr.
fn lose_the_manifest(server: &Server, c: &Cluster, key: &str, path: &str) -> String {
    let manifest = c.manifest_key(key);
    let out = server.curl(&format!("{}/{manifest}", server.bucket), &["-X", "DELETE"]);
    assert!(out.status.success(), "delete {manifest}");
    let out = c.run("restore_data", &[path], b"");
    assert!(!out.status.success() && out.stdout.is_empty(), "a strict restore went on without the manifest");
    stderr(&out)
}

#[test]
fn a_lost_manifest_names_the_remedy_and_verify_available_restores_with_what_is_left() {
    let sent = data(13 << 20, 7);
    // moto keeps S3's full-object CRC-64/NVME; s3s-fs keeps none.
    for (server, checksums, checked) in [
        (Server::start_moto(), "crc64nvme", "checked against the service's full-object CRC-64/NVME"),
        (Server::start(), "crc32c", "only its size is checked"),
    ] {
        let options = [("checksums", checksums), ("backup_multipart_chunksize", "5MB")];
        let c = Cluster::new(&server, &options);
        let path = format!("{}/gpbackup_0_{TS}", c.backup_dir("coord/gpseg-1", TS).display());
        let key = c.key(TS, &format!("gpbackup_0_{TS}"));
        assert_ok(&c.run("backup_data", &[&path], &sent));
        if checksums == "crc64nvme" {
            // The object carries its own proof: the service's checksum of
            // the whole object is the CRC the plugin computed.
            let head =
                server.curl(&format!("{}/{key}", server.bucket), &["-I", "-H", "x-amz-checksum-mode: ENABLED"]).stdout;
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            let ours = {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(crc_fast::crc64_nvme(&sent).to_be_bytes())
            };
            assert!(head.contains("x-amz-checksum-type: full_object"), "{head}");
            assert!(head.contains(&format!("x-amz-checksum-crc64nvme: {}", ours.to_ascii_lowercase())), "{head}");
        }
        let why = lose_the_manifest(&server, &c, &key, &path);
        assert!(why.contains("is missing") && why.contains("verify: available"), "{why}");

        let lenient = Cluster::with_folder(&server, &c.folder, &[options[0], ("verify", "available")]);
        let out = lenient.run("restore_data", &[&path], b"");
        assert_ok(&out);
        assert!(out.stdout == sent, "{checksums}: restored bytes differ");
        let log = lenient.log_text();
        assert!(log.contains("WARNING") && log.contains(checked), "{checksums}: {log}");
    }
}

#[test]
fn check_reports_each_permission_and_what_needs_it() {
    let server = Server::start_moto();
    // Table data in an archive class: `thaw` needs s3:RestoreObject, so
    // check tries it (without one it is not asked).
    let cold = [("storage_class", "DEEP_ARCHIVE")];
    let c = Cluster::new(&server, &cold);
    let out = c.run("check", &[], b"");
    assert_ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    for action in [
        "s3:PutObject",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:DeleteObject",
        "s3:ListBucketMultipartUploads",
        "s3:AbortMultipartUpload",
        "s3:RestoreObject",
    ] {
        assert!(text.contains(&format!("{action} allowed")), "{action}: {text}");
    }
    assert!(text.contains("all checks passed"), "{text}");

    // One action denied at a time: reported with what it disables, and the
    // check goes on and passes (a least-privilege role is not an error).
    for (denied, action, disables) in [
        (("GET ", "list-type=2"), "s3:ListBucket", "delete_backup"),
        (("POST ", "?delete"), "s3:DeleteObject", "expire"),
        (("GET ", "?uploads"), "s3:ListBucketMultipartUploads", "left open"),
        (("DELETE ", "uploadId="), "s3:AbortMultipartUpload", "abandoned upload"),
        (("POST ", "?restore"), "s3:RestoreObject", "thaw"),
    ] {
        let (_proxy, c) = least_privilege_with(&server, denied, &cold);
        let out = c.run("check", &[], b"");
        assert_ok(&out);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line =
            text.lines().find(|l| l.contains(action) && l.contains("DENIED")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains(disables), "{line}");
        assert!(text.contains(&format!("passed, with {action} denied")), "{text}");
    }

    // Neither write nor read: the check fails, naming both.
    let (_proxy, c) = least_privilege(&server, ("", ""));
    let out = c.run("check", &[], b"");
    assert!(!out.status.success(), "a check with every request denied passed");
}

#[test]
fn a_backup_written_by_release_1_10_1_restores_with_remove_duplicate_bucket() {
    let server = Server::start();
    // Release 1.10.1 dropped the bucket from the path of every endpoint
    // that was not a bare IP address: given an endpoint that names the
    // bucket, its plain PUTs (no metadata of this plugin) went to
    // `<endpoint>/<folder>/backups/...`.
    let endpoint = format!("{}/{}", server.endpoint, server.bucket);
    let c = Cluster::with_folder(
        &server,
        &unique_folder("written-by-1.10.1"),
        &[("endpoint", &endpoint), ("remove_duplicate_bucket", "true")],
    );
    let sent = data(3 << 20, 11);
    let key = c.key(TS, &format!("gpbackup_0_{TS}"));
    let file = c.dir.path().join("as-1.10.1-sent-it");
    std::fs::write(&file, &sent).unwrap();
    let put = server
        .curl(&format!("{}/{key}", server.bucket), &["-X", "PUT", "--data-binary", &format!("@{}", file.display())]);
    assert!(put.status.success(), "PUT as 1.10.1: {}", String::from_utf8_lossy(&put.stdout));

    let path = format!("{}/gpbackup_0_{TS}", c.backup_dir("coord/gpseg-1", TS).display());
    let out = c.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == sent, "restored bytes differ");
    let listed = c.run("list_directory", &[], b"");
    assert_ok(&listed);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&key), "{}", String::from_utf8_lossy(&listed.stdout));
    assert_ok(&c.run("delete_backup", &[TS], b""));
    assert!(!server.curl(&format!("{}/{key}", server.bucket), &["-I"]).status.success(), "not deleted");
}

/// The README's minimal policies: a backup role with s3:PutObject and
/// s3:GetObject only, and a restore role that may only read (and list).
#[test]
fn the_readmes_least_privilege_roles_run_backups_and_restores() {
    let server = Server::start();
    // Backup role: every list, delete and upload listing denied at once.
    const NOT_A_BACKUP_ROLES: &[(&str, &str)] =
        &[("GET ", "list-type=2"), ("POST ", "?delete"), ("DELETE ", ""), ("GET ", "?uploads")];
    let backup_role = FaultProxy::start(
        &server.endpoint,
        Faults { deny_s3: 1.0, only_any: NOT_A_BACKUP_ROLES, ..Faults::default() },
        1,
    );
    let folder = unique_folder("roles");
    let backup = Cluster::with_folder(&server, &folder, &[("endpoint", &backup_role.endpoint)]);
    let coord = backup.backup_dir("coord/gpseg-1", TS);
    let dir = coord.display().to_string();
    let (path, report) = (format!("{dir}/gpbackup_0_{TS}"), coord.join(format!("gpbackup_{TS}_report")));
    std::fs::write(&report, "report").unwrap();
    assert_ok(&backup.run("setup_plugin_for_backup", &[&dir, "master", "-1"], b""));
    assert_ok(&backup.run("backup_data", &[&path], &data(12 << 20, 3)));
    assert_ok(&backup.run("backup_file", &[&report.display().to_string()], b""));
    assert_ok(&backup.run("cleanup_plugin_for_backup", &[&dir, "master", "-1"], b""));
    assert!(backup_role.stats.denials.load(std::sync::atomic::Ordering::Relaxed) > 0, "nothing was denied");

    // Restore role: GET and HEAD only (s3:GetObject, s3:ListBucket).
    let restore_role = FaultProxy::start(&server.endpoint, Faults { read_only: true, ..Faults::default() }, 1);
    let restore = Cluster::with_folder(&server, &folder, &[("endpoint", &restore_role.endpoint)]);
    std::fs::remove_file(&report).unwrap();
    assert_ok(&restore.run("setup_plugin_for_restore", &[&dir, "master", "-1"], b""));
    let out = restore.run("restore_data", &[&path], b"");
    assert_ok(&out);
    assert!(out.stdout == data(12 << 20, 3));
    assert_ok(&restore.run("restore_file", &[&report.display().to_string()], b""));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), "report");
    assert_ok(&restore.run("list_directory", &[], b""));
    assert_ok(&restore.run("cleanup_plugin_for_restore", &[&dir, "master", "-1"], b""));

    // The retention role deletes what the backup role may not.
    let full = Cluster::with_folder(&server, &folder, &[]);
    assert_ok(&full.run("delete_backup", &[TS], b""));
}
