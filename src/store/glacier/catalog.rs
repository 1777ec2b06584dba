//! The catalog of a Glacier vault backup: which archive holds which key.
//!
//! A vault knows archives only by opaque ids, and lists them only through an
//! inventory that is a day old and takes hours to fetch. So every archive
//! gets a small JSON entry in the bucket, at `<key>.gpbackup_vault`, right
//! beside the backup it belongs to: written by the `backup_data` process
//! that uploaded it (one object per key: segments on many hosts never write
//! the same object), only once the archive exists, and deleted only after
//! the archive is. `thaw` adds the retrieval job to it; a delete refused by
//! the vault's lock policy marks it for `purge`.
//!
//! Should the bucket be lost, each archive's description carries the key,
//! the integrity record and the upload's nonce, so `rebuild-catalog` can
//! write the entries again from a vault inventory.
//!
//! Besides the current entry of a key there are tagged entries (see
//! [`crate::layout::EntryTag`]): an *intent*, written before an archive is
//! completed and removed once the current entry names it, so an upload
//! interrupted at any moment is found and finished or undone; and a
//! *retired* entry, naming an archive a newer one replaced whose delete a
//! retention lock refused, kept for `purge`. Every archive is named by
//! exactly one entry.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::VaultSettings;
use crate::error::{Error, Result};
use crate::store::Metadata;
/// What every description this plugin writes starts with (printable ASCII,
/// never a leading space: Glacier strips those).
pub const DESCRIPTION_PREFIX: &str = "gpbkp1 ";
/// Glacier's limit on archive descriptions.
pub const MAX_DESCRIPTION: usize = 1024;
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub format: u32,
    pub key: String,
    pub vault: String,
    pub region: String,
    pub account_id: String,
    /// `None` for an empty payload: Glacier refuses empty archives, so an
    /// empty stream is only this entry.
    pub archive_id: Option<String>,
    pub size: u64,
    /// SHA-256 tree hash of the whole archive, lowercase hex.
    pub tree_hash: String,
    /// 0 for a single-request upload.
    pub part_size: u64,
    /// RFC 3339, UTC.
    pub uploaded_at: String,
    pub description: String,
    /// The integrity record the engine stored with the payload.
    #[serde(default)]
    pub metadata: Vec<(String, String)>,
    pub plugin_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<Retrieval>,
    /// Set when a delete was refused by the vault's lock policy and deferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_requested_at: Option<String>,
    /// Set in an intent entry: the upload it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
}

/// An upload whose archive may exist before any current entry names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The upload's nonce, also in the archive's description.
    pub nonce: String,
    /// The multipart upload: completing it again (an idempotent request)
    /// gives the archive's id. `None` for a single-request upload, whose
    /// archive only an inventory can find.
    pub upload_id: Option<String>,
    /// The archive the upload replaces, if the key had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// A single-request upload was sent more than once: archives of this
    /// nonce other than the one named may exist (an inventory finds them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicates_possible: bool,
}

/// The archive-retrieval job that makes the archive readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrieval {
    pub job_id: String,
    pub tier: String,
    pub requested_at: String,
}

impl Entry {
    pub fn to_json(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec_pretty(self).expect("a catalog entry always serialises");
        text.push(b'\n');
        text
    }

    pub fn parse(data: &[u8], url: &str) -> Result<Entry> {
        let entry: Entry = serde_json::from_slice(data)
            .map_err(|e| Error::integrity(format!("catalog entry {url} is damaged: {e}")))?;
        if entry.format != FORMAT {
            return Err(Error::integrity(format!(
                "catalog entry {url} has format {} (this plugin reads format {FORMAT})",
                entry.format
            )));
        }
        Ok(entry)
    }

    pub fn new(key: &str, vault: &VaultSettings, region: &str) -> Entry {
        Entry {
            format: FORMAT,
            key: key.to_string(),
            vault: vault.name.clone(),
            region: region.to_string(),
            account_id: vault.account_id.clone(),
            archive_id: None,
            size: 0,
            tree_hash: super::treehash::to_hex(&super::treehash::tree_hash(b"")),
            part_size: 0,
            uploaded_at: now(),
            description: String::new(),
            metadata: Vec::new(),
            plugin_version: env!("CARGO_PKG_VERSION").to_string(),
            retrieval: None,
            delete_requested_at: None,
            intent: None,
        }
    }

