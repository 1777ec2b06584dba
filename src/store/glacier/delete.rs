//! Deletes through the catalog: an archive, then at once its entry;
//! tagged entries resolved first (an interrupted upload's intent
//! recovered, a retired entry's archive deleted); bucket files last. A
//! retention lock's refusal stops the run and says what was left.

use super::Vault;
use super::catalog::Entry;
use crate::error::{Kind, Result};
use crate::layout::{self, EntryTag};
use crate::store::DeleteOutcome;

impl Vault {
    /// Deletes archives (each followed at once by its catalog entry),
    /// tagged entries (an intent is resolved first, a retired entry's
    /// archive deleted) and bucket files. Stops at the first archive a
    /// retention lock refuses; keeps, and reports, what it cannot read.
    pub(super) async fn delete_keys(&self, keys: &[String]) -> Result<DeleteOutcome> {
        let mut plain = Vec::new();
        let mut outcome = DeleteOutcome::default();
        for (i, key) in keys.iter().enumerate() {
            if let Some((_, tag)) = layout::tagged_catalog_owner(key) {
                let entry = match self.read_entry_at(key).await {
                    Ok(Some(entry)) => entry,
                    Ok(None) => continue,
                    Err(e) if e.is(Kind::Integrity) => {
                        outcome.kept.push((key.clone(), e.message().to_string()));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match tag {
                    EntryTag::Intent(_) => {
                        if !self.recover(key, &entry).await? {
                            outcome.kept.push((
                                key.clone(),
                                "an interrupted upload whose archive only an inventory can find (rebuild-catalog)"
                                    .to_string(),
                            ));
                        }
                    }
                    EntryTag::Retired(_) => match self.delete_archive_of(&entry).await {
                        Ok(()) => plain.push(key.clone()),
                        Err(e) if e.is(Kind::RetentionLocked) => {
                            outcome.refused.push((key.clone(), e));
                            outcome.untouched = keys[i + 1..].to_vec();
                            break;
                        }
                        Err(e) => return Err(e),
                    },
                }
                continue;
            }
            let key = layout::catalog_owner(key).unwrap_or(key);
            let entry = match self.entry(key).await {
                Ok(Some(entry)) => entry,
                Ok(None) => {
                    plain.push(key.to_string());
                    continue;
                }
                Err(e) if e.is(Kind::Integrity) => {
                    outcome.kept.push((key.to_string(), e.message().to_string()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.mine(&entry)?;
            if entry.archive_id.is_some() {
                match self.delete_archive_of(&entry).await {
                    Ok(()) => {}
                    Err(e) if e.is(Kind::RetentionLocked) => {
                        outcome.refused.push((key.to_string(), e));
                        outcome.untouched = keys[i + 1..].to_vec();
                        break;
                    }
                    Err(e) => return Err(e),
                }
                // The entry goes the moment its archive does.
                self.forget(key);
                let gone = self.delete_bucket_files(&[layout::catalog_key(key), key.to_string()]).await?;
                outcome.refused.extend(gone.refused);
            } else {
                plain.push(layout::catalog_key(key));
                plain.push(key.to_string());
                self.forget(key);
            }
        }
        if !plain.is_empty() {
            let bucket = self.delete_bucket_files(&plain).await?;
            outcome.refused.extend(bucket.refused);
        }
        Ok(outcome)
    }

    /// An entry at `entry_key` (a tagged one), read fresh.
    pub(super) async fn read_entry_at(&self, entry_key: &str) -> Result<Option<Entry>> {
        match self.bucket.get_range(entry_key, 0..(1 << 20)).await {
            Ok(fetched) => Ok(Some(Entry::parse(&fetched.data, &self.bucket.url(entry_key))?)),
            Err(e) if e.is(Kind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn delete_archive_of(&self, entry: &Entry) -> Result<()> {
        self.mine(entry)?;
        match &entry.archive_id {
            Some(id) => self.delete_archive(&entry.key, id).await,
            None => Ok(()),
        }
    }
}
