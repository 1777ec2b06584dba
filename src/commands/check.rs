//! `check CFG`: a preflight an operator runs before the first backup.
//!
//! In order, stopping at the first failure with a non-zero exit and one
//! precise line on stderr: the config parses and validates; the settings in
//! effect (endpoint, addressing style, TLS, storage classes, encryption);
//! where the credentials come from (never the secret); the bucket exists
//! and lists; then a probe object per storage class in use is written,
//! looked up (the storage class the service recorded), read back and
//! compared (unless it is archived, which is reported), and deleted.
//! What passes is printed on stdout as it happens.
//!
//! Every S3 action is also reported as allowed or denied, with what needs
//! it ([`super::permissions`]): a denial (a least-privilege role) is
//! reported and the check goes on; it fails only when the credentials may
//! neither write nor read.

use std::path::Path;

use bytes::Bytes;

use super::output::{say_setting as say, storage};
use super::permissions::{self, Answer, Report};
use super::{load_config, store_settings, wording};
use crate::config::Purpose;
use crate::config::{Config, Encryption, OnRetentionLocked};
use crate::error::{Error, Kind, Result};
use crate::layout;
use crate::store::{self, CredentialSource, ObjectClass, Store};

pub async fn run(config_path: &Path) -> Result<()> {
    let config = load_config(config_path, Purpose::Check)?;
    say("config", &format!("{}: valid", config_path.display()));
    let store = store::open(&store_settings(&config)).await?;
    say("bucket", &config.bucket);
    say("folder", &config.folder);
    for (what, value) in settings(&config) {
        say(what, &value);
    }
    let source = store.credentials_source().await.map_err(|e| e.context("check: credentials"))?;
    say("credentials", &credentials(&source));

    let mut report = Report::default();
    let listed = store.list_page(&layout::folder_prefix(&config.folder), None, Some(1)).await;
    if report.note(&permissions::LIST, &listed) {
        say("bucket check", &format!("{} cannot be listed with these credentials", store.url("")));
    } else {
        listed.map_err(|e| e.context("check: bucket"))?;
        say("bucket check", &format!("{} exists and can be listed", store.url("")));
    }
    let facts = store.prepare(false).await.map_err(|e| wording::missing_vault(e.context("check")))?;
    for (what, value) in wording::facts(&facts) {
        say(what, &value);
    }
    let mut locking = false;
    match store.bucket_lock().await {
        Ok(bucket) => {
            locking = bucket.versioned();
            for (what, value) in wording::bucket_lock_facts(&bucket) {
                say(what, &value);
            }
            if config.object_lock.is_some()
                && let Some(error) = wording::bucket_cannot_lock(&bucket, &store.url(""))
            {
                return Err(error.context("check"));
            }
        }
        Err(e) if config.object_lock.is_none() => {
            say("versioning", &format!("unknown: {e} (s3:GetBucketVersioning)"));
        }
        Err(e) => return Err(e.context("check: versioning and Object Lock")),
    }

    let mut probes = vec![("data", ObjectClass::Payload)];
    if config.storage_class != config.metadata_storage_class {
        probes.push(("metadata", ObjectClass::Metadata));
    }
    for (name, class) in probes {
        let key = layout::check_probe_key(&config.folder, name);
        let written = probe(&*store, &key, name, class, &mut report).await?;
        if !written {
            continue;
        }
        if name == "data" {
            more_actions(&*store, &config, &key, &mut report).await;
        }
        // Never leave the probe behind, whatever failed.
        let deleted = crate::engine::delete::delete_probe(&*store, &key).await;
        let denied = match &deleted {
            // DeleteObjects refuses keys one by one: without a lock (an
            // Object Lock bucket, a vault's lock), a refusal is the policy's.
            Ok(outcome) => !locking && config.vault.is_none() && !outcome.refused.is_empty(),
            Err(e) => permissions::is_denial(e),
        };
        if denied {
            report.add(&permissions::DELETE, Answer::Denied);
            say(&format!("{name} probe"), &format!("kept {}: s3:DeleteObject is denied", store.url(&key)));
            continue;
        }
        report.note(&permissions::DELETE, &deleted);
        let outcome = deleted.map_err(|e| e.context(&format!("check: delete the {name} probe")))?;
        if let Some((_, refusal)) = outcome.refused.into_iter().next() {
            // A retention lock keeps the probe: it is marked for `purge`,
            // whatever on_retention_locked says, and the report says so.
            store.defer_delete(&key).await.map_err(|e| e.context(&format!("check: keep the {name} probe")))?;
            let kept = format!(
                "kept {}: the retention lock refused its delete; `{} purge` deletes it once allowed",
                store.url(&key),
                crate::PLUGIN_NAME
            );
            if config.on_retention_locked() == OnRetentionLocked::Fail {
                return Err(refusal.context(&format!("check: delete the {name} probe")).with_hint(kept));
            }
            say(&format!("{name} probe"), &kept);
            continue;
        }
        say(&format!("{name} probe"), &format!("deleted {}", store.url(&key)));
    }
    let denied = report.denied();
    if report.is_denied(&permissions::PUT) && report.is_denied(&permissions::GET) {
        return Err(Error::new(
            Kind::AccessDenied,
            "check: these credentials may neither write (s3:PutObject) nor read (s3:GetObject; S3 also answers 403 \
             for a missing key without s3:ListBucket) in the bucket",
        ));
    }
    match denied.is_empty() {
        true => say("result", "all checks passed"),
        false => {
            say("result", &format!("passed, with {} denied (what each disables is said above)", denied.join(", ")))
        }
    }
    Ok(())
}

