//! The aws-sdk-glacier client for a vault: the shared HTTP client and
//! credentials, no SDK retries (requests go through the store's one retry
//! policy), and an interceptor for an emulator's doubled header.

use aws_config::BehaviorVersion;
use aws_sdk_glacier::Client;
use aws_sdk_glacier::config::{Region, retry::RetryConfig};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::VaultSettings;
use crate::error::Result;
use crate::store::aws::{self, Connection, Credentials};

/// The builder of operation `$op` on the vault of `$vault` (a [`super::Vault`]).
macro_rules! on_vault {
    ($vault:expr, $op:ident) => {
        $vault.client.$op().account_id(&$vault.settings.account_id).vault_name(&$vault.settings.name)
    };
}
pub(super) use on_vault;

pub fn build(settings: &VaultSettings, connection: &Connection, credentials: &Credentials) -> Result<Client> {
    let mut builder = aws_sdk_glacier::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(connection.region.clone()))
        .http_client(aws::http_client(connection, settings.endpoint.as_deref())?)
        .retry_config(RetryConfig::disabled())
        .timeout_config(aws::timeouts(connection))
        .credentials_provider(credentials.provider.clone())
        .interceptor(SingleContentType);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(Client::from_conf(builder.build()))
}

/// Merges repeated identical `Content-Type` headers into one. fakecloud
/// sends the header twice on GetJobOutput, which the SDK then refuses to
/// parse; AWS sends it once, so this changes nothing there. Different
/// values are left alone (and fail as they should).
#[derive(Debug)]
struct SingleContentType;

impl Intercept for SingleContentType {
    fn name(&self) -> &'static str {
        "SingleContentType"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let headers = context.response_mut().headers_mut();
        let values: Vec<String> = headers.get_all("content-type").map(str::to_string).collect();
        if values.len() > 1 && values.iter().all(|v| *v == values[0]) {
            headers.remove("content-type");
            headers.try_insert("content-type", values[0].clone())?;
        }
        Ok(())
    }
}
