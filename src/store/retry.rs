//! Retries, for every store and every request alike.
//!
//! A backup must survive what a busy object store does all day: throttling
//! (503 SlowDown, 429), other 5xx, connections reset mid-body, responses cut
//! short, timeouts. Each request that fails with a transient error is sent
//! again, with the same bytes (the engine still holds the part or knows the
//! range), after an exponential backoff with full jitter, until it succeeds,
//! the attempts run out, or the request's time budget is spent. The budget
//! is per request, counted from its first attempt: a stream of any length
//! keeps its retries for its last part, and no single request keeps a
//! command waiting longer than the budget.
//! Only that one request is repeated, never the stream. Every retry is
//! logged to the plugin's log file (never to stderr, which gpbackup_helper
//! treats as failure). An error given up on is marked, so nothing above
//! retries it again.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use super::{
    BucketLock, CredentialSource, DeleteOutcome, Fact, Fetched, ListPage, LockState, Metadata, MultipartUpload,
    ObjectClass, ObjectHead, ObjectState, PartTag, Recovered, RestoreLifetime, RestoreRequested, Store, VersionPage,
};
use crate::config::{LockMode, RestoreTier};
use crate::error::Result;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    /// No retry of a request starts later than this after its first attempt.
    pub budget: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            budget: Duration::from_secs(600),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(20),
        }
    }
}

/// Runs single requests per a policy: the one retry mechanism, used by
/// [`Retrying`] for every store request and by the vault store for its
/// own vault requests.
#[derive(Clone)]
pub struct Retry(Arc<Shared>);

struct Shared {
    policy: RetryPolicy,
    seed: AtomicU64,
}

impl Retry {
    pub fn new(policy: RetryPolicy) -> Retry {
        let seed = (std::process::id() as u64) << 32
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
            | 1;
        Retry(Arc::new(Shared { policy, seed: AtomicU64::new(seed) }))
    }

