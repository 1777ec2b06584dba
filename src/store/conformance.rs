//! The store conformance suite: what every [`Store`] must do for the engine
//! and the commands, as one function a test calls with a store. It runs
//! against the in-memory store (a unit test), s3s-fs, moto and a vault on
//! fakecloud (the integration tests), and Garage or an external endpoint
//! (`make test-compat`): a new backend proves itself by passing it.
//!
//! Checks panic with a message naming the store and the step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{ObjectClass, Readiness, RestoreRequested, Store, paging};
use crate::config::RestoreTier;
use crate::error::Kind;

/// S3's smallest part but the last.
const MIN_PART: usize = 5 << 20;

/// Deterministic bytes for the checks.
fn bytes(len: usize, seed: u8) -> Bytes {
    (0..len).map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed as u32) as u8).collect::<Vec<_>>().into()
}

/// Runs every check under `prefix` (which should be empty and end in `/`),
/// and leaves nothing behind on success.
pub async fn run(store: Arc<dyn Store>, prefix: &str) {
    let name = store.url(prefix);
    single_objects(&*store, prefix, &name).await;
    missing_keys(&*store, prefix, &name).await;
    multipart(&*store, prefix, &name, ObjectClass::Metadata).await;
    multipart(&*store, prefix, &name, ObjectClass::Payload).await;
    listings_and_deletes(&*store, prefix, &name).await;
    aborted_uploads(&*store, prefix, &name).await;
    versions(&*store, prefix, &name).await;
    let left = paging::keys(&*store, prefix).await.unwrap();
    assert!(left.is_empty(), "{name}: the suite left {left:?}");
}

/// Puts, ranged reads (clipped at the end), metadata, empty objects.
async fn single_objects(store: &dyn Store, prefix: &str, name: &str) {
    let key = format!("{prefix}single");
    let data = bytes(100_000, 1);
    let meta = vec![("gpbackup-integrity".to_string(), "v1 size=100000 crc64nvme=0123456789abcdef".to_string())];
    store.put(&key, data.clone(), &meta, ObjectClass::Metadata).await.unwrap_or_else(|e| panic!("{name}: put: {e}"));
    let whole = store.get_range(&key, 0..1 << 30).await.unwrap_or_else(|e| panic!("{name}: get: {e}"));
    assert_eq!((whole.data.clone(), whole.total_size), (data.clone(), 100_000), "{name}: whole read");
    assert_eq!(whole.meta("gpbackup-integrity"), Some(meta[0].1.as_str()), "{name}: metadata round trip");
    let part = store.get_range(&key, 99_990..100_010).await.unwrap();
    assert_eq!(part.data, data.slice(99_990..), "{name}: a range past the end is clipped");
    let inner = store.get_range(&key, 1000..2000).await.unwrap();
    assert_eq!((inner.data, inner.total_size), (data.slice(1000..2000), 100_000), "{name}: inner range");
    let state = store.object_state(&key).await.unwrap();
    assert!(state.readiness.readable(), "{name}: metadata is readable at once: {state:?}");
    let head = store.head(&key).await.unwrap_or_else(|e| panic!("{name}: head: {e}"));
    assert_eq!(head.size, 100_000, "{name}: head size");
    assert_eq!(head.meta("gpbackup-integrity"), Some(meta[0].1.as_str()), "{name}: head metadata");

    let empty = format!("{prefix}empty");
    store.put(&empty, Bytes::new(), &Vec::new(), ObjectClass::Metadata).await.unwrap();
    let read = store.get_range(&empty, 0..1024).await.unwrap_or_else(|e| panic!("{name}: empty object: {e}"));
    assert_eq!((read.data.len(), read.total_size), (0, 0), "{name}: empty object");

    payload_round_trip(store, prefix, name).await;
    delete(store, &[key, empty], name).await;
}

/// A payload may be cold: archived until a restore, which is asked for
/// once and then reported as under way or done.
async fn payload_round_trip(store: &dyn Store, prefix: &str, name: &str) {
    let key = format!("{prefix}payload");
    let data = bytes(3000, 2);
    store.put(&key, data.clone(), &Vec::new(), ObjectClass::Payload).await.unwrap();
    let listed = store.list_page(&key, None, None).await.unwrap();
    let cold = listed.objects.first().unwrap_or_else(|| panic!("{name}: payload not listed")).cold;
    assert_eq!(listed.objects[0].size, 3000, "{name}: listed size");
    let head = store.head(&key).await.unwrap_or_else(|e| panic!("{name}: head of a payload, archived or not: {e}"));
    assert_eq!(head.size, 3000, "{name}: head size of a payload");
    readable_after_thaw(store, &key, cold, name).await;
    assert_eq!(store.get_range(&key, 0..3000).await.unwrap().data, data, "{name}: payload read back");
    delete(store, std::slice::from_ref(&key), name).await;
}

