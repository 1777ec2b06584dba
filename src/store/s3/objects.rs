//! Objects in one request each: PutObject, ranged GetObject, HeadObject,
//! ListObjectsV2 (keys URL-encoded, see [`super::keys`]) and
//! DeleteObjects.

use std::collections::HashMap;
use std::ops::Range;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, Delete, EncodingType, ObjectIdentifier, StorageClass,
};
use bytes::Bytes;

use super::S3Store;
use super::checksums::{RequestChecksums as _, parse_crc64_header};
use super::lock::lock_headers;
use super::sse::{sse_c, sse_create};
use crate::config::{ARCHIVED_CLASSES, CustomerKey, Encryption};
use crate::error::{Error, Result};
use crate::store::aws::{HttpResponse, classify, http_status};
use crate::store::{DeleteOutcome, Fetched, ListPage, Metadata, ObjectClass, ObjectHead, ObjectMeta, Store};

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
        locked: bool,
    ) -> Result<()> {
        let planned = if locked { self.planned_lock() } else { None };
        // S3 requires Content-MD5 (or x-amz-sdk-checksum-algorithm) of a
        // write with a retention; moto insists on one of these two.
        let md5 = planned.as_ref().map(|_| content_md5(&data));
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(to_map(metadata))
            .set_storage_class(self.class_of(class).map(|c| StorageClass::from(c.as_str())))
            .set_tagging(self.tagging.clone())
            // Also the checksum S3 requires of a write with a retention.
            .set_checksum_crc32_c(self.checksums.crc32c(&data))
            .set_checksum_crc64_nvme(self.checksums.crc64nvme(&data))
            .set_content_md5(md5.or_else(|| self.checksums.md5(&data)))
            .body(ByteStream::from(data));
        let request = lock_headers!(request, planned.as_ref());
        let mut request = sse_create!(request, &self.encryption).customize();
        if self.checksums.unsigned_payload() {
            request = request.disable_payload_signing();
        }
        let out = request.send().await.map_err(|e| self.write_error("upload to", key, class, e))?;
        // Every S3 server answers a stored object with its ETag; a 200
        // without one came from something else (a gateway's page).
        if out.e_tag().is_none_or(str::is_empty) {
            return Err(not_s3(&self.server, "upload to", &self.url(key)));
        }
        if let Some(planned) = &planned {
            self.confirm_lock(key, out.version_id(), planned).await?;
        }
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
                    Some(ObjectHead { size: 0, metadata, etag, .. }) => {
                        Ok(Fetched { data: Bytes::new(), total_size: 0, metadata, etag })
                    }
                    _ => Err(classify("download", &self.url(key), e)),
                };
            }
            Err(e) => return Err(classify("download", &self.url(key), e)),
        };
        let etag = out.e_tag().filter(|t| !t.is_empty()).map(str::to_string);
        if etag.is_none() {
            return Err(not_s3(&self.server, "download", &self.url(key)));
        }
        let length = out.content_length().unwrap_or(0).max(0) as u64;
        let total_size = match out.content_range() {
            Some(cr) => {
                let (start, end, total) = parse_content_range(cr).ok_or_else(|| {
                    Error::transient(format!("download {}: unparsable Content-Range {cr:?}", self.url(key)))
                })?;
                // The bytes must be the ones asked for, and as many as said.
                if start != range.start || end.checked_sub(start).and_then(|n| n.checked_add(1)) != Some(length) {
                    return Err(Error::transient(format!(
                        "download {}: asked for bytes {}..{}, the answer holds {cr:?} ({length} bytes)",
                        self.url(key),
                        range.start,
                        range.end
                    )));
                }
                total
            }
            // A server may answer a range covering the whole object with
            // the whole object; anything else without a Content-Range is
            // not the range asked for.
            None if range.start == 0
                && length <= range.end
                && !out.content_type().is_some_and(|t| t.starts_with("text/html")) =>
            {
                length
            }
            None => return Err(not_s3(&self.server, "download", &self.url(key))),
        };
        let whole = out.content_range().is_none();
        let metadata = from_map(out.metadata());
        // Read straight into one buffer of the announced size: collecting
        // the body and then joining it would hold every range twice.
        let expected = out.content_length().unwrap_or(0).max(0) as usize;
        let mut buf = crate::store::buffers::take(expected);
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
        let mut data = crate::store::buffers::freeze(buf);
        if whole {
            let end = range.end.min(data.len() as u64) as usize;
            let start = (range.start as usize).min(end);
            data = data.slice(start..end);
        }
        Ok(Fetched { data, total_size, metadata, etag })
    }

    /// The object's size, metadata and ETag, or `None` when there is none.
    pub(super) async fn head_object(&self, key: &str) -> Result<Option<ObjectHead>> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        // The stored full-object checksum, where the service keeps one,
        // when a restore may need it (`verify: available`).
        let request = request.set_checksum_mode(self.stored_checksums.then_some(ChecksumMode::Enabled));
        match sse_c!(request, self.customer_key()).send().await {
            Ok(out) if out.e_tag().is_none_or(str::is_empty) => Err(not_s3(&self.server, "look up", &self.url(key))),
            Ok(out) => Ok(Some(ObjectHead {
                size: out.content_length().unwrap_or(0).max(0) as u64,
                metadata: from_map(out.metadata()),
                etag: out.e_tag().map(str::to_string),
                // CRC-64/NVME is only ever a full-object checksum.
                full_crc64: out
                    .checksum_crc64_nvme()
                    .filter(|_| out.checksum_type().is_none_or(|t| *t == ChecksumType::FullObject))
                    .and_then(parse_crc64_header),
            })),
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
            .encoding_type(EncodingType::Url)
            .customize()
            .interceptor(super::keys::MendRawKeys)
            .send()
            .await
            .map_err(|e| classify("list", &self.url(prefix), e))?;
        // A ListBucketResult names its bucket; a page from anything else
        // (a gateway's XML) does not, and must not pass for "no objects".
        if out.name() != Some(self.bucket.as_str()) {
            return Err(not_s3(&self.server, "list", &self.url(prefix)));
        }
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let objects: Vec<ObjectMeta> = out
            .contents()
            .iter()
            .filter_map(|o| {
                let cold = o.storage_class().is_some_and(|c| is_cold_class(c.as_str()));
                Some(ObjectMeta {
                    key: super::keys::decode(o.key()?, encoded),
                    size: o.size().unwrap_or(0).max(0) as u64,
                    cold,
                    last_modified: o.last_modified().and_then(utc),
                })
            })
            .collect();
        // Keys outside the prefix asked for (a server that ignores the
        // prefix) are a fault: a delete must never reach them.
        if let Some(foreign) = objects.iter().find(|o| !o.key.starts_with(prefix)) {
            return Err(Error::service(format!(
                "list {}: {} answered with key {:?}, which is outside the prefix asked for; nothing is done with \
                 such a listing",
                self.url(prefix),
                self.server,
                crate::layout::printable(&foreign.key)
            )));
        }
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
        let (keys, alone): (Vec<String>, Vec<String>) = keys.iter().cloned().partition(|k| super::keys::xml_safe(k));
        for key in &alone {
            self.delete_one(key, None, false).await?;
        }
        if keys.is_empty() {
            return Ok(DeleteOutcome::default());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        // Not quiet: every key must come back as deleted or as an error,
        // so an answer that is not S3's cannot pass for a delete.
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(false)
            .build()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            // DeleteObjects requires a body checksum (legacy modes: the
            // client's interceptor sends Content-MD5 instead).
            .set_checksum_algorithm((!self.checksums.legacy()).then_some(ChecksumAlgorithm::Crc32C))
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
        let answered: std::collections::HashSet<&str> = out.deleted().iter().filter_map(|d| d.key()).collect();
        if let Some(missing) = keys.iter().find(|k| !answered.contains(k.as_str())) {
            return Err(not_s3(&self.server, "delete", &self.url(missing)));
        }
        Ok(DeleteOutcome::default())
    }
}

/// The SDK's date as chrono's.
pub(super) fn utc(time: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(time.secs(), time.subsec_nanos())
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

/// The `Content-MD5` value of `data`.
pub(super) fn content_md5(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    aws_smithy_types::base64::encode(Md5::digest(data))
}

/// `bytes 0-99/1234` -> (0, 99, 1234).
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total.trim().parse().ok()?))
}

/// A 200 answer that is not what S3 answers: retried, as a load balancer's
/// page usually passes.
pub(super) fn not_s3(server: &str, action: &str, url: &str) -> Error {
    Error::transient(format!(
        "{action} {url}: {server} answered with something that is not an S3 response (no ETag, no Content-Range, \
         or not the document asked for)"
    ))
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
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0, 99, 1234)));
        assert_eq!(parse_content_range("bytes */0"), None);
        assert_eq!(parse_content_range("garbage"), None);
    }
}
