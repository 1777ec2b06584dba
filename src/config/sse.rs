//! Server-side encryption options: `server_side_encryption`,
//! `sse_kms_key_id`, `sse_bucket_key` and `sse_customer_key_file`, checked
//! together, and the SSE-C key file.

use std::fmt;

use base64::Engine as _;
use md5::Digest as _;

use super::values::Values;

/// Server-side encryption of what the plugin writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Whatever the bucket does by default.
    BucketDefault,
    /// SSE-S3 (`AES256`).
    S3Managed,
    /// SSE-KMS (`aws:kms`, or `aws:kms:dsse` for dual-layer).
    Kms { key_id: Option<String>, bucket_key: Option<bool>, dual_layer: bool },
    /// SSE-C: the key travels with every request that writes or reads data.
    Customer(CustomerKey),
}

/// An SSE-C key as S3 wants it. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    /// The file it was read from (for messages).
    pub file: String,
    /// base64 of the 32-byte key.
    pub key_base64: String,
    /// base64 of the key's MD5 (S3 checks it to catch a mangled key).
    pub key_md5_base64: String,
}

impl fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerKey")
            .field("file", &self.file)
            .field("key", &"<redacted>")
            .field("key_md5", &self.key_md5_base64)
            .finish()
    }
}

/// The encryption the options ask for; secrets found (the SSE-C key, in
/// both its forms) are added to `secrets`. With `password_encryption`'s
/// key, the SSE-C key file holds the key sealed.
pub fn parse(values: &mut Values, secrets: &mut Vec<String>, sealed_with: Option<&super::secrets::Key>) -> Encryption {
    let kms_key_id = values.given("sse_kms_key_id").map(str::to_string);
    let bucket_key = values.boolean("sse_bucket_key");
    let key_file = values.given("sse_customer_key_file").map(str::to_string);
    let mode = values.given("server_side_encryption").map(str::to_string);
    let kms = match mode.as_deref() {
        None => None,
        Some("AES256") => Some(false),
        Some("aws:kms") | Some("aws:kms:dsse") => Some(true),
        Some(_) => {
            values.problem("server_side_encryption must be AES256, aws:kms or aws:kms:dsse");
            None
        }
    };
    if kms != Some(true) {
        for (key, set) in [("sse_kms_key_id", kms_key_id.is_some()), ("sse_bucket_key", bucket_key.is_some())] {
            if set {
                values.problem(format!("{key} needs server_side_encryption: aws:kms"));
            }
        }
    }
    if let Some(file) = key_file {
        if mode.is_some() {
            values.problem("sse_customer_key_file (SSE-C) and server_side_encryption exclude each other; set only one");
        }
        return match read_customer_key(&file, sealed_with) {
            Ok((key, text)) => {
                secrets.push(key.key_base64.clone());
                secrets.extend(text);
                Encryption::Customer(key)
            }
            Err(why) => {
                values.problem(format!("sse_customer_key_file {file}: {why}"));
                Encryption::BucketDefault
            }
        };
    }
    match (mode, kms) {
        (Some(mode), Some(true)) => {
            Encryption::Kms { key_id: kms_key_id, bucket_key, dual_layer: mode == "aws:kms:dsse" }
        }
        (Some(_), Some(false)) => Encryption::S3Managed,
        _ => Encryption::BucketDefault,
    }
}

/// Reads an SSE-C key file: the raw 32-byte key, or its base64 (one line);
/// with `sealed_with`, either of them sealed by `encrypt-password`.
/// Returns the key and, when the file held text, that text (a secret too).
/// Messages never contain a byte of the file.
pub fn read_customer_key(
    file: &str,
    sealed_with: Option<&super::secrets::Key>,
) -> Result<(CustomerKey, Option<String>), String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot be read: {e}"))?;
    let sealed = std::str::from_utf8(&bytes).is_ok_and(super::secrets::is_sealed);
    let bytes = match sealed_with {
        Some(key) if sealed => key.open(std::str::from_utf8(&bytes).unwrap_or_default())?,
        Some(_) => {
            return Err("is not sealed but password_encryption is on: seal its contents with gpbackup_s3_plugin \
                        encrypt-password"
                .to_string());
        }
        None if sealed => return Err("is sealed, but password_encryption is not on".to_string()),
        None => bytes,
    };
    let (raw, text) = if bytes.len() == 32 {
        (bytes, None)
    } else {
        let text = std::str::from_utf8(&bytes).map(str::trim).unwrap_or_default();
        match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(raw) if raw.len() == 32 && !text.is_empty() => (raw, Some(text.to_string())),
            _ => {
                return Err(format!(
                    "must hold a 256-bit key: 32 raw bytes or their base64 (44 characters); it holds {} bytes",
                    bytes.len()
                ));
            }
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = CustomerKey {
        file: file.to_string(),
        key_base64: b64.encode(&raw),
        key_md5_base64: b64.encode(md5::Md5::digest(&raw)),
    };
    Ok((key, text))
}
