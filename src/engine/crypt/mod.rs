//! Client-side encryption in the age format (age-encryption.org/v1, the
//! `age` crate): X25519 recipients in the header, then ChaCha20-Poly1305
//! STREAM in 64 KiB chunks, each authenticated by its own tag.
//!
//! Backups encrypt as the stream is read, 64 KiB at a time. Whole restores
//! decrypt on a thread fed by the (already CRC-checked) stored bytes; a
//! chunk's plaintext is written only once its tag has been verified, so a
//! wrong key, a damaged header or a tampered byte stops the output with
//! nothing of that chunk written. Filtered restores map each plaintext
//! range to the chunks holding it (chunk `i` is stored at `header + 16 + i
//! x (64 KiB + 16)`) and fetch only those, plus the last chunk when age
//! needs it to authenticate the length; age's own seekable reader then
//! decrypts them, over a reader that serves the header from memory and the
//! chunks as they arrive.

//!
//! Here: the keys and the [`Transform`]; `ranges` maps a filtered restore
//! onto the stored chunks, `stream` holds the readers and the thread
//! between the engine's units and age.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::mpsc::sync_channel;

use bytes::Bytes;

use super::transform::{AGE_MAGIC, Decoder, Head, Ranged, Transform};
use crate::error::{Error, Result};

mod ranges;
mod stream;

use ranges::{Map, Sparse};
use stream::{ChannelReader, Encrypting, Piped, Shared};

/// Plaintext bytes per STREAM chunk, and what a chunk takes stored.
pub const CHUNK: u64 = 64 * 1024;
pub const STORED_CHUNK: u64 = CHUNK + 16;
/// The first look at a header, and the largest header read.
const FIRST_PROBE: u64 = 4096;
const MAX_HEADER: u64 = 1 << 20;

/// Encryption to `recipients`, decryption with `identities`.
pub struct Age {
    recipients: Vec<age::x25519::Recipient>,
    identities: Vec<age::x25519::Identity>,
    /// What to say when a backup has no recipient or a restore no identity.
    no_recipient: String,
    no_identity: String,
}

impl Age {
    /// From the key strings the config checked; `no_recipient` and
    /// `no_identity` are the messages for a direction without keys.
    pub fn new(recipients: &[String], identities: &[String], no_recipient: &str, no_identity: &str) -> Result<Age> {
        let recipients = recipients
            .iter()
            .map(|r| r.parse().map_err(|_| Error::config(format!("{r} is not an age X25519 public key"))))
            .collect::<Result<Vec<_>>>()?;
        let identities = identities
            .iter()
            .map(|i| i.parse().map_err(|_| Error::config("an identity is not an age X25519 private key")))
            .collect::<Result<Vec<_>>>()?;
        Ok(Age { recipients, identities, no_recipient: no_recipient.into(), no_identity: no_identity.into() })
    }

    fn identities(&self) -> Result<Vec<age::x25519::Identity>> {
        if self.identities.is_empty() {
            return Err(Error::config(self.no_identity.clone()));
        }
        Ok(self.identities.clone())
    }

    /// Opens the header read from `input` with the identities.
    fn open<R: Read>(&self, input: R) -> Result<age::stream::StreamReader<R>> {
        let identities = self.identities()?;
        let decryptor = age::Decryptor::new(input).map_err(header_error)?;
        decryptor.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                let mine: Vec<String> = identities.iter().map(|i| i.to_public().to_string()).collect();
                Error::config(format!(
                    "the object is encrypted to other keys: no private key of this restore opens it (their public \
                     keys: {}); nothing was written",
                    mine.join(", ")
                ))
            }
            other => header_error(other),
        })
    }
}

fn header_error(e: age::DecryptError) -> Error {
    match e {
        age::DecryptError::Io(io) => decrypt_io(io),
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            Error::integrity("the object is not in the age format (not encrypted, or its header is damaged)")
        }
        other => Error::integrity(format!("the object's age header does not verify ({other}); nothing was written")),
    }
}

/// An error from age's reader: a chunk that does not authenticate, or a
/// stream cut short.
fn decrypt_io(e: io::Error) -> Error {
    if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        return Error::new(inner.kind(), inner.to_string());
    }
    match e.kind() {
        io::ErrorKind::UnexpectedEof => Error::integrity("the encrypted object ends early (truncated)"),
        io::ErrorKind::InvalidData => Error::integrity(format!(
            "the encrypted object does not authenticate ({e}): it was altered or is damaged; nothing of the \
             failing chunk was written"
        )),
        _ => Error::io("decrypting", e),
    }
}