/// Brings `key` to readable (a restore if `cold`), within a minute.
async fn readable_after_thaw(store: &dyn Store, key: &str, cold: bool, name: &str) {
    let state = store.object_state(key).await.unwrap();
    if !cold {
        assert!(state.readiness.readable(), "{name}: {key} listed warm but {state:?}");
        return;
    }
    assert_eq!(state.readiness, Readiness::Archived, "{name}: a cold object starts archived");
    let err = store.get_range(key, 0..10).await.expect_err("an archived object is not readable");
    assert!(err.is(Kind::Archived), "{name}: reading an archived object: {err}");
    let first = store.request_restore(key, RestoreTier::Expedited, 1).await.unwrap();
    assert_eq!(first, RestoreRequested::Started, "{name}: first restore request");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = store.object_state(key).await.unwrap();
        if state.readiness.readable() {
            break;
        }
        assert!(Instant::now() < deadline, "{name}: {key} not readable a minute after its restore");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let again = store.request_restore(key, RestoreTier::Expedited, 1).await.unwrap();
    assert_ne!(again, RestoreRequested::Started, "{name}: a restore is never started twice");
}

/// Reads and deletes of keys that do not exist.
async fn missing_keys(store: &dyn Store, prefix: &str, name: &str) {
    let key = format!("{prefix}missing");
    let err = store.get_range(&key, 0..10).await.expect_err("a missing object is not readable");
    assert!(err.is(Kind::NotFound), "{name}: get of a missing key: {err}");
    let err = store.object_state(&key).await.expect_err("a missing object has no state");
    assert!(err.is(Kind::NotFound), "{name}: state of a missing key: {err}");
    let err = store.head(&key).await.expect_err("a missing object has no head");
    assert!(err.is(Kind::NotFound), "{name}: head of a missing key: {err}");
    delete(store, &[key], name).await;
}

/// Parts of unequal sizes (or the store's fixed size), joined in order.
async fn multipart(store: &dyn Store, prefix: &str, name: &str, class: ObjectClass) {
    let key = format!("{prefix}multipart-{class:?}");
    let sizes = match store.fixed_part_size(class) {
        Some(size) => vec![size as usize, size as usize, size as usize / 3],
        None => vec![MIN_PART, MIN_PART + 12_345, 777],
    };
    let upload = store.start_multipart(&key, &Vec::new(), class).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    let parts: Vec<Bytes> = sizes.iter().enumerate().map(|(i, s)| bytes(*s, i as u8 + 10)).collect();
    let mut tags = Vec::new();
    // Out of order, as parts in flight finish.
    for number in [2u32, 1, 3] {
        let data = parts[number as usize - 1].clone();
        tags.push(upload.put_part(number, data).await.unwrap_or_else(|e| panic!("{name}: part {number}: {e}")));
    }
    let err = store.get_range(&key, 0..1).await.expect_err("nothing is visible before completion");
    assert!(err.is(Kind::NotFound), "{name}: {key} before completion: {err}");
    upload.complete(tags).await.unwrap_or_else(|e| panic!("{name}: complete: {e}"));
    let whole: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let listed = store.list_page(&key, None, None).await.unwrap();
    readable_after_thaw(store, &key, listed.objects[0].cold, name).await;
    let read = store.get_range(&key, 0..whole.len() as u64).await.unwrap();
    assert!(read.data == whole, "{name}: {class:?} multipart object read back differs");
    let boundary = sizes[0] as u64;
    let across = store.get_range(&key, boundary - 100..boundary + 100).await.unwrap();
    assert_eq!(&across.data[..], &whole[boundary as usize - 100..boundary as usize + 100], "{name}: across parts");
    delete(store, &[key], name).await;
}

