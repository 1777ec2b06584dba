//! `encrypt-password`: seals a secret for a config with
//! `password_encryption: on`, with the key gpbackup hands to every host
//! (the plugin's entry of `$COORDINATOR_DATA_DIRECTORY/.encrypt`, created
//! here when missing). The secret comes from stdin, never argv (which every
//! user of the host can read in `ps`); the sealed form goes to stdout, the
//! notes to stderr.

use std::io::{Read as _, Write as _};
use std::path::Path;

use crate::config::secrets;
use crate::error::{Error, Result};

/// The most a secret may be (an SSE-C key file is 44 bytes).
const MAX_SECRET: u64 = 64 * 1024;

pub fn run(key_file: Option<&Path>, raw: bool) -> Result<()> {
    let path = match key_file {
        Some(path) => path.to_path_buf(),
        None => secrets::default_key_file().ok_or_else(|| {
            Error::usage(
                "encrypt-password: COORDINATOR_DATA_DIRECTORY is not set (gpbackup reads the key from its .encrypt); \
                 source greenplum_path.sh and set it, or give --key-file",
            )
        })?,
    };
    let name = secrets::plugin_name();
    let secret = read_secret(raw)?;
    let (key, created) =
        secrets::ensure_key(&path, &name).map_err(|why| Error::local(format!("encrypt-password: {why}")))?;
    let sealed = key.seal(&secret).map_err(|why| Error::local(format!("encrypt-password: {why}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{sealed}").and_then(|_| out.flush()).map_err(|e| Error::io("writing to stdout", e))?;
    let shown = path.display();
    let what = match created {
        true => format!("created the entry {name} of {shown} (mode 0600)"),
        false => format!("used the entry {name} of {shown}"),
    };
    eprintln!("{what}; gpbackup adds it to every host's config copy when the config says password_encryption: \"on\"");
    Ok(())
}

/// The secret from stdin: everything (one line from a terminal, not
/// echoed), less one trailing newline unless `raw`.
fn read_secret(raw: bool) -> Result<Vec<u8>> {
    let mut secret = Vec::new();
    if unsafe { libc::isatty(0) } == 1 {
        eprint!("secret (not echoed): ");
        let quiet = Echo::off();
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line);
        drop(quiet);
        read.map_err(|e| Error::io("reading the terminal", e))?;
        secret = line.into_bytes();
    } else {
        std::io::stdin().take(MAX_SECRET + 1).read_to_end(&mut secret).map_err(|e| Error::io("reading stdin", e))?;
    }
    if secret.len() as u64 > MAX_SECRET {
        return Err(Error::usage(format!("encrypt-password: the secret on stdin is longer than {MAX_SECRET} bytes")));
    }
    if !raw {
        if secret.ends_with(b"\r\n") {
            secret.truncate(secret.len() - 2);
        } else if secret.ends_with(b"\n") {
            secret.truncate(secret.len() - 1);
        }
    }
    if secret.is_empty() {
        return Err(Error::usage("encrypt-password: the secret on stdin is empty"));
    }
    Ok(secret)
}

/// The terminal's echo, off while it lives.
struct Echo(Option<libc::termios>);

impl Echo {
    fn off() -> Echo {
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return Echo(None);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &quiet) };
        Echo(Some(saved))
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            unsafe { libc::tcsetattr(0, libc::TCSANOW, saved) };
            eprintln!();
        }
    }
}
