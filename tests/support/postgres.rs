//! A throw-away PostgreSQL server for the end-to-end tests: `initdb` into a
//! temporary directory, `postgres` on a free 127.0.0.1 port with its unix
//! socket in that directory, stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the
//! server runs as the `postgres` OS user (or `PG_TEST_USER`), created by
//! Debian's `postgresql` package. `COPY ... TO/FROM PROGRAM` runs its
//! command as that user with the server's environment, so the server gets
//! its own `HOME` (the plugin logs to `$HOME/gpAdminLogs`) and its own copy
//! of the plugin binary (the cargo target directory may not be readable by
//! that user).
//!
//! The binaries are taken from `PG_BINDIR`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian), else `pg_config --bindir`,
//! else `initdb` on PATH. Without them, [`Postgres::start_or_skip`] prints a
//! "skipped" line and returns `None` — except in CI (`CI` set to `true` or
//! `1`), where it panics: the tests must not pass silently there.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{PLUGIN, free_port};

pub struct Postgres {
    pub port: u16,
    pub bin_dir: PathBuf,
    /// The server's temporary directory (mode 0755): `data/`, `sock/`,
    /// `home/`, `bin/`, `server.log`.
    pub dir: TempDir,
    /// HOME of the server process, so of every `COPY ... PROGRAM` command.
    pub home: PathBuf,
    /// The server's stderr, which is also where `COPY ... PROGRAM`
    /// commands' stderr goes.
    pub log: PathBuf,
    /// A copy of the plugin binary the server's OS user can execute.
    pub plugin: PathBuf,
    child: Child,
}

/// True when running in CI (`CI=true` or `CI=1`), where missing tools fail.
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref().map(str::to_ascii_lowercase).as_deref(), Ok("true") | Ok("1") | Ok("yes"))
}

/// Reports a missing prerequisite: panics in CI, else prints a "skipped"
/// line for `test` and returns.
pub fn skip_or_fail(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI is set: the end-to-end tests must run; .ci/run installs it)");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

fn has_server_binaries(dir: &Path) -> bool {
    ["initdb", "postgres", "psql", "pg_dump"].iter().all(|b| dir.join(b).is_file())
}

/// Where `initdb`, `postgres`, `psql` and `pg_dump` are, if anywhere.
pub fn find_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_server_binaries(&dir).then_some(dir);
    }
    // Debian: /usr/lib/postgresql/<major>/bin, newest major first.
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((major, e.path().join("bin")))
        })
        .filter(|(_, dir)| has_server_binaries(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server_binaries(&dir) {
            return Some(dir);
        }
    }
    std::env::var_os("PATH").iter().flat_map(std::env::split_paths).find(|dir| has_server_binaries(dir))
}

/// The uid and gid the server must run as: `None` when not root (run as
/// ourselves), else those of `PG_TEST_USER` or `postgres`.
fn server_user() -> Result<Option<(u32, u32, String)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = std::env::var("PG_TEST_USER").unwrap_or_else(|_| "postgres".to_string());
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, &name]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    match (id("-u"), id("-g")) {
        (Some(uid), Some(gid)) if uid != 0 => Ok(Some((uid, gid, name))),
        _ => Err(format!(
            "running as root and there is no non-root OS user '{name}' to run PostgreSQL as \
             (install the postgresql package, or set PG_TEST_USER)"
        )),
    }
}

