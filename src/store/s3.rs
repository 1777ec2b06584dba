//! Amazon S3 and S3-compatible services (MinIO, Ceph, Garage, ...) through
//! aws-sdk-s3.
//!
//! Set-up is tuned for a process that lives for one command: static keys
//! from the config are used as they are (no credential chain, so no
//! instance-metadata probe that costs a timeout off EC2), the HTTP client is
//! built without TLS when TLS is off (loading the system's root certificates
//! is the slowest part of start-up), and nothing is requested before the
//! command needs it.

use std::collections::HashMap;
use std::ops::Range;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{
    Region, RequestChecksumCalculation, ResponseChecksumValidation, retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, GlacierJobParameters, ObjectIdentifier,
    RestoreRequest, ServerSideEncryption, StorageClass, Tier,
};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{SharedHttpConnector, http_client_fn};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use bytes::{Bytes, BytesMut};

use super::{
    Fetched, ListPage, Metadata, MultipartUpload, ObjectClass, ObjectMeta, ObjectState, PartTag, Readiness,
    RestoreRequested, RestoreTier, Store,
};
use crate::config::{ARCHIVED_CLASSES, Config, CustomerKey, Encryption};
use crate::error::{Error, Result};

pub struct S3Store {
    client: Client,
    bucket: String,
    /// The service, for messages: the endpoint URL, or AWS and the region.
    server: String,
    /// Storage classes of payloads and of everything else; `None`: the
    /// bucket's default (no header sent, which every S3 server accepts).
    payload_class: Option<String>,
    metadata_class: Option<String>,
    encryption: Encryption,
    /// `x-amz-tagging` value for every write.
    tagging: Option<String>,
    credentials: SharedCredentialsProvider,
    static_keys: Option<String>,
    settings: Vec<(&'static str, String)>,
}

/// Sets the server-side encryption headers of a write that creates an
/// object (PutObject, CreateMultipartUpload).
macro_rules! sse_create {
    ($request:expr, $encryption:expr) => {{
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
            Encryption::Customer(key) => sse_c!(request, Some(key)),
        }
    }};
}

/// Sets the SSE-C headers (the key and its MD5) when SSE-C is in use: every
/// request that writes or reads an SSE-C object's data or metadata needs them.
macro_rules! sse_c {
    ($request:expr, $key:expr) => {{
        let request = $request;
        let key: Option<&CustomerKey> = $key;
        match key {
            Some(key) => request
                .sse_customer_algorithm("AES256")
                .sse_customer_key(&key.key_base64)
                .sse_customer_key_md5(&key.key_md5_base64),
            None => request,
        }
    }};
}

impl S3Store {
    pub fn new(config: &Config, credentials: SharedCredentialsProvider) -> Result<S3Store> {
        let mut builder = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .http_client(http_client(config, config.endpoint.as_deref())?)
            // Retries happen one level up (store::retry), for every request
            // alike, with the data still held and each attempt logged.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .read_timeout(config.read_timeout)
                    .build(),
            )
            // We choose the checksum per request (CRC32C, cheap on this
            // hardware) instead of the SDK default (CRC32 on everything).
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
            // Path-style by default for S3-compatible servers (as the Go
            // plugin always did: their buckets rarely have DNS names),
            // virtual-host for AWS; `force_path_style` decides.
            .force_path_style(config.force_path_style);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        if config.remove_duplicate_bucket {
            builder = builder.interceptor(StripBucketFromPath { bucket: config.bucket.clone() });
        }
        builder = builder.credentials_provider(credentials.clone());
        let server = match &config.endpoint {
            Some(e) => format!("the server at {e}"),
            None => format!("AWS S3 in {}", config.region),
        };
        let tagging = (!config.object_tags.is_empty()).then(|| {
            config
                .object_tags
                .iter()
                .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        Ok(S3Store {
            client: Client::from_conf(builder.build()),
            bucket: config.bucket.clone(),
            server,
            payload_class: config.storage_class.clone(),
            metadata_class: config.metadata_storage_class.clone(),
            encryption: config.encryption.clone(),
            tagging,
            credentials,
            static_keys: config.keys.as_ref().map(|k| k.access_key_id.clone()),
            settings: describe_settings(config),
        })
    }

    fn customer_key(&self) -> Option<&CustomerKey> {
        match &self.encryption {
            Encryption::Customer(key) => Some(key),
            _ => None,
        }
    }

    fn class_of(&self, class: ObjectClass) -> Option<&String> {
        match class {
            ObjectClass::Payload => self.payload_class.as_ref(),
            ObjectClass::Metadata => self.metadata_class.as_ref(),
        }
    }

    /// An error of a request that creates an object, with the storage class
    /// named when the server refused it: which option to change, and where.
    fn write_error<E>(
        &self,
        action: &str,
        key: &str,
        class: ObjectClass,
        err: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    ) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let refused_class = matches!(err.code(), Some("InvalidStorageClass"));
        let error = storage_error(action, &self.url(key), err);
        if !refused_class {
            return error;
        }
        let option = match class {
            ObjectClass::Payload => "storage_class",
            ObjectClass::Metadata => "metadata_storage_class",
        };
        let value = self.class_of(class).map(String::as_str).unwrap_or("STANDARD");
        Error::Storage(format!(
            "{} does not support storage class {value} (option {option}); choose a class it supports or remove the \
             option: {error}",
            self.server
        ))
    }
}

