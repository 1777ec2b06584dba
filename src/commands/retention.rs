//! S3 Object Lock of a backup, for an operator: `retention CFG TS` shows
//! each object's mode, retain-until date and legal hold, with a summary;
//! `retention extend CFG TS --until DATE | --by DURATION` extends them
//! (COMPLIANCE is never shortened; shortening GOVERNANCE needs
//! `--bypass-governance-retention`); `legal-hold on|off CFG TS`. Every
//! change is read back before it is reported done.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Context;
use super::args::{LegalHoldCommand, RetentionCommand};
use super::output::say;
use crate::config::{LockMode, Purpose};
use crate::error::{Error, Kind, Result};
use crate::layout;
use crate::store::{LockState, Store, paging};

fn date(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current objects of backup `timestamp` and their locks.
async fn locks(ctx: &Context, timestamp: &str) -> Result<Vec<(String, LockState)>> {
    layout::validate_timestamp(timestamp)?;
    let prefix = layout::backup_prefix(&ctx.config.folder, timestamp)?;
    let keys = paging::keys(&*ctx.store, &prefix).await?;
    if keys.is_empty() {
        return Err(Error::not_found(format!("backup {timestamp}: no objects under {}", ctx.store.url(&prefix))));
    }
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let state = ctx.store.lock_state(&key, None).await?;
        found.push((key, state));
    }
    Ok(found)
}

fn line(key: &str, state: &LockState) -> String {
    let (mode, until) = match state.retention {
        Some((mode, until)) => (mode.as_str().to_string(), date(until)),
        None => ("-".to_string(), "-".to_string()),
    };
    format!("{}\t{mode}\t{until}\tlegal-hold {}", layout::printable(key), if state.legal_hold { "on" } else { "off" })
}

/// `backup TS: 12 objects; 12 COMPLIANCE, retained until A (earliest) to B; 0 on legal hold; 0 unlocked`.
fn summary(timestamp: &str, locks: &[(String, LockState)]) -> String {
    let now = Utc::now();
    let mut modes: Vec<(LockMode, usize)> = Vec::new();
    let dates: Vec<DateTime<Utc>> = locks.iter().filter_map(|(_, s)| s.retention.map(|(_, u)| u)).collect();
    for (_, state) in locks {
        if let Some((mode, _)) = state.retention {
            match modes.iter_mut().find(|(m, _)| *m == mode) {
                Some((_, n)) => *n += 1,
                None => modes.push((mode, 1)),
            }
        }
    }
    let mut parts = vec![format!("backup {timestamp}: {} objects", locks.len())];
    for (mode, n) in &modes {
        parts.push(format!("{n} {}", mode.as_str()));
    }
    if let (Some(first), Some(last)) = (dates.iter().min(), dates.iter().max()) {
        parts.push(format!("retained until {} to {}", date(*first), date(*last)));
    }
    parts.push(format!("{} on legal hold", locks.iter().filter(|(_, s)| s.legal_hold).count()));
    parts.push(format!("{} deletable now", locks.iter().filter(|(_, s)| !s.locked_at(now)).count()));
    parts.join("; ")
}

pub async fn show(config: &Path, timestamp: &str) -> Result<()> {
    let ctx = Context::open(config, Purpose::Other).await?;
    let found = locks(&ctx, timestamp).await?;
    for (key, state) in &found {
        say(&line(key, state));
    }
    say(&summary(timestamp, &found));
    Ok(())
}

