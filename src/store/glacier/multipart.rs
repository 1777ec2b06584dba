//! Multipart archives: parts of exactly the vault's part size, each with
//! its tree hash (which the service must echo), completed with the whole
//! archive's hash combined from the parts'; and the vault's open uploads.
//!
//! Every archive is uploaded this way where the service has multipart
//! uploads (a stream of one part too): completing an upload again is
//! idempotent and answers the same archive id, so a completion whose answer
//! was lost, or a process killed around it, never leaves an archive nobody
//! can name (see [`super::commit`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_glacier::primitives::ByteStream;
use bytes::Bytes;

use super::Vault;
use super::archives::check_echo;
use super::catalog::{self, Entry};
use super::client::on_vault;
use super::treehash::{self, Hash};
use crate::error::{Error, Kind, Result};
use crate::store::aws::classify;
use crate::store::{Metadata, MultipartUpload, PartTag, paging};

/// Starts a multipart archive for `key`.
pub(super) async fn start(vault: Arc<Vault>, key: &str, metadata: &Metadata) -> Result<Box<dyn MultipartUpload>> {
    let nonce = crate::layout::new_upload_id();
    let description = catalog::describe(key, metadata, &nonce)?;
    let out = vault
        .retry
        .run(&format!("start multipart upload to {}", vault.vault_url(key)), || async {
            on_vault!(vault, initiate_multipart_upload)
                .archive_description(&description)
                .part_size(vault.settings.part_size.to_string())
                .send()
                .await
                .map_err(|e| classify("start multipart upload to", &vault.vault_url(key), e))
        })
        .await?;
    let upload_id = out
        .upload_id()
        .ok_or_else(|| Error::service(format!("{} started an upload without an id", vault.server)))?
        .to_string();
    let mut entry = Entry::new(key, &vault.settings, &vault.region);
    entry.description = description;
    entry.metadata = metadata.clone();
    entry.part_size = vault.settings.part_size;
    Ok(Box::new(VaultUpload { vault, upload_id, nonce, entry, parts: Mutex::new(HashMap::new()) }))
}

impl Vault {
    /// Completes upload `upload_id` (again: the request is idempotent);
    /// the archive's id.
    pub(super) async fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        size: u64,
        tree_hex: &str,
    ) -> Result<String> {
        let url = self.vault_url(key);
        let what = format!("complete the upload of {url}");
        let out = self
            .retry
            .run(&what, || async {
                on_vault!(self, complete_multipart_upload)
                    .upload_id(upload_id)
                    .archive_size(size.to_string())
                    .checksum(tree_hex)
                    .send()
                    .await
                    .map_err(|e| classify("complete multipart upload to", &url, e))
            })
            .await?;
        if let Some(echoed) = out.checksum()
            && treehash::from_hex(echoed) != treehash::from_hex(tree_hex)
        {
            return Err(Error::integrity(format!(
                "{} completed {url} with tree hash {echoed}, but the parts make {tree_hex}",
                self.server
            )));
        }
        out.archive_id()
            .map(str::to_string)
            .ok_or_else(|| Error::service(format!("{} completed {url} without an archive id", self.server)))
    }
}

impl Vault {
    /// Aborts `upload_id` if it is one of the vault's; `false` when the
    /// vault does not know it (the bucket's, or gone already).
    pub(super) async fn abort_vault_upload(&self, key: &str, upload_id: &str) -> Result<bool> {
        let what = format!("abort upload {upload_id} of {}", self.vault_url(key));
        self.retry
            .run(&what, || async {
                match on_vault!(self, abort_multipart_upload).upload_id(upload_id).send().await {
                    Ok(_) => Ok(true),
                    Err(e) => match classify("abort upload to", &self.vault_url(key), e) {
                        // Unknown here; some services answer 400 to an id of
                        // another's form.
                        error if !error.is(Kind::Transient) => Ok(false),
                        other => Err(other),
                    },
                }
            })
            .await
    }

    /// Open multipart uploads of this plugin.
    pub(super) async fn vault_uploads(&self) -> Result<Vec<crate::store::OpenUpload>> {
        paging::collect(|marker: Option<String>| async move {
            let out = self
                .retry
                .run("list vault uploads", || async {
                    on_vault!(self, list_multipart_uploads)
                        .set_marker(marker.clone())
                        .send()
                        .await
                        .map_err(|e| self.vault_error("list the multipart uploads of", e))
                })
                .await?;
            let uploads = out
                .uploads_list()
                .iter()
                .filter_map(|upload| {
                    let described = upload.archive_description().and_then(catalog::parse_description)?;
                    Some(crate::store::OpenUpload {
                        key: described.key,
                        upload_id: upload.multipart_upload_id()?.to_string(),
                        initiated: upload
                            .creation_date()
                            .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                            .map(|d| d.with_timezone(&chrono::Utc)),
                    })
                })
                .collect();
            Ok((uploads, out.marker().filter(|m| !m.is_empty()).map(str::to_string)))
        })
        .await
    }
}

