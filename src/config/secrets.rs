//! Encrypted credentials: gpbackup's `password_encryption` hook, so that
//! the config file people copy around and check in holds no plaintext
//! secret.
//!
//! With `password_encryption: on`, gpbackup reads the YAML map in
//! `$COORDINATOR_DATA_DIRECTORY/.encrypt`, takes the entry named after the
//! plugin (the first token of `--version`) and adds it, under that name, to
//! every host's copy of the config. `encrypt-password` creates that entry (a
//! random 256-bit key, base64) and prints a secret sealed with it:
//! `gpbs3enc1:` + base64(24-byte nonce | XChaCha20-Poly1305 ciphertext and
//! tag). Here the sealed values of `aws_secret_access_key`,
//! `aws_session_token` and the SSE-C key file are opened again.
//!
//! What this does not protect: every host's config copy holds the key next
//! to the sealed values (gpbackup removes the copies after the run), and so
//! does `.encrypt` on the coordinator. Nothing here ever names a byte of a
//! secret or of the key in a message.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::values::Values;

/// How a sealed value starts.
pub const PREFIX: &str = "gpbs3enc1:";
/// gpbackup's name for the key file in the coordinator's data directory.
pub const KEY_FILE: &str = ".encrypt";
/// Bound to every sealed value: a value sealed by something else with the
/// same key does not open here.
const AAD: &[u8] = b"gpbackup_s3_plugin password_encryption v1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The options whose values may be sealed (the SSE-C key file's contents
/// are handled by `sse`).
pub const SEALED_OPTIONS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

/// A key of `.encrypt`: 32 bytes.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        // Best effort: the process is short-lived, but core dumps are not.
        self.0.iter_mut().for_each(|b| unsafe { std::ptr::write_volatile(b, 0) });
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Key {
    /// A new random key.
    pub fn generate() -> Result<Key, String> {
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| format!("no random numbers from the system: {e}"))?;
        Ok(Key(bytes))
    }

    /// The key as `.encrypt` holds it (base64 of the 32 bytes).
    pub fn parse(text: &str) -> Result<Key, String> {
        match b64().decode(text.trim()) {
            Ok(raw) if raw.len() == 32 => {
                let mut bytes = [0u8; 32];
                bytes.copy_from_slice(&raw);
                Ok(Key(bytes))
            }
            _ => Err("is not a key written by encrypt-password (base64 of 32 bytes)".to_string()),
        }
    }

    /// The form `.encrypt` holds.
    pub fn encode(&self) -> String {
        b64().encode(self.0)
    }

    /// `secret` sealed: [`PREFIX`] and base64 of nonce, ciphertext and tag.
    pub fn seal(&self, secret: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| format!("no random numbers from the system: {e}"))?;
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret, aad: AAD })
            .map_err(|_| "encryption failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(format!("{PREFIX}{}", b64().encode(out)))
    }

    /// A sealed value opened; the error never quotes the value.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, String> {
        let body = sealed.trim().strip_prefix(PREFIX).ok_or_else(|| format!("is not sealed (no {PREFIX} prefix)"))?;
        let raw = b64().decode(body).map_err(|_| "is damaged (not base64 after the prefix)".to_string())?;
        if raw.len() < NONCE_LEN + TAG_LEN {
            return Err("is damaged (too short)".to_string());
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: AAD })
            .map_err(|_| "does not open with this key (sealed with another key, or altered)".to_string())
    }
}

/// Whether a value is in the sealed form.
pub fn is_sealed(text: &str) -> bool {
    text.trim().starts_with(PREFIX)
}

/// The plugin's name as gpbackup takes it: the first token of `--version`,
/// the executable's own file name (so a renamed copy has its own entry).
pub fn plugin_name() -> String {
    std::env::args_os()
        .next()
        .as_deref()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| !name.is_empty() && !name.contains(' '))
        .unwrap_or_else(|| crate::PLUGIN_NAME.to_string())
}

/// `$COORDINATOR_DATA_DIRECTORY/.encrypt` (`$MASTER_DATA_DIRECTORY` on
/// Greenplum 6), where gpbackup looks.
pub fn default_key_file() -> Option<PathBuf> {
    ["COORDINATOR_DATA_DIRECTORY", "MASTER_DATA_DIRECTORY"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|dir| !dir.is_empty())
        .map(|dir| PathBuf::from(dir).join(KEY_FILE))
}

/// The entries of a key file (a YAML map of names to keys, as gpbackup
/// reads it); a missing file has none. Errors quote nothing of the file.
pub fn read_key_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("{} cannot be read: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    super::yaml::guard(&text, 1 << 20).map_err(|why| format!("{} is {why}", path.display()))?;
    serde_yaml::from_str(&text)
        .map_err(|_| format!("{} is not a YAML map of plugin names to keys; it was left as it is", path.display()))
}

/// The key of `name` in the key file at `path`, created (with the file,
/// mode 0600) when missing; other entries are kept. Returns the key and
/// whether it is new.
pub fn ensure_key(path: &Path, name: &str) -> Result<(Key, bool), String> {
    let mut entries = read_key_file(path)?;
    if let Some(existing) = entries.get(name) {
        let key = Key::parse(existing).map_err(|why| format!("the entry {name} of {} {why}", path.display()))?;
        return Ok((key, false));
    }
    let key = Key::generate()?;
    entries.insert(name.to_string(), key.encode());
    let text = serde_yaml::to_string(&entries).map_err(|e| e.to_string())?;
    // Written beside it and renamed over it: never a half-written key file.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let temp = dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("{} cannot be written: {e}", path.display())
    })?;
    Ok((key, true))
}