fn chown(path: &Path, user: &Option<(u32, u32, String)>) {
    if let Some((uid, gid, _)) = user {
        std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

impl Postgres {
    /// Starts a server, or returns `None` after printing why the calling
    /// test is skipped (never in CI: there, a missing PostgreSQL panics).
    pub fn start_or_skip(test: &str) -> Option<Postgres> {
        let Some(bin_dir) = find_bin_dir() else {
            skip_or_fail(test, "install postgresql (Debian: apt-get install postgresql) or set PG_BINDIR");
            return None;
        };
        let user = match server_user() {
            Ok(user) => user,
            Err(why) => {
                skip_or_fail(test, &why);
                return None;
            }
        };
        Some(Postgres::start(bin_dir, user))
    }

    // The server process is either returned inside `Postgres`, whose Drop
    // waits for it, or waited for here.
    #[allow(clippy::zombie_processes)]
    fn start(bin_dir: PathBuf, user: Option<(u32, u32, String)>) -> Postgres {
        let dir = tempfile::Builder::new().prefix("pg-e2e-").tempdir().unwrap();
        set_mode(dir.path(), 0o755);
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let home = dir.path().join("home");
        let bin = dir.path().join("bin");
        for (d, mode) in [(&data, 0o700), (&sock, 0o755), (&home, 0o755), (&bin, 0o755)] {
            std::fs::create_dir(d).unwrap();
            set_mode(d, mode);
            if d != &bin {
                chown(d, &user);
            }
        }
        let plugin = bin.join("gpbackup_s3_plugin");
        std::fs::copy(PLUGIN, &plugin).expect("copy the plugin binary");
        set_mode(&plugin, 0o755);
        let log = dir.path().join("server.log");

        let initdb = Self::command(&bin_dir, "initdb", &user, &home)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync")
            .arg("-D")
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );

        // Retry on the rare race between picking a free port and binding it.
        for attempt in 1..=5 {
            let port = free_port();
            let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
            let mut cmd = Self::command(&bin_dir, "postgres", &user, &home);
            cmd.arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                .arg("-k")
                .arg(&sock)
                .args(["-c", "listen_addresses=127.0.0.1"])
                // A throw-away cluster: durability is not the point.
                .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
                .args(["-c", "full_page_writes=off", "-c", "max_wal_size=1GB"])
                .args(["-c", "timezone=UTC", "-c", "log_min_messages=warning"])
                // Table scans in physical order, so the same query gives
                // the same bytes every time (the byte-level checks).
                .args(["-c", "synchronize_seqscans=off"])
                .args(["-c", "max_parallel_workers_per_gather=0"])
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().unwrap())
                .stderr(log_file);
            // If this test process dies without dropping us, the server
            // (SIGQUIT: immediate shutdown) goes with it.
            // SAFETY: prctl is async-signal-safe; runs after setuid, so the
            // setting survives the credential change.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("start postgres");
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut exited = false;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
                let ready = Command::new(bin_dir.join("psql"))
                    .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string()])
                    .args(["-U", "postgres", "-d", "postgres", "-c", "select 1"])
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false);
                if ready {
                    return Postgres { port, bin_dir, home, log, plugin, child, dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                exited && attempt < 5 && text.contains("could not bind"),
                "postgres did not start (port {port}); its log:\n{text}"
            );
        }
        unreachable!()
    }

    /// A command for one of the server binaries, run as the server's user
    /// with a clean environment.
    fn command(bin_dir: &Path, name: &str, user: &Option<(u32, u32, String)>, home: &Path) -> Command {
        let mut cmd = Command::new(bin_dir.join(name));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("LC_ALL", "C")
            .current_dir(home);
        if let Some((uid, gid, name)) = user {
            cmd.uid(*uid).gid(*gid).env("USER", name).env("LOGNAME", name);
        }
        cmd
    }

    fn psql_command(&self, db: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join("psql"));
        cmd.args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", db])
            .env("PGTZ", "UTC")
            .env("PGCLIENTENCODING", "UTF8");
        cmd
    }

    /// Runs `sql` (one or more statements) in `db`; the raw output.
    pub fn try_sql(&self, db: &str, sql: &str) -> Output {
        self.psql_command(db).args(["-c", sql]).stdin(Stdio::null()).output().expect("run psql")
    }

    /// Runs `sql` in `db` and returns its unaligned, tuples-only output
    /// without the trailing newline; panics on any error.
    #[track_caller]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        let out = self.try_sql(db, sql);
        assert!(out.status.success(), "psql failed: {sql}\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end_matches('\n').to_string()
    }

    /// Runs an SQL script file in `db` (single transaction); panics on error.
    #[track_caller]
    pub fn run_file(&self, db: &str, file: &Path) {
        let out = self
            .psql_command(db)
            .args(["-q", "-1", "-f"])
            .arg(file)
            .stdin(Stdio::null())
            .output()
            .expect("run psql -f");
        assert!(out.status.success(), "psql -f {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }

    /// `COPY (query) TO STDOUT` in gpbackup's format (CSV, ',' delimiter).
    #[track_caller]
    pub fn copy_out(&self, db: &str, query: &str) -> Vec<u8> {
        let out = self.try_sql(db, &format!("COPY ({query}) TO STDOUT WITH CSV DELIMITER ','"));
        assert!(out.status.success(), "COPY out failed: {query}\n{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// `COPY table FROM STDIN` in gpbackup's format, fed `data`; returns
    /// psql's output (`COPY <rows>` on success).
    pub fn copy_in(&self, db: &str, table: &str, data: &[u8]) -> Output {
        let mut child = self
            .psql_command(db)
            .args(["-c", &format!("COPY {table} FROM STDIN WITH CSV DELIMITER ','")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }

    /// A psql session kept open, fed statements one by one (for holding
    /// locks while another session works).
    pub fn session(&self, db: &str) -> Session {
        let child = self
            .psql_command(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        Session { child, reader: None }
    }

    /// `pg_dump --schema-only` of `db`: the DDL, as gpbackup's metadata.sql
    /// holds it.
    #[track_caller]
    pub fn dump_schema(&self, db: &str) -> Vec<u8> {
        let out = Command::new(self.bin_dir.join("pg_dump"))
            .args(["--schema-only", "--no-owner", "--no-privileges"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", db])
            .stdin(Stdio::null())
            .output()
            .expect("run pg_dump");
        assert!(out.status.success(), "pg_dump failed: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    /// The server log so far (it holds `COPY ... PROGRAM` commands' stderr).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every gpAdminLogs line the plugin wrote when run by the server.
    pub fn plugin_log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(entries) = std::fs::read_dir(self.home.join("gpAdminLogs")) {
            for e in entries.flatten() {
                text.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        text
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the data is thrown away anyway.
        // SAFETY: sending a signal to our own child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An open psql session (see [`Postgres::session`]).
pub struct Session {
    child: Child,
    reader: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Session {
    /// Sends one statement that returns one row, and waits for that row.
    #[track_caller]
    pub fn query_line(&mut self, sql: &str) -> String {
        use std::io::BufRead;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{sql}").unwrap();
        stdin.flush().unwrap();
        if self.reader.is_none() {
            self.reader = Some(std::io::BufReader::new(self.child.stdout.take().unwrap()));
        }
        let mut line = String::new();
        self.reader.as_mut().unwrap().read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "psql session ended while running {sql}");
        line.trim_end().to_string()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