/// The config's static keys, or else the SDK's default chain (environment,
/// profile, web identity, instance metadata).
pub(super) async fn credentials(config: &Config) -> SharedCredentialsProvider {
    match &config.keys {
        Some(keys) => SharedCredentialsProvider::new(Credentials::new(
            &keys.access_key_id,
            &keys.secret_access_key,
            keys.session_token.clone(),
            None,
            "plugin-config",
        )),
        None => SharedCredentialsProvider::new(
            aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                .region(Region::new(config.region.clone()))
                .build()
                .await,
        ),
    }
}

/// `(what, value)` lines describing how requests are made, for `check`.
fn describe_settings(config: &Config) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    lines.push((
        "endpoint",
        match &config.endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3, region {}", config.region),
        },
    ));
    let addressing = if config.remove_duplicate_bucket {
        "the endpoint selects the bucket (remove_duplicate_bucket): <endpoint>/<key>".to_string()
    } else if config.force_path_style {
        "path-style: <endpoint>/<bucket>/<key>".to_string()
    } else {
        "virtual-host: <bucket>.<endpoint host>/<key>".to_string()
    };
    lines.push(("addressing", addressing));
    let tls = match (&config.endpoint, &config.ca_cert) {
        (Some(e), _) if e.starts_with("http://") => "off (http://)".to_string(),
        (_, Some(ca)) => format!("on, trusting the system roots and {}", ca.file),
        _ => "on, trusting the system roots".to_string(),
    };
    lines.push(("tls", tls));
    let class = |c: &Option<String>| match c {
        Some(c) => c.clone(),
        None => "the bucket's default (STANDARD unless a bucket policy says otherwise)".to_string(),
    };
    lines.push(("data storage class", class(&config.storage_class)));
    lines.push(("metadata storage class", class(&config.metadata_storage_class)));
    let encryption = match &config.encryption {
        Encryption::BucketDefault => "the bucket's default encryption".to_string(),
        Encryption::S3Managed => "SSE-S3 (AES256)".to_string(),
        Encryption::Kms { key_id, bucket_key, dual_layer } => format!(
            "{} with {}{}",
            if *dual_layer { "DSSE-KMS (aws:kms:dsse)" } else { "SSE-KMS (aws:kms)" },
            key_id.as_deref().map(|k| format!("key {k}")).unwrap_or_else(|| "the AWS managed key".to_string()),
            match bucket_key {
                Some(true) => ", S3 Bucket Key on",
                Some(false) => ", S3 Bucket Key off",
                None => "",
            }
        ),
        Encryption::Customer(key) => {
            format!("SSE-C with the key in {} (key MD5 {})", key.file, key.key_md5_base64)
        }
    };
    lines.push(("encryption", encryption));
    if !config.object_tags.is_empty() {
        let tags = config.object_tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        lines.push(("object tags", tags));
    }
    lines.push(("timeouts", format!("connect {:?}, read {:?}", config.connect_timeout, config.read_timeout)));
    lines
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `x-amz-restore`: `ongoing-request="true"`, or `ongoing-request="false",
/// expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` once the copy is readable.
fn parse_restore_header(value: &str) -> Readiness {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("ongoing-request=\"true\"") {
        return Readiness::Restoring;
    }
    let until = value
        .split_once("expiry-date=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .and_then(|date| chrono::DateTime::parse_from_rfc2822(date.trim()).ok().map(|d| d.with_timezone(&chrono::Utc)));
    if compact.contains("ongoing-request=\"false\"") { Readiness::Restored { until } } else { Readiness::Archived }
}

/// The HTTP client: plain HTTP without any TLS set-up when the endpoint is
/// `http://`, and the proxy from `http_proxy` or else from the environment
/// (`HTTPS_PROXY`, `NO_PROXY`, ...), as the Go plugin's HTTP stack did.
pub(super) fn http_client(
    config: &Config,
    endpoint: Option<&str>,
) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    let plain_http = endpoint.is_some_and(|e| e.starts_with("http://"));
    let proxy = proxy_config(config, plain_http)?;
    // ca_cert_file: these roots in addition to the system's.
    let tls_context = match &config.ca_cert {
        Some(ca) => Some(
            TlsContext::builder()
                .with_trust_store(TrustStore::default().with_pem_certificate(ca.pem.clone()))
                .build()
                .map_err(|e| Error::Config(format!("ca_cert_file {}: {}", ca.file, error_chain(&e))))?,
        ),
        None => None,
    };
    // The SDK asks for a connector for every request; one connector (and so
    // one connection pool) must serve them all, or every ranged GET and every
    // part would open a new connection (and a new TLS handshake).
    let connector: std::sync::OnceLock<SharedHttpConnector> = std::sync::OnceLock::new();
    Ok(http_client_fn(move |settings, components: &RuntimeComponents| {
        connector
            .get_or_init(|| {
                let mut builder = aws_smithy_http_client::Connector::builder().proxy_config(proxy.clone());
                builder.set_connector_settings(Some(settings.clone()));
                builder.set_sleep_impl(components.sleep_impl());
                let connector = if plain_http {
                    builder.build_http()
                } else {
                    let mut builder = builder.tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc));
                    if let Some(ctx) = &tls_context {
                        builder = builder.tls_context(ctx.clone());
                    }
                    builder.build()
                };
                SharedHttpConnector::new(connector)
            })
            .clone()
    }))
}

