//! A Glacier vault API server of its own: a second moto (vaults,
//! single-request archives, retrieval jobs that finish after 2-10 s,
//! inventories) or fakecloud (multipart uploads with tree-hash checks,
//! Vault Lock). moto is kept apart from the S3 server because one process
//! cannot check S3 signatures and serve Glacier at once.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::launch::Spawned;
use super::server::ensure_moto;
use super::{Server, stderr};

pub struct Glacier {
    pub endpoint: String,
    pub kind: &'static str,
    _process: Spawned,
}

impl Glacier {
    pub fn moto() -> Glacier {
        let moto_server = ensure_moto();
        Glacier::spawn("moto", |port| {
            let mut c = Command::new(&moto_server);
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
        let process = Spawned::on_free_port(kind, Duration::from_secs(60), command);
        Glacier { endpoint: format!("http://127.0.0.1:{}", process.port), kind, _process: process }
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