pub async fn extend(command: RetentionCommand) -> Result<()> {
    let RetentionCommand::Extend { config, timestamp, until, by, bypass_governance } = command;
    let ctx = Context::open(&config, Purpose::Other).await?;
    let found = locks(&ctx, &timestamp).await?;
    let configured = ctx.config.object_lock.and_then(|l| l.retention).map(|(mode, _)| mode);
    let now = Utc::now();
    // Every change is decided (and refused) before the first is made.
    let mut plan = Vec::new();
    for (key, state) in &found {
        let current = state.retention;
        let mode = match (current, configured) {
            (Some((mode, _)), _) | (None, Some(mode)) => mode,
            (None, None) => {
                return Err(Error::usage(format!(
                    "retention extend: {} has no retention and the config sets no object_lock_mode: set \
                     object_lock_mode (governance or compliance) to say which mode to lock it in",
                    ctx.store.url(key)
                )));
            }
        };
        let new = match (until, by) {
            (Some(until), _) => until,
            (None, Some(by)) => {
                let base = current.map(|(_, u)| u).filter(|u| *u > now).unwrap_or(now);
                base + chrono::Duration::from_std(by).map_err(|_| Error::usage("retention extend: --by is too long"))?
            }
            (None, None) => return Err(Error::usage("retention extend: give --until DATE or --by DURATION")),
        };
        if new <= now {
            return Err(Error::usage(format!("retention extend: {} is not in the future", date(new))));
        }
        let shorter = current.is_some_and(|(_, u)| new < u);
        if shorter {
            let (mode, u) = current.unwrap_or((mode, new));
            match mode {
                LockMode::Compliance => {
                    return Err(Error::new(
                        Kind::RetentionLocked,
                        format!(
                            "retention extend: {} is retained in COMPLIANCE mode until {}, which can never be \
                             shortened (asked: {}); nothing was changed",
                            ctx.store.url(key),
                            date(u),
                            date(new)
                        ),
                    ));
                }
                LockMode::Governance if !bypass_governance => {
                    return Err(Error::new(
                        Kind::RetentionLocked,
                        format!(
                            "retention extend: {} is retained in GOVERNANCE mode until {}; {} would shorten it; \
                             nothing was changed",
                            ctx.store.url(key),
                            date(u),
                            date(new)
                        ),
                    )
                    .with_hint(
                        "shortening GOVERNANCE needs --bypass-governance-retention (and s3:BypassGovernanceRetention)",
                    ));
                }
                LockMode::Governance => {}
            }
        }
        if current != Some((mode, new)) {
            plan.push((key.clone(), mode, new, shorter));
        }
    }
    if bypass_governance && plan.iter().any(|(_, _, _, shorter)| *shorter) {
        log::warn!("retention extend {timestamp}: shortening GOVERNANCE retentions (--bypass-governance-retention)");
    }
    for (key, mode, new, shorter) in &plan {
        ctx.store.set_retention(key, None, *mode, *new, *shorter).await?;
        let state = ctx.store.lock_state(key, None).await?;
        if state.retention.is_none_or(|(m, u)| m != *mode || u.timestamp() < new.timestamp()) {
            return Err(Error::service(format!(
                "retention extend: {} was set to {} until {} but reads back as {}",
                ctx.store.url(key),
                mode.as_str(),
                date(*new),
                line(key, &state)
            )));
        }
    }
    let found = locks(&ctx, &timestamp).await?;
    say(&format!("retention extend: {} of {} objects changed", plan.len(), found.len()));
    say(&summary(&timestamp, &found));
    Ok(())
}

pub async fn legal_hold(command: LegalHoldCommand) -> Result<()> {
    let (config, timestamp, on) = match command {
        LegalHoldCommand::On { config, timestamp } => (config, timestamp, true),
        LegalHoldCommand::Off { config, timestamp } => (config, timestamp, false),
    };
    let ctx = Context::open(&config, Purpose::Other).await?;
    let found = locks(&ctx, &timestamp).await?;
    let store: &dyn Store = &*ctx.store;
    for (key, state) in &found {
        if state.legal_hold == on {
            continue;
        }
        store.set_legal_hold(key, None, on).await?;
        if store.lock_state(key, None).await?.legal_hold != on {
            return Err(Error::service(format!(
                "legal-hold: {} reads back with its legal hold {}",
                store.url(key),
                if on { "off" } else { "on" }
            )));
        }
    }
    let found = locks(&ctx, &timestamp).await?;
    say(&format!("legal-hold {}: backup {timestamp}", if on { "on" } else { "off" }));
    say(&summary(&timestamp, &found));
    Ok(())
}
