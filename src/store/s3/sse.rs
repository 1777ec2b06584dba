//! The headers every write (and, for SSE-C, every read) carries:
//! server-side encryption and object tags. Macros, because each SDK
//! operation has its own builder type with the same setters.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Sets the server-side encryption headers of a write that creates an
/// object (PutObject, CreateMultipartUpload).
macro_rules! sse_create {
    ($request:expr, $encryption:expr) => {{
        use aws_sdk_s3::types::ServerSideEncryption;
        use $crate::config::Encryption;
        let request = $request;
        match $encryption {
            Encryption::BucketDefault => request,
            Encryption::S3Managed => request.server_side_encryption(ServerSideEncryption::Aes256),
            Encryption::Kms { key_id, bucket_key, dual_layer } => request
                .server_side_encryption(if *dual_layer {
                    ServerSideEncryption::AwsKmsDsse
                } else {
                    ServerSideEncryption::AwsKms
                })
                .set_ssekms_key_id(key_id.clone())
                .set_bucket_key_enabled(*bucket_key),
            Encryption::Customer(key) => $crate::store::s3::sse::sse_c!(request, Some(key)),
        }
    }};
}

/// Sets the SSE-C headers (the key and its MD5) when SSE-C is in use: every
/// request that writes or reads an SSE-C object's data or metadata needs them.
macro_rules! sse_c {
    ($request:expr, $key:expr) => {{
        let request = $request;
        let key: Option<&$crate::config::CustomerKey> = $key;
        match key {
            Some(key) => request
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&key.key_base64)
                .sse_customer_key_md5(&key.key_md5_base64),
            None => request,
        }
    }};
}

pub(crate) use {sse_c, sse_create};

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const TAG_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The `x-amz-tagging` value of the tags, or `None` without tags.
pub fn tagging(tags: &[(String, String)]) -> Option<String> {
    let encode = |s: &str| utf8_percent_encode(s, TAG_ESCAPES).to_string();
    (!tags.is_empty())
        .then(|| tags.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_url_encoded() {
        let tags = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert_eq!(super::tagging(&tags("a b/c", "d&e+f@g:h")).unwrap(), "a%20b%2Fc=d%26e%2Bf%40g%3Ah");
        assert_eq!(super::tagging(&tags("plain-1_2.3~", "x")).unwrap(), "plain-1_2.3~=x");
        assert_eq!(super::tagging(&[]), None);
    }
}
