//! The seam between what gpbackup streams and what is stored: the place a
//! transform such as client-side encryption ([`super::crypt`]) goes.
//!
//! On the way up a transform wraps the source before it is cut into parts;
//! on the way down it wraps the writer the verified bytes go to, and maps a
//! filtered restore's plaintext ranges to the stored ranges that hold them
//! (after seeing the stored object's first bytes, when it asks for them).
//! [`Identity`] is what runs when nothing is configured: it hands back what
//! it was given, and only refuses to pass off an age-encrypted object as
//! plaintext. [`Stored`] hands back the stored bytes whatever they are,
//! for checks that read ciphertext without a key.

use std::io::{self, Read, Write};
use std::ops::Range;

use bytes::Bytes;

use crate::error::{Error, Result};

/// The stored ranges to fetch for a filtered restore, and where their
/// bytes go.
pub type Ranged = (Vec<Range<u64>>, Box<dyn Decoder>);

/// Where a restore's verified stored bytes go, a unit at a time: the
/// output itself, or a transform that takes each unit whole (decryption
/// hands them to its thread as they are, without a copy).
pub trait Decoder: Send {
    fn write(&mut self, data: Bytes) -> io::Result<()>;

    /// After the last unit: flushes the output, and returns the
    /// transform's failure, if any.
    fn finish(&mut self) -> io::Result<()>;
}

/// A writer taking the stored bytes as they are.
pub struct Writes<W>(pub W);

impl<W: Write + Send> Decoder for Writes<W> {
    fn write(&mut self, data: Bytes) -> io::Result<()> {
        self.0.write_all(&data)
    }

    fn finish(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The first bytes of a stored object and its size, fetched for a filtered
/// restore before its ranges are mapped.
pub struct Head {
    pub data: Bytes,
    pub total: u64,
}

/// The first line of every age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// What a successful decode proves of an object, beyond its stored
/// checksums (for `verify --deep`'s words).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proves {
    /// It was decrypted, every AEAD tag verified.
    pub decrypts: bool,
    /// It is bound to the place it was read from (no binding is refused).
    pub binding: bool,
    /// Its writer's signature verified.
    pub signature: bool,
}

/// A reversible transform of the stored bytes.
pub trait Transform: Send + Sync {
    /// What is stored at `key`, read from what gpbackup sends.
    fn encode(&self, key: &str, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>>;

    /// Where a whole restore's stored bytes go, writing what gpbackup reads
    /// to `out`, for an object whose key is not known (the catalog's reads).
    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>>;

    /// [`Self::decode`] of the object stored at `key`: a transform that
    /// binds objects to their keys refuses one written for another.
    fn decode_at(&self, _key: &str, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        self.decode(out)
    }

    /// For a filtered restore: how many bytes of the stored object's start
    /// it needs to see, having seen `seen` (asked again after each fetch,
    /// until it asks for no more than it has seen; 0: none).
    fn ranged_prefix(&self, seen: &[u8]) -> Result<u64>;

    /// For a filtered restore of plaintext `ranges` of the object at `key`:
    /// the stored ranges to fetch (in order) and where their bytes go,
    /// writing exactly the requested plaintext to `out`. `head` is what
    /// [`Self::ranged_prefix`] asked for.
    fn decode_ranges(
        &self,
        key: &str,
        ranges: &[Range<u64>],
        head: Option<Head>,
        out: Box<dyn Write + Send>,
    ) -> Result<Ranged>;

    /// User metadata every object written through it carries, saying how
    /// it is stored (none: as gpbackup sent it).
    fn metadata(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    /// Whether every object it decodes must carry the plugin's integrity
    /// record (objects it writes all do, and one without was not written
    /// by the plugin, or lost its metadata: `verify: available` lets it
    /// through).
    fn requires_record(&self) -> bool {
        false
    }

    /// What a successful decode proves.
    fn proves(&self) -> Proves {
        Proves::default()
    }
}

/// The user-metadata key that names the transform of an object's bytes
/// (`x-amz-meta-gpbackup-encryption: age`).
pub const ENCRYPTION_META: &str = "gpbackup-encryption";

/// No transform: stored bytes are the stream's bytes.
pub struct Identity;

impl Transform for Identity {
    fn encode(&self, _key: &str, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
        Ok(source)
    }

    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(Writes(PlainGuard { out, seen: Vec::new(), checked: false })))
    }

    fn ranged_prefix(&self, _seen: &[u8]) -> Result<u64> {
        Ok(AGE_MAGIC.len() as u64)
    }

    fn decode_ranges(
        &self,
        _key: &str,
        ranges: &[Range<u64>],
        head: Option<Head>,
        out: Box<dyn Write + Send>,
    ) -> Result<Ranged> {
        if head.is_some_and(|h| h.data.starts_with(AGE_MAGIC)) {
            return Err(encrypted());
        }
        Ok((ranges.to_vec(), Box::new(Writes(out))))
    }
}

/// The stored bytes as they are, encrypted or not: what `verify --deep`
/// reads where it has no key, checking the ciphertext against its
/// integrity record (never handed to a restore's output).
pub struct Stored;

impl Transform for Stored {
    fn encode(&self, _key: &str, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
        Ok(source)
    }

    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        Ok(Box::new(Writes(out)))
    }

    fn ranged_prefix(&self, _seen: &[u8]) -> Result<u64> {
        Ok(0)
    }

    fn decode_ranges(
        &self,
        _key: &str,
        ranges: &[Range<u64>],
        _head: Option<Head>,
        out: Box<dyn Write + Send>,
    ) -> Result<Ranged> {
        Ok((ranges.to_vec(), Box::new(Writes(out))))
    }
}

fn encrypted() -> Error {
    Error::config(
        "the object is encrypted (age format) and this restore has no private key to decrypt it with; nothing was written",
    )
}

/// Passes bytes through once their start is known not to be an age header:
/// ciphertext is never handed to gzip or COPY as if it were data.
struct PlainGuard {
    out: Box<dyn Write + Send>,
    seen: Vec<u8>,
    checked: bool,
}

impl PlainGuard {
    fn check(&mut self) -> std::io::Result<()> {
        self.checked = true;
        if self.seen.starts_with(AGE_MAGIC) {
            return Err(std::io::Error::other(encrypted()));
        }
        let seen = std::mem::take(&mut self.seen);
        self.out.write_all(&seen)
    }
}

impl Write for PlainGuard {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.checked {
            return self.out.write(buf);
        }
        let take = (AGE_MAGIC.len() - self.seen.len()).min(buf.len());
        self.seen.extend_from_slice(&buf[..take]);
        if self.seen.len() == AGE_MAGIC.len() {
            self.check()?;
        }
        Ok(take)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.checked {
            self.check()?;
        }
        self.out.flush()
    }
}
