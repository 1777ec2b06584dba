//! Test support: a real S3 server process on a free loopback port, and the
//! plugin binary run exactly as gpbackup runs it.
//!
//! The server is chosen by environment:
//! - default: `s3s-fs` (found on PATH or in ~/.cargo/bin), one per test, with
//!   a temporary directory, so tests can read and alter stored bytes;
//! - `S3_TEST_SERVER=garage`: a single-node Garage (region and SigV4
//!   enforced, virtual-host capable) — `make test-compat`;
//! - `S3_TEST_ENDPOINT=http://host:port` with `S3_TEST_ACCESS_KEY`,
//!   `S3_TEST_SECRET_KEY`, `S3_TEST_BUCKET` and optional `S3_TEST_REGION`:
//!   an existing server such as a real MinIO. Each test works in its own
//!   folder; tests that need the server's disk skip themselves.
//!
//! [`Server::start_moto`] starts a moto server instead (storage classes,
//! RestoreObject, InvalidObjectState), whatever the environment says: the
//! cold-storage tests need what only it implements. Its Python venv is made
//! on first use by `scripts/ensure-moto.sh`.

#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod fault_proxy;
pub mod postgres;

pub const PLUGIN: &str = env!("CARGO_BIN_EXE_gpbackup_s3_plugin");

pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
    /// The s3s-fs root directory (objects are files under `<root>/<bucket>/`).
    root: Option<TempDir>,
    child: Option<Child>,
    _garage_dir: Option<TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn find_binary(name: &str) -> PathBuf {
    if let Some(path) = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
    {
        return path;
    }
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let path = home.join(".cargo/bin").join(name);
    assert!(path.is_file(), "{name} not found on PATH or in ~/.cargo/bin; run `make test` (it installs it)");
    path
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not listen on port {port}");
}

