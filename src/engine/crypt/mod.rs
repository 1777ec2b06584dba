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
//! Every header also carries the object's binding to its place, signed
//! when the backup hosts have a signing key (`bind`).
//!
//! Here: the keys and the [`Transform`]; `bind` the binding stanza and its
//! judgement, `ranges` maps a filtered restore onto the stored chunks,
//! `stream` holds the readers and the thread between the engine's units and
//! age.

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::mpsc::sync_channel;

use bytes::Bytes;

use super::transform::{AGE_MAGIC, Decoder, Head, Proves, Ranged, Transform};
use crate::error::{Error, Result};
use crate::layout::place_of;

mod bind;
mod ranges;
mod stream;

use bind::{Binding, Opener, Policy};

use ranges::{Map, Sparse};
use stream::{ChannelReader, Encrypting, Piped, Shared};

/// Plaintext bytes per STREAM chunk, and what a chunk takes stored.
pub const CHUNK: u64 = 64 * 1024;
pub const STORED_CHUNK: u64 = CHUNK + 16;
/// The first look at a header, and the largest header read.
const FIRST_PROBE: u64 = 4096;
const MAX_HEADER: u64 = 1 << 20;

/// Encryption to `recipients`, decryption with `identities`; every object
/// bound to its place, signed with `signer` when there is one.
pub struct Age {
    recipients: Vec<age::x25519::Recipient>,
    identities: Vec<age::x25519::Identity>,
    signer: Option<ed25519_dalek::SigningKey>,
    policy: Policy,
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
        Ok(Age {
            recipients,
            identities,
            signer: None,
            policy: Policy::default(),
            no_recipient: no_recipient.into(),
            no_identity: no_identity.into(),
        })
    }

    /// Backups sign every object with this Ed25519 key (its 32-byte seed).
    pub fn signing(mut self, seed: Option<&[u8; 32]>) -> Age {
        self.signer = seed.map(ed25519_dalek::SigningKey::from_bytes);
        self
    }

    /// Restores require a signature by one of these Ed25519 public keys.
    pub fn verifying(mut self, keys: &[[u8; 32]]) -> Result<Age> {
        self.policy.verify_keys = keys
            .iter()
            .map(|k| {
                ed25519_dalek::VerifyingKey::from_bytes(k)
                    .map_err(|_| Error::config("encryption_verify_key: not an Ed25519 public key"))
            })
            .collect::<Result<_>>()?;
        Ok(self)
    }

    /// `verify: available`: objects without a binding restore, with a warning.
    pub fn lenient(mut self, lenient: bool) -> Age {
        self.policy.lenient = lenient;
        self
    }

    fn identities(&self) -> Result<Vec<age::x25519::Identity>> {
        if self.identities.is_empty() {
            return Err(Error::config(self.no_identity.clone()));
        }
        Ok(self.identities.clone())
    }

    /// A decrypting copy of the keys and policy, for a decoder's thread.
    fn opener(&self) -> Result<Age> {
        Ok(Age {
            recipients: Vec::new(),
            identities: self.identities()?,
            signer: None,
            policy: self.policy.clone(),
            no_recipient: String::new(),
            no_identity: String::new(),
        })
    }

    /// Opens the header read from `input` with the identities, and judges
    /// its binding against `place` (`None`: not known, not judged).
    fn open<R: Read>(&self, input: R, place: Option<&str>) -> Result<age::stream::StreamReader<R>> {
        let identities = self.identities()?;
        let decryptor = age::Decryptor::new(input).map_err(header_error)?;
        let opener = Opener::new(&identities);
        let reader = decryptor.decrypt(std::iter::once(&opener as &dyn age::Identity)).map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => {
                let mine: Vec<String> = identities.iter().map(|i| i.to_public().to_string()).collect();
                Error::config(format!(
                    "the object is encrypted to other keys: no private key of this restore opens it (their public \
                     keys: {}); nothing was written",
                    mine.join(", ")
                ))
            }
            other => header_error(other),
        })?;
        opener.judge(place, &self.policy)?;
        Ok(reader)
    }

    /// A whole restore's decoder: `place` as [`Self::open`] takes it.
    fn decoder(&self, place: Option<String>, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        let me = self.opener()?;
        Ok(Box::new(Piped::spawn(move |input| {
            let mut input = input;
            let mut magic = vec![0; AGE_MAGIC.len()];
            let got = read_full(&mut input, &mut magic).map_err(decrypt_io)?;
            if magic[..got] != AGE_MAGIC[..got] || got < AGE_MAGIC.len() {
                return Err(Error::integrity(
                    "the object is not encrypted (no age header) and this restore decrypts; nothing was written",
                ));
            }
            let reader = me.open(Cursor::new(magic).chain(input), place.as_deref())?;
            pump(reader, out)
        })))
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
    fn encode(&self, key: &str, source: Box<dyn Read + Send>) -> Result<Box<dyn Read + Send>> {
        if self.recipients.is_empty() {
            return Err(Error::config(self.no_recipient.clone()));
        }
        let binding = Binding { place: place_of(key), signer: self.signer.as_ref() };
        let recipients = self.recipients.iter().map(|r| r as &dyn age::Recipient);
        let encryptor = age::Encryptor::with_recipients(recipients.chain(std::iter::once(&binding as _)))
            .map_err(|e| Error::config(format!("cannot encrypt to the configured recipients: {e}")))?;
        let buffer = Shared::default();
        let writer = encryptor.wrap_output(buffer.clone()).map_err(|e| Error::io("encrypting", e))?;
        Ok(Box::new(Encrypting { source, writer: Some(writer), buffer, pending: Vec::new(), at: 0, plain: Vec::new() }))
    }

    fn metadata(&self) -> Option<(&'static str, &'static str)> {
        Some((super::transform::ENCRYPTION_META, "age"))
    }

    fn decode(&self, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        self.decoder(None, out)
    }

    fn decode_at(&self, key: &str, out: Box<dyn Write + Send>) -> Result<Box<dyn Decoder>> {
        self.decoder(Some(place_of(key).to_string()), out)
    }

    fn requires_record(&self) -> bool {
        !self.identities.is_empty()
    }

    fn proves(&self) -> Proves {
        let decrypts = !self.identities.is_empty();
        let signature = decrypts && !self.policy.verify_keys.is_empty();
        Proves { decrypts, binding: decrypts && (signature || !self.policy.lenient), signature }
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

    fn decode_ranges(
        &self,
        key: &str,
        ranges: &[Range<u64>],
        head: Option<Head>,
        out: Box<dyn Write + Send>,
    ) -> Result<Ranged> {
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
        let mut reader = self.open(sparse, Some(place_of(key)))?;
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
mod bind_tests;
#[cfg(test)]
mod tests;