/// `http_proxy` with `no_proxy`; without `http_proxy`, the environment's
/// proxy for the endpoint's scheme, with `no_proxy` added to `NO_PROXY`.
fn proxy_config(config: &Config, plain_http: bool) -> Result<ProxyConfig> {
    let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()));
    let (url, from_env) = match (&config.http_proxy, &config.no_proxy) {
        (Some(url), _) => (url.clone(), false),
        (None, None) => return Ok(ProxyConfig::from_env()),
        (None, Some(_)) => {
            let names: &[&str] = if plain_http {
                &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
            } else {
                &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            };
            match env(names) {
                Some(url) => (url, true),
                None => return Ok(ProxyConfig::disabled()),
            }
        }
    };
    let proxy = ProxyConfig::all(url.as_str()).map_err(|e| {
        Error::Config(if from_env {
            format!("the proxy in the environment is not a valid proxy URL: {e}")
        } else {
            format!("http_proxy is not a valid proxy URL: {e}")
        })
    })?;
    let rules: Vec<String> = config
        .no_proxy
        .iter()
        .cloned()
        .chain(if from_env || config.no_proxy.is_none() { env(&["NO_PROXY", "no_proxy"]) } else { None })
        .collect();
    Ok(if rules.is_empty() { proxy } else { proxy.no_proxy(rules.join(",")) })
}

/// `remove_duplicate_bucket: true`: the endpoint's host already selects the
/// bucket, so requests go to `<endpoint>/<key>` instead of
/// `<endpoint>/<bucket>/<key>` (the Go plugin's option of the same name).
#[derive(Debug)]
struct StripBucketFromPath {
    bucket: String,
}

impl Intercept for StripBucketFromPath {
    fn name(&self) -> &'static str {
        "StripBucketFromPath"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let request = context.request_mut();
        let uri = request.uri().to_string();
        if let Some(stripped) = strip_bucket(&uri, &self.bucket) {
            request.set_uri(stripped)?;
        }
        Ok(())
    }
}