impl Transform for Age {
    fn encode(&self, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
        if self.recipients.is_empty() {
            return Err(Error::config(self.no_recipient.clone()));
        }
        let encryptor = age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::config(format!("cannot encrypt to the configured recipients: {e}")))?;
        let buffer = Shared::default();
        let writer = encryptor.wrap_output(buffer.clone()).map_err(|e| Error::io("encrypting", e))?;
        Ok(Box::new(Encrypting { source, writer: Some(writer), buffer, pending: Vec::new(), at: 0, plain: Vec::new() }))
    }

    fn metadata(&self) -> Option<(&'static str, &'static str)> {
        Some((super::transform::ENCRYPTION_META, "age"))
    }

    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        let identities = self.identities()?;
        let me = Age { recipients: Vec::new(), identities, no_recipient: String::new(), no_identity: String::new() };
        Ok(Box::new(Piped::spawn(move |input| {
            let mut input = input;
            let mut magic = vec![0; AGE_MAGIC.len()];
            let got = read_full(&mut input, &mut magic).map_err(decrypt_io)?;
            if magic[..got] != AGE_MAGIC[..got] || got < AGE_MAGIC.len() {
                return Err(Error::integrity(
                    "the object is not encrypted (no age header) and this restore decrypts; nothing was written",
                ));
            }
            let reader = me.open(Cursor::new(magic).chain(input))?;
            pump(reader, out)
        })))
    }

    fn ranged_prefix(&self, seen: &[u8]) -> Result<u64> {
        if seen.is_empty() {
            return Ok(FIRST_PROBE);
        }
        match age::Decryptor::new(Cursor::new(seen)) {
            Err(age::DecryptError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let more = seen.len() as u64 * 4;
                if more > MAX_HEADER {
                    return Err(Error::integrity(format!("the object's age header is larger than {MAX_HEADER} bytes")));
                }
                Ok(more)
            }
            _ => Ok(seen.len() as u64),
        }
    }

    fn decode_ranges(&self, ranges: &[Range<u64>], head: Option<Head>, out: Box<dyn Write + Send>) -> Result<Ranged> {
        let head = head.ok_or_else(|| Error::local("a filtered restore of an encrypted object needs its header"))?;
        if !head.data.starts_with(AGE_MAGIC) {
            return Err(Error::integrity(
                "the object is not encrypted (no age header) and this restore decrypts; nothing was written",
            ));
        }
        let mut cursor = Cursor::new(&head.data[..]);
        age::Decryptor::new(&mut cursor).map_err(header_error)?;
        let start = cursor.position();
        let map = Map::new(start, head.total, ranges)?;
        let (tx, rx) = sync_channel::<Bytes>(0);
        let sparse = Sparse {
            prefix: head.data.slice(..start as usize),
            last_range: map.needs_last.then(|| map.last.clone()),
            last: None,
            segments: map.segments.iter().cloned().collect(),
            cursor: None,
            input: ChannelReader { rx, current: Bytes::new() },
            pos: 0,
            total: head.total,
        };
        // The identities are tried now, before anything is fetched.
        let mut reader = self.open(sparse)?;
        let mut stored = Vec::new();
        if map.needs_last {
            stored.push(map.last.clone());
        }
        stored.extend(map.segments.iter().cloned());
        let ranges = ranges.to_vec();
        let piped = Piped::start(tx, move || {
            let mut out = out;
            let mut pos = 0u64;
            for r in ranges.iter().filter(|r| r.start < r.end) {
                if r.start != pos {
                    reader.seek(SeekFrom::Start(r.start)).map_err(decrypt_io)?;
                }
                let len = r.end - r.start;
                let copied = copy(&mut (&mut reader).take(len), &mut out)?;
                if copied != len {
                    return Err(Error::integrity("the encrypted object ends early (truncated)"));
                }
                pos = r.end;
            }
            out.flush().map_err(|e| Error::io("writing the restored bytes", e))
        });
        Ok((stored, Box::new(piped)))
    }
}

/// Reads until `buf` is full or the input ends; returns the count read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Copies decrypted bytes to `out`, a chunk at a time; age hands out a
/// chunk's bytes only after its tag verified.
fn copy(reader: &mut impl Read, out: &mut dyn Write) -> Result<u64> {
    let mut buf = vec![0; CHUNK as usize];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(decrypt_io(e)),
        };
        out.write_all(&buf[..n]).map_err(|e| Error::io("writing the restored bytes", e))?;
        total += n as u64;
    }
}

/// A whole decryption: everything to `out`, then flush.
fn pump(mut reader: impl Read, mut out: Box<dyn Write + Send>) -> Result<()> {
    copy(&mut reader, &mut out)?;
    out.flush().map_err(|e| Error::io("writing the restored bytes", e))
}

#[cfg(test)]
mod tests;
