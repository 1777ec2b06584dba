//! The seam between what gpbackup streams and what is stored: the place a
//! transform such as client-side encryption goes.
//!
//! On the way up a transform wraps the source before it is cut into parts;
//! on the way down it wraps the writer the verified bytes go to, and maps a
//! filtered restore's plaintext ranges to the stored ranges that hold them.
//! [`Identity`] is what runs when nothing is configured: it hands back what
//! it was given, so it costs nothing.

use std::io::{Read, Write};
use std::ops::Range;

use crate::error::Result;

/// The stored ranges to fetch for a filtered restore, and the writer their
/// bytes go to.
pub type Ranged = (Vec<Range<u64>>, Box<dyn Write + Send>);

/// A reversible transform of the stored bytes.
pub trait Transform: Send + Sync {
    /// What is stored, read from what gpbackup sends.
    fn encode(&self, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>>;

    /// Where a whole restore's stored bytes go, writing what gpbackup reads
    /// to `out`.
    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Write + Send>>;

    /// For a filtered restore of plaintext `ranges`: the stored ranges to
    /// fetch (in order) and where their bytes go, writing exactly the
    /// requested plaintext to `out`.
    fn decode_ranges(&self, ranges: &[Range<u64>], out: Box<dyn Write + Send>) -> Result<Ranged>;
}

/// No transform: stored bytes are the stream's bytes.
pub struct Identity;

impl Transform for Identity {
    fn encode(&self, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
        Ok(source)
    }

    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Write + Send>> {
        Ok(out)
    }

    fn decode_ranges(&self, ranges: &[Range<u64>], out: Box<dyn Write + Send>) -> Result<Ranged> {
        Ok((ranges.to_vec(), out))
    }
}
