//! What the S3 and the Glacier clients share: how to reach the service
//! (HTTP client, proxy, TLS, timeouts), the credentials, and how a failed
//! request becomes a typed [`Error`](crate::error::Error).
//!
//! Set-up is tuned for a process that lives for one command: static keys
//! are used as they are (no credential chain, so no instance-metadata probe
//! that costs a timeout off EC2), the HTTP client is built without TLS when
//! the endpoint is plain HTTP (loading the system's root certificates is
//! the slowest part of start-up), and nothing is requested before the
//! command needs it.

use std::time::Duration;

use crate::config::{CaCert, StaticKeys};

mod credentials;
mod errors;
mod http;

pub use credentials::{Credentials, credentials, mask};
pub use errors::{classify, http_status};
pub use http::http_client;

/// How to reach an AWS (or S3-compatible) service.
#[derive(Debug, Clone)]
pub struct Connection {
    pub region: String,
    /// Static keys; `None`: the AWS default chain.
    pub keys: Option<StaticKeys>,
    /// The proxy for every request; `None`: the environment's.
    pub http_proxy: Option<String>,
    /// Hosts reached without the proxy (comma-separated NO_PROXY rules).
    pub no_proxy: Option<String>,
    /// Extra trusted roots for TLS.
    pub ca_cert: Option<CaCert>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

/// The SDK's timeouts for a connection's settings.
pub fn timeouts(connection: &Connection) -> aws_smithy_types::timeout::TimeoutConfig {
    aws_smithy_types::timeout::TimeoutConfig::builder()
        .connect_timeout(connection.connect_timeout)
        .read_timeout(connection.read_timeout)
        .build()
}

pub type HttpResponse = aws_smithy_runtime_api::client::orchestrator::HttpResponse;
