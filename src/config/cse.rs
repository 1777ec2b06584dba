//! Client-side encryption options: `encryption_recipients` (age public
//! keys, or files of them: what a backup needs) and
//! `encryption_identity_file` (the private keys: what a restore needs),
//! and writer authentication: `encryption_signing_key_file` (an Ed25519
//! private key, PKCS#8 PEM as `openssl genpkey -algorithm ed25519` writes
//! it: on the backup hosts) and `encryption_verify_key` (its public half:
//! where restores run). Checked here so that a malformed key stops the
//! first hook, not a data stream; a private key file that its group or
//! others may read is refused, as ssh refuses one. The private keys are
//! secrets: `Debug` never shows them and they are registered for
//! redaction.

use std::fmt;
use std::os::unix::fs::PermissionsExt;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};

/// The age keys of a config. Backups encrypt to every recipient; restores
/// try every identity.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ClientEncryption {
    /// `age1...` X25519 public keys.
    pub recipients: Vec<String>,
    /// `AGE-SECRET-KEY-1...` X25519 private keys (secrets).
    pub identities: Vec<String>,
    /// The file the identities came from (for messages).
    pub identity_file: Option<String>,
    /// The Ed25519 signing key's 32-byte seed (a secret).
    pub signing_key: Option<[u8; 32]>,
    /// Ed25519 public keys a restored object's signature must verify with.
    pub verify_keys: Vec<[u8; 32]>,
}

impl ClientEncryption {
    /// Whether anything is configured (a backup encrypts, a restore decrypts).
    pub fn is_on(&self) -> bool {
        !self.recipients.is_empty() || self.identity_file.is_some()
    }
}

impl fmt::Debug for ClientEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientEncryption")
            .field("recipients", &self.recipients)
            .field("identities", &format!("<{} redacted>", self.identities.len()))
            .field("identity_file", &self.identity_file)
            .field("signing_key", &self.signing_key.map(|_| "<redacted>"))
            .field("verify_keys", &self.verify_keys.len())
            .finish()
    }
}

/// Reads the two options; problems name the option (and a line number),
/// never a private key.
pub fn parse(values: &mut super::values::Values, secrets: &mut Vec<String>) -> ClientEncryption {
    let mut out = ClientEncryption::default();
    if let Some(given) = values.given("encryption_recipients").map(str::to_string) {
        for item in given.split([',', ' ', '\t', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
            if item.starts_with("age1") {
                match check_recipient(item) {
                    Ok(()) => out.recipients.push(item.to_string()),
                    Err(why) => values.problem_with("encryption_recipients", format!("encryption_recipients: {why}")),
                }
                continue;
            }
            match std::fs::read_to_string(item) {
                Ok(text) => {
                    for (n, line) in key_lines(&text) {
                        match check_recipient(line) {
                            Ok(()) => out.recipients.push(line.to_string()),
                            Err(why) => values.problem_with(
                                "encryption_recipients",
                                format!("encryption_recipients file {item}, line {n}: {why}"),
                            ),
                        }
                    }
                }
                Err(e) => values.problem_with(
                    "encryption_recipients",
                    format!(
                        "encryption_recipients: {item} is neither an age public key (age1...) nor a readable file: {e}"
                    ),
                ),
            }
        }
        if out.recipients.is_empty() && !values.problems.iter().any(|(k, _)| *k == Some("encryption_recipients")) {
            values.problem_with("encryption_recipients", "encryption_recipients names no public key");
        }
    }
    if let Some(file) = values.given("encryption_identity_file").map(str::to_string) {
        match private_file(&file, "encryption_identity_file") {
            Err(why) => values.problem_with("encryption_identity_file", why),
            Ok(()) => identities(values, secrets, &file, &mut out),
        }
        out.identity_file = Some(file);
    }
    if let Some(file) = values.given("encryption_signing_key_file").map(str::to_string) {
        match private_file(&file, "encryption_signing_key_file").and_then(|()| signing_key(&file, secrets)) {
            Ok(seed) => out.signing_key = Some(seed),
            Err(why) => values.problem_with("encryption_signing_key_file", why),
        }
        if values.given("encryption_recipients").is_none() {
            values.problem_with(
                "encryption_signing_key_file",
                "encryption_signing_key_file signs encrypted objects: set encryption_recipients too",
            );
        }
    }
    if let Some(given) = values.given("encryption_verify_key").map(str::to_string) {
        for item in given.split([',', ' ', '\t', '\n']).map(str::trim).filter(|s| !s.is_empty()) {
            match verify_key(item) {
                Ok(key) => out.verify_keys.push(key),
                Err(why) => values.problem_with("encryption_verify_key", format!("encryption_verify_key: {why}")),
            }
        }
        if out.identity_file.is_none() {
            values.problem_with(
                "encryption_verify_key",
                "encryption_verify_key checks signatures inside the encrypted header: set encryption_identity_file too",
            );
        }
    }
    out
}

/// Refuses a private key file that its group or others may read or write
/// (ssh's rule), naming it and its mode. A file that cannot be looked at
/// is left to the read that follows, which says why.
fn private_file(file: &str, option: &str) -> Result<(), String> {
    let Ok(meta) = std::fs::metadata(file) else { return Ok(()) };
    let mode = meta.permissions().mode() & 0o777;
    let who = match mode {
        m if m & 0o004 != 0 => "readable by others",
        m if m & 0o040 != 0 => "readable by its group",
        m if m & 0o002 != 0 => "writable by others",
        m if m & 0o077 != 0 => "open to its group",
        _ => return Ok(()),
    };
    Err(format!("{option} {file} is {who} (mode {mode:04o}); chmod 600 it"))
}

/// The age private keys of `file`, into `out`.
fn identities(values: &mut super::values::Values, secrets: &mut Vec<String>, file: &str, out: &mut ClientEncryption) {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            let why = format!("encryption_identity_file {file} cannot be read: {e}");
            return values.problem_with("encryption_identity_file", why);
        }
    };
    for (n, line) in key_lines(&text) {
        secrets.push(line.to_string());
        if line.parse::<age::x25519::Identity>().is_ok() {
            out.identities.push(line.to_string());
        } else {
            values.problem_with(
                "encryption_identity_file",
                format!("encryption_identity_file {file}, line {n}: not an age private key (AGE-SECRET-KEY-1...)"),
            );
        }
    }
    if out.identities.is_empty() {
        values.problem_with(
            "encryption_identity_file",
            format!("encryption_identity_file {file} holds no age private key"),
        );
    }
}

