//! What ties an encrypted object to its place, and optionally to its
//! writer: one extra stanza in the age header,
//! `-> gpbackup-bind <base64 of the place>`, whose body is empty or an
//! Ed25519 signature.
//!
//! The place is the key after the folder (`backups/<date>/<ts>/<file>`,
//! [`crate::layout::place_of`]): the same on every host, and unchanged by
//! a new `folder` or a copy to another bucket. The header MAC, keyed by the
//! file key, authenticates every stanza, so nobody without the file key can
//! change a genuine object's binding; age tools ignore a stanza they do not
//! know, so `age -d` still decrypts every object.
//!
//! Anyone with the public key can make a new file key, and so a new object
//! with any binding: only a signature tells the plugin's objects apart from
//! those. It signs the place and an HMAC-SHA256 of the file key (so it
//! commits to the file key, and through it to the header and the content,
//! which only a holder of the file key can produce): a planted object (its
//! own file key) or a moved one (another place) does not verify.
//!
//! A backup adds [`Binding`] to its recipients; a restore opens through
//! [`Opener`], which sees every stanza, and judges what it saw once age has
//! verified the header MAC ([`Opener::judge`]).

use std::cell::RefCell;
use std::collections::HashSet;

use age::secrecy::ExposeSecret;
use age_core::format::{FileKey, Stanza};
use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{KeyInit, Mac};

use crate::error::{Error, Result};

/// The stanza's tag.
pub const TAG: &str = "gpbackup-bind";
/// What the signed message and the file key's HMAC start with.
const DOMAIN: &[u8] = b"gpbackup-signature/v1";

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD_NO_PAD
}

/// The file key's HMAC in the signed message: commits to the file key
/// and reveals nothing of it.
fn commitment(file_key: &FileKey) -> [u8; 32] {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(file_key.expose_secret()).expect("any key length");
    mac.update(DOMAIN);
    mac.finalize().into_bytes().into()
}

/// What is signed: the domain, the place (length first) and the commitment.
fn message(place: &str, commitment: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 9 + place.len() + 32);
    m.extend_from_slice(DOMAIN);
    m.push(b'\n');
    m.extend_from_slice(&(place.len() as u64).to_be_bytes());
    m.extend_from_slice(place.as_bytes());
    m.extend_from_slice(commitment);
    m
}

/// A backup's extra "recipient": wraps nothing, adds the binding stanza
/// (signed with `signer` when there is one).
pub struct Binding<'a> {
    pub place: &'a str,
    pub signer: Option<&'a SigningKey>,
}

impl age::Recipient for Binding<'_> {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> std::result::Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        let body = match self.signer {
            Some(key) => key.sign(&message(self.place, &commitment(file_key))).to_bytes().to_vec(),
            None => Vec::new(),
        };
        // No labels: it combines with the X25519 recipients, which have none.
        Ok((vec![Stanza { tag: TAG.into(), args: vec![b64().encode(self.place)], body }], HashSet::new()))
    }
}

/// What a restore requires of the binding.
#[derive(Clone, Default)]
pub struct Policy {
    /// `encryption_verify_key`: every object must be signed by one of them.
    pub verify_keys: Vec<VerifyingKey>,
    /// `verify: available`: an object without a binding (written by the
    /// previous release) is restored, with a warning in the log.
    pub lenient: bool,
}

/// The identities, wrapped so as to see the whole header: it keeps the
/// binding stanzas and the file key's commitment for [`Opener::judge`].
pub struct Opener<'a> {
    pub identities: &'a [age::x25519::Identity],
    seen: RefCell<Option<Seen>>,
}

struct Seen {
    /// The binding stanzas' arguments and bodies.
    bindings: Vec<(Vec<String>, Vec<u8>)>,
    commitment: [u8; 32],
}

impl<'a> Opener<'a> {
    pub fn new(identities: &'a [age::x25519::Identity]) -> Opener<'a> {
        Opener { identities, seen: RefCell::new(None) }
    }

    /// After age opened the header (its MAC verified, so the stanzas are
    /// the writer's): whether the object may be restored at `expected`.
    /// `None`: a read whose place is not known (the catalog's, which only
    /// describes backups), not judged. The errors are one line, naming the
    /// way out.
    pub fn judge(&self, expected: Option<&str>, policy: &Policy) -> Result<()> {
        let Some(expected) = expected else { return Ok(()) };
        let name = format!("the object at {}", crate::layout::printable(expected));
        let seen = self.seen.borrow();
        let seen = seen.as_ref().ok_or_else(|| Error::local("the age header was judged before it was opened"))?;
        let (args, body) = match &seen.bindings[..] {
            [] if !policy.verify_keys.is_empty() => {
                return Err(Error::integrity(format!(
                    "{name} carries no signature and no binding (written by the previous release, or not by this \
                     plugin): encryption_verify_key requires a valid signature, so it is not restored; nothing was \
                     written"
                )));
            }
            [] if policy.lenient => {
                log::warn!(
                    "{name} has no binding to its place (written by the previous release, or not by this plugin); \
                     restored because of `verify: available`"
                );
                return Ok(());
            }
            [] => {
                return Err(Error::integrity(format!(
                    "{name} has no binding to its place: written by the previous release, or not by this plugin \
                     (planted); it is not restored (set `verify: available` in the plugin config to restore objects \
                     of the previous release, with a warning in the log); nothing was written"
                )));
            }
            [binding] => binding,
            _ => return Err(Error::integrity(format!("{name} has more than one binding; nothing was written"))),
        };
        let place = match &args[..] {
            [arg] => b64().decode(arg).ok().and_then(|p| String::from_utf8(p).ok()),
            _ => None,
        }
        .ok_or_else(|| Error::integrity(format!("{name} has a damaged binding; nothing was written")))?;
        if place != expected {
            return Err(Error::integrity(format!(
                "{name} was written for {} (moved, swapped or replayed): it is not restored; nothing was written",
                crate::layout::printable(&place)
            )));
        }
        if !policy.verify_keys.is_empty() {
            let Ok(signature) = <[u8; 64]>::try_from(&body[..]).map(|s| ed25519_dalek::Signature::from_bytes(&s))
            else {
                return Err(Error::integrity(format!(
                    "{name} carries no signature: encryption_verify_key requires one, so it was not written by a \
                     backup host with encryption_signing_key_file (or was planted); nothing was written"
                )));
            };
            let message = message(&place, &seen.commitment);
            if !policy.verify_keys.iter().any(|k| k.verify_strict(&message, &signature).is_ok()) {
                return Err(Error::integrity(format!(
                    "{name}: its signature does not verify with encryption_verify_key (signed by another key, or \
                     forged); nothing was written"
                )));
            }
        }
        Ok(())
    }
}

impl age::Identity for Opener<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<std::result::Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<std::result::Result<FileKey, age::DecryptError>> {
        let found = self.identities.iter().find_map(|i| age::Identity::unwrap_stanzas(i, stanzas))?;
        if let Ok(file_key) = &found {
            let bindings = stanzas.iter().filter(|s| s.tag == TAG).map(|s| (s.args.clone(), s.body.clone())).collect();
            *self.seen.borrow_mut() = Some(Seen { bindings, commitment: commitment(file_key) });
        }
        Some(found)
    }
}
