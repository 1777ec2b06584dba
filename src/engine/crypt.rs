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

use std::collections::VecDeque;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;

use super::transform::{AGE_MAGIC, Decoder, Head, Ranged, Transform};
use crate::error::{Error, Result};

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

/// Which stored chunks a filtered restore reads, in the order age's
/// seekable reader reads them.
#[derive(Debug, PartialEq, Eq)]
struct Map {
    /// The last chunk (age reads it to authenticate the length when a
    /// range starts at a chunk boundary), fetched first when needed.
    last: Range<u64>,
    needs_last: bool,
    /// Every other chunk read, as stored ranges (runs of chunks joined).
    segments: Vec<Range<u64>>,
}

impl Map {
    /// `start`: where the first chunk is stored; `total`: the stored size.
    fn new(start: u64, total: u64, ranges: &[Range<u64>]) -> Result<Map> {
        let stored = total
            .checked_sub(start)
            .filter(|n| *n >= 16)
            .ok_or_else(|| Error::integrity("the encrypted object ends within its header (truncated)"))?;
        let chunks = stored.div_ceil(STORED_CHUNK);
        let plain = stored - chunks * 16;
        if let Some((i, r)) = ranges.iter().enumerate().find(|(_, r)| r.end > plain || r.start > r.end) {
            return Err(Error::local(format!(
                "range {} (bytes {}..{}) ends past the end of the decrypted object, which has {plain} bytes; \
                 nothing was written",
                i + 1,
                r.start,
                r.end
            )));
        }
        let last_index = chunks - 1;
        let at = |k: u64| start + k * STORED_CHUNK..(start + (k + 1) * STORED_CHUNK).min(total);
        let mut needs_last = false;
        let mut segments: Vec<Range<u64>> = Vec::new();
        let mut read = |k: u64, needs_last: &mut bool| {
            if k == last_index {
                *needs_last = true;
                return;
            }
            let r = at(k);
            match segments.last_mut() {
                Some(prev) if prev.end == r.start => prev.end = r.end,
                _ => segments.push(r),
            }
        };
        // Replays age's StreamReader: `have` is the chunk it holds decrypted.
        let (mut pos, mut have) = (0u64, None::<u64>);
        for r in ranges.iter().filter(|r| r.start < r.end) {
            if r.start != pos {
                let (target, current) = (r.start / CHUNK, pos / CHUNK);
                if target != current {
                    have = None;
                    if r.start % CHUNK == 0 {
                        // age computes (and authenticates) the length here.
                        needs_last = true;
                    } else {
                        read(target, &mut needs_last);
                        have = Some(target);
                    }
                }
            }
            for k in r.start / CHUNK..=(r.end - 1) / CHUNK {
                if have != Some(k) {
                    read(k, &mut needs_last);
                    have = Some(k);
                }
            }
            pos = r.end;
            if pos % CHUNK == 0 {
                have = None;
            }
        }
        Ok(Map { last: at(last_index), needs_last, segments })
    }
}

/// The stored object as age's seekable reader sees it during a filtered
/// restore: the header from memory, the last chunk (when fetched: it comes
/// first) kept in memory, every other chunk read once, in order, as it
/// arrives. A read anywhere else is an error, never made-up bytes.
struct Sparse {
    prefix: Bytes,
    last_range: Option<Range<u64>>,
    last: Option<Vec<u8>>,
    segments: VecDeque<Range<u64>>,
    /// The position of the next byte from `input` in the front segment.
    cursor: Option<u64>,
    input: ChannelReader,
    pos: u64,
    total: u64,
}

