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

    /// The archives of `vault` (id, description) from a fresh inventory
    /// job: both emulators answer with the vault as it is now.
    pub fn inventory(&self, server: &Server, vault: &str) -> Vec<(String, String)> {
        let out = Command::new("curl")
            .args(["-sS", "--fail-with-body", "-D", "-", "--aws-sigv4", &format!("aws:amz:{}:glacier", server.region)])
            .args(["--user", &format!("{}:{}", server.access_key, server.secret_key)])
            .args(["-H", "x-amz-glacier-version: 2012-06-01", "-X", "POST", "-H", "content-type: application/json"])
            .args(["--data", r#"{"Type":"inventory-retrieval","Format":"JSON"}"#])
            .arg(format!("{}/-/vaults/{vault}/jobs", self.endpoint))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "inventory job on {}: {text}", self.kind);
        let job = text
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("x-amz-job-id:")
                    .map(|_| l.split_once(':').unwrap().1.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no job id: {text}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let state = self.request(server, "GET", &format!("{vault}/jobs/{job}"));
            if state.contains("\"Completed\":true") || state.contains("\"Completed\": true") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "inventory job not done: {state}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        let output = self.request(server, "GET", &format!("{vault}/jobs/{job}/output"));
        let json: serde_json::Value = serde_json::from_str(&output).unwrap_or_else(|e| panic!("{e}: {output}"));
        json["ArchiveList"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|a| {
                        let text = |k: &str| a[k].as_str().unwrap_or_default().to_string();
                        (text("ArchiveId"), text("ArchiveDescription"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every archive of this plugin under `folder` in `vault` named by
    /// exactly one catalog entry, and every entry naming a live archive:
    /// the vault backend's promise, checked against a fresh inventory and
    /// the entries on s3s-fs's disk. No intent may be left either.
    pub fn assert_one_to_one(&self, s3: &Server, vault: &str, folder: &str) {
        let Some(root) = s3.object_file(folder) else { return };
        let mut named: Vec<String> = Vec::new();
        let mut intents = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else { continue };
            for entry in read.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.ends_with(".gpbackup_vault") {
                    continue;
                }
                if name.contains(".intent-") {
                    intents.push(name);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                if let Some(id) = json["archive_id"].as_str() {
                    named.push(id.to_string());
                }
            }
        }
        let ours: Vec<String> = self
            .inventory(s3, vault)
            .into_iter()
            .filter(|(_, description)| description.starts_with("gpbkp1 "))
            .filter(|(_, description)| describes_under(description, folder))
            .map(|(id, _)| id)
            .collect();
        let mut sorted_named = named.clone();
        sorted_named.sort();
        sorted_named.dedup();
        assert_eq!(sorted_named.len(), named.len(), "an archive named by two entries: {named:?}");
        let mut sorted_ours = ours.clone();
        sorted_ours.sort();
        assert_eq!(sorted_ours, sorted_named, "archives of the vault (left) and archives the catalog names (right)");
        assert!(intents.is_empty(), "intents left: {intents:?}");
    }
}

/// Whether a `gpbkp1 <base64url JSON>` description names a key under `folder`.
fn describes_under(description: &str, folder: &str) -> bool {
    use base64::Engine as _;
    let Some(encoded) = description.strip_prefix("gpbkp1 ") else { return false };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded.trim()) else { return false };
    serde_json::from_slice::<serde_json::Value>(&json)
        .ok()
        .and_then(|v| v["k"].as_str().map(|k| k.starts_with(&format!("{folder}/"))))
        .unwrap_or(false)
}

pub(super) fn find_binary(name: &str) -> PathBuf {
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