    /// Full jitter: a uniform delay up to the exponential cap, so the many
    /// plugin processes of a cluster do not retry in lockstep.
    fn delay(&self, attempt: u32) -> Duration {
        let policy = &self.0.policy;
        let cap = policy.base_delay.saturating_mul(1 << attempt.min(16)).min(policy.max_delay);
        // xorshift64: enough randomness for jitter without another crate.
        let mut x = self.0.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.seed.store(x, Ordering::Relaxed);
        Duration::from_nanos(x % (cap.as_nanos() as u64).max(1))
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts or the
    /// time budget run out; `what` names the request in log lines.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let policy = &self.0.policy;
        let started = Instant::now();
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.retryable() => {
                    let delay = self.delay(attempt);
                    let out_of_time = started.elapsed() + delay > policy.budget;
                    if attempt >= policy.max_attempts || out_of_time {
                        let why = if out_of_time { "retry time budget spent" } else { "attempts exhausted" };
                        return Err(e.append(&format!(" (gave up after {attempt} attempts: {why})")).retries_spent());
                    }
                    log::warn!(
                        "{what}: attempt {attempt} of {} failed, retrying in {} ms: {}",
                        policy.max_attempts,
                        delay.as_millis(),
                        e.message()
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

/// Wraps a store so that every request is retried per `policy`.
pub struct Retrying {
    inner: Arc<dyn Store>,
    shared: Retry,
}

impl Retrying {
    pub fn new(inner: Arc<dyn Store>, policy: RetryPolicy) -> Retrying {
        Retrying { inner, shared: Retry::new(policy) }
    }
}

#[async_trait]
impl Store for Retrying {
    fn url(&self, key: &str) -> String {
        self.inner.url(key)
    }

    async fn put(&self, key: &str, data: Bytes, metadata: &Metadata, class: ObjectClass) -> Result<()> {
        let what = format!("upload to {}", self.url(key));
        self.shared.run(&what, || self.inner.put(key, data.clone(), metadata, class)).await
    }

    async fn start_multipart(
        &self,
        key: &str,
        metadata: &Metadata,
        class: ObjectClass,
    ) -> Result<Box<dyn MultipartUpload>> {
        let what = format!("start multipart upload to {}", self.url(key));
        let upload = self.shared.run(&what, || self.inner.start_multipart(key, metadata, class)).await?;
        Ok(Box::new(RetryingUpload { inner: upload, shared: self.shared.clone(), url: self.url(key) }))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Fetched> {
        let what = format!("download bytes {}..{} of {}", range.start, range.end, self.url(key));
        self.shared.run(&what, || self.inner.get_range(key, range.clone())).await
    }

    async fn head(&self, key: &str) -> Result<ObjectHead> {
        let what = format!("look up {}", self.url(key));
        self.shared.run(&what, || self.inner.head(key)).await
    }

    async fn object_state(&self, key: &str) -> Result<ObjectState> {
        let what = format!("look up {}", self.url(key));
        self.shared.run(&what, || self.inner.object_state(key)).await
    }

    async fn request_restore(&self, key: &str, tier: RestoreTier, days: u32) -> Result<RestoreRequested> {
        let what = format!("request a restore of {}", self.url(key));
        self.shared.run(&what, || self.inner.request_restore(key, tier, days)).await
    }

    async fn credentials_source(&self) -> Result<CredentialSource> {
        self.shared.run("resolve credentials", || self.inner.credentials_source()).await
    }

    async fn list_page(&self, prefix: &str, next: Option<String>, limit: Option<usize>) -> Result<ListPage> {
        let what = format!("list {}", self.url(prefix));
        self.shared.run(&what, || self.inner.list_page(prefix, next.clone(), limit)).await
    }

    async fn delete_many(&self, keys: &[String]) -> Result<DeleteOutcome> {
        let what = format!("delete {} objects", keys.len());
        self.shared.run(&what, || self.inner.delete_many(keys)).await
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        let what = format!("abort upload {upload_id} of {}", self.url(key));
        self.shared.run(&what, || self.inner.abort_upload(key, upload_id)).await
    }

    async fn open_uploads(&self, prefix: &str) -> Result<Option<Vec<super::OpenUpload>>> {
        let what = format!("list open uploads under {}", self.url(prefix));
        self.shared.run(&what, || self.inner.open_uploads(prefix)).await
    }

    fn fixed_part_size(&self, class: ObjectClass) -> Option<u64> {
        self.inner.fixed_part_size(class)
    }

    fn restore_lifetime(&self, days: u32) -> RestoreLifetime {
        self.inner.restore_lifetime(days)
    }

    async fn prepare(&self, create: bool) -> Result<Vec<Fact>> {
        self.shared.run("prepare", || self.inner.prepare(create)).await
    }

    async fn recover(&self, prefix: &str) -> Result<Recovered> {
        self.inner.recover(prefix).await
    }

    async fn defer_delete(&self, key: &str) -> Result<()> {
        let what = format!("keep {} for a later delete", self.url(key));
        self.shared.run(&what, || self.inner.defer_delete(key)).await
    }

    async fn deferred_deletes(&self, prefix: &str) -> Result<Vec<String>> {
        let what = format!("list deferred deletes under {}", self.url(prefix));
        self.shared.run(&what, || self.inner.deferred_deletes(prefix)).await
    }

    async fn put_probe(&self, key: &str, data: Bytes, class: ObjectClass) -> Result<()> {
        let what = format!("upload to {}", self.url(key));
        self.shared.run(&what, || self.inner.put_probe(key, data.clone(), class)).await
    }

    async fn bucket_lock(&self) -> Result<BucketLock> {
        let what = format!("look up the versioning and Object Lock of {}", self.url(""));
        self.shared.run(&what, || self.inner.bucket_lock()).await
    }

    async fn list_versions_page(&self, prefix: &str, next: Option<(String, String)>) -> Result<VersionPage> {
        let what = format!("list the versions under {}", self.url(prefix));
        self.shared.run(&what, || self.inner.list_versions_page(prefix, next.clone())).await
    }

    async fn delete_versions(&self, versions: &[(String, String)], bypass_governance: bool) -> Result<DeleteOutcome> {
        let what = format!("delete {} object versions", versions.len());
        self.shared.run(&what, || self.inner.delete_versions(versions, bypass_governance)).await
    }

    async fn lock_state(&self, key: &str, version: Option<&str>) -> Result<LockState> {
        let what = format!("look up the Object Lock of {}", self.url(key));
        self.shared.run(&what, || self.inner.lock_state(key, version)).await
    }

    async fn set_retention(
        &self,
        key: &str,
        version: Option<&str>,
        mode: LockMode,
        until: chrono::DateTime<chrono::Utc>,
        bypass_governance: bool,
    ) -> Result<()> {
        let what = format!("set the retention of {}", self.url(key));
        self.shared.run(&what, || self.inner.set_retention(key, version, mode, until, bypass_governance)).await
    }

    async fn set_legal_hold(&self, key: &str, version: Option<&str>, on: bool) -> Result<()> {
        let what = format!("set the legal hold of {}", self.url(key));
        self.shared.run(&what, || self.inner.set_legal_hold(key, version, on)).await
    }
}

struct RetryingUpload {
    inner: Box<dyn MultipartUpload>,
    shared: Retry,
    url: String,
}

#[async_trait]
impl MultipartUpload for RetryingUpload {
    fn upload_id(&self) -> String {
        self.inner.upload_id()
    }

    async fn put_part(&self, number: u32, data: Bytes) -> Result<PartTag> {
        let what = format!("upload part {number} of {}", self.url);
        self.shared.run(&what, || self.inner.put_part(number, data.clone())).await
    }

    async fn complete(&self, parts: Vec<PartTag>) -> Result<()> {
        let what = format!("complete the upload of {}", self.url);
        self.shared.run(&what, || self.inner.complete(parts.clone())).await
    }

    async fn abort(&self) -> Result<()> {
        let what = format!("abort the upload of {}", self.url);
        self.shared.run(&what, || self.inner.abort()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Kind};

    fn quick(max_attempts: u32) -> Retry {
        Retry::new(RetryPolicy { max_attempts, base_delay: Duration::from_millis(1), ..RetryPolicy::default() })
    }

    #[test]
    fn delays_are_jittered_and_capped() {
        let retry = Retry::new(RetryPolicy::default());
        let delays: Vec<Duration> = (1..=20).map(|a| retry.delay(a)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(20)));
        assert!(delays[0] <= Duration::from_millis(200));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 10, "no jitter: {delays:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn transient_errors_are_retried_until_the_attempts_run_out() {
        let retry = quick(3);
        let calls = AtomicU64::new(0);
        let result: Result<()> = retry
            .run("op", || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(Error::transient("503 SlowDown")) }
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        let e = result.unwrap_err();
        assert!(e.message().contains("gave up after 3 attempts") && !e.retryable(), "{e}");

        let calls = AtomicU64::new(0);
        let result = retry
            .run("op", || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move { if n < 2 { Err(Error::transient("reset")) } else { Ok(n) } }
            })
            .await;
        assert_eq!(result.unwrap(), 2);

        let calls = AtomicU64::new(0);
        let result: Result<()> = retry
            .run("op", || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(Error::new(Kind::AccessDenied, "403 AccessDenied")) }
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1, "permanent errors are not retried");
        assert!(result.is_err());
    }

    /// The budget is each request's own: a request made long after the
    /// command began still gets its retries.
    #[tokio::test(flavor = "current_thread")]
    async fn the_time_budget_is_per_request() {
        let retry = Retry::new(RetryPolicy {
            max_attempts: 5,
            budget: Duration::from_millis(300),
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        });
        // Longer than the budget into the "command"...
        tokio::time::sleep(Duration::from_millis(400)).await;
        let calls = AtomicU64::new(0);
        let result = retry
            .run("op", || {
                let n = calls.fetch_add(1, Ordering::Relaxed);
                async move { if n < 2 { Err(Error::transient("503")) } else { Ok(n) } }
            })
            .await;
        // ...a request still gets its retries,
        assert_eq!(result.unwrap(), 2);
        // but one request retries for at most the budget.
        let started = Instant::now();
        let slow = Retry::new(RetryPolicy {
            max_attempts: 100,
            budget: Duration::from_millis(200),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(50),
        });
        let result: Result<()> = slow.run("op", || async { Err(Error::transient("503")) }).await;
        assert!(result.unwrap_err().message().contains("retry time budget spent"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_error_given_up_on_below_is_not_retried_again() {
        let calls = AtomicU64::new(0);
        let result: Result<()> = quick(5)
            .run("op", || {
                calls.fetch_add(1, Ordering::Relaxed);
                async { Err(Error::transient("503").retries_spent()) }
            })
            .await;
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(result.is_err());
    }
}
