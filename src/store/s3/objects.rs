//! Objects in one request each: PutObject, ranged GetObject, HeadObject,
//! ListObjectsV2 and DeleteObjects.

use std::collections::HashMap;
use std::ops::Range;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, Delete, ObjectIdentifier, StorageClass};
use bytes::{Bytes, BytesMut};

use super::S3Store;
use super::sse::{sse_c, sse_create};
use crate::config::{ARCHIVED_CLASSES, CustomerKey, Encryption};
use crate::error::{Error, Result};
use crate::store::aws::{HttpResponse, classify, http_status};
use crate::store::{DeleteOutcome, Fetched, ListPage, Metadata, ObjectClass, ObjectMeta, Store};

impl S3Store {
    pub(super) fn customer_key(&self) -> Option<&CustomerKey> {
        match &self.encryption {
            Encryption::Customer(key) => Some(key),
            _ => None,
        }
    }

    /// An error of a request that creates an object; a refused storage
    /// class is said as such, with the class as the error's subject.
    pub(super) fn write_error<E>(
        &self,
        action: &str,
        key: &str,
        class: ObjectClass,
        err: SdkError<E, HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let error = classify(action, &self.url(key), err);
        if error.code() != Some("InvalidStorageClass") {
            return error;
        }
        let value = self.class_of(class).map(String::as_str).unwrap_or("STANDARD").to_string();
        let message = format!("{} does not support storage class {value}: {}", self.server, error.message());
        error.with_message(message).with_subject(value)
    }

    pub(super) async fn put_object(
        &self,
        key: &str,
        data: Bytes,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<()> {
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(to_map(metadata))
            .set_storage_class(self.class_of(class).map(|c| StorageClass::from(c.as_str())))
            .set_tagging(self.tagging.clone())
            .checksum_crc32_c(crc32c_header(&data))
            .body(ByteStream::from(data));
        sse_create!(request, &self.encryption)
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.write_error("upload to", key, class, e))?;
        Ok(())
    }

