//! A throw-away PostgreSQL server for the end-to-end tests, started by
//! `scripts/postgres.sh` (the demo's too; see [`super::launch`]): `initdb`
//! into a new directory under /tmp, `postgres` on a free 127.0.0.1 port
//! with its unix socket in that directory, stopped and removed on drop.
//!
//! PostgreSQL refuses to run as root: when the tests run as root, the
//! server runs as the `postgres` OS user (or `PG_RUN_AS`, or
//! `PG_TEST_USER`), created by Debian's `postgresql` package. `COPY ...
//! TO/FROM PROGRAM` runs its command as that user with the server's
//! environment, so the server gets its own `HOME` (the plugin logs to
//! `$HOME/gpAdminLogs`) and its own copy of the plugin binary (the cargo
//! target directory may not be readable by that user).
//!
//! The binaries are taken from `PG_BINDIR`, else the newest
//! `/usr/lib/postgresql/<version>/bin` (Debian), else `pg_config --bindir`,
//! else `initdb` on PATH. Without them, [`Postgres::start_or_skip`] prints a
//! "skipped" line and returns `None` — except in CI (`CI` set to `true` or
//! `1`), where it panics: the tests must not pass silently there.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::launch::Launched;
use super::{PLUGIN, stderr};

pub struct Postgres {
    pub port: u16,
    bin_dir: PathBuf,
    /// HOME of the server process, so of every `COPY ... PROGRAM` command.
    home: PathBuf,
    /// The server's stderr, which is also where `COPY ... PROGRAM`
    /// commands' stderr goes.
    log: PathBuf,
    /// A copy of the plugin binary the server's OS user can execute.
    pub plugin: PathBuf,
    _server: Launched,
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

pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

impl Postgres {
    /// Starts a server, or returns `None` after printing why the calling
    /// test is skipped (never in CI: there, a missing PostgreSQL panics).
    pub fn start_or_skip(test: &str) -> Option<Postgres> {
        let run_as = std::env::var("PG_TEST_USER").ok();
        let env: Vec<(&str, &str)> = run_as.iter().map(|u| ("PG_RUN_AS", u.as_str())).collect();
        let server = match Launched::start("postgres.sh", &[PLUGIN.as_str()], &env, "PG_PID") {
            Ok(server) => server,
            // The script's status when PostgreSQL cannot run here.
            Err(out) if out.status.code() == Some(2) => {
                let err = stderr(&out);
                let why = err.lines().last().unwrap_or_default();
                skip_or_fail(test, why.strip_prefix("postgres.sh: ").unwrap_or(why));
                return None;
            }
            Err(out) => panic!("postgres did not start: {}", stderr(&out)),
        };
        let var = |name: &str| PathBuf::from(server.var(name));
        Some(Postgres {
            port: server.var("PG_PORT").parse().unwrap(),
            bin_dir: var("PG_BIN"),
            home: var("PG_HOME"),
            log: var("PG_LOG"),
            plugin: var("PG_PLUGIN"),
            _server: server,
        })
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

/// Holds PostgreSQL advisory lock 4242; a trigger on the target table waits
/// for it on the first row, so a `COPY ... FROM PROGRAM` stalls after its
/// pipeline has produced some rows, with the plugin blocked writing.
pub struct Stall {
    session: Session,
}

impl Stall {
    pub fn install(pg: &Postgres, db: &str, fqn: &str) -> Stall {
        pg.sql(
            db,
            &format!(
                "CREATE OR REPLACE FUNCTION public.stall() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$; \
                 CREATE TRIGGER stall BEFORE INSERT ON {fqn} FOR EACH ROW EXECUTE FUNCTION public.stall()"
            ),
        );
        let mut session = pg.session(db);
        assert_eq!(session.query_line("SELECT 'locked' FROM pg_advisory_lock(4242);"), "locked");
        Stall { session }
    }

    /// Waits until some session waits for the lock.
    pub fn wait_for_waiter(pg: &Postgres, db: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while pg.sql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "0" {
            assert!(Instant::now() < deadline, "the COPY never reached its first row");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn release(mut self) {
        assert_eq!(self.session.query_line("SELECT 'unlocked' FROM pg_advisory_unlock(4242);"), "unlocked");
    }
}
