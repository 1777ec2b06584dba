//! Test support: real server processes, and the plugin binary run exactly
//! as gpbackup runs it.
//!
//! - [`Server`] (`server.rs`): the S3 server of a test (s3s-fs, Garage, an
//!   external one, moto); [`Glacier`] (`glacier.rs`): a vault emulator;
//!   [`postgres::Postgres`]: a throw-away database server. `launch.rs`
//!   starts their processes: s3s-fs, Garage and PostgreSQL by the scripts
//!   the demo and the benchmark use too.
//! - [`fault_proxy`] and [`RecordingProxy`]: proxies between the plugin and
//!   a server, injecting faults or recording requests.
//! - [`gp`]: a simulated Greenplum cluster for the end-to-end tests.
//! - Here: [`Cluster`] (a config and the local directories of one backup),
//!   running the plugin, test data and assertions.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use tempfile::TempDir;

pub mod fault_proxy;
mod glacier;
pub mod gp;
mod launch;
pub mod postgres;
mod recording_proxy;
mod server;

pub use glacier::Glacier;
pub use launch::free_port;
pub use recording_proxy::RecordingProxy;
pub use server::Server;

/// The plugin under test: the one cargo built, or the executable named by
/// `PLUGIN_UNDER_TEST` (the portable release build, or an older build to
/// show that a test fails without its fix).
pub static PLUGIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("PLUGIN_UNDER_TEST").unwrap_or_else(|_| env!("CARGO_BIN_EXE_gpbackup_s3_plugin").to_string())
});

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A simulated cluster's view of one backup: config file, local dirs, HOME.
pub struct Cluster {
    pub dir: TempDir,
    pub config: PathBuf,
    pub folder: String,
    pub home: PathBuf,
}

static FOLDER_SEQ: AtomicU32 = AtomicU32::new(0);

/// A folder unique to this test run, so tests can share an external bucket.
pub fn unique_folder(name: &str) -> String {
    format!("test-{}-{}-{}/{name}", std::process::id(), FOLDER_SEQ.fetch_add(1, Ordering::Relaxed), random_hex(3))
}

impl Cluster {
    /// A config as gpbackup hands it over: sorted keys, quoted scalars and
    /// the injected `pgport` and `backup_plugin_version`.
    pub fn new(server: &Server, extra: &[(&str, &str)]) -> Cluster {
        let folder = unique_folder("gp");
        Cluster::with_folder(server, &folder, extra)
    }

    pub fn with_folder(server: &Server, folder: &str, extra: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new().prefix("gpcluster-").tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let mut options = vec![
            ("aws_access_key_id".to_string(), server.access_key.clone()),
            ("aws_secret_access_key".to_string(), server.secret_key.clone()),
            ("backup_plugin_version".to_string(), String::new()),
            ("bucket".to_string(), server.bucket.clone()),
            ("encryption".to_string(), "off".to_string()),
            ("endpoint".to_string(), server.endpoint.clone()),
            ("folder".to_string(), folder.to_string()),
            ("pgport".to_string(), "6000".to_string()),
            ("region".to_string(), server.region.clone()),
        ];
        for (k, v) in extra {
            options.retain(|(key, _)| key != k);
            if !v.is_empty() || *k == "backup_plugin_version" {
                options.push((k.to_string(), v.to_string()));
            }
        }
        options.sort();
        let mut text = format!("executablepath: {}\noptions:\n", *PLUGIN);
        for (k, v) in &options {
            text.push_str(&format!("  {k}: \"{v}\"\n"));
        }
        let config = dir.path().join("gpbackup_plugin_config.yaml");
        std::fs::write(&config, text).unwrap();
        Cluster { config, folder: normalise(folder), home, dir }
    }

    /// `<root>/<name>/backups/<YYYYMMDD>/<TS>`, created, like a segment's
    /// backup directory.
    pub fn backup_dir(&self, segment: &str, ts: &str) -> PathBuf {
        let dir = self.dir.path().join(segment).join("backups").join(&ts[..8]).join(ts);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    pub fn key(&self, ts: &str, file: &str) -> String {
        format!("{}/backups/{}/{ts}/{file}", self.folder, &ts[..8])
    }

    /// Runs the plugin with `args` (config path inserted after the command
    /// unless `raw`), feeding `stdin`.
    pub fn run(&self, command: &str, args: &[&str], stdin: &[u8]) -> Output {
        let mut full: Vec<String> = vec![command.to_string(), self.config.display().to_string()];
        full.extend(args.iter().map(|s| s.to_string()));
        run_plugin(&full, stdin, &self.home)
    }

    /// The key of the integrity manifest of the multipart object `key`
    /// (`<key>.<upload id>.gpbackup_manifest`), found by listing.
    pub fn manifest_key(&self, key: &str) -> String {
        let out = self.run("list_directory", &[], b"");
        assert_ok(&out);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split('\t').next())
            .find(|k| k.starts_with(&format!("{key}.")) && k.ends_with(".gpbackup_manifest"))
            .unwrap_or_else(|| panic!("no manifest of {key}"))
            .to_string()
    }

    pub fn log_text(&self) -> String {
        let dir = self.home.join("gpAdminLogs");
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        text
    }
}

pub fn normalise(folder: &str) -> String {
    folder.split('/').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("/")
}

/// Runs the plugin binary with exactly `args`, HOME set to `home`.
pub fn run_plugin(args: &[String], stdin: &[u8], home: &Path) -> Output {
    run_plugin_env(args, stdin, home, &[])
}

/// [`run_plugin`] with extra environment variables.
pub fn run_plugin_env(args: &[String], stdin: &[u8], home: &Path, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(&*PLUGIN)
        .args(args)
        .env("HOME", home)
        .envs(env.iter().copied())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run plugin");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Deterministic pseudo-random bytes (xorshift), cheap to make in bulk.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Success with nothing at all on stderr (gpbackup_helper fails a restore
/// on any stderr byte).
#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "expected success with empty stderr, got {:?}; stderr: {}",
        out.status,
        stderr(out)
    );
}

/// Failure with exactly one line on stderr that contains `needle`, and no
/// panic.
#[track_caller]
pub fn assert_fails_with(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "expected failure, got success; stdout {} bytes", out.stdout.len());
    assert_eq!(err.lines().count(), 1, "expected one stderr line, got: {err}");
    assert!(err.contains(needle), "stderr does not mention {needle:?}: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
}
