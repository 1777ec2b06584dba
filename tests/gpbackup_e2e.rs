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

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use support::postgres::{Postgres, set_mode, skip_or_fail};
use support::*;

const DB: &str = "gpdemo";

// ---------------------------------------------------------------------------
// The test database

struct TableDef {
    /// Schema-qualified, quoted as gpbackup quotes it.
    fqn: &'static str,
    columns: &'static str,
    /// INSERT ... SELECT over generate_series(1, {n}) g.
    fill: &'static str,
    rows: u64,
}

/// Varied types, NULLs next to empty strings, quotes, commas, newlines,
/// backslashes, non-ASCII text, binary data and a quoted mixed-case name.
const TABLES: &[TableDef] = &[
    TableDef {
        fqn: "sales.orders",
        columns: "id bigint NOT NULL, customer text, amount numeric(12,2), placed timestamptz, \
                  shipped date, paid boolean, tags text[], note text, payload bytea, attrs jsonb, \
                  ref uuid, ratio double precision",
        fill: r#"SELECT g, 'customer ' || (g % 977), round(((g * 1.37) % 10000)::numeric, 2),
                 timestamptz '2024-01-01 00:00:00+00' + g * interval '37 seconds',
                 date '2020-01-01' + (g % 1500), g % 3 = 0,
                 CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY['t' || (g % 7), 'x,y', 'q"q'] END,
                 CASE g % 6 WHEN 0 THEN NULL WHEN 1 THEN ''
                      WHEN 2 THEN E'line1\nline2, "quoted"' WHEN 3 THEN E'tab\there\\back'
                      WHEN 4 THEN 'ünïcødé ✓ ' || g ELSE repeat('x', g % 50) END,
                 decode(md5(g::text), 'hex'),
                 jsonb_build_object('g', g, 'k', 'v' || (g % 13), 'nested', jsonb_build_array(g % 3, 'a"b')),
                 md5(g::text)::uuid, g / 7.0
               FROM generate_series(1, {n}) g"#,
        rows: 150_000,
    },
    TableDef {
        fqn: "public.events",
        columns: "id integer NOT NULL, kind varchar(20), at timestamp, qty smallint, score real, \
                  span interval, addr inet, body text",
        fill: r#"SELECT g, (ARRAY['click','view','buy','return'])[1 + g % 4],
                 timestamp '2023-06-01' + g * interval '63 seconds', (g % 30000)::smallint,
                 (g % 1000) / 3.0, make_interval(hours => g % 48, mins => g % 60),
                 ('10.' || (g % 256) || '.' || (g / 256 % 256) || '.1')::inet,
                 CASE WHEN g % 10 = 0 THEN NULL ELSE 'event ' || g || repeat(' lorem ipsum', g % 5) END
               FROM generate_series(1, {n}) g"#,
        rows: 100_000,
    },
    TableDef {
        fqn: r#"sales."Line Items""#,
        columns: r#""order id" bigint, id integer NOT NULL, "Qty" integer, sku char(8), price numeric(8,2)"#,
        fill: r#"SELECT g / 3, g, g % 17, lpad((g % 99999)::text, 8, '0'), (g % 5000) / 100.0
               FROM generate_series(1, {n}) g"#,
        rows: 30_000,
    },
    TableDef { fqn: "public.empty_table", columns: "id integer, v text", fill: "", rows: 0 },
];

fn scale() -> u64 {
    std::env::var("E2E_ROWS_SCALE").ok().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or(1)
}

fn table(fqn: &str) -> &'static TableDef {
    TABLES.iter().find(|t| t.fqn == fqn).unwrap()
}

/// Creates the schema and `tables` in `db` and fills them.
fn create_tables(pg: &Postgres, db: &str, tables: &[&TableDef]) {
    pg.sql(db, "CREATE SCHEMA IF NOT EXISTS sales");
    for t in tables {
        pg.sql(db, &format!("CREATE TABLE {} ({})", t.fqn, t.columns));
        if t.rows > 0 {
            let fill = t.fill.replace("{n}", &(t.rows * scale()).to_string());
            pg.sql(db, &format!("INSERT INTO {} {fill}", t.fqn));
        }
    }
    pg.sql(db, "ANALYZE");
}

/// What gprestore starts from: the tables are gone (the metadata restore
/// recreates them).
fn drop_tables(pg: &Postgres, db: &str) {
    pg.sql(db, "DROP SCHEMA IF EXISTS sales CASCADE; DROP TABLE IF EXISTS public.events, public.empty_table");
}

