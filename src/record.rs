//! The integrity record: the user metadata `gpbackup-integrity` every
//! object the plugin writes carries, saying how a restore proves its bytes
//! (see `engine::integrity` for the proof itself):
//!
//! - `v1 size=<bytes> crc64nvme=<hex>`: an object stored in one request;
//! - `v1 manifest id=<16 hex>`: a multipart object, whose parts' CRCs are in
//!   the manifest of that upload (`<key>.<id>.gpbackup_manifest`, see
//!   [`crate::layout::manifest_key_of`]); `v1 manifest` without an id, from
//!   earlier releases, names `<key>.gpbackup_manifest`.
//!
//! A leaf: the engine writes and checks records, a vault store keeps them in
//! its catalog and finds the manifest a record names.

use crate::error::Error;

/// The user-metadata key (sent as `x-amz-meta-gpbackup-integrity`).
pub const META_KEY: &str = "gpbackup-integrity";

/// What an object's metadata says about its integrity record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// No record: restore with length checks only.
    None,
    Single {
        size: u64,
        crc: u64,
    },
    Manifest {
        /// The upload's id, which names the manifest; `None` for records of
        /// earlier releases.
        id: Option<String>,
    },
}

impl Record {
    pub fn single(size: u64, crc: u64) -> String {
        format!("v1 size={size} crc64nvme={crc:016x}")
    }

    pub fn manifest(id: &str) -> String {
        format!("v1 manifest id={id}")
    }

    /// Reads the metadata value; an unreadable one is an error, not `None`,
    /// so a damaged record can never switch verification off.
    pub fn parse(value: Option<&str>, url: &str) -> Result<Record, Error> {
        let Some(value) = value else { return Ok(Record::None) };
        let bad = || Error::integrity(format!("{url}: unreadable {META_KEY} metadata {value:?}"));
        let mut words = value.split_ascii_whitespace();
        if words.next() != Some("v1") {
            return Err(bad());
        }
        let rest: Vec<&str> = words.collect();
        match rest.as_slice() {
            ["manifest"] => return Ok(Record::Manifest { id: None }),
            ["manifest", id] => {
                let id = id.strip_prefix("id=").filter(|id| crate::layout::is_upload_id(id)).ok_or_else(bad)?;
                return Ok(Record::Manifest { id: Some(id.to_string()) });
            }
            _ => {}
        }
        let (mut size, mut crc) = (None, None);
        for word in rest {
            match word.split_once('=') {
                Some(("size", v)) => size = v.parse().ok(),
                Some(("crc64nvme", v)) => crc = u64::from_str_radix(v, 16).ok(),
                _ => return Err(bad()),
            }
        }
        match (size, crc) {
            (Some(size), Some(crc)) => Ok(Record::Single { size, crc }),
            _ => Err(bad()),
        }
    }

    /// The manifest key this record names for the object `key`, if any.
    pub fn manifest_key(&self, key: &str) -> Option<String> {
        match self {
            Record::Manifest { id } => Some(crate::layout::manifest_key_of(key, id.as_deref())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values() {
        assert_eq!(Record::parse(None, "u").unwrap(), Record::None);
        let v = Record::single(10, 0xabc);
        assert_eq!(Record::parse(Some(&v), "u").unwrap(), Record::Single { size: 10, crc: 0xabc });
        let id = "0123456789abcdef".to_string();
        assert_eq!(Record::parse(Some(&Record::manifest(&id)), "u").unwrap(), Record::Manifest { id: Some(id) });
        assert_eq!(Record::parse(Some("v1 manifest"), "u").unwrap(), Record::Manifest { id: None });
        for bad in ["", "v2 manifest", "v1", "v1 size=1", "v1 size=x crc64nvme=1", "v1 extra=1", "v1 manifest id=x"] {
            assert!(Record::parse(Some(bad), "u").is_err(), "{bad:?}");
        }
    }
}
