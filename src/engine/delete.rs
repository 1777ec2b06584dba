//! Deleting everything under a prefix, a listing page at a time so memory
//! stays flat however many objects there are, with the retention policy of
//! the config applied the same way for every store.
//!
//! Cold payloads go first, everything readable after: a payload whose
//! deletion a retention lock refuses then stops the delete before the
//! backup's metadata is touched ([`OnRetentionLocked::Fail`]), or is kept
//! for a later `purge` while the rest goes ([`OnRetentionLocked::Defer`]).

use futures::TryStreamExt;

use crate::config::OnRetentionLocked;
use crate::error::Result;
use crate::store::{DELETE_BATCH, Store, paging};

/// What a delete did.
#[derive(Debug, Default)]
pub struct Deleted {
    pub deleted: u64,
    /// Keys a retention lock refused, kept for `purge`.
    pub deferred: Vec<String>,
    /// Keys kept for another reason, with it (see [`crate::store::DeleteOutcome::kept`]).
    pub kept: Vec<(String, String)>,
}

/// Deletes every object under `prefix` (the caller makes sure it is the
/// prefix it means). Fails with kind `RetentionLocked` on a refusal under
/// [`OnRetentionLocked::Fail`], having deleted nothing after it.
pub async fn delete_prefix(store: &dyn Store, prefix: &str, on_locked: OnRetentionLocked) -> Result<Deleted> {
    let mut done = Deleted::default();
    for cold in [true, false] {
        // A continuation token names the last key listed, so it stays
        // valid while the keys before it are deleted.
        let mut pages = std::pin::pin!(paging::objects(store, prefix));
        while let Some(page) = pages.try_next().await? {
            // The store refuses listings that leave the prefix; this is the
            // last line of defence should one ever get through.
            if let Some(stray) = page.iter().find(|o| !o.key.starts_with(prefix)) {
                return Err(crate::error::Error::service(format!(
                    "the listing of {} holds {:?}, outside it: nothing more is deleted",
                    store.url(prefix),
                    crate::layout::printable(&stray.key)
                )));
            }
            let keys: Vec<String> = page.into_iter().filter(|o| o.cold == cold).map(|o| o.key).collect();
            for batch in keys.chunks(DELETE_BATCH) {
                delete_keys(store, batch.to_vec(), on_locked, &mut done).await?;
            }
        }
    }
    Ok(done)
}

/// Deletes `keys`, applying `on_locked` to each refusal.
pub async fn delete_keys(
    store: &dyn Store,
    mut keys: Vec<String>,
    on_locked: OnRetentionLocked,
    done: &mut Deleted,
) -> Result<()> {
    while !keys.is_empty() {
        let outcome = store.delete_many(&keys).await?;
        done.deleted +=
            keys.len().saturating_sub(outcome.refused.len() + outcome.untouched.len() + outcome.kept.len()) as u64;
        done.kept.extend(outcome.kept);
        for (key, refusal) in outcome.refused {
            match on_locked {
                OnRetentionLocked::Fail => return Err(refusal),
                OnRetentionLocked::Defer => {
                    store.defer_delete(&key).await?;
                    log::warn!("{}; kept for `purge` (on_retention_locked: defer)", refusal.message());
                    done.deferred.push(key);
                }
            }
        }
        keys = outcome.untouched;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{ObjectClass, Store};
    use bytes::Bytes;

    #[tokio::test(flavor = "current_thread")]
    async fn deletes_every_page_and_nothing_else() {
        let store = MemoryStore::new().page_size(7);
        for i in 0..40 {
            let key = format!("b/{}/k{i:02}", if i % 2 == 0 { "x" } else { "y" });
            store.put(&key, Bytes::from_static(b"d"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
        }
        store.put("b/xx", Bytes::from_static(b"d"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
        let done = delete_prefix(&store, "b/x/", OnRetentionLocked::Fail).await.unwrap();
        assert_eq!(done.deleted, 20);
        assert_eq!(store.keys().len(), 21);
        assert!(store.keys().iter().all(|k| !k.starts_with("b/x/")));
    }
}
