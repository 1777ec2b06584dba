//! Archives: UploadArchive (with its tree hash, which the service must
//! echo), ranged reads of a finished retrieval job's output (each range
//! that is a node of the archive's tree checked against the hash the
//! service sends), and DeleteArchive.

use std::ops::Range;

use aws_sdk_glacier::error::ProvideErrorMetadata;
use aws_sdk_glacier::primitives::ByteStream;
use bytes::{Bytes, BytesMut};
use sha2::Digest as _;

use super::Vault;
use super::catalog::{self, Entry};
use super::client::on_vault;
use super::treehash::{self, Hash};
use crate::error::{Error, Kind, Result};
use crate::store::aws::classify;
use crate::store::{Fetched, Metadata, Readiness, TREE_HASH_META};

impl Vault {
    /// One UploadArchive, for a service without multipart uploads. Its
    /// intent names no upload (only an inventory finds an archive whose
    /// answer was lost) and says when the request was sent more than once.
    pub(super) async fn upload_archive(&self, key: &str, data: Bytes, metadata: &Metadata) -> Result<()> {
        let nonce = crate::layout::new_upload_id();
        let description = catalog::describe(key, metadata, &nonce)?;
        let tree = treehash::tree_hash(&data);
        let mut entry = Entry::new(key, &self.settings, &self.region);
        entry.size = data.len() as u64;
        entry.tree_hash = treehash::to_hex(&tree);
        entry.description = description.clone();
        entry.metadata = metadata.clone();
        let begun = self.begin(&entry, &nonce, None).await?;
        let what = format!("upload to {}", self.vault_url(key));
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let sent = self
            .retry
            .run(&what, || async {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                on_vault!(self, upload_archive)
                    .archive_description(&description)
                    .checksum(&entry.tree_hash)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| classify("upload archive to", &self.vault_url(key), e))
            })
            .await;
        let retried = attempts.load(std::sync::atomic::Ordering::Relaxed) > 1;
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                if !retried && !e.is(Kind::Transient) {
                    self.abandon(&begun).await;
                }
                return Err(e);
            }
        };
        check_echo(&self.server, &self.vault_url(key), out.checksum(), &tree, &data)?;
        let archive_id = out.archive_id().ok_or_else(|| {
            Error::service(format!("{} answered an upload of {key} without an archive id", self.server))
        })?;
        entry.archive_id = Some(archive_id.to_string());
        if retried {
            // An earlier attempt may have stored an archive whose answer was
            // lost: the intent stays, marked, for an inventory to settle.
            let mut marked = entry.clone();
            marked.intent = Some(super::catalog::Intent {
                nonce: nonce.clone(),
                upload_id: None,
                replaces: begun.old.as_ref().and_then(|o| o.archive_id.clone()),
                duplicates_possible: true,
            });
            self.put_json(&begun.intent_key, &marked).await?;
            return self.commit(super::commit::Begun { keep_intent: true, ..begun }, entry).await;
        }
        self.commit(begun, entry).await
    }

    pub(super) async fn read_archive(&self, entry: &Entry, range: Range<u64>) -> Result<Fetched> {
        let mut metadata = entry.metadata.clone();
        metadata.push((TREE_HASH_META.to_string(), entry.tree_hash.clone()));
        let end = range.end.min(entry.size);
        let start = range.start.min(end);
        let Some(archive_id) = &entry.archive_id else {
            return Ok(Fetched { data: Bytes::new(), total_size: 0, metadata, etag: None });
        };
        let etag = Some(archive_id.clone());
        if start == end {
            return Ok(Fetched { data: Bytes::new(), total_size: entry.size, metadata, etag });
        }
        let thaw = |why: &str| Error::archived(format!("{} (archive {archive_id}) {why}", self.vault_url(&entry.key)));
        let Some(retrieval) = &entry.retrieval else { return Err(thaw("has not been thawed: no retrieval job")) };
        match self.readiness(entry).await? {
            Readiness::Restored { .. } => self.same_archive(entry, &retrieval.job_id).await?,
            Readiness::Restoring => return Err(thaw(&format!("is still being retrieved (job {})", retrieval.job_id))),
            _ => return Err(thaw(&format!("is not retrievable: job {} failed, expired or is gone", retrieval.job_id))),
        }
        let what = format!("download bytes {start}..{end} of {}", self.vault_url(&entry.key));
        let (data, echoed) = self
            .retry
            .run(&what, || async {
                let out = on_vault!(self, get_job_output)
                    .job_id(&retrieval.job_id)
                    .range(format!("bytes={start}-{}", end - 1))
                    .send()
                    .await
                    .map_err(|e| {
                        let error = classify("download", &self.vault_url(&entry.key), e);
                        if error.is(Kind::NotFound) {
                            thaw(&format!("cannot be read: the output of job {} is gone (expired?)", retrieval.job_id))
                        } else {
                            error
                        }
                    })?;
                // The output is the archive the entry describes, or a
                // mismatch no retry mends.
                let output_size =
                    out.content_range().and_then(|range| range.rsplit('/').next()?.trim().parse::<u64>().ok());
                if let Some(size) = output_size
                    && size != entry.size
                {
                    return Err(Error::integrity(format!(
                        "{}: the output of job {} has {size} bytes, but the catalog entry says {}",
                        self.vault_url(&entry.key),
                        retrieval.job_id,
                        entry.size
                    )));
                }
                // A partial answer starts at `start`; a whole one (some
                // emulators ignore Range) at 0.
                let skip = if out.status() == 206 || out.content_range().is_some() { 0 } else { start };
                let echoed = out.checksum().map(str::to_string);
                let data = read_body(out.body, skip, end - start).await.map_err(|e| {
                    Error::transient(format!("download of {} broke off: {e}", self.vault_url(&entry.key)))
                })?;
                // A body that ends early is a broken connection: ask again.
                if data.len() as u64 != end - start {
                    return Err(Error::transient(format!(
                        "short read from {}: bytes {start}..{end} returned {} bytes",
                        self.vault_url(&entry.key),
                        data.len()
                    )));
                }
                Ok((data, echoed))
            })
            .await?;
        self.check_range(entry, start, end, &data, echoed.as_deref())?;
        Ok(Fetched { data, total_size: entry.size, metadata, etag })
    }

    /// The archive a job retrieved must be the one the entry describes: its
    /// tree hash, as the job reports it, is checked before the first byte
    /// (an entry rebuilt without its manifest has no per-part checksums).
    async fn same_archive(&self, entry: &Entry, job_id: &str) -> Result<()> {
        let super::jobs::JobState::Done(done) = self.job_state(job_id).await? else { return Ok(()) };
        match done.archive_tree_hash.as_deref().and_then(treehash::from_hex) {
            Some(theirs) if treehash::from_hex(&entry.tree_hash) != Some(theirs) => Err(Error::integrity(format!(
                "{}: the archive retrieved by job {job_id} has tree hash {}, but the catalog entry says {}; nothing \
                 of it was written",
                self.vault_url(&entry.key),
                treehash::to_hex(&theirs),
                entry.tree_hash
            ))),
            _ => Ok(()),
        }
    }

    /// Glacier sends a range's tree hash when the range is a node of the
    /// archive's tree; it must match the bytes. (One emulator sends the whole
    /// archive's hash with every range: that says nothing about the range,
    /// and the engine checks the whole hash at the end anyway.)
    fn check_range(&self, entry: &Entry, start: u64, end: u64, data: &[u8], echoed: Option<&str>) -> Result<()> {
        let Some(echoed) = echoed.and_then(treehash::from_hex) else { return Ok(()) };
        let whole = (start, end) == (0, entry.size);
        if !treehash::is_aligned(start, end, entry.size)
            || (!whole && treehash::from_hex(&entry.tree_hash) == Some(echoed))
        {
            return Ok(());
        }
        if treehash::tree_hash(data) != echoed {
            return Err(Error::integrity(format!(
                "{}: bytes {start}..{end} do not match the tree hash the service sent with them; nothing of them \
                 was written",
                self.vault_url(&entry.key)
            )));
        }
        Ok(())
    }

    /// Deletes one archive; one already gone counts as deleted. A refusal
    /// by the vault's lock (or access) policy is kind `RetentionLocked`.
    pub(super) async fn delete_archive(&self, key: &str, archive_id: &str) -> Result<()> {
        let what = format!("delete the archive of {}", self.vault_url(key));
        self.retry
            .run(&what, || async {
                match on_vault!(self, delete_archive).archive_id(archive_id).send().await {
                    Ok(_) => Ok(()),
                    Err(e) if e.code() == Some("AccessDeniedException") => Err(Error::new(
                        Kind::RetentionLocked,
                        format!(
                            "retention lock: the lock or access policy of vault {} refuses to delete the archive of \
                             {key}: {}",
                            self.settings.name,
                            e.message().unwrap_or("AccessDeniedException")
                        ),
                    )
                    .with_code(Some("AccessDeniedException"))),
                    Err(e) => match classify(&what, &self.vault_url(key), e) {
                        // Deleting an archive that is gone is success, but
                        // only in a vault that exists: a missing vault (a
                        // changed or mistyped name) deletes nothing.
                        error if error.is(Kind::NotFound) => {
                            if self.exists().await? {
                                Ok(())
                            } else {
                                Err(self.no_vault())
                            }
                        }
                        other => Err(other),
                    },
                }
            })
            .await
    }
}

