//! gpbackup and gprestore replayed end to end, with real table data from a
//! real PostgreSQL server.
//!
//! Greenplum cannot be installed here, but every way gpbackup, gprestore and
//! gpbackup_helper call a plugin can be reproduced, and the data path can be
//! real: PostgreSQL's `COPY ... TO/FROM PROGRAM` is the mechanism Greenplum
//! segments use in multi-data-file mode. A [`Gp`] is a simulated cluster of a
//! coordinator (content -1) and N segments on a few "hosts" (directories),
//! whose segments' data all live in one PostgreSQL database: segment `n`
//! holds the rows with `mod(id, N) = n`.
//!
//! What is replayed (see the protocol reference, sections 1-5 and 7):
//! - the config copy gpbackup/gprestore generate per content and copy to
//!   each host (`/tmp/<ts>_<name>`, last writer wins), with the injected
//!   `pgport` and `backup_plugin_version` and the user's `restore_subset`;
//! - `plugin_api_version` once per segment, `--version` once per content;
//! - hooks at scope `master`, then `segment_host` once per segment and
//!   `segment` once per segment, each wave concurrent, content ids quoted;
//! - `backup_file` of metadata (a real `pg_dump --schema-only`), TOC,
//!   config, report and plugin config copy; `restore_file` of them, of the
//!   TOCs of every timestamp in an incremental restore plan, and of the
//!   segment TOCs;
//! - multi-file data: `COPY ... TO PROGRAM '<gzip|zstd|cat -> | plugin
//!   backup_data CFG FILE'` per table per segment, and `COPY ... FROM PROGRAM
//!   'plugin restore_data CFG FILE [| gzip -d -c]'`;
//! - single-data-file data: gpbackup_helper's one `backup_data` per segment
//!   with the tables' COPY output back to back (segment TOC of byte
//!   offsets), and its `restore_data` / `restore_data_subset` reads;
//! - incremental restores reading an older timestamp's files, a resize
//!   restore reading other segments' files, `delete_backup` of one of two
//!   backups;
//! - failures as gprestore sees them: the plugin's exit status masked by
//!   `| gzip -d -c`, so only a short or invalid stream can fail the COPY.
//!
//! Needs PostgreSQL's server binaries (Debian's `postgresql`), gzip and zstd.
//! Without PostgreSQL the tests print "skipped" — except in CI, where they
//! fail. `E2E_ROWS_SCALE=N` multiplies the row counts (default 1, about
//! 280,000 rows).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use crate::support::gp::*;
use crate::support::postgres::{Postgres, Stall};
use crate::support::*;

const DB: &str = "gpdemo";

/// Multi-data-file backups (one `COPY ... TO PROGRAM` per table per
/// segment) with gzip, zstd and no compression; each restored with `COPY
/// ... FROM PROGRAM` into dropped tables and compared.
#[test]
fn multi_file_backups_restore_through_copy_program() {
    let name = "multi_file_backups_restore_through_copy_program";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let gp = Gp::new(&server, &pg, 3, &[]);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let before = checksums(&pg, DB, &tables);
    assert!(before["sales.orders"].starts_with(&format!("{} ", 150_000 * scale())));

    let mut variants = vec![("20240315123045", Compression::Gzip), ("20240315123046", Compression::None)];
    if zstd_or_skip(name) {
        variants.push(("20240315123047", Compression::Zstd));
    }
    let backups: Vec<Backup> = variants
        .iter()
        .map(|(ts, comp)| {
            let b = gp.backup(DB, ts, *comp, false, &tables, None);
            gp.verify_stored(&b);
            b
        })
        .collect();

    // Every COPY ran the plugin as the server's user, which logged each
    // upload under its own HOME, without the secret.
    let log = pg.plugin_log_text();
    for b in &backups {
        for name in b.data.keys() {
            assert!(
                log.lines().any(|l| l.contains("Uploaded") && l.contains(name.as_str())),
                "no upload of {name} in the server-side plugin log"
            );
        }
    }
    assert!(!log.contains(&server.secret_key));

    for b in &backups {
        drop_tables(&pg, DB);
        let loaded = gp.restore(b, RestoreOptions::full(DB));
        assert_eq!(loaded.len(), tables.len());
        assert_eq!(checksums(&pg, DB, &tables), before, "{:?} restore", b.compression);
    }
    let log = pg.plugin_log_text();
    assert!(log.lines().filter(|l| l.contains("Downloaded")).count() >= backups.len() * tables.len() * 3);
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}

