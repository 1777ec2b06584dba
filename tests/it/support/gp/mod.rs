//! A simulated Greenplum cluster for the end-to-end tests: a [`Gp`] is a
//! coordinator (content -1) and N segments on a few "hosts" (directories),
//! whose segments' data all live in one PostgreSQL database: segment `n`
//! holds the rows with `mod(id, N) = n`. It calls the plugin exactly as
//! gpbackup, gpbackup_helper and gprestore do (see the end-to-end tests'
//! module for what is replayed): config copies per content, version checks,
//! hook waves, `backup_file`/`restore_file`, and `COPY ... TO/FROM PROGRAM`
//! through PostgreSQL.
//!
//! - `database.rs`: the test tables;
//! - `files.rs`: gpbackup's config and TOCs, compression;
//! - `backup.rs`: a gpbackup run and the check of what it stored;
//! - `restore.rs`: a gprestore run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

use super::postgres::{Postgres, set_mode, skip_or_fail};
use super::{Cluster, PLUGIN, Server, assert_ok, run_plugin_env};

mod backup;
mod database;
mod files;
mod restore;

pub use backup::Backup;
pub use database::{all_tables, checksums, create_tables, drop_tables, scale, table};
pub use files::Compression;
pub use restore::RestoreOptions;

// ---------------------------------------------------------------------------
// Small helpers

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The row count of a `COPY` command tag printed by psql.
#[track_caller]
pub fn copy_rows(out: &Output) -> u64 {
    assert!(out.status.success(), "COPY failed: {}", text(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("COPY "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no COPY tag: {}", text(out)))
}

/// Runs `input` through `sh -c cmd` (a decompressor) and returns its output.
#[track_caller]
fn filter(cmd: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{cmd} failed: {}", text(&out));
    out.stdout
}

fn have_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// YAML scalar as Go's yaml.v2 writes a string: quoted only when it would
/// otherwise read as something else.
fn yaml_str(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    let needs_quotes = v.is_empty()
        || v.parse::<f64>().is_ok()
        || ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"].contains(&lower.as_str())
        || v.starts_with(|c: char| " -?:,[]{}#&*!|>'\"%@`".contains(c))
        || v.ends_with(' ')
        || v.contains(": ")
        || v.contains(" #");
    if needs_quotes { format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")) } else { v.to_string() }
}

/// Runs `f` for every item at once, like gpbackup's concurrent fan-out.
fn fan_out<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|i| scope.spawn(|| f(i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

pub fn zstd_or_skip(test: &str) -> bool {
    if have_tool("zstd") {
        return true;
    }
    skip_or_fail(test, "zstd is not installed (apt-get install zstd): zstd variant");
    false
}

// ---------------------------------------------------------------------------
// The cluster

pub struct Gp<'a> {
    server: &'a Server,
    pg: &'a Postgres,
    /// Temporary root (hosts' directories), gpadmin's HOME, the folder.
    pub c: Cluster,
    /// The file the user passes as --plugin-config.
    pub user_config: PathBuf,
    /// The user's options, in the user's order.
    options: Vec<(String, String)>,
    /// What gpbackup adds to every host's copy besides `pgport` and
    /// `backup_plugin_version` (with `password_encryption: on`, the key
    /// from `.encrypt` under the plugin's name).
    pub injected: Vec<(String, String)>,
    /// gpadmin's environment beyond HOME (`COORDINATOR_DATA_DIRECTORY`).
    pub env: Vec<(String, String)>,
    segments: usize,
}

impl<'a> Gp<'a> {
    pub fn new(server: &'a Server, pg: &'a Postgres, segments: usize, extra: &[(&str, &str)]) -> Gp<'a> {
        let c = Cluster::new(server, &[]);
        // COPY ... PROGRAM runs as the server's OS user: it must read the
        // config copies under this directory.
        set_mode(c.dir.path(), 0o755);
        let mut options: Vec<(String, String)> = [
            ("region", server.region.as_str()),
            ("endpoint", server.endpoint.as_str()),
            ("aws_access_key_id", server.access_key.as_str()),
            ("aws_secret_access_key", server.secret_key.as_str()),
            ("bucket", server.bucket.as_str()),
            ("folder", c.folder.as_str()),
            ("encryption", "off"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            // An option given again (another bucket) replaces the default.
            match options.iter_mut().find(|(key, _)| key == k) {
                Some(option) => option.1 = v.to_string(),
                None => options.push((k.to_string(), v.to_string())),
            }
        }
        let mut yaml = format!("executablepath: {}\noptions:\n", s(&pg.plugin));
        for (k, v) in &options {
            yaml.push_str(&format!("  {k}: {}\n", yaml_str(v)));
        }
        let user_config = c.dir.path().join("s3_config.yaml");
        std::fs::write(&user_config, yaml).unwrap();
        Gp { server, pg, c, user_config, options, injected: Vec::new(), env: Vec::new(), segments }
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// gpbackup's `executablepath`: what COPY ... PROGRAM runs.
    fn exe(&self) -> String {
        s(&self.pg.plugin)
    }

    /// Two primary segments per segment host; the coordinator on `cdw`.
    fn host(content: i32) -> String {
        if content < 0 { "cdw".to_string() } else { format!("sdw{}", content / 2 + 1) }
    }

    fn host_tmp(&self, host: &str) -> PathBuf {
        let dir = self.c.dir.path().join(host).join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        dir
    }

    /// `<datadir>/backups/<YYYYMMDD>/<TS>`, created (gpbackup creates it on
    /// every host before calling the plugin).
    pub fn backup_dir(&self, content: i32, ts: &str) -> PathBuf {
        let dir = self
            .c
            .dir
            .path()
            .join(Gp::host(content))
            .join(format!("gpseg{content}"))
            .join("backups")
            .join(&ts[..8])
            .join(ts);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn pgport(&self, content: i32) -> u16 {
        if content < 0 { self.pg.port } else { 6000 + content as u16 }
    }

    /// The config copy gpbackup (ts = backup timestamp) or gprestore (ts =
    /// its start time) writes per content and rsyncs to that content's
    /// host as `/tmp/<ts>_<name>`: the user's options plus `pgport` and
    /// `backup_plugin_version`, keys sorted. The copies of one host race;
    /// the last one wins. Returns each host's copy.
    pub fn config_copies(&self, ts: &str, plugin_version: &str, segments: usize) -> BTreeMap<String, PathBuf> {
        let name = self.user_config.file_name().unwrap().to_str().unwrap();
        let contents: Vec<i32> = (-1..segments as i32).collect();
        let written = fan_out(&contents, |&content| {
            let mut options = self.options.clone();
            options.push(("pgport".into(), self.pgport(content).to_string()));
            options.push(("backup_plugin_version".into(), plugin_version.to_string()));
            options.extend(self.injected.iter().cloned());
            options.sort();
            let mut yaml = format!("executablepath: {}\noptions:\n", self.exe());
            for (k, v) in &options {
                yaml.push_str(&format!("  {k}: {}\n", yaml_str(v)));
            }
            let tmp = self.host_tmp(&Gp::host(content));
            let staged = tmp.join(format!("{ts}_{name}_{}_{content}", std::process::id()));
            std::fs::write(&staged, yaml).unwrap();
            set_mode(&staged, 0o644);
            let dest = tmp.join(format!("{ts}_{name}"));
            std::fs::rename(&staged, &dest).unwrap();
            (Gp::host(content), dest)
        });
        let copies: BTreeMap<String, PathBuf> = written.into_iter().collect();
        for (host, path) in &copies {
            let text = std::fs::read_to_string(path).unwrap();
            let port = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("pgport: "))
                .unwrap()
                .trim_matches('"')
                .parse::<u16>()
                .unwrap();
            assert!(
                contents.iter().any(|&c| Gp::host(c) == *host && self.pgport(c) == port),
                "{host}: pgport {port} is not one of its contents'"
            );
        }
        copies
    }

    pub fn cfg(copies: &BTreeMap<String, PathBuf>, content: i32) -> String {
        s(&copies[&Gp::host(content)])
    }

    /// Runs the plugin as gpbackup does over ssh or bash (gpadmin's HOME).
    pub fn plugin(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_plugin_env(&args, b"", &self.c.home, &env)
    }

    /// A plugin command with gpadmin's environment, for pipelines.
    fn plugin_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&*PLUGIN);
        cmd.args(args).env("HOME", &self.c.home).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// gpbackup's and gprestore's start: `plugin_api_version` once per
    /// primary segment, `--version` once per content with the coordinator;
    /// every answer must be the same. Returns the plugin version (the 3rd
    /// token), which gpbackup records and gprestore passes back as
    /// `backup_plugin_version`.
    fn check_versions(&self, segments: usize) -> String {
        let segs: Vec<i32> = (0..segments as i32).collect();
        let apis = fan_out(&segs, |_| self.plugin(&["plugin_api_version"]));
        for out in &apis {
            assert_ok(out);
            assert_eq!(out.stdout, apis[0].stdout, "inconsistent API versions");
        }
        let api = String::from_utf8(apis[0].stdout.clone()).unwrap();
        let parts: Vec<u32> = api.trim().split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts.len() == 3 && (parts[0], parts[1]) >= (0, 3), "gpbackup needs a semver >= 0.3.0: {api:?}");
        let contents: Vec<i32> = (-1..segments as i32).collect();
        let versions = fan_out(&contents, |_| self.plugin(&["--version"]));
        for out in &versions {
            assert_ok(out);
            assert_eq!(out.stdout, versions[0].stdout, "inconsistent --version");
        }
        let version = String::from_utf8(versions[0].stdout.clone()).unwrap();
        let tokens: Vec<&str> = version.trim().split(' ').collect();
        assert_eq!(tokens.len(), 3, "{version:?}");
        tokens[2].to_string()
    }

    /// A setup or cleanup hook as gpbackup runs it: scope `master` on the
    /// coordinator, then `segment_host` once per primary segment (not per
    /// host), then `segment`; each wave concurrently; content ids quoted.
    fn hooks(&self, hook: &str, copies: &BTreeMap<String, PathBuf>, ts: &str, segments: usize) {
        let coord = s(&self.backup_dir(-1, ts));
        assert_ok(&self.plugin(&[hook, &Gp::cfg(copies, -1), &coord, "master", "\"-1\""]));
        let segs: Vec<i32> = (0..segments as i32).collect();
        for out in fan_out(&segs, |&n| {
            let dir = s(&self.backup_dir(n, ts));
            self.plugin(&[hook, &Gp::cfg(copies, n), &dir, "segment_host"])
        }) {
            assert_ok(&out);
        }
        for out in fan_out(&segs, |&n| {
            let dir = s(&self.backup_dir(n, ts));
            let id = format!("\"{n}\"");
            self.plugin(&[hook, &Gp::cfg(copies, n), &dir, "segment", &id])
        }) {
            assert_ok(&out);
        }
    }

    /// `backup_file CFG PATH` from the coordinator; the local file stays.
    fn backup_file(&self, cfg: &str, path: &Path) {
        assert_ok(&self.plugin(&["backup_file", cfg, &s(path)]));
        assert!(path.exists(), "backup_file removed {}", path.display());
    }

    /// `restore_file CFG PATH` of a file whose local copy exists: the copy
    /// is removed first and must come back byte for byte. Returns it.
    fn restore_file_again(&self, cfg: &str, path: &Path) -> Vec<u8> {
        let original = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_ok(&self.plugin(&["restore_file", cfg, &s(path)]));
        let restored = std::fs::read(path).unwrap();
        assert!(restored == original, "{} differs after restore_file", path.display());
        restored
    }

    /// The rows of `fqn` that live on segment `n` of `segments`.
    fn segment_query(fqn: &str, n: i32, segments: usize) -> String {
        format!("SELECT * FROM {fqn} WHERE mod(id, {segments}) = {n}")
    }

    /// gpbackup's multi-file COPY: `COPY t TO PROGRAM '<compress> |
    /// <exe> backup_data <cfg> <file>' WITH CSV DELIMITER ','`.
    pub fn copy_to_program(&self, query: &str, comp: Compression, cfg: &str, file: &Path) -> String {
        let (cfg, file) = (cfg.to_string(), s(file));
        assert!(!cfg.contains('\'') && !file.contains('\''));
        format!(
            "COPY ({query}) TO PROGRAM '{} | {} backup_data {cfg} {file}' WITH CSV DELIMITER ','",
            comp.compress(),
            self.exe()
        )
    }

    /// gprestore's multi-file COPY: `COPY t FROM PROGRAM '<exe>
    /// restore_data <cfg> <file> | gzip -d -c' WITH CSV DELIMITER ','`.
    pub fn copy_from_program(&self, fqn: &str, comp: Compression, cfg: &str, file: &Path) -> String {
        let (cfg, file) = (cfg.to_string(), s(file));
        assert!(!cfg.contains('\'') && !file.contains('\''));
        let mut program = format!("{} restore_data {cfg} {file}", self.exe());
        if let Some(d) = comp.decompress() {
            program = format!("{program} | {d}");
        }
        format!("COPY {fqn} FROM PROGRAM '{program}' WITH CSV DELIMITER ','")
    }

    /// `list_directory` of the folder: key -> size.
    pub fn listing(&self) -> BTreeMap<String, u64> {
        let out = self.plugin(&["list_directory", &s(&self.user_config)]);
        assert_ok(&out);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, n) = l.rsplit_once('\t').unwrap();
                (k.to_string(), n.parse().unwrap())
            })
            .collect()
    }
}
