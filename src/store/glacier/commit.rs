//! How an archive becomes named, and stays named exactly once.
//!
//! An upload writes an *intent* entry before its archive is completed
//! ([`Vault::begin`]), then the key's current entry once the archive
//! exists ([`Vault::commit`]), then deletes the archive the key named
//! before (or, when a retention lock refuses, keeps it under a *retired*
//! entry for `purge`), then drops the intent. A process killed at any
//! point leaves either an open upload (aborted by `cleanup`) or an intent
//! that [`Vault::recover`] finishes: completing a multipart upload again is
//! idempotent and gives the archive's id, so an archive that exists but is
//! not yet named is found and deleted, and one that is named keeps its
//! entry. Nothing here ever deletes the only record of an archive.

use std::sync::Arc;

use bytes::Bytes;

use super::catalog::{Entry, Intent};
use super::{Vault, fetch_entry};
use crate::error::{Kind, Result};
use crate::layout::{self, EntryTag};
use crate::store::ObjectClass;

/// An upload that has written its intent.
pub struct Begun {
    pub intent_key: String,
    /// The key's entry before this upload (its archive is to be retired).
    pub old: Option<Arc<Entry>>,
    /// The intent outlives the commit (duplicates may exist: an inventory
    /// must settle them).
    pub keep_intent: bool,
}

impl Vault {
    /// Writes the intent of the upload `nonce` of `key`, its archive still
    /// to be completed (`entry` holds its size, tree hash and description).
    pub(super) async fn begin(&self, entry: &Entry, nonce: &str, upload_id: Option<&str>) -> Result<Begun> {
        let old = fetch_entry(&*self.bucket, &entry.key).await?;
        let mut intent = entry.clone();
        intent.intent = Some(Intent {
            nonce: nonce.to_string(),
            upload_id: upload_id.map(str::to_string),
            replaces: old.as_ref().and_then(|o| o.archive_id.clone()),
            duplicates_possible: false,
        });
        let intent_key = layout::tagged_catalog_key(&entry.key, EntryTag::Intent(nonce));
        if let Err(e) = self.put_json(&intent_key, &intent).await {
            // It may have been stored before the error: no intent without
            // an upload to stand for.
            self.remove(&intent_key).await;
            return Err(e);
        }
        Ok(Begun { intent_key, old, keep_intent: false })
    }

    /// Names the completed archive of `entry` (the key's current entry),
    /// retires the archive it replaces, and drops the intent. When the
    /// entry cannot be written the new archive is deleted again and the
    /// key's earlier entry put back.
    pub(super) async fn commit(&self, begun: Begun, entry: Entry) -> Result<()> {
        if let Err(e) = self.write_entry(&entry).await {
            self.undo(&begun, &entry).await;
            return Err(e);
        }
        if let Some(old) = &begun.old
            && old.archive_id.is_some()
            && old.archive_id != entry.archive_id
        {
            self.retire(old).await;
        }
        if !begun.keep_intent {
            self.remove(&begun.intent_key).await;
        }
        Ok(())
    }

    /// An upload that ended before its archive was completed (or whose
    /// completion is known to have failed): its intent goes.
    pub(super) async fn abandon(&self, begun: &Begun) {
        self.remove(&begun.intent_key).await;
    }

    /// The current entry could not be written: delete the new archive,
    /// put back what the key had, and drop the intent. What cannot be
    /// undone keeps the intent, for [`Vault::recover`].
    async fn undo(&self, begun: &Begun, entry: &Entry) {
        let Some(id) = &entry.archive_id else { return };
        if let Err(e) = self.delete_archive(&entry.key, id).await {
            log::warn!("archive {id} of {} could not be deleted after its entry failed: {e}", entry.key);
            return;
        }
        let restored = match &begun.old {
            Some(old) => self.write_entry(old).await,
            None => {
                self.forget(&entry.key);
                self.delete_bucket_files(&[layout::catalog_key(&entry.key)]).await.map(|_| ())
            }
        };
        match restored {
            Ok(()) => self.remove(&begun.intent_key).await,
            Err(e) => log::warn!("the catalog entry of {} could not be put back: {e}", entry.key),
        }
    }

    /// Deletes an archive no entry will name any more; when the delete is
    /// refused (a retention lock) or fails, a retired entry keeps it named
    /// for `purge`.
    pub(super) async fn retire(&self, old: &Entry) {
        let Some(id) = &old.archive_id else { return };
        let refusal = match self.delete_archive(&old.key, id).await {
            Ok(()) => return,
            Err(e) => e,
        };
        let mut retired = old.clone();
        retired.retrieval = None;
        retired.delete_requested_at = Some(super::catalog::now());
        let key = layout::tagged_catalog_key(&old.key, EntryTag::Retired(&archive_tag(id)));
        match self.put_json(&key, &retired).await {
            Ok(()) => {
                log::warn!("archive {id} of {} was replaced but not deleted ({refusal}); kept for `purge`", old.key)
            }
            Err(e) => {
                log::warn!("archive {id} of {} was replaced, not deleted ({refusal}), and not recorded: {e}", old.key)
            }
        }
    }

    pub(super) async fn put_json(&self, key: &str, entry: &Entry) -> Result<()> {
        self.bucket.put(key, Bytes::from(entry.to_json()), &Vec::new(), ObjectClass::Metadata).await
    }

    /// Deletes a bucket key, logging (not failing) when it cannot.
    async fn remove(&self, key: &str) {
        if let Err(e) = self.delete_bucket_files(&[key.to_string()]).await {
            log::warn!("{} could not be deleted: {e}", self.bucket.url(key));
        }
    }

    /// Finishes or undoes the upload an intent entry stands for: `Ok(true)`
    /// when the intent could be dropped (its archive named by the current
    /// entry, or deleted, or never made), `Ok(false)` when only an
    /// inventory can tell (`rebuild-catalog`).
    pub(super) async fn recover(&self, intent_key: &str, intent: &Entry) -> Result<bool> {
        let Some(plan) = &intent.intent else { return Ok(false) };
        let current = fetch_entry(&*self.bucket, &intent.key).await?;
        let named = current.as_ref().is_some_and(|c| c.nonce().as_deref() == Some(plan.nonce.as_str()));
        if named {
            // Interrupted after naming the new archive: finish the job.
            if let Some(old) = &plan.replaces
                && current.as_ref().and_then(|c| c.archive_id.as_deref()) != Some(old.as_str())
            {
                let mut old_entry = intent.clone();
                old_entry.archive_id = Some(old.clone());
                old_entry.intent = None;
                self.retire(&old_entry).await;
            }
            self.remove(intent_key).await;
            return Ok(true);
        }
        let Some(upload_id) = &plan.upload_id else { return Ok(false) };
        // Interrupted before naming it: complete again (idempotent) to learn
        // whether an archive exists, and delete it; the stream it holds
        // belongs to a backup_data that did not succeed.
        match self.complete_upload(&intent.key, upload_id, intent.size, &intent.tree_hash).await {
            Ok(archive_id) => self.delete_archive(&intent.key, &archive_id).await?,
            // Aborted, or completed too long ago for the service to say.
            Err(e) if e.is(Kind::NotFound) => {
                if self.abort_vault_upload(&intent.key, upload_id).await? {
                    self.remove(intent_key).await;
                    return Ok(true);
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        self.remove(intent_key).await;
        Ok(true)
    }
}

/// The tag of a retired entry: 16 hex digits from the archive id.
pub(super) fn archive_tag(archive_id: &str) -> String {
    format!("{:016x}", crc_fast::crc64_nvme(archive_id.as_bytes()))
}
