//! Keys that XML cannot hold. A key may hold any UTF-8 character, control
//! characters included, and anyone with s3:PutObject can write one; raw in
//! a listing's XML, such a character is not XML 1.0, and the SDK's parser
//! fails the whole listing (so the folder could no longer be listed,
//! expired or deleted). Every listing (ListObjectsV2, ListObjectVersions,
//! ListMultipartUploads) therefore asks for `EncodingType=url`, and the
//! keys and markers of an answer that says it is URL-encoded are decoded
//! here ([`decode`]). DeleteObjects has no such option (its request and
//! answer carry keys as XML text, which servers refuse or send raw): a key
//! with a control character is deleted alone, with DeleteObject, its key in
//! the URL ([`S3Store::delete_one`]).
//!
//! Some servers send the keys raw anyway (s3s-fs, while echoing
//! `EncodingType` url; moto for versions and uploads). When such an answer
//! fails to parse, [`MendRawKeys`] writes each character XML 1.0 cannot hold
//! as a character reference (`&#x1;`, which the SDK's parser reads back as
//! the character), drops an `EncodingType` the answer has evidently not
//! applied, and parses it again with the operation's own deserializer.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;

use super::S3Store;
use crate::error::{Error, Kind, Result};
use crate::store::Store;
use crate::store::aws::{classify, http_status};

/// Whether DeleteObjects' XML can carry `key` (no control character, none
/// of which XML 1.0 keeps as it is).
pub(super) fn xml_safe(key: &str) -> bool {
    !key.chars().any(char::is_control)
}

impl S3Store {
    /// Deletes `key` (its `version`) alone, with DeleteObject; a missing key
    /// is deleted already. `Ok(Some(refusal))`: a retention lock refused the
    /// delete of the version (AccessDenied), kind `RetentionLocked`.
    pub(super) async fn delete_one(&self, key: &str, version: Option<&str>, bypass: bool) -> Result<Option<Error>> {
        let sent = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .set_bypass_governance_retention(bypass.then_some(true))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(None),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) if version.is_some() && e.code() == Some("AccessDenied") => {
                let message = format!(
                    "delete {} (version {}) failed: AccessDenied: {}",
                    self.url(key),
                    version.unwrap_or_default(),
                    e.message().unwrap_or("")
                );
                Ok(Some(Error::new(Kind::RetentionLocked, message).with_code(Some("AccessDenied"))))
            }
            Err(e) => Err(classify("delete", &self.url(key), e)),
        }
    }
}

/// A key (or prefix, or key marker) of a listing: URL-decoded when the
/// answer says it encoded them (`+` is a space, as S3 encodes it), as it
/// is otherwise. A value that does not decode to UTF-8 was not encoded.
pub(super) fn decode(value: &str, encoded: bool) -> String {
    if !encoded || !(value.contains('%') || value.contains('+')) {
        return value.to_string();
    }
    let spaced = value.replace('+', " ");
    match percent_encoding::percent_decode_str(&spaced).decode_utf8() {
        Ok(decoded) => decoded.into_owned(),
        Err(_) => value.to_string(),
    }
}

/// Whether XML 1.0 can hold `c` (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The answer with every character XML 1.0 cannot hold written as a
/// character reference, and without an `EncodingType` it did not apply;
/// `None` when it holds no such character (a failure of another kind).
pub(super) fn mend(body: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(body).ok()?;
    if text.chars().all(xml_char) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 64);
    for c in text.chars() {
        if xml_char(c) {
            out.push(c);
        } else {
            out.push_str(&format!("&#x{:X};", c as u32));
        }
    }
    Some(out.replace("<EncodingType>url</EncodingType>", "").into_bytes())
}

/// Parses a listing again after [`mend`]ing it (see the module doc).
#[derive(Debug)]
pub(super) struct MendRawKeys;

impl Intercept for MendRawKeys {
    fn name(&self) -> &'static str {
        "MendRawKeys"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if !matches!(context.output_or_error(), Some(Err(_))) {
            return Ok(());
        }
        let Some(response) = context.response_mut() else { return Ok(()) };
        if response.status().as_u16() != 200 {
            return Ok(());
        }
        let Some(mended) = response.body().bytes().and_then(mend) else { return Ok(()) };
        let cfg: &ConfigBag = cfg;
        let Some(deserializer) = cfg.load::<SharedResponseDeserializer>() else { return Ok(()) };
        *response.body_mut() = SdkBody::from(mended);
        let again = deserializer.deserialize_nonstreaming_with_config(response, cfg);
        if let Some(slot) = context.output_or_error_mut() {
            *slot = again;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(decode("f/a%01b", true), "f/a\u{1}b");
        assert_eq!(decode("p%25q%2Br+s%C3%A9", true), "p%q+r sé");
        assert_eq!(decode("p%25q+r", false), "p%25q+r", "raw keys stay as they are");
        assert_eq!(decode("bad%FF", true), "bad%FF", "not UTF-8 once decoded: it was not encoded");
        assert_eq!(decode("plain/key", true), "plain/key");
    }

    #[test]
    fn raw_control_characters_become_references() {
        let body = "<R><EncodingType>url</EncodingType><Key>a\u{1}b\u{b}c%41</Key></R>".as_bytes();
        let mended = String::from_utf8(mend(body).unwrap()).unwrap();
        assert_eq!(mended, "<R><Key>a&#x1;b&#xB;c%41</Key></R>");
        assert_eq!(mend(b"<R><Key>fine\tkey</Key></R>"), None);
        assert_eq!(mend(&[0xff, 0x01]), None, "not UTF-8: left to fail as it does");
    }
}