/// Single-data-file backups through a simulated gpbackup_helper: a filtered
/// restore of an uncompressed backup with `restore_subset: "on"` reads only
/// the selected tables' byte ranges (offsets from the segment TOCs of the
/// real data), and a gzip'ed backup of 3 segments is restored onto 2
/// (--resize-cluster), reading the other segments' files.
#[test]
fn single_data_file_filtered_and_resize_restores() {
    let name = "single_data_file_filtered_and_resize_restores";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let gp = Gp::new(&server, &pg, 3, &[("restore_subset", "on")]);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let before = checksums(&pg, DB, &tables);

    let plain = gp.backup(DB, "20240316000001", Compression::None, true, &tables, None);
    gp.verify_stored(&plain);
    let gz = gp.backup(DB, "20240316000002", Compression::Gzip, true, &tables, None);
    gp.verify_stored(&gz);

    // gprestore --include-table sales.orders --include-table sales."Line Items"
    // --include-table public.empty_table (an empty range): restore_data_subset.
    drop_tables(&pg, DB);
    let include = vec!["sales.orders", r#"sales."Line Items""#, "public.empty_table"];
    let loaded = gp.restore(&plain, RestoreOptions { db: DB, include: Some(include.clone()), resize_to: None });
    assert_eq!(loaded.len(), 3);
    let after = checksums(&pg, DB, &tables);
    for fqn in &include {
        assert_eq!(after[*fqn], before[*fqn], "{fqn}");
    }
    assert_eq!(after["public.events"], "0 -", "an excluded table got data");
    let helper_log = gp.c.log_text();
    assert!(helper_log.lines().filter(|l| l.contains("Downloaded")).count() >= 3, "{helper_log}");

    // gprestore --resize-cluster: 3 segments' files onto 2 segments.
    drop_tables(&pg, DB);
    gp.restore(&gz, RestoreOptions { db: DB, include: None, resize_to: Some(2) });
    assert_eq!(checksums(&pg, DB, &tables), before);
    // Segment 0 read content 2's file from its own directory's key.
    let seg0 = gp.backup_dir(0, &gz.ts).join(format!("gpbackup_2_{}_toc.yaml", gz.ts));
    assert!(seg0.exists(), "content 2's TOC was not fetched by segment 0");
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}

/// An incremental backup holds only the changed tables; its restore reads
/// the unchanged tables' files from the older timestamp. Then
/// `delete_backup` of the incremental one leaves the full one whole and
/// restorable.
#[test]
fn incremental_restore_and_delete_one_of_two_backups() {
    let name = "incremental_restore_and_delete_one_of_two_backups";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let gp = Gp::new(&server, &pg, 2, &[]);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let sums_full = checksums(&pg, DB, &tables);
    let (ts1, ts2) = ("20240317000001", "20240318000002");
    let full = gp.backup(DB, ts1, Compression::Gzip, false, &tables, None);

    pg.sql(
        DB,
        "INSERT INTO public.events SELECT id + 10000000, kind, at, qty, score, span, addr, 'new ' || body \
         FROM public.events WHERE id % 7 = 0; \
         UPDATE sales.\"Line Items\" SET \"Qty\" = \"Qty\" + 1 WHERE id % 10 = 0; \
         DELETE FROM sales.\"Line Items\" WHERE id % 97 = 0",
    );
    let sums_incr = checksums(&pg, DB, &tables);
    assert_ne!(sums_incr, sums_full);
    let changed = vec![table("public.events"), table(r#"sales."Line Items""#)];
    let incr = gp.backup(DB, ts2, Compression::Gzip, false, &changed, Some(ts1));
    gp.verify_stored(&incr);

    drop_tables(&pg, DB);
    gp.restore(&incr, RestoreOptions::full(DB));
    assert_eq!(checksums(&pg, DB, &tables), sums_incr);
    // The unchanged tables came from the older backup's directory.
    let log = pg.plugin_log_text();
    let older = format!("/backups/{}/{ts1}/gpbackup_0_{ts1}_", &ts1[..8]);
    assert!(log.lines().any(|l| l.contains("Downloaded") && l.contains(&older)), "no download from {ts1} in: {log}");

    // delete_backup of the incremental backup, as gpbackup_manager or
    // gpbackman call it (the user's config): the full one stays whole.
    let before = gp.listing();
    assert_ok(&gp.plugin(&["delete_backup", &s(&gp.user_config), ts2]));
    let after = gp.listing();
    let of = |l: &BTreeMap<String, u64>, ts: &str| -> BTreeMap<String, u64> {
        l.iter().filter(|(k, _)| k.contains(&format!("/{ts}/"))).map(|(k, v)| (k.clone(), *v)).collect()
    };
    assert!(of(&after, ts2).is_empty(), "left after delete_backup: {after:#?}");
    assert_eq!(of(&after, ts1), of(&before, ts1));
    assert_eq!(after.len(), of(&before, ts1).len());
    drop_tables(&pg, DB);
    gp.restore(&full, RestoreOptions::full(DB));
    assert_eq!(checksums(&pg, DB, &tables), sums_full);
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}

/// gprestore's multi-file restore is `COPY t FROM PROGRAM 'plugin
/// restore_data CFG FILE | gzip -d -c'`: the plugin's exit status is lost,
/// gzip's counts. Whatever goes wrong — object missing, cut short, altered,
/// the object or the server gone in the middle of the stream — the COPY
/// must fail and the table must hold no row.
#[test]
fn restore_failures_behind_gzip_never_load_rows() {
    let name = "restore_failures_behind_gzip_never_load_rows";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let lap = |what: &str| eprintln!("{name}: {what} ({:.1}s)", started.elapsed().as_secs_f64());
    let server = Server::start();
    if !server.has_disk() {
        let _ = writeln!(std::io::stderr(), "{name}: skipped: needs s3s-fs's disk to damage stored objects");
        return;
    }
    // Small parts and one request at a time: the plugin reads at most a
    // few 5 MB units ahead of what it has written. Few retries: a dead
    // server fails the restore in a second rather than after the default
    // ten jittered attempts.
    let gp = Gp::new(
        &server,
        &pg,
        1,
        &[
            ("backup_multipart_chunksize", "5MB"),
            ("restore_multipart_chunksize", "5MB"),
            ("restore_max_concurrent_requests", "1"),
            ("retry_max_attempts", "3"),
        ],
    );
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let events = table("public.events");
    create_tables(&pg, DB, &[events]);
    // Hard-to-compress rows (hex digests): about 35 MB once gzip'ed, far
    // more than the plugin buffers.
    pg.sql(
        DB,
        "CREATE TABLE sales.blobs (id integer NOT NULL, body text); \
         INSERT INTO sales.blobs SELECT g, (SELECT string_agg(md5(g || ':' || i), '') \
         FROM generate_series(1, 32) i) FROM generate_series(1, 60000) g",
    );
    let ts = "20240319000001";
    let b = gp.backup(DB, ts, Compression::Gzip, false, &[events], None);
    let oid = |fqn: &str| pg.sql(DB, &format!("SELECT '{fqn}'::regclass::oid"));
    let copies = gp.config_copies("20240319000002", &b.plugin_version, 1);
    let cfg = Gp::cfg(&copies, 0);
    // The blobs, as their own multi-file backup object.
    let blobs_file = gp.backup_dir(0, ts).join(format!("gpbackup_0_{ts}_{}.gz", oid("sales.blobs")));
    copy_rows(&pg.try_sql(DB, &gp.copy_to_program("SELECT * FROM sales.blobs", Compression::Gzip, &cfg, &blobs_file)));
    let events_file = gp.backup_dir(0, ts).join(format!("gpbackup_0_{ts}_{}.gz", oid("public.events")));
    // The events once more, uncompressed (`cat - | plugin backup_data`).
    let plain_file = gp.backup_dir(0, ts).join(format!("gpbackup_0_{ts}_{}", oid("public.events")));
    copy_rows(
        &pg.try_sql(DB, &gp.copy_to_program("SELECT * FROM public.events", Compression::None, &cfg, &plain_file)),
    );
    let plain_obj = server.object_file(&gp.c.key(ts, plain_file.file_name().unwrap().to_str().unwrap())).unwrap();
    let events_key = gp.c.key(ts, events_file.file_name().unwrap().to_str().unwrap());
    let blobs_key = gp.c.key(ts, blobs_file.file_name().unwrap().to_str().unwrap());
    let events_obj = server.object_file(&events_key).unwrap();
    let blobs_obj = server.object_file(&blobs_key).unwrap();
    let blobs_size = std::fs::metadata(&blobs_obj).unwrap().len();
    assert!(blobs_size > 30 << 20, "blobs object only {blobs_size} bytes");
    pg.sql(DB, "TRUNCATE public.events, sales.blobs");

    let restore = |fqn: &str, file: &Path, comp: Compression| -> Output {
        pg.try_sql(DB, &gp.copy_from_program(fqn, comp, &cfg, file))
    };
    let assert_failed_and_empty = |out: &Output, fqn: &str, what: &str| {
        assert!(!out.status.success(), "{what}: the COPY succeeded: {}", text(out));
        assert_eq!(pg.sql(DB, &format!("SELECT count(*) FROM {fqn}")), "0", "{what}: rows were loaded");
    };
    let original = std::fs::read(&events_obj).unwrap();
    let put_back = || std::fs::write(&events_obj, &original).unwrap();
    // A sanity check of the restore itself.
    let ok = restore("public.events", &events_file, Compression::Gzip);
    assert_eq!(copy_rows(&ok), 100_000 * scale());
    pg.sql(DB, "TRUNCATE public.events");

    lap("data backed up");

    // 1. The object is missing: the plugin writes nothing, gzip finds no
    //    gzip data at all.
    std::fs::remove_file(&events_obj).unwrap();
    let out = restore("public.events", &events_file, Compression::Gzip);
    assert_failed_and_empty(&out, "public.events", "missing object");
    let log = pg.log_text();
    assert!(log.contains("NoSuchKey"), "the plugin's error is not in the server log:\n{log}");
    assert!(log.contains("unexpected end of file"), "{log}");
    put_back();

    lap("missing object: COPY failed");

    // 2. The stored object is cut short: a short gzip stream.
    std::fs::write(&events_obj, &original[..original.len() / 2]).unwrap();
    let out = restore("public.events", &events_file, Compression::Gzip);
    assert_failed_and_empty(&out, "public.events", "truncated object");
    put_back();

    lap("truncated object: COPY failed");

    // 3. Same-length corruption of a gzip'ed object: caught by the
    //    plugin's checksums, and by gzip's own CRC in any case.
    let mut damaged = original.clone();
    let mid = damaged.len() / 2;
    for byte in &mut damaged[mid..mid + 16] {
        *byte ^= 0x5a;
    }
    std::fs::write(&events_obj, &damaged).unwrap();
    let out = restore("public.events", &events_file, Compression::Gzip);
    assert_failed_and_empty(&out, "public.events", "same-length corruption (gzip)");
    put_back();

    lap("same-length corruption (gzip): COPY failed");

    // 4. Uncompressed, as gprestore runs it now (no `| cat -`), the
    //    plugin's own exit status reaches the COPY: a missing object...
    let never = gp.backup_dir(0, ts).join(format!("gpbackup_0_{ts}_{}", oid("sales.blobs")));
    let missing = restore("sales.blobs", &never, Compression::None);
    assert_failed_and_empty(&missing, "sales.blobs", "missing uncompressed object");
    let plain = std::fs::read(&plain_obj).unwrap();
    let ok = restore("public.events", &plain_file, Compression::None);
    assert_eq!(copy_rows(&ok), 100_000 * scale());
    pg.sql(DB, "TRUNCATE public.events");

    lap("missing uncompressed object: COPY failed");

    // ...and same-length corruption of an uncompressed object, which no
    // decompressor can notice: only the plugin's checksums (a CRC per
    // stored part, checked before any byte of the part is written) catch
    // it, and the plugin fails.
    let mut damaged = plain.clone();
    let mid = damaged.len() / 2;
    damaged[mid..mid + 16].copy_from_slice(b"0123456789,abcde");
    std::fs::write(&plain_obj, &damaged).unwrap();
    let log_before = pg.log_text().len();
    let out = restore("public.events", &plain_file, Compression::None);
    assert_failed_and_empty(&out, "public.events", "same-length corruption (uncompressed)");
    let log = pg.log_text()[log_before..].to_string();
    let plugin_error = log
        .lines()
        .find(|l| l.contains("gpbackup_s3_plugin") && l.contains("[ERROR]"))
        .unwrap_or_else(|| panic!("the plugin did not report the damage:\n{log}"));
    std::fs::write(&plain_obj, &plain).unwrap();

    lap(&format!("same-length corruption (uncompressed): COPY failed; the plugin said: {plugin_error}"));

    // 5. Mid-stream: the COPY has parsed a row from the plugin's first
    //    bytes (so the plugin has written some) and is held by the
    //    trigger; the object disappears, or the server dies; the plugin
    //    fails on a later range and stops; gzip sees a truncated stream.
    let blobs_backup = std::fs::read(&blobs_obj).unwrap();
    for (what, sabotage) in [("object deleted mid-stream", 0), ("S3 server killed mid-stream", 1)] {
        let stall = Stall::install(&pg, DB, "sales.blobs");
        let log_before = pg.log_text().len();
        let out = std::thread::scope(|scope| {
            let copy = scope.spawn(|| restore("sales.blobs", &blobs_file, Compression::Gzip));
            Stall::wait_for_waiter(&pg, DB);
            if sabotage == 0 {
                std::fs::remove_file(&blobs_obj).unwrap();
            } else {
                // SAFETY: killing the s3s-fs child this test started.
                unsafe {
                    libc::kill(server.pid().unwrap() as libc::pid_t, libc::SIGKILL);
                }
            }
            stall.release();
            copy.join().unwrap()
        });
        assert_failed_and_empty(&out, "sales.blobs", what);
        let log = &pg.log_text()[log_before..];
        let plugin_error = log
            .lines()
            .find(|l| l.contains("gpbackup_s3_plugin") && l.contains("[ERROR]"))
            .unwrap_or_else(|| panic!("{what}: no plugin error in the server log:\n{log}"));
        // The plugin stopped; gzip got the start of a stream and no end.
        assert!(log.contains("unexpected end of file"), "{what}: {log}");
        lap(&format!("{what}: COPY failed; the plugin said: {plugin_error}"));
        pg.sql(DB, "DROP TRIGGER stall ON sales.blobs");
        std::fs::write(&blobs_obj, &blobs_backup).unwrap();
    }
    lap("done");
}

/// The same sequences with `storage: glacier`: data files become vault
/// archives (multipart: 1 MiB parts) on fakecloud, metadata stays in the
/// bucket. gprestore's setup refuses the backup until `thaw` has run; then
/// the database comes back identical, and delete_backup empties both.
#[test]
fn glacier_vault_backup_thaw_and_restore() {
    let name = "glacier_vault_backup_thaw_and_restore";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    let glacier = Glacier::fakecloud();
    let gp = Gp::new(
        &server,
        &pg,
        2,
        &[
            ("storage", "glacier"),
            ("vault", "gpdb-e2e"),
            ("glacier_endpoint", &glacier.endpoint),
            ("vault_part_size", "1MB"),
            ("restore_tier", "Expedited"),
        ],
    );
    let db = "vaultdb";
    pg.sql("postgres", &format!("CREATE DATABASE {db}"));
    let tables = all_tables();
    create_tables(&pg, db, &tables);
    let before = checksums(&pg, db, &tables);
    let ts = "20240316010203";
    let b = gp.backup(db, ts, Compression::Gzip, false, &tables, None);
    let listing = gp.listing();
    for data_file in b.data.keys() {
        assert!(listing.contains_key(&gp.c.key(ts, data_file)), "{data_file} not listed");
    }
    // Nothing of the data is in the bucket itself, only catalog entries.
    if let Some(file) = server.object_file(&gp.c.key(ts, b.data.keys().next().unwrap())) {
        assert!(!file.exists(), "data in the bucket: {}", file.display());
    }

    let coord = gp.backup_dir(-1, ts);
    let cfg = s(&gp.user_config);
    let out = gp.plugin(&["setup_plugin_for_restore", &cfg, &s(&coord), "master", "\"-1\""]);
    assert_fails_with(&out, &format!("thaw <plugin config> {ts}"));
    let out = gp.plugin(&["thaw", &cfg, ts, "--wait", "--timeout", "5m"]);
    assert_ok(&out);

    drop_tables(&pg, db);
    let loaded = gp.restore(&b, RestoreOptions::full(db));
    assert_eq!(loaded.len(), tables.len());
    assert_eq!(checksums(&pg, db, &tables), before);

    assert_ok(&gp.plugin(&["delete_backup", &cfg, ts]));
    assert!(!gp.listing().keys().any(|k| k.contains(ts)), "objects left after delete_backup");
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}

/// The end to end run once with S3 Object Lock: a gzip backup of two
/// segments into a moto bucket with Object Lock, `object_lock_mode:
/// governance` for a day. Every version of every object of the backup
/// (COPY ... TO PROGRAM payloads, multipart or not, metadata, TOC, config,
/// report) is locked; the restore through COPY ... FROM PROGRAM gives the
/// same table checksums; `delete_backup` is refused and deletes nothing;
/// with `--bypass-governance-retention` it leaves no version.
#[test]
fn object_locked_backup_restores_and_resists_delete() {
    use crate::object_lock::{head, lock_bucket, versions};
    let name = "object_locked_backup_restores_and_resists_delete";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start_moto();
    let bucket = lock_bucket(&server);
    let lock = [("bucket", bucket.as_str()), ("object_lock_mode", "governance"), ("object_lock_retention", "1d")];
    let gp = Gp::new(&server, &pg, 2, &lock);
    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let before = checksums(&pg, DB, &tables);
    let ts = "20240319000003";
    let b = gp.backup(DB, ts, Compression::Gzip, false, &tables, None);
    gp.verify_stored(&b);
    let prefix = format!("{}/backups/{}/{ts}/", gp.c.folder, &ts[..8]);
    let stored = versions(&server, &bucket, &prefix);
    assert!(stored.len() > tables.len() * 2, "{stored:?}");
    for (key, version, marker) in &stored {
        assert!(!marker, "{key}: a delete marker");
        let headers = head(&server, &bucket, key, Some(version));
        assert!(headers.contains("x-amz-object-lock-mode: governance"), "{key}: {headers}");
    }
    drop_tables(&pg, DB);
    gp.restore(&b, RestoreOptions::full(DB));
    assert_eq!(checksums(&pg, DB, &tables), before);

    let out = gp.plugin(&["delete_backup", &s(&gp.user_config), ts]);
    assert_fails_with(&out, "retained until");
    assert_eq!(versions(&server, &bucket, &prefix), stored);
    assert_ok(&gp.plugin(&["delete_backup", &s(&gp.user_config), ts, "--bypass-governance-retention"]));
    assert_eq!(versions(&server, &bucket, &prefix), vec![]);
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}

/// The multi-file backup once more, encrypted (age) and with sealed
/// credentials (`password_encryption: on`): the user's config holds only
/// the sealed secret, every host's copy gets the key from `.encrypt` as
/// gpbackup injects it, COPY ... PROGRAM runs the plugin as the server's
/// user with those copies, and the restored tables are the same. The stored
/// data is age ciphertext; no secret, sealed value or key is in a log or in
/// the uploaded config copy.
#[test]
fn encrypted_backup_with_sealed_credentials_restores() {
    use age::secrecy::ExposeSecret;
    let name = "encrypted_backup_with_sealed_credentials_restores";
    let Some(pg) = Postgres::start_or_skip(name) else {
        return;
    };
    let started = Instant::now();
    let server = Server::start();
    // Read by the server's OS user too (the identity, for restore_data).
    let keys = tempfile::tempdir().unwrap();
    std::fs::set_permissions(keys.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let identity_file = keys.path().join("age-key.txt");
    std::fs::write(&identity_file, format!("{}\n", identity.to_string().expose_secret())).unwrap();
    // Mode 0600 (the plugin refuses a private key others may read), owned
    // by the server's OS user (the owner of its HOME, beside the directory
    // of its plugin copy), as on a cluster where gpadmin runs both; root
    // reads it anyway.
    std::fs::set_permissions(&identity_file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let server_home = pg.plugin.parent().and_then(Path::parent).unwrap().join("home");
    let server_user = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&server_home).unwrap());
    std::os::unix::fs::chown(&identity_file, Some(server_user), None).unwrap();
    let coordinator = keys.path().join("coordinator");
    std::fs::create_dir(&coordinator).unwrap();
    let coordinator_dir = s(&coordinator);
    let out = run_plugin_env(
        &["encrypt-password".to_string()],
        server.secret_key.as_bytes(),
        keys.path(),
        &[("COORDINATOR_DATA_DIRECTORY", &coordinator_dir)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let sealed = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let encrypt_file = std::fs::read_to_string(coordinator.join(".encrypt")).unwrap();
    let key: BTreeMap<String, String> = serde_yaml::from_str(&encrypt_file).unwrap();
    let key = key["gpbackup_s3_plugin"].clone();

    let mut gp = Gp::new(
        &server,
        &pg,
        3,
        &[
            ("aws_secret_access_key", &sealed),
            ("password_encryption", "on"),
            ("encryption_recipients", &recipient),
            ("encryption_identity_file", &s(&identity_file)),
        ],
    );
    gp.injected.push(("gpbackup_s3_plugin".to_string(), key.clone()));
    gp.env.push(("COORDINATOR_DATA_DIRECTORY".to_string(), coordinator_dir));
    let user = std::fs::read_to_string(&gp.user_config).unwrap();
    assert!(!user.contains(&server.secret_key) && !user.contains(&key));

    pg.sql("postgres", &format!("CREATE DATABASE {DB}"));
    let tables = all_tables();
    create_tables(&pg, DB, &tables);
    let before = checksums(&pg, DB, &tables);
    let b = gp.backup(DB, "20240320000001", Compression::Gzip, false, &tables, None);

    // Stored: age files only, metadata and data alike.
    let listing = gp.listing();
    let data_keys: Vec<String> = b.data.keys().map(|n| gp.c.key(&b.ts, n)).collect();
    for k in &data_keys {
        assert!(listing.contains_key(k), "{k} not listed");
        if let Some(file) = server.object_file(k) {
            assert!(std::fs::read(file).unwrap().starts_with(b"age-encryption.org/v1\n"), "{k}");
        }
    }
    // The uploaded config copy, read back with the user's config (the key
    // from .encrypt): nothing secret in it.
    let check = gp.c.dir.path().join("check").join("backups").join(&b.ts[..8]).join(&b.ts);
    std::fs::create_dir_all(&check).unwrap();
    let pc = check.join(format!("gpbackup_{}_plugin_config.yaml", b.ts));
    assert_ok(&gp.plugin(&["restore_file", &s(&gp.user_config), &s(&pc)]));
    let pc_text = std::fs::read_to_string(&pc).unwrap();
    assert!(pc_text.contains("password_encryption") && pc_text.contains(&recipient), "{pc_text}");
    for secret in [&server.secret_key, &sealed, &key] {
        assert!(!pc_text.contains(secret.as_str()), "a secret in the stored plugin config");
    }

    drop_tables(&pg, DB);
    let loaded = gp.restore(&b, RestoreOptions::full(DB));
    assert_eq!(loaded.len(), tables.len());
    assert_eq!(checksums(&pg, DB, &tables), before, "encrypted restore");

    let logs = format!("{}{}", pg.plugin_log_text(), gp.c.log_text());
    assert!(logs.lines().filter(|l| l.contains("Uploaded")).count() >= tables.len() * 3);
    for secret in [&server.secret_key, &sealed, &key] {
        assert!(!logs.contains(secret.as_str()), "a secret in a log");
    }
    assert!(!logs.contains("AGE-SECRET-KEY"));
    eprintln!("{name}: {:.1}s", started.elapsed().as_secs_f64());
}
