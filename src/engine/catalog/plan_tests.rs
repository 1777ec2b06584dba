//! The expiry plan ([`super::retention::plan`]) on candidates made by hand:
//! chains, grace, locks and periods, the rules per database on restorable
//! data backups, metadata-only and future-dated backups, and a backup's
//! last write.

use super::lock::{Lock, Until};
use super::retention::{self, Candidate, Decision, Expired, Guard, Keep, Rules, plan};
use super::tests::date;
use super::*;

/// A data backup of database `demo`, restorable when complete, last
/// written at its timestamp.
fn candidate(ts: &str, status: Status, needs: &[&str]) -> Candidate {
    Candidate {
        timestamp: ts.to_string(),
        date: files::timestamp_date(ts),
        status,
        needs: needs.iter().map(|s| s.to_string()).collect(),
        lock: Lock::None,
        database: Some("demo".to_string()),
        restorable: status == Status::Complete,
        holds_data: true,
        last_activity: files::timestamp_date(ts),
    }
}

fn decisions(planned: &[retention::Planned]) -> Vec<(String, bool)> {
    planned.iter().map(|p| (p.timestamp[..8].to_string(), p.deleted())).collect()
}

#[test]
fn expiry_never_orphans_an_incremental_and_keeps_the_newest() {
    use Status::*;
    // Two chains: full 01 + incrementals 02, 03; full 04 + incremental 05.
    let c = vec![
        candidate("20240101000000", Complete, &[]),
        candidate("20240102000000", Complete, &["20240101000000"]),
        candidate("20240103000000", Complete, &["20240101000000", "20240102000000"]),
        candidate("20240104000000", Complete, &[]),
        candidate("20240105000000", Complete, &["20240104000000"]),
    ];
    let now = date("20240301000000");
    let keep_last = |n| Rules { keep_last: Some(n), grace: std::time::Duration::from_secs(86400), ..Rules::default() };
    let p = plan(&c, &keep_last(1), now);
    let want = |s: &[(&str, bool)]| s.iter().map(|(t, d)| (t.to_string(), *d)).collect::<Vec<_>>();
    assert_eq!(
        decisions(&p),
        want(&[("20240105", false), ("20240104", false), ("20240103", true), ("20240102", true), ("20240101", true)])
    );
    assert_eq!(p[1].decision, Decision::Keep(vec![Keep::NeededBy("20240105000000".into())]));
    assert_eq!(p[0].decision, Decision::Keep(vec![Keep::Newest("demo".into()), Keep::Last]));
    // Keeping the three newest keeps the whole chain of the third.
    let p = plan(&c, &keep_last(3), now);
    assert!(p.iter().all(|p| !p.deleted()), "{p:?}");
    // Older than 30 days: all are, but the newest complete one and its full stay.
    let older = Rules { older_than: Some(std::time::Duration::from_secs(30 * 86400)), ..keep_last(0) };
    let p = plan(&c, &Rules { keep_last: None, ..older }, now);
    assert_eq!(p.iter().filter(|p| !p.deleted()).count(), 2);
}

#[test]
fn expiry_respects_grace_locks_and_periods() {
    use Status::*;
    let now = date("20240310120000");
    let mut locked = candidate("20240301000000", Complete, &[]);
    locked.lock = Lock::Vault { state: "Locked".into(), until: Until::At(date("20240401000000")) };
    let c = vec![
        candidate("20240310110000", Unfinished, &[]),
        // Config uploaded, report not yet: still running too.
        candidate("20240310100000", Incomplete, &[]),
        // A recorded failure has ended, grace or not.
        candidate("20240310090000", Failed, &[]),
        candidate("20240308000000", Unfinished, &[]),
        candidate("20240309000000", Failed, &[]),
        candidate("20240307000000", Incomplete, &[]),
        candidate("20240306000000", Complete, &[]),
        candidate("20240306120000", Complete, &[]),
        candidate("20240305000000", Complete, &["20240220000000"]),
        candidate("20240229000000", Complete, &[]),
        locked,
        candidate("99999812345678", Complete, &[]),
    ];
    let rules = Rules {
        keep_last: Some(1),
        keep_daily: 2,
        keep_monthly: 2,
        grace: std::time::Duration::from_secs(86400),
        ..Rules::default()
    };
    let p = plan(&c, &rules, now);
    let get = |ts: &str| p.iter().find(|p| p.timestamp == ts).unwrap();
    let running = |ts: &str| Decision::Keep(vec![Keep::Running(files::timestamp_date(ts))]);
    assert_eq!(get("20240310110000").decision, running("20240310110000"));
    assert_eq!(get("20240310100000").decision, running("20240310100000"));
    assert_eq!(get("20240310090000").decision, Decision::Delete(Expired::Failed));
    assert_eq!(get("20240308000000").decision, Decision::Delete(Expired::Unfinished));
    assert_eq!(get("20240309000000").decision, Decision::Delete(Expired::Failed));
    assert_eq!(get("20240307000000").decision, Decision::Delete(Expired::Incomplete));
    // Newest complete is 06 12:00: newest, last, daily, monthly. 06 00:00 is the same day.
    assert_eq!(get("20240306000000").decision, Decision::Delete(Expired::NotKept));
    assert_eq!(get("20240305000000").decision, Decision::Keep(vec![Keep::Daily]));
    assert_eq!(get("20240305000000").absent_needs, vec!["20240220000000"]);
    assert_eq!(get("20240229000000").decision, Decision::Keep(vec![Keep::Monthly]));
    assert_eq!(get("20240301000000").decision, Decision::Keep(vec![Keep::Locked(Until::At(date("20240401000000")))]));
    assert_eq!(get("99999812345678").decision, Decision::Keep(vec![Keep::NotADate]));
    assert_eq!(p[0].timestamp, "99999812345678", "newest first");
}

