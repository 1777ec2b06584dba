//! Amazon S3 and S3-compatible services (MinIO, Ceph, Garage, ...) through
//! aws-sdk-s3: the [`Store`] for a bucket.
//!
//! - [`client`]: the SDK client from [`S3Settings`] (addressing, the
//!   bucket-in-endpoint interceptor);
//! - [`objects`]: single-request writes, ranged reads, listings, deletes;
//! - [`keys`]: listings and deletes that no character of a key can break;
//! - [`multipart`]: uploads in parts and their completion;
//! - [`sse`]: the server-side encryption and tagging headers of writes;
//! - [`restore`]: the state of archived objects and restore requests;
//! - [`lock`]: Object Lock (writes confirmed locked), versions, deletes by
//!   version id.

use std::ops::Range;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::aws::{self, Credentials};
use super::{
    BucketLock, CredentialSource, DeleteOutcome, Fetched, ListPage, LockState, Metadata, MultipartUpload, ObjectClass,
    ObjectHead, ObjectState, RestoreRequested, Store, VersionPage,
};
use crate::config::{Encryption, LockMode, ObjectLock, RestoreTier};
use crate::error::{Error, Result};
pub use checksums::Checksums;

mod checksums;
mod client;
mod keys;
pub(crate) mod lock;
mod multipart;
mod objects;
mod restore;
mod sse;

/// Everything the bucket store needs, and nothing more.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub connection: aws::Connection,
    pub bucket: String,
    /// Full URL, or `None` for AWS's endpoint of the region.
    pub endpoint: Option<String>,
    /// `<endpoint>/<bucket>/<key>` rather than `<bucket>.<endpoint>/<key>`.
    pub force_path_style: bool,
    /// The endpoint itself selects the bucket: requests go to `<endpoint>/<key>`.
    pub bucket_in_endpoint: bool,
    /// Storage class of payloads and of everything else; `None`: the
    /// bucket's default (no header sent, which every S3 server accepts).
    pub payload_class: Option<String>,
    pub metadata_class: Option<String>,
    pub encryption: Encryption,
    /// Tags on every object written.
    pub tags: Vec<(String, String)>,
    /// Which request checksums are sent (legacy servers refuse some).
    pub checksums: Checksums,
    /// Lookups ask for the stored full-object checksum (only when a
    /// restore may need it: with SSE-KMS, S3 wants kms:Decrypt for it).
    pub stored_checksums: bool,
    /// Object Lock on every object written (not on probes); `None`: none.
    pub lock: Option<ObjectLock>,
}

#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    /// The service, for messages: the endpoint URL, or AWS and the region.
    server: String,
    payload_class: Option<String>,
    metadata_class: Option<String>,
    encryption: Encryption,
    /// `x-amz-tagging` value for every write.
    tagging: Option<String>,
    checksums: Checksums,
    stored_checksums: bool,
    lock: Option<ObjectLock>,
    credentials: Credentials,
}

impl S3Store {
    /// The store; sends no request.
    pub fn new(settings: &S3Settings, credentials: Credentials) -> Result<S3Store> {
        Ok(S3Store {
            client: client::build(settings, &credentials)?,
            bucket: settings.bucket.clone(),
            server: server_name(settings),
            payload_class: settings.payload_class.clone(),
            metadata_class: settings.metadata_class.clone(),
            encryption: settings.encryption.clone(),
            tagging: sse::tagging(&settings.tags),
            checksums: settings.checksums,
            stored_checksums: settings.stored_checksums && !settings.checksums.legacy(),
            lock: settings.lock,
            credentials,
        })
    }

    fn class_of(&self, class: ObjectClass) -> Option<&String> {
        match class {
            ObjectClass::Payload => self.payload_class.as_ref(),
            ObjectClass::Metadata => self.metadata_class.as_ref(),
        }
    }
}

/// `the server at <endpoint>`, or `AWS S3 in <region>`.
pub fn server_name(settings: &S3Settings) -> String {
    match &settings.endpoint {
        Some(e) => format!("the server at {e}"),
        None => format!("AWS S3 in {}", settings.connection.region),
    }
}

#[async_trait]
impl Store for S3Store {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
        self.put_object(key, data, metadata, class, true).await
    }

    async fn put_probe(&self, key: &str, data: Bytes, class: ObjectClass) -> Result<()> {
        self.put_object(key, data, &Vec::new(), class, false).await
    }

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.create_multipart(key, metadata, class).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        self.get_object_range(key, range).await
    }

    async fn head(&self, key: &str) -> Result<ObjectHead> {
        match self.head_object(key).await? {
            Some(head) => Ok(head),
            None => Err(Error::not_found(format!("{} does not exist", self.url(key)))),
        }
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        self.head_state(key).await
    }

    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        self.restore_object(key, tier, days).await
    }

    async fn credentials_source(&self) -> Result<CredentialSource> {
        self.credentials.source().await
    }

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        self.list_objects(prefix, next, limit).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteOutcome> {
        self.delete_objects(keys).await
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.abort_multipart(key, upload_id).await
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<super::OpenUpload>>> {
        self.list_uploads(prefix).await
    }

    async fn defer_delete(&self, key: &str) -> Result<()> {
        self.write_deferred(key).await
    }

    async fn deferred_deletes(&self, prefix: &str) -> Result<Vec<String>> {
        self.read_deferred(prefix).await
    }

    async fn bucket_lock(&self) -> Result<BucketLock> {
        self.bucket_lock_config().await
    }

    async fn list_versions_page(&self, prefix: &str, next: Option<(String, String)>) -> Result<VersionPage> {
        self.list_versions(prefix, next).await
    }

    async fn delete_versions(&self, versions: &[(String, String)], bypass_governance: bool) -> Result<DeleteOutcome> {
        self.delete_object_versions(versions, bypass_governance).await
    }

    async fn lock_state(&self, key: &str, version: Option<&str>) -> Result<LockState> {
        self.lock_state_of(key, version).await
    }

    async fn set_retention(
        &self,
        key: &str,
        version: Option<&str>,
        mode: LockMode,
        until: chrono::DateTime<chrono::Utc>,
        bypass_governance: bool,
    ) -> Result<()> {
        self.put_retention(key, version, mode, until, bypass_governance).await
    }

    async fn set_legal_hold(&self, key: &str, version: Option<&str>, on: bool) -> Result<()> {
        self.put_legal_hold(key, version, on).await
    }
}
