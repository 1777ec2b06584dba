//! The binding stanza's tests: an object decodes only at its own place
//! (any folder), objects without a binding need `verify: available`, and
//! with verify keys only objects signed by their signing key decode.
#![allow(clippy::single_range_in_vec_init)] // one range is the case

use std::io::{Cursor, Read, Write};

use age::secrecy::ExposeSecret;
use bytes::Bytes;

use super::bind::{Binding, TAG};
use super::*;
use crate::error::Kind;

const PLACE: &str = "backups/20240101/20240101000000/gpbackup_0_20240101000000_16384.gz";

#[derive(Clone, Default)]
struct Out(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pair() -> (age::x25519::Identity, Age) {
    let identity = age::x25519::Identity::generate();
    let secret = identity.to_string().expose_secret().to_string();
    let age = Age::new(&[identity.to_public().to_string()], &[secret], "no recipient", "no identity").unwrap();
    (identity, age)
}

fn seed(byte: u8) -> [u8; 32] {
    [byte; 32]
}

fn public_of(seed: &[u8; 32]) -> [u8; 32] {
    ed25519_dalek::SigningKey::from_bytes(seed).verifying_key().to_bytes()
}

fn encrypt_at(age: &Age, key: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stored = Vec::new();
    age.encode(key, Box::new(Cursor::new(bytes.to_vec()))).unwrap().read_to_end(&mut stored).unwrap();
    stored
}

/// Decodes through a whole restore's decoder; `key` None: unplaced.
fn decode(age: &Age, key: Option<&str>, stored: &[u8]) -> (Result<()>, Vec<u8>) {
    let out = Out::default();
    let decoder = match key {
        Some(key) => age.decode_at(key, Box::new(out.clone())),
        None => age.decode(Box::new(out.clone())),
    };
    let mut decoder = match decoder {
        Ok(d) => d,
        Err(e) => return (Err(e), Vec::new()),
    };
    let result = decoder.write(Bytes::copy_from_slice(stored)).and_then(|()| decoder.finish());
    let result = result.map_err(|e| *e.into_inner().unwrap().downcast::<Error>().unwrap());
    let written = out.0.lock().unwrap().clone();
    (result, written)
}

/// An age file as the standard tools write it: no binding.
fn standard(identity: &age::x25519::Identity, bytes: &[u8], extra: Option<&dyn age::Recipient>) -> Vec<u8> {
    let recipient = identity.to_public();
    let all = std::iter::once(&recipient as &dyn age::Recipient).chain(extra);
    let mut stored = Vec::new();
    let mut writer = age::Encryptor::with_recipients(all).unwrap().wrap_output(&mut stored).unwrap();
    writer.write_all(bytes).unwrap();
    writer.finish().unwrap();
    stored
}

#[test]
fn an_object_decodes_only_at_its_own_place_in_any_folder() {
    let (_, age) = pair();
    let stored = encrypt_at(&age, &format!("prod/gp/{PLACE}"), b"rows of t16384");
    let header = String::from_utf8_lossy(&stored[..200]).to_string();
    assert!(header.contains(&format!("-> {TAG} ")), "{header}");
    for key in [format!("prod/gp/{PLACE}"), format!("moved/{PLACE}"), PLACE.to_string()] {
        let (result, written) = decode(&age, Some(&key), &stored);
        result.unwrap();
        assert_eq!(written, b"rows of t16384", "{key}");
    }
    // Another table, another backup: refused before a byte, naming both.
    for other in [
        "prod/gp/backups/20240101/20240101000000/gpbackup_0_20240101000000_16385.gz",
        "prod/gp/backups/20240102/20240102000000/gpbackup_0_20240102000000_16384.gz",
    ] {
        let (result, written) = decode(&age, Some(other), &stored);
        let err = result.unwrap_err();
        assert!(err.is(Kind::Integrity), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(&format!("written for {PLACE}")) && text.contains(crate::layout::place_of(other)),
            "{text}"
        );
        assert!(written.is_empty());
    }
    // The catalog's reads (place unknown) are not judged.
    let (result, written) = decode(&age, None, &stored);
    result.unwrap();
    assert_eq!(written, b"rows of t16384");
}

#[test]
fn a_binding_cannot_be_changed_without_the_file_key() {
    let (_, age) = pair();
    let stored = encrypt_at(&age, PLACE, b"rows");
    // The binding rewritten to another table's place (same length): the
    // header MAC no longer verifies.
    let other = PLACE.replace("16384", "16385");
    let b64 = |p: &str| base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, p);
    let at = stored.windows(b64(PLACE).len()).position(|w| w == b64(PLACE).as_bytes()).unwrap();
    let mut changed = stored.clone();
    changed[at..at + b64(&other).len()].copy_from_slice(b64(&other).as_bytes());
    assert_ne!(changed, stored);
    let (result, written) = decode(&age, Some(&other), &changed);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("does not verify") || err.contains("header"), "{err}");
    assert!(written.is_empty());
}

