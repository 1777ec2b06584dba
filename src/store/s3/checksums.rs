//! Which request checksums go to the server. `Crc32c` (the default with an
//! endpoint) sends a CRC32C header with every upload and part, and unsigned
//! payloads over TLS-protected or plain connections alike. `Crc64nvme` (the
//! default on AWS) does the same with CRC-64/NVME and asks for a
//! full-object checksum of multipart objects, which the service then keeps
//! as the object's own proof. Legacy S3-compatible servers
//! refuse the flexible-checksum headers and `UNSIGNED-PAYLOAD`; for them
//! `Md5` and `None` send exactly what the Go plugin's SDK (aws-sdk-go v1)
//! sends: Content-MD5 on DeleteObjects (and, with `Md5`, on every upload
//! and part), no `x-amz-checksum-*` header, a signed payload hash. The
//! plugin's own end-to-end integrity records do not depend on this choice.

use super::objects::content_md5;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

pub use crate::config::Checksums;

/// What each mode puts on a request with body `data`.
pub(super) trait RequestChecksums {
    /// The CRC32C header value, when this mode sends one.
    fn crc32c(self, data: &[u8]) -> Option<String>;
    /// The CRC-64/NVME header value, when this mode sends one.
    fn crc64nvme(self, data: &[u8]) -> Option<String>;
    /// The Content-MD5 header value, when this mode sends one.
    fn md5(self, data: &[u8]) -> Option<String>;
    /// Whether the payload may go unsigned (`UNSIGNED-PAYLOAD`).
    fn unsigned_payload(self) -> bool;
}

impl RequestChecksums for Checksums {
    fn crc32c(self, data: &[u8]) -> Option<String> {
        (self == Checksums::Crc32c).then(|| super::objects::crc32c_header(data))
    }

    fn crc64nvme(self, data: &[u8]) -> Option<String> {
        (self == Checksums::Crc64nvme).then(|| crc64_header(crc_fast::crc64_nvme(data)))
    }

    fn md5(self, data: &[u8]) -> Option<String> {
        (self == Checksums::Md5).then(|| content_md5(data))
    }

    fn unsigned_payload(self) -> bool {
        !self.legacy()
    }
}

/// A CRC-64/NVME as S3 writes it: base64 of its 8 big-endian bytes.
pub(super) fn crc64_header(crc: u64) -> String {
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// The CRC-64/NVME a header holds, if it is one.
pub(super) fn parse_crc64_header(value: &str) -> Option<u64> {
    let bytes: [u8; 8] = aws_smithy_types::base64::decode(value).ok()?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

impl Checksums {
    /// Whether this mode sends only what the Go plugin's SDK sends.
    pub(super) fn legacy(self) -> bool {
        matches!(self, Checksums::Md5 | Checksums::None)
    }
}

/// Keeps the SDK's flexible checksums off the wire and puts Content-MD5 on
/// the requests that need a body checksum (DeleteObjects).
///
/// The SDK adds a CRC32 to DeleteObjects unless the request already
/// carries an `x-amz-checksum-*` header when its retry loop starts; this
/// client-level interceptor runs before the SDK's, so it sets a marker
/// header there, and removes every checksum header again just before each
/// attempt is signed.
#[derive(Debug)]
pub(super) struct LegacyChecksums;

const MARKER: &str = "x-amz-checksum-crc32";

impl Intercept for LegacyChecksums {
    fn name(&self) -> &'static str {
        "LegacyChecksums"
    }

    fn modify_before_retry_loop(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        if !headers.iter().any(|(name, _)| name.starts_with("x-amz-checksum-")) {
            headers.insert(MARKER, "AAAAAA==");
        }
        Ok(())
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let names: Vec<String> = request
            .headers()
            .iter()
            .map(|(name, _)| name.to_string())
            .filter(|name| name.starts_with("x-amz-checksum-") || name == "x-amz-sdk-checksum-algorithm")
            .collect();
        for name in names {
            request.headers_mut().remove(name);
        }
        let delete_objects = request.method() == "POST" && request.uri().contains("delete");
        if delete_objects
            && request.headers().get("content-md5").is_none()
            && let Some(body) = request.body().bytes()
        {
            let md5 = content_md5(body);
            request.headers_mut().insert("content-md5", md5);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_send_what_they_say() {
        assert!(Checksums::Crc32c.crc32c(b"x").is_some() && Checksums::Crc32c.md5(b"x").is_none());
        assert!(Checksums::Md5.crc32c(b"x").is_none() && Checksums::Md5.md5(b"x").is_some());
        assert!(Checksums::None.crc32c(b"x").is_none() && Checksums::None.md5(b"x").is_none());
        // RFC 1864's example digest of the empty input.
        assert_eq!(content_md5(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert!(Checksums::Crc32c.unsigned_payload() && !Checksums::Md5.unsigned_payload());
        assert!(Checksums::Crc64nvme.crc64nvme(b"x").is_some() && Checksums::Crc64nvme.crc32c(b"x").is_none());
        assert!(Checksums::Crc32c.crc64nvme(b"x").is_none() && Checksums::Crc64nvme.unsigned_payload());
        // The check value of CRC-64/NVME, as S3 would print it.
        let header = crc64_header(crc_fast::crc64_nvme(b"123456789"));
        assert_eq!(parse_crc64_header(&header), Some(0xae8b_1486_0a79_9888));
        assert_eq!(parse_crc64_header("AAAA"), None);
    }
}
