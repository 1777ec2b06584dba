//! Build provenance, embedded as compile-time environment variables for
//! `gpbackup_s3_plugin version --build` and the first log line of each
//! backup: the commit, the build date, the compiler, the target and the
//! oldest glibc the executable runs on. An operator with a plugin on 200
//! hosts can then tell which build ran; the protocol's `--version` line
//! stays three tokens, as gpbackup parses it.
//!
//! Every probe falls back to "unknown" (a build from a source tarball has
//! no git; a build host may lack getconf), so it never fails a build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // The build date follows SOURCE_DATE_EPOCH when set (reproducible builds).
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // Set by scripts/dist.sh to the glibc version Zig links against.
    println!("cargo:rerun-if-env-changed=GPBACKUP_S3_PLUGIN_GLIBC");
    // Whether the tree is modified can only change when these do.
    for path in ["build.rs", "Cargo.toml", "Cargo.lock", "src"] {
        println!("cargo:rerun-if-changed={path}");
    }

    let commit = commit(&root).unwrap_or_else(|| "unknown (not built from a git checkout)".to_string());
    env("COMMIT", &commit);
    env("BUILT", &build_date());
    env("RUSTC", &rustc_version());
    env("TARGET", &std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string()));
    env("GLIBC", &glibc_floor());
}

fn env(name: &str, value: &str) {
    println!("cargo:rustc-env=GPBACKUP_S3_PLUGIN_{name}={value}");
}

/// The commit, with `-modified` when tracked files differ from it; `None`
/// outside a git checkout of this very package (a tarball unpacked inside
/// some other repository must not report that repository's commit).
fn commit(root: &Path) -> Option<String> {
    let top = git(root, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != root.canonicalize().ok()? {
        return None;
    }
    let head = git(root, &["rev-parse", "HEAD"])?;
    // A new commit or a checkout changes HEAD or the branch's ref; only
    // files that exist are named, since a missing one reruns every build.
    let mut watched = vec!["HEAD".to_string()];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    watched.push("packed-refs".to_string());
    for name in watched {
        if let Some(path) = git(root, &["rev-parse", "--path-format=absolute", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let modified = git(root, &["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if modified { format!("{head}-modified") } else { head })
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(root).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build_date() -> String {
    let date = match std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse::<i64>().ok()) {
        Some(secs) => chrono::DateTime::from_timestamp(secs, 0),
        None => Some(chrono::Utc::now()),
    };
    date.map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|| "unknown".to_string())
}

/// `rustc 1.95.0 (59807616e 2026-04-14)`, from the compiler cargo uses.
fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// A dist build names the glibc it links against; any other build needs
/// the glibc of the machine that built it, or a newer one (the linker binds
/// each symbol to the newest version that glibc has).
fn glibc_floor() -> String {
    if let Ok(version) = std::env::var("GPBACKUP_S3_PLUGIN_GLIBC")
        && !version.trim().is_empty()
    {
        return format!("{} or newer (portable build)", version.trim());
    }
    let host = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().trim_start_matches("glibc ").to_string());
    match host {
        Some(v) if !v.is_empty() => format!("{v} or newer, the build host's (not a portable build: see make dist)"),
        _ => "unknown (not a portable build: see make dist)".to_string(),
    }
}
