//! Deleting the vault backend's files in the bucket (catalog entries,
//! metadata, manifests): on a versioned bucket every version of each, by
//! version id, as for the S3 backend (a plain delete there only adds a
//! delete marker, and the old versions stay, billed and listable).

use std::collections::BTreeSet;

use super::Vault;
use crate::error::Result;
use crate::store::{DELETE_BATCH, DeleteOutcome, paging};

impl Vault {
    /// Deletes `keys` from the bucket; on a versioned bucket also every
    /// version and delete marker of them. Whether the bucket is versioned
    /// is an optional question: unanswered, only the plain delete is done.
    pub(super) async fn delete_bucket_files(&self, keys: &[String]) -> Result<DeleteOutcome> {
        let mut outcome = self.bucket.delete_many(keys).await?;
        let versioned = self
            .bucket_versioned
            .get_or_init(|| async { self.bucket.bucket_lock().await.is_ok_and(|b| b.versioned()) })
            .await;
        if keys.is_empty() || !versioned {
            return Ok(outcome);
        }
        // One version listing under the keys' common prefix (a backup's
        // directory, for a delete_backup batch), not one per key.
        let wanted: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
        let prefix = common_prefix(keys);
        let ids: Vec<(String, String)> = paging::versions(&*self.bucket, prefix)
            .await?
            .into_iter()
            .filter(|v| wanted.contains(v.key.as_str()))
            .map(|v| (v.key, v.version_id))
            .collect();
        for batch in ids.chunks(DELETE_BATCH) {
            outcome.refused.extend(self.bucket.delete_versions(batch, false).await?.refused);
        }
        Ok(outcome)
    }
}

/// The longest prefix all `keys` share, cut at a character boundary.
fn common_prefix(keys: &[String]) -> &str {
    let first = keys[0].as_str();
    let mut len = first.len();
    for key in &keys[1..] {
        len = first.bytes().zip(key.bytes()).take(len).take_while(|(a, b)| a == b).count();
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    &first[..len]
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_common_prefix_of_keys() {
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(super::common_prefix(&keys(&["a/b/c", "a/b/d", "a/bx"])), "a/b");
        assert_eq!(super::common_prefix(&keys(&["only"])), "only");
        assert_eq!(super::common_prefix(&keys(&["é1", "é2"])), "é");
        assert_eq!(super::common_prefix(&keys(&["x", "y"])), "");
    }
}
