//! S3 Object Lock options (`object_lock_mode`, `object_lock_retention`,
//! `object_lock_legal_hold`) and the delete policy under retention
//! (`on_retention_locked`), checked together.

use std::time::Duration;

use super::values::{Values, parse_duration_with_unit};
use super::vault::OnRetentionLocked;

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Users with `s3:BypassGovernanceRetention` may shorten or remove it.
    Governance,
    /// Nobody can shorten or remove it, not even the account's root user.
    Compliance,
}

impl LockMode {
    /// `GOVERNANCE` or `COMPLIANCE`, in any case.
    pub fn parse(text: &str) -> Option<LockMode> {
        match text.trim().to_ascii_uppercase().as_str() {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }

    /// S3's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// What every object the plugin writes is locked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectLock {
    /// Mode and period of the retention (from the moment of each write);
    /// `None`: a legal hold only.
    pub retention: Option<(LockMode, Duration)>,
    pub legal_hold: bool,
}

/// The longest retention accepted (S3 allows 100 years; a typo of `30y`
/// for `30d` in COMPLIANCE mode would be a very expensive mistake, so the
/// limit is the plugin's, not S3's).
pub const MAX_RETENTION: Duration = Duration::from_secs(10 * 366 * 86_400);

/// The lock the options ask for, or `None`.
pub fn parse(values: &mut Values, vault: bool) -> Option<ObjectLock> {
    let mode = values.given("object_lock_mode").map(str::to_string);
    let period = values.given("object_lock_retention").map(str::to_string);
    let legal_hold = values.boolean("object_lock_legal_hold").unwrap_or(false);
    if mode.is_none() && period.is_none() && !legal_hold {
        return None;
    }
    if vault {
        values.problem_with(
            "object_lock_mode",
            "object_lock_mode, object_lock_retention and object_lock_legal_hold do not apply with storage: glacier \
             (a vault's archives are protected by Vault Lock; see `vault-lock`)",
        );
        return None;
    }
    let mode = match mode.as_deref().map(|m| (m, LockMode::parse(m))) {
        None => None,
        Some((_, Some(mode))) => Some(mode),
        Some((text, None)) => {
            values.problem_with(
                "object_lock_mode",
                format!("object_lock_mode {text:?} must be governance or compliance"),
            );
            return None;
        }
    };
    // A unit is needed: `30` was 30 seconds of protection, not 30 days.
    let period = match period.as_deref().map(|p| (p, parse_duration_with_unit(p))) {
        None => None,
        Some((_, Ok(d))) if d.as_secs() == 0 => {
            values.problem_with("object_lock_retention", "object_lock_retention must be at least one second");
            return None;
        }
        Some((_, Ok(d))) if d > MAX_RETENTION => {
            values.problem_with(
                "object_lock_retention",
                "object_lock_retention must be at most 10 years (the plugin's limit, against a typo that would \
                 lock data for decades)",
            );
            return None;
        }
        Some((_, Ok(d))) => Some(d),
        Some((_, Err(why))) => {
            values.problem_with("object_lock_retention", format!("object_lock_retention: {why} (or 30d, 1y)"));
            return None;
        }
    };
    let retention = match (mode, period) {
        (Some(mode), Some(period)) => Some((mode, period)),
        (None, None) => None,
        (Some(_), None) => {
            values.problem_with(
                "object_lock_mode",
                "object_lock_mode needs object_lock_retention (how long each object is locked, e.g. 30d)",
            );
            return None;
        }
        (None, Some(_)) => {
            values.problem_with(
                "object_lock_retention",
                "object_lock_retention needs object_lock_mode (governance or compliance)",
            );
            return None;
        }
    };
    Some(ObjectLock { retention, legal_hold })
}

/// `on_retention_locked`: `fail` unless told otherwise.
pub fn on_retention_locked(values: &mut Values) -> OnRetentionLocked {
    match values.given("on_retention_locked").unwrap_or("fail") {
        "fail" => OnRetentionLocked::Fail,
        "defer" => OnRetentionLocked::Defer,
        _ => {
            values.problem_with("on_retention_locked", "on_retention_locked must be fail or defer");
            OnRetentionLocked::Fail
        }
    }
}