/// The actions a probe does not use: the listing of open uploads, a
/// multipart upload started and aborted, and, only where table data goes
/// to an archive class (which `thaw` restores), a restore request
/// (answered "not archived" for the probe; never sent for a Glacier vault,
/// where it would start a paid job).
async fn more_actions(store: &dyn Store, config: &Config, key: &str, report: &mut Report) {
    let uploads = store.open_uploads(&layout::folder_prefix(&config.folder)).await;
    match uploads {
        Ok(None) => report.add(&permissions::LIST_UPLOADS, Answer::Unsupported),
        _ => report.note(&permissions::LIST_UPLOADS, &uploads),
    };
    match store.start_multipart(key, &Vec::new(), ObjectClass::Payload).await {
        Ok(upload) => report.note(&permissions::ABORT, &upload.abort().await),
        Err(e) => report.add(&permissions::ABORT, Answer::Failed(format!("no upload to abort: {e}"))),
    };
    if config.data_in_archive_class() {
        let tier = config.thaw.tier;
        report.note(&permissions::RESTORE, &store.request_restore(key, tier, 1).await);
    }
}

/// Writes, looks up and reads back one probe object; whether it was
/// written (a denied write or read is reported, not an error).
async fn probe(store: &dyn Store, key: &str, name: &str, class: ObjectClass, report: &mut Report) -> Result<bool> {
    let payload = format!("{} check probe, pid {}\n", crate::PLUGIN_NAME, std::process::id());
    let step = |what: &str| format!("check: {what} the {name} probe {}", store.url(key));
    let written = store.put_probe(key, Bytes::from(payload.clone()), class).await;
    if report.note(&permissions::PUT, &written) {
        // Reads can still be told: a missing key is NotFound to a reader
        // (403 without s3:ListBucket, where S3 hides what is missing).
        let read = store.get_range(key, 0..1).await;
        match read {
            Err(e) if e.is(Kind::NotFound) => report.add(&permissions::GET, Answer::Allowed),
            _ => report.note(&permissions::GET, &read),
        };
        return Ok(false);
    }
    written.map_err(|e| e.context(&step("write")))?;
    say(&format!("{name} probe"), &format!("wrote {}", store.url(key)));
    let state = store.object_state(key).await;
    if report.note(&permissions::GET, &state) {
        return Ok(true);
    }
    let state = state.map_err(|e| e.context(&step("look up")))?;
    say(&format!("{name} probe"), &format!("stored as {}", storage(&state.storage)));
    if !state.readiness.readable() {
        say(
            &format!("{name} probe"),
            &format!("not read back: {} objects are readable only after a restore (thaw)", storage(&state.storage)),
        );
        return Ok(true);
    }
    let fetched = store.get_range(key, 0..payload.len() as u64).await;
    if report.note(&permissions::GET, &fetched) {
        return Ok(true);
    }
    let fetched = fetched.map_err(|e| e.context(&step("read")))?;
    if fetched.data != payload.as_bytes() {
        return Err(Error::integrity(format!(
            "{}: read back {} bytes that differ from the {} written",
            step("read"),
            fetched.data.len(),
            payload.len()
        )));
    }
    say(&format!("{name} probe"), "read back identical");
    Ok(true)
}

fn credentials(source: &CredentialSource) -> String {
    match source {
        CredentialSource::Static { access_key_id } => {
            format!("static keys from the plugin config (aws_access_key_id {access_key_id})")
        }
        CredentialSource::Chain { provider, access_key_id, temporary } => format!(
            "the AWS default chain: {provider} (access key id {access_key_id}{})",
            if *temporary { ", temporary" } else { "" }
        ),
    }
}

/// `(what, value)` lines describing how requests are made.
fn settings(config: &Config) -> Vec<(&'static str, String)> {
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
    if config.vault.is_none() {
        lines.push(("data storage class", class(&config.storage_class)));
    }
    lines.push(("metadata storage class", class(&config.metadata_storage_class)));
    lines.push(("encryption", encryption(&config.encryption)));
    if !config.object_tags.is_empty() {
        let tags = config.object_tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        lines.push(("object tags", tags));
    }
    if let Some(lock) = &config.object_lock {
        let retention = match lock.retention {
            Some((mode, period)) => {
                format!("{} for {} after each write", mode.as_str(), humantime::format_duration(period))
            }
            None => "no retention".to_string(),
        };
        lines.push((
            "object lock",
            format!("{retention}{} on every object a backup writes", if lock.legal_hold { ", legal hold" } else { "" }),
        ));
    }
    lines.push((
        "locked on delete",
        match config.on_retention_locked {
            OnRetentionLocked::Fail => "fail (on_retention_locked: fail)".to_string(),
            OnRetentionLocked::Defer => "keep for `purge` (on_retention_locked: defer)".to_string(),
        },
    ));
    lines.push(("timeouts", format!("connect {:?}, read {:?}", config.connect_timeout, config.read_timeout)));
    if let Some(vault) = &config.vault {
        let server = match &vault.endpoint {
            Some(e) => format!("the Glacier service at {e}"),
            None => format!("AWS Glacier in {}", config.region),
        };
        lines.push(("data", format!("archives in Glacier vault {} on {server}", vault.name)));
        lines.push((
            "vault part size",
            format!(
                "{} (archives up to {})",
                crate::size::human(vault.part_size),
                crate::size::human(vault.part_size.saturating_mul(10_000))
            ),
        ));
    }
    lines
}

fn encryption(encryption: &Encryption) -> String {
    match encryption {
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
        Encryption::Customer(key) => format!("SSE-C with the key in {} (key MD5 {})", key.file, key.key_md5_base64),
    }
}
