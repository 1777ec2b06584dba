//! Whether a retention lock keeps a backup from being deleted yet, so that
//! `expire` skips it instead of starting a delete the service refuses
//! halfway (which would leave half a backup).
//!
//! Two locks: a Glacier Vault Lock (`storage: glacier`), whose policy
//! typically denies `glacier:DeleteArchive` while `glacier:ArchiveAgeInDays`
//! is less than N, so a backup's archives are locked until N days after the
//! backup; and S3 Object Lock, a [`Lock::ObjectLock`] from the objects'
//! retain-until dates and legal holds ([`super::object_lock`]).

use chrono::{Duration, NaiveDateTime};
use serde_json::Value;

use crate::store::LockStatus;

/// Until when a lock keeps a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    At(NaiveDateTime),
    /// A policy that denies deletes with no age condition.
    Forever,
    /// A policy this plugin does not understand: assume locked.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lock {
    None,
    /// The vault's lock (`InProgress` policies are enforced too).
    Vault {
        state: String,
        until: Until,
    },
    /// S3 Object Lock of the backup's current objects.
    ObjectLock(ObjectLockSummary),
}

/// The Object Lock of a backup's objects, in the coordinator's local time
/// (like backup timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLockSummary {
    /// The retention modes seen (usually one).
    pub modes: Vec<crate::config::LockMode>,
    /// The earliest retain-until date of any object.
    pub earliest: Option<NaiveDateTime>,
    /// The latest retain-until date (the backup is deletable whole after
    /// it); `Forever` when only legal holds lock it.
    pub until: Until,
    pub legal_holds: usize,
    /// Object versions with neither a retention nor a legal hold.
    pub unlocked: usize,
    /// Object versions looked at (a delete removes every version).
    pub objects: usize,
}

impl Lock {
    /// Whether the lock refuses deletes at `now`.
    pub fn holds(&self, now: NaiveDateTime) -> bool {
        match self {
            Lock::None => false,
            Lock::ObjectLock(s) if s.legal_holds > 0 => true,
            Lock::Vault { until, .. } | Lock::ObjectLock(ObjectLockSummary { until, .. }) => match until {
                Until::At(at) => now < *at,
                Until::Forever | Until::Unknown => true,
            },
        }
    }
}

/// What a vault's lock policy means for deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultRetention {
    pub state: String,
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Archives younger than this many days cannot be deleted.
    Days(u32),
    Forever,
    Unknown,
    /// The policy does not deny deletes.
    Free,
}

impl VaultRetention {
    /// From GetVaultLock's answer (`None`: no lock policy).
    pub fn of(status: Option<&LockStatus>) -> Option<VaultRetention> {
        let status = status?;
        Some(VaultRetention { state: status.state.clone(), rule: rule(&status.policy) })
    }
}

/// The lock on a backup taken at `date` that has `archives` in the vault
/// (a backup without archives has nothing the vault lock protects). One
/// day is added to the policy's age: archives are dated in UTC and counted
/// in whole days, the backup's timestamp in the coordinator's local time.
pub fn lock_of(vault: Option<&VaultRetention>, date: Option<NaiveDateTime>, archives: bool) -> Lock {
    let Some(vault) = vault.filter(|_| archives) else { return Lock::None };
    let until = match (vault.rule, date) {
        (Rule::Free, _) => return Lock::None,
        (Rule::Days(days), Some(date)) => Until::At(date + Duration::days(i64::from(days) + 1)),
        (Rule::Days(_), None) | (Rule::Unknown, _) => Until::Unknown,
        (Rule::Forever, _) => Until::Forever,
    };
    Lock::Vault { state: vault.state.clone(), until }
}

