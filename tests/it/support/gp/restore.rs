//! One gprestore run on the simulated cluster: multi-file through `COPY
//! ... FROM PROGRAM`, single-data-file through a simulated gpbackup_helper,
//! filtered, incremental or resized.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::backup::Backup;
use super::files::{BackupConfig, Compression, SegmentDataEntry, SegmentToc, Toc};
use super::{Gp, copy_rows, fan_out, s, sha256_hex};
use crate::support::assert_ok;

pub struct RestoreOptions<'o> {
    pub db: &'o str,
    /// gprestore --include-table: only these tables' data.
    pub include: Option<Vec<&'o str>>,
    /// gprestore --resize-cluster onto this many segments.
    pub resize_to: Option<usize>,
}

impl<'o> RestoreOptions<'o> {
    pub fn full(db: &'o str) -> Self {
        RestoreOptions { db, include: None, resize_to: None }
    }
}

static RESTORE_SEQ: AtomicU32 = AtomicU32::new(0);

impl Gp<'_> {
    /// gpbackup_helper's restore side: `restore_data` (or, with `offsets`,
    /// `restore_data_subset`) through the decompressor; the whole output.
    /// The helper fails a restore on any byte of stderr.
    fn helper_restore(&self, cfg: &str, file: &Path, comp: Compression, offsets: Option<&Path>) -> Vec<u8> {
        let mut args = vec![if offsets.is_some() { "restore_data_subset" } else { "restore_data" }.to_string()];
        args.push(cfg.to_string());
        args.push(s(file));
        if let Some(o) = offsets {
            args.push(s(o));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut plugin = self
            .plugin_command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (out, decompressed) = match comp.decompress() {
            None => {
                let mut out = Vec::new();
                plugin.stdout.take().unwrap().read_to_end(&mut out).unwrap();
                (out, true)
            }
            Some(cmd) => {
                let z = Command::new("sh")
                    .args(["-c", cmd])
                    .stdin(Stdio::from(plugin.stdout.take().unwrap()))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                let o = z.wait_with_output().unwrap();
                (o.stdout, o.status.success())
            }
        };
        let p = plugin.wait_with_output().unwrap();
        assert_ok(&p);
        assert!(decompressed, "decompressing {} failed", file.display());
        out
    }

    /// One gprestore run of backup `b` into `opts.db` (created if needed;
    /// its tables must not exist). Everything is read from the bucket: the
    /// config, TOCs and metadata, then the data. Returns the rows loaded
    /// per table; gprestore's own check (rows loaded = rows backed up) is
    /// made here.
    pub fn restore(&self, b: &Backup, opts: RestoreOptions) -> BTreeMap<String, u64> {
        let ts = b.ts.as_str();
        let dest = opts.resize_to.unwrap_or(self.segments);
        let restore_ts = format!("2099{:010}", RESTORE_SEQ.fetch_add(1, Ordering::Relaxed));
        let copies = self.config_copies(&restore_ts, &b.plugin_version, dest);
        let coord_cfg = Gp::cfg(&copies, -1);
        for line in std::fs::read_to_string(&copies["cdw"]).unwrap().lines() {
            if let Some(v) = line.trim().strip_prefix("backup_plugin_version: ") {
                assert_eq!(v, b.plugin_version, "gprestore passes the recorded version");
            }
        }
        assert_eq!(self.check_versions(dest), b.plugin_version);
        for content in -1..dest as i32 {
            self.backup_dir(content, ts);
        }
        self.hooks("setup_plugin_for_restore", &copies, ts, dest);
        let coord = self.backup_dir(-1, ts);

        let config: BackupConfig = serde_yaml::from_slice(
            &self.restore_file_again(&coord_cfg, &coord.join(format!("gpbackup_{ts}_config.yaml"))),
        )
        .unwrap();
        assert_eq!(config.timestamp, ts);
        let comp = Compression::from_config(&config);
        assert_eq!(comp, b.compression);
        assert_eq!(config.singledatafile, b.single_data_file);
        self.restore_file_again(&coord_cfg, &coord.join(format!("gpbackup_{ts}_report")));
        let metadata = self.restore_file_again(&coord_cfg, &coord.join(format!("gpbackup_{ts}_metadata.sql")));
        // The TOC of every timestamp in the restore plan.
        let mut tocs = BTreeMap::new();
        for entry in &config.restoreplan {
            let t = &entry.timestamp;
            let dir = self.backup_dir(-1, t);
            let toc: Toc = serde_yaml::from_slice(
                &self.restore_file_again(&coord_cfg, &dir.join(format!("gpbackup_{t}_toc.yaml"))),
            )
            .unwrap();
            tocs.insert(t.clone(), toc);
        }

        // Metadata first: the real DDL recreates the tables.
        if self.pg.sql("postgres", &format!("SELECT count(*) FROM pg_database WHERE datname = '{}'", opts.db)) == "0" {
            self.pg.sql("postgres", &format!("CREATE DATABASE {}", opts.db));
        }
        let script = self.c.dir.path().join(format!("metadata_{restore_ts}.sql"));
        std::fs::write(&script, metadata).unwrap();
        self.pg.run_file(opts.db, &script);

        // Which table's data comes from which timestamp, under which OID.
        struct Item {
            fqn: String,
            ts: String,
            oid: u32,
            rows: u64,
        }
        let mut items = Vec::new();
        for entry in &config.restoreplan {
            for e in &tocs[&entry.timestamp].dataentries {
                let fqn = e.fqn();
                if !entry.tablefqns.contains(&fqn) {
                    continue;
                }
                if opts.include.as_ref().is_some_and(|include| !include.contains(&fqn.as_str())) {
                    continue;
                }
                items.push(Item { fqn, ts: entry.timestamp.clone(), oid: e.oid, rows: e.rows_copied_to_segments });
            }
        }
        let mut loaded: BTreeMap<String, u64> = items.iter().map(|i| (i.fqn.clone(), 0)).collect();
        let orig = config.segmentcount;

        if config.singledatafile || opts.resize_to.is_some() {
            assert!(config.singledatafile, "this driver resizes single-data-file backups only");
            assert_eq!(config.restoreplan.len(), 1, "no incremental single-data-file backups here");
            // gpbackup_helper on each destination segment; with
            // --resize-cluster it also reads the files of the original
            // contents d + dest, d + 2*dest, ...
            let filtered = opts.include.is_some();
            let subset = filtered && comp == Compression::None && self.option("restore_subset") == Some("on");
            let segs: Vec<i32> = (0..dest as i32).collect();
            let per_segment = fan_out(&segs, |&d| {
                let cfg = Gp::cfg(&copies, d);
                let dir = self.backup_dir(d, ts);
                let mut rows: Vec<(String, u64)> = Vec::new();
                for o in (d as usize..orig).step_by(dest) {
                    // The original content's segment TOC, fetched into the
                    // destination segment's directory.
                    let toc_path = dir.join(format!("gpbackup_{o}_{ts}_toc.yaml"));
                    let _ = std::fs::remove_file(&toc_path);
                    assert_ok(&self.plugin(&["restore_file", &cfg, &s(&toc_path)]));
                    let seg_toc: SegmentToc = serde_yaml::from_slice(&std::fs::read(&toc_path).unwrap()).unwrap();
                    let mut wanted: Vec<(&Item, SegmentDataEntry)> =
                        items.iter().map(|i| (i, seg_toc.dataentries[&i.oid])).collect();
                    wanted.sort_by_key(|(i, _)| i.oid);
                    let file = dir.join(format!("gpbackup_{o}_{ts}{}", comp.ext()));
                    let pieces: Vec<Vec<u8>> = if subset {
                        // The offsets file gpbackup_helper writes: one line,
                        // no newline, ascending OIDs.
                        let mut text = wanted.len().to_string();
                        for (_, r) in &wanted {
                            text.push_str(&format!(" {} {}", r.startbyte, r.endbyte));
                        }
                        let offsets = self.host_tmp(&Gp::host(d)).join(format!("gprestore_offsets_{restore_ts}_{o}"));
                        std::fs::write(&offsets, text).unwrap();
                        let out = self.helper_restore(&cfg, &file, comp, Some(&offsets));
                        let want: u64 = wanted.iter().map(|(_, r)| r.endbyte - r.startbyte).sum();
                        assert_eq!(out.len() as u64, want, "restore_data_subset of {}", file.display());
                        let mut at = 0usize;
                        wanted
                            .iter()
                            .map(|(_, r)| {
                                let len = (r.endbyte - r.startbyte) as usize;
                                at += len;
                                out[at - len..at].to_vec()
                            })
                            .collect()
                    } else {
                        let out = self.helper_restore(&cfg, &file, comp, None);
                        let name = file.file_name().unwrap().to_str().unwrap();
                        assert_eq!(sha256_hex(&out), b.data[name], "{name}: restored stream differs");
                        wanted.iter().map(|(_, r)| out[r.startbyte as usize..r.endbyte as usize].to_vec()).collect()
                    };
                    for ((item, _), piece) in wanted.iter().zip(pieces) {
                        rows.push((item.fqn.clone(), copy_rows(&self.pg.copy_in(opts.db, &item.fqn, &piece))));
                    }
                }
                rows
            });
            for (fqn, n) in per_segment.into_iter().flatten() {
                *loaded.get_mut(&fqn).unwrap() += n;
            }
        } else {
            // COPY ... FROM PROGRAM per table, on every segment at once.
            assert_eq!(orig, dest);
            let segs: Vec<i32> = (0..dest as i32).collect();
            for item in &items {
                let counts = fan_out(&segs, |&n| {
                    let cfg = Gp::cfg(&copies, n);
                    let file = self.backup_dir(n, &item.ts).join(format!(
                        "gpbackup_{n}_{}_{}{}",
                        item.ts,
                        item.oid,
                        comp.ext()
                    ));
                    copy_rows(&self.pg.try_sql(opts.db, &self.copy_from_program(&item.fqn, comp, &cfg, &file)))
                });
                *loaded.get_mut(&item.fqn).unwrap() += counts.iter().sum::<u64>();
            }
        }
        for item in &items {
            assert_eq!(
                loaded[&item.fqn], item.rows,
                "Expected to restore {} rows to table {}, but restored {} instead",
                item.rows, item.fqn, loaded[&item.fqn]
            );
        }
        self.hooks("cleanup_plugin_for_restore", &copies, ts, dest);
        loaded
    }
}