/// Whether `child` listens on `port` within `limit` (false if it exits).
fn listens_soon(port: u16, child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut buf)).unwrap();
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Server {
    pub fn start() -> Server {
        if let Ok(endpoint) = std::env::var("S3_TEST_ENDPOINT") {
            let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("S3_TEST_ENDPOINT needs {k}"));
            return Server {
                endpoint,
                access_key: var("S3_TEST_ACCESS_KEY"),
                secret_key: var("S3_TEST_SECRET_KEY"),
                bucket: var("S3_TEST_BUCKET"),
                region: std::env::var("S3_TEST_REGION").unwrap_or_else(|_| "us-east-1".to_string()),
                root: None,
                child: None,
                _garage_dir: None,
            };
        }
        match std::env::var("S3_TEST_SERVER").as_deref() {
            Ok("garage") => Server::start_garage(),
            Ok("s3s-fs") | Err(_) => Server::start_s3s_fs(),
            Ok(other) => panic!("unknown S3_TEST_SERVER {other}"),
        }
    }

    fn start_s3s_fs() -> Server {
        let root = tempfile::Builder::new().prefix("s3s-fs-").tempdir().unwrap();
        let bucket = "gpbackup-test".to_string();
        std::fs::create_dir(root.path().join(&bucket)).unwrap();
        let access_key = format!("AKIA{}", random_hex(6).to_uppercase());
        let secret_key = random_hex(16);
        // Retry on the rare port race between picking a port and binding it.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(find_binary("s3s-fs"))
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key, "--domain", "localhost"])
                .arg(root.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start s3s-fs");
            let up = listens_soon(port, &mut child, Duration::from_secs(10));
            if up {
                return Server {
                    endpoint: format!("http://127.0.0.1:{port}"),
                    access_key,
                    secret_key,
                    bucket,
                    region: "us-east-1".to_string(),
                    root: Some(root),
                    child: Some(child),
                    _garage_dir: None,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs did not start");
    }

    fn start_garage() -> Server {
        let dir = tempfile::Builder::new().prefix("garage-").tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let config = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{token}"
"#,
            d = dir.path().display(),
            secret = random_hex(32),
            token = random_hex(16),
        );
        let config_path = dir.path().join("garage.toml");
        std::fs::write(&config_path, config).unwrap();
        let access_key = format!("GK{}", random_hex(12));
        let secret_key = random_hex(32);
        let bucket = "gpbackup-test".to_string();
        let mut child = Command::new(find_binary("garage"))
            .arg("-c")
            .arg(&config_path)
            .args(["server", "--single-node", "--default-bucket"])
            .env("GARAGE_DEFAULT_ACCESS_KEY", &access_key)
            .env("GARAGE_DEFAULT_SECRET_KEY", &secret_key)
            .env("GARAGE_DEFAULT_BUCKET", &bucket)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start garage");
        wait_for_port(admin, &mut child, "garage");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = Command::new("curl")
                .args(["-sf", &format!("http://127.0.0.1:{admin}/health")])
                .stdout(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "garage did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server {
            endpoint: format!("http://127.0.0.1:{s3}"),
            access_key,
            secret_key,
            bucket,
            region: "us-east-1".to_string(),
            root: None,
            child: Some(child),
            _garage_dir: Some(dir),
        }
    }

    /// A moto server on a free port with a bucket of its own. moto keeps
    /// objects in memory and does not check signatures: keep data small.
    pub fn start_moto() -> Server {
        Server::start_moto_with_tls(None)
    }

    /// moto over HTTPS with this certificate and key (PEM files).
    pub fn start_moto_with_tls(tls: Option<(&Path, &Path)>) -> Server {
        let moto_server = ensure_moto();
        let access_key = format!("AKIA{}", random_hex(6).to_uppercase());
        let secret_key = random_hex(16);
        let bucket = format!("gpbackup-{}", random_hex(4));
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&moto_server);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((cert, key)) = tls {
                command.arg("-c").arg(cert).arg("-k").arg(key);
            }
            let mut child = command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start moto_server");
            let up = listens_soon(port, &mut child, Duration::from_secs(60));
            if !up {
                let _ = child.kill();
                let _ = child.wait();
                continue;
            }
            let scheme = if tls.is_some() { "https" } else { "http" };
            let server = Server {
                endpoint: format!("{scheme}://127.0.0.1:{port}"),
                access_key,
                secret_key,
                bucket,
                region: "us-east-1".to_string(),
                root: None,
                child: Some(child),
                _garage_dir: None,
            };
            let out = server.curl(&server.bucket, &["-X", "PUT"]);
            assert!(out.status.success(), "create bucket on moto: {}", String::from_utf8_lossy(&out.stdout));
            return server;
        }
        panic!("moto_server did not start");
    }

    /// A SigV4-signed request to `<endpoint>/<path>` with curl; fails on an
    /// HTTP error status. moto needs the signature to pick the service.
    pub fn curl(&self, path: &str, args: &[&str]) -> Output {
        Command::new("curl")
            .args(["-sS", "--fail-with-body", "--aws-sigv4", &format!("aws:amz:{}:s3", self.region)])
            .args(["--user", &format!("{}:{}", self.access_key, self.secret_key)])
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            // The tests' own look at a TLS server need not verify it.
            .args(if self.endpoint.starts_with("https://") { &["-k"][..] } else { &[][..] })
            .args(args)
            .arg(format!("{}/{path}", self.endpoint))
            .output()
            .expect("run curl")
    }

    /// The response headers of a HEAD of `key`, lower-cased names.
    pub fn head(&self, key: &str) -> String {
        let out = self.curl(&format!("{}/{key}", self.bucket), &["-I"]);
        assert!(out.status.success(), "HEAD {key}: {}", String::from_utf8_lossy(&out.stdout));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| match l.split_once(':') {
                Some((k, v)) => format!("{}:{v}\n", k.to_ascii_lowercase()),
                None => format!("{l}\n"),
            })
            .collect()
    }

    /// moto only: restores complete `seconds` after they are requested
    /// (0: at once, moto's default).
    pub fn moto_restore_delay(&self, seconds: u64) {
        let body = if seconds == 0 {
            r#"{"model_name":"s3::keyrestore","transition":{"progression":"immediate"}}"#.to_string()
        } else {
            format!(r#"{{"model_name":"s3::keyrestore","transition":{{"progression":"time","seconds":{seconds}}}}}"#)
        };
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "POST", "-H", "Content-Type: application/json", "--data", &body])
            .arg(format!("{}/moto-api/state-manager/set-transition", self.endpoint))
            .output()
            .expect("run curl");
        assert!(out.status.success(), "set moto restore delay: {}", String::from_utf8_lossy(&out.stdout));
    }

    /// No process: for tests that point the plugin at a socket of their own.
    pub fn placeholder(endpoint: &str) -> Server {
        Server {
            endpoint: endpoint.to_string(),
            access_key: "AKIATESTTESTTEST".to_string(),
            secret_key: random_hex(16),
            bucket: "gpbackup-test".to_string(),
            region: "us-east-1".to_string(),
            root: None,
            child: None,
            _garage_dir: None,
        }
    }

    /// Where s3s-fs keeps the object's bytes; `None` on other servers.
    pub fn object_file(&self, key: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.path().join(&self.bucket).join(key))
    }

    pub fn has_disk(&self) -> bool {
        self.root.is_some()
    }

    /// Open multipart uploads and their stored parts, as s3s-fs keeps them
    /// (files in its root directory); empty on other servers.
    pub fn pending_uploads(&self) -> Vec<String> {
        let Some(root) = &self.root else { return Vec::new() };
        std::fs::read_dir(root.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload-") || n.starts_with(".upload_id-"))
            .collect()
    }

    /// The server's process id, when this test started the server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// A Glacier vault API server of its own: a second moto (vaults,
/// single-request archives, retrieval jobs that finish after 2-10 s,
/// inventories) or fakecloud (multipart uploads with tree-hash checks,
/// Vault Lock). moto is kept apart from the S3 server because one process
/// cannot check S3 signatures and serve Glacier at once.
pub struct Glacier {
    pub endpoint: String,
    pub kind: &'static str,
    child: Child,
}

impl Drop for Glacier {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Glacier {
    pub fn moto() -> Glacier {
        Glacier::spawn("moto", |port| {
            let mut c = Command::new(ensure_moto());
            c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            c
        })
    }

    /// fakecloud from ~/.cargo/bin (installed by `scripts/ensure-fakecloud.sh`).
    pub fn fakecloud() -> Glacier {
        let binary = find_binary("fakecloud");
        Glacier::spawn("fakecloud", move |port| {
            let mut c = Command::new(&binary);
            c.args(["--addr", &format!("127.0.0.1:{port}"), "--log-level", "error"]);
            c
        })
    }

    fn spawn(kind: &'static str, command: impl Fn(u16) -> Command) -> Glacier {
        for _ in 0..5 {
            let port = free_port();
            let mut child = command(port)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{kind}: {e}"));
            if listens_soon(port, &mut child, Duration::from_secs(60)) {
                return Glacier { endpoint: format!("http://127.0.0.1:{port}"), kind, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{kind} did not start");
    }

    /// A signed Glacier request (`path` after `/-/vaults/`); the body of
    /// the answer, which must be a success.
    pub fn request(&self, server: &Server, method: &str, path: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "--aws-sigv4", &format!("aws:amz:{}:glacier", server.region)])
            .args(["--user", &format!("{}:{}", server.access_key, server.secret_key)])
            .args(["-H", "x-amz-glacier-version: 2012-06-01", "-X", method])
            .arg(format!("{}/-/vaults/{path}", self.endpoint))
            .output()
            .expect("run curl");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{method} {path} on {}: {body} {}", self.kind, stderr(&out));
        body
    }
}

/// An HTTP proxy in front of a server that records the head of every
/// request (lower-cased header names) and forwards it, one connection per
/// request. Set it as the plugin's `http_proxy`.
pub struct RecordingProxy {
    pub url: String,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RecordingProxy {
    pub fn start(upstream: &str) -> RecordingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let upstream = upstream.trim_start_matches("http://").to_string();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = heads.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, keep) = (upstream.clone(), keep.clone());
                std::thread::spawn(move || {
                    let _ = forward(client, &upstream, &keep);
                });
            }
        });
        RecordingProxy { url, heads }
    }

    /// The request heads so far.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn forward(mut client: TcpStream, upstream: &str, heads: &std::sync::Mutex<Vec<String>>) -> std::io::Result<()> {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines: Vec<String> = text.trim_end().split("\r\n").map(str::to_string).collect();
    let length: usize = lines
        .iter()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    client.read_exact(&mut body)?;
    // Absolute-form target to origin-form; one request per connection.
    let mut first = lines[0].splitn(3, ' ').map(str::to_string).collect::<Vec<_>>();
    if let Some(rest) = first[1].strip_prefix("http://") {
        first[1] = rest.find('/').map(|i| rest[i..].to_string()).unwrap_or_else(|| "/".to_string());
    }
    lines[0] = first.join(" ");
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    lines.push("connection: close".to_string());
    heads.lock().unwrap().push(
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| if i == 0 { l.clone() } else { l.to_ascii_lowercase() })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let mut server = TcpStream::connect(upstream)?;
    server.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    server.write_all(&body)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;
    client.write_all(&response)
}

/// The moto_server binary of the test venv, made on first use by
/// `scripts/ensure-moto.sh` (under a lock: tests start servers in parallel).
fn ensure_moto() -> PathBuf {
    static MOTO: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    MOTO.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/ensure-moto.sh");
        let out = Command::new("bash").arg(&script).stderr(Stdio::inherit()).output().expect("run ensure-moto.sh");
        assert!(out.status.success(), "scripts/ensure-moto.sh failed (see above)");
        let path = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
        assert!(path.is_file(), "ensure-moto.sh printed {}", path.display());
        path
    })
    .clone()
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
        let mut text = format!("executablepath: {PLUGIN}\noptions:\n");
        for (k, v) in &options {
            text.push_str(&format!("  {k}: \"{v}\"\n"));
        }
        let config = dir.path().join("gpbackup_plugin_config.yaml");
        std::fs::write(&config, text).unwrap();
        Cluster { config, folder: crate::support::normalise(folder), home, dir }
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
    let mut child = Command::new(PLUGIN)
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
