//! How a test starts a server process, one of two ways:
//!
//! - s3s-fs, Garage and PostgreSQL by their scripts
//!   (`scripts/s3s-fs-server.sh`, `scripts/garage-server.sh`,
//!   `scripts/postgres.sh`, which also start them for the demo and the
//!   benchmark), run in their command-line mode: `start` starts the server
//!   and prints its variables as `NAME=VALUE` lines, `stop` (with those
//!   variables in its environment) stops it and removes its files. A
//!   [`Launched`] runs `stop` when dropped, or as soon as the test process
//!   dies if it dies first: a watchdog shell waits for the end of its stdin.
//! - moto and fakecloud, which only the tests use, spawned directly on a free
//!   port ([`Spawned`]).

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
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

/// A server process the test spawned itself, on `port`; killed on drop.
pub struct Spawned {
    pub port: u16,
    child: Child,
}

impl Spawned {
    /// Runs `command(port)` for a free port and waits up to `limit` for it
    /// to listen there, with a new port if it exits first (the rare race
    /// between picking a port and binding it).
    pub fn on_free_port(what: &str, limit: Duration, command: impl Fn(u16) -> Command) -> Spawned {
        for _ in 0..5 {
            let port = free_port();
            let mut child = command(port)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {what}: {e}"));
            if listens_soon(port, &mut child, limit) {
                return Spawned { port, child };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("{what} did not start");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server started by `scripts/<script> start`: its variables, and its
/// process (the one named by the variable `pid_var`), stopped by the
/// script's `stop` on drop.
pub struct Launched {
    vars: BTreeMap<String, String>,
    pid: u32,
    watchdog: Child,
}

impl Launched {
    /// Runs `bash scripts/<script> start <args>` with `env` added; the
    /// script's output when it fails (PostgreSQL's exits with 2 when it
    /// cannot run here).
    pub fn start(script: &str, args: &[&str], env: &[(&str, &str)], pid_var: &str) -> Result<Launched, Output> {
        // The script exits once its server runs: the server, orphaned,
        // becomes this process's child (to reap when it has stopped)
        // rather than init's, which may never reap it.
        static SUBREAPER: std::sync::Once = std::sync::Once::new();
        // SAFETY: prctl with integer arguments only.
        SUBREAPER.call_once(|| unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
        });
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join(script);
        let out = Command::new("bash")
            .arg(&path)
            .arg("start")
            .args(args)
            // The scripts refuse to start a second server of a shell that
            // sourced them.
            .env_remove("S3_PID")
            .env_remove("PG_TMPDIR")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
        if !out.status.success() {
            return Err(out);
        }
        // Shown with the test's output if it fails (a port retried...).
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        let vars: BTreeMap<String, String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pid = vars.get(pid_var).and_then(|p| p.parse().ok());
        let pid = pid.unwrap_or_else(|| panic!("{script} start printed no {pid_var}: {vars:?}"));
        let watchdog = Command::new("bash")
            .args(["-c", r#"trap '' INT QUIT TERM HUP; read -r _; exec bash "$0" stop"#])
            .arg(&path)
            .envs(&vars)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the watchdog shell");
        Ok(Launched { vars, pid, watchdog })
    }

    /// A variable the script printed.
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).unwrap_or_else(|| panic!("no {name} in {:?}", self.vars))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        // The end of its stdin: the watchdog runs the script's `stop`.
        drop(self.watchdog.stdin.take());
        let _ = self.watchdog.wait();
        // Reap the stopped server (waitpid fails at once if it is not our
        // child).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // SAFETY: waitpid with a null status pointer.
            let r = unsafe { libc::waitpid(self.pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG) };
            if r != 0 || Instant::now() > deadline {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