struct VaultUpload {
    vault: Arc<Vault>,
    upload_id: String,
    /// This upload's own mark, in the description and the intent.
    nonce: String,
    /// The entry to record on completion (archive id, size and hash to come).
    entry: Entry,
    /// Each part's size and tree hash, by part number.
    parts: Mutex<HashMap<u32, (u64, Hash)>>,
}

impl VaultUpload {
    fn url(&self) -> String {
        self.vault.vault_url(&self.entry.key)
    }

    /// The archive's size and tree hash from its parts, numbered 1..n.
    fn whole(&self, parts: &[PartTag]) -> Result<(u64, Hash)> {
        let known = self.parts.lock().expect("parts lock");
        let mut numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
        numbers.sort_unstable();
        if numbers.iter().enumerate().any(|(i, n)| *n != i as u32 + 1) {
            return Err(Error::local(format!("the parts of {} are not numbered 1..n", self.url())));
        }
        let mut hashes = Vec::with_capacity(numbers.len());
        let mut size = 0;
        for n in numbers {
            let (len, hash) =
                known.get(&n).ok_or_else(|| Error::local(format!("part {n} of {} was not uploaded", self.url())))?;
            size += len;
            hashes.push(*hash);
        }
        Ok((size, treehash::combine(&hashes)))
    }
}

#[async_trait]
impl MultipartUpload for VaultUpload {
    fn upload_id(&self) -> String {
        self.upload_id.clone()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let vault = &self.vault;
        let part_size = vault.settings.part_size;
        let start = u64::from(number - 1) * part_size;
        let len = data.len() as u64;
        if len == 0 || len > part_size {
            return Err(Error::local(format!("part {number} of {} has {len} bytes", self.url())));
        }
        let tree = treehash::tree_hash(&data);
        let tree_hex = treehash::to_hex(&tree);
        let what = format!("upload part {number} of {}", self.url());
        let out = vault
            .retry
            .run(&what, || async {
                on_vault!(vault, upload_multipart_part)
                    .upload_id(&self.upload_id)
                    .range(format!("bytes {start}-{}/*", start + len - 1))
                    .checksum(&tree_hex)
                    .body(ByteStream::from(data.clone()))
                    .send()
                    .await
                    .map_err(|e| classify(&format!("upload part {number} of"), &self.url(), e))
            })
            .await?;
        check_echo(&vault.server, &format!("part {number} of {}", self.url()), out.checksum(), &tree, &data)?;
        self.parts.lock().expect("parts lock").insert(number, (len, tree));
        Ok(PartTag { number, etag: None, checksum: Some(tree_hex) })
    }

    async fn complete(&self, parts: Vec<PartTag>) -> Result<()> {
        let vault = &self.vault;
        let (size, tree) = self.whole(&parts)?;
        let mut entry = self.entry.clone();
        entry.size = size;
        entry.tree_hash = treehash::to_hex(&tree);
        let begun = vault.begin(&entry, &self.nonce, Some(&self.upload_id)).await?;
        let archive_id = match vault.complete_upload(&entry.key, &self.upload_id, size, &entry.tree_hash).await {
            Ok(id) => id,
            Err(e) => {
                // Still open: no archive was made, and the engine aborts it.
                // Otherwise the intent stays for `cleanup` to resolve.
                if vault.abort_vault_upload(&entry.key, &self.upload_id).await.unwrap_or(false) {
                    vault.abandon(&begun).await;
                }
                return Err(e);
            }
        };
        entry.archive_id = Some(archive_id);
        entry.uploaded_at = catalog::now();
        vault.commit(begun, entry).await
    }

    async fn abort(&self) -> Result<()> {
        let vault = &self.vault;
        let what = format!("abort the upload of {}", self.url());
        vault
            .retry
            .run(&what, || async {
                match on_vault!(vault, abort_multipart_upload).upload_id(&self.upload_id).send().await {
                    Ok(_) => Ok(()),
                    Err(e) => match classify("abort multipart upload to", &self.url(), e) {
                        error if error.is(Kind::NotFound) => Ok(()),
                        other => Err(other),
                    },
                }
            })
            .await
    }
}
