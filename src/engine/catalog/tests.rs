//! The catalog against the in-memory store: backups laid out as gpbackup
//! and the plugin lay them out, then listed, inspected, judged and
//! verified (the expiry plan's own tests are in `plan_tests.rs`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDateTime;

use super::inspect::{Missing, Problem, StorageState, What};
use super::scan::CoordinatorFile;
use super::verify::{Flaw, Proof, checked_objects, verify};
use super::*;
use crate::config::Transfer;
use crate::engine::integrity::{META_KEY, Record, crc64};
use crate::layout;
use crate::store::ObjectClass;
use crate::store::memory::MemoryStore;

pub const FOLDER: &str = "prod/gp";

/// A backup to lay out.
#[derive(Clone)]
pub struct Spec {
    pub ts: &'static str,
    pub segments: u32,
    pub oids: Vec<u32>,
    pub single: bool,
    /// Earlier backups of the restore plan (an incremental backup).
    pub base: Vec<&'static str>,
    pub status: &'static str,
    pub metadata_only: bool,
    /// Leave these file names out.
    pub without: Vec<String>,
    /// Data files with integrity records (the plugin) or without (Go).
    pub records: bool,
}

impl Spec {
    pub fn full(ts: &'static str) -> Spec {
        Spec {
            ts,
            segments: 2,
            oids: vec![16384, 16385],
            single: false,
            base: Vec::new(),
            status: "Success",
            metadata_only: false,
            without: Vec::new(),
            records: true,
        }
    }

    pub fn incremental(ts: &'static str, base: &[&'static str]) -> Spec {
        Spec { base: base.to_vec(), oids: vec![16385], ..Spec::full(ts) }
    }

    fn config(&self) -> String {
        let mut plan = String::new();
        for b in &self.base {
            plan.push_str(&format!("- timestamp: \"{b}\"\n  tablefqns:\n  - public.t16384\n"));
        }
        if !self.metadata_only {
            plan.push_str(&format!("- timestamp: \"{}\"\n  tablefqns:\n", self.ts));
            for oid in &self.oids {
                plan.push_str(&format!("  - public.t{oid}\n"));
            }
        }
        format!(
            "backupdir: \"\"\nbackupversion: 1.30.5\ncompressed: true\ncompressiontype: gzip\ndatabasename: demo\n\
             databaseversion: 6.26.4\nsegmentcount: {}\ndataonly: false\ndatedeleted: \"\"\n\
             excluderelations: []\nexcludeschemafiltered: false\nexcludeschemas: []\nexcludetablefiltered: false\n\
             includerelations: []\nincludeschemafiltered: true\nincludeschemas:\n- public\n\
             includetablefiltered: false\nincremental: {}\nleafpartitiondata: true\nmetadataonly: {}\n\
             plugin: gpbackup_s3_plugin\npluginversion: 0.1.0\nrestoreplan:\n{plan}singledatafile: {}\n\
             timestamp: \"{}\"\nendtime: \"{}\"\nwithoutglobals: false\nwithstatistics: false\nstatus: {}\n",
            self.segments,
            !self.base.is_empty(),
            self.metadata_only,
            self.single,
            self.ts,
            self.ts,
            self.status
        )
    }

    /// Every file of the backup: (name, bytes, payload?).
    fn files(&self) -> Vec<(String, Vec<u8>, bool)> {
        let ts = self.ts;
        let mut toc = String::from("dataentries:\n");
        for oid in &self.oids {
            toc.push_str(&format!("- schema: public\n  name: t{oid}\n  oid: {oid}\n"));
        }
        let report = format!(
            "Greenplum Database Backup Report\n\nend time:   Sun Mar 03 2024 02:00:09\nbackup status:   {}\n",
            self.status
        );
        let mut files = vec![
            (format!("gpbackup_{ts}_config.yaml"), self.config().into_bytes(), false),
            (format!("gpbackup_{ts}_report"), report.into_bytes(), false),
            (format!("gpbackup_{ts}_metadata.sql"), b"CREATE TABLE t();".to_vec(), false),
            (format!("gpbackup_{ts}_toc.yaml"), toc.into_bytes(), false),
            (format!("gpbackup_{ts}_plugin_config.yaml"), b"options: {}".to_vec(), false),
        ];
        if !self.metadata_only {
            for c in 0..self.segments {
                if self.single {
                    files.push((format!("gpbackup_{c}_{ts}.gz"), vec![c as u8; 100], true));
                    files.push((format!("gpbackup_{c}_{ts}_toc.yaml"), b"dataentries: {}".to_vec(), false));
                } else {
                    for oid in &self.oids {
                        files.push((format!("gpbackup_{c}_{ts}_{oid}.gz"), vec![(oid % 251) as u8; 1000], true));
                    }
                }
            }
        }
        files.retain(|(name, ..)| !self.without.contains(name));
        files
    }

    pub async fn put(&self, store: &MemoryStore) {
        let prefix = layout::backup_prefix(FOLDER, self.ts).unwrap();
        for (name, data, payload) in self.files() {
            let meta = match self.records {
                true => vec![(META_KEY.to_string(), Record::single(data.len() as u64, crc64(&data)))],
                false => Vec::new(),
            };
            let class = if payload { ObjectClass::Payload } else { ObjectClass::Metadata };
            store.put(&format!("{prefix}{name}"), Bytes::from(data), &meta, class).await.unwrap();
        }
    }
}

