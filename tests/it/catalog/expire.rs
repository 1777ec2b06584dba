//! `expire` on two chains of a full backup and its incrementals, with a
//! failed, an abandoned (last written three days ago, on s3s-fs's disk) and
//! a running backup beside them: the dry run's plan word for word, a
//! `--yes` run whose first delete fails (the backups the failed one needs
//! are skipped, the others deleted), and the rerun that finishes the job.

use super::*;
use crate::support::fault_proxy::{FaultProxy, Faults};

const F: &str = "20231230000000";
const H: &str = "20231231000000";
const A: &str = "20240101000000";
const B: &str = "20240102000000";
const C: &str = "20240103000000";
const D: &str = "20240104000000";
const E: &str = "20240105000000";

#[test]
fn expire_keeps_what_kept_backups_need_and_survives_a_failed_delete() {
    let server = Server::start();
    if !server.has_disk() {
        eprintln!("skipped: needs s3s-fs's disk to date a backup's last write");
        return;
    }
    let c = Cluster::new(&server, &[]);
    // A backup running now: no config yet.
    let now = chrono::Local::now().format("%Y%m%d%H%M%S").to_string();
    let g = now.as_str();
    Spec { status: "Failure", ..Spec::full(F) }.store(&c);
    let abandoned = Spec::full(H).without("gpbackup_TS_config.yaml").without("gpbackup_TS_report");
    abandoned.store(&c);
    assert!(age_on_disk(&server, &c, &abandoned, "3 days ago"));
    Spec::full(A).store(&c);
    Spec::incremental(B, &[A]).store(&c);
    Spec::incremental(C, &[A, B]).store(&c);
    Spec::full(D).store(&c);
    Spec::incremental(E, &[D]).store(&c);
    Spec::full(g).without("gpbackup_TS_config.yaml").without("gpbackup_TS_report").store(&c);

    let out = c.run("expire", &["--keep-last", "1"], b"");
    assert_ok(&out);
    let root = format!("s3://{}/{}/backups/", server.bucket, c.folder);
    let expected = format!(
        "expire: 8 backups under {root}; rules: --keep-last 1, --grace 1d
keep    {g}  -            unfinished   11.9 KiB  not complete, last written 0m ago: younger than --grace 1d, may still be running
keep    20240105000000  incremental  complete      6.9 KiB  newest restorable backup of demo; --keep-last 1
keep    20240104000000  full         complete     12.8 KiB  the restore of 20240105000000 needs it
delete  20240103000000  incremental  complete      7.0 KiB  no rule keeps it
delete  20240102000000  incremental  complete      6.9 KiB  no rule keeps it
delete  20240101000000  full         complete     12.8 KiB  no rule keeps it
delete  20231231000000  -            unfinished   11.9 KiB  no config, last written before --grace 1d
delete  20231230000000  full         failed       12.8 KiB  failed: gpbackup recorded status Failure
dry run: 5 backups (39 objects, 51.5 KiB) would be deleted, 3 kept; run again with --yes to delete them
"
    );
    // The plan without the line of --grace's cutoff, a date to the minute.
    let plan = |out: &std::process::Output| {
        let text = stdout(out);
        let grace = line_with(&text, "--grace 1d: backups that are not complete, last written before ").to_string();
        text.replace(&format!("{grace}\n"), "")
    };
    assert_eq!(plan(&out), expected);
    assert_eq!(plan(&c.run("expire", &["--keep-last", "1"], b"")), expected, "a dry run changes nothing");

    // --older-than: everything here is older than a day, but the newest
    // complete backup and what it needs stay, and so does the running one.
    let out = c.run("expire", &["--older-than", "1d", "--keep-daily", "3"], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let e = text.lines().find(|l| l.starts_with("keep") && l.contains(E)).unwrap_or_else(|| panic!("{text}"));
    assert!(e.contains("newest restorable backup of demo"), "{text}");
    assert!(line_with(&text, C).ends_with("--keep-daily 3"), "{text}");
    assert!(line_with(&text, A).contains("the restore of 20240103000000 needs it"), "{text}");
    assert!(line_with(&text, "dry run").contains("2 backups"), "{text}");

    // The first delete (the newest doomed backup, C) fails: B and A, which
    // C still needs, are skipped; the unrelated H and F go.
    let proxy = FaultProxy::start(
        &server.endpoint,
        Faults { only: Some(("POST ", "delete")), late_slowdowns: 1, ..Faults::default() },
        7,
    );
    let flaky = Cluster::with_folder(&server, &c.folder, &[("endpoint", &proxy.endpoint), ("retry_max_attempts", "1")]);
    let out = flaky.run("expire", &["--keep-last", "1", "--yes"], b"");
    assert_fails_with(&out, "3 of 5 deletes did not happen");
    let text = stdout(&out);
    assert!(line_with(&text, &format!("FAILED   {C}")).contains("SlowDown"), "{text}");
    for skipped in [B, A] {
        assert_eq!(
            line_with(&text, &format!("skipped  {skipped}")),
            format!("skipped  {skipped}: the delete of {C} failed, and its restore still needs this backup")
        );
    }
    assert!(text.contains(&format!("deleted  {H}: 7 objects")) && text.contains(&format!("deleted  {F}: 9 objects")));
    assert!(text.ends_with("expire: 2 deleted, 1 failed, 2 skipped, 3 kept\n"), "{text}");
    for (ts, kept) in [(F, false), (H, false), (A, true), (B, true), (C, true), (D, true), (E, true), (g, true)] {
        assert_eq!(has_backup(&c, ts), kept, "{ts}");
    }

    // The rerun finishes the job; what is kept still restores.
    let out = c.run("expire", &["--keep-last", "1", "--yes"], b"");
    assert_ok(&out);
    assert!(stdout(&out).ends_with("expire: 3 deleted, 0 failed, 0 skipped, 3 kept\n"), "{}", stdout(&out));
    for (ts, kept) in [(A, false), (B, false), (C, false), (D, true), (E, true), (g, true)] {
        assert_eq!(has_backup(&c, ts), kept, "{ts}");
    }
    assert_ok(&c.run("verify", &[E, "--deep"], b""));
}
