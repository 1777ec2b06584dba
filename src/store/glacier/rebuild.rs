//! Writing the catalog again from a vault inventory, so that every archive
//! of this plugin is named by exactly one entry: an archive no entry names
//! gets its entry back (the bucket lost it), an entry that is damaged is
//! written again, an archive left by an interrupted upload (its intent in
//! the bucket) is deleted, and an archive a newer one of its key replaced
//! is kept under a retired entry for `purge`. Entries that name their
//! archive are never touched.

use std::collections::HashSet;

use futures::TryStreamExt;

use super::catalog::{self, Entry};
use super::commit::archive_tag;
use super::{Vault, fetch_entry};
use crate::error::{Kind, Result};
use crate::layout::{self, EntryTag};
use crate::record::{META_KEY, Record};
use crate::store::{InventoryArchive, Rebuilt, paging};

impl Vault {
    /// Settles every archive of this plugin in `archives` against the
    /// catalog under `prefix`.
    pub(super) async fn rebuild(&self, archives: &[InventoryArchive], prefix: &str) -> Result<Rebuilt> {
        let intents = self.intents(prefix).await?;
        let mut done = Rebuilt { archives: archives.len() as u64, ..Rebuilt::default() };
        for archive in archives {
            let Some(described) = catalog::parse_description(&archive.archive_description) else { continue };
            if !described.key.starts_with(prefix) {
                continue;
            }
            done.ours += 1;
            let key = described.key.clone();
            let (current, damaged) = match fetch_entry(&*self.bucket, &key).await {
                Ok(entry) => (entry, false),
                Err(e) if e.is(Kind::Integrity) => (None, true),
                Err(e) => return Err(e),
            };
            if current.as_ref().is_some_and(|c| c.archive_id.as_deref() == Some(archive.archive_id.as_str())) {
                done.named += 1;
                continue;
            }
            let retired_key = layout::tagged_catalog_key(&key, EntryTag::Retired(&archive_tag(&archive.archive_id)));
            if self.bucket.get_range(&retired_key, 0..1).await.is_ok() {
                done.named += 1;
                continue;
            }
            let entry = self.entry_of(archive, &described).await;
            if let Some(nonce) = &described.nonce
                && intents.contains(&(key.clone(), nonce.clone()))
            {
                // The archive of an upload interrupted before it was named:
                // its backup_data failed, so it goes, with its intent.
                self.delete_archive(&key, &archive.archive_id).await?;
                let intent_key = layout::tagged_catalog_key(&key, EntryTag::Intent(nonce));
                self.delete_bucket_files(&[intent_key]).await?;
                done.discarded += 1;
                continue;
            }
            if current.is_none() {
                self.write_entry(&entry).await?;
                log::info!("rebuild-catalog: wrote the entry of {key}");
                if damaged {
                    done.repaired += 1;
                } else {
                    done.written += 1;
                }
                continue;
            }
            // Named by nobody while the key names another archive: kept,
            // named, for `purge` to delete.
            let mut retired = entry;
            retired.delete_requested_at = Some(catalog::now());
            self.put_json(&retired_key, &retired).await?;
            done.retired += 1;
        }
        Ok(done)
    }

    /// (key, nonce) of every intent under `prefix`.
    async fn intents(&self, prefix: &str) -> Result<HashSet<(String, String)>> {
        let mut found = HashSet::new();
        let mut pages = std::pin::pin!(paging::objects(&*self.bucket, prefix));
        while let Some(page) = pages.try_next().await? {
            for object in page {
                if let Some((owner, EntryTag::Intent(nonce))) = layout::tagged_catalog_owner(&object.key) {
                    found.insert((owner.to_string(), nonce.to_string()));
                }
            }
        }
        Ok(found)
    }

    /// The entry an inventoried archive would have had.
    async fn entry_of(&self, archive: &InventoryArchive, described: &catalog::Described) -> Entry {
        let key = &described.key;
        let mut entry = Entry::new(key, &self.settings, &self.region);
        entry.archive_id = Some(archive.archive_id.clone());
        entry.size = archive.size;
        entry.tree_hash = archive.sha256_tree_hash.clone();
        entry.uploaded_at = archive.creation_date.clone();
        entry.description = archive.archive_description.clone();
        entry.part_size = self.settings.part_size;
        // A multipart archive's record points at its manifest; without the
        // manifest the tree hash alone vouches for the bytes.
        entry.metadata = described.metadata.clone();
        let record = entry.metadata.iter().find(|(k, _)| k == META_KEY).map(|(_, v)| v.as_str());
        if let Some(manifest) = Record::parse(record, key).ok().and_then(|r| r.manifest_key(key))
            && matches!(self.bucket.get_range(&manifest, 0..1).await, Err(e) if e.is(Kind::NotFound))
        {
            entry.metadata.clear();
        }
        entry
    }
}
