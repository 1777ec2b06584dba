//! The S3 server a test runs the plugin against.
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
//! s3s-fs and Garage are started by their scripts (see [`super::launch`]).
//! [`Server::start_moto`] starts a moto server instead (storage classes,
//! RestoreObject, InvalidObjectState), whatever the environment says: the
//! cold-storage tests need what only it implements. Its Python venv is made
//! on first use by `scripts/ensure-moto.sh`. [`Server::start_fakecloud`]
//! starts fakecloud, the second Object Lock implementation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::launch::{Launched, Spawned};
use super::{random_hex, stderr};

pub struct Server {
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub bucket: String,
    pub region: String,
    /// The s3s-fs root directory (objects are files under `<root>/<bucket>/`).
    root: Option<PathBuf>,
    process: Process,
}

/// The server's process, if this test started one; stopped on drop.
enum Process {
    None,
    /// s3s-fs.
    Script(Launched),
    /// Garage, and its directory (removed after the server stopped).
    Garage {
        server: Launched,
        _dir: TempDir,
    },
    /// moto.
    Spawned(Spawned),
    /// fakecloud.
    Fakecloud(Spawned),
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
                process: Process::None,
            };
        }
        match std::env::var("S3_TEST_SERVER").as_deref() {
            Ok("garage") => Server::start_garage(),
            Ok("s3s-fs") | Err(_) => Server::start_s3s_fs(),
            Ok(other) => panic!("unknown S3_TEST_SERVER {other}"),
        }
    }

    /// s3s-fs by `scripts/s3s-fs-server.sh`.
    fn start_s3s_fs() -> Server {
        let server = Launched::start("s3s-fs-server.sh", &["gpbackup-test"], &[], "S3_PID")
            .unwrap_or_else(|out| panic!("s3s-fs did not start: {}", stderr(&out)));
        let root = Some(PathBuf::from(server.var("S3_ROOT")));
        Server::started(server, root, Process::Script)
    }

    /// Garage by `scripts/garage-server.sh`, with a default bucket and key.
    fn start_garage() -> Server {
        let dir = tempfile::Builder::new().prefix("garage-").tempdir().unwrap();
        let path = dir.path().to_str().unwrap();
        let server = Launched::start("garage-server.sh", &[path, "gpbackup-test"], &[], "S3_PID")
            .unwrap_or_else(|out| panic!("garage did not start: {}", stderr(&out)));
        Server::started(server, None, |server| Process::Garage { server, _dir: dir })
    }

    /// A server from the variables its script printed.
    fn started(server: Launched, root: Option<PathBuf>, process: impl FnOnce(Launched) -> Process) -> Server {
        let var = |name: &str| server.var(name).to_string();
        let (endpoint, access_key, secret_key) = (var("S3_ENDPOINT"), var("S3_ACCESS_KEY"), var("S3_SECRET_KEY"));
        let (bucket, region) = (var("S3_BUCKET"), var("S3_REGION"));
        Server { endpoint, access_key, secret_key, bucket, region, root, process: process(server) }
    }

    /// A moto server on a free port with a bucket of its own. moto keeps
    /// objects in memory and does not check signatures: keep data small.
    pub fn start_moto() -> Server {
        Server::start_moto_with_tls(None)
    }

    /// moto over HTTPS with this certificate and key (PEM files).
    pub fn start_moto_with_tls(tls: Option<(&Path, &Path)>) -> Server {
        let moto_server = ensure_moto();
        let moto = Spawned::on_free_port("moto_server", Duration::from_secs(60), |port| {
            let mut command = Command::new(&moto_server);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            if let Some((cert, key)) = tls {
                command.arg("-c").arg(cert).arg("-k").arg(key);
            }
            command
        });
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = Server {
            endpoint: format!("{scheme}://127.0.0.1:{}", moto.port),
            access_key: format!("AKIA{}", random_hex(6).to_uppercase()),
            secret_key: random_hex(16),
            bucket: format!("gpbackup-{}", random_hex(4)),
            region: "us-east-1".to_string(),
            root: None,
            process: Process::Spawned(moto),
        };
        let out = server.curl(&server.bucket, &["-X", "PUT"]);
        assert!(out.status.success(), "create bucket on moto: {}", String::from_utf8_lossy(&out.stdout));
        server
    }

    /// A fakecloud server (`scripts/ensure-fakecloud.sh` installs it) on a
    /// free port with a bucket of its own: S3 versioning and Object Lock
    /// with the lock headers of multipart uploads applied, storage classes
    /// and RestoreObject. It does not check signatures.
    pub fn start_fakecloud() -> Server {
        let binary = super::glacier::find_binary("fakecloud");
        let process = Spawned::on_free_port("fakecloud", Duration::from_secs(60), |port| {
            let mut command = Command::new(&binary);
            command.args(["--addr", &format!("127.0.0.1:{port}"), "--log-level", "error"]);
            command
        });
        let server = Server {
            endpoint: format!("http://127.0.0.1:{}", process.port),
            access_key: format!("AKIA{}", random_hex(6).to_uppercase()),
            secret_key: random_hex(16),
            bucket: format!("gpbackup-{}", random_hex(4)),
            region: "us-east-1".to_string(),
            root: None,
            process: Process::Fakecloud(process),
        };
        let out = server.curl(&server.bucket, &["-X", "PUT"]);
        assert!(out.status.success(), "create bucket on fakecloud: {}", String::from_utf8_lossy(&out.stdout));
        server
    }

    pub fn is_fakecloud(&self) -> bool {
        matches!(self.process, Process::Fakecloud(_))
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
            process: Process::None,
        }
    }

    /// Where s3s-fs keeps the object's bytes; `None` on other servers.
    pub fn object_file(&self, key: &str) -> Option<PathBuf> {
        self.root.as_ref().map(|r| r.join(&self.bucket).join(key))
    }

    pub fn has_disk(&self) -> bool {
        self.root.is_some()
    }

    /// Open multipart uploads and their stored parts, as s3s-fs keeps them
    /// (files in its root directory); empty on other servers.
    pub fn pending_uploads(&self) -> Vec<String> {
        let Some(root) = &self.root else { return Vec::new() };
        std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload-") || n.starts_with(".upload_id-"))
            .collect()
    }

    /// The server's process id, when this test started the server.
    pub fn pid(&self) -> Option<u32> {
        match &self.process {
            Process::None => None,
            Process::Script(server) | Process::Garage { server, .. } => Some(server.pid()),
            Process::Spawned(s) | Process::Fakecloud(s) => Some(s.pid()),
        }
    }
}

/// The moto_server binary of the test venv, made on first use by
/// `scripts/ensure-moto.sh` (under a lock: tests start servers in parallel).
pub(super) fn ensure_moto() -> PathBuf {
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
