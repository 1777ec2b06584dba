//! Client-side encryption options: `encryption_recipients` (age public
//! keys, or files of them: what a backup needs) and
//! `encryption_identity_file` (the private keys: what a restore needs),
//! checked here so that a malformed key stops the first hook, not a data
//! stream. The identities are secrets: `Debug` never shows them and they
//! are registered for redaction.

use std::fmt;

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
        match std::fs::read_to_string(&file) {
            Ok(text) => {
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
            Err(e) => values.problem_with(
                "encryption_identity_file",
                format!("encryption_identity_file {file} cannot be read: {e}"),
            ),
        }
        out.identity_file = Some(file);
    }
    out
}

/// The lines of a key file that hold a key, numbered from 1 (blank lines
/// and `#` comments are skipped, as age does).
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

fn check_recipient(key: &str) -> Result<(), String> {
    key.parse::<age::x25519::Recipient>().map(|_| ()).map_err(|_| format!("{key} is not a valid age X25519 public key"))
}