/// Listings page in key order; deletes take batches, missing keys too.
async fn listings_and_deletes(store: &dyn Store, prefix: &str, name: &str) {
    let dir = format!("{prefix}list/");
    let keys: Vec<String> = (0..7).map(|i| format!("{dir}k{i}")).collect();
    for key in keys.iter().rev() {
        store.put(key, Bytes::from_static(b"x"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
    }
    store.put(&format!("{prefix}listx"), Bytes::from_static(b"x"), &Vec::new(), ObjectClass::Metadata).await.unwrap();
    let mut seen = Vec::new();
    let mut next = None;
    let mut pages = 0;
    loop {
        let page = store.list_page(&dir, next, Some(3)).await.unwrap();
        assert!(page.objects.len() <= 3, "{name}: a page of {} objects for a limit of 3", page.objects.len());
        seen.extend(page.objects.into_iter().map(|o| o.key));
        pages += 1;
        match page.next {
            Some(token) => next = Some(token),
            None => break,
        }
    }
    assert_eq!(seen, keys, "{name}: listing in key order, prefix respected");
    assert!(pages >= 3, "{name}: {pages} pages for 7 keys at 3 a page");
    assert_eq!(paging::keys(store, &dir).await.unwrap(), keys, "{name}: all pages");
    let mut batch = keys[..5].to_vec();
    batch.push(format!("{dir}never-there"));
    delete(store, &batch, name).await;
    assert_eq!(paging::keys(store, &dir).await.unwrap(), keys[5..].to_vec(), "{name}: what is left");
    let mut rest = keys[5..].to_vec();
    rest.push(format!("{prefix}listx"));
    delete(store, &rest, name).await;
}

/// An aborted upload leaves nothing at its key.
async fn aborted_uploads(store: &dyn Store, prefix: &str, name: &str) {
    let key = format!("{prefix}aborted");
    let upload = store.start_multipart(&key, &Vec::new(), ObjectClass::Metadata).await.unwrap();
    upload.put_part(1, bytes(MIN_PART, 3)).await.unwrap();
    upload.abort().await.unwrap_or_else(|e| panic!("{name}: abort: {e}"));
    let err = store.get_range(&key, 0..1).await.expect_err("an aborted upload leaves no object");
    assert!(err.is(Kind::NotFound), "{name}: {err}");
    // An upload gone already counts as aborted (s3s-fs answers AccessDenied
    // for an upload it no longer has, where AWS answers NoSuchUpload).
    if let Err(e) = store.abort_upload(&key, &upload.upload_id()).await {
        assert!(e.is(Kind::AccessDenied), "{name}: abort again: {e}");
    }
}

/// A store says whether it keeps versions; one that does lists every
/// version of a key (the newest marked current) and delete markers, and
/// deletes them by version id until none is left. Objects without a lock
/// have none to report.
async fn versions(store: &dyn Store, prefix: &str, name: &str) {
    let bucket = store.bucket_lock().await.unwrap_or_else(|e| panic!("{name}: bucket_lock: {e}"));
    let key = format!("{prefix}versioned");
    for seed in [1, 2] {
        store.put(&key, bytes(10, seed), &Vec::new(), ObjectClass::Metadata).await.unwrap();
    }
    let state = store.lock_state(&key, None).await.unwrap_or_else(|e| panic!("{name}: lock_state: {e}"));
    if !bucket.lock_enabled {
        assert_eq!(state, super::LockState::default(), "{name}: a lock without Object Lock");
    }
    if !bucket.versioned() {
        delete(store, std::slice::from_ref(&key), name).await;
        return;
    }
    delete(store, std::slice::from_ref(&key), name).await;
    let found = paging::versions(store, &key).await.unwrap_or_else(|e| panic!("{name}: list versions: {e}"));
    let mine: Vec<_> = found.iter().filter(|v| v.key == key).collect();
    assert_eq!(mine.len(), 3, "{name}: two versions and a delete marker expected: {found:?}");
    assert!(mine.iter().any(|v| v.delete_marker && v.latest), "{name}: the marker is not current: {found:?}");
    assert_eq!(mine.iter().filter(|v| v.latest).count(), 1, "{name}: {found:?}");
    let ids: Vec<(String, String)> = mine.iter().map(|v| (v.key.clone(), v.version_id.clone())).collect();
    let outcome = store.delete_versions(&ids, false).await.unwrap_or_else(|e| panic!("{name}: delete versions: {e}"));
    assert!(outcome.refused.is_empty(), "{name}: {outcome:?}");
    let left = paging::versions(store, &key).await.unwrap();
    assert!(left.iter().all(|v| v.key != key), "{name}: versions left: {left:?}");
}

async fn delete(store: &dyn Store, keys: &[String], name: &str) {
    let outcome = store.delete_many(keys).await.unwrap_or_else(|e| panic!("{name}: delete: {e}"));
    assert!(outcome.refused.is_empty() && outcome.untouched.is_empty(), "{name}: delete refused: {outcome:?}");
}

#[cfg(test)]
mod tests {
    use super::super::memory::MemoryStore;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_memory_store_conforms() {
        super::run(std::sync::Arc::new(MemoryStore::new()), "suite/").await;
        super::run(std::sync::Arc::new(MemoryStore::new().cold_payloads().page_size(2)), "suite/").await;
    }
}
