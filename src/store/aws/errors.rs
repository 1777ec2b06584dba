//! How a failed AWS request becomes a typed [`Error`]: one line saying what
//! was done, where, and what the service (or the network) said, with the
//! HTTP status and request id when known; its kind decided from the
//! service's error code and status, so that callers (and the retry layer)
//! never look at the words.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;

use super::HttpResponse;
use crate::error::{Error, Kind};

/// The HTTP status of a failed request, when a response came at all.
pub fn http_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// The typed error for a failed `action` on `url`.
pub fn classify<E>(action: &str, url: &str, err: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = http_status(&err);
    let mut msg = describe(action, url, &err);
    if let Some(s) = status {
        msg.push_str(&format!(" (HTTP {s})"));
    }
    let code = err.code().map(str::to_string);
    // 501 NotImplemented is the server's answer, not a passing failure:
    // retrying it only spends the retry budget before the same answer.
    let unsupported = status == Some(501) || code.as_deref() == Some("NotImplemented");
    let transient = !unsupported
        && match &err {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
            _ => {
                matches!(status, Some(429 | 500..=599))
                    || matches!(
                        code.as_deref(),
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
    let kind = match (code.as_deref(), status) {
        // The last three are Glacier's (AWS, and moto's name for a missing vault).
        (Some("NoSuchKey" | "NotFound" | "ResourceNotFoundException" | "VaultNotFound"), _) | (None, Some(404)) => {
            Kind::NotFound
        }
        (Some("InvalidObjectState"), _) => {
            msg = format!("{url} is in archived storage and has not been restored (thawed): {msg}");
            Kind::Archived
        }
        _ if transient => Kind::Transient,
        (Some("AccessDenied" | "AccessDeniedException" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) => {
            Kind::AccessDenied
        }
        _ => Kind::Service,
    };
    Error::new(kind, msg).with_code(code.as_deref()).with_source(err)
}

fn describe<E>(action: &str, url: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = match (err.code(), err.message()) {
        (Some(code), Some(msg)) => format!("{code}: {msg}"),
        (Some(code), None) => code.to_string(),
        _ => crate::error::chain(err),
    };
    let request_id = err.request_id().map(|id| format!(", request id {id}")).unwrap_or_default();
    format!("{action} {url} failed: {}{request_id}", detail.replace('\n', " "))
}
