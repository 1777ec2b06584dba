//! S3 Object Lock and versions: the lock headers of writes, the read-back
//! that confirms each write's lock (applying it with PutObjectRetention and
//! PutObjectLegalHold where a server ignored the headers, as some do on
//! CreateMultipartUpload), the bucket's versioning and lock configuration,
//! version listings, deletes by version id, and retention and legal-hold
//! changes.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ChecksumAlgorithm, Delete, ObjectIdentifier, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
};
use chrono::{DateTime, Utc};

use super::S3Store;
use super::objects::not_s3;
use super::sse::sse_c;
use crate::config::{LockMode, ObjectLock};
use crate::error::{Error, Kind, Result};
use crate::store::aws::{classify, http_status};
use crate::store::{BucketLock, DeleteOutcome, LockState, ObjectVersion, Store, VersionPage};

/// Sets the Object Lock headers of a write that creates an object
/// (PutObject, CreateMultipartUpload): mode, retain-until date, legal hold.
macro_rules! lock_headers {
    ($request:expr, $lock:expr) => {{
        let request = $request;
        let lock: Option<&$crate::store::s3::lock::Planned> = $lock;
        match lock {
            None => request,
            Some(planned) => request
                .set_object_lock_mode(planned.mode.map($crate::store::s3::lock::header_mode))
                .set_object_lock_retain_until_date(planned.until.map($crate::store::s3::lock::smithy_time))
                .set_object_lock_legal_hold_status(
                    planned.legal_hold.then_some(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On),
                ),
        }
    }};
}

pub(crate) use lock_headers;

/// The lock one write asks for: its retain-until date is fixed when the
/// write starts.
#[derive(Debug, Clone, Copy)]
pub struct Planned {
    pub mode: Option<LockMode>,
    pub until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

impl Planned {
    /// `lock` for a write starting now; the date is rounded up to a whole
    /// second (S3 keeps seconds).
    pub fn now(lock: &ObjectLock) -> Planned {
        let now = Utc::now().timestamp() + 1;
        let (mode, until) = match lock.retention {
            Some((mode, period)) => {
                (Some(mode), DateTime::from_timestamp(now.saturating_add(period.as_secs() as i64), 0))
            }
            None => (None, None),
        };
        Planned { mode, until, legal_hold: lock.legal_hold }
    }

    /// Whether `state` holds at least this lock.
    fn holds(&self, state: &LockState) -> bool {
        let retention = match (self.mode, self.until) {
            (Some(mode), Some(until)) => {
                state.retention.is_some_and(|(m, u)| m == mode && u.timestamp() >= until.timestamp() - 1)
            }
            _ => true,
        };
        retention && (!self.legal_hold || state.legal_hold)
    }
}

pub fn header_mode(mode: LockMode) -> ObjectLockMode {
    match mode {
        LockMode::Governance => ObjectLockMode::Governance,
        LockMode::Compliance => ObjectLockMode::Compliance,
    }
}

fn retention_mode(mode: LockMode) -> ObjectLockRetentionMode {
    match mode {
        LockMode::Governance => ObjectLockRetentionMode::Governance,
        LockMode::Compliance => ObjectLockRetentionMode::Compliance,
    }
}

pub fn smithy_time(time: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(time.timestamp())
}

fn chrono_time(time: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(time.secs(), time.subsec_nanos())
}

fn parse_mode(text: &str) -> Option<LockMode> {
    LockMode::parse(text)
}

impl S3Store {
    /// The lock a write of an object that belongs to a backup carries.
    pub(super) fn planned_lock(&self) -> Option<Planned> {
        self.lock.as_ref().map(Planned::now)
    }

