//! `verify [--deep]`: missing files and objects, damage a lookup sees (a
//! truncated object, a damaged manifest) and damage only a read sees (a
//! flipped byte), an incremental's base, archived objects that need `thaw`.

use super::*;

/// A 9 MiB stream: a multipart object with an integrity manifest.
const BIG: usize = 9 << 20;

#[test]
fn verify_finds_missing_and_damaged_objects() {
    let server = Server::start();
    let c = Cluster::new(&server, &[]);
    let (good, no_report, no_file, incr) = ("20240301010101", "20240302010101", "20240303010101", "20240304010101");
    Spec::full(good).store(&c);
    let big = format!("gpbackup_0_{good}_16386.gz");
    let big_path = c.backup_dir("gpseg-1", good).join(&big);
    assert_ok(&c.run("backup_data", &[big_path.to_str().unwrap()], &data(BIG, 9)));
    Spec::full(no_report).without("gpbackup_TS_report").store(&c);
    Spec::full(no_file).without("gpbackup_1_TS_16384.gz").store(&c);
    Spec::incremental(incr, &[good]).store(&c);

    let out = c.run("verify", &[good], b"");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(line_with(&text, &big).contains("size and 2 parts as its manifest records"), "{text}");
    assert!(line_with(&text, &format!("gpbackup_{good}_report")).contains("size as recorded"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("ok ")).count(), 10, "{text}");
    assert!(text.contains(&format!("backup {good} is restorable")), "{text}");
    // Off a terminal the progress goes to the log, not between the lines.
    assert!(!text.contains("checked "), "{text}");
    assert!(c.log_text().contains("checked 10 of 10 objects"), "{}", c.log_text());
    let out = c.run("verify", &[good, "--deep"], b"");
    assert_ok(&out);
    assert!(line_with(&stdout(&out), &big).contains("read: CRC-64 of each of 2 parts and the whole matches"));

    let out = c.run("verify", &[no_report], b"");
    assert_fails_with(&out, &format!("backup {no_report} is not restorable"));
    assert!(stdout(&out).contains(&format!("MISSING  gpbackup_{no_report}_report")), "{}", stdout(&out));
    let out = c.run("verify", &[no_file], b"");
    assert_fails_with(&out, "not restorable");
    assert!(stdout(&out).contains(&format!("MISSING  gpbackup_1_{no_file}_16384.gz")), "{}", stdout(&out));

    // An incremental covers its base: the base's file gone fails it.
    let out = c.run("verify", &[incr], b"");
    assert_ok(&out);
    assert!(stdout(&out).contains(&format!("its restore also reads {good}")));
    let victim = format!("gpbackup_1_{good}_16384.gz");
    let Some(file) = server.object_file(&c.key(good, &victim)) else {
        eprintln!("skipped: the damage checks need the server's disk (s3s-fs)");
        return;
    };

    // A flipped byte: same size, so only a read sees it.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    assert_ok(&c.run("verify", &[good], b""));
    let out = c.run("verify", &[incr, "--deep"], b"");
    assert_fails_with(&out, &format!("backup {incr} is not restorable"));
    let damaged = line_with(&stdout(&out), &victim).to_string();
    assert!(damaged.starts_with("DAMAGED") && damaged.contains("checksum"), "{damaged}");

    // Truncated: its integrity record's size says so without a read.
    std::fs::write(&file, &bytes[..1000]).unwrap();
    let out = c.run("verify", &[good], b"");
    assert_fails_with(&out, "not restorable");
    let line = line_with(&stdout(&out), &victim).to_string();
    assert!(line.contains("1000 bytes stored, but its integrity record says 3000"), "{line}");

    // A damaged manifest: the multipart object cannot be proven.
    let manifest = c.manifest_key(&c.key(good, &big));
    let manifest_file = server.object_file(&manifest).unwrap();
    let text = std::fs::read_to_string(&manifest_file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let last = lines.len() - 1;
    lines[last] = lines[last].replace("part ", "part 1");
    std::fs::write(&manifest_file, lines.join("\n") + "\n").unwrap();
    let out = c.run("verify", &[good], b"");
    assert_fails_with(&out, "not restorable");
    // s3s-fs keeps each object's checksum and refuses the altered bytes;
    // a server without one hands them over and the manifest's own totals
    // refuse them.
    let line = line_with(&stdout(&out), &big).to_string();
    assert!(line.starts_with("DAMAGED") && line.contains("manifest"), "{line}");
    assert!(line.contains("is damaged") || line.contains("stored checksum does not match"), "{line}");
    std::fs::remove_file(&manifest_file).unwrap();
    let out = c.run("verify", &[good], b"");
    assert!(line_with(&stdout(&out), &big).contains("manifest") && stdout(&out).contains("is missing"));
}

/// Archived payloads (moto, DEEP_ARCHIVE): `backups` says archived, a
/// lookup-only verify passes and names what needs `thaw`, a deep verify
/// fails until `thaw`, then passes.
#[test]
fn archived_backups_say_thaw_first() {
    let server = Server::start_moto();
    server.moto_restore_delay(0);
    let c = Cluster::new(&server, &[("storage_class", "DEEP_ARCHIVE")]);
    let ts = "20240501010101";
    Spec { data_len: 2000, ..Spec::full(ts) }.store(&c);

    let text = stdout(&c.run("backups", &[], b""));
    assert!(line_with(&text, ts).contains("archived (DEEP_ARCHIVE)"), "{text}");
    let json: serde_json::Value = serde_json::from_slice(&c.run("backups", &["--json"], b"").stdout).unwrap();
    assert_eq!(json[0]["storage"]["cold_objects"], 4);
    assert_eq!(json[0]["storage"]["state"], "archived");

    let out = c.run("verify", &[ts], b"");
    assert_ok(&out);
    let text = stdout(&out);
    let data_line = line_with(&text, &format!("gpbackup_0_{ts}_16384.gz"));
    assert!(data_line.contains("archived in DEEP_ARCHIVE: a restore needs `thaw` first"), "{text}");
    assert!(text.contains(&format!("4 objects are archived: run `gpbackup_s3_plugin thaw <plugin config> {ts}`")));

    let out = c.run("verify", &[ts, "--deep"], b"");
    assert_fails_with(&out, "not restorable");
    assert!(line_with(&stdout(&out), &format!("gpbackup_1_{ts}_16385.gz")).starts_with("THAW"), "{}", stdout(&out));

    assert_ok(&c.run("thaw", &[ts, "--wait", "--timeout", "2m"], b""));
    let text = stdout(&c.run("backups", &[], b""));
    assert!(line_with(&text, ts).contains("thawed"), "{text}");
    let out = c.run("verify", &[ts, "--deep"], b"");
    assert_ok(&out);
    assert!(stdout(&out).contains("every object was read back and matches its checksums"), "{}", stdout(&out));
}