fn strip_bucket(uri: &str, bucket: &str) -> Option<String> {
    let scheme_end = uri.find("://")? + 3;
    let path_start = scheme_end + uri[scheme_end..].find('/')?;
    let rest = uri[path_start + 1..].strip_prefix(bucket)?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        let rest = if rest.starts_with('/') { rest.to_string() } else { format!("/{rest}") };
        Some(format!("{}{}", &uri[..path_start], rest))
    } else {
        None
    }
}

/// One line for any SDK failure: what we did, where, and what the service
/// (or the network) said, with the HTTP status and request id when known.
fn describe<E, R>(action: &str, url: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
    SdkError<E, R>: RequestId,
{
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => error_chain(err),
    };
    let request_id = err.request_id().map(|id| format!(", request id {id}")).unwrap_or_default();
    format!("{action} {url} failed: {}{request_id}", detail.replace('\n', " "))
}

pub(super) fn http_status<E>(
    err: &SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub(super) fn storage_error<E>(
    action: &str,
    url: &str,
    err: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = http_status(&err);
    let mut msg = describe(action, url, &err);
    if let Some(s) = status {
        msg.push_str(&format!(" (HTTP {s})"));
    }
    let transient = match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        _ => {
            matches!(status, Some(429 | 500..=599))
                || matches!(
                    err.code(),
                    Some(
                        "SlowDown"
                            | "RequestTimeout"
                            | "InternalError"
                            | "ServiceUnavailable"
                            | "ThrottlingException"
                            | "RequestTimeoutException"
                            | "ServiceUnavailableException"
                    )
                )
        }
    };
    match (err.code(), status) {
        // The last three are Glacier's (AWS, and moto's name for a missing vault).
        (Some("NoSuchKey" | "NotFound" | "ResourceNotFoundException" | "VaultNotFound"), _) | (None, Some(404)) => {
            Error::NotFound(msg)
        }
        (Some("InvalidObjectState"), _) => {
            Error::Archived(format!("{url} is in archived storage and has not been restored (thawed): {msg}"))
        }
        _ if transient => Error::Transient(msg),
        _ => Error::Storage(msg),
    }
}