    /// Confirms that version `version` of `key` holds `planned`, applying
    /// it where the server ignored the write's headers, and reading it back
    /// again. A lock that cannot be confirmed is an error: an unlocked
    /// backup that claims to be locked is worse than a failed one.
    pub(super) async fn confirm_lock(&self, key: &str, version: Option<&str>, planned: &Planned) -> Result<()> {
        let Some(version) = version.filter(|v| !v.is_empty() && *v != "null") else {
            return Err(Error::service(format!(
                "upload to {}: {} stored no version of it, so it cannot hold an Object Lock (the bucket has no \
                 versioning)",
                self.url(key),
                self.server
            ))
            .with_code(Some(LOCK_NOT_CONFIRMED)));
        };
        let state = self.lock_state_of(key, Some(version)).await?;
        if planned.holds(&state) {
            return Ok(());
        }
        log::info!(
            "{} (version {version}) did not get the lock its upload asked for ({state:?}); applying it with \
             PutObjectRetention/PutObjectLegalHold",
            self.url(key)
        );
        if let (Some(mode), Some(until)) = (planned.mode, planned.until) {
            self.put_retention(key, Some(version), mode, until, false).await?;
        }
        if planned.legal_hold {
            self.put_legal_hold(key, Some(version), true).await?;
        }
        let state = self.lock_state_of(key, Some(version)).await?;
        if planned.holds(&state) {
            return Ok(());
        }
        Err(Error::service(format!(
            "upload to {}: the Object Lock of version {version} could not be confirmed: {} reports {} after the \
             lock was applied",
            self.url(key),
            self.server,
            describe(&state)
        ))
        .with_code(Some(LOCK_NOT_CONFIRMED)))
    }

    /// The lock of `key` (or of `version`), from HeadObject's headers.
    pub(super) async fn lock_state_of(&self, key: &str, version: Option<&str>) -> Result<LockState> {
        let request =
            self.client.head_object().bucket(&self.bucket).key(key).set_version_id(version.map(str::to_string));
        let out = sse_c!(request, self.customer_key())
            .send()
            .await
            .map_err(|e| classify("look up the Object Lock of", &self.url(key), e))?;
        if out.e_tag().is_none_or(str::is_empty) {
            return Err(not_s3(&self.server, "look up", &self.url(key)));
        }
        let mode = out.object_lock_mode().and_then(|m| parse_mode(m.as_str()));
        let until = out.object_lock_retain_until_date().and_then(chrono_time);
        Ok(LockState {
            retention: mode.zip(until),
            legal_hold: out.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On),
        })
    }