    pub(super) async fn get_object_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        if range.is_empty() {
            return Err(Error::service(format!("empty range requested from {}", self.url(key))));
        }
        let request = self.client.get_object().bucket(&self.bucket).key(key).range(format!(
            "bytes={}-{}",
            range.start,
            range.end - 1
        ));
        let out = match sse_c!(request, self.customer_key()).send().await {
            Ok(out) => out,
            // A range starting at 0 is unsatisfiable only on an empty object.
            Err(e) if range.start == 0 && http_status(&e) == Some(416) => {
                return match self.head_object(key).await? {
                    Some((0, metadata)) => Ok(Fetched { data: Bytes::new(), total_size: 0, metadata }),
                    _ => Err(classify("download", &self.url(key), e)),
                };
            }
            Err(e) => return Err(classify("download", &self.url(key), e)),
        };
        let total_size = match out.content_range() {
            Some(cr) => parse_content_range_total(cr).ok_or_else(|| {
                Error::service(format!("download {}: unparsable Content-Range {cr:?}", self.url(key)))
            })?,
            // A server that ignores Range sends the whole object.
            None => out.content_length().unwrap_or(0).max(0) as u64,
        };
        let whole = out.content_range().is_none();
        let metadata = from_map(out.metadata());
        // Read straight into one buffer of the announced size: collecting
        // the body and then joining it would hold every range twice.
        let expected = out.content_length().unwrap_or(0).max(0) as usize;
        let mut buf = BytesMut::with_capacity(expected);
        let mut body = out.body;
        loop {
            match body.try_next().await {
                Ok(Some(piece)) => buf.extend_from_slice(&piece),
                Ok(None) => break,
                Err(e) => {
                    let why = crate::error::chain(&e);
                    // The SDK checks the service's stored checksum at the end
                    // of the body: a mismatch is damage at rest, which no
                    // retry mends.
                    if why.to_ascii_lowercase().contains("checksum mismatch") {
                        return Err(Error::integrity(format!(
                            "download {}: the service's stored checksum does not match the bytes: {why}",
                            self.url(key)
                        )));
                    }
                    return Err(Error::transient(format!(
                        "download {}: the response broke off after {} bytes: {why}",
                        self.url(key),
                        buf.len()
                    )));
                }
            }
        }
        if buf.len() != expected {
            return Err(Error::transient(format!(
                "download {}: the response ended after {} of {expected} bytes",
                self.url(key),
                buf.len()
            )));
        }
        let mut data = buf.freeze();
        if whole {
            let end = range.end.min(data.len() as u64) as usize;
            let start = (range.start as usize).min(end);
            data = data.slice(start..end);
        }
        Ok(Fetched { data, total_size, metadata })
    }

    /// The object's size and metadata, or `None` when there is none.
    pub(super) async fn head_object(&self, key: &str) -> Result<Option<(u64, Metadata)>> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        match sse_c!(request, self.customer_key()).send().await {
            Ok(out) => Ok(Some((out.content_length().unwrap_or(0).max(0) as u64, from_map(out.metadata())))),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(classify("look up", &self.url(key), e)),
        }
    }

    pub(super) async fn list_objects(
        &self,
        prefix: &str,
        next: Option<String>,
        limit: Option<usize>,
    ) -> Result<ListPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(next)
            .set_max_keys(limit.map(|l| l.min(1000) as i32))
            .send()
            .await
            .map_err(|e| classify("list", &self.url(prefix), e))?;
        let objects = out
            .contents()
            .iter()
            .filter_map(|o| {
                let cold = o.storage_class().is_some_and(|c| is_cold_class(c.as_str()));
                Some(ObjectMeta { key: o.key()?.to_string(), size: o.size().unwrap_or(0).max(0) as u64, cold })
            })
            .collect();
        let next = if out.is_truncated() == Some(true) {
            Some(out.next_continuation_token().map(str::to_string).ok_or_else(|| {
                Error::service(format!("list {}: truncated listing without a continuation token", self.url(prefix)))
            })?)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    pub(super) async fn delete_objects(&self, keys: &[String]) -> Result<DeleteOutcome> {
        if keys.is_empty() {
            return Ok(DeleteOutcome::default());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            // DeleteObjects requires a body checksum.
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| classify("delete from", &self.url(&keys[0]), e))?;
        if let Some(first) = out.errors().first() {
            return Err(Error::service(format!(
                "delete {} failed: {}: {} ({} of {} keys not deleted)",
                self.url(first.key().unwrap_or("?")),
                first.code().unwrap_or("error"),
                first.message().unwrap_or(""),
                out.errors().len(),
                keys.len()
            ))
            .with_code(first.code()));
        }
        Ok(DeleteOutcome::default())
    }
}

/// Storage classes whose objects may need a restore before a read.
/// Intelligent-Tiering is here because of its opt-in archive tiers.
pub(super) fn is_cold_class(class: &str) -> bool {
    ARCHIVED_CLASSES.contains(&class) || class == "INTELLIGENT_TIERING"
}

pub(super) fn to_map(metadata: &Metadata) -> Option<HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.iter().cloned().collect())
}

pub(super) fn from_map(map: Option<&HashMap<String, String>>) -> Metadata {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// The request's CRC32C, which the service verifies before storing the
/// bytes. Sent as a plain header computed here: some servers (Garage) refuse
/// the SDK's trailing-checksum encoding on unsigned payloads.
pub(super) fn crc32c_header(data: &[u8]) -> String {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// `bytes 0-99/1234` -> 1234.
fn parse_content_range_total(value: &str) -> Option<u64> {
    value.rsplit('/').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_header_matches_s3s_examples() {
        // CRC32C("hello world") = 0xc99465aa, as S3 documents it: yZRlqg==
        assert_eq!(crc32c_header(b"hello world"), "yZRlqg==");
    }

    #[test]
    fn content_range_total() {
        assert_eq!(parse_content_range_total("bytes 0-99/1234"), Some(1234));
        assert_eq!(parse_content_range_total("bytes */0"), Some(0));
        assert_eq!(parse_content_range_total("garbage"), None);
    }
}