async fn laid_out(specs: &[Spec]) -> (MemoryStore, Arc<dyn Store>) {
    let memory = MemoryStore::new().page_size(7);
    for spec in specs {
        spec.put(&memory).await;
    }
    let store: Arc<dyn Store> = Arc::new(memory.clone());
    (memory, store)
}

pub(crate) fn date(ts: &str) -> NaiveDateTime {
    files::timestamp_date(ts).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn complete_incomplete_failed_and_unfinished() {
    let ts = ["20240301010101", "20240302010101", "20240303010101", "20240304010101", "20240305010101"];
    let mut no_report = Spec::full(ts[1]);
    no_report.without.push(format!("gpbackup_{}_report", ts[1]));
    let mut no_segment_file = Spec::full(ts[2]);
    no_segment_file.without.push(format!("gpbackup_1_{}_16385.gz", ts[2]));
    let failed = Spec { status: "Failure", ..Spec::full(ts[3]) };
    let mut unfinished = Spec::full(ts[4]);
    unfinished.without.extend([format!("gpbackup_{}_config.yaml", ts[4]), format!("gpbackup_{}_report", ts[4])]);
    let (memory, store) = laid_out(&[Spec::full(ts[0]), no_report, no_segment_file, failed, unfinished]).await;
    let gets_before = memory.count(crate::store::memory::Op::Get);
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let statuses: Vec<Status> = catalog.backups.iter().map(Backup::status).collect();
    use Status::*;
    assert_eq!(statuses, vec![Complete, Incomplete, Incomplete, Failed, Unfinished]);
    // Config and TOC of each finished backup, nothing else.
    assert_eq!(memory.count(crate::store::memory::Op::Get) - gets_before, 8);
    let b = &catalog.backups;
    assert_eq!(b[0].found.objects, 9);
    assert_eq!(b[0].compression().as_deref(), Some("gzip"));
    assert_eq!(
        b[1].missing,
        vec![Missing { name: format!("gpbackup_{}_report", ts[1]), what: What::Coordinator(CoordinatorFile::Report) }]
    );
    assert_eq!(
        b[2].missing,
        vec![Missing {
            name: format!("gpbackup_1_{}_16385.gz", ts[2]),
            what: What::Table { content: 1, table: "public.t16385".into() }
        }]
    );
    assert_eq!(b[3].problems, vec![Problem::Status("Failure".into())]);
    assert!(b[4].config.is_none() && b[4].missing.is_empty());
    assert_eq!(b[0].storage.state, StorageState::Hot);
}

#[tokio::test(flavor = "current_thread")]
async fn single_data_file_metadata_only_and_unreadable_configs() {
    let mut single = Spec { single: true, ..Spec::full("20240301010101") };
    single.without.push("gpbackup_1_20240301010101_toc.yaml".into());
    let meta = Spec { metadata_only: true, ..Spec::full("20240302010101") };
    let (memory, store) = laid_out(&[single, meta]).await;
    let key = layout::backup_prefix(FOLDER, "20240303010101").unwrap() + "gpbackup_20240303010101_config.yaml";
    memory.put(&key, Bytes::from_static(b"[[[ c2VjcmV0"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let b = &catalog.backups;
    assert_eq!(b[0].missing.iter().map(|m| m.what.clone()).collect::<Vec<_>>(), vec![What::SegmentToc { content: 1 }]);
    assert_eq!(b[1].status(), Status::Complete, "{:?}", b[1].missing);
    assert_eq!(b[2].status(), Status::Unreadable);
    match &b[2].problems[..] {
        [Problem::Unreadable { file: CoordinatorFile::Config, why }] => assert!(!why.contains("c2VjcmV0"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn chains_name_their_missing_links() {
    let (full, i1, i2) = ("20240301010101", "20240302010101", "20240303010101");
    let (memory, store) =
        laid_out(&[Spec::full(full), Spec::incremental(i1, &[full]), Spec::incremental(i2, &[full, i1])]).await;
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    assert!(catalog.broken_chains().is_empty());
    assert_eq!(catalog.get(i2).unwrap().depends_on(), vec![full, i1]);
    crate::engine::delete::delete_prefix(
        &memory,
        &layout::backup_prefix(FOLDER, full).unwrap(),
        crate::config::OnRetentionLocked::Fail,
        false,
    )
    .await
    .unwrap();
    let catalog = super::catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let broken = catalog.broken_chains();
    assert_eq!(broken[i2], vec![(full.to_string(), None)]);
    let (set, absent) = backup_set(&store, FOLDER, i2, Reads::default(), None).await.unwrap();
    assert_eq!(set.iter().map(|b| b.timestamp()).collect::<Vec<_>>(), vec![i2, i1]);
    assert_eq!(absent, vec![full]);
}

const SMALL: Transfer = Transfer { part_size: 5 << 20, concurrency: 3, verify: crate::config::Verify::Strict };

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_shallow_and_deep() {
    let ts = "20240301010101";
    let (memory, store) = laid_out(&[Spec::full(ts)]).await;
    // A multipart object with a manifest, as backup_data writes big ones.
    let prefix = layout::backup_prefix(FOLDER, ts).unwrap();
    let big = format!("{prefix}gpbackup_0_{ts}_99999.gz");
    let data: Vec<u8> = (0..(11 << 20)).map(|i| (i % 253) as u8).collect();
    let source = crate::engine::Source { reader: Box::new(std::io::Cursor::new(data)), name: "t".into() };
    crate::engine::upload(store.clone(), &big, source, SMALL, ObjectClass::Payload, &crate::engine::Identity)
        .await
        .unwrap();
    let listing = scan::scan_backup(&*store, FOLDER, ts).await.unwrap().listing;
    let objects = checked_objects(&listing);
    assert_eq!(objects.len(), listing.len() - 1, "the manifest is checked with its object");
    let gets = memory.count(crate::store::memory::Op::Get);
    let shallow = verify(&store, objects.clone(), None, &mut |_| {}).await;
    assert!(shallow.iter().all(|c| c.outcome.is_ok()), "{shallow:?}");
    assert_eq!(memory.count(crate::store::memory::Op::Get) - gets, 1, "only the manifest is read");
    let multipart = shallow.iter().find(|c| c.key == big).unwrap();
    assert_eq!(multipart.outcome, Ok(Proof::Record { parts: 3, read: false, tree_hash: false }));

    // Same size, one byte changed: only a deep check sees it.
    let victim = format!("{prefix}gpbackup_1_{ts}_16384.gz");
    let mut bytes = memory.object(&victim).unwrap().to_vec();
    bytes[10] ^= 1;
    memory.overwrite(&victim, bytes.clone().into());
    let shallow = verify(&store, objects.clone(), None, &mut |_| {}).await;
    assert!(shallow.iter().all(|c| c.outcome.is_ok()));
    let mut progress = Vec::new();
    let deep = verify(&store, objects.clone(), Some(SMALL), &mut |p| progress.push(p.done)).await;
    let bad: Vec<&str> = deep.iter().filter(|c| c.outcome.is_err()).map(|c| c.key.as_str()).collect();
    assert_eq!(bad, vec![victim.as_str()]);
    assert!(matches!(&deep.iter().find(|c| c.key == victim).unwrap().outcome, Err(Flaw::Damaged(_))));
    assert_eq!(progress.len(), objects.len());
    // A truncated object: its record's size says so without reading it.
    memory.overwrite(&victim, bytes[..500].to_vec().into());
    let objects = checked_objects(&scan::scan_backup(&*store, FOLDER, ts).await.unwrap().listing);
    let shallow = verify(&store, objects, None, &mut |_| {}).await;
    match &shallow.iter().find(|c| c.key == victim).unwrap().outcome {
        Err(Flaw::Damaged(why)) => assert!(why.contains("500 bytes stored") && why.contains("1000"), "{why}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_objects_need_thaw_and_missing_manifests_are_damage() {
    let ts = "20240301010101";
    let memory = MemoryStore::new().cold_payloads();
    Spec { records: false, ..Spec::full(ts) }.put(&memory).await;
    let store: Arc<dyn Store> = Arc::new(memory.clone());
    let prefix = layout::backup_prefix(FOLDER, ts).unwrap();
    let key = format!("{prefix}gpbackup_0_{ts}_77777.gz");
    let meta = vec![(META_KEY.to_string(), Record::manifest("0123456789abcdef"))];
    memory.put(&key, Bytes::from_static(b"data"), &meta, ObjectClass::Metadata).await.unwrap();
    let objects = checked_objects(&scan::scan_backup(&*store, FOLDER, ts).await.unwrap().listing);
    let shallow = verify(&store, objects.clone(), None, &mut |_| {}).await;
    let thaw = shallow.iter().filter(|c| c.needs_thaw.is_some()).count();
    assert_eq!(thaw, 4, "the payloads are archived");
    assert!(shallow.iter().filter(|c| c.needs_thaw.is_some()).all(|c| c.outcome == Ok(Proof::Present { read: false })));
    match &shallow.iter().find(|c| c.key == key).unwrap().outcome {
        Err(Flaw::Damaged(why)) => assert!(why.contains("manifest") && why.contains("missing"), "{why}"),
        other => panic!("{other:?}"),
    }
    let deep = verify(&store, objects, Some(SMALL), &mut |_| {}).await;
    assert_eq!(deep.iter().filter(|c| matches!(c.outcome, Err(Flaw::NeedsThaw(_)))).count(), 4);
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let storage = &catalog.backups[0].storage;
    assert_eq!((storage.state.clone(), storage.cold, storage.sampled), (StorageState::Archived, 4, 4));
}

#[tokio::test(flavor = "current_thread")]
async fn restorable_means_what_gprestore_reads() {
    let (full, no_copy, bad_toc, incr, orphan, meta) =
        ("20240301010101", "20240302010101", "20240303010101", "20240304010101", "20240305010101", "20240306010101");
    let mut without_copy = Spec::full(no_copy);
    without_copy.without.push(format!("gpbackup_{no_copy}_plugin_config.yaml"));
    // An incremental with no changed table reads its data from the full one.
    let unchanged = Spec { oids: Vec::new(), ..Spec::incremental(incr, &[full]) };
    let (memory, store) = laid_out(&[
        Spec::full(full),
        without_copy,
        Spec::full(bad_toc),
        unchanged,
        Spec::incremental(orphan, &["20240201010101"]),
        Spec { metadata_only: true, ..Spec::full(meta) },
    ])
    .await;
    let key = layout::backup_prefix(FOLDER, bad_toc).unwrap() + &format!("gpbackup_{bad_toc}_toc.yaml");
    memory.overwrite(&key, Bytes::from(format!("dataentries: {}", "[".repeat(100))));
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let v = catalog.judge();
    let b = |ts: &str| catalog.get(ts).unwrap();
    assert!(v[full].restorable && v[full].holds_data && b(full).notes.is_empty());
    assert_eq!((v[no_copy].status, v[no_copy].restorable), (Status::Complete, true));
    assert_eq!(b(no_copy).notes, vec![Note::NoPluginConfig]);
    assert_eq!((v[bad_toc].status, v[bad_toc].restorable), (Status::Unreadable, false));
    assert!(v[incr].restorable && v[incr].holds_data, "{:?}", v[incr]);
    assert_eq!((v[orphan].status, v[orphan].restorable), (Status::Complete, false));
    assert_eq!(v[orphan].gaps, vec![("20240201010101".to_string(), None)]);
    assert!(v[meta].restorable && !v[meta].holds_data);
}

#[tokio::test(flavor = "current_thread")]
async fn the_last_write_counts_open_uploads() {
    let (busy, idle) = ("20240301010101", "20240302010101");
    let mut specs = Vec::new();
    for ts in [busy, idle] {
        let mut s = Spec::full(ts);
        s.without.extend([format!("gpbackup_{ts}_config.yaml"), format!("gpbackup_{ts}_report")]);
        specs.push(s);
    }
    let (memory, store) = laid_out(&specs).await;
    let old = chrono::Utc::now() - chrono::Duration::days(3);
    for key in memory.keys() {
        memory.set_modified(&key, old);
    }
    let prefix = layout::backup_prefix(FOLDER, busy).unwrap();
    let key = format!("{prefix}gpbackup_0_{busy}_16386.gz");
    let _open = store.start_multipart(&key, &Vec::new(), ObjectClass::Payload).await.unwrap();
    let catalog = catalog(&store, FOLDER, Reads::default(), None).await.unwrap();
    let root = format!("{}backups/", layout::folder_prefix(FOLDER));
    let (activity, unlisted) = last_activity(&store, &catalog, &root).await.unwrap();
    assert!(unlisted.is_none());
    assert_eq!(activity[idle], old);
    assert!(activity[busy] > chrono::Utc::now() - chrono::Duration::minutes(1), "{activity:?}");
}