    pub(super) async fn put_retention(
        &self,
        key: &str,
        version: Option<&str>,
        mode: LockMode,
        until: DateTime<Utc>,
        bypass_governance: bool,
    ) -> Result<()> {
        let retention =
            ObjectLockRetention::builder().mode(retention_mode(mode)).retain_until_date(smithy_time(until)).build();
        self.client
            .put_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .retention(retention)
            // Only ever `true`: some servers take the header's presence
            // for a bypass, whatever its value.
            .set_bypass_governance_retention(bypass_governance.then_some(true))
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| classify("set the retention of", &self.url(key), e))?;
        Ok(())
    }

    pub(super) async fn put_legal_hold(&self, key: &str, version: Option<&str>, on: bool) -> Result<()> {
        let status = if on { ObjectLockLegalHoldStatus::On } else { ObjectLockLegalHoldStatus::Off };
        self.client
            .put_object_legal_hold()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .legal_hold(ObjectLockLegalHold::builder().status(status).build())
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| classify("set the legal hold of", &self.url(key), e))?;
        Ok(())
    }

    /// Versioning, then (on a versioned bucket) the Object Lock
    /// configuration. A server that implements neither has neither.
    pub(super) async fn bucket_lock_config(&self) -> Result<BucketLock> {
        let versioning = match self.client.get_bucket_versioning().bucket(&self.bucket).send().await {
            Ok(out) => match out.status() {
                Some(BucketVersioningStatus::Enabled) => Some("Enabled".to_string()),
                Some(BucketVersioningStatus::Suspended) => Some("Suspended".to_string()),
                _ => None,
            },
            Err(e) if http_status(&e) == Some(501) || e.code() == Some("NotImplemented") => None,
            Err(e) => match versioning_under_another_root(&e) {
                Some(status) => status,
                None => return Err(classify("look up the versioning of", &self.url(""), e)),
            },
        };
        let mut found = BucketLock { versioning, ..BucketLock::default() };
        if !found.versioned() {
            return Ok(found);
        }
        match self.client.get_object_lock_configuration().bucket(&self.bucket).send().await {
            Ok(out) => {
                let config = out.object_lock_configuration();
                found.lock_enabled =
                    config.and_then(|c| c.object_lock_enabled()).is_some_and(|e| e.as_str() == "Enabled");
                found.default_retention = config.and_then(|c| c.rule()).and_then(|r| r.default_retention()).map(|d| {
                    let mode = d.mode().map(|m| m.as_str().to_string()).unwrap_or_default();
                    let period = match (d.days(), d.years()) {
                        (Some(days), _) => format!("{days} days"),
                        (None, Some(years)) => format!("{years} years"),
                        _ => "an unknown period".to_string(),
                    };
                    (mode, period)
                });
            }
            Err(e)
                if http_status(&e) == Some(404)
                    || matches!(e.code(), Some("ObjectLockConfigurationNotFoundError" | "NotImplemented")) => {}
            Err(e) => return Err(classify("look up the Object Lock configuration of", &self.url(""), e)),
        }
        Ok(found)
    }

    pub(super) async fn list_versions(&self, prefix: &str, next: Option<(String, String)>) -> Result<VersionPage> {
        let (key_marker, id_marker) = next.unzip();
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_key_marker(key_marker)
            .set_version_id_marker(id_marker.filter(|m| !m.is_empty()))
            .encoding_type(aws_sdk_s3::types::EncodingType::Url)
            .customize()
            .interceptor(super::keys::MendRawKeys)
            .send()
            .await
            .map_err(|e| classify("list the versions under", &self.url(prefix), e))?;
        if out.name() != Some(self.bucket.as_str()) {
            return Err(not_s3(&self.server, "list the versions under", &self.url(prefix)));
        }
        let encoded = out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url);
        let key = |k: &str| super::keys::decode(k, encoded);
        let mut versions: Vec<ObjectVersion> = out
            .versions()
            .iter()
            .filter_map(|v| {
                Some(ObjectVersion {
                    key: key(v.key()?),
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    delete_marker: false,
                    latest: v.is_latest() == Some(true),
                })
            })
            .chain(out.delete_markers().iter().filter_map(|m| {
                Some(ObjectVersion {
                    key: key(m.key()?),
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    delete_marker: true,
                    latest: m.is_latest() == Some(true),
                })
            }))
            .collect();
        versions.sort_by(|a, b| a.key.cmp(&b.key).then(b.latest.cmp(&a.latest)));
        if let Some(foreign) = versions.iter().find(|v| !v.key.starts_with(prefix)) {
            return Err(Error::service(format!(
                "list the versions under {}: {} answered with key {:?}, which is outside the prefix asked for",
                self.url(prefix),
                self.server,
                crate::layout::printable(&foreign.key)
            )));
        }
        let next = if out.is_truncated() == Some(true) {
            let key = out.next_key_marker().map(key).ok_or_else(|| {
                Error::service(format!("list the versions under {}: truncated without a key marker", self.url(prefix)))
            })?;
            Some((key, out.next_version_id_marker().unwrap_or_default().to_string()))
        } else {
            None
        };
        Ok(VersionPage { versions, next })
    }

    pub(super) async fn delete_object_versions(
        &self,
        versions: &[(String, String)],
        bypass_governance: bool,
    ) -> Result<DeleteOutcome> {
        let mut outcome = DeleteOutcome::default();
        let (versions, alone): (Vec<_>, Vec<_>) = versions.iter().cloned().partition(|(k, _)| super::keys::xml_safe(k));
        for (key, version) in &alone {
            if let Some(refusal) = self.delete_one(key, Some(version), bypass_governance).await? {
                outcome.refused.push((version_name(key, version), refusal));
            }
        }
        if versions.is_empty() {
            return Ok(outcome);
        }
        let objects = versions
            .iter()
            .map(|(k, v)| ObjectIdentifier::builder().key(k).version_id(v).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(false)
            .build()
            .map_err(|e| Error::service(format!("delete: {e}")))?;
        let out = self
            .client
            .delete_objects()
            .bucket(&self.bucket)
            .delete(delete)
            .set_bypass_governance_retention(bypass_governance.then_some(true))
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .send()
            .await
            .map_err(|e| classify("delete from", &self.url(&versions[0].0), e))?;
        for error in out.errors() {
            let key = error.key().unwrap_or("?");
            let version = error.version_id().unwrap_or("?");
            let message = format!(
                "delete {} (version {version}) failed: {}: {}",
                self.url(key),
                error.code().unwrap_or("error"),
                error.message().unwrap_or("")
            );
            // S3 refuses a retained or held version with AccessDenied.
            if error.code() == Some("AccessDenied") {
                outcome.refused.push((
                    version_name(key, version),
                    Error::new(Kind::RetentionLocked, message).with_code(error.code()),
                ));
            } else {
                return Err(Error::service(message).with_code(error.code()));
            }
        }
        // Every version must come back deleted or refused (some servers,
        // moto, name only the key of a refusal).
        let answered: std::collections::HashSet<(&str, &str)> = out
            .deleted()
            .iter()
            .filter_map(|d| Some((d.key()?, d.version_id().unwrap_or(""))))
            .chain(out.errors().iter().filter_map(|e| Some((e.key()?, e.version_id().unwrap_or("")))))
            .collect();
        let answered_key = |k: &str, v: &str| answered.contains(&(k, v)) || answered.contains(&(k, ""));
        if let Some((missing, _)) = versions.iter().find(|(k, v)| !answered_key(k, v)) {
            return Err(not_s3(&self.server, "delete", &self.url(missing)));
        }
        Ok(outcome)
    }
}