/// With `password_encryption: on`: the key gpbackup injected (or, for a
/// command run by hand on the coordinator, the entry of `.encrypt`), and
/// the sealed options replaced by their plaintext. Sealed and opened values
/// both go to `secrets`. Without it, a sealed value is a problem (it would
/// be sent as it is and refused by the server).
pub fn open_sealed(values: &mut Values, secrets: &mut Vec<String>) -> Option<Key> {
    if values.given("password_encryption") != Some("on") {
        for option in SEALED_OPTIONS {
            if values.given(option).is_some_and(is_sealed) {
                values.problem_with(
                    option,
                    format!("{option} is sealed ({PREFIX}...), but password_encryption is not on: set password_encryption: \"on\""),
                );
            }
        }
        return None;
    }
    let key = match values.given(crate::PLUGIN_NAME).map(str::to_string) {
        Some(text) => Key::parse(&text).map_err(|why| {
            format!("password_encryption: the key gpbackup added to the config ({}) {why}", crate::PLUGIN_NAME)
        }),
        None => match default_key_file() {
            None => Err(format!(
                "password_encryption is on, but the config holds no key ({} is added by gpbackup from \
                 $COORDINATOR_DATA_DIRECTORY/{KEY_FILE}) and COORDINATOR_DATA_DIRECTORY is not set",
                crate::PLUGIN_NAME
            )),
            Some(path) => read_key_file(&path).and_then(|entries| match entries.get(&plugin_name()) {
                Some(text) => {
                    secrets.push(text.clone());
                    Key::parse(text)
                        .map_err(|why| format!("password_encryption: the entry of {} {why}", path.display()))
                }
                None => Err(format!(
                    "password_encryption is on, but {} has no entry {} (run gpbackup_s3_plugin encrypt-password)",
                    path.display(),
                    plugin_name()
                )),
            }),
        },
    };
    let key = match key {
        Ok(key) => key,
        Err(why) => {
            values.problem_with("password_encryption", why);
            return None;
        }
    };
    for option in SEALED_OPTIONS {
        let Some(sealed) = values.given(option).map(str::to_string) else { continue };
        secrets.push(sealed.clone());
        if !is_sealed(&sealed) {
            values.problem_with(
                option,
                format!(
                    "{option} is not sealed but password_encryption is on: seal it with gpbackup_s3_plugin \
                     encrypt-password"
                ),
            );
            continue;
        }
        match key.open(&sealed).map(String::from_utf8) {
            Ok(Ok(plain)) => {
                secrets.push(plain.clone());
                values.set(option, plain);
            }
            Ok(Err(_)) => values.problem_with(option, format!("{option}: the sealed value is not text")),
            Err(why) => values.problem_with(option, format!("{option} {why}")),
        }
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let key = Key::generate().unwrap();
        let sealed = key.seal(b"wJalrXUtnFEMI/K7MDENG").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("wJalr"));
        assert_eq!(key.open(&sealed).unwrap(), b"wJalrXUtnFEMI/K7MDENG");
        // Two seals of one secret differ (random nonces).
        assert_ne!(sealed, key.seal(b"wJalrXUtnFEMI/K7MDENG").unwrap());
        // Another key, a flipped character, a cut value: refused, quoting nothing.
        let other = Key::generate().unwrap();
        assert!(other.open(&sealed).unwrap_err().contains("another key"));
        let mut bytes = sealed.clone().into_bytes();
        let at = PREFIX.len() + 40;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        assert!(key.open(&String::from_utf8(bytes).unwrap()).is_err());
        assert!(key.open(&sealed[..PREFIX.len() + 20]).unwrap_err().contains("damaged"));
        assert!(key.open("plain").unwrap_err().contains("not sealed"));
        // The key round-trips through its text form.
        assert_eq!(Key::parse(&key.encode()).unwrap().open(&sealed).unwrap(), b"wJalrXUtnFEMI/K7MDENG");
        assert!(Key::parse("short").is_err());
        assert_eq!(format!("{key:?}"), "Key(<redacted>)");
    }

    #[test]
    fn key_file_created_once_other_entries_kept() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::write(&path, "gpbackup_ddboost_plugin: ddkey\n").unwrap();
        let (first, created) = ensure_key(&path, "gpbackup_s3_plugin").unwrap();
        assert!(created);
        let (again, created) = ensure_key(&path, "gpbackup_s3_plugin").unwrap();
        assert!(!created);
        assert_eq!(first.encode(), again.encode());
        let entries = read_key_file(&path).unwrap();
        assert_eq!(entries.get("gpbackup_ddboost_plugin").map(String::as_str), Some("ddkey"));
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        // A file that is not a map is left alone.
        std::fs::write(&path, "- a list\n").unwrap();
        let err = ensure_key(&path, "gpbackup_s3_plugin").unwrap_err();
        assert!(err.contains("left as it is"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "- a list\n");
    }
}