#[test]
fn unbound_objects_decode_only_when_lenient() {
    let (identity, age) = pair();
    let stored = standard(&identity, b"old release rows", None);
    let (result, written) = decode(&age, Some(PLACE), &stored);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("no binding") && err.contains("verify: available"), "{err}");
    assert!(written.is_empty());
    let lenient = pair_with(&identity).lenient(true);
    let (result, written) = decode(&lenient, Some(PLACE), &stored);
    result.unwrap();
    assert_eq!(written, b"old release rows");
    // Signatures required: even lenient refuses an unsigned object.
    let strict = pair_with(&identity).lenient(true).verifying(&[public_of(&seed(1))]).unwrap();
    let (result, _) = decode(&strict, Some(PLACE), &stored);
    assert!(result.unwrap_err().to_string().contains("no signature"));
}

fn pair_with(identity: &age::x25519::Identity) -> Age {
    let secret = identity.to_string().expose_secret().to_string();
    Age::new(&[identity.to_public().to_string()], &[secret], "no recipient", "no identity").unwrap()
}

#[test]
fn with_verify_keys_only_the_signing_keys_objects_decode() {
    let (identity, _) = pair();
    let signer = pair_with(&identity).signing(Some(&seed(1)));
    let other_signer = pair_with(&identity).signing(Some(&seed(2)));
    let unsigned = pair_with(&identity);
    let reader = pair_with(&identity).verifying(&[public_of(&seed(3)), public_of(&seed(1))]).unwrap();

    let signed = encrypt_at(&signer, PLACE, b"signed rows");
    let (result, written) = decode(&reader, Some(&format!("any/folder/{PLACE}")), &signed);
    result.unwrap();
    assert_eq!(written, b"signed rows");
    // Without verify keys a signed object decodes as any bound one.
    assert!(decode(&unsigned, Some(PLACE), &signed).0.is_ok());

    for (stored, word) in [
        (encrypt_at(&other_signer, PLACE, b"x"), "does not verify"),
        (encrypt_at(&unsigned, PLACE, b"x"), "no signature"),
        // A binding forged by someone with the public key only.
        (standard(&identity, b"x", Some(&Binding { place: PLACE, signer: None })), "no signature"),
    ] {
        let (result, written) = decode(&reader, Some(PLACE), &stored);
        let err = result.unwrap_err().to_string();
        assert!(err.contains(word) && err.contains("encryption_verify_key"), "{word}: {err}");
        assert!(written.is_empty());
    }
    // A signature over another file key does not carry over: the same
    // signed binding stanza in a planted file (its own file key).
    let stanza_of = |stored: &[u8]| -> String {
        let text = String::from_utf8_lossy(stored).to_string();
        let start = text.find(&format!("-> {TAG}")).unwrap();
        let end = text[start..].find("\n-").unwrap() + start;
        text[start..end].to_string()
    };
    let copied = stanza_of(&signed);
    struct Copied(String);
    impl age::Recipient for Copied {
        fn wrap_file_key(
            &self,
            _: &age_core::format::FileKey,
        ) -> std::result::Result<(Vec<age_core::format::Stanza>, std::collections::HashSet<String>), age::EncryptError>
        {
            let mut lines = self.0.lines();
            let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
            let body: String = lines.collect();
            let body = base64::Engine::decode(&base64::engine::general_purpose::STANDARD_NO_PAD, body).unwrap();
            let stanza = age_core::format::Stanza { tag: first[1].into(), args: vec![first[2].to_string()], body };
            Ok((vec![stanza], Default::default()))
        }
    }
    let planted = standard(&identity, b"planted", Some(&Copied(copied)));
    let (result, written) = decode(&reader, Some(PLACE), &planted);
    assert!(result.unwrap_err().to_string().contains("does not verify"));
    assert!(written.is_empty());
    // A signed object moved: its binding refuses it before the signature.
    let moved = PLACE.replace("16384", "16385");
    assert!(decode(&reader, Some(&moved), &signed).0.unwrap_err().to_string().contains("written for"));
}

#[test]
fn filtered_restores_judge_the_binding_before_fetching() {
    let (_, age) = pair();
    let stored = Bytes::from(encrypt_at(&age, PLACE, &vec![7u8; 200_000]));
    let head = |s: &Bytes| Some(crate::engine::transform::Head { data: s.slice(..4096), total: s.len() as u64 });
    let other = PLACE.replace("16384", "16385");
    let err = age.decode_ranges(&other, &[10..20], head(&stored), Box::new(Out::default())).err().unwrap();
    assert!(err.to_string().contains("written for"), "{err}");
    assert!(age.decode_ranges(PLACE, &[10..20], head(&stored), Box::new(Out::default())).is_ok());
}