/// Row count and an MD5 of every row, in id order, per table.
fn checksums(pg: &Postgres, db: &str, tables: &[&TableDef]) -> BTreeMap<String, String> {
    tables
        .iter()
        .map(|t| {
            let sum = pg.sql(
                db,
                &format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '-') FROM {} t",
                    t.fqn
                ),
            );
            (t.fqn.to_string(), sum)
        })
        .collect()
}

fn all_tables() -> Vec<&'static TableDef> {
    TABLES.iter().collect()
}

// ---------------------------------------------------------------------------
// Small helpers

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The row count of a `COPY` command tag printed by psql.
#[track_caller]
fn copy_rows(out: &Output) -> u64 {
    assert!(out.status.success(), "COPY failed: {}", text(out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("COPY "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no COPY tag: {}", text(out)))
}

/// Runs `input` through `sh -c cmd` (a decompressor) and returns its output.
#[track_caller]
fn filter(cmd: &str, input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("sh")
        .args(["-c", cmd])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{cmd} failed: {}", text(&out));
    out.stdout
}

fn have_tool(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// YAML scalar as Go's yaml.v2 writes a string: quoted only when it would
/// otherwise read as something else.
fn yaml_str(v: &str) -> String {
    let lower = v.to_ascii_lowercase();
    let needs_quotes = v.is_empty()
        || v.parse::<f64>().is_ok()
        || ["y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"].contains(&lower.as_str())
        || v.starts_with(|c: char| " -?:,[]{}#&*!|>'\"%@`".contains(c))
        || v.ends_with(' ')
        || v.contains(": ")
        || v.contains(" #");
    if needs_quotes { format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")) } else { v.to_string() }
}

/// Runs `f` for every item at once, like gpbackup's concurrent fan-out.
fn fan_out<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = items.iter().map(|i| scope.spawn(|| f(i))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

// ---------------------------------------------------------------------------
// gpbackup's files

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct RestorePlanEntry {
    timestamp: String,
    tablefqns: Vec<String>,
}

/// `gpbackup_<TS>_config.yaml` (the fields gprestore uses here).
#[derive(Serialize, Deserialize, Debug)]
struct BackupConfig {
    backupdir: String,
    backupversion: String,
    compressed: bool,
    compressiontype: String,
    databasename: String,
    databaseversion: String,
    incremental: bool,
    plugin: String,
    pluginversion: String,
    restoreplan: Vec<RestorePlanEntry>,
    segmentcount: usize,
    singledatafile: bool,
    timestamp: String,
}

/// A data entry of the coordinator's `gpbackup_<TS>_toc.yaml`.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct DataEntry {
    schema: String,
    name: String,
    oid: u32,
    attributestring: String,
    #[serde(rename = "rowsCopiedToSegments")]
    rows_copied_to_segments: u64,
}

#[derive(Serialize, Deserialize, Debug)]
struct Toc {
    dataentries: Vec<DataEntry>,
}

impl DataEntry {
    fn fqn(&self) -> String {
        TABLES
            .iter()
            .map(|t| t.fqn)
            .find(|f| {
                let (schema, name) = f.split_once('.').unwrap();
                schema == self.schema && name.trim_matches('"') == self.name
            })
            .unwrap()
            .to_string()
    }
}

/// A segment's `gpbackup_<content>_<TS>_toc.yaml` (single-data-file mode):
/// each table's byte range in the uncompressed data stream.
#[derive(Deserialize, Debug)]
struct SegmentToc {
    dataentries: BTreeMap<u32, SegmentDataEntry>,
}

#[derive(Deserialize, Debug, Clone, Copy)]
struct SegmentDataEntry {
    startbyte: u64,
    endbyte: u64,
}

// ---------------------------------------------------------------------------
// The simulated cluster

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    fn ext(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => ".gz",
            Compression::Zstd => ".zst",
        }
    }

    /// gpbackup's pipe-through program in `COPY ... TO PROGRAM` (default
    /// compression level 1).
    fn compress(self) -> &'static str {
        match self {
            Compression::None => "cat -",
            Compression::Gzip => "gzip -c -1",
            Compression::Zstd => "zstd --compress -1 -c",
        }
    }

    /// gprestore's, after `restore_data` (none for uncompressed backups
    /// since gpbackup commit e6e706a; `cat -` before it).
    fn decompress(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip -d -c"),
            Compression::Zstd => Some("zstd --decompress -c"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }

    fn from_config(c: &BackupConfig) -> Compression {
        match (c.compressed, c.compressiontype.as_str()) {
            (false, _) => Compression::None,
            (true, "gzip") => Compression::Gzip,
            (true, "zstd") => Compression::Zstd,
            (true, other) => panic!("unknown compressiontype {other}"),
        }
    }
}

/// What a backup run leaves for the checks (a restore itself reads
/// everything it needs from the bucket).
struct Backup {
    ts: String,
    compression: Compression,
    single_data_file: bool,
    /// The plugin version gpbackup records in its history database.
    plugin_version: String,
    segments: usize,
    /// Data file name given to `backup_data` -> SHA-256 of its uncompressed
    /// stream (the COPY output).
    data: BTreeMap<String, String>,
    /// Local paths of the coordinator files pushed with `backup_file`.
    files: Vec<PathBuf>,
}

struct RestoreOptions<'o> {
    db: &'o str,
    /// gprestore --include-table: only these tables' data.
    include: Option<Vec<&'o str>>,
    /// gprestore --resize-cluster onto this many segments.
    resize_to: Option<usize>,
}

impl<'o> RestoreOptions<'o> {
    fn full(db: &'o str) -> Self {
        RestoreOptions { db, include: None, resize_to: None }
    }
}

static RESTORE_SEQ: AtomicU32 = AtomicU32::new(0);

struct Gp<'a> {
    server: &'a Server,
    pg: &'a Postgres,
    /// Temporary root (hosts' directories), gpadmin's HOME, the folder.
    c: Cluster,
    /// The file the user passes as --plugin-config.
    user_config: PathBuf,
    /// The user's options, in the user's order.
    options: Vec<(String, String)>,
    segments: usize,
}

impl<'a> Gp<'a> {
    fn new(server: &'a Server, pg: &'a Postgres, segments: usize, extra: &[(&str, &str)]) -> Gp<'a> {
        let c = Cluster::new(server, &[]);
        // COPY ... PROGRAM runs as the server's OS user: it must read the
        // config copies under this directory.
        set_mode(c.dir.path(), 0o755);
        let mut options: Vec<(String, String)> = [
            ("region", server.region.as_str()),
            ("endpoint", server.endpoint.as_str()),
            ("aws_access_key_id", server.access_key.as_str()),
            ("aws_secret_access_key", server.secret_key.as_str()),
            ("bucket", server.bucket.as_str()),
            ("folder", c.folder.as_str()),
            ("encryption", "off"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            options.push((k.to_string(), v.to_string()));
        }
        let mut yaml = format!("executablepath: {}\noptions:\n", s(&pg.plugin));
        for (k, v) in &options {
            yaml.push_str(&format!("  {k}: {}\n", yaml_str(v)));
        }
        let user_config = c.dir.path().join("s3_config.yaml");
        std::fs::write(&user_config, yaml).unwrap();
        Gp { server, pg, c, user_config, options, segments }
    }

    fn option(&self, key: &str) -> Option<&str> {
        self.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// gpbackup's `executablepath`: what COPY ... PROGRAM runs.
    fn exe(&self) -> String {
        s(&self.pg.plugin)
    }

    /// Two primary segments per segment host; the coordinator on `cdw`.
    fn host(content: i32) -> String {
        if content < 0 { "cdw".to_string() } else { format!("sdw{}", content / 2 + 1) }
    }

    fn host_tmp(&self, host: &str) -> PathBuf {
        let dir = self.c.dir.path().join(host).join("tmp");
        std::fs::create_dir_all(&dir).unwrap();
        set_mode(&dir, 0o755);
        dir
    }

    /// `<datadir>/backups/<YYYYMMDD>/<TS>`, created (gpbackup creates it on
    /// every host before calling the plugin).
    fn backup_dir(&self, content: i32, ts: &str) -> PathBuf {
        let dir = self
            .c
            .dir
            .path()
            .join(Gp::host(content))
            .join(format!("gpseg{content}"))
            .join("backups")
            .join(&ts[..8])
            .join(ts);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn pgport(&self, content: i32) -> u16 {
        if content < 0 { self.pg.port } else { 6000 + content as u16 }
    }

    /// The config copy gpbackup (ts = backup timestamp) or gprestore (ts =
    /// its start time) writes per content and rsyncs to that content's
    /// host as `/tmp/<ts>_<name>`: the user's options plus `pgport` and
    /// `backup_plugin_version`, keys sorted. The copies of one host race;
    /// the last one wins. Returns each host's copy.
    fn config_copies(&self, ts: &str, plugin_version: &str, segments: usize) -> BTreeMap<String, PathBuf> {
        let name = self.user_config.file_name().unwrap().to_str().unwrap();
        let contents: Vec<i32> = (-1..segments as i32).collect();
        let written = fan_out(&contents, |&content| {
            let mut options = self.options.clone();
            options.push(("pgport".into(), self.pgport(content).to_string()));
            options.push(("backup_plugin_version".into(), plugin_version.to_string()));
            options.sort();
            let mut yaml = format!("executablepath: {}\noptions:\n", self.exe());
            for (k, v) in &options {
                yaml.push_str(&format!("  {k}: {}\n", yaml_str(v)));
            }
            let tmp = self.host_tmp(&Gp::host(content));
            let staged = tmp.join(format!("{ts}_{name}_{}_{content}", std::process::id()));
            std::fs::write(&staged, yaml).unwrap();
            set_mode(&staged, 0o644);
            let dest = tmp.join(format!("{ts}_{name}"));
            std::fs::rename(&staged, &dest).unwrap();
            (Gp::host(content), dest)
        });
        let copies: BTreeMap<String, PathBuf> = written.into_iter().collect();
        for (host, path) in &copies {
            let text = std::fs::read_to_string(path).unwrap();
            let port = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("pgport: "))
                .unwrap()
                .trim_matches('"')
                .parse::<u16>()
                .unwrap();
            assert!(
                contents.iter().any(|&c| Gp::host(c) == *host && self.pgport(c) == port),
                "{host}: pgport {port} is not one of its contents'"
            );
        }
        copies
    }

    fn cfg(copies: &BTreeMap<String, PathBuf>, content: i32) -> String {
        s(&copies[&Gp::host(content)])
    }

    /// Runs the plugin as gpbackup does over ssh or bash (gpadmin's HOME).
    fn plugin(&self, args: &[&str]) -> Output {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        run_plugin(&args, b"", &self.c.home)
    }

    /// A plugin command with gpadmin's environment, for pipelines.
    fn plugin_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(PLUGIN);
        cmd.args(args).env("HOME", &self.c.home).env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY");
        cmd
    }

    /// gpbackup's and gprestore's start: `plugin_api_version` once per
    /// primary segment, `--version` once per content with the coordinator;
    /// every answer must be the same. Returns the plugin version (the 3rd
    /// token), which gpbackup records and gprestore passes back as
    /// `backup_plugin_version`.
    fn check_versions(&self, segments: usize) -> String {
        let segs: Vec<i32> = (0..segments as i32).collect();
        let apis = fan_out(&segs, |_| self.plugin(&["plugin_api_version"]));
        for out in &apis {
            assert_ok(out);
            assert_eq!(out.stdout, apis[0].stdout, "inconsistent API versions");
        }
        let api = String::from_utf8(apis[0].stdout.clone()).unwrap();
        let parts: Vec<u32> = api.trim().split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts.len() == 3 && (parts[0], parts[1]) >= (0, 3), "gpbackup needs a semver >= 0.3.0: {api:?}");
        let contents: Vec<i32> = (-1..segments as i32).collect();
        let versions = fan_out(&contents, |_| self.plugin(&["--version"]));
        for out in &versions {
            assert_ok(out);
            assert_eq!(out.stdout, versions[0].stdout, "inconsistent --version");
        }
        let version = String::from_utf8(versions[0].stdout.clone()).unwrap();
        let tokens: Vec<&str> = version.trim().split(' ').collect();
        assert_eq!(tokens.len(), 3, "{version:?}");
        tokens[2].to_string()
    }

    /// A setup or cleanup hook as gpbackup runs it: scope `master` on the
    /// coordinator, then `segment_host` once per primary segment (not per
    /// host), then `segment`; each wave concurrently; content ids quoted.
    fn hooks(&self, hook: &str, copies: &BTreeMap<String, PathBuf>, ts: &str, segments: usize) {
        let coord = s(&self.backup_dir(-1, ts));
        assert_ok(&self.plugin(&[hook, &Gp::cfg(copies, -1), &coord, "master", "\"-1\""]));
        let segs: Vec<i32> = (0..segments as i32).collect();
        for out in fan_out(&segs, |&n| {
            let dir = s(&self.backup_dir(n, ts));
            self.plugin(&[hook, &Gp::cfg(copies, n), &dir, "segment_host"])
        }) {
            assert_ok(&out);
        }
        for out in fan_out(&segs, |&n| {
            let dir = s(&self.backup_dir(n, ts));
            let id = format!("\"{n}\"");
            self.plugin(&[hook, &Gp::cfg(copies, n), &dir, "segment", &id])
        }) {
            assert_ok(&out);
        }
    }

    /// `backup_file CFG PATH` from the coordinator; the local file stays.
    fn backup_file(&self, cfg: &str, path: &Path) {
        assert_ok(&self.plugin(&["backup_file", cfg, &s(path)]));
        assert!(path.exists(), "backup_file removed {}", path.display());
    }

    /// `restore_file CFG PATH` of a file whose local copy exists: the copy
    /// is removed first and must come back byte for byte. Returns it.
    fn restore_file_again(&self, cfg: &str, path: &Path) -> Vec<u8> {
        let original = std::fs::read(path).unwrap();
        std::fs::remove_file(path).unwrap();
        assert_ok(&self.plugin(&["restore_file", cfg, &s(path)]));
        let restored = std::fs::read(path).unwrap();
        assert!(restored == original, "{} differs after restore_file", path.display());
        restored
    }

    /// The rows of `fqn` that live on segment `n` of `segments`.
    fn segment_query(fqn: &str, n: i32, segments: usize) -> String {
        format!("SELECT * FROM {fqn} WHERE mod(id, {segments}) = {n}")
    }

    /// gpbackup's multi-file COPY: `COPY t TO PROGRAM '<compress> |
    /// <exe> backup_data <cfg> <file>' WITH CSV DELIMITER ','`.
    fn copy_to_program(&self, query: &str, comp: Compression, cfg: &str, file: &Path) -> String {
        let (cfg, file) = (cfg.to_string(), s(file));
        assert!(!cfg.contains('\'') && !file.contains('\''));
        format!(
            "COPY ({query}) TO PROGRAM '{} | {} backup_data {cfg} {file}' WITH CSV DELIMITER ','",
            comp.compress(),
            self.exe()
        )
    }

    /// gprestore's multi-file COPY: `COPY t FROM PROGRAM '<exe>
    /// restore_data <cfg> <file> | gzip -d -c' WITH CSV DELIMITER ','`.
    fn copy_from_program(&self, fqn: &str, comp: Compression, cfg: &str, file: &Path) -> String {
        let (cfg, file) = (cfg.to_string(), s(file));
        assert!(!cfg.contains('\'') && !file.contains('\''));
        let mut program = format!("{} restore_data {cfg} {file}", self.exe());
        if let Some(d) = comp.decompress() {
            program = format!("{program} | {d}");
        }
        format!("COPY {fqn} FROM PROGRAM '{program}' WITH CSV DELIMITER ','")
    }

    /// One gpbackup run of database `db`: data of `tables` (all of them
    /// for a full backup, the changed ones for an incremental backup on
    /// top of `previous`).
    fn backup(
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
    fn restore(&self, b: &Backup, opts: RestoreOptions) -> BTreeMap<String, u64> {
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

    /// `list_directory` of the folder: key -> size.
    fn listing(&self) -> BTreeMap<String, u64> {
        let out = self.plugin(&["list_directory", &s(&self.user_config)]);
        assert_ok(&out);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (k, n) = l.rsplit_once('\t').unwrap();
                (k.to_string(), n.parse().unwrap())
            })
            .collect()
    }

    /// Everything of backup `b` is in the bucket with the right size, and
    /// byte for byte what was handed over: each data object is what
    /// `restore_data` returns and what the server stores, and decompresses
    /// to exactly the COPY output; the plugin config copy has no secret.
    fn verify_stored(&self, b: &Backup) {
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

// ---------------------------------------------------------------------------
// The tests

fn zstd_or_skip(test: &str) -> bool {
    if have_tool("zstd") {
        return true;
    }
    skip_or_fail(test, "zstd is not installed (apt-get install zstd): zstd variant");
    false
}

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

/// Holds PostgreSQL advisory lock 4242; a trigger on the target table waits
/// for it on the first row, so a `COPY ... FROM PROGRAM` stalls after its
/// pipeline has produced some rows, with the plugin blocked writing.
struct Stall {
    session: support::postgres::Session,
}

impl Stall {
    fn install(pg: &Postgres, db: &str, fqn: &str) -> Stall {
        pg.sql(
            db,
            &format!(
                "CREATE OR REPLACE FUNCTION public.stall() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN NEW; END $$; \
                 CREATE TRIGGER stall BEFORE INSERT ON {fqn} FOR EACH ROW EXECUTE FUNCTION public.stall()"
            ),
        );
        let mut session = pg.session(db);
        assert_eq!(session.query_line("SELECT 'locked' FROM pg_advisory_lock(4242);"), "locked");
        Stall { session }
    }

    /// Waits until some session waits for the lock.
    fn wait_for_waiter(pg: &Postgres, db: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while pg.sql(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted") == "0" {
            assert!(Instant::now() < deadline, "the COPY never reached its first row");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn release(mut self) {
        assert_eq!(self.session.query_line("SELECT 'unlocked' FROM pg_advisory_unlock(4242);"), "unlocked");
    }
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
