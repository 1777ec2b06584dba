//! The aws-sdk-s3 client for [`S3Settings`]: region, endpoint and
//! addressing, timeouts, no SDK retries (the store's retry layer does them,
//! with the data still held and each attempt logged), and checksums chosen
//! per request.

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation, retry::RetryConfig};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::S3Settings;
use super::checksums::LegacyChecksums;
use crate::error::Result;
use crate::store::aws::{self, Credentials};

pub fn build(settings: &S3Settings, credentials: &Credentials) -> Result<Client> {
    let connection = &settings.connection;
    let mut builder = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(connection.region.clone()))
        .http_client(aws::http_client(connection, settings.endpoint.as_deref())?)
        .retry_config(RetryConfig::disabled())
        .timeout_config(aws::timeouts(connection))
        // We choose the checksum per request (CRC32C, cheap on this
        // hardware) instead of the SDK default (CRC32 on everything).
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenSupported)
        // Path-style by default for S3-compatible servers (as the Go
        // plugin always did: their buckets rarely have DNS names),
        // virtual-host for AWS; `force_path_style` decides.
        .force_path_style(settings.force_path_style)
        .credentials_provider(credentials.provider.clone());
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    if settings.checksums.legacy() {
        // No `x-amz-checksum-mode` on reads either: legacy servers refuse
        // every flexible-checksum header.
        builder =
            builder.response_checksum_validation(ResponseChecksumValidation::WhenRequired).interceptor(LegacyChecksums);
    }
    if settings.bucket_in_endpoint {
        // The endpoint's own path (`https://host/bucket`) stays in front.
        let base = settings.endpoint.as_deref().and_then(|e| url::Url::parse(e).ok()).map(|u| u.path().to_string());
        let base = base.as_deref().unwrap_or("").trim_end_matches('/').to_string();
        builder = builder.interceptor(StripBucketFromPath { bucket: settings.bucket.clone(), base });
    }
    Ok(Client::from_conf(builder.build()))
}

/// The endpoint's host already selects the bucket, so requests go to
/// `<endpoint>/<key>` instead of `<endpoint>/<bucket>/<key>` (the Go
/// plugin's `remove_duplicate_bucket`).
#[derive(Debug)]
struct StripBucketFromPath {
    bucket: String,
    /// The endpoint's path, without its trailing slash (often empty).
    base: String,
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
        if let Some(stripped) = strip_bucket(&uri, &self.base, &self.bucket) {
            request.set_uri(stripped)?;
        }
        Ok(())
    }
}

/// `uri` without the bucket the SDK put after the endpoint's path `base`.
/// The SDK joins a non-empty endpoint path and the bucket without a slash
/// (`/basebucket/key`), so both joins are recognised.
fn strip_bucket(uri: &str, base: &str, bucket: &str) -> Option<String> {
    let scheme_end = uri.find("://")? + 3;
    let path_start = scheme_end + uri[scheme_end..].find('/')?;
    let after_base = uri[path_start..].strip_prefix(base)?;
    let rest = after_base.strip_prefix('/').unwrap_or(after_base).strip_prefix(bucket)?;
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        let rest = if rest.starts_with('/') { rest.to_string() } else { format!("/{rest}") };
        Some(format!("{}{base}{rest}", &uri[..path_start]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_bucket_from_path_style_uris() {
        assert_eq!(
            strip_bucket("https://h:9000/b1/k/x?partNumber=1", "", "b1").as_deref(),
            Some("https://h:9000/k/x?partNumber=1")
        );
        assert_eq!(strip_bucket("https://h/b1?list-type=2", "", "b1").as_deref(), Some("https://h/?list-type=2"));
        assert_eq!(strip_bucket("https://h/b1", "", "b1").as_deref(), Some("https://h/"));
        assert_eq!(strip_bucket("https://h/b10/k", "", "b1"), None);
        assert_eq!(strip_bucket("https://h/other/k", "", "b1"), None);
        // An endpoint with a path: as the SDK joins it, and with a slash.
        assert_eq!(
            strip_bucket("http://h/bktbkt/f/k?x-id=GetObject", "/bkt", "bkt").as_deref(),
            Some("http://h/bkt/f/k?x-id=GetObject")
        );
        assert_eq!(strip_bucket("http://h/bkt/bkt/f/k", "/bkt", "bkt").as_deref(), Some("http://h/bkt/f/k"));
        assert_eq!(strip_bucket("http://h/other/bkt/f", "/bkt", "bkt"), None);
    }
}