    /// The nonce of the upload that made this entry's archive, from its
    /// description.
    pub fn nonce(&self) -> Option<String> {
        parse_description(&self.description).and_then(|d| d.nonce)
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What a description carries: the key, the integrity record and the
/// upload's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Described {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "m", default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Metadata,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// `gpbkp1 <base64url(JSON)>`: printable ASCII, at most 1,024 characters.
/// The integrity record is dropped when it would not fit; a key too long
/// even alone is an error (the archive could never be named again).
pub fn describe(key: &str, metadata: &Metadata, nonce: &str) -> Result<String> {
    let encode = |d: &Described| {
        let json = serde_json::to_vec(d).expect("a description always serialises");
        format!("{DESCRIPTION_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json))
    };
    let nonce = Some(nonce.to_string());
    let full = encode(&Described { key: key.to_string(), metadata: metadata.clone(), nonce: nonce.clone() });
    if full.len() <= MAX_DESCRIPTION {
        return Ok(full);
    }
    let bare = encode(&Described { key: key.to_string(), metadata: Vec::new(), nonce });
    if bare.len() <= MAX_DESCRIPTION {
        return Ok(bare);
    }
    Err(Error::local(format!(
        "key {key} is too long to be recorded in a Glacier archive description ({MAX_DESCRIPTION} characters); \
         use a shorter folder"
    )))
}

/// The key and record of a description this plugin wrote; `None` for any
/// other archive.
pub fn parse_description(text: &str) -> Option<Described> {
    let encoded = text.trim().strip_prefix(DESCRIPTION_PREFIX.trim_end())?.trim_start();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded).ok()?;
    serde_json::from_slice(&json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_round_trip_and_stay_printable() {
        let key = "gp/backups/20250101/20250101010101/gpbackup_3_20250101010101_17000.gz";
        let meta = vec![("gpbackup-integrity".to_string(), "v1 size=5 crc64nvme=0123456789abcdef".to_string())];
        let text = describe(key, &meta, "0123456789abcdef").unwrap();
        assert!(text.starts_with(DESCRIPTION_PREFIX));
        assert!(text.len() <= MAX_DESCRIPTION);
        assert!(text.bytes().all(|b| (0x20..=0x7e).contains(&b)));
        let nonce = Some("0123456789abcdef".to_string());
        assert_eq!(parse_description(&text), Some(Described { key: key.to_string(), metadata: meta, nonce }));
        // Glacier strips leading spaces; other tools' descriptions are not ours.
        assert!(parse_description(&format!("  {text}")).is_some());
        assert_eq!(parse_description("bkp_test_dir.tar.gz"), None);
        assert_eq!(parse_description("gpbkp1 !!!"), None);
    }

    #[test]
    fn long_keys_drop_the_record_then_fail() {
        let meta = vec![("gpbackup-integrity".to_string(), "x".repeat(300))];
        let long = "k".repeat(600);
        let text = describe(&long, &meta, "0123456789abcdef").unwrap();
        assert!(text.len() <= MAX_DESCRIPTION);
        assert_eq!(parse_description(&text).unwrap().metadata, Vec::new());
        let err = describe(&"k".repeat(800), &meta, "0123456789abcdef").unwrap_err().to_string();
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn catalog_round_trip() {
        let vault = VaultSettings { name: "v1".into(), account_id: "-".into(), endpoint: None, part_size: 1 << 24 };
        let mut entry = Entry::new("f/k", &vault, "us-east-1");
        entry.archive_id = Some("abc-_123".into());
        entry.size = 42;
        entry.retrieval =
            Some(Retrieval { job_id: "j1".into(), tier: "Bulk".into(), requested_at: "2026-01-01T00:00:00Z".into() });
        let parsed = Entry::parse(&entry.to_json(), "s3://b/f/k.gpbackup_vault").unwrap();
        assert_eq!(parsed, entry);
        let err = Entry::parse(b"{", "s3://b/x").unwrap_err().to_string();
        assert!(err.contains("s3://b/x is damaged"), "{err}");
        let mut future = entry.clone();
        future.format = 9;
        assert!(Entry::parse(&future.to_json(), "u").unwrap_err().to_string().contains("format 9"));
    }
}
