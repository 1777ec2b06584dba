//! One gpbackup run on the simulated cluster, and the check of what it
//! stored.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use sha2::{Digest, Sha256};

use super::database::TableDef;
use super::files::{BackupConfig, Compression, DataEntry, RestorePlanEntry, Toc};
use super::{Gp, copy_rows, fan_out, filter, s, sha256_hex};
use crate::support::assert_ok;

/// What a backup run leaves for the checks (a restore itself reads
/// everything it needs from the bucket).
pub struct Backup {
    pub ts: String,
    pub compression: Compression,
    pub single_data_file: bool,
    /// The plugin version gpbackup records in its history database.
    pub plugin_version: String,
    pub segments: usize,
    /// Data file name given to `backup_data` -> SHA-256 of its uncompressed
    /// stream (the COPY output).
    pub data: BTreeMap<String, String>,
    /// Local paths of the coordinator files pushed with `backup_file`.
    pub files: Vec<PathBuf>,
}

impl Gp<'_> {
    /// One gpbackup run of database `db`: data of `tables` (all of them
    /// for a full backup, the changed ones for an incremental backup on
    /// top of `previous`).
    pub fn backup(
        &self,
        db: &str,
        ts: &str,
        comp: Compression,
        single_data_file: bool,
        tables: &[&TableDef],
        previous: Option<&str>,
    ) -> Backup {
        let segments = self.segments;
        let copies = self.config_copies(ts, "", segments);
        let coord_cfg = Gp::cfg(&copies, -1);
        let plugin_version = self.check_versions(segments);
        for content in -1..segments as i32 {
            self.backup_dir(content, ts);
        }
        self.hooks("setup_plugin_for_backup", &copies, ts, segments);
        let coord = self.backup_dir(-1, ts);
        let mut files = Vec::new();

        // --incremental: the previous backup's config, TOC and plugin
        // config come back first; its restore plan is extended.
        let mut restoreplan = Vec::new();
        if let Some(prev) = previous {
            let prev_dir = self.backup_dir(-1, prev);
            let config = self.restore_file_again(&coord_cfg, &prev_dir.join(format!("gpbackup_{prev}_config.yaml")));
            self.restore_file_again(&coord_cfg, &prev_dir.join(format!("gpbackup_{prev}_toc.yaml")));
            let pc = prev_dir.join(format!("gpbackup_{prev}_plugin_config.yaml"));
            std::fs::remove_file(&pc).unwrap();
            assert_ok(&self.plugin(&["restore_file", &coord_cfg, &s(&pc)]));
            let prev_config: BackupConfig = serde_yaml::from_slice(&config).unwrap();
            let changed: Vec<&str> = tables.iter().map(|t| t.fqn).collect();
            for mut entry in prev_config.restoreplan {
                entry.tablefqns.retain(|f| !changed.contains(&f.as_str()));
                restoreplan.push(entry);
            }
        }
        restoreplan.push(RestorePlanEntry {
            timestamp: ts.to_string(),
            tablefqns: tables.iter().map(|t| t.fqn.to_string()).collect(),
        });

        // Metadata: the real DDL.
        let metadata = coord.join(format!("gpbackup_{ts}_metadata.sql"));
        std::fs::write(&metadata, self.pg.dump_schema(db)).unwrap();
        self.backup_file(&coord_cfg, &metadata);
        files.push(metadata);

        // Data, table by table in OID order.
        let mut entries: Vec<DataEntry> = tables
            .iter()
            .map(|t| {
                let (schema, name) = t.fqn.split_once('.').unwrap();
                let oid = self.pg.sql(db, &format!("SELECT '{}'::regclass::oid", t.fqn.replace('\'', "''")));
                let columns = self.pg.sql(
                    db,
                    &format!(
                        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute \
                         WHERE attrelid = '{}'::regclass AND attnum > 0 AND NOT attisdropped",
                        t.fqn.replace('\'', "''")
                    ),
                );
                DataEntry {
                    schema: schema.to_string(),
                    name: name.trim_matches('"').to_string(),
                    oid: oid.parse().unwrap(),
                    attributestring: format!("({columns})"),
                    rows_copied_to_segments: 0,
                }
            })
            .collect();
        entries.sort_by_key(|e| e.oid);
        let fqns: Vec<String> = entries.iter().map(|e| e.fqn()).collect();
        let segs: Vec<i32> = (0..segments as i32).collect();
        let mut data = BTreeMap::new();
        if single_data_file {
            // gpbackup_helper: one backup_data per segment, the tables'
            // COPY output back to back, their offsets in a segment TOC.
            let results = fan_out(&segs, |&n| {
                let cfg = Gp::cfg(&copies, n);
                let dir = self.backup_dir(n, ts);
                let file = dir.join(format!("gpbackup_{n}_{ts}{}", comp.ext()));
                let mut ranges = Vec::new();
                let mut rows = Vec::new();
                let streams = fqns.iter().map(|fqn| {
                    let q = Gp::segment_query(fqn, n, segments);
                    rows.push(self.pg.sql(db, &format!("SELECT count(*) FROM ({q}) s")).parse::<u64>().unwrap());
                    self.pg.copy_out(db, &q)
                });
                let (digest, offsets) = self.helper_backup(&cfg, &file, comp, streams);
                ranges.extend(offsets);
                let mut toc = String::from("dataentries:\n");
                for (e, (start, end)) in entries.iter().zip(&ranges) {
                    toc.push_str(&format!("  {}:\n    startbyte: {start}\n    endbyte: {end}\n", e.oid));
                }
                let toc_path = dir.join(format!("gpbackup_{n}_{ts}_toc.yaml"));
                std::fs::write(&toc_path, toc).unwrap();
                // gpbackup pushes each segment's TOC over ssh.
                self.backup_file(&cfg, &toc_path);
                (file, digest, rows)
            });
            for (file, digest, rows) in results {
                data.insert(file.file_name().unwrap().to_str().unwrap().to_string(), digest);
                for (e, r) in entries.iter_mut().zip(rows) {
                    e.rows_copied_to_segments += r;
                }
            }
        } else {
            // One COPY ... TO PROGRAM per table per segment, the segments
            // at once (a COPY ... ON SEGMENT).
            for e in entries.iter_mut() {
                let fqn = e.fqn();
                let results = fan_out(&segs, |&n| {
                    let cfg = Gp::cfg(&copies, n);
                    let file = self.backup_dir(n, ts).join(format!("gpbackup_{n}_{ts}_{}{}", e.oid, comp.ext()));
                    let q = Gp::segment_query(&fqn, n, segments);
                    let rows = copy_rows(&self.pg.try_sql(db, &self.copy_to_program(&q, comp, &cfg, &file)));
                    // What COPY fed the pipeline, for the byte-level checks.
                    let digest = sha256_hex(&self.pg.copy_out(db, &q));
                    (file, rows, digest)
                });
                for (file, rows, digest) in results {
                    e.rows_copied_to_segments += rows;
                    data.insert(file.file_name().unwrap().to_str().unwrap().to_string(), digest);
                }
            }
        }

        // The TOC, the plugin config copy, then at teardown config and report.
        let toc = coord.join(format!("gpbackup_{ts}_toc.yaml"));
        std::fs::write(&toc, serde_yaml::to_string(&Toc { dataentries: entries }).unwrap()).unwrap();
        let plugin_config = coord.join(format!("gpbackup_{ts}_plugin_config.yaml"));
        std::fs::copy(&copies["cdw"], &plugin_config).unwrap();
        let config = coord.join(format!("gpbackup_{ts}_config.yaml"));
        let backup_config = BackupConfig {
            backupdir: String::new(),
            backupversion: "1.30.5".into(),
            compressed: comp != Compression::None,
            compressiontype: comp.name().into(),
            databasename: db.into(),
            databaseversion: self.pg.sql(db, "SHOW server_version"),
            incremental: previous.is_some(),
            plugin: self.exe(),
            pluginversion: plugin_version.clone(),
            restoreplan,
            segmentcount: segments,
            singledatafile: single_data_file,
            timestamp: ts.into(),
            status: "Success".into(),
        };
        std::fs::write(&config, serde_yaml::to_string(&backup_config).unwrap()).unwrap();
        let report = coord.join(format!("gpbackup_{ts}_report"));
        std::fs::write(
            &report,
            format!(
                "Greenplum Database Backup Report\n\ntimestamp key:         {ts}\ndatabase name:         {db}\n\
                 plugin executable:     {}\nbackup status:         Success\n",
                self.exe()
            ),
        )
        .unwrap();
        for f in [toc, plugin_config, config, report] {
            self.backup_file(&coord_cfg, &f);
            files.push(f);
        }
        self.hooks("cleanup_plugin_for_backup", &copies, ts, segments);
        Backup { ts: ts.to_string(), compression: comp, single_data_file, plugin_version, segments, data, files }
    }

    /// gpbackup_helper's backup side: `streams` (each table's COPY output)
    /// into one `backup_data` process, through the compressor. Returns the
    /// SHA-256 of the uncompressed stream and each table's byte range.
    fn helper_backup(
        &self,
        cfg: &str,
        file: &Path,
        comp: Compression,
        streams: impl Iterator<Item = Vec<u8>>,
    ) -> (String, Vec<(u64, u64)>) {
        let mut plugin = self.plugin_command(&["backup_data", cfg, &s(file)]);
        plugin.stdout(Stdio::null()).stderr(Stdio::piped());
        let (mut compressor, mut plugin, mut input): (Option<Child>, Child, Box<dyn Write>) = match comp {
            Compression::None => {
                let mut p = plugin.stdin(Stdio::piped()).spawn().unwrap();
                let input = Box::new(p.stdin.take().unwrap());
                (None, p, input)
            }
            _ => {
                let mut z = Command::new("sh")
                    .args(["-c", comp.compress()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .unwrap();
                let p = plugin.stdin(Stdio::from(z.stdout.take().unwrap())).spawn().unwrap();
                let input = Box::new(z.stdin.take().unwrap());
                (Some(z), p, input)
            }
        };
        let mut hasher = Sha256::new();
        let mut offset = 0u64;
        let mut ranges = Vec::new();
        for data in streams {
            input.write_all(&data).unwrap();
            hasher.update(&data);
            ranges.push((offset, offset + data.len() as u64));
            offset += data.len() as u64;
        }
        drop(input);
        if let Some(z) = compressor.as_mut() {
            assert!(z.wait().unwrap().success(), "compressor failed");
        }
        let mut err = String::new();
        plugin.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = plugin.wait().unwrap();
        assert!(status.success() && err.is_empty(), "backup_data {}: {status:?} {err}", file.display());
        (hex::encode(hasher.finalize()), ranges)
    }

    /// Everything of backup `b` is in the bucket with the right size, and
    /// byte for byte what was handed over: each data object is what
    /// `restore_data` returns and what the server stores, and decompresses
    /// to exactly the COPY output; the plugin config copy has no secret.
    pub fn verify_stored(&self, b: &Backup) {
        let listing = self.listing();
        let ts = &b.ts;
        for f in &b.files {
            let key = self.c.key(ts, f.file_name().unwrap().to_str().unwrap());
            let size = *listing.get(&key).unwrap_or_else(|| panic!("{key} not listed"));
            if !key.ends_with("_plugin_config.yaml") {
                assert_eq!(size, std::fs::metadata(f).unwrap().len(), "{key}");
            }
        }
        let check = self.c.dir.path().join("check").join("backups").join(&ts[..8]).join(ts);
        std::fs::create_dir_all(&check).unwrap();
        let pc = check.join(format!("gpbackup_{ts}_plugin_config.yaml"));
        assert_ok(&self.plugin(&["restore_file", &s(&self.user_config), &s(&pc)]));
        let pc_text = std::fs::read_to_string(&pc).unwrap();
        assert!(!pc_text.contains(&self.server.secret_key), "secret in the stored plugin config");
        assert!(pc_text.contains("pgport") && pc_text.contains(&self.c.folder));

        for (name, digest) in &b.data {
            let key = self.c.key(ts, name);
            let size = *listing.get(&key).unwrap_or_else(|| panic!("{key} not listed"));
            let path = check.join(name);
            let out = self.plugin(&["restore_data", &s(&self.user_config), &s(&path)]);
            assert_ok(&out);
            assert_eq!(out.stdout.len() as u64, size, "{key}");
            if let Some(file) = self.server.object_file(&key) {
                assert!(
                    std::fs::read(file).unwrap() == out.stdout,
                    "{key}: restore_data differs from the stored object"
                );
            }
            let plain = match b.compression.decompress() {
                Some(cmd) => filter(cmd, &out.stdout),
                None => out.stdout,
            };
            assert_eq!(&sha256_hex(&plain), digest, "{key}: not the COPY output");
        }
        // Nothing else in the backup's directory, except what the plugin
        // may keep next to an object under that object's name.
        let mut names: Vec<String> =
            b.files.iter().map(|f| f.file_name().unwrap().to_str().unwrap().to_string()).collect();
        names.extend(b.data.keys().cloned());
        if b.single_data_file {
            names.extend((0..b.segments).map(|n| format!("gpbackup_{n}_{ts}_toc.yaml")));
        }
        let prefix = self.c.key(ts, "");
        for key in listing.keys().filter(|k| k.starts_with(&prefix)) {
            let name = &key[prefix.len()..];
            assert!(names.iter().any(|n| name.starts_with(n.as_str())), "unexpected object {key} in backup {ts}");
        }
    }
}