/// Reads an IAM policy: the longest `glacier:ArchiveAgeInDays` bound of the
/// statements that deny `glacier:DeleteArchive`.
fn rule(policy: &str) -> Rule {
    let Ok(policy) = serde_json::from_str::<Value>(policy) else { return Rule::Unknown };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Rule::Unknown,
    };
    let mut out = Rule::Free;
    for statement in statements {
        let denies = statement.get("Effect").and_then(Value::as_str) == Some("Deny")
            && strings(statement.get("Action")).iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a == "glacier:deletearchive" || a == "glacier:*" || a == "*"
            });
        if !denies {
            continue;
        }
        let days = statement
            .get("Condition")
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|conditions| conditions.iter())
            .filter(|(op, _)| op.starts_with("NumericLessThan"))
            .filter_map(|(op, args)| {
                let value = args.get("glacier:ArchiveAgeInDays")?;
                let n = value.as_u64().or_else(|| value.as_str()?.trim().parse().ok())?;
                // `LessThanEquals N` holds one day longer than `LessThan N`.
                Some(if op.contains("Equals") { n + 1 } else { n })
            })
            .max();
        let this = match (days, statement.get("Condition")) {
            (Some(days), _) => Rule::Days(u32::try_from(days).unwrap_or(u32::MAX)),
            (None, None) => Rule::Forever,
            (None, Some(_)) => Rule::Unknown,
        };
        out = match (out, this) {
            (Rule::Forever, _) | (_, Rule::Forever) => Rule::Forever,
            (Rule::Unknown, _) | (_, Rule::Unknown) => Rule::Unknown,
            (Rule::Days(a), Rule::Days(b)) => Rule::Days(a.max(b)),
            (Rule::Free, other) | (other, Rule::Free) => other,
        };
    }
    out
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// AWS's example of a vault lock policy (deny deletes for 365 days).
    const AWS_EXAMPLE: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"deny-based-on-archive-age",
        "Principal":"*","Effect":"Deny","Action":"glacier:DeleteArchive",
        "Resource":"arn:aws:glacier:us-west-2:123456789012:vaults/examplevault",
        "Condition":{"NumericLessThan":{"glacier:ArchiveAgeInDays":"365"}}}]}"#;

    fn status(policy: &str) -> LockStatus {
        LockStatus { state: "Locked".into(), policy: policy.into(), creation_date: None, expiration_date: None }
    }

    #[test]
    fn policies_read_as_retention_rules() {
        assert_eq!(rule(AWS_EXAMPLE), Rule::Days(365));
        let equals = AWS_EXAMPLE.replace("NumericLessThan", "NumericLessThanEquals").replace("\"365\"", "30");
        assert_eq!(rule(&equals), Rule::Days(31));
        let unconditional = r#"{"Statement":{"Effect":"Deny","Action":["glacier:*"],"Principal":"*"}}"#;
        assert_eq!(rule(unconditional), Rule::Forever);
        let allow = r#"{"Statement":[{"Effect":"Allow","Action":"glacier:DeleteArchive"}]}"#;
        assert_eq!(rule(allow), Rule::Free);
        let odd =
            r#"{"Statement":[{"Effect":"Deny","Action":"glacier:DeleteArchive","Condition":{"Bool":{"x":"y"}}}]}"#;
        assert_eq!(rule(odd), Rule::Unknown);
        assert_eq!(rule("not json"), Rule::Unknown);
    }

    #[test]
    fn backups_with_archives_are_locked_until_their_age_allows() {
        let vault = VaultRetention::of(Some(&status(AWS_EXAMPLE))).unwrap();
        let date = crate::engine::catalog::files::timestamp_date("20240101000000");
        let lock = lock_of(Some(&vault), date, true);
        let until = NaiveDateTime::parse_from_str("20250101000000", "%Y%m%d%H%M%S").unwrap();
        assert_eq!(lock, Lock::Vault { state: "Locked".into(), until: Until::At(until) });
        assert!(lock.holds(until - Duration::seconds(1)) && !lock.holds(until));
        assert_eq!(lock_of(Some(&vault), date, false), Lock::None, "no archives, nothing locked");
        assert_eq!(lock_of(None, date, true), Lock::None);
        assert!(lock_of(Some(&vault), None, true).holds(until), "a timestamp that is no date stays locked");
        assert!(VaultRetention::of(None).is_none());
    }
}