impl S3Store {
    /// Keeps `key` (a key, or a prefix ending in `/`) for `purge`: a small
    /// record object beside it, written without a lock.
    pub(super) async fn write_deferred(&self, key: &str) -> Result<()> {
        let record = format!("{key}{DEFERRED_SUFFIX}");
        let body = format!("kept for purge: {key}\n");
        self.put_object(&record, bytes::Bytes::from(body), &Vec::new(), crate::store::ObjectClass::Metadata, false)
            .await
    }

    /// The keys and prefixes under `prefix` that [`Self::write_deferred`] kept.
    pub(super) async fn read_deferred(&self, prefix: &str) -> Result<Vec<String>> {
        let keys = crate::store::paging::keys(self, prefix).await?;
        Ok(keys.iter().filter_map(|k| k.strip_suffix(DEFERRED_SUFFIX)).map(str::to_string).collect())
    }
}

/// The name of the record of a deferred delete, after the key it keeps.
pub const DEFERRED_SUFFIX: &str = ".gpbackup_deferred_delete";

/// The status of a 200 GetBucketVersioning answer the SDK could not parse
/// because its root element is not S3's `VersioningConfiguration` (moto
/// answers `GetBucketVersioningResponse`): the `Status` it holds. `None`
/// for anything else.
fn versioning_under_another_root<E>(
    err: &aws_sdk_s3::error::SdkError<E, crate::store::aws::HttpResponse>,
) -> Option<Option<String>> {
    let response = err.raw_response()?;
    let body = std::str::from_utf8(response.body().bytes()?).ok()?;
    if response.status().as_u16() != 200 || !body.contains("<GetBucketVersioningResponse") {
        return None;
    }
    let status = body.split("<Status>").nth(1).and_then(|r| r.split("</Status>").next());
    Some(status.filter(|s| matches!(*s, "Enabled" | "Suspended")).map(str::to_string))
}

/// How [`DeleteOutcome::refused`] names a version.
pub fn version_name(key: &str, version: &str) -> String {
    format!("{key}?versionId={version}")
}

/// The code of a lock that could not be confirmed after a write.
pub const LOCK_NOT_CONFIRMED: &str = "ObjectLockNotConfirmed";

fn describe(state: &LockState) -> String {
    let retention = match state.retention {
        Some((mode, until)) => format!("{} until {}", mode.as_str(), until.format("%Y-%m-%dT%H:%M:%SZ")),
        None => "no retention".to_string(),
    };
    format!("{retention}, legal hold {}", if state.legal_hold { "on" } else { "off" })
}
