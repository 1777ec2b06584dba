//! Encryption's tests: round trips, damage, wrong keys, filtered restores
//! and the chunk map, through the in-memory store; the binding of objects
//! to their place and their writers' signatures (`bind_tests.rs`).
#![allow(clippy::single_range_in_vec_init)] // lists of one range are the cases

use std::sync::{Arc, Mutex};

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

/// Where the transform-only tests store their object.
const KEY: &str = "prod/backups/20240101/20240101000000/gpbackup_0_20240101000000_16384.gz";

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
        let expected: Vec<u8> = ranges.iter().flat_map(|r| bytes[r.start as usize..r.end as usize].to_vec()).collect();
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
    decode_at(age, KEY, stored)
}

/// [`decode_all`] of an object read from `key`.
fn decode_at(age: &Age, key: &str, stored: &[u8]) -> (Result<()>, Vec<u8>) {
    let out = Out::default();
    let mut writer = match age.decode_at(key, Box::new(out.clone())) {
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
    age.encode(KEY, Box::new(Cursor::new(bytes.to_vec()))).unwrap().read_to_end(&mut stored).unwrap();
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
