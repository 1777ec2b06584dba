//! What every command that touches storage needs: the config (its secrets
//! registered for redaction) and the store it selects, opened from plain
//! settings built here, the one place that knows both the config file and
//! the stores' settings.

use std::path::Path;
use std::sync::Arc;

use crate::config::{Config, Purpose};
use crate::engine::catalog::Reads;
use crate::engine::catalog::lock::{Rule, VaultRetention};
use crate::engine::crypt::Age;
use crate::engine::{Identity, Transform};
use crate::error::Result;
use crate::store::{self, RetryPolicy, Settings, Store, aws, glacier::VaultSettings, s3::S3Settings};

pub struct Context {
    pub config: Config,
    pub store: Arc<dyn Store>,
    transform: Box<dyn Transform>,
}

impl Context {
    /// Loads the config and opens the store it selects. Opening sends no
    /// request.
    pub async fn open(config_path: &Path, purpose: Purpose) -> Result<Context> {
        Context::open_with(config_path, purpose, |_| {}).await
    }

    /// [`Context::open`] for a step that must not keep a hook waiting on a
    /// service that is down: short timeouts, one retry.
    pub async fn open_quick(config_path: &Path, purpose: Purpose) -> Result<Context> {
        Context::open_with(config_path, purpose, |settings| {
            let quick = std::time::Duration::from_secs(2);
            settings.s3.connection.connect_timeout = settings.s3.connection.connect_timeout.min(quick);
            settings.s3.connection.read_timeout = settings.s3.connection.read_timeout.min(quick * 3);
            settings.retry.max_attempts = settings.retry.max_attempts.min(2);
            settings.retry.budget = settings.retry.budget.min(quick);
        })
        .await
    }

    async fn open_with(
        config_path: &Path,
        purpose: Purpose,
        adjust: impl FnOnce(&mut store::Settings),
    ) -> Result<Context> {
        let config = load_config(config_path, purpose)?;
        let mut settings = store_settings(&config);
        adjust(&mut settings);
        let store = store::open(&settings).await?;
        super::interrupt::register_store(&store);
        let transform = transform(&config)?;
        Ok(Context { config, store, transform })
    }

    /// The retention a vault lock policy imposes on deletes (`None`: no
    /// vault, or a vault without a lock policy). A lock that cannot be read
    /// (no `glacier:GetVaultLock` permission) is taken as one not
    /// understood: every backup with archives counts as locked.
    pub async fn vault_retention(&self) -> Option<VaultRetention> {
        let admin = match store::open_vault(&store_settings(&self.config)).await {
            Ok(admin) => admin?,
            Err(e) => return Some(unknown_lock(&e)),
        };
        match admin.lock_status().await {
            Ok(status) => VaultRetention::of(status.as_ref()),
            Err(e) => Some(unknown_lock(&e)),
        }
    }

    /// The transform between gpbackup's streams and the stored bytes.
    pub fn transform(&self) -> &dyn Transform {
        &*self.transform
    }

    /// The catalog's reads of coordinator files, decrypted with the
    /// config's identity.
    pub fn reads(&self) -> Reads<'_> {
        Reads { report: false, keys: self.transform() }
    }
}

fn unknown_lock(e: &crate::error::Error) -> VaultRetention {
    log::warn!("The vault's lock could not be read, so every backup with archives counts as locked: {e}");
    VaultRetention { state: "unknown".to_string(), rule: Rule::Unknown }
}

/// Client-side encryption when the config asks for it, else nothing.
fn transform(config: &Config) -> Result<Box<dyn Transform>> {
    let keys = &config.client_encryption;
    if !keys.is_on() {
        return Ok(Box::new(Identity));
    }
    let no_identity = match &keys.identity_file {
        Some(file) => format!("encryption_identity_file {file} holds no usable private key"),
        None => "backups here are encrypted (encryption_recipients is set); a restore needs the private key: set \
                 encryption_identity_file"
            .to_string(),
    };
    let age = Age::new(
        &keys.recipients,
        &keys.identities,
        "this config has encryption_identity_file but no encryption_recipients: a backup needs the public keys to \
         encrypt to",
        &no_identity,
    )?;
    // `verify: available` also lets through objects without a binding (the
    // previous release's), with a warning.
    let lenient = config.restore.verify == crate::config::Verify::Available;
    Ok(Box::new(age.signing(keys.signing_key.as_ref()).verifying(&keys.verify_keys)?.lenient(lenient)))
}

/// Reads and validates the config, registering its secrets for redaction
/// (and the config for the wording of errors).
pub fn load_config(path: &Path, purpose: Purpose) -> Result<Config> {
    let config = Config::load(path, purpose)?;
    crate::log::set_secrets(&config.secrets.0);
    for warning in &config.warnings {
        log::warn!("config file {}: {warning}", path.display());
    }
    let _ = LOADED.set(config.clone());
    Ok(config)
}

/// The config this process loaded, if any.
pub(super) fn loaded() -> Option<&'static Config> {
    LOADED.get()
}

static LOADED: std::sync::OnceLock<Config> = std::sync::OnceLock::new();

/// The stores' settings of a config.
pub fn store_settings(config: &Config) -> Settings {
    let connection = aws::Connection {
        region: config.region.clone(),
        keys: config.keys.clone(),
        http_proxy: config.http_proxy.clone(),
        no_proxy: config.no_proxy.clone(),
        ca_cert: config.ca_cert.clone(),
        connect_timeout: config.connect_timeout,
        read_timeout: config.read_timeout,
    };
    Settings {
        s3: S3Settings {
            connection,
            bucket: config.bucket.clone(),
            endpoint: config.endpoint.clone(),
            force_path_style: config.force_path_style,
            bucket_in_endpoint: config.remove_duplicate_bucket,
            payload_class: config.storage_class.clone(),
            metadata_class: config.metadata_storage_class.clone(),
            encryption: config.encryption.clone(),
            tags: config.object_tags.clone(),
            checksums: config.checksums,
            stored_checksums: config.restore.verify == crate::config::Verify::Available,
            lock: config.object_lock,
        },
        vault: config.vault.as_ref().map(|v| VaultSettings {
            name: v.name.clone(),
            account_id: v.account_id.clone(),
            endpoint: v.endpoint.clone(),
            part_size: v.part_size,
        }),
        retry: RetryPolicy {
            max_attempts: config.retry_max_attempts,
            budget: config.retry_time_budget,
            ..RetryPolicy::default()
        },
    }
}