impl Sparse {
    fn load_last(&mut self) -> io::Result<()> {
        if let (Some(r), None) = (&self.last_range, &self.last) {
            let mut data = vec![0; (r.end - r.start) as usize];
            self.input.read_exact(&mut data)?;
            self.last = Some(data);
        }
        Ok(())
    }
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let pos = self.pos;
        let n = if pos < self.prefix.len() as u64 {
            let from = &self.prefix[pos as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else if pos >= self.total {
            0
        } else if self.last_range.as_ref().is_some_and(|r| r.contains(&pos)) {
            self.load_last()?;
            let r = self.last_range.as_ref().expect("checked");
            let from = &self.last.as_ref().expect("loaded")[(pos - r.start) as usize..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else {
            self.load_last()?;
            while let Some(front) = self.segments.front() {
                let cursor = *self.cursor.get_or_insert(front.start);
                if cursor < front.end {
                    break;
                }
                self.segments.pop_front();
                self.cursor = None;
            }
            let (Some(front), Some(cursor)) = (self.segments.front(), self.cursor) else {
                return Err(io::Error::other(Error::local(format!("decrypting: byte {pos} was not fetched"))));
            };
            if cursor != pos {
                return Err(io::Error::other(Error::local(format!(
                    "decrypting: byte {pos} read out of order (next fetched: {cursor})"
                ))));
            }
            let want = ((front.end - cursor) as usize).min(buf.len());
            let n = self.input.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the fetched ranges ended early"));
            }
            self.cursor = Some(cursor + n as u64);
            n
        };
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.total.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

/// The units a [`Piped`] decoder was given, as a reader (on its thread).
struct ChannelReader {
    rx: Receiver<Bytes>,
    current: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(next) => self.current = next,
                Err(_) => return Ok(0),
            }
        }
        let n = self.current.len().min(buf.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A decoder whose units a thread consumes (decrypts and writes on), as
/// they are: no copy. Its error, if any, is returned by the next write or
/// by `finish`.
struct Piped {
    tx: Option<SyncSender<Bytes>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Piped {
    fn spawn(work: impl FnOnce(ChannelReader) -> Result<()> + Send + 'static) -> Piped {
        let (tx, rx) = sync_channel::<Bytes>(0);
        Piped::start(tx, move || work(ChannelReader { rx, current: Bytes::new() }))
    }

    fn start(tx: SyncSender<Bytes>, work: impl FnOnce() -> Result<()> + Send + 'static) -> Piped {
        Piped { tx: Some(tx), thread: Some(std::thread::spawn(work)) }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx.take();
        match self.thread.take().map(JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(io::Error::other(e)),
            Some(Err(_)) => Err(io::Error::other(Error::local("the decrypting thread panicked"))),
        }
    }
}

impl Decoder for Piped {
    fn write(&mut self, data: Bytes) -> io::Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(data).is_ok());
        if !sent {
            self.join()?;
            return Err(io::Error::other(Error::local("the decrypting thread stopped")));
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.join()
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

/// The encryptor's output, shared with the reader that hands it out.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Plaintext from `source` in, age ciphertext out, 64 KiB at a time.
struct Encrypting {
    source: Box<dyn Read + Send>,
    writer: Option<age::stream::StreamWriter<Shared>>,
    buffer: Shared,
    pending: Vec<u8>,
    at: usize,
    /// The plaintext read buffer, kept from read to read.
    plain: Vec<u8>,
}

impl Read for Encrypting {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.pending.len() {
            {
                // Swap the encryptor's output in; the drained buffer goes
                // back to it, so that neither is allocated again.
                let mut shared = self.buffer.0.lock().expect("not poisoned");
                if !shared.is_empty() {
                    self.pending.clear();
                    std::mem::swap(&mut *shared, &mut self.pending);
                    self.at = 0;
                    break;
                }
            }
            let Some(writer) = self.writer.as_mut() else { return Ok(0) };
            let plain = &mut self.plain;
            plain.resize(CHUNK as usize, 0);
            let n = match self.source.read(plain) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                self.writer.take().expect("checked").finish()?;
            } else {
                writer.write_all(&self.plain[..n])?;
            }
        }
        let n = (self.pending.len() - self.at).min(buf.len());
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // lists of one range are the cases
mod tests {
    use super::*;
    use crate::config::Transfer;
    use crate::engine::download::{Output, Selection, download};
    use crate::engine::upload::{Source, upload};
    use crate::error::Kind;
    use crate::store::ObjectClass;
    use crate::store::memory::MemoryStore;

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Out(Arc<Mutex<Vec<u8>>>);

    impl Write for Out {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    const TRANSFER: Transfer = Transfer { part_size: 5 << 20, concurrency: 3, verify: crate::config::Verify::Strict };

    fn keys() -> (age::x25519::Identity, Age) {
        let identity = age::x25519::Identity::generate();
        let age = Age::new(
            &[identity.to_public().to_string()],
            &[identity.to_string().expose_secret().to_string()],
            "no recipient",
            "no identity",
        )
        .unwrap();
        (identity, age)
    }

    use age::secrecy::ExposeSecret;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 253) as u8).collect()
    }

    async fn put(store: &MemoryStore, key: &str, bytes: &[u8], age: &Age) {
        let source = Source { reader: Box::new(Cursor::new(bytes.to_vec())), name: "t".into() };
        upload(Arc::new(store.clone()), key, source, TRANSFER, ObjectClass::Payload, age).await.unwrap();
    }

    async fn get(store: &MemoryStore, key: &str, selection: Selection, age: &dyn Transform) -> (Result<u64>, Vec<u8>) {
        let out = Out::default();
        let output = Output { writer: Box::new(out.clone()), name: "t".into() };
        let result = download(Arc::new(store.clone()), key, selection, output, TRANSFER, age).await;
        let written = out.0.lock().unwrap().clone();
        (result, written)
    }

    fn decrypt_plain(identity: &age::x25519::Identity, stored: &[u8]) -> Vec<u8> {
        let decryptor = age::Decryptor::new(stored).unwrap();
        let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).unwrap();
        let mut out = Vec::new();
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trips_at_chunk_and_part_boundaries() {
        let (identity, age) = keys();
        let store = MemoryStore::new();
        let c = CHUNK as usize;
        for len in [0, 1, c - 1, c, c + 1, 3 * c, (5 << 20) - 1, 5 << 20, (5 << 20) + 1, (12 << 20) + 77] {
            let bytes = data(len);
            put(&store, "k", &bytes, &age).await;
            let stored = store.object("k").unwrap();
            assert!(stored.starts_with(AGE_MAGIC), "{len}: stored in the age format");
            assert!(decrypt_plain(&identity, &stored) == bytes, "{len}: the age crate decrypts what was stored");
            let (result, written) = get(&store, "k", Selection::Whole, &age).await;
            result.unwrap();
            assert!(written == bytes, "{len}: whole restore");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn filtered_restores_are_byte_identical() {
        let (_, age) = keys();
        let store = MemoryStore::new();
        let c = CHUNK;
        let part = 5u64 << 20;
        let len = 12 * part / 5 + 1000; // 12 MiB and a bit: three parts
        let bytes = data(len as usize);
        put(&store, "k", &bytes, &age).await;
        let cases: Vec<Vec<Range<u64>>> = vec![
            vec![10..20],                                   // inside one chunk
            vec![c - 5..c + 5],                             // across chunks
            vec![part - 100..part + 100],                   // across parts
            vec![len - 10..len],                            // at the end
            vec![len - 1..len, 0..1],                       // backwards
            vec![5..10, 10..20, 20..c, c..2 * c],           // adjacent
            vec![0..0],                                     // nothing
            vec![],                                         // nothing at all
            vec![3 * c..3 * c + 1, 7 * c..8 * c],           // chunk-aligned starts
            vec![100..200, 150..300, 2 * c + 1..2 * c + 2], // overlapping, then a jump
            vec![0..len],                                   // everything
        ];
        for ranges in cases {
            let (result, written) = get(&store, "k", Selection::Ranges(ranges.clone()), &age).await;
            let expected: Vec<u8> =
                ranges.iter().flat_map(|r| bytes[r.start as usize..r.end as usize].to_vec()).collect();
            assert!(result.is_ok(), "{ranges:?}: {result:?}");
            assert!(written == expected, "{ranges:?}: {} bytes, expected {}", written.len(), expected.len());
        }
        let (result, written) = get(&store, "k", Selection::Ranges(vec![0..len + 1]), &age).await;
        assert!(result.unwrap_err().to_string().contains("past the end"));
        assert!(written.is_empty());
    }

    /// A filtered restore reads only the chunks of its ranges: at most one
    /// chunk more per range (the last, which authenticates the length).
    #[test]
    fn ranges_map_to_their_chunks() {
        let (start, c, e) = (200u64, CHUNK, STORED_CHUNK);
        let plain = 100 * c + 10;
        let total = start + 100 * e + 10 + 16;
        let map = Map::new(start, total, &[10..20]).unwrap();
        assert_eq!(map, Map { last: start + 100 * e..total, needs_last: false, segments: vec![start..start + e] });
        let map = Map::new(start, total, &[c - 1..c + 1, 5 * c + 3..5 * c + 4]).unwrap();
        assert!(!map.needs_last);
        assert_eq!(map.segments, vec![start..start + 2 * e, start + 5 * e..start + 6 * e]);
        let map = Map::new(start, total, &[7 * c..7 * c + 1]).unwrap();
        assert!(map.needs_last, "a chunk-aligned seek authenticates the length");
        assert_eq!(map.segments, vec![start + 7 * e..start + 8 * e]);
        let map = Map::new(start, total, &[plain - 1..plain]).unwrap();
        assert!(map.needs_last && map.segments.is_empty());
        assert!(Map::new(start, total, &[0..plain + 1]).is_err());
    }

    /// Encrypts with the transform alone, damages, decrypts through the
    /// writer a whole restore uses.
    fn decode_all(age: &Age, stored: &[u8]) -> (Result<()>, Vec<u8>) {
        let out = Out::default();
        let mut writer = match age.decode(Box::new(out.clone())) {
            Ok(w) => w,
            Err(e) => return (Err(e), Vec::new()),
        };
        let mut result = Ok(());
        for piece in stored.chunks(100_000) {
            if let Err(e) = writer.write(Bytes::copy_from_slice(piece)) {
                result = Err(e);
                break;
            }
        }
        let result = result.and_then(|()| writer.finish()).map_err(|e| match e.into_inner() {
            Some(inner) => *inner.downcast::<Error>().expect("a plugin error"),
            None => Error::local("io"),
        });
        let written = out.0.lock().unwrap().clone();
        (result, written)
    }

    fn encrypt(age: &Age, bytes: &[u8]) -> Vec<u8> {
        let mut stored = Vec::new();
        age.encode(Box::new(Cursor::new(bytes.to_vec()))).unwrap().read_to_end(&mut stored).unwrap();
        stored
    }

    #[test]
    fn a_tampered_chunk_is_never_written() {
        let (_, age) = keys();
        let bytes = data(5 * CHUNK as usize + 10);
        let mut stored = encrypt(&age, &bytes);
        let (result, written) = decode_all(&age, &stored);
        result.unwrap();
        assert!(written == bytes);
        // One byte of chunk 3 flipped: chunks 0-2 come out, nothing of 3.
        let header = stored.len() - (5 * STORED_CHUNK as usize + 10 + 16);
        stored[header + 3 * STORED_CHUNK as usize + 100] ^= 1;
        let (result, written) = decode_all(&age, &stored);
        let err = result.unwrap_err();
        assert!(err.is(Kind::Integrity), "{err}");
        assert!(err.to_string().contains("does not authenticate"), "{err}");
        assert_eq!(written.len(), 3 * CHUNK as usize);
        assert!(written[..] == bytes[..written.len()]);
        // A damaged header: nothing at all.
        let mut stored = encrypt(&age, &bytes);
        stored[40] ^= 1;
        let (result, written) = decode_all(&age, &stored);
        assert!(result.is_err());
        assert!(written.is_empty());
    }

    #[test]
    fn a_wrong_key_writes_nothing_and_names_its_public_key() {
        let (_, age) = keys();
        let (other_identity, other) = keys();
        let stored = encrypt(&age, &data(1000));
        let (result, written) = decode_all(&other, &stored);
        let err = result.unwrap_err().to_string();
        assert!(err.contains("other keys") && err.contains(&other_identity.to_public().to_string()), "{err}");
        assert!(!err.contains("AGE-SECRET-KEY"), "{err}");
        assert!(written.is_empty());
    }

    #[test]
    fn plaintext_and_ciphertext_are_never_confused() {
        let (_, age) = keys();
        // A restore that decrypts refuses an unencrypted object.
        let (result, written) = decode_all(&age, b"plain COPY data\n");
        assert!(result.unwrap_err().to_string().contains("not encrypted"));
        assert!(written.is_empty());
        // A restore without keys refuses an encrypted one.
        let stored = encrypt(&age, b"secret rows");
        let out = Out::default();
        let mut writer = crate::engine::Identity.decode(Box::new(out.clone())).unwrap();
        let failed = writer.write(stored.into()).and_then(|()| writer.finish()).unwrap_err();
        assert!(failed.to_string().contains("encrypted"), "{failed}");
        assert!(out.0.lock().unwrap().is_empty());
    }

    #[test]
    fn any_one_of_several_keys_restores() {
        let (a, b) = (age::x25519::Identity::generate(), age::x25519::Identity::generate());
        let secret = |i: &age::x25519::Identity| i.to_string().expose_secret().to_string();
        let both = Age::new(&[a.to_public().to_string(), b.to_public().to_string()], &[], "", "").unwrap();
        let bytes = data(3 * CHUNK as usize);
        let stored = encrypt(&both, &bytes);
        for one in [&a, &b] {
            let alone = Age::new(&[], &[secret(one)], "", "").unwrap();
            let (result, written) = decode_all(&alone, &stored);
            result.unwrap();
            assert!(written == bytes);
        }
        // An identity file may list old and new keys alike.
        let other = age::x25519::Identity::generate();
        let listed = Age::new(&[], &[secret(&other), secret(&b)], "", "").unwrap();
        let (result, written) = decode_all(&listed, &stored);
        result.unwrap();
        assert!(written == bytes);
    }
}