#[async_trait]
impl Store for S3Store {
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
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

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        let request = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(to_map(metadata))
            .set_storage_class(self.class_of(class).map(|c| StorageClass::from(c.as_str())))
            .set_tagging(self.tagging.clone())
            .checksum_algorithm(ChecksumAlgorithm::Crc32C);
        let out = sse_create!(request, &self.encryption)
            .send()
            .await
            .map_err(|e| self.write_error("start multipart upload to", key, class, e))?;
        let upload_id = out.upload_id().ok_or_else(|| {
            Error::Storage(format!("start multipart upload to {}: the server returned no upload id", self.url(key)))
        })?;
        Ok(Box::new(S3Multipart {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            upload_id: upload_id.to_string(),
            customer_key: self.customer_key().cloned(),
        }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        if range.is_empty() {
            return Err(Error::Storage(format!("empty range requested from {}", self.url(key))));
        }
        let request = self.client.get_object().bucket(&self.bucket).key(key).range(format!(
            "bytes={}-{}",
            range.start,
            range.end - 1
        ));
        let result = sse_c!(request, self.customer_key()).send().await;
        let out = match result {
            Ok(out) => out,
            // A range starting at 0 is unsatisfiable only on an empty object.
            Err(e) if range.start == 0 && http_status(&e) == Some(416) => {
                return match self.head_object(key).await? {
                    Some((0, metadata)) => Ok(Fetched { data: Bytes::new(), total_size: 0, metadata }),
                    _ => Err(storage_error("download", &self.url(key), e)),
                };
            }
            Err(e) => return Err(storage_error("download", &self.url(key), e)),
        };
        let total_size = match out.content_range() {
            Some(cr) => parse_content_range_total(cr).ok_or_else(|| {
                Error::Storage(format!("download {}: unparsable Content-Range {cr:?}", self.url(key)))
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
                    let why = error_chain(&e);
                    // The SDK checks the service's stored checksum at the end
                    // of the body: a mismatch is damage at rest, which no
                    // retry mends.
                    if why.to_ascii_lowercase().contains("checksum mismatch") {
                        return Err(Error::Integrity(format!(
                            "download {}: the service's stored checksum does not match the bytes: {why}",
                            self.url(key)
                        )));
                    }
                    return Err(Error::Transient(format!(
                        "download {}: the response broke off after {} bytes: {why}",
                        self.url(key),
                        buf.len()
                    )));
                }
            }
        }
        if buf.len() != expected {
            return Err(Error::Transient(format!(
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

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_continuation_token(next)
            .set_max_keys(limit.map(|l| l.min(1000) as i32))
            .send()
            .await
            .map_err(|e| storage_error("list", &self.url(prefix), e))?;
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
                Error::Storage(format!("list {}: truncated listing without a continuation token", self.url(prefix)))
            })?)
        } else {
            None
        };
        Ok(ListPage { objects, next })
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        let out = sse_c!(request, self.customer_key())
            .send()
            .await
            .map_err(|e| storage_error("look up", &self.url(key), e))?;
        let class = out.storage_class().map(|c| c.as_str().to_string()).unwrap_or_else(|| "STANDARD".to_string());
        // Intelligent-Tiering objects may sit in its opt-in archive tiers.
        let archive_tier = out.archive_status().map(|a| a.as_str().to_string());
        let storage = match &archive_tier {
            Some(tier) => format!("{class} ({tier})"),
            None => class.clone(),
        };
        let readiness = if archive_tier.is_some() || ARCHIVED_CLASSES.contains(&class.as_str()) {
            out.restore().map(parse_restore_header).unwrap_or(Readiness::Archived)
        } else {
            Readiness::Ready
        };
        Ok(ObjectState { readiness, storage })
    }

    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        let tier = match tier {
            RestoreTier::Expedited => Tier::Expedited,
            RestoreTier::Standard => Tier::Standard,
            RestoreTier::Bulk => Tier::Bulk,
        };
        let job = GlacierJobParameters::builder()
            .tier(tier)
            .build()
            .map_err(|e| Error::Storage(format!("restore request for {}: {e}", self.url(key))))?;
        let request = RestoreRequest::builder().days(days as i32).glacier_job_parameters(job).build();
        match self.client.restore_object().bucket(&self.bucket).key(key).restore_request(request).send().await {
            Ok(_) => Ok(RestoreRequested::Started),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(RestoreRequested::AlreadyRestoring),
            // Not in an archived class: readable as it is.
            Err(e) if e.code() == Some("InvalidObjectState") => Ok(RestoreRequested::AlreadyReadable),
            Err(e) => Err(storage_error("request a restore of", &self.url(key), e)),
        }
    }

    async fn credentials_source(&self) -> Result<String> {
        use aws_credential_types::provider::ProvideCredentials;
        if let Some(id) = &self.static_keys {
            return Ok(format!("static keys from the plugin config (aws_access_key_id {})", mask(id)));
        }
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            Error::Config(format!(
                "no AWS credentials: the config has no aws_access_key_id, and the AWS default chain (AWS_* \
                 variables, ~/.aws profiles, web identity, ECS/EC2 roles) found none: {}",
                error_chain(&e)
            ))
        })?;
        // The provider's name is only exposed through Debug (which redacts
        // the secret): `Credentials { provider_name: "Environment", ... }`.
        let debug = format!("{credentials:?}");
        let provider = debug
            .split_once("provider_name: \"")
            .and_then(|(_, rest)| rest.split('"').next())
            .unwrap_or("unknown provider")
            .to_string();
        Ok(format!(
            "the AWS default chain: {provider} (access key id {}{})",
            mask(credentials.access_key_id()),
            if credentials.session_token().is_some() { ", temporary" } else { "" }
        ))
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        self.settings.clone()
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Storage(format!("delete: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| Error::Storage(format!("delete: {e}")))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            // DeleteObjects requires a body checksum.
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| storage_error("delete from", &self.url(&keys[0]), e))?;
        if let Some(first) = out.errors().first() {
            return Err(Error::Storage(format!(
                "delete {} failed: {}: {} ({} of {} keys not deleted)",
                self.url(first.key().unwrap_or("?")),
                first.code().unwrap_or("error"),
                first.message().unwrap_or(""),
                out.errors().len(),
                keys.len()
            )));
        }
        Ok(())
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        let result =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(key).upload_id(upload_id).send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if http_status(&e) == Some(404) => Ok(()),
            Err(e) => Err(storage_error("abort multipart upload to", &self.url(key), e)),
        }
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<(String, String)>>> {
        let mut uploads = Vec::new();
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let result = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker)
                .set_upload_id_marker(id_marker)
                .send()
                .await;
            let out = match result {
                Ok(out) => out,
                // s3s-fs and some others cannot list uploads.
                Err(e) if matches!(http_status(&e), Some(501)) || e.code() == Some("NotImplemented") => {
                    return Ok(None);
                }
                Err(e) => return Err(storage_error("list open uploads under", &self.url(prefix), e)),
            };
            for u in out.uploads() {
                if let (Some(k), Some(id)) = (u.key(), u.upload_id()) {
                    uploads.push((k.to_string(), id.to_string()));
                }
            }
            key_marker = out.next_key_marker().map(str::to_string);
            id_marker = out.next_upload_id_marker().map(str::to_string);
            if out.is_truncated() != Some(true) || key_marker.is_none() {
                return Ok(Some(uploads));
            }
        }
    }
}

