//! The HTTP client both AWS clients use: plain HTTP without any TLS set-up
//! when the endpoint is `http://`; rustls with the system's roots (plus
//! `ca_cert`) otherwise; the configured proxy, or else the environment's
//! (`HTTPS_PROXY`, `NO_PROXY`, ...), as the Go plugin's HTTP stack did; and
//! one connection pool for every request of the process.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::{SharedHttpClient, SharedHttpConnector, http_client_fn};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use super::Connection;
use crate::error::{Error, Result};

/// The client for requests to `endpoint` (`None`: AWS, over TLS).
pub fn http_client(connection: &Connection, endpoint: Option<&str>) -> Result<SharedHttpClient> {
    let plain_http = endpoint.is_some_and(|e| e.starts_with("http://"));
    let proxy = proxy_config(connection, plain_http)?;
    // ca_cert_file: these roots in addition to the system's.
    let tls_context = match &connection.ca_cert {
        Some(ca) => Some(
            TlsContext::builder()
                .with_trust_store(TrustStore::default().with_pem_certificate(ca.pem.clone()))
                .build()
                .map_err(|e| Error::config(format!("ca_cert_file {}: {}", ca.file, crate::error::chain(&e))))?,
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

/// `http_proxy` with `no_proxy` (the environment's NO_PROXY ignored);
/// without `http_proxy`, the environment's proxy for the endpoint's scheme,
/// with `no_proxy` added to `NO_PROXY`.
fn proxy_config(connection: &Connection, plain_http: bool) -> Result<ProxyConfig> {
    let env = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()));
    let (url, from_env) = match (&connection.http_proxy, &connection.no_proxy) {
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
        Error::config(if from_env {
            format!("the proxy in the environment is not a valid proxy URL: {e}")
        } else {
            format!("http_proxy is not a valid proxy URL: {e}")
        })
    })?;
    let rules: Vec<String> = connection
        .no_proxy
        .iter()
        .cloned()
        // An explicit `http_proxy` carries every request, as in the Go
        // plugin: the environment's NO_PROXY never bypasses it silently.
        .chain(if from_env { env(&["NO_PROXY", "no_proxy"]) } else { None })
        .collect();
    Ok(if rules.is_empty() { proxy } else { proxy.no_proxy(rules.join(",")) })
}