#[test]
fn a_failed_delete_protects_what_it_needs() {
    let mut guard = Guard::default();
    guard.failed("20240103000000", &["20240101000000".into(), "20240102000000".into()]);
    assert_eq!(guard.blocked("20240101000000"), Some("20240103000000"));
    assert_eq!(guard.blocked("20240104000000"), None);
}

/// A candidate of another kind than [`candidate`]'s.
fn of(ts: &str, database: &str, status: Status, restorable: bool, holds_data: bool) -> Candidate {
    Candidate { database: Some(database.to_string()), restorable, holds_data, ..candidate(ts, status, &[]) }
}

#[test]
fn the_rules_count_each_databases_restorable_data_backups() {
    use Status::*;
    let now = date("20240301000000");
    let c = vec![
        of("20240101000000", "demo", Complete, true, true),
        of("20240102000000", "demo", Complete, true, true),
        // Metadata-only: newer than the data backup kept, and older.
        of("20240103000000", "demo", Complete, true, false),
        of("20231231000000", "demo", Complete, true, false),
        of("20240104000000", "other", Complete, true, true),
        // Dated in the future, complete: never takes the slot.
        of("20240305000000", "demo", Complete, true, true),
        // Its restore plan names a backup that is gone.
        of("20240106000000", "demo", Complete, false, true),
        of("20240107000000", "demo", Unreadable, false, false),
        // A database of metadata-only backups counts those.
        of("20240108000000", "schema", Complete, true, false),
        of("20240109000000", "schema", Complete, true, false),
    ];
    let rules = Rules { keep_last: Some(1), grace: std::time::Duration::from_secs(86400), ..Rules::default() };
    let p = plan(&c, &rules, now);
    let get = |ts: &str| p.iter().find(|p| p.timestamp == ts).unwrap().decision.clone();
    assert_eq!(get("20240102000000"), Decision::Keep(vec![Keep::Newest("demo".into()), Keep::Last]));
    assert_eq!(get("20240101000000"), Decision::Delete(Expired::NotKept));
    assert_eq!(get("20240103000000"), Decision::Keep(vec![Keep::MetadataOnly { oldest: "20240102000000".into() }]));
    assert_eq!(get("20231231000000"), Decision::Delete(Expired::OlderMetadata));
    assert_eq!(get("20240104000000"), Decision::Keep(vec![Keep::Newest("other".into()), Keep::Last]));
    assert_eq!(get("20240305000000"), Decision::Keep(vec![Keep::Future]));
    assert_eq!(get("20240106000000"), Decision::Delete(Expired::NotRestorable));
    assert_eq!(get("20240107000000"), Decision::Keep(vec![Keep::Unreadable]));
    assert_eq!(get("20240109000000"), Decision::Keep(vec![Keep::Newest("schema".into()), Keep::Last]));
    assert_eq!(get("20240108000000"), Decision::Delete(Expired::NotKept));
    // Within the clock-skew allowance a backup is not in the future.
    let soon = now + retention::CLOCK_SKEW - chrono::Duration::minutes(1);
    let ts = soon.format("%Y%m%d%H%M%S").to_string();
    let p =
        plan(&[of(&ts, "demo", Complete, true, true), of("20240102000000", "demo", Complete, true, true)], &rules, now);
    assert_eq!(p[0].decision, Decision::Keep(vec![Keep::Newest("demo".into()), Keep::Last]));
    assert!(p[1].deleted());
}

#[test]
fn a_backup_not_complete_is_judged_by_its_last_write() {
    use Status::*;
    let now = date("20240310120000");
    let grace = Rules { keep_last: Some(1), grace: std::time::Duration::from_secs(86400), ..Rules::default() };
    let started = "20240307000000";
    let at = |ts: &str| Some(date(ts));
    let c = |status, last: &str| Candidate { last_activity: at(last), ..candidate(started, status, &[]) };
    let full = candidate("20240301000000", Complete, &[]);
    for status in [Unfinished, Incomplete] {
        let p = plan(&[c(status, "20240310110000"), full.clone()], &grace, now);
        assert_eq!(p[0].decision, Decision::Keep(vec![Keep::Running(at("20240310110000"))]), "{status:?}");
        let p = plan(&[c(status, "20240308000000"), full.clone()], &grace, now);
        assert!(p[0].deleted(), "{status:?}: last written two days ago");
    }
}