impl S3Store {
    async fn head_object(&self, key: &str) -> Result<Option<(u64, Metadata)>> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        match sse_c!(request, self.customer_key()).send().await {
            Ok(out) => Ok(Some((out.content_length().unwrap_or(0).max(0) as u64, from_map(out.metadata())))),
            Err(e) if http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(storage_error("look up", &self.url(key), e)),
        }
    }
}

/// Storage classes whose objects may need a restore before a read.
/// Intelligent-Tiering is here because of its opt-in archive tiers.
fn is_cold_class(class: &str) -> bool {
    ARCHIVED_CLASSES.contains(&class) || class == "INTELLIGENT_TIERING"
}

/// `AKIAIOSFODNN7EXAMPLE` -> `AKIA...MPLE`: enough to tell keys apart.
fn mask(id: &str) -> String {
    if id.len() > 10 { format!("{}...{}", &id[..4], &id[id.len() - 4..]) } else { id.to_string() }
}

fn to_map(metadata: &Metadata) -> Option<HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.iter().cloned().collect())
}

fn from_map(map: Option<&HashMap<String, String>>) -> Metadata {
    map.map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default()
}

/// The request's CRC32C, which the service verifies before storing the
/// bytes. Sent as a plain header computed here: some servers (Garage) refuse
/// the SDK's trailing-checksum encoding on unsigned payloads.
fn crc32c_header(data: &[u8]) -> String {
    let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32;
    aws_smithy_types::base64::encode(crc.to_be_bytes())
}

/// The ETag S3 gives a completed multipart object: the MD5 of the parts'
/// binary MD5s, then `-<parts>`. `None` when a part's ETag is not an MD5.
fn composite_etag(parts: &[PartTag]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut md5 = Md5::new();
    for part in parts {
        let hex = part.etag.as_deref()?.trim_matches('"');
        if hex.len() != 32 {
            return None;
        }
        for i in (0..32).step_by(2) {
            md5.update([u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?]);
        }
    }
    let digest: String = md5.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("{digest}-{}", parts.len()))
}

/// `a: b: c` from an error and its sources, without the Debug dumps that
/// `DisplayErrorContext` appends.
pub(super) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&dyn std::error::Error> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// `bytes 0-99/1234` -> 1234.
fn parse_content_range_total(value: &str) -> Option<u64> {
    value.rsplit('/').next()?.trim().parse().ok()
}

struct S3Multipart {
    client: Client,
    bucket: String,
    key: String,
    upload_id: String,
    customer_key: Option<CustomerKey>,
}

impl S3Multipart {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

#[async_trait]
impl MultipartUpload for S3Multipart {
    fn upload_id(&self) -> String {
        self.upload_id.clone()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let request = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .part_number(number as i32)
            .checksum_crc32_c(crc32c_header(&data))
            .body(ByteStream::from(data));
        let out = sse_c!(request, self.customer_key.as_ref())
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| storage_error(&format!("upload part {number} of"), &self.url(), e))?;
        Ok(PartTag {
            number,
            etag: out.e_tag().map(str::to_string),
            checksum: out.checksum_crc32_c().map(str::to_string),
        })
    }

