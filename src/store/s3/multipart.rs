//! Multipart uploads: CreateMultipartUpload, UploadPart (each with its
//! CRC32C or CRC-64/NVME), CompleteMultipartUpload (with the full-object
//! CRC-64/NVME in that mode), AbortMultipartUpload, and the listing of
//! uploads left open.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumType, CompletedMultipartUpload, CompletedPart, StorageClass};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::checksums::{RequestChecksums as _, crc64_header};
use super::lock::{Planned, lock_headers};
use super::objects::{content_md5, not_s3, to_map};
use super::sse::{sse_c, sse_create};
use super::{Checksums, S3Store};
use crate::config::CustomerKey;
use crate::error::{Error, Result};
use crate::store::aws::{classify, http_status};
use crate::store::{Metadata, MultipartUpload, ObjectClass, PartTag, Store, paging};

impl S3Store {
    pub(super) async fn create_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        let planned = self.planned_lock();
        let request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(to_map(metadata))
            .set_storage_class(self.class_of(class).map(|c| StorageClass::from(c.as_str())))
            .set_tagging(self.tagging.clone())
            // Every part carries its CRC (but in the legacy modes): also
            // what S3 requires of uploads with a retention. CRC-64/NVME is
            // always a full-object checksum.
            .set_checksum_algorithm(match self.checksums {
                Checksums::Crc32c => Some(ChecksumAlgorithm::Crc32C),
                Checksums::Crc64nvme => Some(ChecksumAlgorithm::Crc64Nvme),
                Checksums::Md5 | Checksums::None => None,
            })
            .set_checksum_type((self.checksums == Checksums::Crc64nvme).then_some(ChecksumType::FullObject));
        let request = lock_headers!(request, planned.as_ref());
        let out = sse_create!(request, &self.encryption)
            .send()
            .await
            .map_err(|e| self.write_error("start multipart upload to", key, class, e))?;
        let upload_id = out.upload_id().ok_or_else(|| {
            Error::service(format!("start multipart upload to {}: the server returned no upload id", self.url(key)))
        })?;
        Ok(Box::new(S3Multipart {
            store: planned.map(|p| (self.clone(), p)),
            server: self.server.clone(),
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            customer_key: self.customer_key().cloned(),
            checksums: self.checksums,
            part_crcs: Default::default(),
        }))
    }

    pub(super) async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        match result {
            Ok(_) => Ok(()),
            // Gone already, or never this server's (an id the journal noted
            // for another service): nothing to abort here.
            Err(e) if http_status(&e) == Some(404) || matches!(e.code(), Some("NoSuchUpload" | "InvalidRequest")) => {
                Ok(())
            }
            Err(e) => Err(classify("abort multipart upload to", &self.url(key), e)),
        }
    }

    /// The open uploads under `prefix`; `None` when the server cannot list
    /// them (s3s-fs and some others).
    pub(super) async fn list_uploads(&self, prefix: &str) -> Result<Option<Vec<crate::store::OpenUpload>>> {
        let listed = paging::collect(|marker: Option<(Option<String>, Option<String>)>| async move {
            let (key_marker, id_marker) = marker.unwrap_or_default();
            let out = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .encoding_type(aws_sdk_s3::types::EncodingType::Url)
                .customize()
                .interceptor(super::keys::MendRawKeys)
                .send()
                .await
                .map_err(|e| {
                    let unsupported = matches!(http_status(&e), Some(501)) || e.code() == Some("NotImplemented");
                    let error = classify("list open uploads under", &self.url(prefix), e);
                    if unsupported { error.with_code(Some(UNSUPPORTED)) } else { error }
                })?;
            let encoded = out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
            let uploads = out
                .uploads()
                .iter()
                .filter_map(|u| {
                    Some(crate::store::OpenUpload {
                        key: super::keys::decode(u.key()?, encoded),
                        upload_id: u.upload_id()?.to_string(),
                        initiated: u.initiated().and_then(super::objects::utc),
                    })
                })
                .collect();
            let next_key = out.next_key_marker().map(|k| super::keys::decode(k, encoded));
            let next = (out.is_truncated() == Some(true) && next_key.is_some())
                .then(|| (next_key, out.next_upload_id_marker().map(str::to_string)));
            Ok((uploads, next))
        })
        .await;
        match listed {
            Ok(uploads) => Ok(Some(uploads)),
            Err(e) if e.code() == Some(UNSUPPORTED) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The code given to a listing the server does not implement.
const UNSUPPORTED: &str = "NotImplemented";

struct S3Multipart {
    /// With a lock: the store that confirms it after completion, and the lock.
    store: Option<(S3Store, Planned)>,
    server: String,
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    customer_key: Option<CustomerKey>,
    checksums: Checksums,
    /// CRC-64/NVME and length of each part sent (in that mode), combined
    /// into the full-object checksum at completion.
    part_crcs: Mutex<BTreeMap<u32, (u64, u64)>>,
}

impl S3Multipart {
    /// The full-object CRC-64/NVME of `parts`, when every one was sent by
    /// this upload (an upload resumed elsewhere lets the service compute it).
    fn whole_crc64(&self, parts: &[PartTag]) -> Option<String> {
        let crcs = self.part_crcs.lock().unwrap_or_else(|e| e.into_inner());
        let mut whole = crate::crc::crc64(b"");
        for part in parts {
            let (crc, len) = crcs.get(&part.number)?;
            whole = crate::crc::combine(whole, *crc, *len);
        }
        Some(crc64_header(whole))
    }

    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    /// After completion: the object's lock read back (and applied where
    /// the server ignored CreateMultipartUpload's lock headers).
    async fn confirm_lock(&self, version: Option<&str>) -> Result<()> {
        match &self.store {
            Some((store, planned)) => store.confirm_lock(&self.key, version, planned).await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl MultipartUpload for S3Multipart {
    fn upload_id(&self) -> String {
        self.upload_id.clone()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let crc64 = (self.checksums == Checksums::Crc64nvme).then(|| (crc_fast::crc64_nvme(&data), data.len() as u64));
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number as i32)
            .set_checksum_crc32_c(self.checksums.crc32c(&data))
            .set_checksum_crc64_nvme(crc64.map(|(crc, _)| crc64_header(crc)))
            // Locked uploads: Content-MD5 too, which some servers demand of
            // every part of an object with a retention.
            .set_content_md5(self.store.as_ref().map(|_| content_md5(&data)).or_else(|| self.checksums.md5(&data)))
            .body(ByteStream::from(data));
        let mut request = sse_c!(request, self.customer_key.as_ref()).customize();
        if self.checksums.unsigned_payload() {
            request = request.disable_payload_signing();
        }
        let out = request.send().await.map_err(|e| classify(&format!("upload part {number} of"), &self.url(), e))?;
        if out.e_tag().is_none_or(str::is_empty) {
            return Err(not_s3(&self.server, &format!("upload part {number} of"), &self.url()));
        }
        if let Some(crc) = crc64 {
            self.part_crcs.lock().unwrap_or_else(|e| e.into_inner()).insert(number, crc);
        }
        let checksum = match self.checksums {
            Checksums::Crc64nvme => {
                out.checksum_crc64_nvme().map(str::to_string).or(crc64.map(|(crc, _)| crc64_header(crc)))
            }
            _ => out.checksum_crc32_c().map(str::to_string),
        };
        Ok(PartTag { number, etag: out.e_tag().map(str::to_string), checksum })
    }

    async fn complete(&self, mut parts: Vec<PartTag>) -> Result<()> {
        parts.sort_by_key(|p| p.number);
        let expected_etag = composite_etag(&parts);
        let full_object = self.checksums == Checksums::Crc64nvme;
        let whole = if full_object { self.whole_crc64(&parts) } else { None };
        let completed = parts
            .into_iter()
            .map(|p| {
                let part = CompletedPart::builder().part_number(p.number as i32).set_e_tag(p.etag);
                match full_object {
                    true => part.set_checksum_crc64_nvme(p.checksum),
                    false => part.set_checksum_crc32_c(p.checksum),
                }
                .build()
            })
            .collect();
        let request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .set_checksum_crc64_nvme(whole)
            .set_checksum_type(full_object.then_some(ChecksumType::FullObject))
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build());
        // SSE-C objects stored with checksums need the key to complete.
        let err = match sse_c!(request, self.customer_key.as_ref()).send().await {
            Ok(out) if out.e_tag().is_some_and(|t| !t.is_empty()) => {
                return self.confirm_lock(out.version_id()).await;
            }
            // A 200 that is not S3's: whether the object is ours is checked below.
            Ok(_) => not_s3(&self.server, "complete multipart upload to", &self.url()),
            Err(e) => classify("complete multipart upload to", &self.url(), e),
        };
        // A completion retried after its answer was lost finds the upload
        // gone (NoSuchUpload, or AccessDenied on some servers) although it
        // succeeded: the object is there, with exactly our parts' ETag.
        if let Some(expected) = expected_etag {
            let head = self.client.head_object().bucket(&self.bucket).key(&self.key);
            if let Ok(out) = sse_c!(head, self.customer_key.as_ref()).send().await
                && out.e_tag().map(|t| t.trim_matches('"')) == Some(expected.as_str())
            {
                return self.confirm_lock(out.version_id()).await;
            }
        }
        Err(err)
    }

    async fn abort(&self) -> Result<()> {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .send()
            .await
            .map_err(|e| classify("abort multipart upload to", &self.url(), e))?;
        Ok(())
    }
}

/// The ETag S3 gives a completed multipart object: the MD5 of the parts'
/// binary MD5s, then `-<parts>`. `None` when a part's ETag is not an MD5.
fn composite_etag(parts: &[PartTag]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for part in parts {
        let digest = hex::decode(part.etag.as_deref()?.trim_matches('"')).ok()?;
        if digest.len() != 16 {
            return None;
        }
        md5.update(&digest);
    }
    Some(format!("{}-{}", hex::encode(md5.finalize()), parts.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composite_etags() {
        let tag = |etag: &str| PartTag { number: 1, etag: Some(format!("\"{etag}\"")), checksum: None };
        let parts = [tag("00010203040506070809000000000000"), tag("0a0b0c0d0e0f00000000000000000000")];
        assert!(composite_etag(&parts).unwrap().ends_with("-2"));
        assert_eq!(composite_etag(&[tag("not-an-md5")]), None);
        // MD5 of the 16 bytes 0x00..0x0f is 1ac1ef01e96caf1be0d329331a4fc2a8.
        let one = [tag("000102030405060708090a0b0c0d0e0f")];
        assert_eq!(composite_etag(&one).unwrap(), "1ac1ef01e96caf1be0d329331a4fc2a8-1");
    }
}
