//! Credentials: the static keys of the settings as they are, or else the
//! SDK's default chain (environment, profile, web identity, instance
//! metadata), built once per process and shared by every client.

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::Region;

use super::Connection;
use crate::error::{Error, Result};
use crate::store::CredentialSource;

/// A credentials provider and, when static keys are given, their key id.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub provider: SharedCredentialsProvider,
    static_key_id: Option<String>,
}

/// The credentials of `connection`.
pub async fn credentials(connection: &Connection) -> Credentials {
    match &connection.keys {
        Some(keys) => Credentials {
            provider: SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "plugin-config",
            )),
            static_key_id: Some(keys.access_key_id.clone()),
        },
        None => Credentials {
            provider: SharedCredentialsProvider::new(
                DefaultCredentialsChain::builder().region(Region::new(connection.region.clone())).build().await,
            ),
            static_key_id: None,
        },
    }
}

impl Credentials {
    /// Where the credentials come from; resolves the chain, so a missing or
    /// broken source fails here.
    pub async fn source(&self) -> Result<CredentialSource> {
        if let Some(id) = &self.static_key_id {
            return Ok(CredentialSource::Static { access_key_id: mask(id) });
        }
        let credentials = self.provider.provide_credentials().await.map_err(|e| {
            Error::config(format!(
                "no AWS credentials: the config has no aws_access_key_id, and the AWS default chain (AWS_* \
                 variables, ~/.aws profiles, web identity, ECS/EC2 roles) found none: {}",
                crate::error::chain(&e)
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
        Ok(CredentialSource::Chain {
            provider,
            access_key_id: mask(credentials.access_key_id()),
            temporary: credentials.session_token().is_some(),
        })
    }
}

/// `AKIAIOSFODNN7EXAMPLE` -> `AKIA...MPLE`: enough to tell keys apart.
pub fn mask(id: &str) -> String {
    if id.len() > 10 { format!("{}...{}", &id[..4], &id[id.len() - 4..]) } else { id.to_string() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn masks_key_ids() {
        assert_eq!(super::mask("AKIAIOSFODNN7EXAMPLE"), "AKIA...MPLE");
        assert_eq!(super::mask("short"), "short");
    }
}