    async fn complete(&self, mut parts: Vec<PartTag>) -> Result<()> {
        parts.sort_by_key(|p| p.number);
        let expected_etag = composite_etag(&parts);
        let completed = parts
            .into_iter()
            .map(|p| {
                CompletedPart::builder()
                    .part_number(p.number as i32)
                    .set_e_tag(p.etag)
                    .set_checksum_crc32_c(p.checksum)
                    .build()
            })
            .collect();
        let request = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(completed)).build());
        // SSE-C objects stored with checksums need the key to complete.
        let Err(e) = sse_c!(request, self.customer_key.as_ref()).send().await else { return Ok(()) };
        let err = storage_error("complete multipart upload to", &self.url(), e);
        // A completion retried after its answer was lost finds the upload
        // gone (NoSuchUpload, or AccessDenied on some servers) although it
        // succeeded: the object is there, with exactly our parts' ETag.
        if let Some(expected) = expected_etag {
            let head = self.client.head_object().bucket(&self.bucket).key(&self.key);
            if let Ok(out) = sse_c!(head, self.customer_key.as_ref()).send().await
                && out.e_tag().map(|t| t.trim_matches('"')) == Some(expected.as_str())
            {
                return Ok(());
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
            .map_err(|e| storage_error("abort multipart upload to", &self.url(), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bucket_from_path_style_uris() {
        assert_eq!(
            strip_bucket("https://h:9000/b1/k/x?partNumber=1", "b1").as_deref(),
            Some("https://h:9000/k/x?partNumber=1")
        );
        assert_eq!(strip_bucket("https://h/b1?list-type=2", "b1").as_deref(), Some("https://h/?list-type=2"));
        assert_eq!(strip_bucket("https://h/b1", "b1").as_deref(), Some("https://h/"));
        assert_eq!(strip_bucket("https://h/b10/k", "b1"), None);
        assert_eq!(strip_bucket("https://h/other/k", "b1"), None);
    }

    #[test]
    fn crc32c_header_matches_s3s_examples() {
        // CRC32C("hello world") = 0xc99465aa, as S3 documents it: yZRlqg==
        assert_eq!(crc32c_header(b"hello world"), "yZRlqg==");
    }

    #[test]
    fn composite_etags() {
        let tag = |etag: &str| PartTag { number: 1, etag: Some(format!("\"{etag}\"")), checksum: None };
        // MD5 of the 16 bytes 0x00..0x0f is 1ac1ef01e96caf1be0d329331a4fc2a8.
        let parts = [tag("00010203040506070809000000000000"), tag("0a0b0c0d0e0f00000000000000000000")];
        assert!(composite_etag(&parts).unwrap().ends_with("-2"));
        assert_eq!(composite_etag(&[tag("not-an-md5")]), None);
        let one = [tag("000102030405060708090a0b0c0d0e0f")];
        assert_eq!(composite_etag(&one).unwrap(), "1ac1ef01e96caf1be0d329331a4fc2a8-1");
    }

    #[test]
    fn restore_headers() {
        assert_eq!(parse_restore_header("ongoing-request=\"true\""), Readiness::Restoring);
        let restored = parse_restore_header("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"");
        let Readiness::Restored { until: Some(until) } = restored else { panic!("{restored:?}") };
        assert_eq!(until.to_rfc3339(), "2012-12-21T00:00:00+00:00");
        assert_eq!(parse_restore_header("ongoing-request=\"false\""), Readiness::Restored { until: None });
        assert_eq!(parse_restore_header(""), Readiness::Archived);
    }

    #[test]
    fn tags_are_url_encoded() {
        assert_eq!(url_encode("a b/c=d&e+f@g:h"), "a%20b%2Fc%3Dd%26e%2Bf%40g%3Ah");
        assert_eq!(url_encode("plain-1_2.3~"), "plain-1_2.3~");
        assert_eq!(mask("AKIAIOSFODNN7EXAMPLE"), "AKIA...MPLE");
    }

    #[test]
    fn content_range_total() {
        assert_eq!(parse_content_range_total("bytes 0-99/1234"), Some(1234));
        assert_eq!(parse_content_range_total("bytes */0"), Some(0));
        assert_eq!(parse_content_range_total("garbage"), None);
    }
}
