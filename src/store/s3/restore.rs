//! Archived objects: where an object is stored and whether it can be read
//! (HeadObject's storage class, archive status and `x-amz-restore`), and
//! RestoreObject, asked for once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::S3Store;
use super::sse::sse_c;
use crate::config::{ARCHIVED_CLASSES, RestoreTier};
use crate::error::{Error, Result};
use crate::store::aws::classify;
use crate::store::{ObjectState, Readiness, RestoreRequested, Storage, Store};

impl S3Store {
    pub(super) async fn head_state(&self, key: &str) -> Result<ObjectState> {
        let request = self.client.head_object().bucket(&self.bucket).key(key);
        let out =
            sse_c!(request, self.customer_key()).send().await.map_err(|e| classify("look up", &self.url(key), e))?;
        let class = out.storage_class().map(|c| c.as_str().to_string()).unwrap_or_else(|| "STANDARD".to_string());
        // Intelligent-Tiering objects may sit in its opt-in archive tiers.
        let archive_tier = out.archive_status().map(|a| a.as_str().to_string());
        let readiness = if archive_tier.is_some() || ARCHIVED_CLASSES.contains(&class.as_str()) {
            out.restore().map(parse_restore_header).unwrap_or(Readiness::Archived)
        } else {
            Readiness::Ready
        };
        Ok(ObjectState { readiness, storage: Storage::Class { class, archive_tier } })
    }

    pub(super) async fn restore_object(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        let tier = match tier {
            RestoreTier::Expedited => Tier::Expedited,
            RestoreTier::Standard => Tier::Standard,
            RestoreTier::Bulk => Tier::Bulk,
        };
        let job = GlacierJobParameters::builder()
            .tier(tier)
            .build()
            .map_err(|e| Error::service(format!("restore request for {}: {e}", self.url(key))))?;
        let request = RestoreRequest::builder().days(days as i32).glacier_job_parameters(job).build();
        let status = Arc::new(AtomicU16::new(0));
        let answer = self
            .client
            .restore_object()
            .bucket(&self.bucket)
            .key(key)
            .restore_request(request)
            .customize()
            .interceptor(Status(status.clone()))
            .send()
            .await;
        match answer {
            // 202: a restore was started; 200: the object was restored
            // already (S3 only extends the copy's life).
            Ok(_) if status.load(Ordering::Relaxed) == 200 => Ok(RestoreRequested::AlreadyReadable),
            Ok(_) => Ok(RestoreRequested::Started),
            Err(e) if e.code() == Some("RestoreAlreadyInProgress") => Ok(RestoreRequested::AlreadyRestoring),
            // Not in an archived class: readable as it is.
            Err(e) if e.code() == Some("InvalidObjectState") => Ok(RestoreRequested::AlreadyReadable),
            Err(e) => Err(classify("request a restore of", &self.url(key), e)),
        }
    }
}

/// Notes the HTTP status of a response (the SDK's output does not say it).
#[derive(Debug)]
struct Status(Arc<AtomicU16>);

impl Intercept for Status {
    fn name(&self) -> &'static str {
        "Status"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        self.0.store(context.response().status().as_u16(), Ordering::Relaxed);
        Ok(())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_headers() {
        assert_eq!(parse_restore_header("ongoing-request=\"true\""), Readiness::Restoring);
        let restored = parse_restore_header("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"");
        let Readiness::Restored { until: Some(until) } = restored else { panic!("{restored:?}") };
        assert_eq!(until.to_rfc3339(), "2012-12-21T00:00:00+00:00");
        assert_eq!(parse_restore_header("ongoing-request=\"false\""), Readiness::Restored { until: None });
        assert_eq!(parse_restore_header(""), Readiness::Archived);
    }
}