/// The seed of the Ed25519 key in `file` (PKCS#8 PEM); its base64 lines
/// are registered as secrets.
fn signing_key(file: &str, secrets: &mut Vec<String>) -> Result<[u8; 32], String> {
    let text =
        std::fs::read_to_string(file).map_err(|e| format!("encryption_signing_key_file {file} cannot be read: {e}"))?;
    secrets.extend(text.lines().map(str::trim).filter(|l| l.len() > 8 && !l.starts_with("-----")).map(str::to_string));
    let key = ed25519_dalek::SigningKey::from_pkcs8_pem(&text).map_err(|_| {
        format!(
            "encryption_signing_key_file {file} is not an Ed25519 private key in PKCS#8 PEM (make one with `openssl \
             genpkey -algorithm ed25519 -out FILE`)"
        )
    })?;
    Ok(key.to_bytes())
}

/// An Ed25519 public key: the base64 line of its PEM (`MCowBQYDK2VwAyEA...`,
/// as `openssl pkey -pubout` prints it) or a file holding that PEM.
fn verify_key(item: &str) -> Result<[u8; 32], String> {
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD.decode(item).ok();
    let parsed = if let Some(der) = der.filter(|_| item.starts_with("MC")) {
        ed25519_dalek::VerifyingKey::from_public_key_der(&der).ok()
    } else {
        let text = std::fs::read_to_string(item).map_err(|e| {
            format!("{item} is neither an Ed25519 public key (MCowBQYDK2VwAyEA...) nor a readable file: {e}")
        })?;
        ed25519_dalek::VerifyingKey::from_public_key_pem(&text).ok()
    };
    parsed.map(|k| k.to_bytes()).ok_or_else(|| {
        format!("{item} is not an Ed25519 public key (the line of `openssl pkey -pubout`, or a file of its PEM)")
    })
}

/// The lines of a key file that hold a key, numbered from 1 (blank lines
/// and `#` comments are skipped, as age does).
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn check_recipient(key: &str) -> Result<(), String> {
    key.parse::<age::x25519::Recipient>().map(|_| ()).map_err(|_| format!("{key} is not a valid age X25519 public key"))
}