/// The service's hash of what it stored (`what`) must be ours. Some
/// emulators answer with the plain SHA-256 instead of the tree hash (they
/// differ above 1 MiB): that still proves the bytes, so it is accepted.
pub(super) fn check_echo(server: &str, what: &str, echoed: Option<&str>, tree: &Hash, data: &[u8]) -> Result<()> {
    let Some(echoed) = echoed else { return Ok(()) };
    let echoed_hash = treehash::from_hex(echoed);
    if echoed_hash.as_ref() == Some(tree) || echoed_hash == Some(sha2::Sha256::digest(data).into()) {
        return Ok(());
    }
    Err(Error::integrity(format!(
        "{server} stored {what} with tree hash {echoed}, but the plugin sent {}",
        treehash::to_hex(tree)
    )))
}

/// Reads `len` bytes of a body after skipping `skip`, then drops the rest.
pub(super) async fn read_body(mut body: ByteStream, mut skip: u64, len: u64) -> std::result::Result<Bytes, String> {
    let mut out = BytesMut::with_capacity(len.min(64 << 20) as usize);
    while (out.len() as u64) < len {
        let Some(mut chunk) = body.try_next().await.map_err(|e| crate::error::chain(&e))? else { break };
        if skip > 0 {
            let drop = skip.min(chunk.len() as u64);
            let _ = chunk.split_to(drop as usize);
            skip -= drop;
        }
        let room = (len - out.len() as u64) as usize;
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(out.freeze())
}
